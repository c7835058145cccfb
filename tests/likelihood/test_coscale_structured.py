"""Issue 17, item 1 (ML/REML): scale models of a structured term's SDs and correlation. The profiled
likelihood against a dense multivariate-normal one built pair by pair in the test (complete and incomplete
clusters), its gradient against finite differences, and the plain structure as the special case with the
default formulas."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from coscale_cases import ALPHA, ZETA, dense_sigma, simulate
from engine_tools import dense_profile_loglik
from reference_tools import assert_close, load_fixture

import bayesmeta as bm
from bayesmeta.engines.mode.objective import Objective
from bayesmeta.errors import SpecificationError
from tests.cases import berkey_blocks

COSCALE = {"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat", "rho": "~ habitat"}}


def _model(dat, blocks, struct="UN", scale=COSCALE):
    return bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, random="~ outcome | study", struct=struct,
                        scale=scale)


def _theta(model, alpha, zeta):
    param = model.param
    return param.theta_from_natural([(np.zeros(0), np.zeros(0))], alpha=alpha, zeta=zeta)


@pytest.mark.parametrize("missing", [0.0, 0.25])
@pytest.mark.parametrize("struct,correlation", [("UN", "exchangeable"), ("HCS", "exchangeable"),
                                                ("HAR", "autoregressive")])
@pytest.mark.parametrize("reml", [False, True])
def test_likelihood_equals_dense_normal(missing, struct, correlation, reml):
    dat, blocks = simulate(5, n_studies=25, missing=missing)
    if missing:
        assert dat.groupby("study").size().min() == 1  # some clusters lack an outcome
    model = _model(dat, blocks, struct)
    rng = np.random.default_rng(2)
    for _ in range(3):
        alpha, zeta = ALPHA + rng.normal(0, 0.5, 4), ZETA + rng.normal(0, 0.5, 2)
        theta = _theta(model, alpha, zeta)
        np.testing.assert_allclose(model.param.alpha(theta), alpha, rtol=1e-12)
        np.testing.assert_allclose(model.param.zeta(theta), zeta, rtol=1e-12)
        expected = dense_profile_loglik(model.design, dense_sigma(dat, blocks, alpha, zeta, correlation), reml)[0]
        got = Objective(model.design, model.param, reml).evaluate(theta).loglik
        assert got == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("reml", [False, True])
def test_gradient_equals_finite_differences(reml):
    dat, blocks = simulate(6, n_studies=20, missing=0.2)
    model = _model(dat, blocks)
    objective = Objective(model.design, model.param, reml)
    theta = _theta(model, ALPHA + 0.3, ZETA - 0.2)
    _, grad = objective(theta)
    h = 1e-6
    numeric = [(objective.loglik(theta - h * e) - objective.loglik(theta + h * e)) / (2 * h)
               for e in np.eye(len(theta))]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("struct,scale", [
    ("UN", {"tau": "~ 0 + outcome", "rho": "~ 1"}),
    ("HCS", {"rho": "~ 1"}),   # the default tau formula of HCS: one variance per outcome
    ("CS", "~ 1"),             # one variance; the correlation's default formula
])
def test_default_formulas_are_the_plain_structure(struct, scale):
    dat = bm.datasets.load("berkey1998")
    blocks = berkey_blocks(dat)
    plain = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, random="~ outcome | trial",
                         struct=struct).fit("REML")
    coscale = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, random="~ outcome | trial", struct=struct,
                           scale={"outcome | trial": scale}).fit("REML")
    assert coscale.loglik == pytest.approx(plain.loglik, abs=1e-8)
    # and metafor's rma.mv of the plain structure (struct="UN" is HCS with two outcomes)
    ref = load_fixture("berkey")[struct.lower()]
    assert_close(coscale.loglik, ref["loglik"], "loglik")
    assert_close(coscale.coef.to_numpy(), ref["coef"], "coef")
    assert_close(np.exp(coscale.alpha.to_numpy()), ref["tau2"], "tau2")
    assert_close(np.tanh(coscale.zeta.to_numpy()), ref["rho"], "rho")
    np.testing.assert_allclose(coscale.coef, plain.coef, atol=1e-6)
    np.testing.assert_allclose(np.exp(coscale.alpha), plain.tau2.to_numpy()[:len(coscale.alpha)], rtol=1e-4)
    assert np.tanh(coscale.zeta.iloc[0]) == pytest.approx(float(plain.rho.iloc[0]), abs=1e-5)
    # the delta method carries the plain fit's SEs (inverse Hessian) to the log and atanh scales
    table = plain.table()
    tau2, rho = plain.tau2.to_numpy(), float(plain.rho.iloc[0])
    np.testing.assert_allclose(coscale.alpha_se, table["se"].to_numpy()[2:2 + len(tau2)] / tau2, rtol=2e-3)
    assert coscale.zeta_se.iloc[0] == pytest.approx(table["se"].iloc[-1] / (1 - rho ** 2), rel=2e-3)


def test_summary_and_tests_of_the_correlation_model():
    dat, blocks = simulate(7, n_studies=80)
    fit = _model(dat, blocks).fit("REML")
    assert list(fit.zeta.index) == ["Intercept", "habitat[T.terrestrial]"]
    assert "zeta[habitat[T.terrestrial]]" in fit.table().index
    test = fit.wald_test(part="correlation")
    assert test.terms == ["habitat[T.terrestrial]"]
    assert test.statistic == pytest.approx((fit.zeta.iloc[1] / fit.zeta_se.iloc[1]) ** 2, rel=1e-10)
    assert "Model Results (Correlation; outcome | study: atanh(rho) ~ habitat)" in fit.summary()


def test_errors_name_cells_and_structures():
    dat, blocks = simulate(8, n_studies=15)
    dat["row_moderator"] = np.arange(len(dat), dtype=float)
    dat.loc[dat["study"] == "s2", "study"] = "s1"  # two rows in the cells of study s1
    with pytest.raises(SpecificationError, match=r"vary within .* cluster\(s\) of 'outcome \| study': s1: A"):
        _model(dat, blocks, scale={"outcome | study": {"tau": "~ row_moderator"}})
    with pytest.raises(SpecificationError, match=r"\['rho'\].*vary within"):
        _model(dat, blocks, scale={"outcome | study": {"rho": "~ row_moderator"}})
    with pytest.raises(SpecificationError, match="has no correlation to model"):
        _model(dat, blocks, struct="DIAG", scale={"outcome | study": {"rho": "~ habitat"}})
    with pytest.raises(SpecificationError, match="keys 'tau' and/or 'rho'"):
        _model(dat, blocks, scale={"outcome | study": {"sigma": "~ habitat"}})
    with pytest.raises(SpecificationError, match="cannot be fixed"):
        bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, random="~ outcome | study", struct="UN",
                     scale=COSCALE, fixed={"rho": 0.5})
    three = dat.copy()
    three.loc[three.index[:6], "outcome"] = "C"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SpecificationError, match="has 3 correlations"):
            _model(three, blocks, scale={"outcome | study": {"rho": "~ habitat"}})


def test_predicted_variances_and_correlations():
    dat, blocks = simulate(7, n_studies=80)
    fit = _model(dat, blocks).fit("REML")
    new = pd.DataFrame({"outcome": ["A", "B", "A"], "habitat": ["marine", "marine", "terrestrial"]})
    variances = fit.predict_variance(new)
    W = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0]], float)
    np.testing.assert_allclose(variances["pred"], np.exp(W @ fit.alpha.to_numpy()), rtol=1e-12)
    np.testing.assert_allclose(variances["log_se"], np.sqrt(np.diag(W @ fit.alpha_vcov.to_numpy() @ W.T)),
                               rtol=1e-12)
    correlations = fit.predict_correlation(new)
    U = np.array([[1, 0], [1, 0], [1, 1]], float)
    np.testing.assert_allclose(correlations["pred"], np.tanh(U @ fit.zeta.to_numpy()), rtol=1e-12)
    crit = 1.959963984540054
    np.testing.assert_allclose(correlations["ci_ub"], np.tanh(U @ fit.zeta.to_numpy() + crit * correlations["z_se"]),
                               rtol=1e-10)
    # every cell of the data, and the marginal prediction intervals of its rows use the cells' variances
    assert len(fit.predict_variance()) == len(dat)
    pred = fit.predict()
    cells = np.exp(fit.predict_variance()["log_pred"].to_numpy())
    np.testing.assert_allclose(pred["pi_ub"] - pred["pred"],
                               crit * np.sqrt(pred["se"].to_numpy() ** 2 + cells), rtol=1e-8)


def test_reml_recovers_simulated_coefficients():
    dat, blocks = simulate(11, n_studies=300)  # 10% of the outcomes missing
    assert dat.groupby("study").size().min() == 1
    fit = _model(dat, blocks).fit("REML")
    assert fit.converged
    assert np.all(np.abs(fit.alpha.to_numpy() - ALPHA) < 3 * fit.alpha_se.to_numpy())
    assert np.all(np.abs(fit.zeta.to_numpy() - ZETA) < 3 * fit.zeta_se.to_numpy())


def test_profile_intervals_point_to_the_wald_intervals():
    dat, blocks = simulate(7, n_studies=40)
    fit = _model(dat, blocks).fit("REML")
    with pytest.raises(SpecificationError, match=r"Wald intervals: fit.alpha_ci, fit.zeta_ci"):
        fit.confint(progressbar=False)
    with pytest.raises(SpecificationError, match=r"profiles of scale-model coefficients are not available"):
        fit.profile("zeta[Intercept]", points=3, progressbar=False)
