"""Looking up input columns, with errors that name the argument, column and rows.

Every function that takes "a column name or values" resolves it here, so the
messages are the same everywhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import SpecificationError, format_rows


def require_frame(data, argument: str = "data") -> pd.DataFrame:
    """``data`` itself, or an error when it is not a DataFrame."""
    if not isinstance(data, pd.DataFrame):
        raise SpecificationError(f"{argument}: expected a pandas DataFrame, got {type(data).__name__}.")
    return data


def check_columns(data: pd.DataFrame, argument: str, names) -> None:
    """Raise naming ``argument`` and every name in ``names`` that is not a column of ``data``.

    Examples
    --------
    >>> check_columns(pd.DataFrame({"a": [1]}), "vech", ["a", "b"])
    Traceback (most recent call last):
    ...
    bayesmeta.errors.SpecificationError: vech: column 'b' not found in data.
    """
    missing = [c for c in names if not isinstance(c, str) or c not in data.columns]
    if missing:
        what = "column" if len(missing) == 1 else "columns"
        raise SpecificationError(f"{argument}: {what} {', '.join(map(repr, missing))} not found in data.")


def check_arguments(data, **columns) -> None:
    """Check that ``data`` is a DataFrame holding the column given to each argument
    (``None`` values are skipped); the error names the argument."""
    require_frame(data)
    for argument, name in columns.items():
        if name is not None:
            check_columns(data, argument, [name])


def column(data: pd.DataFrame, name, argument: str) -> pd.Series:
    """``data[name]``, or an error naming ``argument`` when there is no such column."""
    check_columns(data, argument, [name])
    return data[name]


def resolve(value, argument: str, data: pd.DataFrame | None) -> tuple[pd.Series, str]:
    """An argument given as a column name of ``data`` or as values (one per row).

    Returns the values and how to cite them in messages (``"w1 (column 'n1')"``
    or ``"w1"``).

    Examples
    --------
    >>> values, what = resolve("x", "weights", pd.DataFrame({"x": [1.0, 2.0]}))
    >>> values.tolist(), what
    ([1.0, 2.0], "weights (column 'x')")
    """
    if isinstance(value, str):
        if data is None:
            raise SpecificationError(f"{argument}: {value!r} is a column name but no data= was given.")
        return column(data, value, argument), f"{argument} (column {value!r})"
    return pd.Series(np.asarray(value).ravel()), argument


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


def numeric_columns(data: pd.DataFrame, names, argument: str) -> np.ndarray:
    """The columns ``names`` as a float array (rows, columns), checked as :func:`numeric` does."""
    check_columns(data, argument, names)
    return np.column_stack([numeric(data[c], argument, f"column {c!r} is") for c in names]) if len(names) else \
        np.zeros((len(data), 0))
