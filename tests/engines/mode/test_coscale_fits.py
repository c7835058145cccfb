"""Issue 17, items 2 and 4: ML/REML fits of scale models with block V and of the proportional
sampling-variance model (``V_scale=``): UWLS against weighted least squares (what R's ``lm(y ~ x,
weights = 1/vi)`` reports), recovery in a seeded simulation, the batched path against the closed form."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import bayesmeta as bm
from bayesmeta.design.blocks import build_batches
from tests.cases import berkey_blocks


def _wls(y, X, v):
    W = 1 / v
    XtWX = X.T @ (W[:, None] * X)
    beta = np.linalg.solve(XtWX, X.T @ (W * y))
    rss = float(np.sum(W * (y - X @ beta) ** 2))
    return beta, rss, np.linalg.inv(XtWX)


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_uwls_is_weighted_least_squares(method):
    dat = bm.datasets.load("bcg")
    fit = bm.MetaModel("logrr ~ ablat", data=dat, vi="logrrvar", random=[], V_scale="~ 1").fit(method)
    y, v = dat["logrr"].to_numpy(), dat["logrrvar"].to_numpy()
    X = np.column_stack([np.ones(len(y)), dat["ablat"].to_numpy()])
    beta, rss, inv = _wls(y, X, v)
    n, p = X.shape
    phi = rss / (n if method == "ML" else n - p)  # lm(yi ~ ablat, weights = 1/vi): sigma^2 = rss / (n - p)
    np.testing.assert_allclose(fit.coef.to_numpy(), beta, rtol=1e-6)
    assert np.exp(fit.delta["Intercept"]) == pytest.approx(phi, rel=1e-6)
    np.testing.assert_allclose(fit.se.to_numpy(), np.sqrt(phi * np.diag(inv)), rtol=1e-6)
    # the ML information of log(phi) is n / 2, the REML one (n - p) / 2
    assert fit.delta_se["Intercept"] == pytest.approx(np.sqrt(2 / (n if method == "ML" else n - p)), rel=1e-4)
    assert list(fit.delta.index) == ["Intercept"]
    assert "delta[Intercept]" in fit.table().index


def _simulated(seed: int = 2026, clusters: int = 200):
    """Pairs of rows with correlated sampling errors; row-level heterogeneity exp(a0 + a1 z), sampling
    variances multiplied by exp(d0 + d1 w)."""
    rng = np.random.default_rng(seed)
    n = 2 * clusters
    x, z, w = rng.normal(size=n), rng.normal(size=n), rng.uniform(-1, 1, n)
    v = rng.uniform(0.02, 0.3, n)
    blocks = []
    for i in range(clusters):
        s = np.sqrt(v[2 * i:2 * i + 2])
        blocks.append(np.outer(s, s) * np.array([[1, 0.5], [0.5, 1]]))
    alpha, delta = np.array([np.log(0.05), 0.6]), np.array([np.log(1.5), 0.8])
    f = np.sqrt(np.exp(delta[0] + delta[1] * w))
    e = np.concatenate([np.linalg.cholesky(b) @ rng.normal(size=2) for b in blocks]) * f
    u = rng.normal(size=n) * np.sqrt(np.exp(alpha[0] + alpha[1] * z))
    y = 0.3 + 0.2 * x + u + e
    return pd.DataFrame({"y": y, "x": x, "z": z, "w": w}), blocks, alpha, delta


def test_recovery_of_alpha_and_delta():
    dat, blocks, alpha, delta = _simulated()
    fit = bm.MetaModel("y ~ x", data=dat, V=blocks, scale="~ z", V_scale="~ w").fit("REML")
    assert fit.converged
    assert np.all(np.abs(fit.alpha.to_numpy() - alpha) < 3 * fit.alpha_se.to_numpy())
    assert np.all(np.abs(fit.delta.to_numpy() - delta) < 3 * fit.delta_se.to_numpy())
    assert np.all(np.abs(fit.coef.to_numpy() - [0.3, 0.2]) < 3 * fit.se.to_numpy())
    assert np.all(fit.delta_se < 0.5) and np.all(fit.alpha_se < 0.5)  # informative, not flat


def test_scale_model_batched_equals_nested_closed_form():
    dat = bm.datasets.load("bangertdrowns2004")
    dat = dat[["yi", "vi", "length"]].dropna().reset_index(drop=True)
    nested = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length")
    batched = bm.MetaModel("yi ~ length", data=dat, V=[np.array([[v]]) for v in dat["vi"]], scale="~ length")
    d = batched.design
    batched.design = replace(d, nested=None, batches=build_batches(d.y, d.X, d.V, d.encodings, d.block_of_row))
    assert nested.design.nested is not None and batched.design.nested is None
    for method in ("ML", "REML"):
        a, b = nested.fit(method), batched.fit(method)
        assert b.loglik == pytest.approx(a.loglik, abs=1e-6)
        np.testing.assert_allclose(b.coef, a.coef, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(b.alpha, a.alpha, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(b.alpha_se, a.alpha_se, rtol=1e-4)


def test_delta_drifting_to_zero_warns():
    # Berkey: all heterogeneity goes to tau^2 and the factor on V heads for zero
    dat = bm.datasets.load("berkey1998")
    blocks = berkey_blocks(dat)
    with pytest.warns(bm.DriftWarning, match=r"delta \(Intercept\): the sampling-variance factor"):
        bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, V_scale="~ 1").fit("REML")
