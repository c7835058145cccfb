"""Simulation-based calibration: the rank bookkeeping and uniformity test, and a short run."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayesmeta as bm
from bayesmeta.errors import SpecificationError
from bayesmeta.studies.sbc import SBCResult


def test_counts_and_uniformity_test_match_scipy():
    rng = np.random.default_rng(1)
    ranks = pd.DataFrame({"beta[Intercept]": rng.integers(0, 100, 300), "tau2[row]": rng.integers(0, 40, 300)})
    result = SBCResult(ranks, ranks * 0.0, L=99, bins=10, divergences=np.zeros(300, int))
    counts = result.counts()
    assert counts.shape == (10, 2) and (counts.sum() == 300).all()
    assert counts["tau2[row]"].iloc[4:].sum() == 0  # ranks 0..39 fill the first four bins of width 10
    expected = stats.chisquare(counts.to_numpy(), axis=0)
    np.testing.assert_allclose(result.test()["statistic"], expected.statistic)
    np.testing.assert_allclose(result.test()["pval"], expected.pvalue)


@pytest.mark.parametrize("kwargs, message", [
    ({"L": 99, "bins": 7}, "bins: must divide L"),
    ({"L": 99, "draws": 40, "chains": 1}, "draws \\* chains >= L"),
    ({"L": 0}, "L: expected a positive integer"),
])
def test_bad_settings(kwargs, message):
    model = bm.MetaModel("logrr ~ 1", bm.datasets.load("bcg"), vi="logrrvar")
    with pytest.raises(SpecificationError, match=message):
        bm.sbc(model, n=2, **kwargs)


@pytest.mark.slow
def test_short_run_ranks_every_free_parameter():
    model = bm.MetaModel("logrr ~ 1", bm.datasets.load("bcg"), vi="logrrvar")
    result = bm.sbc(model, n=6, draws=60, tune=100, L=19, bins=4, random_seed=2, progressbar=False)
    assert list(result.ranks.columns) == ["beta[Intercept]", "tau2[row]"]
    assert result.ranks.shape == (6, 2) and result.ranks.to_numpy().min() >= 0
    assert result.ranks.to_numpy().max() <= 19
    again = bm.sbc(model, n=6, draws=60, tune=100, L=19, bins=4, random_seed=2, progressbar=False)
    pd.testing.assert_frame_equal(result.ranks, again.ranks)


def _school():
    return bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study")


@pytest.mark.slow
def test_three_level_school_model_is_calibrated():
    """200 replications of the three-level school model (issue 15): every parameter's ranks pass the
    chi-square test of uniformity (at 0.001 with three parameters), with no divergences to speak of."""
    result = bm.sbc(_school(), n=200, draws=200, tune=200, random_seed=11, progressbar=False)
    assert list(result.ranks.columns) == ["beta[Intercept]", "sigma2[district]", "sigma2[district/study]"]
    assert result.ranks.shape == (200, 3)
    assert (result.test()["pval"] > 0.001).all(), result.test()
    assert result.divergences.mean() < 1.0


@pytest.mark.slow
def test_miscalibration_is_detected():
    """The same bookkeeping fails when the posterior is computed under another prior than the one the
    truths were drawn from: a prior on the intercept far from the simulated effects."""
    from bayesmeta.studies import sbc as sbc_module

    model = _school()
    truth_priors = {"beta": bm.Prior("Normal", mu=0, sigma=1)}
    wrong = {"beta": bm.Prior("Normal", mu=1.5, sigma=0.05)}
    prior = model.sample_prior_predictive(draws=60, random_seed=3, priors=truth_priors)
    truths = pd.DataFrame(sbc_module.labelled_draws(prior.prior, sbc_module.RANKED))
    ys = prior.prior_predictive["y"].stack(sample=("chain", "draw")).transpose("sample", "obs").values
    replication = sbc_module._Replication(model, ys, truths, 99,
                                          {"draws": 200, "tune": 200, "chains": 1, "cores": 1, "priors": wrong})
    ranks = pd.DataFrame([replication(i, seed)[0] for i, seed in enumerate(range(60))])
    result = SBCResult(ranks, truths, 99, 10, np.zeros(60, int))
    assert result.test().loc["beta[Intercept]", "pval"] < 1e-6


def test_data_sampler_refuses_another_design():
    pytest.importorskip("nutpie")
    from bayesmeta.engines.bayes.data_sampler import DataSampler
    from bayesmeta.engines.bayes.priors import resolve_priors

    model = _school()
    sampler = DataSampler(model.design, model.param, resolve_priors(model.design, model.param))
    other = bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district").design
    with pytest.raises(ValueError, match="more than its data"):
        sampler.sample(other, draws=10, tune=10, chains=1, random_seed=1)


@pytest.mark.parametrize("kind", ["nested outcome", "batched V and outcome"])
def test_shared_data_model_has_each_designs_log_density(kind):
    """The compiled model with the data in shared variables, given another design's data, has exactly
    the log-density of a model built on that design."""
    pytest.importorskip("nutpie")
    from bayesmeta.engines.bayes.data_sampler import same_structure
    from bayesmeta.engines.bayes.priors import resolve_priors
    from bayesmeta.engines.bayes.pymc_model import build_model
    from bayesmeta.likelihood.graph import SharedData
    from bayesmeta.studies.simulation import with_outcome

    if kind == "nested outcome":
        model = _school()
        other = with_outcome(model, model.design.y + np.random.default_rng(2).normal(0, 0.2, model.design.n))
    else:
        dat = bm.datasets.load("berkey1998")

        def make(rho):
            V = bm.vcalc("vi", cluster="trial", type="outcome", rho=rho, data=dat)
            return bm.MetaModel("yi ~ 0 + outcome", dat, V=V, random="~ outcome | trial", struct="UN")

        model, other = make(0.0), make(0.6)
        other = with_outcome(other, other.design.y * 1.1)
    assert same_structure(model.design, other.design)
    prior_set = resolve_priors(model.design, model.param)
    data = SharedData.of(model.design)
    shared = build_model(model.design, model.param, prior_set, data=data)
    logp = shared.compile_logp()
    direct = build_model(other.design, other.param, prior_set).compile_logp()
    rng = np.random.default_rng(1)
    points = [{k: rng.normal(scale=0.5, size=np.shape(v)) for k, v in shared.initial_point().items()}
              for _ in range(3)]
    before = [logp(point) for point in points]
    data.set_values(other.design)
    for point, old in zip(points, before):
        assert logp(point) == pytest.approx(direct(point), rel=1e-12)
        assert abs(logp(point) - old) > 1e-6
