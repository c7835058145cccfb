"""Simulation studies: the summary statistics, and exact properties of the fixed-effect estimator."""

import numpy as np
import pandas as pd
import pytest

import bayesmeta as bm
from bayesmeta.errors import SpecificationError
from bayesmeta.studies.simulation_study import SimulationStudy


@pytest.fixture(scope="module")
def bcg():
    return bm.MetaModel("logrr ~ 1", bm.datasets.load("bcg"), vi="logrrvar")


def test_table_statistics_by_hand():
    estimates = pd.DataFrame({
        "replication": [0, 1, 2, 3], "method": "REML", "parameter": "beta[x]", "truth": 1.0,
        "estimate": [1.5, 0.5, 2.0, np.nan], "ci_lb": [0.9, 0.6, 1.1, np.nan], "ci_ub": [2.0, 1.0, 3.0, np.nan]})
    row = SimulationStudy(estimates, 0.95).table.iloc[0]
    assert row.n_ok == 3 and row["mean"] == pytest.approx(4 / 3)
    assert row.bias == pytest.approx(1 / 3) and row.rmse == pytest.approx(np.sqrt((0.25 + 0.25 + 1) / 3))
    assert row.bias_mcse == pytest.approx(np.std([1.5, 0.5, 2.0], ddof=1) / np.sqrt(3))
    assert row.coverage == pytest.approx(2 / 3) and row.coverage_mcse == pytest.approx(np.sqrt(2 / 27))


def test_fixed_effect_estimator_is_unbiased_with_exact_coverage(bcg):
    """With tau^2 = 0 the FE estimate is normal with mean mu and SD 1/sqrt(sum w): its bias is 0,
    its RMSE that SD and its Wald interval covers 95% exactly (checked within 4 Monte Carlo SEs)."""
    n = 400
    study = bm.simulation_study(bcg, {"beta[Intercept]": -0.7, "tau2": 0.0}, n=n, methods=("FE",),
                                random_seed=3, progressbar=False)
    row = study.table.set_index("parameter").loc["beta[Intercept]"]
    sd = 1 / np.sqrt(np.sum(1 / bcg.design.V.diagonal()))
    assert row.n_ok == n
    assert abs(row.bias) < 4 * sd / np.sqrt(n)
    assert row.rmse == pytest.approx(sd, rel=4 * np.sqrt(1 / (2 * n)))
    assert abs(row.coverage - 0.95) < 4 * np.sqrt(0.95 * 0.05 / n)


def test_variance_components_have_intervals(bcg):
    study = bm.simulation_study(bcg, {"beta[Intercept]": -0.7, "tau2": 0.3}, n=3, methods=("REML", "DL"),
                                random_seed=1, progressbar=False)
    reml = study.estimates[study.estimates.method == "REML"].set_index(["replication", "parameter"])
    assert reml[["estimate", "ci_lb", "ci_ub"]].notna().all().all()
    assert (reml.ci_lb <= reml.estimate).all() and (reml.estimate <= reml.ci_ub).all()
    dl = study.estimates[study.estimates.method == "DL"].set_index("parameter")
    assert dl.loc["tau2[row]", ["estimate", "ci_lb", "ci_ub"]].notna().all().all()  # Q-profile, as metafor's


def test_replications_are_reproducible_and_independent_of_workers(bcg):
    truths = {"beta[Intercept]": -0.7, "tau2": 0.3}
    one = bm.simulation_study(bcg, truths, n=4, methods=("ML",), random_seed=7, progressbar=False)
    two = bm.simulation_study(bcg, truths, n=4, methods=("ML",), random_seed=7, n_jobs=2, progressbar=False)
    pd.testing.assert_frame_equal(one.estimates, two.estimates)
    other = bm.simulation_study(bcg, truths, n=4, methods=("ML",), random_seed=8, progressbar=False)
    assert not np.allclose(one.estimates.estimate, other.estimates.estimate)


@pytest.mark.parametrize("kwargs, message", [
    ({"methods": ("REML", "Bayes")}, "methods: expected some of"),
    ({"n": 0}, "n: expected a positive number"),
    ({"n_jobs": 0}, "n_jobs"),
    ({"backend": "spark"}, "backend"),
    ({"backend": "dask"}, "client: backend='dask' needs"),
])
def test_bad_options_are_named(bcg, kwargs, message):
    with pytest.raises(SpecificationError, match=message):
        bm.simulation_study(bcg, {"beta[Intercept]": -0.7, "tau2": 0.3}, **{"n": 2, **kwargs})


def test_a_method_that_does_not_apply_fails_before_the_replications():
    school = bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    with pytest.raises(SpecificationError):
        bm.simulation_study(school, {"beta[Intercept]": 0.2, "sigma2[district]": 0.05,
                                     "sigma2[district/study]": 0.03}, n=2, methods=("DL",), progressbar=False)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_study(bcg):
    distributed = pytest.importorskip("distributed")
    truths = {"beta[Intercept]": -0.7, "tau2": 0.3}
    local = bm.simulation_study(bcg, truths, n=3, methods=("ML",), random_seed=11, progressbar=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = bm.simulation_study(bcg, truths, n=3, methods=("ML",), random_seed=11, backend="dask",
                                     client=client, progressbar=False)
    pd.testing.assert_frame_equal(local.estimates, remote.estimates)
