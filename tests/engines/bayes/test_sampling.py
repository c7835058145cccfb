"""Sampling: posterior means against exact numerical integration, weak-prior centres
against REML, and no divergences on the bundled examples with default settings."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
from cases import (
    alcohol_model,
    berkey_blocks,
    berkey_model,
    gliomas_data,
    har_within,
    ishak_long,
    smoking_long,
)
from pymc_extras.prior import Prior
from scipy import stats

import bayesmeta as bm
from bayesmeta.likelihood.marginal import evaluate

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def _quiet_sample(model, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)
        return model.sample(progressbar=False, **kwargs)


def assert_row_log_likelihood(post):
    """log_likelihood["y"] is, per draw and row, log p(y_i | y_-i): within its district,
    y ~ N(beta, diag(v) + sigma2_district J + sigma2_study I), conditioned densely here."""
    dat = bm.datasets.load("school")
    posterior, loglik = post.idata.posterior, post.idata.log_likelihood["y"]
    assert loglik.dims == ("chain", "draw", "obs") and list(loglik.obs.values) == list(dat.index)
    for chain, draw in ((0, 0), (1, 59)):
        beta = posterior["beta"].values[chain, draw, 0]
        s2_district, s2_study = posterior["sigma2"].values[chain, draw]
        for district in dat["district"].unique()[:4]:
            rows = dat[dat["district"] == district]
            cov = np.diag(rows["var"]) + s2_district + s2_study * np.eye(len(rows))
            for i, label in enumerate(rows.index):
                rest = np.delete(np.arange(len(rows)), i)
                y = rows["effect"].to_numpy()
                w = np.linalg.solve(cov[np.ix_(rest, rest)], cov[rest, i])
                mean = beta + w @ (y[rest] - beta)
                sd = np.sqrt(cov[i, i] - cov[i, rest] @ w)
                expected = -0.5 * np.log(2 * np.pi) - np.log(sd) - 0.5 * ((y[i] - mean) / sd) ** 2
                assert loglik.values[chain, draw, list(dat.index).index(label)] == pytest.approx(expected, rel=1e-9)


def test_short_run_api():
    model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    with pytest.warns(bm.ConvergenceWarning, match="effective sample size"):
        post = model.sample(draws=60, tune=60, chains=2, random_seed=3, progressbar=False)
    posterior = post.idata.posterior
    assert posterior["beta"].dims == ("chain", "draw", "term")
    assert list(posterior["sigma"].coords["sigma2_component"].values) == ["district", "district/study"]
    assert posterior["sigma2"].dims == posterior["sigma"].dims
    np.testing.assert_allclose(posterior["sigma2"].values, posterior["sigma"].values ** 2)
    assert_row_log_likelihood(post)
    assert set(post.diagnostics) == {"chains", "draws", "divergences", "max_rhat", "min_ess_bulk",
                                     "min_ess_tail", "min_bfmi"}
    text = post.summary()
    assert "beta[Intercept]" in text and "sigma2[district/study]" in text and "Priors:" in text
    assert "Warning: effective sample size" in text
    table = bm.compare(model.fit(), post)
    assert list(table.columns.get_level_values(0).unique()) == ["REML", "NUTS"]
    assert table.loc["sigma2[district]", ("REML", "estimate")] == pytest.approx(0.06506, rel=1e-3)


def test_bad_sampling_arguments():
    model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var")
    with pytest.raises(bm.SpecificationError, match="sampler: expected 'pymc' or 'nutpie'"):
        model.sample(sampler="stan")
    with pytest.raises(bm.SpecificationError, match="draws: expected a positive integer"):
        model.sample(draws=0)


def _posterior_weights(model, grid_sd, prior_sd, cell=1.0):
    """Exact posterior over a grid of SD values (flat prior on beta, integrated out):
    p(sd | y) is proportional to prior(sd) x exp(restricted log-likelihood(sd)); E[beta | sd]
    is the GLS estimate at sd. ``cell``: the grid points' integration weights (for a
    non-uniform grid)."""
    logw, betas = [], []
    for point in grid_sd:
        ev = evaluate(model.design, [np.array([[s ** 2]]) for s in point], reml=True)
        logw.append(ev.loglik)
        betas.append(ev.beta)
    logw = np.array(logw) + stats.halfnorm(scale=prior_sd).logpdf(grid_sd).sum(axis=1)
    w = np.exp(logw - logw.max()) * cell
    assert w[-1] < 1e-10 * w.max(), "the grid cuts off posterior mass"
    return w / w.sum(), np.array(betas)


def _healthy_sample(model, **kwargs):
    """A run whose own diagnostics are asserted (no divergences, R-hat <= 1.01), not silenced."""
    post = model.sample(progressbar=False, **kwargs)
    assert post.diagnostics["divergences"] == 0, post.diagnostics
    assert post.diagnostics["max_rhat"] <= 1.01, post.diagnostics
    return post


def _within_mcse(idata, var, index, exact, k=4.0):
    """The posterior mean within k MCSE of the exact value, with an MCSE below 5% of the posterior SD."""
    draws = idata.posterior[var].values[..., index]
    mean = draws.mean()
    mcse = float(np.ravel(az.mcse(draws, method="mean"))[0])
    assert mcse < 0.05 * draws.std(), f"{var}[{index}]: MCSE {mcse} too large for the check"
    assert abs(mean - exact) < k * mcse, f"{var}[{index}]: {mean} vs exact {exact} (mcse {mcse})"


PRIORS = {"beta": Prior("Flat"), "sd": Prior("HalfNormal", sigma=0.5)}


def _check_one_variance(model, post, var, grid, cell=1.0):
    w, betas = _posterior_weights(model, grid[:, None], 0.5, cell)
    _within_mcse(post.idata, var, 0, float(w @ grid))
    _within_mcse(post.idata, f"{var}2", 0, float(w @ grid ** 2))
    for j in range(betas.shape[1]):
        _within_mcse(post.idata, "beta", j, float(w @ betas[:, j]))


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["pymc", "nutpie"])
def test_one_variance_posterior_means_match_numerical_integration(sampler):
    if sampler == "nutpie":
        pytest.importorskip("nutpie")
    model = bm.MetaModel("logor ~ 1", data=bm.datasets.load("bcg"), vi="logorvar")
    post = _healthy_sample(model, draws=1000, tune=1000, chains=4, random_seed=5, priors=PRIORS, sampler=sampler)
    h = 0.0005
    _check_one_variance(model, post, "tau", np.arange(h / 2, 3.0, h))  # midpoint rule


@pytest.mark.slow
def test_correlated_sampling_errors_posterior_matches_numerical_integration():
    """Berkey's bivariate outcomes with their within-trial covariance blocks and a trial intercept."""
    dat = bm.datasets.load("berkey1998")
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=berkey_blocks(dat), random="~ 1 | trial")
    post = _healthy_sample(model, draws=1000, tune=1000, chains=4, random_seed=8, priors=PRIORS)
    h = 0.0005
    _check_one_variance(model, post, "sigma", np.arange(h / 2, 3.0, h))


