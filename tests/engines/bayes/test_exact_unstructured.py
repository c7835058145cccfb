"""A bivariate unstructured (UN) term with an LKJ prior: posterior means against an exact
three-dimensional integral over (tau_1, tau_2, rho), the fixed effects integrated analytically.

Berkey's five periodontal trials report two outcomes each (attachment level AL and probing
depth PD) with a 2 x 2 within-trial covariance S_i. The model ``yi ~ 0 + outcome`` with
``random = ~ outcome | trial`` (UN) has, per trial, y_i ~ N(beta, S_i + T) with
T = [[tau_1^2, rho tau_1 tau_2], [rho tau_1 tau_2, tau_2^2]]. With a flat prior on beta the
marginal posterior of (tau_1, tau_2, rho) is the prior times the restricted likelihood,

    log L_R = -1/2 [sum_i log|Sigma_i| + log|sum_i Sigma_i^-1| + sum_i r_i' Sigma_i^-1 r_i] + const,

with Sigma_i = S_i + T, r_i = y_i - beta_hat and the GLS estimate
beta_hat = (sum_i Sigma_i^-1)^-1 sum_i Sigma_i^-1 y_i (here X_i is the 2 x 2 identity), and
E[beta | y] = E[beta_hat(theta) | y]. The 2 x 2 algebra is written out below in NumPy,
elementwise over the grid, independently of bayesmeta's likelihood code (which it is checked
against once). The prior: half-normal on each SD, and LKJ(eta) on the 2 x 2 correlation
matrix, under which rho = 2 B - 1 with B ~ Beta(eta, eta), so p(rho) is proportional to
(1 - rho^2)^(eta - 1); eta = 2 makes the prior matter (eta = 1 would be uniform).
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
from cases import berkey_blocks
from engines.bayes.test_sampling import _healthy_sample, _within_mcse
from pymc_extras.prior import Prior
from scipy import stats

import bayesmeta as bm
from bayesmeta.likelihood.marginal import evaluate

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")

PRIOR_SD = 0.5
ETA = 2.0
PRIORS = {"beta": Prior("Flat"), "sd": Prior("HalfNormal", sigma=PRIOR_SD), "lkj_eta": ETA}
LEVELS = ("AL", "PD")  # the order of the fixed effects and of the UN term's levels


def _berkey() -> tuple[np.ndarray, np.ndarray]:
    """Per trial, y_i (AL, PD) and S_i in that order: arrays of shape (5, 2) and (5, 2, 2)."""
    dat = bm.datasets.load("berkey1998")
    ys, ss = [], []
    for (_, g), block in zip(dat.groupby("trial", sort=False), berkey_blocks(dat)):
        order = [list(g["outcome"]).index(level) for level in LEVELS]
        ys.append(g["yi"].to_numpy()[order])
        ss.append(block[np.ix_(order, order)])
    return np.array(ys), np.array(ss)


def restricted_loglik(y: np.ndarray, S: np.ndarray, tau1: np.ndarray, tau2: np.ndarray,
                      rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Restricted log-likelihood (without constants) and GLS estimate at every parameter point.

    Parameters
    ----------
    y, S : numpy.ndarray
        Per trial the two outcomes, shape (k, 2), and their sampling covariance, (k, 2, 2).
    tau1, tau2, rho : numpy.ndarray
        Parameter points (one shape, any).

    Returns
    -------
    loglik : numpy.ndarray
        Same shape as the parameter points.
    beta : numpy.ndarray
        The GLS estimates, shape (2,) + the points' shape.
    """
    m11 = m12 = m22 = u1 = u2 = quad = logdet = 0.0
    for (y1, y2), s in zip(y, S):
        a, b, c = s[0, 0] + tau1 ** 2, s[0, 1] + rho * tau1 * tau2, s[1, 1] + tau2 ** 2
        det = a * c - b ** 2
        i11, i12, i22 = c / det, -b / det, a / det  # Sigma_i^-1
        logdet = logdet + np.log(det)
        m11, m12, m22 = m11 + i11, m12 + i12, m22 + i22  # sum_i Sigma_i^-1 = X' Sigma^-1 X
        u1, u2 = u1 + i11 * y1 + i12 * y2, u2 + i12 * y1 + i22 * y2  # X' Sigma^-1 y
        quad = quad + i11 * y1 ** 2 + 2 * i12 * y1 * y2 + i22 * y2 ** 2
    mdet = m11 * m22 - m12 ** 2
    beta1, beta2 = (m22 * u1 - m12 * u2) / mdet, (m11 * u2 - m12 * u1) / mdet
    rss = quad - (beta1 * u1 + beta2 * u2)  # sum_i r_i' Sigma_i^-1 r_i at the GLS estimate
    return -0.5 * (logdet + np.log(mdet) + rss), np.array([beta1, beta2])


def log_prior(tau1: np.ndarray, tau2: np.ndarray, rho: np.ndarray, eta: float) -> np.ndarray:
    """Half-normal SDs and the LKJ(eta) density of a 2 x 2 correlation, up to a constant."""
    half_normal = stats.halfnorm(scale=PRIOR_SD)
    return half_normal.logpdf(tau1) + half_normal.logpdf(tau2) + (eta - 1) * np.log1p(-rho ** 2)


