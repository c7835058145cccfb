"""The Bayesian engine for location-scale models.

The graph's log-density equals the likelihood engine's (to 1e-8), the posterior
mode under flat priors is the ML (REML, with the restricted term) estimate, the
documented default priors and overrides are used, NUTS stays well behaved where
ML drifts, posterior means match exact numerical integration, and a multilevel
location-scale model recovers simulated parameters.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from location_scale_cases import (
    ALPHA_DISTRICT,
    ALPHA_STUDY,
    BETA,
    dense_loglik_location_scale,
    simulate,
)
from pymc_extras.prior import Prior
from scipy import stats

import bayesmeta as bm
from bayesmeta.engines.bayes.priors import resolve_priors
from bayesmeta.engines.mode.objective import Objective
from bayesmeta.likelihood.graph import block_loglik

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")

#: MAP (flat priors) against ML/REML: the guide's relative tolerance (absolute only at the boundary).
MODE_TOL = 1e-4


def _writing(scale="~ length", formula="yi ~ length"):
    dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    return bm.MetaModel(formula, data=dat, vi="vi", scale=scale)


def _multilevel(n_districts=12, seed=1):
    dat = simulate(seed, n_districts=n_districts)
    return bm.MetaModel("yi ~ x", data=dat, vi="vi", random="~ 1 | district/study",
                        scale={"district": "~ w", "study": "~ z"})


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)
        return fn(*args, **kwargs)


@pytest.mark.parametrize("make", [_writing, _multilevel], ids=["row-level", "multilevel"])
def test_graph_log_density_equals_the_likelihood(make):
    model = make()
    design, param = model.design, model.param
    beta = pt.vector("beta")
    variances = [pt.vector(f"v{k}") if sc is not None else None for k, sc in enumerate(param.scale_models)]
    G = [None if sc is not None else pt.matrix(f"G{k}") for k, sc in enumerate(param.scale_models)]
    inputs = [beta] + [v for v in variances if v is not None] + [g for g in G if g is not None]
    compiled = {r: pytensor.function(inputs, [x for x in block_loglik(design, beta, G, r, variances) if x is not None],
                                     mode="FAST_COMPILE", on_unused_input="ignore") for r in (False, True)}
    rng = np.random.default_rng(4)
    for _ in range(2):
        theta = rng.normal(-0.5, 0.6, param.n_free)
        groups, _ = param.group_variances(theta)
        values = [groups[k] for k, sc in enumerate(param.scale_models) if sc is not None]
        values += [np.array([[groups[k][0]]]) for k, sc in enumerate(param.scale_models) if sc is None]
        b = rng.normal(0, 0.3, design.p)
        (logp,) = compiled[False](b, *values)
        S = np.diag(design.V.diagonal())
        for enc, v in zip(design.encodings, groups):
            S = S + (enc.codes[:, None] == enc.codes[None, :]) * v[enc.codes][:, None]
        expected = stats.multivariate_normal(design.X @ b, S).logpdf(design.y)
        assert abs(logp.sum() - expected) < 1e-8 * abs(expected)
        ev = Objective(design, param, True).evaluate(theta)
        logp, term = compiled[True](ev.beta, *values)
        assert abs(logp.sum() + term - ev.loglik) < 1e-8 * abs(ev.loglik)
        assert abs(ev.loglik - dense_loglik_location_scale(model, theta, True)) < 1e-8 * abs(ev.loglik)


@pytest.mark.parametrize("make", [_writing, _multilevel], ids=["row-level", "multilevel"])
@pytest.mark.parametrize("restricted, method", [(False, "ML"), (True, "REML")])
def test_flat_prior_mode_is_the_likelihood_estimate(make, restricted, method):
    model = make()
    mode, fit = model.fit("MAP", priors="flat", restricted=restricted), model.fit(method)
    for name in ("coef", "se", "alpha", "alpha_se", "sigma2"):
        np.testing.assert_allclose(getattr(mode, name).to_numpy(), getattr(fit, name).to_numpy(), rtol=MODE_TOL,
                                   atol=1e-8, err_msg=name)
    assert abs(mode.loglik - fit.loglik) < 1e-6


def test_default_priors_follow_the_documented_rule():
    model = _writing(scale="~ length + meta")
    priors = resolve_priors(model.design, model.param)
    sc = model.param.scale_models[0]
    sy = np.std(model.design.y)
    w = sc.W[:, 1:]
    width = 2.5 * (1 + np.sum(np.abs(w.mean(axis=0)) / w.std(axis=0)))
    assert priors.alpha_names == ("Intercept", "length", "meta")
    expected = [("Normal", 2 * np.log(sy), width), ("Normal", 0.0, 2.5 / w[:, 0].std()),
                ("Normal", 0.0, 2.5 / w[:, 1].std())]
    for prior, (dist, mu, sigma) in zip(priors.alpha, expected):
        assert prior.distribution == dist
        assert prior.parameters["mu"] == pytest.approx(mu, abs=1e-6)
        assert prior.parameters["sigma"] == pytest.approx(sigma, abs=1e-6)
    assert "alpha[meta]" in priors.table()["parameter"].tolist()


def test_prior_overrides_and_errors():
    model = _writing(scale="~ C(grade)", formula="yi ~ 1")
    custom = Prior("Normal", mu=0.0, sigma=1.0)
    priors = resolve_priors(model.design, model.param, {"alpha": custom,
                                                         "alpha[C(grade)[T.3]]": Prior("Normal", mu=1.0, sigma=0.5)})
    assert priors.alpha[0] == custom and priors.alpha[2].parameters == {"mu": 1.0, "sigma": 0.5}
    with pytest.raises(bm.SpecificationError, match=r"'alpha\[grade\]' matches no parameter; alpha parameters: "
                                                    r"Intercept, C\(grade\)\[T.2\]"):
        resolve_priors(model.design, model.param, {"alpha[grade]": custom})
    flat = resolve_priors(model.design, model.param, "flat")
    assert all(p.distribution == "Flat" for p in flat.alpha)


def test_priors_that_are_not_normal_go_on_alpha_directly():
    """A Student-t prior cannot be moved to the standardised coefficients: alpha itself is sampled."""
    model = _writing()
    pm_model = model.build_pymc({"alpha": Prior("StudentT", nu=3, mu=0.0, sigma=2.0)})
    assert "alpha" in [v.name for v in pm_model.free_RVs]
    default = model.build_pymc()
    assert "alpha_std" in [v.name for v in default.free_RVs] and "alpha" in [v.name for v in default.deterministics]
    mode = model.fit("MAP", priors={"alpha": Prior("StudentT", nu=3, mu=0.0, sigma=2.0)})
    assert np.all(np.isfinite(mode.alpha_se))


def test_short_run_outputs_and_predictions():
    model = _multilevel()
    post = _quiet(model.sample, draws=100, tune=100, chains=2, random_seed=2, progressbar=False)
    posterior = post.idata.posterior
    assert posterior["alpha"].dims == ("chain", "draw", "scale_term")
    assert list(posterior["alpha"].coords["scale_term"].values) == list(model.fit().alpha.index)
    assert "sigma2" not in posterior and "u_district" in posterior and "u_study" in posterior
    assert post.idata.posterior_predictive["y"].shape[-1] == model.design.n
    table = bm.compare(model.fit(), post)
    assert "alpha[district: w]" in table.index
    variance = post.predict_variance(pd.DataFrame({"w": [0.0, 1.0]}), term="district")
    alpha = posterior["alpha"].values.reshape(-1, 4)
    np.testing.assert_allclose(variance["log_pred"], [alpha[:, 0].mean(), (alpha[:, 0] + alpha[:, 1]).mean()])
    log_var = alpha[:, [0]] + [[0.0, 1.0]] * alpha[:, [1]]  # w = 0 and w = 1
    np.testing.assert_allclose(variance["median"], np.median(np.exp(log_var), axis=0))
    np.testing.assert_allclose(variance["pred"], np.exp(log_var).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(variance[["ci_lb", "ci_ub"]].to_numpy().T, np.quantile(np.exp(log_var), [0.025, 0.975],
                                                                                    axis=0), rtol=1e-12)
    np.testing.assert_allclose(variance["log_se"], log_var.std(axis=0, ddof=1), rtol=1e-12)
    new = post.predict(pd.DataFrame({"x": [0.0], "w": [1.0], "z": [0.5]}))
    assert new["pi_ub"].iloc[0] - new["pi_lb"].iloc[0] > new["ci_ub"].iloc[0] - new["ci_lb"].iloc[0]
    prior = model.sample_prior_predictive(draws=50, random_seed=1)
    assert prior.prior["alpha"].shape == (1, 50, 4) and prior.prior_predictive["y"].shape == (1, 50, model.design.n)


def test_laplace_and_default_map():
    model = _writing()
    mode, reml = model.fit("MAP"), model.fit("REML")
    assert np.all(np.abs(mode.alpha - reml.alpha) < reml.alpha_se)  # weak priors: near REML
    post = model.fit("laplace", draws=300, random_seed=1)
    assert post.idata.posterior["alpha"].shape == (1, 300, 2)


@pytest.mark.slow
def test_nuts_is_well_behaved_where_ml_drifts():
    """bcg with scale ~ alloc: ML sends alpha[random] to -inf (test_drift.py); NUTS under the default
    priors has no divergences and a finite posterior for it."""
    model = bm.MetaModel("logrr ~ ablat", data=bm.datasets.load("bcg"), vi="logrrvar", scale="~ alloc")
    with pytest.warns(bm.DriftWarning):
        assert model.fit("ML").drifting == ["alloc[T.random]"]
    post = model.sample(draws=1000, tune=1000, chains=4, random_seed=1, progressbar=False)
    assert post.diagnostics["divergences"] == 0 and post.problems == []
    drifting = post.idata.posterior["alpha"].sel(scale_term="alloc[T.random]").values
    assert -15 < drifting.mean() < 0 and drifting.std() < 6


def _exact_posterior(model, prior_mu, prior_sd, step=0.1):
    """Posterior means of alpha and beta by numerical integration: flat prior on beta (integrated out,
    giving the restricted likelihood), independent Normal priors on alpha, midpoint rule."""
    objective = Objective(model.design, model.param, True)
    axes = [np.arange(m - 6 * s, m + 6 * s, step) + step / 2 for m, s in zip(prior_mu, prior_sd)]
    grid = np.array(np.meshgrid(*axes, indexing="ij")).reshape(len(axes), -1).T
    to_theta = np.linalg.inv(model.param.alpha_transform())
    logw, betas = np.empty(len(grid)), np.empty(len(grid))
    for i, alpha in enumerate(grid):
        ev = objective.evaluate(to_theta @ alpha)
        logw[i], betas[i] = ev.loglik, ev.beta[0]
    logw += stats.norm(prior_mu, prior_sd).logpdf(grid).sum(axis=1)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    return w @ grid, float(w @ betas)


def _within_mcse(draws, exact, what, k=4.0):
    mcse = float(np.ravel(az.mcse(draws, method="mean"))[0])
    assert abs(draws.mean() - exact) < k * mcse, f"{what}: {draws.mean()} vs exact {exact} (mcse {mcse})"


@pytest.mark.slow
def test_posterior_means_match_numerical_integration():
    model = _writing(scale="~ meta", formula="yi ~ 1")
    mu, sd = np.array([-3.0, 0.0]), np.array([1.5, 1.5])
    priors = {"beta": Prior("Flat"), "alpha[Intercept]": Prior("Normal", mu=mu[0], sigma=sd[0]),
              "alpha[meta]": Prior("Normal", mu=mu[1], sigma=sd[1])}
    exact_alpha, exact_beta = _exact_posterior(model, mu, sd)
    post = _quiet(model.sample, draws=2000, tune=1000, chains=4, random_seed=11, priors=priors, progressbar=False)
    alpha = post.idata.posterior["alpha"].values
    _within_mcse(alpha[..., 0], exact_alpha[0], "alpha[Intercept]")
    _within_mcse(alpha[..., 1], exact_alpha[1], "alpha[meta]")
    _within_mcse(post.idata.posterior["beta"].values[..., 0], exact_beta, "beta")


@pytest.mark.slow
def test_multilevel_location_scale_recovers_simulated_parameters():
    """150 districts: posterior means within 3 posterior SDs of the truth, and close to REML."""
    model = _multilevel(n_districts=150, seed=2024)
    post = _quiet(model.sample, draws=500, tune=500, chains=2, random_seed=3, progressbar=False)
    assert post.diagnostics["divergences"] == 0
    alpha = post.idata.posterior["alpha"].values.reshape(-1, 4)
    truth = np.r_[ALPHA_DISTRICT, ALPHA_STUDY]
    assert np.all(np.abs(alpha.mean(axis=0) - truth) < 3 * alpha.std(axis=0)), (alpha.mean(axis=0), truth)
    beta = post.idata.posterior["beta"].values.reshape(-1, 2)
    assert np.all(np.abs(beta.mean(axis=0) - BETA) < 3 * beta.std(axis=0))
    reml = model.fit("REML")
    assert np.all(np.abs(alpha.mean(axis=0) - reml.alpha.to_numpy()) < reml.alpha_se.to_numpy())
