"""bm.multivariate: wide and long input, moderators per outcome, missing outcomes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from engine_tools import assert_graph_mode_is_reml
from reference_tools import assert_close, assert_matches_metafor, load_fixture

import bayesmeta as bm

BERKEY = load_fixture("berkey")
REF = load_fixture("builders")
BERKEY_VECH = ["var_PD", "cov_PD_AL", "var_AL"]

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def berkey(**kwargs):
    return bm.multivariate(bm.datasets.load("berkey98"), outcomes=["PD", "AL"], id="pubyear", vech=BERKEY_VECH,
                           **kwargs)


def hyp(**kwargs):
    return bm.multivariate(bm.datasets.load("hyp"), outcomes={"SBP": "sbp", "DBP": "dbp"}, id="study",
                           se=["sbp_se", "dbp_se"], cor="rho", **kwargs)


def _metafor_order(names: list[str]) -> list[str]:
    """Our coefficient names in metafor's order (it sorts the outcomes: AL before PD)."""
    return sorted(names, key=lambda n: (":" in n, n.replace("outcome[AL]", "0").replace("outcome[PD]", "1")))


def test_berkey_wide_matches_metafor():
    """Declared outcome order PD, AL; metafor sorts its factor levels (AL, PD)."""
    for fit, ref in [(berkey().fit(), BERKEY["un"]),
                     (berkey(mods="~ I(pubyear - 1983)").fit("ML"), BERKEY["un_year_ML"])]:
        order = _metafor_order(list(fit.coef.index))
        assert_close(fit.coef[order].to_numpy(), ref["coef"], "coef")
        assert_close(fit.se[order].to_numpy(), ref["se"], "se")
        assert_close(fit.tau2.to_numpy()[::-1], ref["tau2"], "tau2")
        assert_close(fit.rho.to_numpy(), ref["rho"], "rho")
        assert_close(fit.fitted.to_numpy(), ref["fitted"], "fitted")
        assert abs(fit.loglik - ref["loglik"]) < 1e-3 and abs(fit.aic - ref["aic"]) < 1e-3


def test_berkey_long_input_is_the_same_model():
    dat = bm.datasets.load("berkey1998")
    V = [g[["v1i", "v2i"]].to_numpy() for _, g in dat.groupby("trial", sort=False)]
    fit = bm.multivariate(dat, yi="yi", outcome="outcome", id="trial", V=V).fit()
    assert_matches_metafor(fit, BERKEY["un"])


def test_hyp_with_standard_errors_and_correlations():
    assert_matches_metafor(hyp().fit(), REF["hyp_un"])
    fit = hyp(mods="~ ish").fit()
    assert fit.coef.index.tolist() == ["outcome[SBP]", "outcome[DBP]", "outcome[SBP]:ish", "outcome[DBP]:ish"]
    assert_matches_metafor(fit, REF["hyp_un_ish"])


def test_missing_outcomes_are_dropped_per_study():
    p53 = bm.datasets.load("p53")
    model = bm.multivariate(p53, outcomes=["y1", "y2"], id="study", var=["V1", "V2"], struct="DIAG")
    assert model.design.n == REF["p53_diag"]["k"] == int(p53[["y1", "y2"]].notna().sum().sum())
    assert_matches_metafor(model.fit(), REF["p53_diag"], check_components=("tau2",))


def test_graph_mode_is_reml():
    assert_graph_mode_is_reml(hyp())


def test_bad_input_is_named():
    with pytest.raises(bm.SpecificationError, match="struct"):
        berkey(struct="AR")
    with pytest.raises(bm.SpecificationError, match="V: for long data"):
        bm.multivariate(bm.datasets.load("berkey98"), outcomes=["PD", "AL"], V=np.eye(10))
    with pytest.raises(bm.SpecificationError, match="vech: for wide data"):
        bm.multivariate(bm.datasets.load("berkey1998"), yi="yi", outcome="outcome", id="trial", vech=BERKEY_VECH)
    with pytest.raises(bm.SpecificationError, match="id="):
        bm.multivariate(bm.datasets.load("berkey1998"), yi="yi", outcome="outcome", vi="vi")
    with pytest.raises(bm.SpecificationError, match="vech"):
        bm.multivariate(bm.datasets.load("berkey98"), outcomes=["PD", "AL"], vech=BERKEY_VECH[:2])
    bad = bm.datasets.load("berkey98").assign(cov_PD_AL=lambda d: d["cov_PD_AL"].where(d.index != 1, 0.5))
    with pytest.raises(bm.SpecificationError, match="1982"):
        bm.multivariate(bad, outcomes=["PD", "AL"], id="pubyear", vech=BERKEY_VECH)
    with pytest.raises(bm.SpecificationError, match="nope"):
        bm.multivariate(pd.DataFrame({"a": [1.0]}), yi="nope", outcome="a", id="a", vi="a")
