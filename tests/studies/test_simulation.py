"""Simulated data sets have exactly the model's mean and covariance (checked against the dense
implied covariance X beta, V + Z G Z', within Monte Carlo error)."""

import numpy as np
import pytest
from cases import berkey_blocks, berkey_model, dense_sigma
from coscale_cases import ALPHA, ZETA
from coscale_cases import dense_sigma as dense_sigma_coscale
from coscale_cases import simulate as simulate_coscale
from location_scale_cases import simulate as simulate_location_scale
from scipy.linalg import block_diag

import bayesmeta as bm
from bayesmeta.errors import SpecificationError
from bayesmeta.studies.simulation import with_outcome

N_SIMS = 20_000


def assert_moments(model, params, theta, seed=1, sigma=None):
    """Mean and covariance of N_SIMS data sets against the exact ones (``sigma``, default that of the model
    at ``theta``), within 4.5 Monte Carlo SEs."""
    sims = model.simulate(params, n=N_SIMS, random_seed=seed).to_numpy()
    beta = np.array([params[f"beta[{c}]"] for c in model.design.coef_names])
    mean = model.design.X @ beta
    sigma = dense_sigma(model, theta) if sigma is None else sigma
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


def test_scale_models_of_a_structured_term():
    """SDs of (study, outcome) cells and study correlations from alpha and zeta; 30% of outcomes missing."""
    dat, blocks = simulate_coscale(4, n_studies=20, missing=0.3)
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, random="~ outcome | study", struct="UN",
                         scale={"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat", "rho": "~ habitat"}})
    params = dict(zip(["beta[outcome[A]]", "beta[outcome[B]]"], [0.3, -0.1]))
    params.update({f"alpha[{n}]": a for n, a in zip(model.param.alpha_names(), ALPHA)})
    params.update({f"zeta[{n}]": z for n, z in zip(model.param.coefficient_names("zeta"), ZETA)})
    assert_moments(model, params, None, sigma=dense_sigma_coscale(dat, blocks, ALPHA, ZETA))


def test_proportional_sampling_variances():
    """V scaled by exp(w_i' delta) beside the standard model's tau^2 (Berkey's blocks)."""
    dat = bm.datasets.load("berkey1998")
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=berkey_blocks(dat), random="~ outcome | trial",
                         struct="UN", V_scale="~ 1 + outcome")
    delta = np.array([0.5, -0.4])
    params = {"beta[outcome[AL]]": -0.3, "beta[outcome[PD]]": 0.35, "tau2[outcome | trial: AL]": 0.03,
              "tau2[outcome | trial: PD]": 0.01, "rho[outcome | trial]": 0.6,
              "delta[Intercept]": delta[0], "delta[outcome[T.PD]]": delta[1]}
    factors = np.sqrt(np.exp(delta[0] + delta[1] * (dat["outcome"] == "PD").to_numpy()))
    sd = np.sqrt([0.03, 0.01])
    G = np.outer(sd, sd) * np.array([[1, 0.6], [0.6, 1]])
    Z = model.design.encodings[0].Z
    same = model.design.encodings[0].codes[:, None] == model.design.encodings[0].codes[None, :]
    sigma = factors[:, None] * block_diag(*berkey_blocks(dat)) * factors[None, :] + same * (Z @ G @ Z.T)
    assert_moments(model, params, None, sigma=sigma)


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
