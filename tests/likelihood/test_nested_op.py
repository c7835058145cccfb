"""The fused nested Op: value and gradient equal the graph of the closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import NullTypeGradError
from reference_tools import load_fixture

import bayesmeta as bm
from bayesmeta.likelihood.graph import block_loglik, total_loglik
from bayesmeta.likelihood.nested_op import (
    nested_arrays,
    nested_loglik,
    nested_loglik_node,
    sorted_outcome,
)

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")

DEPTH3 = pd.DataFrame(load_fixture("builders")["multilevel_depth3"]["data"])

MODELS = {
    "school (absorbed rows + districts)": lambda: bm.MetaModel(
        "effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study"),
    "four levels, no absorbed level": lambda: bm.MetaModel(
        "yi ~ x", data=DEPTH3, vi="vi", random="~ 1 | country/lab/study"),
    "standard model (rows only)": lambda: bm.MetaModel(
        "logor ~ I(ablat - 33)", data=bm.datasets.load("bcg"), vi="logorvar"),
}


def _functions(design, per_group: bool):
    beta, s = pt.dvector("beta"), pt.dvector("s")
    n_terms = len(design.encodings)
    G = [pt.reshape(s[k], (1, 1)) for k in range(n_terms)]
    reference = block_loglik(design, beta, G)[0].sum()
    if per_group:  # one variance per group, passed as vectors indexed by group code
        groups = [enc.term.n_groups for enc in design.encodings]
        w = pt.dvector("w")
        offsets = np.cumsum([0] + groups)
        variances = [w[offsets[k]:offsets[k + 1]] for k in range(n_terms)]
        fused = total_loglik(design, beta, [None] * n_terms, variances=variances)
        reference = block_loglik(design, beta, [None] * n_terms, variances=variances)[0].sum()
        inputs = [beta, w]
    else:
        fused = total_loglik(design, beta, G, term_variances=s)
        inputs = [beta, s]
    outputs = [reference, fused, *pt.grad(reference, inputs), *pt.grad(fused, inputs)]
    return pytensor.function(inputs, outputs)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("per_group", [False, True], ids=["per term", "per group"])
def test_value_and_gradient_equal_the_graph(name, per_group):
    design = MODELS[name]().design
    f = _functions(design, per_group)
    rng = np.random.default_rng(3)
    size = sum(enc.term.n_groups for enc in design.encodings) if per_group else len(design.encodings)
    for _ in range(3):
        beta, s = rng.normal(size=design.p), rng.uniform(0.005, 0.5, size=size)
        ref, fused, gb_ref, gs_ref, gb, gs = f(beta, s)
        scale = max(1.0, abs(ref))
        assert abs(ref - fused) < 1e-10 * scale
        np.testing.assert_allclose(gb, gb_ref, rtol=1e-9, atol=1e-9 * scale)
        np.testing.assert_allclose(gs, gs_ref, rtol=1e-9, atol=1e-9 * scale)


def test_only_the_value_is_differentiable():
    design = MODELS["school (absorbed rows + districts)"]().design
    beta, s = pt.dvector("beta"), pt.dvector("s")
    value, gradient, _ = nested_loglik_node(nested_arrays(design.nested, False), beta, s, sorted_outcome(design.nested))
    with pytest.raises(NotImplementedError, match="only the value"):
        pt.grad(gradient.sum(), beta)
    y = pt.dvector("y")
    value, _, _ = nested_loglik_node(nested_arrays(design.nested, False), beta, s, y)
    with pytest.raises(NullTypeGradError, match="the outcome is data"):
        pt.grad(value, y)


def test_outcome_as_shared_data_equals_a_model_built_on_that_outcome():
    """One compiled graph with the outcome in a shared variable gives, after set_value, the
    log-likelihood of a design built on the new outcome."""
    from bayesmeta.studies.simulation import with_outcome

    model = MODELS["school (absorbed rows + districts)"]()
    design = model.design
    other = with_outcome(model, design.y + np.random.default_rng(4).normal(0, 0.3, design.n)).design
    beta, s = pt.dvector("beta"), pt.dvector("s")
    shared_y = pytensor.shared(sorted_outcome(design.nested))
    f = pytensor.function([beta, s], nested_loglik(design, beta, s, shared_y))
    g = pytensor.function([beta, s], nested_loglik(other, beta, s))
    point = (np.array([0.1]), np.array([0.05, 0.02]))
    before = f(*point)
    shared_y.set_value(sorted_outcome(other.nested))
    assert abs(f(*point) - g(*point)) < 1e-12 * abs(g(*point)) and abs(f(*point) - before) > 1e-3
