"""From one row per study with several outcome columns to the long format and its V blocks.

Multivariate data often come wide: one row per study, one column per outcome,
and the within-study (co)variances in further columns. :func:`wide_to_long`
turns them into one row per study and present outcome, plus the list of
per-study sampling covariance blocks that ``MetaModel(..., V=blocks)`` takes.

Two covariance layouts are read:

* ``vech=``: the lower triangle of each study's k x k matrix, column by column
  (mixmeta's order: (1,1), (2,1), ..., (k,1), (2,2), (3,2), ..., (k,k)), one
  data column per entry;
* ``var=`` or ``se=``: k columns of variances or standard errors, with the
  correlation ``cor=`` (a column, a number, or a k x k matrix; default 0).

Missing outcomes are dropped study by study, with their rows and columns of
the block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.columns import check_columns, numeric_columns
from ..errors import MissingDataWarning, SpecificationError, format_rows, warn


@dataclass(frozen=True)
class _Covariance:
    """Each study's full k x k covariance (NaN where missing) and, per entry, the columns it comes from."""

    values: np.ndarray  # (n, k, k)
    positive: np.ndarray  # (n, k): the variance (or SE) of each outcome is positive
    sources: np.ndarray  # (k, k) of str
    used: tuple  # data columns consumed by the layout


def _outcome_columns(outcomes) -> tuple[list, list]:
    if isinstance(outcomes, dict):
        labels, columns = list(outcomes), list(outcomes.values())
    elif isinstance(outcomes, (list, tuple)) and not isinstance(outcomes, str):
        labels, columns = list(outcomes), list(outcomes)
    else:
        raise SpecificationError("outcomes: give a list of effect columns or a dict label -> column.")
    if not labels:
        raise SpecificationError("outcomes: no outcome given.")
    if len(set(labels)) < len(labels) or len(set(columns)) < len(columns):
        raise SpecificationError("outcomes: labels and columns must be distinct.")
    return labels, columns


def _from_vech(data: pd.DataFrame, vech, k: int) -> _Covariance:
    needed = k * (k + 1) // 2
    if len(vech) != needed:
        raise SpecificationError(f"vech: {k} outcomes need k(k+1)/2 = {needed} columns (lower triangle, "
                                 f"column by column); got {len(vech)}.")
    values = numeric_columns(data, vech, "vech")
    i, j = np.tril_indices(k)
    order = np.lexsort((i, j))  # column by column: (1,1), (2,1), ..., (k,1), (2,2), ...
    rows, cols = i[order], j[order]
    full = np.full((len(data), k, k), np.nan)
    full[:, rows, cols] = values
    full[:, cols, rows] = values
    sources = np.empty((k, k), dtype=object)
    sources[rows, cols] = sources[cols, rows] = list(vech)
    diag = np.arange(k)
    return _Covariance(full, full[:, diag, diag] > 0, sources, tuple(vech))


def _correlation(data: pd.DataFrame, cor, k: int) -> tuple[np.ndarray, list, str]:
    """Per-study k x k correlation (n, k, k), the columns used, and how to cite it."""
    n = len(data)
    if isinstance(cor, str):
        r = numeric_columns(data, [cor], "cor")[:, 0]
        bad = np.flatnonzero(np.abs(r) > 1)
        if len(bad):
            raise SpecificationError(f"cor: column {cor!r} is outside [-1, 1] in rows {format_rows(data.index[bad])}.")
        full = np.broadcast_to(r[:, None, None], (n, k, k)).copy()
        used, cite = [cor], f"cor column {cor!r}"
    elif np.ndim(cor) == 0:
        if not abs(float(cor)) <= 1:
            raise SpecificationError(f"cor: {cor} is not a correlation in [-1, 1].")
        full, used, cite = np.full((n, k, k), float(cor)), [], f"cor={cor}"
    else:
        matrix = np.asarray(cor, dtype=float)
        if matrix.shape != (k, k) or not np.allclose(matrix, matrix.T) or not np.all(np.abs(matrix) <= 1):
            raise SpecificationError(f"cor: expected a symmetric {k} x {k} correlation matrix, got shape {matrix.shape}.")
        full, used, cite = np.broadcast_to(matrix, (n, k, k)).copy(), [], "the cor matrix"
    idx = np.arange(k)
    full[:, idx, idx] = 1.0
    return full, used, cite


