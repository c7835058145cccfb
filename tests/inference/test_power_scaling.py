"""Power-scaling against the conjugate normal model, where every power-scaled posterior is exact.

mu ~ N(m0, s0^2), y_i ~ N(mu, sigma^2): raising the prior to alpha gives the prior precision
alpha / s0^2; raising the likelihood to alpha the data precision alpha n / sigma^2.
"""

import arviz as az
import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayesmeta.inference.power_scaling import power_scaling

SIGMA = 1.0
S = 40_000


def conjugate_idata(y, m0, s0, seed=1):
    n = len(y)
    precision = 1 / s0 ** 2 + n / SIGMA ** 2
    mean = (m0 / s0 ** 2 + y.sum() / SIGMA ** 2) / precision
    mu = np.random.default_rng(seed).normal(mean, 1 / np.sqrt(precision), size=(2, S // 2))
    log_prior = stats.norm.logpdf(mu, m0, s0)
    log_lik = stats.norm.logpdf(y[None, None, :], mu[..., None], SIGMA)
    coords = {"chain": [0, 1], "draw": np.arange(S // 2)}
    return az.InferenceData(
        posterior=xr.Dataset({"mu": (("chain", "draw"), mu)}, coords=coords),
        log_prior=xr.Dataset({"mu": (("chain", "draw"), log_prior)}, coords=coords),
        log_likelihood=xr.Dataset({"y": (("chain", "draw", "obs"), log_lik)}, coords=coords))


def exact(y, m0, s0, alpha_prior=1.0, alpha_lik=1.0):
    precision = alpha_prior / s0 ** 2 + alpha_lik * len(y) / SIGMA ** 2
    return (alpha_prior * m0 / s0 ** 2 + alpha_lik * y.sum() / SIGMA ** 2) / precision, 1 / np.sqrt(precision)


def test_power_scaled_means_and_sds_are_exact_within_monte_carlo_error():
    y = np.random.default_rng(0).normal(1.0, SIGMA, 20)
    m0, s0 = 0.0, 0.5
    table = power_scaling(conjugate_idata(y, m0, s0), ["mu"]).loc["mu"]
    for component in ("prior", "likelihood"):
        for alpha in (0.8, 1.25):
            kwargs = {"alpha_prior": alpha} if component == "prior" else {"alpha_lik": alpha}
            mean, sd = exact(y, m0, s0, **kwargs)
            # importance sampling with weights near 1: MCSE about sd / sqrt(S) times a small factor
            assert table[f"mean_{component}_{alpha:g}"] == pytest.approx(mean, abs=4 * 1.5 * sd / np.sqrt(S))
            assert table[f"sd_{component}_{alpha:g}"] == pytest.approx(sd, rel=4 * 1.5 / np.sqrt(2 * S))
    assert table.reliable


def test_diagnoses():
    rng = np.random.default_rng(0)
    weak = power_scaling(conjugate_idata(rng.normal(1.0, SIGMA, 20), 0.0, 100.0), ["mu"]).loc["mu"]
    assert weak.prior < 0.05 <= weak.likelihood and weak.diagnosis == "-"
    strong = power_scaling(conjugate_idata(rng.normal(0.0, SIGMA, 2), 0.0, 0.05), ["mu"]).loc["mu"]
    assert strong.prior >= 0.05 > strong.likelihood and strong.diagnosis == "strong prior / weak likelihood"
    conflict = power_scaling(conjugate_idata(rng.normal(3.0, SIGMA, 20), -3.0, 0.3), ["mu"]).loc["mu"]
    assert conflict.diagnosis == "prior-data conflict"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inside ArviZ, on the direct calls
def test_sensitivities_are_arviz_psens():
    idata = conjugate_idata(np.random.default_rng(0).normal(1.0, SIGMA, 20), 0.0, 0.5)
    table = power_scaling(idata, ["mu"])
    assert table.at["mu", "prior"] == pytest.approx(float(az.psens(idata, component="prior")["mu"]))
    assert table.at["mu", "likelihood"] == pytest.approx(float(az.psens(idata, component="likelihood")["mu"]))
