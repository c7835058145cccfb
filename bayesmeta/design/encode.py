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
        X = np.asarray(spec.get_model_matrix(newdata, na_action="ignore"), dtype=float)
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
