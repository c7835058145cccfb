"""bm.escalc against metafor's escalc (fixtures from tests/reference/make_escalc_reference.R)."""

from __future__ import annotations

import json
import re

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


# measures of issue 12: PFT, PAS, AS, SMCR, SMCC, IRLN, IRD, PETO ------------------------------------
# Fixture: inference.json F_escalc (tests/reference/make_inference_reference.R), metafor's defaults
# (vtype "LS", add 1/2 to tables with a zero cell, none for the arcsine measures).

with open(FIXTURES / "inference.json") as _fh:
    NEW_MEASURES = json.load(_fh)["F_escalc"]


@pytest.mark.parametrize("measure", list(NEW_MEASURES))
def test_new_measures_match_metafor(measure):
    case = NEW_MEASURES[measure]
    # the call's arguments (SMCR uses no sd2i although the data has it)
    args = dict(re.findall(r"(\w+) = (\w+)", case["call"]))
    assert args.pop("data").startswith("esc_")
    out = bm.escalc(measure, data=pd.DataFrame(case["data"]), **args)
    np.testing.assert_allclose(out["yi"], np.array(case["yi"], dtype=float), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out["vi"], np.array(case["vi"], dtype=float), rtol=1e-10, atol=1e-12)


def test_zero_cells_corrected_as_metafor():
    """PETO, IRD and IRLN get 1/2 in every cell of a table with a zero; AS, PAS and PFT none
    unless add is given."""
    peto = bm.escalc("PETO", ai=[0], bi=[25], ci=[4], di=[21])
    corrected = bm.escalc("PETO", ai=[0.5], bi=[25.5], ci=[4.5], di=[21.5], to="none")
    pd.testing.assert_frame_equal(peto, corrected)
    assert bm.escalc("PETO", ai=[0], bi=[25], ci=[4], di=[21], to="none")["yi"].iloc[0] == pytest.approx(-2.1304,
                                                                                                        abs=1e-4)
    arcsine = bm.escalc("AS", ai=[0], bi=[25], ci=[4], di=[21])
    assert arcsine["vi"].iloc[0] == pytest.approx(1 / 100 + 1 / 100)
    assert bm.escalc("AS", ai=[0], bi=[25], ci=[4], di=[21], add=0.5)["vi"].iloc[0] == pytest.approx(2 / 104)
    assert bm.escalc("PAS", xi=[0], ni=[20])["yi"].iloc[0] == 0.0
    assert bm.escalc("IRLN", xi=[0], ti=[150])["vi"].iloc[0] == pytest.approx(2.0)


def test_peto_by_hand():
    """(O - E) / V with hypergeometric mean and variance, no zero cell."""
    ai, bi, ci, di = 12, 88, 20, 80
    n1, n2, events, n = ai + bi, ci + di, ai + ci, ai + bi + ci + di
    V = events * (bi + di) * n1 * n2 / (n ** 2 * (n - 1))
    out = bm.escalc("PETO", ai=[ai], bi=[bi], ci=[ci], di=[di])
    assert out["yi"].iloc[0] == pytest.approx((ai - events * n1 / n) / V)
    assert out["vi"].iloc[0] == pytest.approx(1 / V)


@pytest.mark.parametrize("call, message", [
    (lambda: bm.escalc("IRLN", xi=[1], ti=[0]), "ti is not positive in rows 0 "),
    (lambda: bm.escalc("IRD", x1i=[1], t1i=[-5], x2i=[2], t2i=[3]), "t1i is not positive in rows 0 "),
    (lambda: bm.escalc("SMCR", m1i=[1], m2i=[2], sd1i=[1], ni=[10], ri=[1.5]), "correlations outside"),
    (lambda: bm.escalc("SMCC", m1i=[1], m2i=[2], sd1i=[1], ni=[10], ri=[0.5]), "needs 'sd2i'"),
    (lambda: bm.escalc("SMCR", m1i=[1], m2i=[2], sd1i=[-1], ni=[10], ri=[0.5]), "sd1i is negative"),
])
def test_new_measures_bad_input(call, message):
    with pytest.raises(bm.SpecificationError, match=message):
        call()
