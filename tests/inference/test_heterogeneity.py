"""I^2, H^2 and the typical within-study variance (fit.i2, fit.h2, fit.i2_levels, fit.i2_q, fit.vt),
and Knapp-Hartung tests (m.fit(test="knha")).

Fixture: tests/reference/fixtures/inference.json (tests/reference/make_inference_reference.R):
A_bcg.fits (metafor's rma(): I2, H2, vt, QE; REML, ML, with ablat, test = "knha", two subsets
with tau^2 = 0), B_school.I2_multilevel and D_categorical.I2_multilevel (the metafor FAQ's
multilevel I^2, total and per component). What metafor does not define (structured terms,
random slopes, location-scale models) is checked against dense computations written here.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from reference_tools import FIXTURES, assert_close

import bayesmeta as bm
from bayesmeta.errors import SpecificationError
from bayesmeta.inference.heterogeneity import q_based_i2, typical_variance

with open(FIXTURES / "inference.json") as _fh:
    REF = json.load(_fh)
DATA = REF["datasets"]
FITS = REF["A_bcg"]["fits"]
#: The fits of A_bcg.fits: formula, rows (positions), method and test, as the R script.
BCG_CASES = {
    "REML": ("yi ~ 1", None, "REML", "z"), "ML": ("yi ~ 1", None, "ML", "z"),
    "mods_REML": ("yi ~ ablat", None, "REML", "z"), "mods_ML": ("yi ~ ablat", None, "ML", "z"),
    "knha_REML": ("yi ~ 1", None, "REML", "knha"), "mods_knha_REML": ("yi ~ ablat", None, "REML", "knha"),
    "subset_1to3_REML": ("yi ~ 1", [0, 1, 2], "REML", "z"),
    "subset_2_3_4_10_REML": ("yi ~ 1", [1, 2, 3, 9], "REML", "z"),
}


def _bcg() -> pd.DataFrame:
    return pd.DataFrame({k: DATA["bcg"][k] for k in ("trial", "ablat", "yi", "vi")})


def _bcg_fit(case: str):
    formula, rows, method, test = BCG_CASES[case]
    dat = _bcg() if rows is None else _bcg().iloc[rows]
    return bm.MetaModel(formula, data=dat, vi="vi").fit(method, test=test)


def _kon() -> pd.DataFrame:
    kon = bm.datasets.load("konstantopoulos2011")
    kon["period"] = DATA["konstantopoulos"]["period"]
    return kon


def _berkey(struct: str = "UN"):
    b = DATA["berkey"]
    berkey = pd.DataFrame({k: b[k] for k in ("trial", "outcome", "year", "yi")})
    return bm.MetaModel("yi ~ 0 + outcome + outcome:I(year - 1983)", data=berkey, V=np.array(b["V"]),
                        random="~ outcome | trial", struct=struct).fit(), np.array(b["V"])


def _dense_vt(X: np.ndarray, V: np.ndarray) -> float:
    """The metafor FAQ's computation, with W = solve(V)."""
    W = np.linalg.inv(V)
    P = W - W @ X @ np.linalg.solve(X.T @ W @ X, X.T @ W)
    return (X.shape[0] - X.shape[1]) / np.trace(P)


# the standard model (metafor's rma) -----------------------------------------------

@pytest.mark.parametrize("case", list(BCG_CASES))
def test_standard_model_matches_metafor(case):
    ref, fit = FITS[case], _bcg_fit(case)
    assert_close(fit.tau2.iloc[0], ref["tau2"], "tau2")
    assert_close(fit.vt, ref["vt"], "vt")
    assert_close(fit.i2, ref["I2"], "I2")
    assert_close(fit.h2, ref["H2"], "H2")
    assert_close(fit.q, ref["QE"], "QE")
    assert_close(fit.q_pvalue, ref["QEp"], "QEp")
    assert_close(fit.se_tau2, ref["se_tau2"], "se_tau2")
    assert fit.i2_levels.index.tolist() == ["row"] and fit.i2_levels.iloc[0] == pytest.approx(fit.i2)
    assert fit.i2_q == pytest.approx(q_based_i2(ref["QE"], ref["k"] - ref["p"]))


def test_dl_i2_is_the_q_based_i2():
    """tau2_DL = (Q - df) / tr(P) and vt = df / tr(P): metafor's I^2 of a DL fit is Higgins and
    Thompson's (Q - df) / Q, the paper's definition."""
    fit = bm.MetaModel("yi ~ ablat", data=_bcg(), vi="vi").fit("DL")
    assert fit.i2 == pytest.approx(fit.i2_q, rel=1e-12)
    assert fit.h2 == pytest.approx(fit.q / fit.q_df, rel=1e-12)


