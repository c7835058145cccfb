"""The fused Op for stacked small blocks: its value against scipy's multivariate normal, its gradient
against finite differences, its numba form against its Python one, and the batched likelihood built on it
against dense normals (its gradient against finite differences) and, for per-row SDs, correlations and
sampling-variance factors, against the graph of unrolled Cholesky factors."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from cases import MODELS, dense_sigma, model_case, simulated
from coscale_cases import simulate
from scipy import stats

import bayesmeta as bm
from bayesmeta.likelihood.block_gaussian import (
    BlockGaussianLoglik,
    block_gaussian_loglik,
)
from bayesmeta.likelihood.graph import block_loglik, total_loglik
from bayesmeta.spec.structures import Exchangeable

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def _blocks(rng, n_blocks: int, m: int, padded: int = 0):
    """Random positive definite blocks (B, m, m) and residuals (B, m); the last ``padded`` rows of every
    block are padding (unit rows of S, zero residuals)."""
    A = rng.normal(size=(n_blocks, m, m))
    S = A @ np.swapaxes(A, 1, 2) + 0.5 * np.eye(m)
    r = rng.normal(size=(n_blocks, m))
    if padded:
        S[:, -padded:, :] = 0.0
        S[:, :, -padded:] = 0.0
        S[:, -padded:, -padded:] = np.eye(padded)
        r[:, -padded:] = 0.0
    return S, r


def _expected(S, r, real: int) -> float:
    """sum_b log N(r_b; 0, S_b) over the real rows, plus the 1/2 log 2pi per row the Op leaves out."""
    total = sum(stats.multivariate_normal(np.zeros(real), S_b[:real, :real]).logpdf(r_b[:real])
                for S_b, r_b in zip(S, r))
    return total + 0.5 * real * len(S) * np.log(2 * np.pi)


def _function(mode):
    S, r = pt.dtensor3("S"), pt.dmatrix("r")
    value, dS, dr = BlockGaussianLoglik()(S, r)
    return pytensor.function([S, r], [value, dS, dr], mode=mode)


@pytest.mark.parametrize("m,padded", [(1, 0), (2, 0), (3, 1), (5, 2)])
def test_value_equals_scipy_and_gradient_equals_finite_differences(m, padded):
    rng = np.random.default_rng(m)
    S, r = _blocks(rng, 7, m, padded)
    f = _function("FAST_COMPILE")
    value, dS, dr = f(S, r)
    assert float(value) == pytest.approx(_expected(S, r, m - padded), rel=1e-12)
    h = 1e-6
    for b, i, j in [(0, 0, 0), (3, m - 1, 0), (6, m // 2, m - 1)]:
        step = np.zeros_like(S)
        step[b, i, j] += h / 2  # a symmetric perturbation: dS is symmetric
        step[b, j, i] += h / 2
        numeric = (f(S + step, r)[0] - f(S - step, r)[0]) / (2 * h)
        assert dS[b, i, j] == pytest.approx(float(numeric), rel=1e-5, abs=1e-8)
        step = np.zeros_like(r)
        step[b, i] = h
        numeric = (f(S, r + step)[0] - f(S, r - step)[0]) / (2 * h)
        assert dr[b, i] == pytest.approx(float(numeric), rel=1e-5, abs=1e-8)
    np.testing.assert_array_equal(dS, np.swapaxes(dS, 1, 2))


def test_numba_form_equals_the_python_one():
    S, r = _blocks(np.random.default_rng(4), 30, 3)
    python, numba = _function("FAST_COMPILE")(S, r), _function("NUMBA")(S, r)
    for a, b in zip(python, numba):
        np.testing.assert_allclose(b, a, rtol=1e-13)


def test_a_block_that_is_not_positive_definite_gives_nan():
    S, r = _blocks(np.random.default_rng(5), 4, 2)
    S[2] = [[1.0, 2.0], [2.0, 1.0]]
    assert np.isnan(_function("FAST_COMPILE")(S, r)[0])


def test_only_the_value_is_differentiable_and_shapes_are_checked():
    S, r = pt.dtensor3("S"), pt.dmatrix("r")
    _, dS, _ = BlockGaussianLoglik()(S, r)
    with pytest.raises(NotImplementedError, match="only the value"):
        pt.grad(dS.sum(), S)
    with pytest.raises(TypeError, match=r"expected S \(B, m, m\) and r \(B, m\)"):
        BlockGaussianLoglik()(r, r)
    f = pytensor.function([S, r], block_gaussian_loglik(S, r), mode="FAST_COMPILE")
    with pytest.raises(ValueError, match="does not match r"):
        f(np.ones((2, 3, 3)), np.ones((2, 2)))


def _assert_fused_equals_graph(model, inputs, values, fused_args: dict, graph_args: dict | None = None):
    """total_loglik (the fused Op) equals block_loglik summed, in value and in the gradient of every input."""
    beta, *G = inputs[:1 + len(model.param.terms)]
    fused = total_loglik(model.design, beta, G, **fused_args)
    reference = block_loglik(model.design, beta, G, **(graph_args or fused_args))[0].sum()
    gradients = [*pt.grad(fused, inputs, disconnected_inputs="ignore"),
                 *pt.grad(reference, inputs, disconnected_inputs="ignore")]
    f = pytensor.function(inputs, [fused, reference, *gradients], mode="FAST_COMPILE", on_unused_input="ignore")
    out = f(*values)
    n = len(inputs)
    assert float(out[0]) == pytest.approx(float(out[1]), rel=1e-11)
    for got, expected in zip(out[2:2 + n], out[2 + n:]):
        if got.ndim == 2:  # G is symmetric: only G_ij + G_ji is defined (the graph reads the lower triangle)
            got, expected = got + got.T, expected + expected.T
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", [n for n in MODELS if n not in ("standard", "three-level", "four-level",
                                                                  "nested, one fixed")])
def test_batched_likelihood_equals_dense_normal_and_its_gradient_finite_differences(name):
    model = model_case(MODELS[name], simulated(8))
    assert model.design.nested is None and model.design.batches
    beta = pt.dvector("beta")
    G = [pt.dmatrix(f"G{k}") for k in range(len(model.param.terms))]
    value = total_loglik(model.design, beta, G)
    f = pytensor.function([beta, *G], [value, *pt.grad(value, [beta, *G])], mode="FAST_COMPILE")
    rng = np.random.default_rng(11)
    theta = rng.normal(-0.3, 0.5, model.param.n_free)
    b, Gs = rng.normal(0, 0.3, model.design.p), model.param.covariances(theta)
    got, grad_beta, *grad_G = f(b, *Gs)
    r = model.design.y - model.design.X @ b
    assert float(got) == pytest.approx(stats.multivariate_normal(np.zeros(len(r)), dense_sigma(model, theta)).logpdf(r),
                                       rel=1e-10)
    h = 1e-6
    for i in range(model.design.p):
        step = h * np.eye(model.design.p)[i]
        numeric = (f(b + step, *Gs)[0] - f(b - step, *Gs)[0]) / (2 * h)
        assert grad_beta[i] == pytest.approx(float(numeric), rel=1e-5, abs=1e-6)
    for k, Gk in enumerate(Gs):
        q = len(Gk)
        i, j = q - 1, 0  # an off-diagonal entry (the diagonal when q = 1), perturbed symmetrically
        step = np.zeros((q, q))
        step[i, j] += h / 2
        step[j, i] += h / 2
        plus, minus = list(Gs), list(Gs)
        plus[k], minus[k] = Gk + step, Gk - step
        numeric = (f(b, *plus)[0] - f(b, *minus)[0]) / (2 * h)
        symmetric = (grad_G[k][i, j] + grad_G[k][j, i]) / 2  # d/dG_ij along the symmetric perturbation
        assert symmetric == pytest.approx(float(numeric), rel=1e-5, abs=1e-6)


def test_coscale_terms_and_sampling_variance_factors_equal_the_graph():
    """Per-row SDs and correlations of a structured term (missing outcomes: blocks of one and two rows) and
    per-row factors of the sampling variances, as symbolic vectors."""
    dat, blocks = simulate(3, n_studies=30, missing=0.2)
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, random="~ outcome | study", struct="UN")
    assert {b.rows.shape[1] for b in model.design.batches} == {1, 2}
    beta, G = pt.dvector("beta"), pt.dmatrix("G")
    rng = np.random.default_rng(11)
    values = [rng.normal(0, 0.3, model.design.p), model.param.covariances(rng.normal(-0.3, 0.5, 3))[0]]
    sd, rho, factors = pt.dvector("sd"), pt.dvector("rho"), pt.dvector("factors")
    n = model.design.n
    study = np.unique(dat["study"], return_inverse=True)[1]
    values += [rng.uniform(0.2, 0.6, n), np.tanh(rng.normal(0, 0.5, study.max() + 1)), rng.uniform(0.5, 2.0, n)]
    # one correlation per cluster, read by each of its rows (only their sum has a defined gradient)
    coscale = [(sd, rho[study], Exchangeable())]
    _assert_fused_equals_graph(model, [beta, G, sd, rho, factors], values,
                               {"coscale": coscale, "v_factors": factors})
