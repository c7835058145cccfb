"""Designs derived from another design's arrays: a subset of its rows, other fixed effects.

Leave-one-out refits (influence diagnostics, Cook's distances), small-study
tests and trim-and-fill refit a model on changed data. Re-encoding the formula
on a new DataFrame would be slow and could encode differently (a factor level
that disappears); instead the new design is made from the arrays of the
fitted one: :func:`subset_design` keeps some rows (renumbering the groups of
every random term), :func:`rebuild` replaces arrays and recomputes what
depends on them (independent blocks, batches, the nested layout), and
:func:`matching_parameterization` gives the parameterisation the new design
needs (its terms count the groups left).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import SpecificationError
from .blocks import build_batches, find_blocks
from .build import Design
from .nested import build_nested
from .parameters import Parameterization
from .terms import TermEncoding


def rebuild(design: Design, **arrays) -> Design:
    """``design`` with some arrays replaced and its blocks, batches and nested layout recomputed.

    Parameters
    ----------
    design : Design
    **arrays
        Fields of :class:`~bayesmeta.design.build.Design` to replace: ``y``, ``X``,
        ``coef_names``, ``V``, ``encodings``, ``row_labels``, ``positions``.

    Returns
    -------
    Design

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmeta as bm
    >>> d = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").design
    >>> sei = np.sqrt(d.V.diagonal())
    >>> rebuild(d, X=np.column_stack([d.X, sei]), coef_names=["Intercept", "sei"]).coef_names
    ['Intercept', 'sei']
    """
    derived = {"block_of_row", "batches", "nested"}
    unknown = set(arrays) - (set(Design.__dataclass_fields__) - derived - {"model_spec", "dropped"})
    if unknown:
        raise TypeError(f"rebuild(): cannot replace {sorted(unknown)}")
    d = replace(design, **arrays)
    # group codes are unique for the standard model's row term, so linking rows by group never joins two rows there
    block_of_row = find_blocks(d.V, d.encodings, d.n, standard=False)
    nested = None
    if d.encodings and all(e.Z is None for e in d.encodings) and all(st.size == 1 for st in d.V.stacks):
        nested = build_nested(d.X, d.y, d.V.diagonal(), [e.codes for e in d.encodings])
    batches = () if nested is not None else build_batches(d.y, d.X, d.V, d.encodings, block_of_row)
    return replace(d, block_of_row=block_of_row, batches=batches, nested=nested)


def subset_encoding(encoding: TermEncoding, keep: np.ndarray) -> TermEncoding:
    """The encoding of a random term on the rows ``keep``: groups left renumbered by first appearance."""
    old = encoding.codes[keep]
    present, first = np.unique(old, return_index=True)
    present = present[np.argsort(first)]
    new_code = np.full(encoding.term.n_groups, -1)
    new_code[present] = np.arange(len(present))
    return replace(encoding, term=replace(encoding.term, n_groups=len(present)), codes=new_code[old],
                   Z=None if encoding.Z is None else encoding.Z[keep],
                   groups=tuple(encoding.groups[g] for g in present))


def positions_kept(n: int, keep) -> np.ndarray:
    """Row positions (sorted, unique) from positions or a boolean mask over ``n`` rows, checked.

    Examples
    --------
    >>> positions_kept(4, [True, False, True, True])
    array([0, 2, 3])
    """
    keep = np.asarray(keep)
    if keep.dtype == bool:
        if keep.shape != (n,):
            raise SpecificationError(f"keep: a boolean mask needs {n} values (one per row used), got {keep.size}.")
        keep = np.flatnonzero(keep)
    elif keep.size and not np.issubdtype(keep.dtype, np.integer):
        raise SpecificationError(f"keep: expected row positions (integers) or a boolean mask, got {keep.dtype}.")
    keep = np.unique(keep.astype(int).ravel())
    if keep.size == 0:
        raise SpecificationError("keep: no rows left.")
    if keep[0] < 0 or keep[-1] >= n:
        raise SpecificationError(f"keep: row positions must be in 0..{n - 1}.")
    return keep


def subset_design(design: Design, keep) -> Design:
    """The design of some of the rows, built from the arrays (the formula is not re-encoded).

    Parameters
    ----------
    design : Design
    keep : array_like of int or bool
        Positions (among the design's rows) of the rows to keep, or a boolean mask.

    Returns
    -------
    Design
        Rows in their original order; the groups of every random term that still
        have rows, renumbered by first appearance (a term's ``n_groups`` counts
        them); V restricted to the rows; X keeps all its columns (check its rank
        before fitting: a moderator may have become constant).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> m = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    >>> d = subset_design(m.design, m.design.encodings[0].codes != 0)  # without the first district
    >>> d.n, [t.n_groups for t in d.terms]
    (52, [10, 52])
    """
    keep = positions_kept(design.n, keep)
    return rebuild(design, y=design.y[keep], X=design.X[keep], V=design.V.subset(keep),
                   encodings=tuple(subset_encoding(e, keep) for e in design.encodings),
                   row_labels=design.row_labels[keep], positions=design.positions[keep])


def matching_parameterization(param: Parameterization, design: Design) -> Parameterization:
    """``param`` with the covariance terms of ``design`` (whose group counts may differ).

    Fixed components and the SD unit are kept. Location-scale models are refused:
    their scale designs are per group and are not subset here.
    """
    if param.has_scale or param.v_scale is not None:
        raise SpecificationError("Refits on changed rows are not available for location-scale models (scale=, "
                                 "V_scale=).")
    if [t.label for t in param.terms] != [t.label for t in design.terms]:
        raise ValueError("matching_parameterization(): the design has other random terms")
    return replace(param, terms=design.terms)
