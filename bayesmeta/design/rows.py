"""Which rows a model uses, and whether its design matrices have full column rank."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import MissingDataWarning, SpecificationError, format_rows, warn


def select_rows(data: pd.DataFrame, columns, vdiag: np.ndarray | None, na_action: str) -> np.ndarray:
    """Positions of the rows without missing values in ``columns`` (and in ``vdiag``).

    The others are dropped with a :class:`~bayesmeta.errors.MissingDataWarning`
    that counts and names them, or refused with ``na_action="raise"``.
    """
    if na_action not in ("drop", "raise"):
        raise SpecificationError(f"na_action: expected 'drop' or 'raise', got {na_action!r}.")
    columns = [c for c in columns if c is not None]
    missing = data[columns].isna().any(axis=1).to_numpy().copy()
    if vdiag is not None:
        missing |= np.isnan(vdiag)
    if missing.any():
        labels = data.index[missing]
        bad_cols = [c for c in columns if data.loc[missing, c].isna().any()]
        where = f"columns {', '.join(map(repr, bad_cols))}" if bad_cols else "their rows of V (or vi)"
        msg = f"{missing.sum()} row(s) with missing values in {where}: rows {format_rows(labels)}"
        if na_action == "raise":
            raise SpecificationError(msg + " (na_action='raise').")
        warn(msg + " were dropped.", MissingDataWarning)
    return np.flatnonzero(~missing)


def redundant_columns(M: np.ndarray, names: list[str]) -> list[str]:
    """Names of the columns that are linear combinations of the columns before them.

    Examples
    --------
    >>> redundant_columns(np.array([[1.0, 2.0, 0.0], [1.0, 2.0, 1.0]]), ["a", "b", "c"])
    ['b']
    """
    kept, redundant = [], []
    for j in range(M.shape[1]):
        col = M[:, j]
        norm = np.linalg.norm(col)
        if kept:
            basis = M[:, kept]
            coef, *_ = np.linalg.lstsq(basis, col, rcond=None)
            col = col - basis @ coef
        if norm == 0 or np.linalg.norm(col) <= 1e-9 * max(norm, 1.0):
            redundant.append(names[j])
        else:
            kept.append(j)
    return redundant


def check_rank(M: np.ndarray, names: list[str], where: str, what: str) -> None:
    """Raise naming ``where`` and the redundant columns when ``M`` is rank deficient."""
    redundant = redundant_columns(M, names)
    if redundant:
        raise SpecificationError(f"{where}: {what} rank deficient; redundant column(s): "
                                 + ", ".join(map(repr, redundant)) + ".")
