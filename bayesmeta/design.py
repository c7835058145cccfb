"""From data to frozen arrays: the only place where a DataFrame becomes numbers.

:func:`build_design` selects the rows to use (missing values dropped with a
warning naming them, or an error), encodes the fixed effects with formulaic,
the sampling covariance as blocks, each random term as per-row group codes and
random-effect designs, finds the independent blocks of rows and stacks them into
batches for the likelihood.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import Formula, model_matrix
from scipy.sparse.csgraph import connected_components

from . import splines  # noqa: F401  (registers the ns() transform with formulaic)
from .errors import DenseBlockWarning, MissingDataWarning, SpecificationError, format_rows
from .formula import GroupedTerm, NestedTerm, SlopeTerm
from .likelihood import Batch, Evaluation, evaluate, evaluate_nested, evaluate_nested_groups
from .nested import NestedDesign, build_nested
from .parameters import CovarianceTerm
from .scale import encode_scale, requested, resolve_levels, scale_columns
from .structures import get_structure
from .vcov import BlockDiagonal, as_block_diagonal, check_block_diagonal, from_variances

#: Name of the standard model's row-level random effect.
ROW_TERM = "row"
#: Blocks larger than this (evaluated with dense matrices) trigger a DenseBlockWarning.
DENSE_BLOCK_WARNING = 2000


@dataclass(frozen=True)
class TermEncoding:
    """Per-row encoding of one covariance term.

    Attributes
    ----------
    term : CovarianceTerm
    codes : numpy.ndarray (n,)
        Group of every row, numbered by first appearance.
    Z : numpy.ndarray (n, q) or None
        Random-effect design (None for a random intercept).
    groups : tuple of str
        Name of every group, indexed by code (e.g. ``"3/12"`` for study 12 of district 3).
    inner : str or None
        Column whose levels index the effects of an ``inner | outer`` term.
    z_spec : formulaic.ModelSpec or None
        Re-encodes the slope design of a ``1 + x | outer`` term on new data.
    """

    term: CovarianceTerm
    codes: np.ndarray
    Z: np.ndarray | None
    groups: tuple
    inner: str | None = None
    z_spec: object = None

    def new_z(self, data: pd.DataFrame) -> np.ndarray:
        """Random-effect design (n, q) of new rows, each in a new group of this term."""
        if self.inner is not None:
            values = data[self.inner].astype(str).to_numpy()
            unknown = sorted(set(values) - set(self.term.levels))
            if unknown:
                raise SpecificationError(f"newdata: column {self.inner!r} has level(s) {unknown} not in the "
                                         f"model (levels: {list(self.term.levels)}).")
            return (values[:, None] == np.array(self.term.levels)[None, :]).astype(float)
        if self.z_spec is not None:
            return np.asarray(self.z_spec.get_model_matrix(data, na_action="raise"), dtype=float)
        return np.ones((len(data), 1))


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
    scales : tuple
        Location-scale models: per covariance term, its
        :class:`~bayesmeta.scale.ScaleDesign` or None (empty without scale models).
    """

    y: np.ndarray
    X: np.ndarray
    coef_names: list
    row_labels: np.ndarray
    dropped: np.ndarray
    V: BlockDiagonal
    encodings: tuple
    block_of_row: np.ndarray
    batches: tuple
    model_spec: object
    nested: NestedDesign | None = None
    scales: tuple = ()

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

        Every new row is taken to belong to new groups of every random term (a
        new study, in a new cluster). Columns are re-encoded exactly as for the
        data the model was built on.
        """
        if not isinstance(newdata, pd.DataFrame):
            raise SpecificationError(f"newdata: expected a pandas DataFrame, got {type(newdata).__name__}.")
        needed = set(self.model_spec.rhs.required_variables)
        for enc in self.encodings:
            if enc.inner is not None:
                needed.add(enc.inner)
            elif enc.z_spec is not None:
                needed |= set(enc.z_spec.required_variables)
        _check_columns(newdata, needed, "newdata")
        X = encode_new(self.model_spec.rhs, newdata, "newdata")
        return X, [enc.new_z(newdata) for enc in self.encodings]

    def evaluate(self, G: list[np.ndarray], reml: bool, gradient: bool = False,
                 logdet_xtx: float | None = None) -> Evaluation:
        """Profiled (restricted) log-likelihood at random-effect covariances ``G``.

        Uses the closed form for nested random intercepts when it applies, the
        batched block computation otherwise (see :mod:`bayesmeta.likelihood`).
        """
        if logdet_xtx is None:
            logdet_xtx = self.logdet_xtx if reml else 0.0
        if self.nested is not None:
            return evaluate_nested(self.nested, G, self.n, self.p, logdet_xtx, reml, gradient)
        return evaluate(list(self.batches), G, self.n, self.p, logdet_xtx, reml, gradient)

    def evaluate_groups(self, variances: list[np.ndarray], reml: bool, jacobians: list[np.ndarray] | None = None,
                        logdet_xtx: float | None = None) -> Evaluation:
        """Profiled (restricted) log-likelihood with one variance per group of every term.

        For location-scale models (which always have the nested closed form).
        ``jacobians`` (per term, (n_groups, P)) ask for the gradient along P
        parameters, returned as the evaluation's ``dtheta``.
        """
        if logdet_xtx is None:
            logdet_xtx = self.logdet_xtx if reml else 0.0
        return evaluate_nested_groups(self.nested, variances, self.n, self.p, logdet_xtx, reml, jacobians)


def encode_new(spec, newdata: pd.DataFrame, where: str) -> np.ndarray:
    """Encode new rows with a formulaic ModelSpec exactly as the data it was built on.

    Raises
    ------
    SpecificationError
        For missing columns, factor levels the model has not seen, or missing values.
    """
    if not isinstance(newdata, pd.DataFrame):
        raise SpecificationError(f"newdata: expected a pandas DataFrame, got {type(newdata).__name__}.")
    _check_columns(newdata, set(spec.required_variables), where)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X = np.asarray(spec.get_model_matrix(newdata, na_action="ignore"), dtype=float)
    unseen = [w for w in caught if type(w.message).__name__ == "DataMismatchWarning"]
    if unseen:  # formulaic would code a level it has not seen as a row of zeros or NaN
        levels = re.search(r"\{.*\}", str(unseen[0].message))
        raise SpecificationError(f"{where}: factor level(s) {levels.group(0) if levels else ''} not in the data "
                                 "the model was built on.")
    if not np.all(np.isfinite(X)):
        bad = newdata.index[~np.isfinite(X).all(axis=1)]
        raise SpecificationError(f"{where}: missing values or factor levels not in the model in rows "
                                 f"{format_rows(bad)}.")
    return X


def _formula_columns(formula: str) -> set[str]:
    return set(Formula(formula).required_variables)


def _check_columns(data: pd.DataFrame, columns, where: str) -> None:
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise SpecificationError(f"{where}: unknown column(s) {', '.join(map(repr, sorted(missing)))} in data.")


def _used_columns(formula: str, vi, terms, scale=None) -> list[str]:
    cols = _formula_columns(formula)
    if isinstance(vi, str):
        cols.add(vi)
    for t in terms:
        cols.update(t.columns)
        if isinstance(t, SlopeTerm):
            cols.update(_formula_columns("~ " + t.lhs))
    for key, scale_formula in requested(scale):
        cols.update(scale_columns(scale_formula, "scale" if key is None else f"scale[{key!r}]"))
    return sorted(cols)


def _encode_scales(scale, encodings, data: pd.DataFrame) -> tuple:
    """Per covariance term, the ScaleDesign of its variance or None (empty tuple without scale models)."""
    levels = resolve_levels(scale, encodings)
    if not levels:
        return ()
    return tuple(encode_scale(levels[k], data, enc.codes, enc.groups, enc.term.label) if k in levels else None
                 for k, enc in enumerate(encodings))


def _select_rows(data, columns, vdiag, na_action) -> np.ndarray:
    """Positions of complete rows; warn about (or refuse) the others."""
    missing = data[columns].isna().any(axis=1).to_numpy().copy()
    if vdiag is not None:
        missing |= np.isnan(vdiag)
    if missing.any():
        labels = data.index[missing]
        bad_cols = [c for c in columns if data.loc[missing, c].isna().any()]
        where = f"columns {', '.join(map(repr, bad_cols))}" if bad_cols else "the diagonal of V"
        msg = f"{missing.sum()} row(s) with missing values in {where}: rows {format_rows(labels)}"
        if na_action == "raise":
            raise SpecificationError(msg + " (na_action='raise').")
        warnings.warn(msg + " were dropped.", MissingDataWarning, stacklevel=4)
    return np.flatnonzero(~missing)


def _check_rank(X: np.ndarray, names: list[str]) -> None:
    """Raise naming each column that is a linear combination of the columns before it."""
    if X.shape[1] == 0:
        raise SpecificationError("formula: the model has no fixed effects.")
    kept, redundant = [], []
    for j in range(X.shape[1]):
        col = X[:, j]
        norm = np.linalg.norm(col)
        if kept:
            basis = X[:, kept]
            coef, *_ = np.linalg.lstsq(basis, col, rcond=None)
            col = col - basis @ coef
        if norm == 0 or np.linalg.norm(col) <= 1e-9 * max(norm, 1.0):
            redundant.append(names[j])
        else:
            kept.append(j)
    if redundant:
        raise SpecificationError(
            "formula: the fixed effects are rank deficient; redundant column(s): "
            + ", ".join(map(repr, redundant)) + "."
        )


def _levels(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna())
        return [c for c in values.cat.categories if c in present]
    return sorted(pd.unique(values.dropna()))


def _codes(frame: pd.DataFrame) -> tuple[np.ndarray, int, tuple]:
    """Group codes by first appearance, their number and the groups' names."""
    codes = frame.groupby(list(frame.columns), sort=False, dropna=False).ngroup().to_numpy()
    _, first = np.unique(codes, return_index=True)
    names = tuple("/".join(map(str, values)) for values in frame.to_numpy()[first])
    return codes, len(first), names


