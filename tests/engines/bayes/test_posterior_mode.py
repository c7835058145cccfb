"""MAP and Laplace fits on the Bayesian graph.

Under flat priors the posterior mode is the ML estimate, and with the
restricted-likelihood term it is the REML estimate (to 1e-5); under the default
weakly informative priors it stays close to REML. The Laplace approximation
returns draws in the BayesResult family.
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import berkey_blocks
from engine_tools import assert_same_fit

import bayesmeta as bm

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def _school():
    return bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")


def berkey_model():
    dat = bm.datasets.load("berkey1998")
    return bm.MetaModel("yi ~ 0 + outcome", data=dat, V=berkey_blocks(dat), random="~ outcome | trial",
                        struct="UN")


@pytest.mark.parametrize("make", [_school, berkey_model], ids=["school", "berkey-UN"])
@pytest.mark.parametrize("restricted, method", [(False, "ML"), (True, "REML")])
def test_flat_prior_mode_is_the_likelihood_estimate(make, restricted, method):
    model = make()
    assert_same_fit(model.fit("MAP", priors="flat", restricted=restricted), model.fit(method))


def test_default_prior_mode_is_near_reml():
    model = _school()
    mode, reml = model.fit("MAP"), model.fit("REML")
    assert mode.method == "MAP"
    assert abs(mode.coef.iloc[0] - reml.coef.iloc[0]) < 0.1 * reml.se.iloc[0]
    # the weak HalfNormal(sd(y)) priors shrink the SDs a little towards zero, never away
    assert np.all(np.sqrt(mode.sigma2.to_numpy()) <= np.sqrt(reml.sigma2.to_numpy()) + 1e-6)
    np.testing.assert_allclose(np.sqrt(mode.sigma2.to_numpy()), np.sqrt(reml.sigma2.to_numpy()), rtol=0.35)


def test_laplace_returns_draws_in_the_bayes_family():
    model = _school()
    post = model.fit("laplace", draws=400, random_seed=3)
    assert isinstance(post, bm.BayesResult)
    assert post.sampler == "laplace"
    assert post.idata.posterior.sizes["draw"] * post.idata.posterior.sizes["chain"] == 400
    assert "Laplace approximation" in post.summary()
    assert post.problems == []
    mode = model.fit("MAP")
    beta = post.idata.posterior["beta"].values.ravel()
    # the draws centre on the mode and spread like its standard error
    assert abs(beta.mean() - mode.coef.iloc[0]) < 4 * mode.se.iloc[0] / np.sqrt(400)
    assert 0.8 < beta.std() / mode.se.iloc[0] < 1.25
    table = bm.compare(model.fit(), post)
    assert any("Laplace" in str(c) for c in table.columns)
