"""Input checks and formula pieces shared by the builders."""

from __future__ import annotations

import re

import pandas as pd

from ..design.rows import select_rows
from ..errors import SpecificationError


def complete(data: pd.DataFrame, columns: list[str], na_action: str) -> pd.DataFrame:
    """The rows of ``data`` without missing values in ``columns``; the others are dropped
    with a warning naming them (or refused with ``na_action="raise"``)."""
    return data.iloc[select_rows(data, columns, None, na_action)]


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
