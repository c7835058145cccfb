"""Likelihood-ratio tests between nested covariance structures and fixed components, and
information-criteria tables, against metafor's ``anova`` (tests/reference/make_inference_reference.R)."""

from __future__ import annotations

import json
import re

import pytest
from cases import berkey_blocks, ishak_long
from reference_tools import ABS_IC, FIXTURES, assert_close

import bayesmeta as bm

REF = json.loads((FIXTURES / "inference.json").read_text())
BERKEY = REF["C_multivariate"]["lrt"]


def _berkey(struct: str):
    dat = bm.datasets.load("berkey1998")
    return bm.MetaModel("yi ~ 0 + outcome", data=dat, V=berkey_blocks(dat), random="~ outcome | trial",
                        struct=struct).fit("REML")


def _school(method: str, fixed=None):
    return bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study",
                        fixed=fixed).fit(method)


def _assert_matches(test, ref):
    assert test.df == ref["df"]
    assert abs(test.statistic - ref["LRT"]) < 1e-5, (test.statistic, ref["LRT"])
    assert_close(test.pvalue, ref["pval"], "pval", rel=1e-4)
    for row, stats in (("Full", ref["full_stats"]), ("Reduced", ref["reduced_stats"])):
        got = test.table.loc[row]
        assert got["df"] == stats["parms"]
        for ours, theirs in (("logLik", "loglik"), ("deviance", "deviance"), ("AIC", "AIC"), ("BIC", "BIC"),
                             ("AICc", "AICc")):
            assert abs(got[ours] - stats[theirs]) < ABS_IC, (row, ours, got[ours], stats[theirs])


@pytest.mark.parametrize("name", list(BERKEY))
def test_nested_structures_match_metafor(name):
    full, reduced = name.split("_vs_")
    test = bm.lrt(_berkey(full), _berkey(reduced))
    _assert_matches(test, BERKEY[name])
    assert test.note.startswith("df = 1: 'outcome | trial': ")
    assert "boundary" not in test.note


def test_har_against_ar():
    long, blocks = ishak_long()

    def fit(struct):
        return bm.MetaModel("yi ~ 0 + C(time)", data=long, V=blocks, random="~ time | study",
                            struct=struct).fit("REML")

    test = bm.lrt(fit("HAR"), fit("AR"))
    _assert_matches(test, REF["C_multivariate"]["ishak"]["lrt"]["HAR_vs_AR"])
    assert "HAR: 4 variance(s), 1 correlation(s) (full) against AR: 1 variance(s), 1 correlation(s)" in test.note


@pytest.mark.parametrize("name", ["REML_district", "REML_study", "ML_district", "ML_study"])
def test_a_component_fixed_at_zero(name):
    method, level = name.split("_")
    fixed = {"sigma2": [0.0, None] if level == "district" else [None, 0.0]}
    test = bm.lrt(_school(method), _school(method, fixed))
    _assert_matches(test, REF["B_school"]["lrt"][name])
    assert "boundary" in test.note and "1 fixed" in test.note


def test_a_term_left_out_is_a_boundary_test():
    school = bm.datasets.load("school")
    two_level = bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | study").fit("ML")
    test = bm.lrt(_school("ML"), two_level)
    # the same model as fixing the district variance at 0
    _assert_matches(test, REF["B_school"]["lrt"]["ML_district"])
    assert "'district': one level: 1 variance(s) (full), left out of the reduced model" in test.note


@pytest.mark.parametrize("full, reduced, message", [
    ("HCS", "AR", re.escape("AR structure of 'outcome | trial' is not nested in the full model's HCS")),
    ("CS", "UN", "give the larger model first"),
])
def test_structures_that_are_not_nested_are_refused(full, reduced, message):
    with pytest.raises(bm.SpecificationError, match=message):
        bm.lrt(_berkey(full), _berkey(reduced))


def test_anova_table():
    fits = [_berkey(s) for s in ("UN", "CS", "ID")]
    table = bm.anova(*fits, names=["UN", "CS", "ID"])
    assert list(table.index) == ["UN", "CS", "ID"]
    assert table.loc["UN", "df"] == BERKEY["UN_vs_CS"]["full_stats"]["parms"]
    assert abs(table.loc["CS", "LRT"] - BERKEY["UN_vs_CS"]["LRT"]) < 1e-5
    assert abs(table.loc["ID", "LRT"] - BERKEY["CS_vs_ID"]["LRT"]) < 1e-5
    assert table.loc["ID", "LRT_df"] == 1
    assert abs(table.loc["ID", "AIC"] - REF["C_multivariate"]["fits"]["ID"]["AIC"]) < ABS_IC
    # fits that are not nested get an explanation instead of a test
    mixed = bm.anova(_berkey("HCS"), _berkey("AR"), _berkey("DIAG"))
    assert mixed["LRT"].isna().all()
    assert "not nested in 'model 1': the reduced model's AR structure" in mixed.loc["model 2", "note"]
    assert mixed.loc["model 3", "note"] == "as many free parameters as 'model 2': no likelihood-ratio test"
    with pytest.raises(bm.SpecificationError, match="at least two fits"):
        bm.anova(fits[0])


def test_lrt_of_scale_models_of_a_structured_term():
    dat = bm.datasets.load("habitat")
    V = bm.vcalc("vi", "study", obs="outcome", rho=0.4, data=dat)

    def fit(struct="UN", **scale):
        return bm.MetaModel("yi ~ 0 + outcome", data=dat, V=V, random="~ outcome | study", struct=struct,
                            scale={"outcome | study": scale} if scale else None).fit("REML")

    full = fit(tau="~ 0 + outcome + outcome:habitat", rho="~ habitat")
    plain, common_rho, diag = fit(), fit(tau="~ 0 + outcome + outcome:habitat"), fit("DIAG")
    for reduced, df in ((plain, 3), (common_rho, 1)):
        test = bm.lrt(full, reduced)
        assert test.df == df
        assert test.statistic == pytest.approx(2 * (full.loglik - reduced.loglik), rel=1e-12)
    # DIAG (no correlation): rho = 0 is inside the correlation model's space
    test = bm.lrt(full, diag)
    assert test.df == 4 and "boundary" not in test.note
    with pytest.raises(bm.SpecificationError, match="not nested"):
        bm.lrt(fit(tau="~ 0 + outcome", rho="~ habitat"), fit("CS", tau="~ habitat"))
