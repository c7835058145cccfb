"""Published heterogeneity priors: every setting against the papers' tables, and the lookup rules.

The reference numbers below are transcribed from the papers (Turner et al. 2015, Table IV;
Rhodes et al. 2015, Table 3 and appendix tables A.3.1 (respiratory) and A.3.2 (cancer)), in the
tables' own layout, independently of the CSV files shipped with the package.
"""

import numpy as np
import pytest

from bayesmeta import priors
from bayesmeta.errors import SpecificationError

TURNER_OUTCOMES = [
    "all-cause mortality", "obstetric outcomes",
    "cause-specific mortality / major morbidity event / composite (mortality or morbidity)",
    "resource use / hospital stay / process", "surgical / device related success / failure",
    "withdrawals / drop-outs", "internal / structure-related outcomes", "general physical health indicators",
    "adverse events", "infection / onset of new disease",
    "signs / symptoms reflecting continuation / end of condition", "pain",
    "quality of life / functioning (dichotomized)", "mental health indicators",
    "biological markers (dichotomized)", "subjective outcomes (various)"]
TURNER_COMPARISONS = [
    "pharmacological vs. placebo / control", "pharmacological vs. pharmacological",
    "non-pharmacological vs. placebo / control", "non-pharmacological vs. pharmacological",
    "non-pharmacological vs. non-pharmacological"]
# Table IV: one row per comparison, outcomes in the order above; meanlog is negative.
TURNER_MINUS_MEANLOG = [
    [3.95, 3.52, 3.71, 2.34, 2.14, 2.99, 2.71, 2.29, 1.87, 2.49, 2.06, 1.83, 2.54, 2.12, 1.77, 2.70],
    [4.18, 3.75, 3.95, 2.58, 2.37, 3.23, 2.94, 2.53, 2.10, 2.73, 2.29, 2.06, 2.78, 2.35, 2.00, 2.93],
    [4.17, 3.74, 3.93, 2.56, 2.36, 3.21, 2.93, 2.51, 2.10, 2.71, 2.28, 2.05, 2.77, 2.34, 1.99, 2.92],
    [2.92, 2.49, 2.68, 1.31, 1.11, 1.96, 1.67, 1.26, 0.84, 1.46, 1.03, 0.80, 1.51, 1.09, 0.74, 1.67],
    [3.50, 3.08, 3.27, 1.90, 1.69, 2.55, 2.26, 1.85, 1.43, 2.05, 1.61, 1.38, 2.10, 1.67, 1.33, 2.26]]
TURNER_SDLOG = [
    [1.34, 1.74, 1.74, 1.74, 1.74, 1.74, 1.74, 1.53, 1.52, 1.52, 1.51, 1.52, 1.54, 1.53, 1.52, 1.52],
    [1.41, 1.79, 1.79, 1.79, 1.79, 1.79, 1.79, 1.58, 1.58, 1.58, 1.58, 1.58, 1.60, 1.60, 1.58, 1.58],
    [1.55, 1.91, 1.91, 1.91, 1.91, 1.91, 1.92, 1.72, 1.71, 1.71, 1.71, 1.71, 1.73, 1.72, 1.71, 1.71],
    [1.02, 1.50, 1.51, 1.50, 1.50, 1.51, 1.51, 1.25, 1.24, 1.24, 1.24, 1.25, 1.27, 1.27, 1.24, 1.25],
    [1.26, 1.68, 1.68, 1.68, 1.68, 1.68, 1.68, 1.46, 1.45, 1.45, 1.45, 1.45, 1.47, 1.47, 1.45, 1.45]]

RHODES_OUTCOMES = [
    "obstetric outcome", "resource use and hospital stay / process",
    "internal and external structure-related outcome",
    "general physical health and adverse event and pain and quality of life / functioning",
    "signs / symptoms reflecting continuation / end of condition and infection / onset of new acute / chronic disease",
    "mental health outcome", "biological marker", "various subjectively measured outcomes"]
RHODES_COMPARISONS = ["pharmacological vs. placebo / control", "pharmacological vs. pharmacological",
                      "non-pharmacological (any)"]
# Tables 3 (other), A.3.1 (respiratory), A.3.2 (cancer): per area, one row per comparison.
RHODES_MINUS_LOCATION = {
    "other": [[4.13, 2.55, 2.43, 3.16, 3.00, 2.99, 3.41, 2.76],
              [4.40, 2.83, 2.70, 3.44, 3.27, 3.27, 3.68, 3.03],
              [3.99, 2.41, 2.29, 3.02, 2.86, 3.85, 3.27, 2.62]],
    "respiratory": [[6.03, 4.46, 4.33, 5.07, 4.90, 4.90, 5.31, 4.66],
                    [6.31, 4.73, 4.61, 5.34, 5.18, 5.17, 5.59, 4.94],
                    [5.89, 4.32, 4.19, 4.93, 4.76, 4.76, 5.17, 4.52]],
    "cancer": [[1.57, -0.01, 0.13, 0.60, 0.44, 0.43, 0.85, 0.20],
               [1.85, 0.27, 0.14, 0.88, 0.71, 0.71, 1.13, 0.48],
               [1.43, -0.15, -0.27, 0.46, 0.30, 0.29, 0.71, 0.06]]}
