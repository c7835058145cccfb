"""Prior grids and prior-sensitivity tables."""

import pandas as pd
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
    sens = model.sensitivity(grid, progressbar=False, **options)
    for label, priors in grid.items():
        direct = model.sample(priors=priors, progressbar=False, **options).table()
        rows = sens.table[sens.table.prior == label].set_index("parameter")
        pd.testing.assert_frame_equal(rows[["estimate", "se", "ci_lb", "ci_ub"]], direct[["estimate", "se", "ci_lb",
                                      "ci_ub"]], check_names=False)
    tau2 = sens.table[sens.table.parameter == "tau2[row]"].set_index("prior").estimate
    assert tau2.iloc[0] < 0.5 * tau2.iloc[1]  # a narrow prior on tau pulls tau^2 down (REML: 0.31)
    assert sens.reference.loc["tau2[row]", "estimate"] == pytest.approx(model.fit().tau2.iloc[0])
    assert {"ess_bulk", "r_hat", "divergences"} <= set(sens.table.columns)