@pytest.mark.parametrize("random", [None, []])
def test_fixed_effects_fits_use_metafor_q_based_definition(random):
    fit = bm.MetaModel("yi ~ ablat", data=_bcg(), vi="vi", random=random).fit("FE")
    q, df = FITS["mods_REML"]["QE"], 11
    assert_close(fit.i2, 100 * (q - df) / q, "I2 (FE)")
    assert_close(fit.h2, q / df, "H2 (FE)")
    assert fit.i2 == fit.i2_q and fit.i2_levels.empty


def test_typical_variance_by_hand():
    dat = _bcg()
    fit = bm.MetaModel("yi ~ ablat", data=dat, vi="vi").fit()
    X = np.column_stack([np.ones(13), dat["ablat"]])
    assert typical_variance(fit.design) == pytest.approx(_dense_vt(X, np.diag(dat["vi"])), rel=1e-12)


# multilevel models (metafor FAQ) ----------------------------------------------------

@pytest.mark.parametrize("method", ["REML", "ML"])
def test_school_multilevel_i2_matches_metafor_faq(method):
    ref = REF["B_school"]["I2_multilevel"][method]
    fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
                       random="~ 1 | district/study").fit(method)
    assert_close(fit.vt, ref["typical_v"], "typical v")
    assert_close(fit.i2, ref["I2_total"], "I2 total")
    assert fit.i2_levels.index.tolist() == ref["I2_components"]["rownames"]
    assert_close(fit.i2_levels.to_numpy(), ref["I2_components"]["I2"], "I2 per component")
    assert fit.i2_levels.sum() == pytest.approx(fit.i2)


def test_categorical_moderator_multilevel_i2_matches_metafor_faq():
    ref = REF["D_categorical"]["I2_multilevel"]
    fit = bm.MetaModel("yi ~ period", data=_kon(), vi="vi", random="~ 1 | district/school").fit()
    assert_close(fit.vt, ref["typical_v"], "typical v")
    assert_close(fit.i2, ref["I2_total"], "I2 total")
    assert fit.i2_levels.index.tolist() == ref["I2_components"]["rownames"]
    assert_close(fit.i2_levels.to_numpy(), ref["I2_components"]["I2"], "I2 per component")


@pytest.mark.parametrize("struct", ["UN", "HCS", "CS"])
def test_structured_term_uses_v_inverse_and_the_mean_variance_over_rows(struct):
    """Berkey: correlated sampling errors (W = V^-1 as in the FAQ), outcome-specific tau^2."""
    fit, V = _berkey(struct)
    vt = _dense_vt(fit.design.X, V)
    outcome = fit.design.encodings[0].Z.argmax(axis=1)
    per_row = fit.tau2.to_numpy()[outcome] if len(fit.tau2) > 1 else np.full(fit.k, fit.tau2.iloc[0])
    assert fit.vt == pytest.approx(vt, rel=1e-12)
    assert fit.i2 == pytest.approx(100 * per_row.mean() / (per_row.mean() + vt), rel=1e-12)
    assert fit.i2_levels.index.tolist() == ["outcome | trial"]
    assert fit.h2 == pytest.approx(1 + per_row.mean() / vt, rel=1e-12)


def test_random_slopes_average_z_g_z_over_rows():
    dat = bm.datasets.load("school")
    fit = bm.MetaModel("effect ~ year", data=dat, vi="var", random=["~ 1 | district/study"]).fit()
    slopes = bm.MetaModel("effect ~ year", data=dat.assign(yr=(dat["year"] - 1990) / 10), vi="var",
                          random="~ 1 + yr | district").fit()
    Z, G = slopes.design.encodings[0].Z, np.array([[slopes.tau2.iloc[0], 0], [0, slopes.tau2.iloc[1]]])
    sd = np.sqrt(slopes.tau2.to_numpy())
    G[0, 1] = G[1, 0] = slopes.rho.iloc[0] * sd[0] * sd[1]
    mean_variance = np.mean(np.einsum("ni,ij,nj->n", Z, G, Z))
    assert slopes.i2 == pytest.approx(100 * mean_variance / (mean_variance + fit.vt), rel=1e-10)


def test_location_scale_model_averages_the_fitted_variances():
    dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    fit = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length").fit()
    tau2 = fit.predict_variance()["pred"].to_numpy()
    assert fit.i2 == pytest.approx(100 * tau2.mean() / (tau2.mean() + fit.vt), rel=1e-10)
    # metafor (rma(..., scale = ~ length)$vt) prints no I^2 but stores vt = 0.03570776
    assert fit.vt == pytest.approx(0.03570776, rel=1e-6)


