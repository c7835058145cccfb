"""Prior grids and prior-sensitivity tables."""

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from pymc_extras.prior import Prior

import bayesmeta as bm
from bayesmeta.errors import SpecificationError


def test_grid_is_the_labelled_product():
    grid = bm.prior_grid(sd=[Prior("HalfNormal", sigma=s) for s in (0.1, 0.5, 1.0)],
                         beta=[Prior("Normal", mu=0, sigma=1), Prior("Normal", mu=0, sigma=10)])
    assert len(grid) == 6
    assert list(grid)[0] == "sd=HalfNormal(sigma=0.1), beta=Normal(mu=0, sigma=1)"
    assert grid["sd=HalfNormal(sigma=1.0), beta=Normal(mu=0, sigma=10)"]["sd"].parameters == {"sigma": 1.0}


@pytest.mark.parametrize("options, message", [
    ({}, "at least one key"),
    ({"sd": Prior("HalfNormal", sigma=1)}, "needs a list of Priors"),
    ({"sd": []}, "has no priors"),
    ({"sd": [Prior("HalfNormal", sigma=1), Prior("HalfNormal", sigma=1)]}, "repeated priors"),
])
def test_bad_grids(options, message):
    with pytest.raises(SpecificationError, match=message):
        bm.prior_grid(**options)


def test_bad_priors_argument():
    model = bm.MetaModel("logrr ~ 1", bm.datasets.load("bcg"), vi="logrrvar")
    with pytest.raises(SpecificationError, match="label -> priors dict"):
        model.sensitivity([{"sd": Prior("HalfNormal", sigma=1)}])
    with pytest.raises(SpecificationError, match="'a' must map to a priors dict"):
        model.sensitivity({"a": Prior("HalfNormal", sigma=1)})


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayesmeta.ConvergenceWarning")  # few draws on purpose: tables are compared
def test_rows_are_the_posteriors_under_each_prior():
    model = bm.MetaModel("logrr ~ 1", bm.datasets.load("bcg"), vi="logrrvar")
    grid = bm.prior_grid(tau=[Prior("HalfNormal", sigma=s) for s in (0.05, 2.0)])
    options = {"draws": 200, "tune": 200, "chains": 1, "random_seed": 3}
    sens = model.sensitivity(grid, progressbar=False, sampler="pymc", **options)  # the refit-per-prior path
    for label, priors in grid.items():
        direct = model.sample(priors=priors, progressbar=False, sampler="pymc", **options).table()
        rows = sens.table[sens.table.prior == label].set_index("parameter")
        pd.testing.assert_frame_equal(rows[["estimate", "se", "ci_lb", "ci_ub"]], direct[["estimate", "se", "ci_lb",
                                      "ci_ub"]], check_names=False)
    tau2 = sens.table[sens.table.parameter == "tau2[row]"].set_index("prior").estimate
    assert tau2.iloc[0] < 0.5 * tau2.iloc[1]  # a narrow prior on tau pulls tau^2 down (REML: 0.31)
    assert sens.reference.loc["tau2[row]", "estimate"] == pytest.approx(model.fit().tau2.iloc[0])
    assert {"ess_bulk", "r_hat", "divergences"} <= set(sens.table.columns)


def test_shared_hyperparameters_give_each_priors_log_density():
    """One model built with shared hyperparameters, given each prior set's values, has exactly the
    log-density of the model built with that prior set's constants."""
    from bayesmeta.engines.bayes.priors import resolve_priors
    from bayesmeta.engines.bayes.pymc_model import SharedHyperparameters, build_model

    model = bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    prior_sets = [resolve_priors(model.design, model.param, {"sd": Prior("HalfNormal", sigma=s),
                                                             "beta": Prior("Normal", mu=m, sigma=2.0)})
                  for s, m in ((0.1, 0.0), (2.0, 1.0))]
    first = SharedHyperparameters()
    shared_model = build_model(model.design, model.param, prior_sets[0], shared=first)
    shared_logp = shared_model.compile_logp()
    rng = np.random.default_rng(1)
    points = [{name: rng.normal(size=np.shape(value)) for name, value in shared_model.initial_point().items()}
              for _ in range(3)]
    for prior_set in prior_sets:
        registry = SharedHyperparameters()
        build_model(model.design, model.param, prior_set, shared=registry)
        assert registry.shareable and registry.fingerprint == first.fingerprint
        first.assign(registry)
        direct = build_model(model.design, model.param, prior_set).compile_logp()
        for point in points:
            assert shared_logp(point) == pytest.approx(direct(point), rel=1e-12)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayesmeta.ConvergenceWarning")  # few draws on purpose
def test_nutpie_grid_compiles_once_per_family():
    pytest.importorskip("nutpie")
    from bayesmeta.engines.bayes import sampling
    from bayesmeta.engines.bayes.priors import resolve_priors

    model = bm.MetaModel("logrr ~ 1", bm.datasets.load("bcg"), vi="logrrvar")
    grid = {"narrow": {"tau": Prior("HalfNormal", sigma=0.05)}, "wide": {"tau": Prior("HalfNormal", sigma=2.0)},
            "exponential": {"tau": Prior("Exponential", lam=2.0)}}
    options = {"draws": 300, "tune": 300, "chains": 2, "random_seed": 3}
    runs = sampling.sample_grid(model.design, model.param, [resolve_priors(model.design, model.param, p)
                                                            for p in grid.values()], cores=None, progressbar=False,
                                **options)
    assert [compiled for _, compiled in runs] == [1, 0, 1]  # the two half-normals share one compiled model
    sens = model.sensitivity(grid, sampler="nutpie", progressbar=False, reference=None, **options)
    tau2 = sens.table[sens.table.parameter == "tau2[row]"].set_index("prior").estimate
    assert tau2["narrow"] < 0.5 * tau2["wide"]  # the narrow prior's own hyperparameters were used
    assert set(sens.results[("wide", "NUTS")].idata.log_prior.data_vars) == {"beta", "tau"}
    # the log prior, compiled once per family, is each prior set's own (PyMC's compute_log_prior on its model)
    from bayesmeta.engines.bayes.pymc_model import build_model

    for (idata, _), priors in zip(runs, grid.values()):
        own = build_model(model.design, model.param, resolve_priors(model.design, model.param, priors))
        expected = pm.compute_log_prior(idata, model=own, extend_inferencedata=False, progressbar=False)
        for name in ("beta", "tau"):
            np.testing.assert_allclose(idata.log_prior[name].values, expected[name].values, rtol=1e-12)