@pytest.mark.slow
def test_random_slope_posterior_matches_numerical_integration():
    """The alcohol model L2: a random dose slope without intercept, Greenland-Longnecker V blocks."""
    sub, v = alcohol_model("gl")
    model = bm.MetaModel("logrr ~ 0 + dose", data=sub, random="~ 0 + dose | id", **v)
    post = _healthy_sample(model, draws=1000, tune=1000, chains=4, random_seed=9, priors=PRIORS)
    # the restricted likelihood falls off like a power of the SD: a log-spaced grid to SD = 3
    grid = np.exp(np.arange(np.log(1e-8), np.log(3.0), 2e-3))
    _check_one_variance(model, post, "tau", grid, cell=grid)


@pytest.mark.slow
def test_two_variance_posterior_means_match_numerical_integration():
    model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    h1, h2 = 0.005, 0.0025
    g1, g2 = np.arange(h1 / 2, 1.2, h1), np.arange(h2 / 2, 0.5, h2)
    points = np.array(np.meshgrid(g1, g2, indexing="ij")).reshape(2, -1).T
    w, betas = _posterior_weights(model, points, 0.5)
    post = _healthy_sample(model, draws=1000, tune=1000, chains=4, random_seed=6, priors=PRIORS)
    _within_mcse(post.idata, "sigma", 0, float(w @ points[:, 0]))
    _within_mcse(post.idata, "sigma", 1, float(w @ points[:, 1]))
    _within_mcse(post.idata, "beta", 0, float(w @ betas[:, 0]))


