"""ML/REML against metafor for the blog seed's models: Konstantopoulos (three-level),
Berkey 1998 (bivariate, UN) and Ishak 2007 (longitudinal, HAR with AR within-study V)."""

from __future__ import annotations

import numpy as np
from cases import berkey_blocks, ishak_long
from reference_tools import assert_close, assert_matches_metafor, load_fixture

import bayesmeta as bm

KONSTANTOPOULOS = load_fixture("konstantopoulos")
BERKEY = load_fixture("berkey")
ISHAK = load_fixture("ishak")


def test_konstantopoulos_three_level():
    """Blog seed: 0.1847 (0.0846), sigma2 0.0651 (district) and 0.0327 (school)."""
    dat = bm.datasets.load("konstantopoulos2011")
    fit = bm.MetaModel("yi ~ 1", data=dat, vi="vi", random="~ 1 | district/school").fit()
    assert_matches_metafor(fit, KONSTANTOPOULOS["threelevel"])
    assert round(fit.coef.iloc[0], 4) == 0.1847 and round(fit.se.iloc[0], 4) == 0.0846
    assert np.round(fit.sigma2.to_numpy(), 4).tolist() == [0.0651, 0.0327]
    assert fit.sigma2.index.tolist() == ["district", "district/school"]


def test_konstantopoulos_standard_and_cs():
    dat = bm.datasets.load("konstantopoulos2011")
    assert_matches_metafor(bm.MetaModel("yi ~ 1", data=dat, vi="vi").fit(), KONSTANTOPOULOS["standard_rma"])
    cs = bm.MetaModel("yi ~ 1", data=dat, vi="vi", random="~ school | district").fit()
    assert_matches_metafor(cs, KONSTANTOPOULOS["mv_cs"])




def test_berkey_unstructured():
    dat = bm.datasets.load("berkey1998")
    V = berkey_blocks(dat)
    for ours, theirs in zip(V, BERKEY["un"]["V_blocks"]):
        assert_close(ours, np.array(theirs), "V block", rel=1e-12)
    fit = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=V, random="~ outcome | trial", struct="UN").fit()
    assert_matches_metafor(fit, BERKEY["un"])
    assert fit.tau2.index.tolist() == ["outcome | trial: AL", "outcome | trial: PD"]


def test_berkey_meta_regression_ml():
    dat = bm.datasets.load("berkey1998")
    fit = bm.MetaModel("yi ~ 0 + outcome + outcome:I(year - 1983)", data=dat, V=berkey_blocks(dat),
                       random="~ outcome | trial", struct="UN").fit("ML")
    assert_matches_metafor(fit, BERKEY["un_year_ML"])


def test_ishak_heterogeneous_ar():
    long, V = ishak_long()
    ref = ISHAK["har"]
    assert long["study"].tolist() == ref["long_data"]["study"]
    assert long["time"].tolist() == ref["long_data"]["time"]
    for ours, theirs in zip(V, ref["V_blocks"]):
        assert_close(ours, np.atleast_2d(theirs), "V block", rel=1e-12)
    fit = bm.MetaModel("yi ~ 0 + C(time)", data=long, V=V, random="~ time | study", struct="HAR").fit()
    assert_matches_metafor(fit, ref)
