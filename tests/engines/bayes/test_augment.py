"""What is added after sampling: conditional random effects with readable coords,
posterior and prior predictive draws, and predictions for a new study."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
from cases import berkey_model, whitened
from scipy import stats

import bayesmeta as bm
from bayesmeta.engines.bayes.augment import effect_key
from bayesmeta.engines.bayes.priors import resolve_priors

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def _school(formula="effect ~ 1"):
    return bm.MetaModel(formula, data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")


@pytest.fixture(scope="module")
def school_posterior():
    model = _school()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)
        return model, model.sample(draws=150, tune=150, chains=2, random_seed=5, progressbar=False, loo="cluster")


def test_random_effects_are_stored_with_group_names(school_posterior):
    model, post = school_posterior
    posterior = post.idata.posterior
    dat = bm.datasets.load("school")
    assert posterior["u_district"].dims == ("chain", "draw", "district")
    assert posterior["u_study"].dims == ("chain", "draw", "study")
    # clusters keep their labels as they are in the data; studies within districts are "district/study"
    assert list(posterior["u_district"].coords["district"].values) == list(pd.unique(dat["district"]))
    studies = list(posterior["u_study"].coords["study"].values)
    assert studies[:2] == [f"{dat.district[0]}/{dat.study[0]}", f"{dat.district[1]}/{dat.study[1]}"]
    # the effect named g belongs to exactly the rows of group g
    for enc, column in zip(model.design.encodings, (dat["district"],
                                                    dat["district"].astype(str) + "/" + dat["study"].astype(str))):
        np.testing.assert_array_equal(np.array(enc.groups)[enc.codes], column.to_numpy())


def test_stored_random_effects_follow_their_conditional_distribution(school_posterior):
    model, post = school_posterior
    # the covariances straight from the stored variances (district, district/study), not from the
    # production parameter_draws
    beta = post.idata.posterior["beta"].values.reshape(-1, 1)
    sigma2 = post.idata.posterior["sigma2"].values.reshape(-1, 2)
    G = [sigma2[:, k, None, None] for k in range(2)]
    effects = [post.idata.posterior[name].values.reshape(len(beta), -1, 1)
               for name in ("u_district", "u_study")]
    z = whitened(model.design, beta, G, effects)
    assert np.max(np.abs(z.mean(axis=0))) < 4.5 / np.sqrt(len(beta))
    assert abs(z.var() - 1) < 0.1


def test_posterior_predictive_and_observed_data(school_posterior):
    model, post = school_posterior
    replicated = post.idata.posterior_predictive["y"]
    assert replicated.dims == ("chain", "draw", "obs") and replicated.sizes["obs"] == 56
    np.testing.assert_array_equal(post.idata.observed_data["y"].values, model.design.y)
    # replicated data are the fitted values plus sampling error with variance vi
    fitted = (post.idata.posterior["beta"].values[..., 0, None]
              + post.idata.posterior["u_district"].values[..., model.design.encodings[0].codes]
              + post.idata.posterior["u_study"].values[..., model.design.encodings[1].codes])
    standardized = (replicated.values - fitted) / np.sqrt(model.design.V.diagonal())
    assert abs(standardized.mean()) < 4 / np.sqrt(standardized.size)
    assert abs(standardized.var() - 1) < 0.03


def test_log_likelihood_is_each_districts_marginal_density(school_posterior):
    """With loo="cluster", log_likelihood["y"] holds, per draw, the marginal log-density of every
    independent block (a district: y ~ N(beta, diag(v) + sigma2_district J + sigma2_study I)), computed here densely."""
    _, post = school_posterior
    dat = bm.datasets.load("school")
    posterior, loglik = post.idata.posterior, post.idata.log_likelihood["y"]
    districts = list(pd.unique(dat["district"]))
    assert loglik.sizes["block"] == len(districts)
    for chain, draw in ((0, 0), (1, 149)):
        beta = posterior["beta"].values[chain, draw, 0]
        s2_district, s2_study = posterior["sigma2"].values[chain, draw]
        expected = []
        for district in districts:
            rows = dat[dat["district"] == district]
            cov = np.diag(rows["var"]) + s2_district + s2_study * np.eye(len(rows))
            expected.append(stats.multivariate_normal(np.full(len(rows), beta), cov).logpdf(rows["effect"]))
        np.testing.assert_allclose(loglik.values[chain, draw], expected, rtol=1e-10)


def test_multivariate_effects_have_a_second_dim():
    model = berkey_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)
        post = model.fit("laplace", draws=200, random_seed=1)
    u = post.idata.posterior["u_trial"]
    assert u.dims == ("chain", "draw", "trial", "trial_effect")
    assert list(u.coords["trial_effect"].values) == ["AL", "PD"]


def _synthetic_result(model, beta, family_draws):
    """A BayesResult holding given draws (one chain), to test predict exactly."""
    post = {"beta": (("chain", "draw", "term"), beta[None])}
    for name, values in family_draws.items():
        post[name] = (("chain", "draw", f"{name}_component"), values[None])
    idata = az.from_dict(posterior={k: v[1] for k, v in post.items()},
                         dims={k: list(v[0][2:]) for k, v in post.items()})
    prior_set = resolve_priors(model.design, model.param, None)
    return bm.BayesResult(idata, prior_set, "laplace", 0.95, model.design, model.param)


@pytest.mark.parametrize("sampler", ["laplace", "pymc"])
def test_table_and_lincom_summarise_the_draws(sampler):
    """BayesResult.table() and bm.lincom on a posterior: means, SDs (ddof 1) and equal-tailed
    intervals of the stored draws, at the result's level and at another."""
    model = _school("effect ~ 1 + year")
    rng = np.random.default_rng(7)
    beta = rng.normal([1.0, -0.0005], [0.1, 0.0001], size=(4000, 2))
    sigma2 = rng.gamma(4, [0.015, 0.008], size=(4000, 2))
    idata = az.from_dict(posterior={"beta": beta.reshape(4, 1000, 2), "sigma2": sigma2.reshape(4, 1000, 2)},
                         dims={"beta": ["term"], "sigma2": ["sigma2_component"]},
                         coords={"term": ["Intercept", "year"], "sigma2_component": ["district", "district/study"]})
    result = bm.BayesResult(idata, resolve_priors(model.design, model.param, None), sampler, 0.9, model.design,
                            model.param)
    table = result.table()
    for row, draws in (("beta[Intercept]", beta[:, 0]), ("beta[year]", beta[:, 1]),
                       ("sigma2[district]", sigma2[:, 0]), ("sigma2[district/study]", sigma2[:, 1])):
        expected = [draws.mean(), draws.std(ddof=1), *np.quantile(draws, [0.05, 0.95])]
        np.testing.assert_allclose(table.loc[row, ["estimate", "se", "ci_lb", "ci_ub"]].to_numpy(float),
                                   expected, rtol=1e-10, err_msg=row)
    at_1990 = beta @ [1, 1990]
    out = bm.lincom(result, {"1990": {"Intercept": 1, "year": 1990}}, level=0.8)
    np.testing.assert_allclose(out.loc["1990", ["estimate", "se", "ci_lb", "ci_ub"]].to_numpy(float),
                               [at_1990.mean(), at_1990.std(ddof=1), *np.quantile(at_1990, [0.1, 0.9])], rtol=1e-10)
    ratio = bm.lincom(result, {"1990": {"Intercept": 1, "year": 1990}}, transform=np.exp)
    np.testing.assert_allclose(ratio.loc["1990", "estimate"], np.exp(at_1990).mean(), rtol=1e-10)