def _encode_terms(terms, data: pd.DataFrame) -> tuple[TermEncoding, ...]:
    n = len(data)
    if terms is None:
        term = CovarianceTerm(ROW_TERM, "tau2", get_structure("ID"), ("intercept",), n)
        return (TermEncoding(term, np.arange(n), None, tuple(map(str, data.index))),)
    encodings = []
    structured = iter(["tau2", "gamma2"])
    for t in terms:
        if isinstance(t, NestedTerm):
            for depth in range(1, len(t.levels) + 1):
                codes, n_groups, groups = _codes(data[list(t.levels[:depth])])
                label = "/".join(t.levels[:depth])
                term = CovarianceTerm(label, "sigma2", get_structure("ID"), ("intercept",), n_groups)
                encodings.append(TermEncoding(term, codes, None, groups))
            continue
        family = next(structured)
        codes, n_groups, groups = _codes(data[[t.outer]])
        if isinstance(t, GroupedTerm):
            levels = _levels(data[t.inner])
            index = {lv: i for i, lv in enumerate(levels)}
            Z = np.zeros((n, len(levels)))
            Z[np.arange(n), [index[v] for v in data[t.inner]]] = 1.0
            label = f"{t.inner} | {t.outer}"
            names = tuple(str(lv) for lv in levels)
            extra = {"inner": t.inner}
        else:
            mm = model_matrix("~ " + t.lhs, data, na_action="raise")
            Z = np.asarray(mm, dtype=float)
            names = tuple(mm.columns)
            label = f"{t.lhs} | {t.outer}"
            extra = {"z_spec": mm.model_spec}
        structure = get_structure(t.struct)
        if isinstance(t, GroupedTerm) and structure.correlation != "none" and len(names) < 2:
            raise SpecificationError(
                f"struct: {t.struct} needs at least two levels of {t.inner!r} in {label!r}; found {len(names)}."
            )
        term = CovarianceTerm(label, family, structure, names, n_groups)
        encodings.append(TermEncoding(term, codes, Z, groups, **extra))
    return tuple(encodings)


