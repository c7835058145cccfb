"""Egger's regression test (fit.regtest) and trim-and-fill (fit.trimfill) against metafor.

Fixture: tests/reference/fixtures/inference.json (tests/reference/make_inference_reference.R):
A_bcg.regtest (regtest(fit_reml) with its defaults, and its internal model) and
A_bcg.trimfill (trimfill(fit_reml), estimator L0). Beyond the fixture, values printed by
metafor 3.8-1 for the calls quoted beside them (the other estimators and predictors, the
'lm' model, a data set with seven missing studies), the classical form of Egger's test
(standard normal deviates regressed on precision), and the multilevel test against the
model with the predictor in its formula.

metafor's trimfill() refits the trimmed and filled data with rma()'s default convergence
threshold (1e-5), not the fit's control, so its filled estimates carry errors of up to
~3e-5 relative (tau^2 of bangertdrowns2004: 0.0905468 vs the converged 0.0905445); every
comparison is still within the guide's 1e-4.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from reference_tools import ABS_IC, FIXTURES, assert_close

import bayesmeta as bm
from bayesmeta.errors import SpecificationError

with open(FIXTURES / "inference.json") as _fh:
    REF = json.load(_fh)


def _bcg() -> pd.DataFrame:
    return pd.DataFrame({k: REF["datasets"]["bcg"][k] for k in ("trial", "ablat", "yi", "vi")})


def _bcg_fit(**kwargs):
    return bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi").fit(**kwargs)


def _writing():
    """rma(yi, vi, data = dat.bangertdrowns2004) (48 studies)."""
    dat = bm.datasets.load("bangertdrowns2004")
    return dat, bm.MetaModel("yi ~ 1", data=dat, vi="vi").fit()


def _assert_fit(fit, ref, what):
    """A ModeResult against a fixture's uni_fit() entry."""
    assert fit.k == ref["k"] and fit.p == ref["p"] and fit.method == ref["method"]
    for key, values in fit.coef.pipe(lambda c: {"estimate": c, "se": fit.se, "zval": fit.zval,
                                                "pval": fit.pval, "ci_lb": fit.ci["ci_lb"],
                                                "ci_ub": fit.ci["ci_ub"]}).items():
        assert_close(values, ref["coef"][key], f"{what} {key}")
    assert_close(fit.vcov.to_numpy(), ref["vcov"]["values"], f"{what} vcov")
    assert_close(fit.tau2.iloc[0], ref["tau2"], f"{what} tau2")
    for attr, key in (("q", "QE"), ("i2", "I2"), ("h2", "H2"), ("se_tau2", "se_tau2")):
        assert_close(getattr(fit, attr), ref[key], f"{what} {key}")
    for attr, key in (("loglik", "loglik"), ("aic", "AIC"), ("bic", "BIC"), ("aicc", "AICc")):
        assert abs(getattr(fit, attr) - ref[key]) < ABS_IC, f"{what} {key}"


# regression test --------------------------------------------------------------

def test_regtest_matches_metafor():
    ref = REF["A_bcg"]["regtest"]
    test = _bcg_fit().regtest()
    assert (test.model, test.predictor) == (ref["model"], ref["predictor"])
    assert_close([test.zval, test.pval], [ref["zval"], ref["pval"]], "z, p")
    assert np.isnan(test.dfs) and ref["dfs"] is None
    assert_close([test.limit_estimate, test.limit_ci_lb, test.limit_ci_ub],
                 [ref["limit_estimate"], ref["limit_ci_lb"], ref["limit_ci_ub"]], "limit estimate")
    assert list(test.fit.coef.index) == ["Intercept", "sei"]
    _assert_fit(test.fit, ref["fit"], "regtest model")
    assert "z = -0.8033, p = 0.4218" in str(test)


