"""The exact Hessian of nested designs, Newton's method and the size-free convergence criterion."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from reference_tools import load_fixture

import bayesmeta as bm
from bayesmeta.engines.mode import optimize
from bayesmeta.engines.mode.curvature import hessian
from bayesmeta.engines.mode.objective import Objective
from bayesmeta.engines.mode.optimize import newton_decrement
from bayesmeta.errors import ConvergenceWarning

DEPTH3 = pd.DataFrame(load_fixture("builders")["multilevel_depth3"]["data"])


def _school():
    return bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")


def _depth3():
    return bm.MetaModel("yi ~ x", data=DEPTH3, vi="vi", random="~ 1 | country/lab/study")


def _location_scale():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bm.location_scale("yi ~ length", bm.datasets.load("bangertdrowns2004"), vi="vi", scale="~ length")


MODELS = {"school": _school, "three levels": _depth3, "location-scale": _location_scale}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
def test_exact_hessian_equals_differences_of_the_gradient(name, reml):
    model = MODELS[name]()
    objective = Objective(model.design, model.param, reml)
    assert objective.exact_hessian
    rng = np.random.default_rng(11)
    for _ in range(3):
        theta = rng.normal(scale=0.7, size=model.param.n_free)
        idx = np.arange(len(theta))
        H = objective.hessian(theta)
        reference = hessian(objective.gradient, theta, idx)  # Richardson: error ~ step^4
        assert np.max(np.abs(H - reference)) < 1e-8 * max(1.0, np.max(np.abs(reference)))
        value, gradient, H2 = objective.with_hessian(theta)
        assert (value, *gradient) == (objective(theta)[0], *objective.gradient(theta))
        assert np.array_equal(H, H2)


def test_designs_without_the_closed_form_have_no_exact_hessian():
    berkey = bm.datasets.load("berkey98")
    model = bm.multivariate(berkey, outcomes=["PD", "AL"], id="pubyear", vech=["var_PD", "cov_PD_AL", "var_AL"])
    objective = Objective(model.design, model.param, True)
    assert not objective.exact_hessian
    assert objective.hessian(np.zeros(model.param.n_free)) is None


def test_newton_decrement():
    H = np.array([[2.0, 0.5], [0.5, 1.0]])
    g = np.array([0.3, -0.2])
    assert newton_decrement(g, H) == pytest.approx(float(g @ np.linalg.solve(H, g)), rel=1e-14)
    assert newton_decrement(g, None) == np.inf
    assert newton_decrement(g, -H) == np.inf


@pytest.mark.parametrize("name", ["school", "three levels"])
@pytest.mark.parametrize("method", ["ML", "REML"])
def test_newton_fit_equals_the_quasi_newton_fit(name, method, monkeypatch):
    model = MODELS[name]()
    newton = model.fit(method)
    assert newton.estimate.message == "Newton: converged"
    monkeypatch.setattr(optimize, "_newton_fit", lambda objective, theta: None)  # L-BFGS and polish
    quasi = model.fit(method)
    assert quasi.estimate.message != "Newton: converged"
    assert np.max(np.abs(newton.coef - quasi.coef)) < 1e-7
    assert abs(newton.loglik - quasi.loglik) < 1e-10 * max(1.0, abs(quasi.loglik))
    values = [fit.components.select_dtypes("number").to_numpy() for fit in (newton, quasi)]
    assert np.nanmax(np.abs(values[0] - values[1])) < 1e-7


@pytest.mark.slow
def test_half_a_million_rows_converge_without_warning():
    """The gradient grows with the rows; the Newton decrement does not."""
    rng = np.random.default_rng(5)
    studies, per = 100_000, 5
    study = np.repeat(np.arange(studies), per)
    vi = rng.uniform(0.01, 0.1, size=studies * per)
    x = rng.normal(size=studies * per)
    yi = 0.2 + 0.1 * x + rng.normal(scale=0.3, size=studies)[study] + rng.normal(scale=0.2, size=len(vi)) \
        + rng.normal(scale=np.sqrt(vi))
    data = pd.DataFrame({"yi": yi, "vi": vi, "x": x, "study": study, "es": np.arange(len(vi))})
    model = bm.MetaModel("yi ~ x", data=data, vi="vi", random="~ 1 | study/es")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = model.fit()
    assert fit.estimate.converged
    sd = np.sqrt(fit.components["estimate"].to_numpy())
    assert np.allclose(sd, [0.3, 0.2], atol=0.01)
