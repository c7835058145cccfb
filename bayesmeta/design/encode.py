"""Encoding data with a formula, on the data a model is built on and on new data."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from ..errors import SpecificationError, format_rows
from ..spec.formulas import formula_engine
from .columns import check_columns, require_frame


def encode(formula: str, data: pd.DataFrame):
    """formulaic's model matrix of ``formula`` on ``data`` (missing values are errors)."""
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
