"""The Bayesian engine for the proportional sampling-variance model (``V_scale=``, issue 17 item 4).

The PyMC model's log-density against a dense multivariate-normal density (Sigma = D^1/2 V D^1/2 + the random
part, D = diag(exp(w_i' delta))) plus the log priors, written here; the flat-prior posterior mode against ML and,
with the restricted term, REML; short seeded NUTS runs of unrestricted weighted least squares (UWLS); row
log-likelihoods, random effects and sampling errors drawn with the per-row factors; the priors of delta.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytensor
import pytest
from cases import berkey_blocks
from engine_tools import (
    conditional_log_densities,
    counted_compiles,
    dense_profile_loglik,
    random_points,
    standardised_normal_logpdf,
)
from pymc_extras.prior import Prior
from scipy import stats
from scipy.linalg import block_diag

import bayesmeta as bm
from bayesmeta.engines.bayes.pointwise import row_log_likelihood
from bayesmeta.engines.bayes.priors import resolve_priors
from bayesmeta.engines.bayes.pymc_model import beta_transform
from bayesmeta.engines.random_effects import draw_random_effects, draw_sampling_errors

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def berkey() -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Berkey's trials (2 x 2 sampling covariance blocks from v1i, v2i) with a row moderator w."""
    dat = bm.datasets.load("berkey1998")
    dat["w"] = np.random.default_rng(11).uniform(0, 1, len(dat))
    return dat, berkey_blocks(dat)


def uwls() -> bm.MetaModel:
    return bm.MetaModel("logrr ~ ablat", data=bm.datasets.load("bcg"), vi="logrrvar", random=[], V_scale="~ 1")


def _berkey_un_model() -> tuple[bm.MetaModel, pd.DataFrame, np.ndarray]:
    """Berkey's trials with an unstructured outcome | trial term beside V_scale="~ w", and the dense V."""
    dat, blocks = berkey()
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, random="~ outcome | trial", struct="UN",
                         V_scale="~ w")
    return model, dat, block_diag(*blocks)