def _mixture_cdf(x, mean, sd):
    return stats.norm.cdf((x - mean) / sd).mean()


def test_predict_for_a_new_study_is_the_posterior_mixture():
    model = _school()
    rng = np.random.default_rng(0)
    S = 20000
    beta = rng.normal(0.18, 0.08, size=(S, 1))
    sigma2 = np.column_stack([rng.gamma(4, 0.015, S), rng.gamma(4, 0.008, S)])
    result = _synthetic_result(model, beta, {"sigma2": sigma2})
    table = result.predict(random_seed=1)
    assert list(table.index) == ["new study"]
    row = table.iloc[0]
    assert row["pred"] == pytest.approx(beta.mean())
    assert row["se"] == pytest.approx(beta.std(ddof=1))
    assert row["ci_lb"] == pytest.approx(np.quantile(beta, 0.025))
    sd = np.sqrt(sigma2.sum(axis=1))
    assert _mixture_cdf(row["pi_lb"], beta[:, 0], sd) == pytest.approx(0.025, abs=0.004)
    assert _mixture_cdf(row["pi_ub"], beta[:, 0], sd) == pytest.approx(0.975, abs=0.004)
    # exactly: the quantiles of one new-study draw per posterior draw, beta + sd z with z from the seed
    new_study = beta[:, 0] + sd * np.random.default_rng(1).standard_normal((S, 1))[:, 0]
    np.testing.assert_allclose(row[["pi_lb", "pi_ub"]].to_numpy(float), np.quantile(new_study, [0.025, 0.975]),
                               rtol=1e-10)
    at_80 = result.predict(random_seed=1, level=0.8).iloc[0]
    np.testing.assert_allclose(at_80[["ci_lb", "ci_ub", "pi_lb", "pi_ub"]].to_numpy(float),
                               [*np.quantile(beta, [0.1, 0.9]), *np.quantile(new_study, [0.1, 0.9])], rtol=1e-10)


