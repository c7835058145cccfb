"""The compiled nested kernel equals the NumPy closed form, to second order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reference_tools import load_fixture

import bayesmeta as bm
from bayesmeta.likelihood import nested
from bayesmeta.likelihood.nested_kernel import gram_compiled

DEPTH3 = pd.DataFrame(load_fixture("builders")["multilevel_depth3"]["data"])

DESIGNS = {
    "school (one-row studies + districts)": lambda: bm.MetaModel(
        "effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study").design,
    "three nested terms": lambda: bm.MetaModel("yi ~ x", data=DEPTH3, vi="vi", random="~ 1 | country/lab/study").design,
    "standard model": lambda: bm.MetaModel("logor ~ I(ablat - 33)", data=bm.datasets.load("bcg"),
                                           vi="logorvar").design,
}


def _inputs(nd, rng, per_group: list[bool], P: int = 3):
    """Random per-level variances and first/second derivatives along P directions."""
    variances, directions, second = [], [], []
    for level, start in enumerate(nd.starts):
        shape = (len(start),) if per_group[level] else ()
        variances.append(rng.uniform(0.01, 0.8, size=shape) if shape else float(rng.uniform(0.01, 0.8)))
        directions.append(rng.normal(size=shape + (P,)))
        D = rng.normal(size=shape + (P, P))
        second.append(D + np.swapaxes(D, -1, -2))
    return variances, directions, second


@pytest.mark.parametrize("name", list(DESIGNS))
@pytest.mark.parametrize("per_group", [False, True], ids=["one variance per level", "one per group"])
def test_compiled_kernel_equals_numpy(name, per_group):
    nd = DESIGNS[name]().nested
    rng = np.random.default_rng(7)
    levels = len(nd.starts)
    # mix: per group on alternate levels when asked
    flags = [per_group and level % 2 == 0 for level in range(levels)] if levels > 1 else [per_group]
    for _ in range(2):
        args = _inputs(nd, rng, flags)
        for order in range(3):
            call = (args[0], *(args[1:order + 1]), *([None] * (2 - order)))
            reference = nested.gram_and_logdet_groups(nd, *call)  # NumPy (small design)
            compiled = gram_compiled(nd, *call)
            for ref, got in zip(reference, compiled):
                if ref is None:
                    assert got is None
                    continue
                scale = max(1.0, float(np.max(np.abs(ref))))
                assert np.max(np.abs(np.asarray(got) - ref)) < 1e-11 * scale


def test_large_designs_use_the_compiled_kernel(monkeypatch):
    """Above COMPILED_MIN_ROWS the fit goes through the kernel and gives the same estimates."""
    model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    numpy_fit = model.fit()
    calls = []

    def counting(*args):
        calls.append(1)
        return gram_compiled(*args)

    monkeypatch.setattr(nested, "COMPILED_MIN_ROWS", 1)
    monkeypatch.setattr("bayesmeta.likelihood.nested_kernel.gram_compiled", counting)
    compiled_fit = model.fit()
    assert calls
    components = [fit.components.select_dtypes("number").to_numpy() for fit in (numpy_fit, compiled_fit)]
    assert np.nanmax(np.abs(components[0] - components[1])) < 1e-9
    assert np.max(np.abs(compiled_fit.coef - numpy_fit.coef)) < 1e-9
    assert np.max(np.abs(compiled_fit.se - numpy_fit.se)) < 1e-9
    assert abs(compiled_fit.loglik - numpy_fit.loglik) < 1e-9
