"""MAP and Laplace fits on the Bayesian graph.

Under flat priors the posterior mode is the ML estimate, and with the
restricted-likelihood term it is the REML estimate (to 1e-5); under the default
weakly informative priors it stays close to REML. The Laplace approximation
returns draws in the BayesResult family.
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import berkey_blocks
from engine_tools import assert_same_fit

import bayesmeta as bm

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def _school():
    return bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")


def berkey_model():
    dat = bm.datasets.load("berkey1998")
    return bm.MetaModel("yi ~ 0 + outcome", data=dat, V=berkey_blocks(dat), random="~ outcome | trial",
                        struct="UN")


@pytest.mark.parametrize("make", [_school, berkey_model], ids=["school", "berkey-UN"])
@pytest.mark.parametrize("restricted, method", [(False, "ML"), (True, "REML")])
def test_flat_prior_mode_is_the_likelihood_estimate(make, restricted, method):
    model = make()
    assert_same_fit(model.fit("MAP", priors="flat", restricted=restricted), model.fit(method))


def test_default_prior_mode_is_near_reml():
    model = _school()
    mode, reml = model.fit("MAP"), model.fit("REML")
    assert mode.method == "MAP"
    assert abs(mode.coef.iloc[0] - reml.coef.iloc[0]) < 0.1 * reml.se.iloc[0]
    # the weak HalfNormal(sd(y)) priors shrink the SDs a little towards zero, never away
    assert np.all(np.sqrt(mode.sigma2.to_numpy()) <= np.sqrt(reml.sigma2.to_numpy()) + 1e-6)
    np.testing.assert_allclose(np.sqrt(mode.sigma2.to_numpy()), np.sqrt(reml.sigma2.to_numpy()), rtol=0.35)


def test_laplace_returns_draws_in_the_bayes_family():
    model = _school()
    post = model.fit("laplace", draws=400, random_seed=3)
    assert isinstance(post, bm.BayesResult)
    assert post.sampler == "laplace"
    assert post.idata.posterior.sizes["draw"] * post.idata.posterior.sizes["chain"] == 400
    assert "Laplace approximation" in post.summary()
    assert post.problems == []
    mode = model.fit("MAP")
    beta = post.idata.posterior["beta"].values.ravel()
    # the draws centre on the mode and spread like its standard error
    assert abs(beta.mean() - mode.coef.iloc[0]) < 4 * mode.se.iloc[0] / np.sqrt(400)
    assert 0.8 < beta.std() / mode.se.iloc[0] < 1.25
    table = bm.compare(model.fit(), post)
    assert any("Laplace" in str(c) for c in table.columns)


def _school_log_density(theta, dat, prior_sd_beta=1.0, prior_sd_sd=0.5):
    """Log density of the school model at (log SDs, beta), computed densely: the likelihood,
    N(0, 1) on beta and HalfNormal(0.5) on both SDs (no Jacobian: PyMC's MAP is the mode
    of the density of the SDs themselves)."""
    from scipy import stats

    log_sd, beta = theta[:2], theta[2]
    s2 = np.exp(2 * log_sd)
    same_district = (dat["district"].to_numpy()[:, None] == dat["district"].to_numpy()[None, :])
    cov = np.diag(dat["var"].to_numpy()) + s2[0] * same_district + s2[1] * np.eye(len(dat))
    return (stats.multivariate_normal(np.full(len(dat), beta), cov).logpdf(dat["effect"].to_numpy())
            + stats.norm(0, prior_sd_beta).logpdf(beta) + stats.halfnorm(scale=prior_sd_sd).logpdf(np.exp(log_sd)).sum())


def test_laplace_is_centred_at_the_posterior_mode():
    """The Laplace approximation's centre (log SDs and beta) against the mode of the exact dense
    posterior density, and its variance draws are the transformed Gaussian draws."""
    from pymc_extras.prior import Prior
    from scipy import optimize

    dat = bm.datasets.load("school")
    priors = {"beta": Prior("Normal", mu=0, sigma=1), "sd": Prior("HalfNormal", sigma=0.5)}
    post = _school().fit("laplace", draws=200, random_seed=1, priors=priors)
    fit = post.idata.fit
    assert list(fit["rows"].values) == ["sigma_log__[district]", "sigma_log__[district/study]", "beta[Intercept]"]
    res = optimize.minimize(lambda t: -_school_log_density(t, dat), np.array([-1.0, -1.0, 0.0]), method="BFGS",
                            options={"gtol": 1e-9})
    np.testing.assert_allclose(fit["mean_vector"].values, res.x, rtol=1e-4)
    log_sd = post.idata.unconstrained_posterior["sigma_log__"].values
    np.testing.assert_allclose(post.idata.posterior["sigma2"].values, np.exp(2 * log_sd), rtol=1e-12)


def _numerical_hessian(f, x, h=1e-4):
    """Hessian of ``f`` at ``x`` by central second differences of its values."""
    E = np.eye(len(x)) * h
    return np.array([[(f(x + a + b) - f(x + a - b) - f(x - a + b) + f(x - a - b)) / (4 * h * h) for b in E]
                     for a in E])


@pytest.fixture(scope="module")
def school_laplace_reference():
    """20000 Laplace draws of the school model under N(0, 1) and HalfNormal(0.5) priors, with the mode and the
    inverse of minus the Hessian of the exact dense log posterior of (log SDs, beta), the log-Jacobian of the
    log transform included, computed here by finite differences of its values."""
    from pymc_extras.prior import Prior
    from scipy import optimize

    dat = bm.datasets.load("school")
    priors = {"beta": Prior("Normal", mu=0, sigma=1), "sd": Prior("HalfNormal", sigma=0.5)}
    post = _school().fit("laplace", draws=20000, random_seed=5, priors=priors)
    mode = optimize.minimize(lambda t: -_school_log_density(t, dat), np.array([-1.0, -1.0, 0.0]), method="BFGS",
                             options={"gtol": 1e-9}).x
    covariance = np.linalg.inv(-_numerical_hessian(lambda t: _school_log_density(t, dat) + t[:2].sum(), mode))
    return post, mode, covariance


def test_laplace_covariance_is_the_inverse_hessian(school_laplace_reference):
    """The covariance of the Laplace approximation (idata.fit) is the inverse of minus the exact Hessian of the
    log posterior in the unconstrained space at the mode: variances to 1e-4 relative, every entry to 1e-4 of
    the product of the SDs (pymc-extras' BFGS approximation was off by up to 1e-3 here, and by up to 1% in the
    SDs under the default priors)."""
    post, mode, reference = school_laplace_reference
    fit = post.idata.fit
    assert list(fit["rows"].values) == ["sigma_log__[district]", "sigma_log__[district/study]", "beta[Intercept]"]
    np.testing.assert_allclose(fit["mean_vector"].values, mode, rtol=1e-4)
    covariance = fit["covariance_matrix"].values
    sd = np.sqrt(np.diag(reference))
    np.testing.assert_allclose(np.diag(covariance), np.diag(reference), rtol=1e-4)
    np.testing.assert_allclose(covariance / np.outer(sd, sd), reference / np.outer(sd, sd), rtol=0, atol=1e-4)


def test_laplace_draws_have_the_inverse_hessian_covariance(school_laplace_reference):
    """The 20000 draws of (log SDs, beta): mean and covariance within 4 standard errors of the exact mode and
    inverse Hessian, and the constrained SDs and variances are their exact transforms."""
    post, mode, reference = school_laplace_reference
    unconstrained = post.idata.unconstrained_posterior
    log_sd = unconstrained["sigma_log__"].values.reshape(-1, 2)
    draws = np.column_stack([log_sd, unconstrained["beta"].values.reshape(-1)])
    n = len(draws)
    assert n == 20000
    se_mean = np.sqrt(np.diag(reference) / n)
    assert np.all(np.abs(draws.mean(axis=0) - mode) < 4 * se_mean)
    # the sampling SD of a Gaussian sample covariance: sqrt((S_ii S_jj + S_ij^2) / (n - 1))
    se_cov = np.sqrt((np.outer(np.diag(reference), np.diag(reference)) + reference ** 2) / (n - 1))
    assert np.all(np.abs(np.cov(draws, rowvar=False) - reference) < 4 * se_cov)
    sigma = post.idata.posterior["sigma"].values.reshape(-1, 2)
    np.testing.assert_allclose(sigma, np.exp(log_sd), rtol=1e-12)
    np.testing.assert_allclose(post.idata.posterior["sigma2"].values.reshape(-1, 2), sigma ** 2, rtol=1e-12)


def test_laplace_refuses_a_mode_without_curvature():
    """A saddle (log density a^2 / 2 - b^2 / 2 + a b / 10: convex along a) has no Gaussian approximation: the
    error names the direction."""
    from bayesmeta.engines.bayes.laplace import _precision

    def gradient(x):
        return np.array([x[0] + x[1] / 10, -x[1] + x[0] / 10])

    with pytest.raises(bm.SpecificationError, match=r"flat or convex along a at the mode"):
        _precision(gradient, np.zeros(2), ["a", "b"])
