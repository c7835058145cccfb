"""Intercept-only formulas are encoded without formulaic: exactly as formulaic encodes them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from formulaic import model_matrix

from bayesmeta.design.encode import InterceptOnly, encode
from bayesmeta.errors import SpecificationError


@pytest.mark.parametrize("outcome", [np.array([0.5, -1.0, 2.0]), np.array([1, 2, 3])])
def test_intercept_only_matches_formulaic(outcome):
    data = pd.DataFrame({"y": outcome, "x": [1.0, 2.0, 3.0]}, index=["a", "b", "c"])
    fast, reference = encode("y ~ 1", data), model_matrix("y ~ 1", data, na_action="raise")
    assert isinstance(fast.model_spec.rhs, InterceptOnly)
    pd.testing.assert_frame_equal(fast.lhs, pd.DataFrame(reference.lhs).astype(float), check_dtype=False)
    pd.testing.assert_frame_equal(pd.DataFrame(fast.rhs), pd.DataFrame(reference.rhs), check_dtype=False)
    new = pd.DataFrame({"x": [4.0, 5.0]}, index=[7, 8])
    pd.testing.assert_frame_equal(fast.model_spec.rhs.get_model_matrix(new),
                                  pd.DataFrame(reference.model_spec.rhs.get_model_matrix(new)), check_dtype=False)
    assert set(fast.model_spec.rhs.required_variables) == set(reference.model_spec.rhs.required_variables)


def test_other_formulas_and_outcomes_go_to_formulaic():
    data = pd.DataFrame({"y": [True, False, True], "z": [1.0, 2.0, 3.0]})
    assert not isinstance(encode("y ~ 1", data).model_spec.rhs, InterceptOnly)  # formulaic's own coding
    assert not isinstance(encode("z ~ 1 + y", data).model_spec.rhs, InterceptOnly)


def test_missing_outcome_is_an_error():
    with pytest.raises(SpecificationError, match="missing values in the outcome 'y'"):
        encode("y ~ 1", pd.DataFrame({"y": [1.0, np.nan]}))
