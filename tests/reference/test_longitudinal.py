"""ML/REML against metafor for the longitudinal gliomas models (the paper's Table 5)."""

from __future__ import annotations

import numpy as np
import pytest
from cases import gliomas_data, har_within, ishak_long
from reference_tools import (
    assert_close,
    assert_components,
    assert_matches_metafor,
    load_fixture,
)

import bayesmeta as bm

GLIOMAS = load_fixture("gliomas")


def test_within_study_covariance_matches_fixture():
    ours = har_within(gliomas_data())
    theirs = GLIOMAS["model4"]["V_blocks"]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert_close(a, np.atleast_2d(b), "V block", rel=1e-10)


# name: (within-study V, random, struct, method)
SPECS = {
    "model1": ("diag", "~ tf | study", "DIAG", "REML"),
    "model2": ("diag", "~ 1 | study", None, "REML"),
    "model2_cs": ("diag", "~ tf | study", "CS", "REML"),
    "model3": ("diag", "~ tf | study", "HAR", "REML"),
    "model3_ar": ("diag", "~ tf | study", "AR", "REML"),
    "model4": ("har", "~ tf | study", "DIAG", "REML"),
    "model5": ("har", "~ tf | study", "HAR", "REML"),
    "model5_ar": ("har", "~ tf | study", "AR", "REML"),
    "model6": ("har", "~ tf | study", "UN", "REML"),
    "model4_ML": ("har", "~ tf | study", "DIAG", "ML"),
}
#: Fits whose correlations sit on the boundary (+-1): the likelihood is flat along them, so
#: variances agree less tightly than 1e-4; likelihood, coefficients and SEs are still compared.
ON_RHO_BOUNDARY = {"model2_cs", "model3", "model5", "model6"}


def _fit(name):
    v_kind, random, struct, method = SPECS[name]
    dat = gliomas_data()
    v = {"vi": "logORvar"} if v_kind == "diag" else {"V": har_within(dat)}
    return bm.MetaModel("logOR ~ 0 + tf", data=dat, random=random, struct=struct, **v).fit(method)


@pytest.mark.parametrize("name", list(SPECS))
def test_gliomas_matches_metafor(name):
    fit = _fit(name)
    ref = GLIOMAS[name]
    if name in ON_RHO_BOUNDARY:
        # Along a correlation at +-1 the likelihood is flat, so metafor and we stop at slightly
        # different variances (up to 1.8e-4 relative, model6): tau2 is held to 1e-3; everything
        # else, the signed correlations by label included, at the guide's tolerances.
        assert_matches_metafor(fit, ref, check_components=("sigma2", "rho"))
        assert_components(fit, ref, ("tau2",), rel=1e-3)
    elif name == "model5_ar":
        # tau2 is on the boundary (0), where rho has no effect on the likelihood: rho is not
        # identified, so only the variance is compared.
        assert fit.tau2.iloc[0] < 1e-8 and "tau2[tf | study]" in fit.boundary
        assert_matches_metafor(fit, ref, check_components=("sigma2", "tau2"))
    else:
        components = ("sigma2", "tau2") if SPECS[name][2] == "DIAG" else ("sigma2", "tau2", "rho")
        assert_matches_metafor(fit, ref, check_components=components)


def test_gliomas_table5_aic():
    """Table 5 (REML): AIC 121.6, 117.0, 120.9, 107.5, 107.7, 117.3; Model 4 by ML: 107.5.

    Model 3's correlation is on its boundary (rho -> 1): metafor and we reach AIC 120.849,
    which the paper prints as 120.9 (mixmeta stops marginally short of the boundary).
    Model 2 (one random intercept per study, the paper's 'compound symmetry' fitted as a
    two-level model with the inner variance fixed at 0, 5 parameters) has restricted
    logLik -53.996 in metafor and here, so AIC 117.99; the paper's 117.0 matches no
    variant (ML gives 119.3, CS with free rho 119.99) and is taken to be a misprint.
    """
    published = {"model1": 121.6, "model4": 107.5, "model5": 107.7, "model6": 117.3, "model4_ML": 107.5}
    for name, aic in published.items():
        assert round(_fit(name).aic, 1) == aic, name
    assert abs(_fit("model3").aic - 120.9) < 0.06
    assert abs(_fit("model2").aic - GLIOMAS["model2"]["aic"]) < 1e-3


def test_gliomas_model7_random_slopes():
    """Model 7 (ML): linear time, random intercept and slope on centred time with a diagonal Psi;
    AIC 101.4, and p = 0.92 for the time coefficient."""
    dat = gliomas_data()
    fit = bm.MetaModel("logOR ~ 1 + time", data=dat, V=har_within(dat), random="~ 1 + tc | study",
                       struct="DIAG").fit("ML")
    ref = GLIOMAS["model7_ML"]
    assert_matches_metafor(fit, ref, check_components=("sigma2", "tau2"))
    assert round(fit.aic, 1) == 101.4
    assert round(fit.pval["time"], 2) == 0.92


ISHAK = load_fixture("ishak")


def test_ishak_unstructured_correlations_in_metafors_order():
    """UN over four time points, off the boundary: six distinct correlations, compared signed and by
    label in metafor's column-wise order (12, 13, 14, 23, 24, 34), with every other reported number."""
    long, blocks = ishak_long()
    fit = bm.MetaModel("yi ~ 0 + C(time)", data=long, V=blocks, random="~ time | study", struct="UN").fit("REML")
    ref = ISHAK["un"]
    assert len(set(np.round(ref["rho"], 2))) == 6 and np.max(np.abs(ref["rho"])) < 0.95
    assert_matches_metafor(fit, ref)
    assert list(fit.rho.index)[2:4] == ["time | study: 1, 4", "time | study: 2, 3"]
