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