@pytest.mark.slow
def test_compound_symmetry_posterior_matches_numerical_integration():
    """Berkey's outcomes with a CS term (one SD, one correlation with its default Uniform(-1, 1)
    prior): a two-dimensional midpoint grid over (SD, rho), beta integrated analytically."""
    dat = bm.datasets.load("berkey1998")
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=berkey_blocks(dat), random="~ outcome | trial",
                         struct="CS")
    taus, rhos = np.arange(0.005, 3.0, 0.01), np.arange(-0.99, 1.0, 0.02)
    logw, betas = [], []
    for tau in taus:
        for rho in rhos:
            ev = evaluate(model.design, [tau ** 2 * np.array([[1.0, rho], [rho, 1.0]])], reml=True)
            logw.append(ev.loglik + stats.halfnorm(scale=0.5).logpdf(tau))
            betas.append(ev.beta)
    w = np.exp(np.array(logw) - max(logw)).reshape(len(taus), len(rhos))
    assert w[-1].max() < 1e-10 * w.max(), "the grid cuts off posterior mass"
    w = w / w.sum()
    post = _healthy_sample(model, draws=1000, tune=1000, chains=4, random_seed=10, priors=PRIORS)
    _within_mcse(post.idata, "tau", 0, float(w.sum(axis=1) @ taus))
    _within_mcse(post.idata, "rho", 0, float(w.sum(axis=0) @ rhos))
    for j in range(2):
        _within_mcse(post.idata, "beta", j, float(w.ravel() @ np.array(betas)[:, j]))


@pytest.mark.slow
@pytest.mark.parametrize("eta", [1.0, 2.5])
def test_lkj_prior_marginals_are_scaled_betas(eta):
    """Under LKJ(eta) on a q x q correlation matrix every correlation is 2 B - 1 with
    B ~ Beta(eta - 1 + q/2, eta - 1 + q/2); checked on prior draws of a 4-level UN term."""
    long, blocks = ishak_long()
    model = bm.MetaModel("yi ~ 0 + C(time)", data=long, V=blocks, random="~ time | study", struct="UN")
    rho = model.sample_prior_predictive(draws=4000, random_seed=2, priors={"lkj_eta": eta}).prior["rho"]
    assert rho.sizes["rho_component"] == 6
    a = eta - 1 + 4 / 2
    for j in range(6):
        draws = (rho.values[..., j].ravel() + 1) / 2
        assert stats.kstest(draws, stats.beta(a, a).cdf).pvalue > 1e-3, (eta, j)


