"""Encoding data with a formula, on the data a model is built on and on new data."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import SpecificationError, format_rows
from ..spec.formulas import formula_engine, simple_tokens
from .columns import check_columns, require_frame


@dataclass(frozen=True)
class InterceptOnly:
    """The right-hand side ``~ 1``: one column of ones named "Intercept", as formulaic encodes it.

    It answers the two questions asked of a formulaic ModelSpec here
    (``required_variables`` and ``get_model_matrix``), so intercept-only models,
    the most common ones, are built without loading formulaic.
    """

    required_variables: frozenset = frozenset()

    def get_model_matrix(self, data: pd.DataFrame, na_action: str = "raise") -> pd.DataFrame:
        """A column of ones over the rows of ``data``."""
        return pd.DataFrame({"Intercept": np.ones(len(data))}, index=data.index)


@dataclass(frozen=True)
class _Spec:
    rhs: InterceptOnly


@dataclass(frozen=True)
class _Matrices:
    lhs: pd.DataFrame
    rhs: pd.DataFrame
    model_spec: _Spec


def _intercept_only(formula: str, data: pd.DataFrame) -> _Matrices | None:
    """``outcome ~ 1`` with a numeric outcome column, encoded directly; None for any other formula."""
    tokens = simple_tokens(formula)
    if tokens is None or len(tokens) != 3 or tokens[0][0] != "name" or tokens[1:] != [("operator", "~"),
                                                                                       ("value", "1")]:
        return None
    outcome = tokens[0][1]
    if outcome not in data or data[outcome].dtype.kind not in "iuf":
        return None  # formulaic's own handling (and errors) for anything else
    spec = InterceptOnly()
    return _Matrices(data[[outcome]].astype(float), spec.get_model_matrix(data), _Spec(spec))


def encode(formula: str, data: pd.DataFrame):
    """formulaic's model matrix of ``formula`` on ``data`` (missing values are errors).

    ``outcome ~ 1`` is encoded without formulaic, identically.
    """
    fast = _intercept_only(formula, data)
    if fast is not None:
        if fast.lhs.isna().to_numpy().any():  # as formulaic's na_action="raise"
            raise SpecificationError(f"formula: missing values in the outcome {fast.lhs.columns[0]!r}.")
        return fast
    return formula_engine().model_matrix(formula, data, na_action="raise")


def encode_new(spec, newdata: pd.DataFrame, where: str) -> np.ndarray:
    """Encode new rows with a formulaic ModelSpec exactly as the data it was built on.

    Raises
    ------
    SpecificationError
        For missing columns, factor levels the model has not seen, or missing values.
    """
    require_frame(newdata, "newdata")
    check_columns(newdata, where, sorted(spec.required_variables))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            X = np.asarray(spec.get_model_matrix(newdata, na_action="ignore"), dtype=float)
        except Exception as error:  # noqa: BLE001  formulaic's own errors (a column of text where numbers were): name the columns
            text = [c for c in sorted(spec.required_variables) if c in newdata and newdata[c].dtype == object]
            raise SpecificationError(f"{where}: column(s) {', '.join(map(repr, text or sorted(spec.required_variables)))}"
                                     f" cannot be encoded as in the data the model was built on "
                                     f"({str(error).splitlines()[0] if str(error) else type(error).__name__}).") from None
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
