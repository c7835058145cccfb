"""The layout of nested random intercepts with diagonal V, for the O(n) closed form.

When every random term is a random intercept, the grouping factors are nested
(each group of a finer level lies inside one group of every coarser level) and
V is diagonal, the rows can be sorted so that every group of every level is
contiguous: :func:`build_nested` finds that order and the group boundaries,
which the closed form (:mod:`bayesmeta.likelihood.nested`), its compiled twin
(:mod:`bayesmeta.likelihood.nested_op`) and the exact draws of random effects
(:mod:`bayesmeta.engines.random_effects`) walk level by level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NestedDesign:
    """Rows sorted so that every group of every level is contiguous.

    Attributes
    ----------
    U : numpy.ndarray (n, p + 2)
        Columns [X, y, 1] of the sorted rows.
    d : numpy.ndarray (n,)
        Sampling variances of the sorted rows.
    starts : tuple of numpy.ndarray
        For each level, from the finest to the coarsest, the positions (among
        the units of the previous, finer stage; rows for the finest level) at
        which its groups start.
    term_index : tuple of int
        For each level in the same order, the index of its covariance term.
    perm : numpy.ndarray (n,)
        Sorted position -> original row position.
    row_starts : tuple of numpy.ndarray
        For each level (finest first), the sorted row positions where its groups start.
    group_codes : tuple of numpy.ndarray
        For each level (finest first), the code (in its covariance term) of each of
        its groups, in sorted order.
    closes : numpy.ndarray (n,) of int64
        For every sorted row, the number of levels (finest first) whose group ends
        with it: the one-pass walk of the compiled kernel
        (:mod:`bayesmeta.likelihood.nested_kernel`).
    log_d : float
        ``sum(log(d))``, the part of ``log|Sigma|`` that does not depend on the variances.
    """

    U: np.ndarray
    d: np.ndarray
    starts: tuple
    term_index: tuple
    perm: np.ndarray
    row_starts: tuple
    group_codes: tuple = ()
    closes: np.ndarray | None = None
    log_d: float = 0.0


def count_distinct(codes: np.ndarray) -> int:
    """The number of distinct values of an integer array: by counting for codes (non-negative
    integers, a tenth of the time of sorting), else ``np.unique``.

    Examples
    --------
    >>> count_distinct(np.array([3, 0, 3, 7]))
    3
    """
    if codes.dtype.kind in "iu" and len(codes) and codes.min() >= 0:
        return int(np.count_nonzero(np.bincount(codes)))
    return len(np.unique(codes))


def build_nested(X: np.ndarray, y: np.ndarray, d: np.ndarray, codes: list[np.ndarray]) -> NestedDesign | None:
    """Prepare the closed form, or return None if the levels are not nested.

    Parameters
    ----------
    X, y, d : arrays of the rows (d: diagonal of V)
    codes : list of numpy.ndarray
        Per covariance term, the group code of every row.
    """
    n = len(y)
    if not codes:
        return None
    n_groups = [count_distinct(c) for c in codes]
    order_terms = sorted(range(len(codes)), key=lambda k: n_groups[k])  # coarsest first
    perm = np.lexsort([codes[k] for k in reversed(order_terms)])
    sorted_codes = [codes[k][perm] for k in order_terms]
    boundaries = []
    for level, c in enumerate(sorted_codes):
        change = np.r_[True, c[1:] != c[:-1]]
        if level > 0:
            # a finer group must not straddle a coarser boundary, and each group must be contiguous
            change |= boundaries[-1]
        if np.count_nonzero(change) != n_groups[order_terms[level]]:
            return None
        boundaries.append(change)
    starts, row_starts, previous = [], [], np.arange(n)
    for change in reversed(boundaries):  # finest first
        group_rows = np.flatnonzero(change)
        starts.append(np.searchsorted(previous, group_rows))
        row_starts.append(group_rows)
        previous = group_rows
    U = np.column_stack([X[perm], y[perm], np.ones(n)])
    term_index = tuple(reversed(order_terms))
    group_codes = tuple(codes[k][perm[rs]] for k, rs in zip(term_index, row_starts))
    closes = np.zeros(n, np.int64)
    for level, rs in enumerate(row_starts):  # finest first: a coarser group's end is also a finer one's
        closes[np.r_[rs[1:], n] - 1] = level + 1
    return NestedDesign(U, d[perm], tuple(starts), term_index, perm, tuple(row_starts), group_codes, closes,
                        float(np.log(d).sum()))