def midpoints(pieces: list[tuple[float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Cell midpoints and widths of consecutive intervals (start, stop, step), each split evenly."""
    mids, widths = [], []
    for start, stop, step in pieces:
        n = round((stop - start) / step)
        mids.append(start + (np.arange(n) + 0.5) * step)
        widths.append(np.full(n, step))
    return np.concatenate(mids), np.concatenate(widths)


def posterior_means(y: np.ndarray, S: np.ndarray, h_tau: float, h_rho: float, eta: float = ETA) -> dict[str, float]:
    """Posterior means of tau_1, tau_2, rho, beta_1, beta_2 by the midpoint rule (LKJ(eta) prior).

    Each SD on (0, 4]: cells of width ``h_tau`` up to 1 (where the mass is) and ``4 h_tau``
    beyond; rho on (-1, 1) in cells of width ``h_rho``. Summed one tau_1 slab at a time, with a
    running maximum of the log density as the scale; the density on the outer tau faces is
    checked to be negligible (the grid cuts off no mass).
    """
    taus, dtau = midpoints([(0.0, 1.0, h_tau), (1.0, 4.0, 4 * h_tau)])
    rhos, drho = midpoints([(-1.0, 1.0, h_rho)])
    t2, r = np.meshgrid(taus, rhos, indexing="ij")
    cell = np.outer(dtau, drho)  # the (tau_2, rho) cell areas of one slab
    top, edge, totals = -np.inf, -np.inf, np.zeros(6)
    for i, (t1, d1) in enumerate(zip(taus, dtau)):
        ll, (b1, b2) = restricted_loglik(y, S, np.full_like(t2, t1), t2, r)
        logd = ll + log_prior(t1, t2, r, eta)
        edge = max(edge, logd[-1].max(), logd.max() if i == len(taus) - 1 else -np.inf)
        if logd.max() > top:
            totals *= np.exp(top - logd.max())
            top = logd.max()
        w = np.exp(logd - top) * cell * d1
        totals += [w.sum(), t1 * w.sum(), (w * t2).sum(), (w * r).sum(), (w * b1).sum(), (w * b2).sum()]
    assert edge < top + np.log(1e-10), "the grid cuts off posterior mass"
    means = totals[1:] / totals[0]
    return dict(zip(["tau[0]", "tau[1]", "rho[0]", "beta[0]", "beta[1]"], means))


def _model() -> bm.MetaModel:
    dat = bm.datasets.load("berkey1998")
    return bm.MetaModel("yi ~ 0 + outcome", data=dat, V=berkey_blocks(dat), random="~ outcome | trial",
                        struct="UN")


def test_grid_likelihood_matches_bayesmeta():
    """The test's own restricted log-likelihood and GLS estimate against bayesmeta's: the same
    differences between points (the constants differ) and the same beta."""
    y, S = _berkey()
    model = _model()
    points = [(0.1, 0.25, 0.6), (0.3, 0.05, -0.4), (1.2, 0.7, 0.95)]
    ours, theirs = [], []
    for t1, t2, r in points:
        ll, beta = restricted_loglik(y, S, np.array(t1), np.array(t2), np.array(r))
        ev = evaluate(model.design, [np.array([[t1 ** 2, r * t1 * t2], [r * t1 * t2, t2 ** 2]])], reml=True)
        np.testing.assert_allclose(beta, ev.beta, rtol=1e-10)
        ours.append(float(ll))
        theirs.append(ev.loglik)
    np.testing.assert_allclose(np.diff(ours), np.diff(theirs), rtol=1e-10)


@pytest.mark.slow
def test_unstructured_lkj_posterior_matches_numerical_integration():
    """Posterior means of both SDs, the correlation and both fixed effects within 4 MCSE of the
    grid's. The grid's discretisation error (about a third of the change from doubling its steps,
    for the midpoint rule) is checked to be below 0.001 posterior SD, far below the MCSE; and the
    LKJ density is checked to matter: under eta = 1 the exact mean of rho is over 8 MCSE away."""
    y, S = _berkey()
    # PyMC's NUTS with its dense mass matrix: on these five trials nutpie's adaptation leaves about one
    # divergence in 4,000 draws for half the seeds tried, which _healthy_sample rightly refuses
    post = _healthy_sample(_model(), draws=1000, tune=1000, chains=4, random_seed=11, priors=PRIORS, sampler="pymc")
    exact = posterior_means(y, S, h_tau=0.01, h_rho=0.02)
    coarse = posterior_means(y, S, h_tau=0.02, h_rho=0.04)
    for name, value in exact.items():
        var, index = name[:-3], int(name[-2])
        draws = post.idata.posterior[var].values[..., index]
        assert abs(value - coarse[name]) < 1e-3 * draws.std(), (name, value, coarse[name])
        _within_mcse(post.idata, var, index, value)
    rho = post.idata.posterior["rho"].values[..., 0]
    uniform = posterior_means(y, S, h_tau=0.01, h_rho=0.02, eta=1.0)
    assert abs(uniform["rho[0]"] - exact["rho[0]"]) > 8 * float(np.ravel(az.mcse(rho, method="mean"))[0])
