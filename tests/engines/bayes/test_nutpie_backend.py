"""nutpie's NUTS on the PyTensor-compiled log-density (optional dependency)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from cases import berkey_model

import bayesmeta as bm

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def _school():
    return bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")


def test_missing_nutpie_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "nutpie", None)
    with pytest.raises(ImportError, match="sampler='nutpie' needs the nutpie package: pip install nutpie"):
        _school().sample(draws=10, tune=10, chains=1, sampler="nutpie", progressbar=False)


@pytest.mark.parametrize("make", [_school, berkey_model], ids=["school", "berkey-UN"])
def test_nutpie_result_matches_the_pymc_layout(make):
    pytest.importorskip("nutpie")
    model = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)
        post = model.sample(draws=300, tune=300, chains=2, random_seed=4, sampler="nutpie", progressbar=False)
    idata = post.idata
    assert post.sampler == "nutpie"
    assert idata.posterior["beta"].dims == ("chain", "draw", "term")
    assert list(idata.posterior["beta"].coords["term"].values) == model.design.coef_names
    assert idata.posterior.sizes["draw"] == 300 and idata.posterior.sizes["chain"] == 2
    assert idata.log_likelihood["y"].sizes["obs"] == model.design.n
    assert set(idata.log_prior.data_vars) >= {"beta"}
    assert any(name.startswith("u_") for name in idata.posterior.data_vars)
    assert idata.posterior_predictive["y"].sizes["obs"] == model.design.n
    assert post.diagnostics["divergences"] == 0
    # the posterior centres near REML (weak default priors)
    reml = model.fit()
    beta = idata.posterior["beta"]
    centre, spread = beta.median(("chain", "draw")).values, beta.std(("chain", "draw")).values
    assert np.all(np.abs(centre - reml.coef.to_numpy()) < 0.3 * spread)


@pytest.mark.slow
def test_nutpie_with_the_numba_backend():
    pytest.importorskip("nutpie")
    pytest.importorskip("numba")
    model = _school()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)  # a short run: low ESS is expected
        post = model.sample(draws=300, tune=300, chains=2, random_seed=4, sampler="nutpie", mode="NUMBA",
                            progressbar=False)
    reml = model.fit()
    beta = post.idata.posterior["beta"]
    assert abs(float(beta.median()) - reml.coef.iloc[0]) < 0.3 * float(beta.std())
    assert post.diagnostics["divergences"] == 0