def test_paper_i2_is_q_based_and_unchanged():
    """Sera et al. (2019) Section 4.1: I^2 92.6% (BCG log odds ratios, ML)."""
    fit = bm.MetaModel("logor ~ 1", data=bm.datasets.load("bcg"), vi="logorvar").fit("ML")
    assert round(fit.i2_q, 1) == 92.6 and round(fit.i2, 1) == 91.2


# summary ------------------------------------------------------------------------------

def test_summary_prints_metafor_i2_and_h2_for_the_standard_model():
    text = _bcg_fit("REML").summary()
    assert "I^2 (total heterogeneity / total variability):  92.22%" in text
    assert "H^2 (total variability / sampling variability): 12.86" in text
    text = _bcg_fit("mods_REML").summary()
    assert "I^2 (residual heterogeneity / unaccounted variability):  68.39%" in text
    assert "H^2 (unaccounted variability / sampling variability): 3.16" in text


def test_summary_prints_the_q_based_i2_where_metafor_prints_none():
    fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
                       random="~ 1 | district/study").fit()
    text = fit.summary()
    assert "Q(df = 55) = 578.8640, p-val < .0001; I^2 (Q-based, Sera et al. 2019) = 90.5%" in text
    assert "H^2" not in text


# Knapp-Hartung ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["knha_REML", "mods_knha_REML"])
def test_knapp_hartung_matches_metafor(case):
    ref, fit = FITS[case], _bcg_fit(case)
    assert fit.test == "knha" and fit.df == ref["k"] - ref["p"] == ref["coef"]["df"][0]
    coef = ref["coef"]
    assert_close(fit.coef.to_numpy(), coef["estimate"], "coef")
    assert_close(fit.se.to_numpy(), coef["se"], "se")
    assert_close(fit.zval.to_numpy(), coef["tval"], "tval")
    assert fit.zval.name == "tval"
    assert_close(fit.pval.to_numpy(), coef["pval"], "pval")
    assert_close(fit.ci.to_numpy(), np.column_stack([coef["ci_lb"], coef["ci_ub"]]), "ci")
    assert_close(fit.vcov.to_numpy(), ref["vcov"]["values"], "vcov")
    wald = fit.wald_test()
    assert [wald.df, wald.df_resid] == ref["QMdf"]
    assert_close(wald.statistic, ref["QM"], "F")
    assert_close(wald.pvalue, ref["QMp"], "F p-value")
    # the variance components and fit statistics are those of the z-test fit
    assert_close(fit.tau2.iloc[0], ref["tau2"], "tau2")
    assert abs(fit.loglik - ref["loglik"]) < 1e-3


def test_knapp_hartung_with_moment_estimators_and_scale_models():
    """s2w = r' W r / (k - p) at the estimate; the scale coefficients keep their SEs (t on k - q df)."""
    plain = bm.MetaModel("yi ~ ablat", data=_bcg(), vi="vi").fit("PM")
    knha = bm.MetaModel("yi ~ ablat", data=_bcg(), vi="vi").fit("PM", test="knha")
    assert knha.s2w == pytest.approx(1.0, rel=1e-10)  # PM solves r' W r = k - p
    assert np.allclose(knha.vcov, plain.vcov, rtol=1e-10)
    dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    z = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length").fit()
    t = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length").fit(test="knha")
    assert t.s2w == pytest.approx(z.estimate.evaluation.quad / (z.k - z.p))
    assert np.allclose(t.vcov, t.s2w * z.vcov, rtol=1e-10)
    assert np.allclose(t.alpha_se, z.alpha_se) and t.alpha_df == z.k - 2


def test_knapp_hartung_errors_and_warnings():
    with pytest.raises(SpecificationError, match="test: 'knha' \\(Knapp-Hartung\\) is defined for the standard "
                                                 "model \\(random=None\\).*offers test='t'"):
        bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi", random="~ 1 | trial").fit(test="knha")
    with pytest.raises(SpecificationError, match="test: expected 'z', 't' or 'knha', got 'KNHA'"):
        bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi").fit(test="KNHA")
    with pytest.raises(SpecificationError, match="test: 'knha' adjusts ML, REML, FE and moment fits, not method"):
        bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi").fit("MAP", test="knha")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fe = bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi").fit("FE", test="knha")
    assert any("not meant for FE models" in str(w.message) for w in caught)
    assert fe.s2w == pytest.approx(fe.q / fe.q_df)
