"""Sampling: posterior means against exact numerical integration, weak-prior centres
against REML, and no divergences on the bundled examples with default settings."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
from cases import alcohol_model, berkey_blocks, gliomas_data, har_within, smoking_long
from pymc_extras.prior import Prior
from scipy import stats

import bayesmeta as bm
from bayesmeta.likelihood.marginal import evaluate

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def _quiet_sample(model, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)
        return model.sample(progressbar=False, **kwargs)


def test_short_run_api():
    model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    with pytest.warns(bm.ConvergenceWarning, match="effective sample size"):
        post = model.sample(draws=60, tune=60, chains=2, random_seed=3, progressbar=False)
    posterior = post.idata.posterior
    assert posterior["beta"].dims == ("chain", "draw", "term")
    assert list(posterior["sigma"].coords["sigma2_component"].values) == ["district", "district/study"]
    assert posterior["sigma2"].dims == posterior["sigma"].dims
    np.testing.assert_allclose(posterior["sigma2"].values, posterior["sigma"].values ** 2)
    loglik = post.idata.log_likelihood["y"]
    assert loglik.sizes["block"] == 11
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


def _posterior_weights(model, grid_sd, prior_sd):
    """Exact posterior over a grid of SD values (flat prior on beta, integrated out):
    p(sd | y) is proportional to prior(sd) x exp(restricted log-likelihood(sd))."""
    logw, betas = [], []
    for point in grid_sd:
        ev = evaluate(model.design, [np.array([[s ** 2]]) for s in point], reml=True)
        logw.append(ev.loglik)
        betas.append(ev.beta[0])
    logw = np.array(logw) + stats.halfnorm(scale=prior_sd).logpdf(grid_sd).sum(axis=1)
    w = np.exp(logw - logw.max())
    return w / w.sum(), np.array(betas)


def _within_mcse(idata, var, index, exact, k=4.0):
    draws = idata.posterior[var].values[..., index]
    mean = draws.mean()
    mcse = float(np.ravel(az.mcse(draws, method="mean"))[0])
    assert abs(mean - exact) < k * mcse, f"{var}[{index}]: {mean} vs exact {exact} (mcse {mcse})"


PRIORS = {"beta": Prior("Flat"), "sd": Prior("HalfNormal", sigma=0.5)}


@pytest.mark.slow
def test_one_variance_posterior_means_match_numerical_integration():
    model = bm.MetaModel("logor ~ 1", data=bm.datasets.load("bcg"), vi="logorvar")
    h = 0.0005
    grid = np.arange(h / 2, 3.0, h)  # midpoint rule
    w, betas = _posterior_weights(model, grid[:, None], 0.5)
    post = _quiet_sample(model, draws=2000, tune=1000, chains=4, random_seed=5, priors=PRIORS)
    _within_mcse(post.idata, "tau", 0, float(w @ grid))
    _within_mcse(post.idata, "beta", 0, float(w @ betas))
    _within_mcse(post.idata, "tau2", 0, float(w @ grid ** 2))


@pytest.mark.slow
def test_two_variance_posterior_means_match_numerical_integration():
    model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    h1, h2 = 0.005, 0.0025
    g1, g2 = np.arange(h1 / 2, 1.2, h1), np.arange(h2 / 2, 0.5, h2)
    points = np.array(np.meshgrid(g1, g2, indexing="ij")).reshape(2, -1).T
    w, betas = _posterior_weights(model, points, 0.5)
    post = _quiet_sample(model, draws=2000, tune=1000, chains=4, random_seed=6, priors=PRIORS)
    _within_mcse(post.idata, "sigma", 0, float(w @ points[:, 0]))
    _within_mcse(post.idata, "sigma", 1, float(w @ points[:, 1]))
    _within_mcse(post.idata, "beta", 0, float(w @ betas))


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
