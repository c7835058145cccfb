"""Row-level log-likelihoods log p(y_i | y_-i) against the conditional normal of the dense covariance."""

import numpy as np
import pytest
from cases import berkey_model, dense_sigma
from engine_tools import conditional_log_densities
from location_scale_cases import simulate as simulate_location_scale

import bayesmeta as bm
from bayesmeta.engines.bayes.pointwise import row_log_likelihood


def draws_at(model, fit, shift=0.0):
    """One 'draw': the fit's estimates, with the fixed effects moved by ``shift``."""
    beta = fit.coef.to_numpy()[None] + shift
    G = [g[None] for g in model.param.covariances(fit.estimate.theta)]
    return beta, G


@pytest.mark.parametrize("make", [
    lambda: bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study"),
    berkey_model,
    lambda: bm.MetaModel("logrr ~ ablat", bm.datasets.load("bcg"), vi="logrrvar"),
], ids=["three-level", "berkey-UN", "standard"])
def test_matches_dense_conditional_densities(make):
    model = make()
    fit = model.fit()
    sigma = dense_sigma(model, fit.estimate.theta)
    for shift in (0.0, 0.05):
        beta, G = draws_at(model, fit, shift)
        expected = conditional_log_densities(model.design.y, model.design.X @ beta[0], sigma)
        np.testing.assert_allclose(row_log_likelihood(model.design, beta, G)[0], expected, rtol=1e-9, atol=1e-10)


def test_location_scale_group_variances():
    data = simulate_location_scale(3, n_districts=10)
    model = bm.MetaModel("yi ~ x", data, vi="vi", random="~ 1 | district/study", scale={"district": "~ w"})
    fit = model.fit()
    variances, _ = model.param.group_variances(fit.estimate.theta)
    sigma = np.diag(model.design.V.diagonal())
    for enc, v in zip(model.design.encodings, variances):
        sigma = sigma + (enc.codes[:, None] == enc.codes[None, :]) * v[enc.codes][:, None]
    G = [v[None] if model.param.scale_of(k) is not None else g[None]
         for k, (v, g) in enumerate(zip(variances, model.param.covariances(fit.estimate.theta)))]
    beta = fit.coef.to_numpy()[None]
    expected = conditional_log_densities(model.design.y, model.design.X @ beta[0], sigma)
    np.testing.assert_allclose(row_log_likelihood(model.design, beta, G)[0], expected, rtol=1e-9)


def test_many_draws_in_chunks_equal_one_at_a_time(monkeypatch):
    model = berkey_model()
    fit = model.fit()
    rng = np.random.default_rng(1)
    beta = fit.coef.to_numpy() + 0.1 * rng.standard_normal((7, 2))
    G = [np.stack([g * s for s in rng.uniform(0.5, 2, 7)]) for g in model.param.covariances(fit.estimate.theta)]
    together = row_log_likelihood(model.design, beta, G)
    monkeypatch.setattr("bayesmeta.engines.bayes.pointwise.CHUNK_ENTRIES", 1)
    one_by_one = row_log_likelihood(model.design, beta, G)
    np.testing.assert_allclose(together, one_by_one, rtol=1e-12)
    assert together.shape == (7, model.design.n)
