"""Exact posteriors of the standard model under priors on tau^2 from several families.

For BCG (log risk ratios, random effects), the joint posterior of (mu, tau) is computed on a
fine grid, prior(mu) prior_tau2(tau^2) 2 tau prod_i N(y_i; mu, v_i + tau^2), and its means and
quantiles of mu and tau are compared with NUTS within 4 Monte Carlo standard errors.
"""

import arviz as az
import numpy as np
import pytest
import xarray as xr
from pymc_extras.prior import Prior
from scipy import stats

import bayesmeta as bm

BETA_PRIOR_SD = 10.0
PROBS = (0.05, 0.5, 0.95)

FAMILIES = {
    "half-normal": (Prior("HalfNormal", sigma=1.0), lambda t2: stats.halfnorm.logpdf(t2, scale=1.0)),
    "half-Cauchy": (Prior("HalfCauchy", beta=0.5), lambda t2: stats.halfcauchy.logpdf(t2, scale=0.5)),
    "uniform": (Prior("Uniform", lower=0.0, upper=5.0), lambda t2: stats.uniform.logpdf(t2, 0, 5.0)),
    "Turner log-normal": (bm.priors.turner2015(),
                          lambda t2: stats.lognorm.logpdf(t2, s=1.74, scale=np.exp(-2.56))),
}


def grid_posterior(y, v, log_prior_tau2):
    """Means and quantiles of mu and tau from the posterior on a (mu, tau) grid."""
    mu = np.linspace(-2.5, 1.0, 1401)
    tau = np.linspace(1e-4, 2.5, 2001)
    total = v[None, :] + tau[:, None] ** 2  # (tau, study)
    # log N(y_i; mu, v_i + tau^2) summed over studies, for every (tau, mu)
    loglik = -0.5 * (np.log(2 * np.pi * total).sum(axis=1)[:, None]
                     + (((y[None, None, :] - mu[None, :, None]) ** 2) / total[:, None, :]).sum(axis=2))
    logpost = (loglik + stats.norm.logpdf(mu, 0, BETA_PRIOR_SD)[None, :]
               + (log_prior_tau2(tau ** 2) + np.log(2 * tau))[:, None])
    weights = np.exp(logpost - logpost.max())
    weights /= weights.sum()

    def summary(values, marginal):
        cdf = np.cumsum(marginal)
        return [float(values @ marginal)] + [float(np.interp(p, cdf, values)) for p in PROBS]

    return {"mu": summary(mu, weights.sum(axis=0)), "tau": summary(tau, weights.sum(axis=1))}


def mcmc_summary(draws):
    """The same summaries from draws, with their Monte Carlo standard errors."""
    values = [float(draws.mean())] + [float(np.quantile(draws, p)) for p in PROBS]
    data = xr.Dataset({"x": (("chain", "draw"), draws)})
    errors = [float(az.mcse(data, method="mean")["x"])] + [float(az.mcse(data, method="quantile", prob=p)["x"])
                                                          for p in PROBS]
    return values, errors


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_nuts_matches_the_exact_posterior(family):
    dat = bm.datasets.load("bcg")
    model = bm.MetaModel("logrr ~ 1", dat, vi="logrrvar")
    prior, log_prior = FAMILIES[family]
    post = model.sample(draws=1500, tune=1000, chains=4, random_seed=11, progressbar=False,
                        priors={"beta": Prior("Normal", mu=0, sigma=BETA_PRIOR_SD), "tau2": prior})
    assert post.diagnostics["divergences"] == 0 and post.diagnostics["max_rhat"] < 1.01
    exact = grid_posterior(dat.logrr.to_numpy(), dat.logrrvar.to_numpy(), log_prior)
    posterior = post.idata.posterior
    for name, draws in (("mu", posterior["beta"].values[..., 0]), ("tau", posterior["tau"].values[..., 0])):
        values, errors = mcmc_summary(draws)
        for what, value, error, reference in zip(("mean", *PROBS), values, errors, exact[name]):
            assert abs(value - reference) < 4 * error, (family, name, what, value, reference, error)
