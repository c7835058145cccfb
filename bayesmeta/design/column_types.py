"""The types of the columns a model uses: checked before formulaic reads them.

formulaic encodes whatever it gets: a column of text becomes a categorical
variable, so an outcome stored as text fails deep inside it, and a moderator of
numbers with a stray string (``"3,5"``) silently becomes a factor with one level
per value. Here such columns get errors naming the column and the rows, and
unused levels of categorical columns are dropped before the fixed effects are
encoded (a level that no row uses would otherwise be reported as a redundant,
rank-deficient column).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import SpecificationError, format_rows
from ..spec.formulas import bare_names

#: A column of text counts as "numbers with stray strings" when at least this share of it parses as numbers.
NUMERIC_SHARE = 0.5


def check_unique_columns(data: pd.DataFrame, columns) -> None:
    """Refuse repeated column names among the columns a model uses."""
    repeated = [c for c in dict.fromkeys(columns) if c in data.columns and (data.columns == c).sum() > 1]
    if repeated:
        raise SpecificationError(f"data: column name(s) {', '.join(map(repr, repeated))} appear more than once; "
                                 "rename the copies.")


def _unparsed(values: pd.Series) -> tuple[np.ndarray, int]:
    """Rows (labels) whose non-missing values are not numbers, and the number of values that are."""
    parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna() & values.notna()
    return values.index[bad.to_numpy()], int(parsed.notna().sum())


def _is_text(values: pd.Series) -> bool:
    return values.dtype == object or isinstance(values.dtype, pd.StringDtype)


def check_column_types(data: pd.DataFrame, formula: str, where: str = "formula") -> None:
    """Errors for an outcome that is not numeric and for moderators of numbers with stray text.

    Parameters
    ----------
    data : pandas.DataFrame
    formula : str
        The (two-sided or one-sided) formula; only the columns it uses as they are
        (not inside a transform) are checked. ``C(x)`` declares a column categorical.
    where : str
        The argument to cite.

    Examples
    --------
    >>> dat = pd.DataFrame({"y": [0.1, 0.2, 0.3], "x": ["1.5", "3,5", "2"]})
    >>> check_column_types(dat, "y ~ x")
    Traceback (most recent call last):
    ...
    bayesmeta.errors.SpecificationError: formula: column 'x' mixes numbers and text: rows 1 ('3,5') ...
    """
    lhs, rhs = bare_names(formula, where)
    for column in sorted(lhs & set(data.columns)):
        values = data[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue
        bad, _ = _unparsed(values) if _is_text(values) else (values.index[values.notna().to_numpy()], 0)
        rows = f" (rows {format_rows(bad)} are not numbers)" if len(bad) else ""
        raise SpecificationError(f"{where}: the outcome column {column!r} is not numeric{rows}; it holds "
                                 f"{values.dtype} values. Convert it, e.g. with pandas.to_numeric.")
    for column in sorted(rhs & set(data.columns)):
        values = data[column]
        if not _is_text(values):
            continue
        bad, good = _unparsed(values)
        if len(bad) and good >= NUMERIC_SHARE * (good + len(bad)):
            shown = ", ".join(f"{label} ({values[label]!r})" for label in bad[:5])
            more = f", ... ({len(bad)} in all)" if len(bad) > 5 else ""
            raise SpecificationError(
                f"{where}: column {column!r} mixes numbers and text: rows {shown}{more} are not numbers, so the "
                f"column would be treated as categorical. Fix those values (a decimal comma?) or, to use the "
                f"column as categorical, write C({column}).")


def drop_unused_levels(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """``frame`` with unused categories of its categorical ``columns`` removed (the same frame when none are).

    Examples
    --------
    >>> frame = pd.DataFrame({"g": pd.Categorical(["a", "b"], categories=["a", "b", "c"])})
    >>> list(drop_unused_levels(frame, ["g"])["g"].cat.categories)
    ['a', 'b']
    """
    unused = [c for c in columns if isinstance(frame[c].dtype, pd.CategoricalDtype)
              and len(frame[c].cat.categories) > frame[c].nunique(dropna=True)]
    if not unused:
        return frame
    return frame.assign(**{c: frame[c].cat.remove_unused_categories() for c in unused})
