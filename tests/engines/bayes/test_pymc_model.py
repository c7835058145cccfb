"""The Bayesian engine's graph: its log-density equals the core likelihood, and its
parameters map to the frequentist ones."""

from __future__ import annotations

import numpy as np
import pytest
from cases import MODELS, model_case, simulated

import bayesmeta as bm
from bayesmeta.design.parameters import SD_NAMES
from bayesmeta.engines.bayes.pymc_model import fixed_effects_start
from bayesmeta.engines.mode.objective import Objective
from bayesmeta.spec.structures import Unstructured, cpc_to_correlation, lower_pairs

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def _free_values(model, theta):
    """Values of the PyMC model's free variables at the unconstrained parameters theta."""
    param = model.param
    sd, single, cpc = {}, [], {}
    partly_fixed = {t.family for t, fs in zip(param.terms, param.fixed_sd) if not np.isnan(fs).all()}
    for k, (t, fs, fr, (s, r)) in enumerate(zip(param.terms, param.fixed_sd, param.fixed_rho,
                                                 param.natural(theta))):
        name = SD_NAMES[t.family] + ("_free" if t.family in partly_fixed else "")
        sd.setdefault(name, []).extend(s[np.isnan(fs)])
        if np.isnan(fr).any() and t.structure.correlation.prior == "lkj":
            th = theta[_rho_positions(param, k)]
            cpc[f"cpc_{k}"] = (np.tanh(th) + 1) / 2
        else:
            single += list(r[np.isnan(fr)])
    return {**{k: np.array(v) for k, v in sd.items()}, "cor_single": np.array(single), **cpc}


def _rho_positions(param, k):
    pos = 0
    for i, (fs, fr) in enumerate(zip(param.fixed_sd, param.fixed_rho)):
        n_sd, n_rho = int(np.isnan(fs).sum()), int(np.isnan(fr).sum())
        if i == k:
            return np.arange(pos + n_sd, pos + n_sd + n_rho)
        pos += n_sd + n_rho


def _potential(pm_model, values):
    (pot,) = pm_model.replace_rvs_by_values([pm_model.potentials[0]])
    f = pm_model.compile_fn(pot, inputs=pm_model.value_vars, point_fn=True, on_unused_input="ignore",
                            mode="FAST_COMPILE")
    point = {}
    for rv in pm_model.free_RVs:
        value = values[rv.name]
        transform = pm_model.rvs_to_transforms.get(rv)
        vv = pm_model.rvs_to_values[rv]
        point[vv.name] = transform.forward(value, *rv.owner.inputs).eval() if transform else value
    return float(f(point))


@pytest.mark.parametrize("restricted", [False, True])
@pytest.mark.parametrize("name", list(MODELS))
def test_graph_log_density_equals_core_likelihood(name, restricted):
    dat = simulated(10)
    model = model_case(MODELS[name], dat)
    pm_model = model.build_pymc(priors="flat", restricted=restricted)
    theta = np.random.default_rng(11).normal(-0.2, 0.6, model.param.n_free)
    ev = Objective(model.design, model.param, restricted).evaluate(theta)
    values = _free_values(model, theta)
    # at the GLS estimate the full likelihood is the profiled one (beta, or its standardised coefficients)
    values.update(fixed_effects_start(pm_model, model.design, ev.beta))
    value = _potential(pm_model, values)
    assert abs(value - ev.loglik) < 1e-8 * max(1.0, abs(ev.loglik))


def _partial_correlation(R: np.ndarray, i: int, j: int, given: list[int]) -> float:
    """Partial correlation of variables i and j given ``given``, from the inverse of the sub-matrix of R
    on ``given + [i, j]`` (the standard identity -P_ij / sqrt(P_ii P_jj) with P that inverse)."""
    idx = list(given) + [i, j]
    P = np.linalg.inv(R[np.ix_(idx, idx)])
    return -P[-2, -1] / np.sqrt(P[-2, -2] * P[-1, -1])