def _find_blocks(V: BlockDiagonal, encodings, n: int, standard: bool) -> np.ndarray:
    """Label rows by independent block: connected components of V and of each term's groups."""
    heads, tails = [V.edges()[0]], [V.edges()[1]]
    for enc in encodings:
        if standard and enc.term.label == ROW_TERM:
            continue
        order = np.argsort(enc.codes, kind="stable")
        same = enc.codes[order][1:] == enc.codes[order][:-1]
        heads.append(order[:-1][same])
        tails.append(order[1:][same])
    h, t = np.concatenate(heads), np.concatenate(tails)
    graph = sp.coo_matrix((np.ones(len(h)), (h, t)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # renumber blocks by first row so that block order follows the data
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), int)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[labels]


def padded_size(m: int) -> int:
    """Common size to which a block of m rows is padded (wasting at most ~25%)."""
    if m <= 8:
        return m
    step = 2 ** (int(np.floor(np.log2(m))) - 2)
    return int(np.ceil(m / step) * step)


def _build_batches(y, X, V: BlockDiagonal, encodings, block_of_row) -> tuple[Batch, ...]:
    n = len(y)
    order = np.argsort(block_of_row, kind="stable")
    sizes = np.bincount(block_of_row)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    pos_in_block = np.empty(n, int)
    pos_in_block[order] = np.arange(n) - starts[block_of_row[order]]
    padded = np.array([padded_size(m) for m in sizes])
    batches = []
    for m in np.unique(padded):
        blocks = np.flatnonzero(padded == m)
        B = len(blocks)
        slot = np.full(len(sizes), -1)
        slot[blocks] = np.arange(B)
        rows = np.full((B, m), -1)
        in_batch = np.flatnonzero(slot[block_of_row] >= 0)
        b_idx, p_idx = slot[block_of_row[in_batch]], pos_in_block[in_batch]
        rows[b_idx, p_idx] = in_batch
        real = rows >= 0
        safe = np.where(real, rows, 0)
        yb = np.where(real, y[safe], 0.0)
        Xb = np.where(real[:, :, None], X[safe], 0.0)
        Vb = np.zeros((B, m, m))
        Vb[:, np.arange(m), np.arange(m)] = 1.0  # padding rows keep variance 1
        for stack in V.stacks:
            b = slot[block_of_row[stack.rows[:, 0]]]
            mine = b >= 0
            pr = pos_in_block[stack.rows[mine]]
            Vb[b[mine][:, None, None], pr[:, :, None], pr[:, None, :]] = stack.mats[mine]
        Zs, Ms = [], []
        for enc in encodings:
            codes = np.where(real, enc.codes[safe], -1)
            M = (codes[:, :, None] == codes[:, None, :]) & real[:, :, None] & real[:, None, :]
            Ms.append(M.astype(float))
            Zs.append(None if enc.Z is None else np.where(real[:, :, None], enc.Z[safe], 0.0))
        batches.append(Batch(rows, yb, Xb, Vb, tuple(Zs), tuple(Ms)))
    return tuple(batches)


