"""Default priors follow the documented rule; user priors override them; bad keys are named."""

from __future__ import annotations

import numpy as np
import pytest
from pymc_extras.prior import Prior

import bayesmeta as bm
from bayesmeta.engines.bayes.priors import resolve_priors


@pytest.fixture
def school_model():
    dat = bm.datasets.load("school")
    return bm.MetaModel("effect ~ year", data=dat, vi="var", random="~ 1 | district/study")


def test_default_rule(school_model):
    d = school_model.design
    ps = resolve_priors(d, school_model.param)
    sy = max(np.std(d.y), abs(np.mean(d.y)))
    year = d.X[:, 1]
    assert ps.beta_names == ("Intercept", "year")
    assert ps.beta[1].parameters["sigma"] == pytest.approx(10 * sy / year.std(), rel=1e-5)
    expected_intercept = 10 * sy * (1 + abs(year.mean()) / year.std())
    assert ps.beta[0].parameters["sigma"] == pytest.approx(expected_intercept, rel=1e-5)
    assert [p.distribution for p in ps.sd] == ["HalfNormal", "HalfNormal"]
    assert ps.sd[0].parameters["sigma"] == pytest.approx(np.std(d.y), rel=1e-5)
    assert ps.lkj_eta is None and ps.rho == ()
    table = ps.table()
    assert table["parameter"].tolist() == ["beta[Intercept]", "beta[year]", "sigma[district]",
                                         "sigma[district/study]"]


def test_slope_sd_scaled_by_covariate():
    dat = bm.datasets.load("alcohol")
    sub = dat[dat["se"].notna()]
    model = bm.MetaModel("logrr ~ 0 + dose", data=sub, vi=sub["se"] ** 2, random="~ 0 + dose | id")
    ps = resolve_priors(model.design, model.param)
    assert ps.sd[0].parameters["sigma"] == pytest.approx(np.std(sub["logrr"]) / np.std(sub["dose"]), rel=1e-5)


def test_overrides_and_lkj():
    dat = bm.datasets.load("berkey1998")
    V = [g[["v1i", "v2i"]].to_numpy() for _, g in dat.groupby("trial", sort=False)]
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=V, random="~ outcome | trial", struct="UN")
    ps = resolve_priors(model.design, model.param, {
        "beta": Prior("Normal", mu=0, sigma=1), "sd": Prior("HalfNormal", sigma=0.5),
        "sd[outcome | trial: PD]": Prior("Exponential", lam=2.0), "lkj_eta": 4.0})
    assert all(p.parameters == {"mu": 0, "sigma": 1} for p in ps.beta)
    assert ps.sd[0].distribution == "HalfNormal" and ps.sd[1].distribution == "Exponential"
    assert ps.lkj_eta == 4.0
    pm_model = model.build_pymc(priors={"sd[outcome | trial: PD]": Prior("Exponential", lam=2.0)})
    assert "tau_1" in pm_model.named_vars and "tau" in {v.name for v in pm_model.deterministics}
    family_key = resolve_priors(model.design, model.param, {"tau[outcome | trial: PD]": Prior("HalfNormal", sigma=2)})
    assert family_key.sd[1].parameters == {"sigma": 2} and family_key.table()["parameter"].tolist()[2:4] == [
        "tau[outcome | trial: AL]", "tau[outcome | trial: PD]"]


def test_single_correlation_prior_bounds():
    dat = bm.datasets.load("gliomas").dropna(subset=["logOR"])
    model = bm.MetaModel("logOR ~ 0 + C(time)", data=dat, vi="logORvar", random="~ time | study", struct="CS")
    ps = resolve_priors(model.design, model.param)
    assert ps.rho[0].distribution == "Uniform"
    assert ps.rho[0].parameters == {"lower": pytest.approx(-1 / 3), "upper": 1.0}


def test_flat_priors(school_model):
    ps = resolve_priors(school_model.design, school_model.param, "flat")
    assert ps.flat and {p.distribution for p in ps.beta} == {"Flat"} and {p.distribution for p in ps.sd} == {"HalfFlat"}


@pytest.mark.parametrize("priors, message", [
    ({"theta": Prior("HalfNormal", sigma=1)}, "unknown key 'theta'"),
    ({"tau": Prior("HalfNormal", sigma=1)}, "'tau' matches no parameter: the model has no free tau"),
    ({"sd[region]": Prior("HalfNormal", sigma=1)}, r"'sd\[region\]' matches no parameter; sd parameters: district"),
    ({"beta": 1.0}, "'beta' must be a pymc_extras.prior.Prior"),
    ({"lkj_eta": -1}, "'lkj_eta' must be a positive number"),
    ("weak", "expected a dict or 'flat'"),
])
def test_bad_priors(school_model, priors, message):
    with pytest.raises(bm.SpecificationError, match=message):
        resolve_priors(school_model.design, school_model.param, priors)
