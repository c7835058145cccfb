"""bm.escalc against metafor's escalc (fixtures from tests/reference/make_escalc_reference.R)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from reference_tools import FIXTURES

import bayesmeta as bm

CASES = json.loads((FIXTURES / "escalc.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_metafor(case):
    data = pd.DataFrame(case["data"])
    args = case["args"] if isinstance(case["args"], dict) else {}
    out = bm.escalc(case["measure"], data=data, **args, **{c: c for c in data.columns})
    expected_yi = np.array(case["yi"], dtype=float)  # null (NA in R) becomes NaN
    expected_vi = np.array(case["vi"], dtype=float)
    np.testing.assert_allclose(out["yi"], expected_yi, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out["vi"], expected_vi, rtol=1e-10, atol=1e-12)


def test_arrays_without_data_and_sample_sizes_instead_of_cells():
    out = bm.escalc("OR", ai=[10, 0], n1i=[50, 30], ci=[5, 4], n2i=[50, 30])
    expected = bm.escalc("OR", ai=[10, 0], bi=[40, 30], ci=[5, 4], di=[45, 26])
    pd.testing.assert_frame_equal(out, expected)
    assert out["yi"].iloc[0] == pytest.approx(np.log(10 * 45 / (40 * 5)))
    # the zero-cell table got 1/2 in every cell
    assert out["vi"].iloc[1] == pytest.approx(1 / 0.5 + 1 / 30.5 + 1 / 4.5 + 1 / 26.5)


def test_hedges_g_exact_correction():
    out = bm.escalc("SMD", m1i=[1.0], sd1i=[1.0], n1i=[5], m2i=[0.0], sd2i=[1.0], n2i=[5])
    from math import gamma, sqrt
    J = gamma(4) / (sqrt(4) * gamma(3.5))
    assert out["yi"].iloc[0] == pytest.approx(J)


@pytest.mark.parametrize("call, message", [
    (lambda: bm.escalc("XYZ", ai=[1]), "measure: unknown measure 'XYZ'"),
    (lambda: bm.escalc("OR", ai=[1], bi=[2], ci=[3]), "needs 'di' or 'n2i'"),
    (lambda: bm.escalc("OR", ai=[1], bi=[2], ci=[3], di=[4], xi=[1]), "do not belong to measure 'OR'"),
    (lambda: bm.escalc("OR", ai=[-1], bi=[2], ci=[3], di=[4]), "ai is negative in rows 0 "),
    (lambda: bm.escalc("RR", ai=[5], n1i=[3], ci=[1], n2i=[4]), "n1i/n2i smaller than the events"),
    (lambda: bm.escalc("PR", xi=[5], ni=[3]), "xi > ni in rows 0\\."),
    (lambda: bm.escalc("COR", ri=[1.2], ni=[30]), "correlations outside \\[-1, 1\\]"),
    (lambda: bm.escalc("OR", data=pd.DataFrame({"a": [1]}), ai="tpos", bi=[1], ci=[1], di=[1]),
     "ai: column 'tpos' not found"),
    (lambda: bm.escalc("OR", ai=[1], bi=[2], ci=[3], di=[4], to="some"), "to: expected one of"),
])
def test_bad_input(call, message):
    with pytest.raises(bm.SpecificationError, match=message):
        call()


def test_errors_name_the_data_row_labels():
    data = pd.DataFrame({"x": [3, 9], "n": [10, 5]}, index=["s1", "s2"])
    with pytest.raises(bm.SpecificationError, match="xi > ni in rows s2"):
        bm.escalc("PLO", data=data, xi="x", ni="n")
    with pytest.raises(bm.SpecificationError, match="data has 2 rows but the inputs have 3"):
        bm.escalc("PLO", data=data, xi=[1, 2, 3], ni=[5, 5, 5])
    with pytest.raises(bm.SpecificationError, match="xi: column 'x' is not numeric in rows s1"):
        bm.escalc("PLO", data=data.assign(x=["three", 9]), xi="x", ni="n")
    with pytest.raises(bm.SpecificationError, match="ni: values not numeric in rows 1"):
        bm.escalc("PLO", xi=[1, 2], ni=[5, "five"])
