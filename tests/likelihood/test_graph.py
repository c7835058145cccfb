"""The PyTensor likelihood equals the NumPy one at random parameter values (to 1e-8)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from cases import MODELS, dense_sigma, model_case, simulated
from scipy import stats

from bayesmeta.engines.mode.objective import Objective
from bayesmeta.likelihood.graph import block_loglik


def _compiled(model, restricted):
    beta = pt.vector("beta")
    G = [pt.matrix(f"G{k}") for k in range(len(model.param.terms))]
    logp, term = block_loglik(model.design, beta, G, restricted=restricted)
    outputs = [logp, term] if restricted else [logp]
    return pytensor.function([beta, *G], outputs, mode="FAST_COMPILE", on_unused_input="ignore")


@pytest.mark.parametrize("name", list(MODELS))
def test_graph_loglik_equals_numpy(name):
    dat = simulated(8)
    model = model_case(MODELS[name], dat)
    rng = np.random.default_rng(9)
    ml, reml = _compiled(model, False), _compiled(model, True)
    for _ in range(2):
        theta = rng.normal(-0.3, 0.5, model.param.n_free)
        G = model.param.covariances(theta)
        # ML: the full likelihood at an arbitrary beta, against a dense multivariate normal
        beta = rng.normal(0, 0.3, model.design.p)
        (logp,) = ml(beta, *G)
        r = model.design.y - model.design.X @ beta
        expected = stats.multivariate_normal(np.zeros(len(r)), dense_sigma(model, theta)).logpdf(r)
        assert abs(logp.sum() - expected) < 1e-8 * max(1.0, abs(expected))
        assert logp.shape == (model.design.n_blocks,)
        # REML: full likelihood at the GLS estimate plus the restricted term
        ev = Objective(model.design, model.param, True).evaluate(theta)
        logp, term = reml(ev.beta, *G)
        assert abs(logp.sum() + term - ev.loglik) < 1e-8 * max(1.0, abs(ev.loglik))
