"""The Bayesian engine's graph: its log-density equals the core likelihood, and its
parameters map to the frequentist ones."""

from __future__ import annotations

import numpy as np
import pytest

from bayesmeta.engines.bayes import _cpc_correlations
from bayesmeta.engines.mode import _Objective
from bayesmeta.parameters import cpc_to_correlation
from test_likelihood import MODELS, _model, _simulated

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def _free_values(model, theta):
    """Values of the PyMC model's free variables at the unconstrained parameters theta."""
    param = model.param
    sd, single, cpc = [], [], {}
    for k, (t, fs, fr, (s, r)) in enumerate(zip(param.terms, param.fixed_sd, param.fixed_rho,
                                                 param.natural(theta))):
        sd += list(s[np.isnan(fs)])
        if np.isnan(fr).any() and t.structure.correlation == "unstructured":
            th = theta[_rho_positions(param, k)]
            cpc[f"cpc_{k}"] = (np.tanh(th) + 1) / 2
        else:
            single += list(r[np.isnan(fr)])
    return {"sd": np.array(sd), "cor_single": np.array(single), **cpc}


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
    dat = _simulated(10)
    model = _model(MODELS[name], dat)
    pm_model = model.build_pymc(priors="flat", restricted=restricted)
    theta = np.random.default_rng(11).normal(-0.2, 0.6, model.param.n_free)
    ev = _Objective(model.design, model.param, restricted).evaluate(theta)
    values = _free_values(model, theta)
    values["beta"] = ev.beta  # at the GLS estimate the full likelihood is the profiled one
    value = _potential(pm_model, values)
    assert abs(value - ev.loglik) < 1e-8 * max(1.0, abs(ev.loglik))


def test_cpc_map_matches_numpy():
    z = np.random.default_rng(0).uniform(-0.95, 0.95, 6)
    R = cpc_to_correlation(z, 4)
    np.testing.assert_allclose(_cpc_correlations(z, 4).eval(), R[np.tril_indices(4, -1)], atol=1e-12)


def test_variable_names_and_dims():
    dat = _simulated(12)
    model = _model(MODELS["nested + UN"], dat)
    pm_model = model.build_pymc()
    dims = pm_model.named_vars_to_dims
    assert dims["beta"] == ("term",) and dims["sd"] == ("component",)
    assert dims["cor"] == ("correlation",)
    assert list(pm_model.coords["component"]) == [
        "cluster", "cluster/sub", "time | cluster: 0", "time | cluster: 1", "time | cluster: 2"]
    assert list(pm_model.coords["sigma2_name"]) == ["cluster", "cluster/sub"]
    assert list(pm_model.coords["tau2_name"]) == ["time | cluster: 0", "time | cluster: 1", "time | cluster: 2"]
    assert list(pm_model.coords["rho_name"]) == ["time | cluster: 0, 1", "time | cluster: 0, 2",
                                                 "time | cluster: 1, 2"]
    assert {"sigma2", "tau2", "rho", "cor"} <= {v.name for v in pm_model.deterministics}
