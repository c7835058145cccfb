"""The Bayesian engine for scale models with V= blocks (issue 17, item 2): the posterior mode under flat
priors is the ML (REML, with the restricted term) estimate and NUTS recovers simulated scale coefficients.
The graph's log-density against a dense density: tests/likelihood/test_coscale_blocks.py; the proportional
sampling-variance model (V_scale=) in the Bayesian engine: tests/engines/bayes/test_v_scale_bayes.py."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from cases import berkey_blocks

import bayesmeta as bm

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def _berkey_scale_model() -> bm.MetaModel:
    dat = bm.datasets.load("berkey1998")
    dat["z"] = np.random.default_rng(1).normal(size=len(dat))
    return bm.MetaModel("yi ~ 0 + outcome", data=dat, V=berkey_blocks(dat), scale="~ z")


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_flat_map_equals_ml_and_reml(method):
    model = _berkey_scale_model()
    assert model.design.nested is None
    fit = model.fit(method)
    mode = model.fit("MAP", priors="flat", restricted=method == "REML")
    np.testing.assert_allclose(mode.alpha, fit.alpha, rtol=1e-5)
    np.testing.assert_allclose(mode.coef, fit.coef, rtol=1e-5)


def _simulated(clusters: int = 150, seed: int = 7) -> tuple[pd.DataFrame, list[np.ndarray], np.ndarray]:
    """Pairs of rows with correlated sampling errors and row-level heterogeneity exp(a0 + a1 z)."""
    rng = np.random.default_rng(seed)
    n = 2 * clusters
    z = rng.normal(size=n)
    v = rng.uniform(0.02, 0.2, n)
    blocks = [np.outer(s, s) * np.array([[1, 0.5], [0.5, 1]]) for s in np.sqrt(v).reshape(-1, 2)]
    alpha = np.array([np.log(0.08), 0.7])
    e = np.concatenate([np.linalg.cholesky(b) @ rng.normal(size=2) for b in blocks])
    y = 0.2 + rng.normal(size=n) * np.sqrt(np.exp(alpha[0] + alpha[1] * z)) + e
    return pd.DataFrame({"y": y, "z": z}), blocks, alpha


@pytest.mark.slow
def test_nuts_recovers_scale_coefficients_with_block_v():
    dat, blocks, alpha = _simulated()
    model = bm.MetaModel("y ~ 1", data=dat, V=blocks, scale="~ z")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = model.sample(draws=500, tune=500, chains=2, random_seed=5, progressbar=False)
    assert post.diagnostics["divergences"] == 0
    table = post.table()
    assert (table["r_hat"] <= 1.01).all(), table
    for name, truth in zip(["alpha[Intercept]", "alpha[z]"], alpha):
        assert table.loc[name, "ci_lb"] < truth < table.loc[name, "ci_ub"], (name, truth, table.loc[name])
    assert table.loc["beta[Intercept]", "ci_lb"] < 0.2 < table.loc["beta[Intercept]", "ci_ub"]