def test_regtest_lm_is_eggers_regression_of_standard_normal_deviates_on_precision():
    dat = _bcg()
    test = _bcg_fit().regtest(model="lm")
    # regtest(fit_reml, model = "lm"): zval, pval, dfs, est, ci.lb, ci.ub
    assert_close([test.zval, test.pval, test.dfs, test.limit_estimate, test.limit_ci_lb, test.limit_ci_ub],
                 [-1.401282002289333, 0.188706995081979, 11.0, -0.190928642359820, -0.675332350276082,
                  0.293475065556442], "lm")
    # Egger et al. (1997): y / se = b0 + b1 / se by ordinary least squares; the intercept b0 is the
    # slope of sei in the weighted regression, with the same t statistic
    se = np.sqrt(dat["vi"].to_numpy())
    A = np.column_stack([np.ones(13), 1 / se])
    snd = dat["yi"].to_numpy() / se
    b, rss, *_ = np.linalg.lstsq(A, snd, rcond=None)
    se_b0 = np.sqrt(rss[0] / 11 * np.linalg.inv(A.T @ A)[0, 0])
    assert test.zval == pytest.approx(b[0] / se_b0, rel=1e-10)
    assert test.limit_estimate == pytest.approx(b[1], rel=1e-10)


def test_regtest_with_sample_size_predictors():
    dat, fit = _writing()
    # regtest(fb): zval, pval, est, ci.lb, ci.ub
    test = fit.regtest()
    assert_close([test.zval, test.pval, test.limit_estimate, test.limit_ci_lb, test.limit_ci_ub],
                 [2.4905202222166847, 0.0127556236704939, -0.0361732937698583, -0.2500020057359426,
                  0.1776554181962260], "sei")
    # regtest(fb, model = "lm", predictor = "sqrtninv", ni = ni): zval, pval, dfs
    test = fit.regtest(model="lm", predictor="sqrtninv", ni=dat["ni"])
    assert_close([test.zval, test.pval, test.dfs], [2.4840770748667134, 0.0166919634533902, 46.0], "sqrtninv")
    assert not np.isnan(test.limit_estimate)
    # regtest(fb, predictor = "ni", ni = ni): zval, pval; no limit estimate
    test = fit.regtest(predictor="ni", ni=dat["ni"].to_numpy())
    assert_close([test.zval, test.pval], [-2.1175962918177809, 0.0342092725014985], "ni")
    assert np.isnan(test.limit_estimate)


def test_regtest_with_moderators_has_no_limit_estimate():
    test = bm.MetaModel("yi ~ ablat", data=_bcg(), vi="vi").fit().regtest()
    # regtest(rma(yi, vi, mods = ~ ablat, data = dat)): zval, pval; est is NULL
    assert_close([test.zval, test.pval], [-0.598950482508052, 0.549205905742413], "mods")
    assert np.isnan(test.limit_estimate) and "Limit" not in str(test)


def test_multilevel_regtest_is_the_model_with_sei_as_moderator():
    school = bm.datasets.load("school").assign(sei=lambda d: np.sqrt(d["var"]))
    fit = bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study").fit()
    test = fit.regtest()
    direct = bm.MetaModel("effect ~ sei", data=school, vi="var", random="~ 1 | district/study").fit()
    assert test.zval == pytest.approx(direct.zval["sei"], rel=1e-6)
    # rma.mv(effect, var, mods = ~ sei, random = ~ 1 | district/study, data = school): zval, pval of sei
    assert_close([test.zval, test.pval], [-1.1784080308875746, 0.2386339776128701], "multilevel")
    assert_close(test.fit.sigma2.to_numpy(), [0.0693679648747942, 0.0314227218980281], "multilevel sigma2")


def test_regtest_errors():
    fit = _bcg_fit()
    with pytest.raises(SpecificationError, match="model: expected 'rma' or 'lm'"):
        fit.regtest(model="glm")
    with pytest.raises(SpecificationError, match="predictor: expected one of"):
        fit.regtest(predictor="n")
    with pytest.raises(SpecificationError, match="ni: predictor 'ninv' needs the sample sizes"):
        fit.regtest(predictor="ninv")
    with pytest.raises(SpecificationError, match="ni: expected 13 sample sizes"):
        fit.regtest(predictor="ni", ni=[10, 20])
    with pytest.raises(SpecificationError, match=r"regtest: needs more rows \(2\)"):
        bm.MetaModel("yi ~ 1", data=_bcg().head(2), vi="vi").fit().regtest()
    equal = _bcg().assign(vi=0.1)
    with pytest.raises(SpecificationError, match="not of full rank after adding 'sei'"):
        bm.MetaModel("yi ~ 1", data=equal, vi="vi").fit().regtest()