def _examples():
    bcg = bm.datasets.load("bcg")
    school = bm.datasets.load("school")
    berkey = bm.datasets.load("berkey1998")
    long, blocks = smoking_long()
    sub, v = alcohol_model("gl")
    gl = gliomas_data()
    thrombo = bm.datasets.load("thrombolytic")
    thrombo["row"] = np.arange(len(thrombo))
    return {
        "school": bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study"),
        "bcg": bm.MetaModel("logor ~ 1", data=bcg, vi="logorvar"),
        "bcg-ablat": bm.MetaModel("logor ~ ablat", data=bcg, vi="logorvar"),
        "berkey": bm.MetaModel("yi ~ 0 + outcome", data=berkey, V=berkey_blocks(berkey),
                               random="~ outcome | trial", struct="UN"),
        "smoking": bm.MetaModel("y ~ 0 + outcome", data=long, V=blocks, random="~ outcome | study", struct="CS",
                                fixed={"rho": 0.5}),
        "alcohol": bm.MetaModel("logrr ~ 0 + dose", data=sub, random="~ 0 + dose | id", **v),
        "gliomas-HAR": bm.MetaModel("logOR ~ 0 + tf", data=gl, V=har_within(gl), random="~ tf | study",
                                    struct="HAR"),
        "thrombolytic": bm.MetaModel("absrisk ~ 1", data=thrombo, vi="var", random="~ 1 | trial/row"),
    }


@pytest.mark.slow
def test_no_divergences_on_bundled_examples_and_centres_near_reml():
    for name, model in _examples().items():
        post = _quiet_sample(model, draws=500, tune=500, chains=2, random_seed=7)
        assert post.diagnostics["divergences"] == 0, name
        if name in ("school", "bcg", "berkey"):
            reml = model.fit()
            draws = post.idata.posterior["beta"]
            centre = draws.median(("chain", "draw")).values
            spread = draws.std(("chain", "draw")).values
            assert np.all(np.abs(centre - reml.coef.to_numpy()) < 0.25 * spread), name


def _gliomas_har():
    gl = gliomas_data()
    return bm.MetaModel("logOR ~ 0 + tf", data=gl, V=har_within(gl), random="~ tf | study", struct="HAR")


@pytest.mark.filterwarnings("ignore:The effect of Potentials")  # prior draws only: the likelihood is not used
@pytest.mark.parametrize("make", [berkey_model, _gliomas_har], ids=["berkey-UN-LKJ", "gliomas-HAR"])
def test_log_prior_of_all_draws_at_once_equals_pymc(make):
    """LogPrior evaluates the log prior of all draws in one call of a vectorised graph; it equals
    PyMC's compute_log_prior (one call per draw), element by element, an LKJ prior included."""
    import pymc as pm

    from bayesmeta.engines.bayes.priors import resolve_priors
    from bayesmeta.engines.bayes.pymc_model import beta_transform, build_model
    from bayesmeta.engines.bayes.sampling import LogPrior

    model = make()
    pm_model = build_model(model.design, model.param, resolve_priors(model.design, model.param))
    prior = pm.sample_prior_predictive(draws=30, model=pm_model, random_seed=3).prior
    names = [rv.name for rv in pm_model.free_RVs]
    idata = az.InferenceData(posterior=prior[names + ["beta"]])
    LogPrior(pm_model).add_to(idata)
    expected = pm.compute_log_prior(idata.copy(), model=pm_model, extend_inferencedata=False, progressbar=False)
    reported = [name if name != "beta_std" else "beta" for name in names]
    assert set(idata.log_prior.data_vars) == set(reported)
    for name in names:
        if name == "beta_std":
            continue
        np.testing.assert_allclose(idata.log_prior[name].values, expected[name].values, rtol=1e-12)
    # the fixed effects' own priors, element by element: independent normals at beta
    beta = idata.posterior["beta"].values
    priors = resolve_priors(model.design, model.param).beta
    own = sum(stats.norm(p.parameters["mu"], p.parameters["sigma"]).logpdf(beta[..., j]) for j, p in enumerate(priors))
    np.testing.assert_allclose(idata.log_prior["beta"].sum("term").values, own, rtol=1e-12)
    if "beta_std" in names:  # the standardised coefficients' joint density, less the transform's log-Jacobian
        T = beta_transform(model.design)
        np.testing.assert_allclose(own, expected["beta_std"].values - np.linalg.slogdet(T)[1], rtol=1e-10)