def _canonical_partial_correlations(R: np.ndarray) -> np.ndarray:
    """The C-vine's canonical partial correlations of R in metafor's column-wise pair order (21, 31, ..., q1,
    32, ...): pair (i, j), i > j, given the variables before j (0, ..., j-1)."""
    q = R.shape[0]
    return np.array([_partial_correlation(R, i, j, list(range(j))) for j in range(q) for i in range(j + 1, q)])


@pytest.mark.parametrize("q", [2, 3, 4, 5])
def test_cpc_maps_give_the_correlation_with_those_partial_correlations(q):
    """Both maps from canonical partial correlations z to correlations (PyTensor's for the graph, NumPy's
    for the mode engine) build a valid correlation matrix (symmetric, unit diagonal, positive definite)
    whose canonical partial correlations, recomputed from inverses of its sub-matrices, are z again."""
    n = q * (q - 1) // 2
    z = np.random.default_rng(q).uniform(-0.95, 0.95, n)
    i, j = lower_pairs(q)
    assert [(int(a), int(b)) for a, b in zip(i, j)] == [(a, b) for b in range(q) for a in range(b + 1, q)]
    # the graph's matrix: its correlations, placed as the covariance does (Unstructured.matrix_pt)
    from_pytensor = Unstructured().matrix_pt(Unstructured.correlations_pt(z, q), q).eval()
    for R in (from_pytensor, cpc_to_correlation(z, q)):
        np.testing.assert_allclose(R, R.T, rtol=0, atol=1e-15)
        np.testing.assert_allclose(np.diag(R), 1.0, atol=1e-14)
        assert np.linalg.eigvalsh(R).min() > 0
        np.testing.assert_allclose(_canonical_partial_correlations(R), z, rtol=0, atol=1e-10)


def test_variable_names_and_dims():
    dat = simulated(12)
    model = model_case(MODELS["nested + UN"], dat)
    pm_model = model.build_pymc()
    dims = pm_model.named_vars_to_dims
    assert dims["beta"] == ("term",)
    assert dims["sigma"] == dims["sigma2"] == ("sigma2_component",)
    assert dims["tau"] == dims["tau2"] == ("tau2_component",) and dims["rho"] == ("rho_component",)
    assert list(pm_model.coords["sigma2_component"]) == ["cluster", "cluster/sub"]
    assert list(pm_model.coords["tau2_component"]) == ["time | cluster: 0", "time | cluster: 1", "time | cluster: 2"]
    assert list(pm_model.coords["rho_component"]) == ["time | cluster: 0, 1", "time | cluster: 0, 2",
                                                      "time | cluster: 1, 2"]
    assert {"sigma", "tau"} <= {v.name for v in pm_model.free_RVs}
    assert {"sigma2", "tau2", "rho"} <= {v.name for v in pm_model.deterministics}
    # names that would collide with the columns of ArviZ's summary are not used
    assert not {"sd", "mean", "cor"} & set(pm_model.named_vars)


def test_fixed_components_keep_all_labels():
    """A fixed SD stays in the family's SD and variance variables (as a constant); the free
    ones are the variable <sd>_free."""
    dat = simulated(12)
    model = bm.MetaModel("yi ~ 1", data=dat, vi="vi", random="~ 1 | cluster/sub", fixed={"sigma2": [None, 0.01]})
    pm_model = model.build_pymc()
    dims = pm_model.named_vars_to_dims
    assert dims["sigma_free"] == ("sigma2_free",) and list(pm_model.coords["sigma2_free"]) == ["cluster"]
    assert dims["sigma"] == dims["sigma2"] == ("sigma2_component",)
    point = pm_model.initial_point()
    sigma2 = pm_model.compile_fn(pm_model["sigma2"], inputs=pm_model.value_vars, on_unused_input="ignore")(point)
    assert sigma2[1] == pytest.approx(0.01)