def _from_scales(data: pd.DataFrame, columns, argument: str, cor, k: int) -> _Covariance:
    if len(columns) != k:
        raise SpecificationError(f"{argument}: expected {k} columns (one per outcome), got {len(columns)}.")
    values = numeric_columns(data, columns, argument)
    positive = values > 0  # NaN compares False, without a warning
    sd = np.where(positive, np.sqrt(np.where(positive, values, 1.0)), np.nan) if argument == "var" else values
    r, cor_used, cor_cite = _correlation(data, cor, k)
    full = sd[:, :, None] * r * sd[:, None, :]
    idx = np.arange(k)
    full[:, idx, idx] = values if argument == "var" else values ** 2
    sources = np.empty((k, k), dtype=object)
    for a in range(k):
        for b in range(k):
            lo, hi = min(a, b), max(a, b)
            sources[a, b] = columns[a] if a == b else f"{columns[lo]}, {columns[hi]} and {cor_cite}"
    return _Covariance(full, positive, sources, tuple(columns) + tuple(cor_used))


def _covariance(data: pd.DataFrame, k: int, vech, var, se, cor) -> _Covariance:
    given = [name for name, value in (("vech", vech), ("var", var), ("se", se)) if value is not None]
    if len(given) != 1:
        raise SpecificationError("wide_to_long: give exactly one covariance layout, vech= or var= or se=; "
                                 f"got {', '.join(given) if given else 'none'}.")
    if vech is not None:
        if cor is not None:
            raise SpecificationError("cor: only used with var= or se=; vech= already holds the covariances.")
        return _from_vech(data, list(vech), k)
    columns, argument = (list(var), "var") if var is not None else (list(se), "se")
    return _from_scales(data, columns, argument, 0.0 if cor is None else cor, k)


def _fail(study, problem: str, columns) -> SpecificationError:
    return SpecificationError(f"wide_to_long: study {study}: {problem} (columns {'; '.join(sorted(set(columns)))}).")


def _study_block(cov: _Covariance, i: int, present: np.ndarray, study, labels: list) -> np.ndarray:
    """The block of study ``i`` over its present outcomes, checked."""
    block = cov.values[i][np.ix_(present, present)]
    names = [labels[j] for j in present]
    no_variance = present[np.isnan(np.diagonal(block))]
    if len(no_variance):
        raise _fail(study, f"missing variances of present outcomes {[labels[j] for j in no_variance]}",
                    [cov.sources[j, j] for j in no_variance])
    not_positive = present[~cov.positive[i, present]]
    if len(not_positive):
        raise _fail(study, "variances must be positive", [cov.sources[j, j] for j in not_positive])
    missing = np.argwhere(np.isnan(block))
    if len(missing):
        raise _fail(study, f"missing covariances of present outcomes {names}",
                    [cov.sources[present[a], present[b]] for a, b in missing])
    try:
        np.linalg.cholesky(block)
    except np.linalg.LinAlgError:
        raise _fail(study, f"the covariance block of outcomes {names} is not positive definite",
                    [cov.sources[a, b] for a in present for b in present]) from None
    return block


def _study_ids(data: pd.DataFrame, id) -> tuple[str, pd.Series]:
    if id is None:
        if "study" in data.columns:
            raise SpecificationError("id: data has a column 'study'; pass id='study' (or another id column).")
        return "study", pd.Series(data.index, name="study")
    check_columns(data, "id", [id])
    ids = data[id]
    if ids.isna().any() or ids.duplicated().any():
        bad = data.index[ids.isna() | ids.duplicated(keep=False)]
        raise SpecificationError(f"id: column {id!r} must identify each row; rows {format_rows(bad)} are missing or repeated.")
    return id, ids.reset_index(drop=True)


