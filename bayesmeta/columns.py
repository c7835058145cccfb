"""Looking up input columns, with errors that name the argument, column and rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import SpecificationError, format_rows


def column(data: pd.DataFrame, name, argument: str) -> pd.Series:
    """``data[name]``, or an error naming ``argument`` when there is no such column."""
    if not isinstance(name, str) or name not in data.columns:
        raise SpecificationError(f"{argument}: column {name!r} not found in data.")
    return data[name]


def numeric(values: pd.Series, argument: str, what: str | None = None) -> np.ndarray:
    """Float values; missing values stay NaN, anything else non-numeric is an error naming its rows.

    Examples
    --------
    >>> numeric(pd.Series([1, None, 3]), "ni").tolist()
    [1.0, nan, 3.0]
    """
    converted = pd.to_numeric(values, errors="coerce").to_numpy(float)
    bad = np.flatnonzero(np.isnan(converted) & values.notna().to_numpy())
    if len(bad):
        raise SpecificationError(f"{argument}: {what or 'values'} not numeric in rows {format_rows(values.index[bad])}.")
    return converted
