"""Simulated data sets have exactly the model's mean and covariance (checked against the dense
implied covariance X beta, V + Z G Z', within Monte Carlo error)."""

import numpy as np
import pytest
from cases import berkey_model, dense_sigma
from location_scale_cases import simulate as simulate_location_scale

import bayesmeta as bm
from bayesmeta.errors import SpecificationError
from bayesmeta.studies.simulation import with_outcome

N_SIMS = 20_000


def assert_moments(model, params, theta, seed=1):
    """Mean and covariance of N_SIMS data sets against the exact ones, within 4.5 Monte Carlo SEs."""
    sims = model.simulate(params, n=N_SIMS, random_seed=seed).to_numpy()
    beta = np.array([params[f"beta[{c}]"] for c in model.design.coef_names])
    mean = model.design.X @ beta
    sigma = dense_sigma(model, theta)
    sd = np.sqrt(np.diag(sigma))
    assert np.all(np.abs(sims.mean(axis=1) - mean) < 4.5 * sd / np.sqrt(N_SIMS))
    # se of a sample covariance of normals: sqrt((s_ij^2 + s_ii s_jj) / N)
    se = np.sqrt((sigma ** 2 + np.outer(sd ** 2, sd ** 2)) / N_SIMS)
    assert np.all(np.abs(np.cov(sims) - sigma) < 4.5 * se)


def test_multivariate_un_with_block_v():
    model = berkey_model()
    fit = model.fit()
    assert_moments(model, fit.table()["estimate"].to_dict(), fit.estimate.theta)


def test_three_level_model():
    model = bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    params = {"beta[Intercept]": 0.2, "sigma2[district]": 0.05, "sigma2[district/study]": 0.03}
    theta = model.param.theta_from_natural([(np.sqrt([0.05]), np.zeros(0)), (np.sqrt([0.03]), np.zeros(0))])
    assert_moments(model, params, theta)


def test_location_scale_group_variances():
    """Each district's variance is exp(w' alpha): compare row variances with the implied ones."""
    data = simulate_location_scale(3, n_districts=12)
    model = bm.MetaModel("yi ~ x", data, vi="vi", random="~ 1 | district/study", scale={"district": "~ w"})
    fit = model.fit()
    sims = model.simulate(fit, n=N_SIMS, random_seed=2).to_numpy()
    variances, _ = model.param.group_variances(fit.estimate.theta)
    implied = model.design.V.diagonal().copy()
    for enc, v in zip(model.design.encodings, variances):
        implied += v[enc.codes]
    se = implied * np.sqrt(2 / N_SIMS)
    assert np.all(np.abs(sims.var(axis=1) - implied) < 4.5 * se)


def test_seeded_and_labelled():
    model = bm.MetaModel("logrr ~ ablat", bm.datasets.load("bcg"), vi="logrrvar")
    params = {"beta[Intercept]": 0.2, "beta[ablat]": -0.03, "tau2": 0.1}
    a, b = (model.simulate(params, n=2, random_seed=5) for _ in range(2))
    assert a.equals(b) and list(a.index) == list(model.design.row_labels)
    assert not a.equals(model.simulate(params, n=2, random_seed=6))


def test_with_outcome_refits_the_new_data():
    """A refit on y + c moves the intercept by exactly c (and leaves the variance components alone)."""
    model = bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    fit, moved = model.fit(), with_outcome(model, model.design.y + 1.0).fit()
    assert moved.coef.iloc[0] == pytest.approx(fit.coef.iloc[0] + 1.0, abs=1e-6)
    np.testing.assert_allclose(moved.sigma2, fit.sigma2, rtol=1e-5)
    with pytest.raises(SpecificationError, match="expected 56 outcomes"):
        with_outcome(model, model.design.y[:3])


def test_a_posterior_is_refused_as_parameter_values():
    model = bm.MetaModel("logrr ~ 1", bm.datasets.load("bcg"), vi="logrrvar")
    laplace = model.fit("laplace", draws=50, random_seed=1)
    with pytest.raises(SpecificationError, match="no single parameter value"):
        model.simulate(laplace)
