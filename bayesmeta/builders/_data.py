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