def test_predict_with_moderators_and_inner_levels():
    model = berkey_model()
    rng = np.random.default_rng(1)
    S = 20000
    beta = rng.normal([0.3, -0.4], 0.05, size=(S, 2))
    tau2 = np.column_stack([rng.gamma(5, 0.01, S), rng.gamma(5, 0.004, S)])
    rho = rng.uniform(0.2, 0.8, size=(S, 1))
    result = _synthetic_result(model, beta, {"tau2": tau2, "rho": rho})
    table = result.predict(pd.DataFrame({"outcome": ["PD", "AL"]}, index=["pd", "al"]), random_seed=2)
    assert list(table.index) == ["pd", "al"]
    columns = list(model.design.coef_names)
    for label, level in (("pd", "PD"), ("al", "AL")):
        j = columns.index(f"outcome[T.{level}]") if f"outcome[T.{level}]" in columns else columns.index(
            f"outcome[{level}]")
        assert table.loc[label, "pred"] == pytest.approx(beta[:, j].mean())
        k = list(model.param.terms[0].levels).index(level)
        lb = table.loc[label, "pi_lb"]
        assert _mixture_cdf(lb, beta[:, j], np.sqrt(tau2[:, k])) == pytest.approx(0.025, abs=0.004)
    with pytest.raises(bm.SpecificationError, match="newdata: factor level\\(s\\) \\{'XX'\\} not in the data"):
        result.predict(pd.DataFrame({"outcome": ["XX"]}))
    with pytest.raises(bm.SpecificationError, match="not found in data"):
        result.predict(pd.DataFrame({"other": ["PD"]}))


def test_predict_encodes_new_moderator_values():
    model = _school("effect ~ 1 + year")
    rng = np.random.default_rng(3)
    beta = rng.normal([1.0, -0.0005], [0.1, 0.0001], size=(4000, 2))
    sigma2 = np.full((4000, 2), 0.01)
    table = _synthetic_result(model, beta, {"sigma2": sigma2}).predict(pd.DataFrame({"year": [1980.0, 1990.0]}))
    np.testing.assert_allclose(table["pred"], [(beta @ [1, 1980]).mean(), (beta @ [1, 1990]).mean()])
    assert len(_synthetic_result(model, beta, {"sigma2": sigma2}).predict()) == 56


def test_prior_predictive():
    model = _school()
    prior = model.sample_prior_predictive(draws=3000, random_seed=4)
    y = prior.prior_predictive["y"]
    assert y.dims == ("chain", "draw", "obs") and y.sizes["obs"] == 56
    assert {"beta", "sigma", "sigma2"} <= set(prior.prior.data_vars)
    # Var(y_i) = E[beta^2] + E[sigma2_1 + sigma2_2] + v_i under the prior
    beta = prior.prior["beta"].values.ravel()
    sigma2 = prior.prior["sigma2"].values.reshape(-1, 2).sum(axis=1)
    expected = np.mean(beta ** 2) + sigma2.mean() + model.design.V.diagonal()
    ratio = (y.values.reshape(-1, 56) ** 2).mean(axis=0) / expected
    assert np.all(np.abs(ratio - 1) < 0.15)
    with pytest.raises(bm.SpecificationError, match="flat priors are improper"):
        model.sample_prior_predictive(priors="flat")


def test_new_rows_refuse_unseen_factor_levels_and_missing_values():
    dat = bm.datasets.load("school").assign(era=lambda d: np.where(d.year > 1985, "late", "early"))
    design = bm.MetaModel("effect ~ era", data=dat, vi="var", random="~ 1 | district/study").design
    with pytest.raises(bm.SpecificationError, match="newdata: factor level\\(s\\) \\{'mid'\\}"):
        design.new_rows(pd.DataFrame({"era": ["mid"]}))
    X, Z = design.new_rows(pd.DataFrame({"era": ["late", "early"]}))
    np.testing.assert_array_equal(X, [[1, 1], [1, 0]])
    assert [z.tolist() for z in Z] == [[[1.0], [1.0]]] * 2
    year_design = bm.MetaModel("effect ~ year", data=dat, vi="var", random="~ 1 | district/study").design
    with pytest.raises(bm.SpecificationError, match="newdata: missing values .* rows 1"):
        year_design.new_rows(pd.DataFrame({"year": [1980.0, None]}))


def test_too_many_values_are_left_out_with_a_warning(monkeypatch):
    from bayesmeta.engines.bayes import augment

    model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district")
    # room for the 11 district effects of 100 draws, not for the 56 replicated rows
    monkeypatch.setattr(augment, "MAX_STORED_VALUES", 2000)
    with pytest.warns(UserWarning, match="posterior predictive \\(56 rows per draw\\) was not drawn"):
        post = model.fit("laplace", draws=100, random_seed=1)
    assert "u_district" in post.idata.posterior and "posterior_predictive" not in post.idata.groups()
    monkeypatch.setattr(augment, "MAX_STORED_VALUES", 1000)
    with pytest.warns(UserWarning, match="random effects \\(11 per draw\\) and the posterior predictive were not"):
        post = model.fit("laplace", draws=100, random_seed=1)
    assert "u_district" not in post.idata.posterior and "posterior_predictive" not in post.idata.groups()


def test_two_terms_on_one_grouping_get_distinct_names():
    """``~ 1 | trial`` and ``~ outcome | trial``: the second gets its family as a suffix."""
    taken = set()
    assert effect_key("trial", "sigma2", taken) == "trial"
    assert effect_key("outcome | trial", "tau2", taken) == "trial_tau2"
    assert effect_key("district/study", "sigma2", taken) == "study"
    assert taken == {"trial", "trial_tau2", "study"}
