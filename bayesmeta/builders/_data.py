"""Input checks shared by the builders."""

from __future__ import annotations

import re

import pandas as pd

from ..design import _select_rows
from ..errors import SpecificationError


def check_columns(data: pd.DataFrame, **columns) -> None:
    """Raise naming the argument whose column is not in ``data`` (``None`` values are skipped)."""
    if not isinstance(data, pd.DataFrame):
        raise SpecificationError(f"data: expected a pandas DataFrame, got {type(data).__name__}.")
    for argument, column in columns.items():
        if column is not None and column not in data.columns:
            raise SpecificationError(f"{argument}: column {column!r} not found in data.")


def complete(data: pd.DataFrame, columns: list[str], na_action: str) -> pd.DataFrame:
    """The rows of ``data`` without missing values in ``columns``; the others are dropped
    with a warning naming them (or refused with ``na_action="raise"``)."""
    if na_action not in ("drop", "raise"):
        raise SpecificationError(f"na_action: expected 'drop' or 'raise', got {na_action!r}.")
    return data.iloc[_select_rows(data, [c for c in columns if c is not None], None, na_action)]


def identifier(*parts, taken=()) -> str:
    """A formula-safe column name from ``parts``, not among ``taken``.

    Examples
    --------
    >>> identifier("w", "C", "A-C-D")
    'w_C_A_C_D'
    """
    name = "_".join(re.sub(r"\W+", "_", str(p)).strip("_") for p in parts)
    while name in taken:
        name += "_"
    return name


def by_first_appearance(data: pd.DataFrame, column: str) -> pd.DataFrame:
    """Rows grouped by ``column``, groups in order of first appearance, rows within a
    group in data order (a stable sort).

    Examples
    --------
    >>> by_first_appearance(pd.DataFrame({"s": ["b", "a", "b"], "x": [1, 2, 3]}), "s")["x"].tolist()
    [1, 3, 2]
    """
    rank = {value: i for i, value in enumerate(pd.unique(data[column]))}
    return data.sort_values(column, key=lambda c: c.map(rank), kind="stable")


def moderator_terms(mods: str) -> str:
    """The right-hand side of a one-sided formula: ``"~ x + z"`` -> ``"x + z"``.

    Examples
    --------
    >>> moderator_terms("~ year")
    'year'
    """
    if not isinstance(mods, str):
        raise SpecificationError(f"mods: expected a formula such as '~ x', got {type(mods).__name__}.")
    return mods.strip().lstrip("~").strip()


def extra_terms(mods: str | None) -> str:
    """Moderators as terms to append to a formula (``" + x + z"``), or ``""`` for None."""
    return "" if mods is None else " + " + moderator_terms(mods)
