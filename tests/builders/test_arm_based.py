"""bm.arm_based: BCG arm-level log risks (van Houwelingen et al. 1993) against metafor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from engine_tools import assert_graph_mode_is_reml
from reference_tools import assert_close, assert_matches_metafor, load_fixture

import bayesmeta as bm

REF = load_fixture("builders")

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def bcg_arms() -> pd.DataFrame:
    """Per trial the vaccinated arm, then the control arm (the fixture's row order)."""
    bcg = bm.datasets.load("bcg")
    vaccine = pd.DataFrame({"trial": bcg["trial"], "arm": "vaccine", "events": bcg["tpos"],
                            "total": bcg["tpos"] + bcg["tneg"]})
    control = pd.DataFrame({"trial": bcg["trial"], "arm": "control", "events": bcg["cpos"],
                            "total": bcg["cpos"] + bcg["cneg"]})
    return pd.concat([vaccine, control]).sort_index(kind="stable").reset_index(drop=True)


def model(**kwargs):
    return bm.arm_based(bcg_arms(), study="trial", arm="arm", events="events", total="total", **kwargs)


def test_random_study_effects_match_metafor():
    m = model()
    ref = REF["arm_un"]
    assert m.treatments == ["control", "vaccine"]
    fit = m.fit()
    assert_close(m.design.y, ref["yi"], "log risks", rel=1e-10)
    assert_matches_metafor(fit, ref)
    # the blog: log RR -0.71, between-arm correlation 0.94
    contrast = m.contrasts(fit)
    ref_contrast = REF["arm_un_contrast"]
    assert_close(contrast.loc["vaccine vs control", "estimate"], ref_contrast["coef"][1], "log RR")
    assert_close(contrast.loc["vaccine vs control", "se"], ref_contrast["se"][1], "log RR se")
    ci = [ref_contrast["ci_lb"][1], ref_contrast["ci_ub"][1]]
    assert_close(contrast.loc["vaccine vs control", ["ci_lb", "ci_ub"]].to_numpy(float), ci, "log RR CI")
    ci90 = m.contrasts(fit, level=0.9).loc["vaccine vs control", ["ci_lb", "ci_ub"]].to_numpy(float)
    assert_close(ci90, [ref_contrast["ci90_lb"][1], ref_contrast["ci90_ub"][1]], "log RR 90% CI")
    assert round(contrast.iloc[0]["estimate"], 2) == -0.71 and round(fit.rho.iloc[0], 2) == 0.94
    rr = m.contrasts(fit, transform=np.exp)
    assert_close(rr["estimate"], np.exp(ref_contrast["coef"][1]), "RR")
    assert_close(rr[["ci_lb", "ci_ub"]].to_numpy(float).ravel(), np.exp(ci), "RR CI")


def test_fixed_study_effects_are_the_contrast_based_model():
    m = model(study_effects="fixed")
    fit = m.fit()
    ref, rr = REF["arm_fixed_study"], REF["contrast_rr"]
    assert_close(fit.coef.to_numpy(), ref["coef"], "coef")
    assert_close(fit.se.to_numpy(), ref["se"], "se")
    assert abs(fit.loglik - ref["loglik"]) < 1e-3
    contrast = m.contrasts(fit).iloc[0]
    assert_close(contrast["estimate"], rr["coef"][0], "log RR = rma(measure='RR')")
    assert_close(contrast["se"], rr["se"][0], "se = rma(measure='RR')")
    assert_close(fit.tau2.to_numpy(), rr["tau2"], "tau2 = rma(measure='RR')")


def test_graph_mode_is_reml():
    assert_graph_mode_is_reml(model())


def test_means_and_reference():
    arms = pd.DataFrame({"study": [1, 1, 2, 2, 3, 3, 4], "arm": ["b", "a", "a", "b", "a", "b", "a"],
                         "m": [1.0, 0.5, 0.7, 1.4, 0.2, 0.9, 0.4], "s": [1.0, 1.2, 0.9, 1.1, 1.0, 1.3, 0.8],
                         "n": [20, 22, 30, 31, 15, 16, 40]})
    m = bm.arm_based(arms, study="study", arm="arm", mean="m", sd="s", n="n", measure="MN", reference="b")
    assert m.treatments == ["b", "a"]
    np.testing.assert_allclose(m.design.y, arms["m"])
    np.testing.assert_allclose(m.design.V.diagonal(), arms["s"] ** 2 / arms["n"])
    assert list(m.contrast_terms) == ["a vs b"]


def test_bad_input_is_named():
    arms = bcg_arms()
    with pytest.raises(bm.SpecificationError, match="events= and total="):
        bm.arm_based(arms, study="trial", arm="arm", events="events")
    with pytest.raises(bm.SpecificationError, match="either"):
        bm.arm_based(arms, study="trial", arm="arm", events="events", total="total", mean="events")
    with pytest.raises(bm.SpecificationError, match="events: column 'nope'"):
        bm.arm_based(arms, study="trial", arm="arm", events="nope", total="total")
    with pytest.raises(bm.SpecificationError, match="reference"):
        model(reference="placebo")
    with pytest.raises(bm.SpecificationError, match=r"rows 0, 1 repeat a treatment"):
        bm.arm_based(arms.assign(arm=arms["arm"].where(arms.index != 1, "vaccine")), study="trial",
                     arm="arm", events="events", total="total")
    with pytest.raises(bm.SpecificationError, match="measure"):
        model(measure="OR")
    missing = arms.astype({"events": float})
    missing.loc[3, "events"] = np.nan
    with pytest.warns(bm.MissingDataWarning, match="rows 3"):
        bm.arm_based(missing, study="trial", arm="arm", events="events", total="total")
    with pytest.raises(bm.SpecificationError, match="rows 3"):
        bm.arm_based(missing, study="trial", arm="arm", events="events", total="total", na_action="raise")