RHODES_SCALE = {
    "other": [[2.34, 2.73, 2.50, 2.50, 2.50, 2.16, 2.83, 2.58],
              [2.31, 2.70, 2.46, 2.44, 2.47, 2.14, 2.78, 2.59],
              [2.11, 2.57, 2.32, 2.27, 2.33, 1.93, 2.66, 2.41]],
    "respiratory": [[2.36, 2.74, 2.51, 2.51, 2.50, 2.17, 2.83, 2.59],
                    [2.31, 2.70, 2.46, 2.45, 2.47, 2.14, 2.78, 2.59],
                    [2.21, 2.57, 2.33, 2.28, 2.33, 1.94, 2.66, 2.41]],
    "cancer": [[2.45, 2.83, 2.61, 2.61, 2.60, 2.28, 2.93, 2.68],
               [2.41, 2.79, 2.56, 2.55, 2.57, 2.25, 2.87, 2.68],
               [2.24, 2.68, 2.45, 2.40, 2.46, 2.08, 2.78, 2.53]]}


def test_every_turner_setting_matches_table_iv():
    assert priors.turner2015_table().shape == (80, 4)
    for c, comparison in enumerate(TURNER_COMPARISONS):
        for o, outcome in enumerate(TURNER_OUTCOMES):
            prior = priors.turner2015(outcome, comparison)
            assert prior.distribution == "LogNormal"
            assert prior.parameters == {"mu": -TURNER_MINUS_MEANLOG[c][o], "sigma": TURNER_SDLOG[c][o]}, \
                (outcome, comparison)


def test_every_rhodes_setting_matches_tables_3_a31_a32():
    assert priors.rhodes2015_table().shape == (72, 6)
    for area in ("other", "respiratory", "cancer"):
        for c, comparison in enumerate(RHODES_COMPARISONS):
            for o, outcome in enumerate(RHODES_OUTCOMES):
                prior = priors.rhodes2015(outcome, comparison, area=area)
                assert (prior.distribution, prior.transform) == ("StudentT", "exp")
                expected = {"nu": 5, "mu": -RHODES_MINUS_LOCATION[area][c][o], "sigma": RHODES_SCALE[area][c][o]}
                assert prior.parameters == pytest.approx(expected), (outcome, comparison, area)


def test_marginal_settings():
    assert priors.turner2015().parameters == {"mu": -2.56, "sigma": 1.74}
    assert priors.rhodes2015().parameters == {"nu": 5, "mu": -3.44, "sigma": 2.59}


def test_comparisons_are_symmetric_and_names_forgiving():
    forward = priors.turner2015("pain", "non-pharmacological vs. pharmacological")
    assert priors.turner2015("PAIN", "pharmacological  vs non-pharmacological").parameters == forward.parameters
    assert priors.turner2015("all-cause", "pharmacological vs. placebo / control").parameters["mu"] == -3.95
    # an exact name wins over the longer names that contain it
    assert priors.turner2015("pain", "pharmacological vs. placebo / control").parameters["mu"] == -1.83


def test_median_of_tau2_is_exp_of_the_location():
    """The distribution is on tau^2: its median is exp(meanlog) (Turner) and exp(location) (Rhodes)."""
    pm = pytest.importorskip("pymc")
    for prior, median in ((priors.turner2015(), np.exp(-2.56)), (priors.rhodes2015(), np.exp(-3.44))):
        with pm.Model():
            tau2 = prior.create_variable("tau2")
            draws = pm.draw(tau2, draws=10000, random_seed=1)
        assert np.all(draws > 0)
        # 10000 draws: the log of the sample median has a standard error of at most 0.034 (Rhodes)
        assert abs(np.log(np.median(draws)) - np.log(median)) < 0.12


@pytest.mark.parametrize("call, message", [
    (lambda: priors.turner2015("mortality", "pharmacological vs. placebo / control"), "ambiguous"),
    (lambda: priors.turner2015("pain"), "both outcome and comparison"),
    (lambda: priors.turner2015("pain", "surgery vs. placebo"), "matches none"),
    (lambda: priors.rhodes2015("biological marker", "non-pharmacological (any)", area="dermatology"), "area="),
    (lambda: priors.rhodes2015(3, "non-pharmacological (any)"), "outcome: expected a string"),
])
def test_bad_settings_are_named(call, message):
    with pytest.raises(SpecificationError, match=message):
        call()