def scaled_v(V: np.ndarray, W: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """D^1/2 V D^1/2 with D = diag(exp(W delta))."""
    root = np.exp(W @ delta / 2)
    return V * np.outer(root, root)


def dense_sigma(dat: pd.DataFrame, V: np.ndarray, delta: np.ndarray, random: str | None, values: dict) -> np.ndarray:
    """The marginal covariance of all rows from the data's columns (``w`` the V_scale moderator when delta has
    two entries) and the variance components in ``values``."""
    W = np.ones((len(dat), 1)) if len(delta) == 1 else np.column_stack([np.ones(len(dat)), dat["w"]])
    Sigma = scaled_v(V, W, delta)
    if random is None:  # the standard model: tau^2 per row
        Sigma = Sigma + values["tau2"][0] * np.eye(len(dat))
    elif random == "~ outcome | trial":  # UN over the outcomes AL, PD within trials
        sd = np.sqrt(values["tau2"])
        G = np.diag(sd) @ np.array([[1.0, values["rho"][0]], [values["rho"][0], 1.0]]) @ np.diag(sd)
        level = (dat["outcome"] == "PD").to_numpy(int)  # AL first, as the tau2 labels
        same = (dat["trial"].to_numpy()[:, None] == dat["trial"].to_numpy()[None, :])
        Sigma = Sigma + same * G[level[:, None], level[None, :]]
    return Sigma


CASES = {
    # name: (data, MetaModel keywords, priors)
    "berkey-standard": ("berkey", {"random": None}, None),
    "berkey-UN-flat": ("berkey", {"random": "~ outcome | trial", "struct": "UN"}, "flat"),
    "bcg-uwls": ("bcg", {"random": []}, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_log_density_equals_dense_normal_plus_log_priors(case):
    data_name, kw, priors = CASES[case]
    if data_name == "berkey":
        dat, blocks = berkey()
        model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, V_scale="~ w", **kw)
        V = block_diag(*blocks)
    else:
        dat = bm.datasets.load("bcg")
        model = bm.MetaModel("logrr ~ ablat", data=dat, vi="logrrvar", V_scale="~ 1", **kw)
        V = np.diag(dat["logrrvar"].to_numpy())
    design, param = model.design, model.param
    assert design.nested is None
    pm_model = model.build_pymc(priors=priors)
    prior_set = resolve_priors(design, param, priors)
    names = [n for n in ("beta", "delta", "tau", "tau2", "rho") if n in pm_model.named_vars]
    for logp, values in random_points(pm_model, names):
        Sigma = dense_sigma(dat, V, values["delta"], kw["random"], values)
        expected = stats.multivariate_normal(design.X @ values["beta"], Sigma).logpdf(design.y)
        if priors != "flat":  # flat priors: every log prior is 0
            expected += standardised_normal_logpdf(values["delta"], prior_set.delta, param.v_scale.transform)
            T = beta_transform(design)
            expected += standardised_normal_logpdf(values["beta"], prior_set.beta, T)
            if "tau" in values:
                sigma = [p.parameters["sigma"] for p in prior_set.sd]
                expected += stats.halfnorm.logpdf(values["tau"], scale=sigma).sum()
        assert logp == pytest.approx(expected, rel=1e-8, abs=1e-8)


def test_graph_full_and_restricted_likelihood_equal_dense():
    """The batched graph with per-row factors, at arbitrary beta (ML) and at the GLS beta with the restricted
    term (REML), against the dense densities (1e-8)."""
    import pytensor.tensor as pt

    from bayesmeta.likelihood.graph import block_loglik

    model, dat, V = _berkey_un_model()
    design = model.design
    beta_v, delta_v, G_v = pt.vector("beta"), pt.vector("delta"), pt.matrix("G")
    W = np.column_stack([np.ones(len(dat)), dat["w"]])
    logp, term = block_loglik(design, beta_v, [G_v], restricted=True, v_factors=pt.exp(pt.dot(W, delta_v)))
    f = pytensor.function([beta_v, delta_v, G_v], [logp.sum(), term])
    values = {"tau2": np.array([0.03, 0.01]), "rho": np.array([-0.3])}
    sd = np.sqrt(values["tau2"])
    G = np.outer(sd, sd) * np.array([[1, -0.3], [-0.3, 1]])
    X, y = design.X, design.y
    for delta in (np.array([0.4, -0.7]), np.array([-1.0, 1.5])):
        Sigma = dense_sigma(dat, V, delta, "~ outcome | trial", values)
        beta = np.array([-0.2, 0.4])
        full, _ = f(beta, delta, G)
        assert full == pytest.approx(stats.multivariate_normal(X @ beta, Sigma).logpdf(y), rel=1e-8, abs=1e-8)
        reml, gls = dense_profile_loglik(design, Sigma, True)
        full, restricted = f(gls, delta, G)
        assert full + restricted == pytest.approx(reml, rel=1e-8, abs=1e-8)


def test_shared_data_model_equals_the_plain_one():
    """The model with the data as shared variables (simulations, assumption sensitivity) has the plain model's
    log-density, also after its data are replaced by another design's."""
    from bayesmeta.engines.bayes.pymc_model import build_model
    from bayesmeta.likelihood.graph import SharedData
    from bayesmeta.studies.simulation import with_outcome

    model, _, _ = _berkey_un_model()
    other = with_outcome(model, model.design.y + 0.1)
    prior_set = resolve_priors(model.design, model.param)
    data = SharedData.of(model.design)
    shared = build_model(model.design, model.param, prior_set, data=data)
    logp_shared = shared.compile_logp()
    rng = np.random.default_rng(2)
    point = {k: rng.normal(scale=0.3, size=np.shape(v)) for k, v in shared.initial_point().items()}
    for design in (model.design, other.design):
        data.set_values(design)
        plain = build_model(design, model.param, prior_set)
        assert logp_shared(point) == pytest.approx(plain.compile_logp()(point), rel=1e-10)


def _standard_with_v_scale() -> bm.MetaModel:
    """The standard model's tau^2 beside a factor exp(delta_0 + delta_1 ablat) on the (differing) sampling variances."""
    return bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar", V_scale="~ ablat")


@pytest.mark.parametrize("make", [uwls, _standard_with_v_scale], ids=["uwls", "standard+V_scale"])
@pytest.mark.parametrize("method", ["ML", "REML"])
def test_flat_map_equals_ml_and_reml(make, method):
    model = make()
    fit = model.fit(method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.BoundaryWarning)
        mode = model.fit("MAP", priors="flat", restricted=method == "REML")
    np.testing.assert_allclose(mode.delta, fit.delta, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(mode.coef, fit.coef, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(mode.tau2, fit.tau2, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(mode.delta_se, fit.delta_se, rtol=1e-4)
    np.testing.assert_allclose(mode.se, fit.se, rtol=1e-4)


def test_map_with_normal_prior_adds_its_curvature_to_delta():
    model = uwls()
    ml = model.fit("ML")
    prior_sd = 0.5
    mode = model.fit("MAP", priors={"delta": Prior("Normal", mu=0.0, sigma=prior_sd)})
    assert 0 < mode.delta["Intercept"] < ml.delta["Intercept"]  # pulled towards the prior mean 0
    # UWLS, beta profiled out: l(delta) = -n delta / 2 - RSS / (2 exp(delta)), so minus its second derivative is
    # n exp(delta_ML - delta) / 2 (exp(delta_ML) = RSS / n); the posterior precision adds the prior's
    n = model.design.n
    likelihood = n / 2 * np.exp(ml.delta["Intercept"] - mode.delta["Intercept"])
    expected = 1 / np.sqrt(likelihood + 1 / prior_sd ** 2)
    assert mode.delta_se["Intercept"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("sampler", ["nutpie", "pymc"])
def test_nuts_on_uwls(sampler):
    model = uwls()
    reml = model.fit("REML")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)  # a short run: ESS may fall below 400
        post = model.sample(draws=300, tune=300, chains=2, random_seed=1, progressbar=False, sampler=sampler,
                            prior_predictive=sampler == "nutpie")
    posterior = post.idata.posterior
    assert posterior["delta"].dims == ("chain", "draw", "v_scale_term")
    assert list(posterior["delta"].v_scale_term.values) == ["Intercept"]
    assert post.diagnostics["divergences"] == 0
    table = post.table()
    assert {"delta[Intercept]", "beta[Intercept]", "beta[ablat]"} == set(table.index)
    assert post.delta.index.tolist() == ["Intercept"]
    assert abs(table.loc["delta[Intercept]", "estimate"] - reml.delta["Intercept"]) < 2 * table.loc[
        "delta[Intercept]", "se"]
    assert "delta[Intercept]" in post.summary()
    # the stored row log-likelihood of a draw: rows are independent, y_i ~ N(x_i' beta, exp(delta) v_i)
    beta = posterior["beta"].values[1, 7]
    factor = np.exp(posterior["delta"].values[1, 7, 0])
    v = model.design.V.diagonal()
    expected = stats.norm.logpdf(model.design.y, model.design.X @ beta, np.sqrt(factor * v))
    np.testing.assert_allclose(post.idata.log_likelihood["y"].values[1, 7], expected, rtol=1e-10)
    assert post.idata.posterior_predictive["y"].shape == (2, 300, model.design.n)
    if sampler == "nutpie":
        assert "delta" in post.idata.prior and post.idata.prior_predictive["y"].shape[-1] == model.design.n


def test_row_log_likelihood_equals_dense_conditional():
    model, dat, V = _berkey_un_model()
    values = {"tau2": np.array([0.02, 0.05]), "rho": np.array([0.4])}
    delta = np.array([-0.3, 0.8])
    beta = np.array([-0.3, 0.35])
    G = np.diag(np.sqrt(values["tau2"])) @ np.array([[1, 0.4], [0.4, 1]]) @ np.diag(np.sqrt(values["tau2"]))
    W = np.column_stack([np.ones(len(dat)), dat["w"]])
    v_factors = np.exp(W @ delta)
    expected = conditional_log_densities(model.design.y, model.design.X @ beta,
                                          dense_sigma(dat, V, delta, "~ outcome | trial", values))
    got = row_log_likelihood(model.design, beta[None], [G[None]], v_factors[None])[0]
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_random_effects_and_sampling_errors_use_the_factors():
    """Draws at one parameter value: the random effects' mean is G Z' Sigma^-1 r (dense, with the scaled V),
    and the sampling errors' covariance is D^1/2 V D^1/2."""
    dat, blocks = berkey()
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, V_scale="~ w")
    V = block_diag(*blocks)
    tau2, delta, beta = 0.01, np.array([0.5, -1.0]), np.array([-0.3, 0.35])
    W = np.column_stack([np.ones(len(dat)), dat["w"]])
    Sigma = dense_sigma(dat, V, delta, None, {"tau2": [tau2]})
    r = model.design.y - model.design.X @ beta
    mean = tau2 * np.linalg.solve(Sigma, r)
    cov = tau2 * np.eye(len(r)) - tau2 ** 2 * np.linalg.inv(Sigma)
    S = 20_000
    rng = np.random.default_rng(4)
    factors = np.broadcast_to(np.exp(W @ delta), (S, len(r)))
    u = draw_random_effects(model.design, np.broadcast_to(beta, (S, 2)), [np.full((S, 1, 1), tau2)], rng,
                            factors)[0][:, :, 0]
    assert np.all(np.abs(u.mean(axis=0) - mean) < 5 * np.sqrt(np.diag(cov) / S))
    np.testing.assert_allclose(np.cov(u.T), cov, atol=0.05 * np.max(np.diag(cov)))
    e = draw_sampling_errors(model.design.V, S, rng, factors)
    target = scaled_v(V, W, delta)
    np.testing.assert_allclose(np.cov(e.T), target, atol=0.04 * np.max(np.diag(target)))


def test_laplace_has_delta():
    post = uwls().fit("laplace", random_seed=1, draws=500)
    mode = uwls().fit("MAP")
    assert post.idata.posterior["delta"].dims[-1] == "v_scale_term"
    assert post.delta["Intercept"] == pytest.approx(mode.delta["Intercept"], abs=0.1)
    assert "delta[Intercept]" in post.table().index


def test_priors_of_delta():
    dat, blocks = berkey()
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, V_scale="~ w")
    defaults = resolve_priors(model.design, model.param)
    assert defaults.delta_names == ("Intercept", "w")
    sd_w = dat["w"].std(ddof=0)
    assert defaults.delta[1] == Prior("Normal", mu=0.0, sigma=round(2.5 / sd_w, 6))
    intercept = defaults.delta[0]
    assert intercept.parameters["mu"] == 0.0  # a factor of 1: the sampling variances as given
    assert intercept.parameters["sigma"] == pytest.approx(2.5 * (1 + dat["w"].mean() / sd_w), rel=1e-6)
    table = defaults.table().set_index("parameter")
    assert {"delta[Intercept]", "delta[w]"} <= set(table.index)
    everyone = resolve_priors(model.design, model.param, {"delta": Prior("Normal", mu=0, sigma=1),
                                                          "delta[w]": Prior("StudentT", nu=3, mu=0, sigma=2)})
    assert everyone.delta == (Prior("Normal", mu=0, sigma=1), Prior("StudentT", nu=3, mu=0, sigma=2))
    flat = resolve_priors(model.design, model.param, "flat")
    assert flat.delta == (Prior("Flat"), Prior("Flat"))
    with pytest.raises(bm.SpecificationError, match=r"'delta\[x\]' matches no parameter; delta parameters: "
                                                    r"Intercept, w"):
        resolve_priors(model.design, model.param, {"delta[x]": Prior("Normal", mu=0, sigma=1)})
    with pytest.raises(bm.SpecificationError, match="'delta' has sigma=-1"):
        resolve_priors(model.design, model.param, {"delta": Prior("Normal", mu=0, sigma=-1)})
    # a non-Normal prior goes on delta itself (no standardised coefficients)
    pm_model = model.build_pymc(priors={"delta[w]": Prior("StudentT", nu=3, mu=0, sigma=2)})
    assert "delta_std" not in pm_model.named_vars and "delta" in pm_model.named_vars


def _berkey_with_correlation(rho: float) -> bm.MetaModel:
    """UWLS-like model of Berkey's trials whose within-trial sampling correlation is assumed to be ``rho``."""
    dat = bm.datasets.load("berkey1998")
    blocks = []
    for _, g in dat.groupby("trial", sort=False):
        sd = np.sqrt(np.diag(g[["v1i", "v2i"]].to_numpy()))
        blocks.append(np.outer(sd, sd) * np.array([[1.0, rho], [rho, 1.0]]))
    return bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, random=[], V_scale="~ 1")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayesmeta.ConvergenceWarning")  # short chains on purpose
def test_assumption_sensitivity_compiles_once_with_v_scale():
    """Each assumed correlation samples the one compiled nutpie model with its V as data; the stored row
    log-likelihoods are those of the setting's own V scaled by the draws' factors."""
    pytest.importorskip("nutpie")
    from bayesmeta.engines.bayes.draws import parameter_draws, v_factor_draws

    with counted_compiles() as built:
        sens = bm.assumption_sensitivity(_berkey_with_correlation, {"rho": [0.0, 0.8]}, methods=("NUTS",),
                                         draws=100, tune=100, chains=2, random_seed=4, progressbar=False)
    assert built == [1, 1]
    for rho in (0.0, 0.8):
        post, model = sens.results[(f"rho={rho}", "NUTS")], _berkey_with_correlation(rho)
        first = post.idata.posterior.isel(draw=slice(0, 2))
        beta, G = parameter_draws(model.param, first)
        expected = row_log_likelihood(model.design, beta, G, v_factor_draws(model.param, first))
        stored = post.idata.log_likelihood["y"].isel(draw=slice(0, 2)).values.reshape(len(beta), -1)
        np.testing.assert_allclose(stored, expected, rtol=1e-10)
