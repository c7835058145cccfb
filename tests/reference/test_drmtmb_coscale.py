"""Bivariate location-coscale model against R's drmTMB (fixture from make_drmtmb_reference.R).

The habitat data (studies reporting both outcomes, sampling correlation 0.4), with
outcome-specific means, log heterogeneity SDs depending on habitat and an atanh
correlation depending on habitat. drmTMB's parameters map onto bayesmeta's as

* ``mu1, mu2``: ``coef`` (outcome[A], outcome[B]);
* ``sigma_k = ~ habitat`` (log SD): ``alpha / 2`` (alpha models log tau^2), with
  sigma1 <- (outcome[A], outcome[A]:habitat[T.terrestrial]) and
  sigma2 <- (outcome[B], outcome[B]:habitat[T.terrestrial]);
* ``rho12 = ~ habitat``: drmTMB's link is rho = 0.999999 tanh(eta); the fixture's
  ``rho12_atanh`` holds the same fit on the atanh(rho) scale, bayesmeta's ``zeta``.

The means' SEs: drmTMB reports the joint-Hessian SE; bayesmeta (as metafor) reports
(X' Sigma^-1 X)^-1, which the fixture holds as ``se_conditional``. drmTMB's REML
log-likelihood lacks metafor's + 0.5 log det(X'X) (``reml_offset_to_metafor``), and
its REML ``coef()`` of the means is read at a perturbed point; the fixture's
``estimate_at_optimum`` holds the means at the optimum.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from reference_tools import ABS_IC, FIXTURES, assert_close

import bayesmeta as bm

REF = json.loads((FIXTURES / "drmtmb_coscale.json").read_text())

SCALE = {
    "outcome | study": {"tau": "~ 0 + outcome + outcome:habitat", "rho": "~ habitat"}
}
SIGMA1 = ["outcome[A]", "outcome[A]:habitat[T.terrestrial]"]
SIGMA2 = ["outcome[B]", "outcome[B]:habitat[T.terrestrial]"]


def complete_studies():
    dat = bm.datasets.load("habitat")
    both = dat.groupby("study")["outcome"].transform("size") == 2
    return dat[both].reset_index(drop=True)


@pytest.fixture(scope="module")
def data():
    dat = complete_studies()
    return dat, bm.vcalc("vi", "study", obs="outcome", rho=0.4, data=dat)


@pytest.fixture(scope="module", params=["ML", "REML"])
def fitted(request, data):
    dat, V = data
    model = bm.MetaModel(
        "yi ~ 0 + outcome",
        data=dat,
        V=V,
        random="~ outcome | study",
        struct="UN",
        scale=SCALE,
    )
    return model.fit(request.param), REF["models"][request.param]


def test_same_studies(data):
    dat, _ = data
    assert dat["study"].drop_duplicates().tolist() == REF["studies"]
    # V is row-paired like drmTMB's meta_vcov_bivariate: (A, B) within each study
    assert dat["outcome"].tolist() == ["A", "B"] * len(REF["studies"])


def test_means(fitted):
    fit, ref = fitted
    assert fit.converged
    assert_close(fit.coef.to_numpy(), ref["mu"]["estimate_at_optimum"], "mu")
    # drmTMB's REML coef() reads the means at sdreport's perturbed point (see the R script): 5e-5 off
    assert_close(
        fit.coef.to_numpy(), ref["mu"]["estimate"], "mu, drmTMB coef()", rel=1e-3
    )
    assert_close(
        fit.se.to_numpy(), ref["mu"]["se_conditional"], "mu se, (X' Sigma^-1 X)^-1"
    )
    # drmTMB's joint-Hessian SE is a different quantity: larger here by about 2%
    assert np.all(np.asarray(ref["mu"]["se"]) > fit.se.to_numpy() * 1.01)


def test_log_sd_coefficients(fitted):
    fit, ref = fitted
    for cols, key in ((SIGMA1, "sigma1"), (SIGMA2, "sigma2")):
        assert_close(fit.alpha[cols].to_numpy() / 2, ref[key]["estimate"], key)
        assert_close(fit.alpha_se[cols].to_numpy() / 2, ref[key]["se"], f"{key} se")


def test_correlation_coefficients(fitted):
    fit, ref = fitted
    assert fit.zeta.index.tolist() == ["Intercept", "habitat[T.terrestrial]"]
    assert_close(fit.zeta.to_numpy(), ref["rho12_atanh"]["estimate"], "rho12 (atanh)")
    assert_close(fit.zeta_se.to_numpy(), ref["rho12_atanh"]["se"], "rho12 (atanh) se")


def test_loglik(fitted):
    fit, ref = fitted
    offset = ref.get("reml_offset_to_metafor", 0.0)
    assert abs(fit.loglik - (ref["logLik"] + offset)) <= ABS_IC, (
        fit.loglik,
        ref["logLik"],
        offset,
    )