def build_design(formula: str, data: pd.DataFrame, *, vi=None, V=None, terms=None,
                 na_action: str = "drop", scale=None) -> Design:
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
    scale : str or dict, optional
        Scale formulas of location-scale models (see :mod:`bayesmeta.scale`).

    Returns
    -------
    Design
    """
    if not isinstance(data, pd.DataFrame):
        raise SpecificationError(f"data: expected a pandas DataFrame, got {type(data).__name__}.")
    if na_action not in ("drop", "raise"):
        raise SpecificationError(f"na_action: expected 'drop' or 'raise', got {na_action!r}.")
    if (vi is None) == (V is None):
        raise SpecificationError("Give exactly one of vi= (sampling variances) or V= (sampling covariance matrix).")
    if "~" not in formula or not formula.split("~")[0].strip():
        raise SpecificationError(f"formula: {formula!r} needs an outcome on the left of '~', as in 'yi ~ 1'.")
    n_all = len(data)
    for key, scale_formula in requested(scale):
        where = "scale" if key is None else f"scale[{key!r}]"
        _check_columns(data, scale_columns(scale_formula, where), where)
    columns = _used_columns(formula, vi, terms or (), scale)
    _check_columns(data, columns, "formula/random/vi")
    if isinstance(vi, str):
        v_all = from_variances(pd.to_numeric(data[vi], errors="coerce").to_numpy(float))
        argument = "vi"
    elif vi is not None:
        values = np.asarray(vi, dtype=float).ravel()
        if len(values) != n_all:
            raise SpecificationError(f"vi: expected {n_all} sampling variances, got {len(values)}.")
        v_all = from_variances(values)
        argument = "vi"
    else:
        v_all = as_block_diagonal(V, n_all)
        argument = "V"
    keep = _select_rows(data, columns, v_all.diagonal(), na_action)
    if len(keep) == 0:
        raise SpecificationError("data: no complete rows left to fit.")
    used = data.iloc[keep]
    Vb = v_all.subset(keep)
    check_block_diagonal(Vb, used.index, argument, require_pd=terms is not None and len(terms) == 0)
    mm = model_matrix(formula, used, na_action="raise")
    y = np.asarray(mm.lhs, dtype=float).ravel()
    X = np.asarray(mm.rhs, dtype=float)
    names = list(mm.rhs.columns)
    if not np.all(np.isfinite(y)):
        bad = used.index[~np.isfinite(y)]
        raise SpecificationError(f"formula: the outcome is not finite in rows {format_rows(bad)}.")
    if not np.all(np.isfinite(X)):
        bad = used.index[~np.isfinite(X).all(axis=1)]
        raise SpecificationError(f"formula: the fixed-effects design is not finite in rows {format_rows(bad)}.")
    _check_rank(X, names)
    encodings = _encode_terms(terms, used)
    block_of_row = _find_blocks(Vb, encodings, len(y), standard=terms is None)
    scales = _encode_scales(scale, encodings, used)
    nested = None
    if encodings and all(e.Z is None for e in encodings) and all(st.size == 1 for st in Vb.stacks):
        nested = build_nested(X, y, Vb.diagonal(), [e.codes for e in encodings])
    if scales and nested is None:
        problem = ("a V with covariances between rows" if any(st.size > 1 for st in Vb.stacks)
                   else "random terms that are not nested random intercepts")
        raise SpecificationError(
            "scale: location-scale models need sampling variances (vi=, or a diagonal V) and random intercepts "
            f"whose levels are nested ('~ 1 | a/b'); this model has {problem}.")
    largest = int(np.bincount(block_of_row).max())
    if nested is None and largest > DENSE_BLOCK_WARNING:
        warnings.warn(
            f"The random terms and V join {largest} rows into one block (crossed random effects or a dense V); "
            f"its likelihood uses dense {largest} x {largest} matrices, which is slow for large blocks.",
            DenseBlockWarning, stacklevel=3)
    batches = () if nested is not None else _build_batches(y, X, Vb, encodings, block_of_row)
    return Design(y, X, names, used.index.to_numpy(), data.index[np.setdiff1d(np.arange(n_all), keep)].to_numpy(),
                  Vb, encodings, block_of_row, batches, mm.model_spec, nested, scales)
