"""Closed-form likelihood for nested random intercepts with diagonal V, in O(n).

When every random term is a random intercept, the grouping factors are nested
(each group of a finer level lies inside one group of every coarser level) and
V is diagonal, the marginal covariance of a top-level group is

    Sigma = D + sum_l s_l sum_{g in level l} 1_g 1_g'

and its inverse follows from one Sherman-Morrison update per group, from the
finest level to the coarsest. Everything the likelihood needs is a Gram matrix
``[X, y, 1]' Sigma^-1 [X, y, 1]`` per group: summed over the children of a
group, then updated for the group's own random intercept. Derivatives are
carried along in forward mode, so the gradient costs a few more passes of the
same O(n) kind.

The variance may differ between the groups of a level (location-scale models:
``s_g = exp(w_g' alpha)``): :func:`gram_and_logdet_groups` takes one variance
per group and, for the derivatives, the derivative of every group's variance
along a few directions (``ds_g / dalpha = s_g w_g``, one direction per scale
coefficient); :func:`gram_and_logdet` is the special case of one variance per
level, with one direction per level.
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
    """

    U: np.ndarray
    d: np.ndarray
    starts: tuple
    term_index: tuple
    perm: np.ndarray
    row_starts: tuple
    group_codes: tuple = ()


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
    n_groups = [len(np.unique(c)) for c in codes]
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
    return NestedDesign(U, d[perm], tuple(starts), term_index, perm, tuple(row_starts), group_codes)


def gram_and_logdet(nd: NestedDesign, s: np.ndarray, gradient: bool):
    """Sum over top-level groups of [X, y, 1]' Sigma^-1 [X, y, 1], and log|Sigma|.

    Parameters
    ----------
    nd : NestedDesign
    s : numpy.ndarray
        Variance of each covariance term (indexed like the design's terms).
    gradient : bool
        Also return the derivatives with respect to every level's variance.

    Returns
    -------
    T : (q, q) array, logdet : float, dT : (L, q, q) or None, dlogdet : (L,) or None
        Derivatives are ordered like ``nd.term_index``.
    """
    variances = [np.full(len(start), float(s[k])) for start, k in zip(nd.starts, nd.term_index)]
    directions = None
    if gradient:
        L = len(nd.starts)
        directions = [np.zeros((len(start), L)) for start in nd.starts]
        for level, D in enumerate(directions):
            D[:, level] = 1.0
    return gram_and_logdet_groups(nd, variances, directions)


def gram_and_logdet_groups(nd: NestedDesign, variances: list, directions: list | None = None):
    """The same sums with one variance per group, and derivatives along given directions.

    Parameters
    ----------
    nd : NestedDesign
    variances : list of numpy.ndarray
        For each level (finest first, as ``nd.starts``), the variance of each of its
        groups in sorted order.
    directions : list of numpy.ndarray, optional
        For each level, an array (n_groups, P): the derivative of every group's
        variance along each of P directions (e.g. the scale coefficients).

    Returns
    -------
    T : (q, q) array, logdet : float, dT : (P, q, q) or None, dlogdet : (P,) or None
        ``dT`` and ``dlogdet`` are the derivatives along the P directions.
    """
    U = nd.U
    n, q = U.shape
    gradient = directions is not None
    P = directions[0].shape[1] if gradient else 0
    # a finest level of one-row groups only adds to the diagonal: absorb it there
    d = nd.d.copy()
    absorbed = len(nd.starts[0]) == n
    if absorbed:
        d = d + variances[0]
    M = U[:, :, None] * U[:, None, :] / d[:, None, None]
    logdet = np.log(d)
    if gradient:
        dM = np.zeros((n, P, q, q))
        dlog = np.zeros((n, P))
        if absorbed:
            rate = directions[0] / d[:, None]
            dM = -M[:, None] * rate[:, :, None, None]
            dlog = rate
    for level, start in enumerate(nd.starts):
        if level == 0 and absorbed:
            continue
        M = np.add.reduceat(M, start, axis=0)
        logdet = np.add.reduceat(logdet, start)
        a = M[:, -1, -1]
        m = M[:, :, -1]
        sk = variances[level]
        denom = 1.0 + sk * a
        c = sk / denom
        mm = m[:, :, None] * m[:, None, :]
        if gradient:
            dM = np.add.reduceat(dM, start, axis=0)
            dlog = np.add.reduceat(dlog, start, axis=0)
            ds = directions[level]
            da = dM[:, :, -1, -1]
            dm = dM[:, :, :, -1]
            dlog += (ds * a[:, None] + sk[:, None] * da) / denom[:, None]
            dc = (ds - sk[:, None] ** 2 * da) / denom[:, None] ** 2
            cross = dm[:, :, :, None] * m[:, None, None, :]
            dM -= dc[:, :, None, None] * mm[:, None] + c[:, None, None, None] * (cross + np.swapaxes(cross, 2, 3))
        M = M - c[:, None, None] * mm
        logdet = logdet + np.log(denom)
    T = M.sum(axis=0)
    if not gradient:
        return T, float(logdet.sum()), None, None
    return T, float(logdet.sum()), dM.sum(axis=0), dlog.sum(axis=0)
