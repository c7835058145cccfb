"""ML/REML against metafor for structures with every parameter inside the parameter space: a
random intercept and slope (metafor's struct GEN) and two structured ``inner | outer`` terms
(metafor's tau2/rho and gamma2/phi). Fixtures: ``make_structures_reference.R``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cases import ishak_long
from reference_tools import (
    assert_close,
    assert_components,
    assert_matches_metafor,
    load_fixture,
)

import bayesmeta as bm

STRUCTURES = load_fixture("structures")
METHODS = ["REML", "ML"]


def _assert_interior(ref: dict) -> None:
    """The fixture is what the tests claim: every variance positive, every correlation off +-1."""
    variances = np.concatenate([ref["tau2"], ref["gamma2"]])
    correlations = np.concatenate([ref["rho"], ref["phi"]])
    assert variances.min() > 1e-3 * variances.max() and np.abs(correlations).max() < 0.99


@pytest.mark.parametrize("method", METHODS)
def test_ishak_random_intercept_and_slope_matches_metafor(method):
    """``~ 1 + time | study`` (UN) against metafor's ``~ time | study`` with struct GEN: both
    variances and their correlation (-0.81) inside, with every other reported number."""
    long, blocks = ishak_long()
    ref = STRUCTURES[f"ishak_slope_{method}"]
    _assert_interior(ref)
    # same rows in the same order (fitted values and residuals are compared by position)
    assert list(long["study"]) == ref["long_data"]["study"]
    np.testing.assert_array_equal(long["time"], ref["long_data"]["time"])
    assert_close(long["yi"].to_numpy(), ref["long_data"]["yi"], "yi", rel=1e-12)
    fit = bm.MetaModel("yi ~ time", data=long, V=blocks, random="~ 1 + time | study", struct="UN").fit(method)
    assert_matches_metafor(fit, ref)
    # metafor names the GEN components after the columns of the inner formula (intrcpt, time)
    assert ref["g_names"][:-1] == ["intrcpt", "time"]
    assert list(fit.tau2.index) == ["1 + time | study: Intercept", "1 + time | study: time"]
    assert list(fit.rho.index) == ["1 + time | study"]


def _bcg_arms() -> pd.DataFrame:
    """BCG arm-level log odds: per trial the control arm, then the vaccine arm, and the trial's
    absolute-latitude band ((0, 30] low, (30, 40] mid, (40, 90] high)."""
    bcg = bm.datasets.load("bcg")
    events = np.column_stack([bcg["cpos"], bcg["tpos"]]).ravel()
    total = events + np.column_stack([bcg["cneg"], bcg["tneg"]]).ravel()
    arms = pd.DataFrame({
        "trial": np.repeat(bcg["trial"].to_numpy(), 2),
        "arm": ["control", "vaccine"] * len(bcg),
        "yi": np.log(events / (total - events)),
        "vi": 1 / events + 1 / (total - events),
    })
    arms["band"] = pd.cut(np.repeat(bcg["ablat"].to_numpy(), 2), [0, 30, 40, 90],
                          labels=["low", "mid", "high"]).astype(str)
    return arms


TWO_TERMS = [(first, second, method) for first, second in [("CS", "CS"), ("HCS", "CS")] for method in METHODS]


@pytest.mark.parametrize(("first", "second", "method"), TWO_TERMS)
def test_two_structured_terms_match_metafor(first, second, method):
    """``random=["~ arm | trial", "~ arm | band"]``: tau2/rho of the first term and gamma2/phi of
    the second, signed and by label, with every other reported number."""
    arms = _bcg_arms()
    ref = STRUCTURES[f"bcg_{first.lower()}_{second.lower()}_{method}"]
    _assert_interior(ref)
    data = ref["data"]
    assert list(arms["trial"]) == data["trial"] and list(arms["arm"]) == data["arm"]
    assert list(arms["band"]) == data["band"]
    assert_close(arms["yi"].to_numpy(), data["yi"], "yi", rel=1e-12)
    assert_close(arms["vi"].to_numpy(), data["vi"], "vi", rel=1e-12)
    fit = bm.MetaModel("yi ~ arm", data=arms, vi="vi", random=["~ arm | trial", "~ arm | band"],
                       struct=[first, second]).fit(method)
    assert_matches_metafor(fit, ref)
    assert_components(fit, ref, ("gamma2", "phi"))
    # labels: one variance per level for HCS (metafor's level order), one for CS; one correlation each
    tau2_labels = [f"arm | trial: {lv}" for lv in ref["g_levels_f"][0]] if first == "HCS" else ["arm | trial"]
    assert list(fit.tau2.index) == tau2_labels
    assert list(fit.rho.index) == ["arm | trial"]
    assert ref["h_names"] == ["arm", "band"] and ref["h_levels_f"][1] == ["high", "low", "mid"]
    assert list(fit.gamma2.index) == ["arm | band"] and list(fit.phi.index) == ["arm | band"]
