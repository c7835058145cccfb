"""bm.lincom: linear combinations of the fixed effects from a fit and from draws."""

from __future__ import annotations

from types import SimpleNamespace

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayesmeta as bm


def test_from_a_likelihood_fit_is_the_wald_interval():
    fit = bm.MetaModel("logor ~ ablat", data=bm.datasets.load("bcg"), vi="logorvar").fit(test="t")
    L = np.array([[1.0, 40.0], [0.0, 1.0]])
    table = bm.lincom(fit, pd.DataFrame(L, index=["at 40", "slope"], columns=["Intercept", "ablat"]), level=0.9)
    est = L @ fit.coef.to_numpy()
    se = np.sqrt(np.diag(L @ fit.vcov.to_numpy() @ L.T))
    crit = stats.t(fit.k - fit.p).ppf(0.95)
    np.testing.assert_allclose(table["estimate"], est, rtol=1e-12)
    np.testing.assert_allclose(table["se"], se, rtol=1e-12)
    np.testing.assert_allclose(table["ci_lb"], est - crit * se, rtol=1e-12)
    np.testing.assert_allclose(table.loc["slope", ["estimate", "se"]], [fit.coef["ablat"], fit.se["ablat"]])
    ratio = bm.lincom(fit, {"at 40": {"Intercept": 1, "ablat": 40}}, transform=np.exp, level=0.9)
    np.testing.assert_allclose(ratio.iloc[0][["estimate", "ci_lb", "ci_ub"]],
                               np.exp([est[0], est[0] - crit * se[0], est[0] + crit * se[0]]), rtol=1e-12)


def test_from_draws_is_the_posterior_of_the_combination():
    rng = np.random.default_rng(1)
    beta = rng.normal(size=(2, 500, 3))
    idata = az.from_dict(posterior={"beta": beta}, coords={"term": ["a", "b", "c"]}, dims={"beta": ["term"]})
    post = SimpleNamespace(idata=idata, level=0.8)
    table = bm.lincom(post, {"b - c": {"b": 1, "c": -1}}, transform=np.exp)
    draws = np.exp((beta[..., 1] - beta[..., 2]).ravel())
    row = table.loc["b - c"]
    np.testing.assert_allclose([row["estimate"], row["se"]], [draws.mean(), draws.std(ddof=1)])
    np.testing.assert_allclose([row["ci_lb"], row["ci_ub"]], np.quantile(draws, [0.1, 0.9]))


def test_bad_combinations_are_named():
    fit = bm.MetaModel("logor ~ ablat", data=bm.datasets.load("bcg"), vi="logorvar").fit()
    with pytest.raises(bm.SpecificationError, match="latitude"):
        bm.lincom(fit, {"x": {"latitude": 1}})
    with pytest.raises(bm.SpecificationError, match="level"):
        bm.lincom(fit, {"x": {"ablat": 1}}, level=95)
