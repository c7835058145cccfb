"""From data to frozen arrays: the only place where a DataFrame becomes numbers.

:func:`build_design` selects the rows to use (missing values dropped with a
warning naming them, or an error), encodes the fixed effects with formulaic,
the sampling covariance as blocks, each random term as per-row group codes and
random-effect designs, finds the independent blocks of rows and stacks them into
batches for the likelihood (or lays the rows out for the nested closed form).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DenseBlockWarning, SpecificationError, format_rows, warn
from ..spec.formulas import required_columns
from ..spec.random_terms import SlopeTerm
from .alignment import sampling_covariance
from .blocks import build_batches, find_blocks
from .column_types import check_column_types, check_unique_columns, drop_unused_levels
from .columns import check_columns, require_frame
from .encode import encode, encode_new
from .nested import NestedDesign, build_nested
from .rows import check_rank, select_rows
from .sampling_covariance import BlockDiagonal, check_block_diagonal
from .terms import encode_terms

#: Blocks larger than this (evaluated with dense matrices) trigger a DenseBlockWarning.
DENSE_BLOCK_WARNING = 2000


@dataclass(frozen=True)
class Design:
    """Frozen arrays of a model, ready for any engine.

    Attributes
    ----------
    y : numpy.ndarray (n,)
    X : numpy.ndarray (n, p)
    coef_names : list of str
    row_labels : numpy.ndarray
        Index labels (of the user's data) of the rows used, in order.
    positions : numpy.ndarray
        Positions (in the user's data) of the rows used.
    dropped : numpy.ndarray
        Index labels of rows dropped for missing values.
    V : BlockDiagonal
    encodings : tuple of TermEncoding
    block_of_row : numpy.ndarray (n,)
        Independent block each row belongs to.
    batches : tuple of Batch
    model_spec : formulaic.ModelSpec
        Re-encodes new data for prediction.
    nested : NestedDesign or None
        Set when the O(n) closed form for nested random intercepts applies.
    """

    y: np.ndarray
    X: np.ndarray
    coef_names: list
    row_labels: np.ndarray
    positions: np.ndarray
    dropped: np.ndarray
    V: BlockDiagonal
    encodings: tuple
    block_of_row: np.ndarray
    batches: tuple
    model_spec: object
    nested: NestedDesign | None = None

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def terms(self) -> tuple:
        return tuple(e.term for e in self.encodings)

    @property
    def n_blocks(self) -> int:
        return int(self.block_of_row.max()) + 1 if self.n else 0

    @property
    def logdet_xtx(self) -> float:
        return float(np.linalg.slogdet(self.X.T @ self.X)[1])

    def new_rows(self, newdata: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
        """Fixed-effects design (n, p) and per-term random-effect designs of new rows.

        Columns are re-encoded exactly as for the data the model was built on.
        """
        require_frame(newdata, "newdata")
        needed = set(self.model_spec.rhs.required_variables).union(*(enc.columns for enc in self.encodings))
        check_columns(newdata, "newdata", sorted(needed))
        X = encode_new(self.model_spec.rhs, newdata, "newdata")
        return X, [enc.new_z(newdata) for enc in self.encodings]


def _used_columns(formula: str, vi, terms, data: pd.DataFrame, trusted: bool) -> list[str]:
    cols = required_columns(formula, "formula", data.columns, trusted)
    if isinstance(vi, str):
        cols.add(vi)
    for t in terms:
        cols.update(t.columns)
        if isinstance(t, SlopeTerm):
            cols.update(required_columns("~ " + t.lhs, "random", data.columns, trusted))
    return sorted(cols)


def _check_finite(values: np.ndarray, index, what: str) -> None:
    finite = np.isfinite(values) if values.ndim == 1 else np.isfinite(values).all(axis=1)
    if not finite.all():
        raise SpecificationError(f"formula: {what} not finite in rows {format_rows(index[~finite])}.")


def build_design(formula: str, data: pd.DataFrame, *, vi=None, V=None, terms=None,
                 na_action: str = "drop", extra_columns: dict | None = None, trusted: bool = False,
                 closed_form: bool = True) -> Design:
    """Encode a model specification on data.

    Parameters
    ----------
    formula : str
        Fixed-effects formula with the outcome on the left, e.g. ``"yi ~ 1 + x"``.
    data : pandas.DataFrame
    vi : str or array_like, optional
        Sampling variances (column name or values).
    V : array_like, scipy.sparse matrix or list of blocks, optional
        Sampling covariance matrix over the rows of ``data``.
    terms : tuple of random terms, or None for the standard model's row-level effect
    na_action : {"drop", "raise"}
    extra_columns : dict, optional
        Further columns the model needs (argument -> column names, e.g. those of a
        scale formula): checked, and rows missing them dropped.
    trusted : bool
        Skip the check that formulas run no code (:func:`bayesmeta.spec.formulas.check_formula`).
    closed_form : bool
        Use the nested closed form where it applies; False keeps the batched blocks
        (models whose V is scaled by parameters, ``V_scale=``).

    Returns
    -------
    Design
    """
    require_frame(data)
    if na_action not in ("drop", "raise"):
        raise SpecificationError(f"na_action: expected 'drop' or 'raise', got {na_action!r}.")
    if (vi is None) == (V is None):
        raise SpecificationError("Give exactly one of vi= (sampling variances) or V= (sampling covariance matrix).")
    if "~" not in formula or not formula.split("~")[0].strip():
        raise SpecificationError(f"formula: {formula!r} needs an outcome on the left of '~', as in 'yi ~ 1'.")
    extra = dict(extra_columns or {})
    for argument, names in extra.items():
        check_columns(data, argument, sorted(names))
    columns = _used_columns(formula, vi, terms or (), data, trusted)
    check_columns(data, "formula/random/vi", columns)
    columns = sorted(set(columns).union(*extra.values()))
    check_unique_columns(data, columns)  # issue 16: types checked, V aligned by label, unused levels dropped
    check_column_types(data, formula)
    v_all, argument = sampling_covariance(data, vi, V, terms)
    keep = select_rows(data, columns, v_all.diagonal(), na_action)
    if len(keep) == 0:
        raise SpecificationError("data: no complete rows left to fit.")
    used = drop_unused_levels(data.iloc[keep], columns)
    Vb = v_all.subset(keep)
    check_block_diagonal(Vb, used.index, argument, require_pd=terms is not None and len(terms) == 0)
    mm = encode(formula, used)
    y = np.asarray(mm.lhs, dtype=float).ravel()
    X = np.asarray(mm.rhs, dtype=float)
    names = list(mm.rhs.columns)
    _check_finite(y, used.index, "the outcome is")
    _check_finite(X, used.index, "the fixed-effects design is")
    if X.shape[1] == 0:
        raise SpecificationError("formula: the model has no fixed effects.")
    check_rank(X, names, "formula", "the fixed effects are")
    encodings = encode_terms(terms, used)
    block_of_row = find_blocks(Vb, encodings, len(y), standard=terms is None)
    nested = None
    if closed_form and encodings and all(e.Z is None for e in encodings) and all(st.size == 1 for st in Vb.stacks):
        nested = build_nested(X, y, Vb.diagonal(), [e.codes for e in encodings])
    largest = int(np.bincount(block_of_row).max())
    if nested is None and largest > DENSE_BLOCK_WARNING:
        warn(
            f"The random terms and V join {largest} rows into one block (crossed random effects or a dense V); "
            f"its likelihood uses dense {largest} x {largest} matrices, which is slow for large blocks.",
            DenseBlockWarning)
    batches = () if nested is not None else build_batches(y, X, Vb, encodings, block_of_row)
    unused = np.ones(len(data), bool)
    unused[keep] = False
    dropped = data.index[np.flatnonzero(unused)].to_numpy()
    return Design(y, X, names, used.index.to_numpy(), keep, dropped, Vb, encodings, block_of_row, batches,
                  mm.model_spec, nested)
