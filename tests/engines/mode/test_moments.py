"""Estimators of tau^2 other than ML/REML (m.fit(method="DL" | "HE" | "HS" | "SJ" | "EB" | "PM")).

Fixture: tests/reference/fixtures/inference.json, entry A_bcg.tau2_methods (metafor 3.8
``rma(yi, vi, method = ...)`` on the BCG log risk ratios, without and with the moderator
ablat): tau2, se.tau2, coefficients and their covariance, I^2, H^2, vt, QE, logLik,
deviance and information criteria. The traces of P are checked against dense matrices.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from reference_tools import ABS_IC, FIXTURES, assert_close

import bayesmeta as bm
from bayesmeta.engines.mode.moments import MOMENT_METHODS, Projection, moment_tau2
from bayesmeta.errors import SpecificationError

with open(FIXTURES / "inference.json") as _fh:
    REF = json.load(_fh)
METHODS = REF["A_bcg"]["tau2_methods"]
FORMULAS = {"intercept": "yi ~ 1", "ablat": "yi ~ ablat"}


def _bcg() -> pd.DataFrame:
    return pd.DataFrame({k: REF["datasets"]["bcg"][k] for k in ("trial", "ablat", "yi", "vi")})


@pytest.mark.parametrize("mods", list(FORMULAS))
@pytest.mark.parametrize("method", list(MOMENT_METHODS) + ["ML", "REML"])
def test_matches_metafor(mods, method):
    ref = METHODS[mods][method]
    fit = bm.MetaModel(FORMULAS[mods], data=_bcg(), vi="vi").fit(method)
    assert fit.method == method and ref["method"] == method
    assert_close(fit.tau2.iloc[0], ref["tau2"], "tau2")
    assert_close(fit.se_tau2, ref["se_tau2"], "se_tau2")
    assert_close(fit.coef.to_numpy(), ref["coef"]["estimate"], "coef")
    assert_close(fit.se.to_numpy(), ref["coef"]["se"], "se")
    assert_close(fit.zval.to_numpy(), ref["coef"]["zval"], "zval")
    assert_close(fit.pval.to_numpy(), ref["coef"]["pval"], "pval")
    assert_close(fit.ci.to_numpy(), np.column_stack([ref["coef"]["ci_lb"], ref["coef"]["ci_ub"]]), "ci")
    assert_close(fit.vcov.to_numpy(), ref["vcov"]["values"], "vcov")
    assert_close(fit.i2, ref["I2"], "I2")
    assert_close(fit.h2, ref["H2"], "H2")
    assert_close(fit.vt, ref["vt"], "vt")
    assert_close(fit.q, ref["QE"], "QE")
    assert_close(fit.q_pvalue, ref["QEp"], "QEp")
    wald = fit.wald_test()
    assert_close(wald.statistic, ref["QM"], "QM")
    assert_close(wald.pvalue, ref["QMp"], "QMp")
    assert fit.parms == ref["parms"]
    # metafor's logLik() of a moment fit is the ML log-likelihood at the estimate
    for ours, theirs in ((fit.loglik, "loglik"), (fit.deviance, "deviance"), (fit.aic, "AIC"), (fit.bic, "BIC"),
                         (fit.aicc, "AICc")):
        assert abs(ours - ref[theirs]) < ABS_IC, f"{theirs}: {ours} vs {ref[theirs]}"


def test_moment_fits_agree_with_metafor_to_machine_precision():
    """The closed forms leave no optimiser tolerance: the estimates agree to ~1e-13."""
    for mods, formula in FORMULAS.items():
        model = bm.MetaModel(formula, data=_bcg(), vi="vi")
        for method in MOMENT_METHODS:
            ref = METHODS[mods][method]
            fit = model.fit(method)
            assert abs(fit.tau2.iloc[0] / ref["tau2"] - 1) < 1e-12
            assert abs(fit.se_tau2 / ref["se_tau2"] - 1) < 1e-12
            assert np.allclose(fit.coef.to_numpy(), ref["coef"]["estimate"], rtol=1e-12, atol=0)


def _dense_P(w, X):
    W = np.diag(w)
    return W - W @ X @ np.linalg.solve(X.T @ W @ X, X.T @ W)


def test_projection_traces_match_dense_matrices():
    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(9), rng.normal(size=9), rng.normal(size=9)])
    w, d1, d2, y = rng.uniform(0.5, 3, 9), rng.uniform(0.1, 2, 9), rng.uniform(0.1, 2, 9), rng.normal(size=9)
    P, dense = Projection(w, X), _dense_P(w, X)
    assert np.isclose(P.quad(y), y @ dense @ y, rtol=1e-12)
    assert np.isclose(P.trace(), np.trace(dense), rtol=1e-12)
    assert np.isclose(P.trace(d1), np.trace(dense @ np.diag(d1)), rtol=1e-12)
    assert np.isclose(P.trace2(), np.sum(dense * dense), rtol=1e-12)
    assert np.isclose(P.trace2(d1, d2), np.trace(dense @ np.diag(d1) @ dense @ np.diag(d2)), rtol=1e-12)
    PV = dense @ np.diag(d1)
    assert np.isclose(P.trace2(d1, d1), np.sum(PV * PV.T), rtol=1e-12)  # metafor's sum(PV * t(PV))
    assert np.isclose(P.trace2(d1), np.sum(PV * dense), rtol=1e-12)  # metafor's sum(PV * P)


@pytest.mark.parametrize("method", ["PM", "EB"])
def test_generalised_q_equals_its_degrees_of_freedom(method):
    fit = bm.MetaModel("yi ~ ablat", data=_bcg(), vi="vi").fit(method)
    assert np.isclose(fit.estimate.evaluation.quad, fit.k - fit.p, rtol=1e-12)


@pytest.mark.parametrize("method", MOMENT_METHODS)
def test_negative_estimates_are_truncated_at_zero(method):
    """Trials 2, 3, 4 and 10: Q = 0.19 on 3 df, far below its expectation."""
    dat = _bcg().iloc[[1, 2, 3, 9]]
    fit = bm.MetaModel("yi ~ 1", data=dat, vi="vi").fit(method)
    if method != "SJ":  # SJ is positive by construction
        assert fit.tau2.iloc[0] == 0.0 and fit.boundary == ["tau2[row]"]
        assert fit.i2 == 0.0 and fit.h2 == 1.0
    assert np.isfinite(fit.se_tau2) and fit.se_tau2 > 0


def test_models_without_intercept_use_y_as_it_is():
    """metafor's rma() centres y at its mean here (DL tau2 0.3936 for yi ~ 0 + ablat on BCG); the
    estimating equation of the model as specified uses y itself."""
    dat = _bcg()
    fit = bm.MetaModel("yi ~ 0 + ablat", data=dat, vi="vi").fit("DL")
    X, v, y = dat[["ablat"]].to_numpy(float), dat["vi"].to_numpy(), dat["yi"].to_numpy()
    P = _dense_P(1 / v, X)
    assert np.isclose(fit.tau2.iloc[0], (y @ P @ y - 12) / np.trace(P), rtol=1e-12)
    assert np.isclose(fit.q, y @ P @ y, rtol=1e-12)
    assert abs(fit.tau2.iloc[0] - 0.3936144) > 0.1


def test_refit_and_fixed_tau2_keep_the_estimator():
    model = bm.MetaModel("yi ~ ablat", data=_bcg(), vi="vi")
    fit = model.fit("SJ")
    again = fit.refit()
    assert again.method == "SJ" and again.tau2.iloc[0] == fit.tau2.iloc[0]
    fixed = bm.MetaModel("yi ~ ablat", data=_bcg(), vi="vi", fixed={"tau2": 0.1}).fit("DL")
    assert fixed.tau2.iloc[0] == pytest.approx(0.1) and fixed.parms == 2 and np.isnan(fixed.se_tau2)
    assert fixed.loglik == pytest.approx(bm.MetaModel("yi ~ ablat", data=_bcg(), vi="vi",
                                                      fixed={"tau2": 0.1}).fit("ML").loglik)


def test_moment_tau2_hedges_by_hand():
    y, v = np.array([0.1, 0.5, 0.9]), np.array([0.01, 0.02, 0.04])
    # OLS residual variance (0.16) minus the mean sampling variance (0.07/3)
    assert moment_tau2(y, v, np.ones((3, 1)), "HE") == pytest.approx(0.16 - 0.07 / 3)


@pytest.mark.parametrize("kwargs, method, message", [
    ({"random": "~ 1 | trial"}, "DL", "method: 'DL' estimates tau\\^2 of the standard model \\(random=None\\)"),
    ({"scale": "~ ablat"}, "PM", "method: 'PM' cannot fit a location-scale model"),
    ({}, "XX", "method: expected one of ML, REML, FE, DL, HE, HS, SJ, EB, PM, 'MAP' or 'laplace'"),
])
def test_errors_name_the_method(kwargs, method, message):
    with pytest.raises(SpecificationError, match=message):
        bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi", **kwargs).fit(method)


def test_correlated_estimates_and_optimizer_settings_are_refused():
    dat = _bcg()
    V = np.diag(dat["vi"].to_numpy())
    V[0, 1] = V[1, 0] = 0.01
    with pytest.raises(SpecificationError, match="method: 'HS' needs independent estimates"):
        bm.MetaModel("yi ~ 1", data=dat, V=V).fit("HS")
    with pytest.raises(SpecificationError, match="control: \\['maxiter'\\] are settings of the ML/REML"):
        bm.MetaModel("yi ~ 1", data=dat, vi="vi").fit("DL", control={"maxiter": 10})