# trim and fill --------------------------------------------------------------

def test_trimfill_matches_metafor():
    ref = REF["A_bcg"]["trimfill"]
    tf = _bcg_fit().trimfill()
    assert (tf.estimator, tf.k0, tf.side) == (ref["estimator"], ref["k0"], ref["side"])
    assert_close(tf.se_k0, ref["se_k0"], "se_k0")
    assert np.isnan(tf.p_k0) and ref["p_k0"] is None
    assert_close(tf.data["yi"], ref["yi"], "filled yi")
    assert_close(tf.data["vi"], ref["vi"], "filled vi")
    assert tf.data["fill"].tolist() == ref["fill"]
    assert tf.data.index[-1] == "Filled 1"
    _assert_fit(tf.fit, ref, "filled model")
    assert_close([tf.estimate, tf.se, tf.ci_lb, tf.ci_ub, tf.tau2],
                 [ref["coef"]["estimate"][0], ref["coef"]["se"][0], ref["coef"]["ci_lb"][0],
                  ref["coef"]["ci_ub"][0], ref["tau2"]], "summary")


def test_trimfill_estimators_and_sides():
    fit = _bcg_fit()
    # trimfill(fit_reml, estimator = "R0"): k0 = 0, se.k0 = sqrt(2), p.k0 = 0.5, side "right"
    tf = fit.trimfill(estimator="R0")
    assert (tf.k0, tf.side, tf.p_k0) == (0, "right", 0.5)
    assert tf.se_k0 == pytest.approx(np.sqrt(2))
    assert tf.fit is fit and not tf.data["fill"].any()
    # trimfill(fit_reml, estimator = "Q0"): k0 = 1, se.k0 = 2.77862574085483
    tf = fit.trimfill(estimator="Q0")
    assert tf.k0 == 1 and tf.se_k0 == pytest.approx(2.77862574085483, rel=1e-10)
    # trimfill(fit_reml, side = "left"): k0 = 0, se.k0 = 2.166658537010389
    tf = fit.trimfill(side="left")
    assert (tf.k0, tf.side) == (0, "left") and tf.se_k0 == pytest.approx(2.166658537010389, rel=1e-10)


@pytest.mark.parametrize("estimator, k0, se_k0, p_k0", [("L0", 7, 4.5551226725600280, None),
                                                        ("R0", 0, 1.4142135623730951, 0.5),
                                                        ("Q0", 7, 5.4096427717592448, None)])
def test_trimfill_with_seven_missing_studies(estimator, k0, se_k0, p_k0):
    _, fit = _writing()
    tf = fit.trimfill(estimator=estimator)
    # trimfill(fb, estimator = ...): k0, se.k0, p.k0, coef, se, tau2 (side "left")
    assert (tf.k0, tf.side) == (k0, "left")
    assert tf.se_k0 == pytest.approx(se_k0, rel=1e-10)
    assert (np.isnan(tf.p_k0) if p_k0 is None else tf.p_k0 == p_k0)
    expected = [0.1585758524513382, 0.0526745424965216, 0.0905467728773523] if k0 else \
        [0.2219286216846570, 0.0460339067638597, 0.0499386743451695]
    assert_close([tf.estimate, tf.se, tf.tau2], expected, "filled fit")
    assert tf.data["fill"].sum() == k0 and len(tf.data) == 48 + k0


def test_trimfill_errors():
    with pytest.raises(SpecificationError, match="without moderators"):
        bm.MetaModel("yi ~ ablat", data=_bcg(), vi="vi").fit().trimfill()
    with pytest.raises(SpecificationError, match="side: expected 'left', 'right' or None"):
        _bcg_fit().trimfill(side="up")
    with pytest.raises(SpecificationError, match="estimator: expected one of L0, R0, Q0"):
        _bcg_fit().trimfill(estimator="L1")
    school = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district").fit()
    with pytest.raises(SpecificationError, match="standard random-effects model"):
        school.trimfill()