def wide_to_long(data: pd.DataFrame, outcomes, *, id: str | None = None, vech=None, var=None, se=None, cor=None,
                 outcome_name: str = "outcome", value_name: str = "y") -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Reshape one-row-per-study multivariate data to long format, with the V block of each study.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study.
    outcomes : list of str or dict
        The effect columns in order (``["PD", "AL"]``), or a dict label -> column
        (``{"SBP": "sbp", "DBP": "dbp"}``).
    id : str, optional
        The study id column. Without it, the long frame gets a column
        ``"study"`` holding the row labels of ``data``.
    vech : list of str, optional
        k(k+1)/2 columns with the lower triangle of each study's covariance
        matrix, column by column: (1,1), (2,1), ..., (k,1), (2,2), ..., (k,k).
    var, se : list of str, optional
        k columns of sampling variances or standard errors (one of the two).
    cor : str, float or array_like, optional
        With ``var``/``se``: the within-study correlation, as a column name, a
        number for every pair, or a k x k matrix. Default 0 (independent).
    outcome_name, value_name : str
        Names of the outcome and effect columns of the long frame.

    Returns
    -------
    long : pandas.DataFrame
        One row per study and present outcome (study order, then outcome
        order): the id column, ``outcome_name`` (an ordered Categorical of the
        labels), ``value_name``, and the other columns of ``data`` repeated
        per row.
    blocks : list of numpy.ndarray
        One covariance block per study, aligned with the rows of ``long``.

    Raises
    ------
    SpecificationError
        For unknown columns, inconsistent layouts, missing (co)variances of a
        present outcome, or a block that is not positive definite (naming the
        study and columns).

    Warns
    -----
    MissingDataWarning
        When studies with no outcome at all are dropped (naming them).

    Examples
    --------
    >>> import pandas as pd
    >>> wide = pd.DataFrame({"trial": [1, 2], "PD": [0.47, 0.20], "AL": [-0.32, None],
    ...                      "v_PD": [0.0075, 0.0057], "c": [0.0030, None], "v_AL": [0.0077, None]})
    >>> long, V = wide_to_long(wide, ["PD", "AL"], id="trial", vech=["v_PD", "c", "v_AL"])
    >>> long
       trial outcome     y
    0      1      PD  0.47
    1      1      AL -0.32
    2      2      PD  0.20
    >>> V[0]
    array([[0.0075, 0.003 ],
           [0.003 , 0.0077]])
    """
    labels, y_columns = _outcome_columns(outcomes)
    k = len(labels)
    y = numeric_columns(data, y_columns, "outcomes")
    cov = _covariance(data, k, vech, var, se, cor)
    id_name, ids = _study_ids(data, id)
    carried = [c for c in data.columns if c not in set(y_columns) | set(cov.used) | {id_name}]
    clash = {outcome_name, value_name} & (set(carried) | {id_name})
    if clash or outcome_name == value_name:
        raise SpecificationError(f"outcome_name/value_name: {sorted(clash) or [value_name]} already used; choose other names.")
    present = ~np.isnan(y)
    empty = np.flatnonzero(~present.any(axis=1))
    if len(empty):
        warn(f"wide_to_long: dropped {len(empty)} studies without any outcome: "
                      f"{format_rows(ids.iloc[empty])}.", MissingDataWarning)
    blocks = [_study_block(cov, i, np.flatnonzero(present[i]), ids.iloc[i], labels)
              for i in range(len(data)) if present[i].any()]
    study, outcome = np.nonzero(present)
    long = pd.DataFrame({
        id_name: ids.iloc[study].reset_index(drop=True),
        outcome_name: pd.Categorical.from_codes(outcome, categories=labels, ordered=True),
        value_name: y[study, outcome],
    })
    rest = data[carried].iloc[study].reset_index(drop=True)
    return pd.concat([long, rest], axis=1), blocks
