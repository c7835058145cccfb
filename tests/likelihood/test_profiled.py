"""The block-batched likelihood against a dense n x n computation, and its gradient."""

from __future__ import annotations

import numpy as np
import pytest
from cases import MODELS, blocks_v, dense_sigma, model_case, simulated
from engine_tools import dense_profile_loglik

import bayesmeta as bm
from bayesmeta.design import build
from bayesmeta.design.blocks import build_batches
from bayesmeta.engines.mode.objective import Objective
from bayesmeta.likelihood.marginal import evaluate
from bayesmeta.likelihood.profiled import evaluate_batches


def dense_loglik_location_scale(model, theta, reml):
    return dense_profile_loglik(model.design, dense_sigma(model, theta), reml)










@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("name", list(MODELS))
def test_block_likelihood_equals_dense(name, reml):
    dat = simulated()
    model = model_case(MODELS[name], dat)
    rng = np.random.default_rng(1)
    for _ in range(3):
        theta = rng.normal(0, 0.7, model.param.n_free)
        ll, beta = dense_loglik_location_scale(model, theta, reml)
        ev = Objective(model.design, model.param, reml).evaluate(theta)
        assert abs(ev.loglik - ll) < 1e-8 * max(1, abs(ll))
        np.testing.assert_allclose(ev.beta, beta, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("name", list(MODELS))
def test_analytic_gradient_matches_finite_differences(name, reml):
    dat = simulated(2)
    model = model_case(MODELS[name], dat)
    objective = Objective(model.design, model.param, reml)
    theta = np.random.default_rng(3).normal(0, 0.5, model.param.n_free)
    _, grad = objective(theta)
    h = 1e-6
    numeric = np.array([(objective(theta + h * e)[0] - objective(theta - h * e)[0]) / (2 * h)
                        for e in np.eye(len(theta))])
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


def test_blocks_follow_clusters_and_v():
    dat = simulated()
    model = model_case(MODELS["three-level"], dat)
    assert model.design.n_blocks == dat["cluster"].nunique()
    standard = bm.MetaModel("yi ~ 1", data=dat, vi="vi")
    assert standard.design.n_blocks == len(dat)
    with_v = bm.MetaModel("yi ~ 1", data=dat, V=blocks_v(dat))
    assert with_v.design.n_blocks == dat["cluster"].nunique()
    un = model_case(MODELS["UN"], dat)
    assert un.design.n_blocks == dat["cluster"].nunique()
    assert max(b.rows.shape[1] for b in un.design.batches) < len(dat)


@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("name", ["standard", "three-level", "four-level"])
def test_nested_closed_form_equals_batched_blocks(name, reml):
    """The O(n) closed form and the batched block computation agree, gradients included."""
    dat = simulated(4)
    model = model_case(MODELS[name], dat)
    d = model.design
    assert d.nested is not None and d.batches == ()
    batches = build_batches(d.y, d.X, d.V, d.encodings, d.block_of_row)
    G = model.param.covariances(np.random.default_rng(5).normal(-0.5, 0.5, model.param.n_free))
    logdet_xtx = d.logdet_xtx
    closed = evaluate(d, G, reml, gradient=True, logdet_xtx=logdet_xtx)
    blocks = evaluate_batches(list(batches), G, d.n, d.p, logdet_xtx, reml, gradient=True)
    assert abs(closed.loglik - blocks.loglik) < 1e-9
    np.testing.assert_allclose(closed.beta, blocks.beta, rtol=1e-9)
    np.testing.assert_allclose(closed.vcov, blocks.vcov, rtol=1e-9)
    for a, b in zip(closed.dG, blocks.dG):
        np.testing.assert_allclose(a, b, rtol=1e-8)


def test_crossed_intercepts_use_one_dense_block_and_say_so(monkeypatch):
    dat = simulated(6)
    dat["other"] = dat["row"] % 3
    model = bm.MetaModel("yi ~ 1", data=dat, vi="vi", random=["~ 1 | cluster", "~ 1 | other"])
    assert model.design.nested is None and model.design.n_blocks == 1
    monkeypatch.setattr(build, "DENSE_BLOCK_WARNING", 10)
    with pytest.warns(bm.DenseBlockWarning, match=f"join {len(dat)} rows into one block"):
        bm.MetaModel("yi ~ 1", data=dat, vi="vi", random=["~ 1 | cluster", "~ 1 | other"])


def test_padding_adds_nothing():
    """A batch padded beyond its blocks' sizes gives the same likelihood as exact sizes."""
    from dataclasses import replace

    dat = simulated()
    model = model_case(MODELS["UN"], dat)
    d = model.design
    G = model.param.covariances(np.full(model.param.n_free, -0.3))
    ref = evaluate_batches(list(d.batches), G, d.n, d.p, d.logdet_xtx, True).loglik
    padded = []
    for b in d.batches:
        B, m = b.rows.shape
        pad = 3

        def grow(a, fill=0.0, square=False):
            shape = (B, m + pad) + ((m + pad,) if square else a.shape[2:])
            out = np.full(shape, fill)
            out[(slice(None), slice(0, m)) + ((slice(0, m),) if square else ())] = a
            return out

        V = grow(b.V, square=True)
        V[:, np.arange(m, m + pad), np.arange(m, m + pad)] = 1.0
        padded.append(replace(b, rows=grow(b.rows, -1), y=grow(b.y), X=grow(b.X), V=V,
                              Z=tuple(None if z is None else grow(z) for z in b.Z),
                              M=tuple(grow(M, square=True) for M in b.M)))
    assert abs(evaluate_batches(padded, G, d.n, d.p, d.logdet_xtx, True).loglik - ref) < 1e-10


def test_v_as_dense_sparse_or_blocks_gives_the_same_fit():
    import scipy.sparse as sp

    dat = simulated(7)
    blocks = blocks_v(dat)
    dense = np.zeros((len(dat), len(dat)))
    start = 0
    for b in blocks:
        dense[start:start + len(b), start:start + len(b)] = b
        start += len(b)
    fits = [bm.MetaModel("yi ~ x", data=dat, V=V, random="~ 1 | cluster/sub").fit()
            for V in (blocks, dense, sp.csr_matrix(dense))]
    for other in fits[1:]:
        assert abs(other.loglik - fits[0].loglik) < 1e-10
        np.testing.assert_allclose(other.coef, fits[0].coef, rtol=1e-10)
