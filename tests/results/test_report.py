"""Printed and notebook views of ML/REML fits: significant digits, one-line reprs, HTML tables."""

from __future__ import annotations

import numpy as np
import pytest
from results.views_tools import Tables

import bayesmeta as bm
from bayesmeta.results.report import format_number


@pytest.fixture(scope="module")
def thrombolytic():
    """Table 3 of Sera et al. (2019): a trial variance of 5.58e-05 (SD 0.00747)."""
    dat = bm.datasets.load("thrombolytic")
    dat["subtrial"] = np.arange(1, len(dat) + 1)
    return bm.MetaModel("absrisk ~ 1", data=dat, vi="var", random="~ 1 | subtrial").fit("REML")


@pytest.mark.parametrize(("value", "digits", "text"), [
    (0.18472, 4, "0.1847"), (-0.18472, 2, "-0.18"), (5.58e-05, 4, "5.58e-05"), (-5.58e-05, 4, "-5.58e-05"),
    (0.00049, 2, "4.9e-04"), (0.0001, 4, "1.00e-04"), (0.00123, 4, "0.0012"), (0.0, 4, "0.0000"), (12345.678, 1, "12345.7"),
    (float("nan"), 4, "NA"), (None, 4, "NA"), (float("inf"), 4, "Inf"), (-float("inf"), 4, "-Inf"),
])
def test_format_number(value, digits, text):
    assert format_number(value, digits) == text


def test_a_small_variance_shows_its_significant_digits(thrombolytic):
    row = next(line for line in thrombolytic.summary().splitlines() if line.startswith("sigma2[subtrial]"))
    estim, sqrt = row.split()[1:3]
    assert estim == f"{thrombolytic.sigma2.iloc[0]:.2e}" == "5.58e-05"  # the paper's 0.00747 squared
    assert sqrt == "0.0075"
    assert "0.0000" not in row


def test_digits_sets_the_decimals(thrombolytic):
    text = thrombolytic.summary(digits=2)
    coef = next(line for line in text.splitlines() if line.startswith("Intercept"))
    # -0.0260 (0.0031): two decimals would show one significant digit of each
    assert coef.split()[1:3] == [f"{thrombolytic.coef.iloc[0]:.1e}", f"{thrombolytic.se.iloc[0]:.1e}"]
    assert coef.split()[1:3] == ["-2.6e-02", "3.1e-03"]
    assert coef.split()[3] == f"{thrombolytic.zval.iloc[0]:.2f}" == "-8.28"
    assert coef.split()[4] == "<.01"  # p < 10^-digits, as metafor prints it
    assert "5.6e-05" in text
    assert str(thrombolytic) == thrombolytic.summary()


def test_repr_is_one_informative_line(thrombolytic):
    text = repr(thrombolytic)
    assert "\n" not in text
    assert text == ("ModeResult(method='REML', k=38, p=1, loglik=83.2185, coef={'Intercept': -0.0260}, "
                    "sigma2={'subtrial': 5.58e-05})")
    assert f"{thrombolytic.loglik:.4f}" == "83.2185"


def test_html_view_has_the_summarys_tables():
    dat = bm.datasets.load("bcg")
    fit = bm.MetaModel("logrr ~ ablat", data=dat, vi="logrrvar", random="~ 1 | trial").fit("REML")
    view = Tables(fit._repr_html_())
    assert view.titles == ["Variance Components", "Test for Heterogeneity", "Model Results"]
    stats, components, coefficients = view.tables
    assert stats[:5] == ["logLik", "Deviance", "AIC", "BIC", "AICc"]
    assert stats[5] == f"{fit.loglik:.4f}" and stats[7] == f"{fit.aic:.4f}"
    assert components[:6] == ["", "estim", "sqrt", "nlvls", "fixed", "boundary"]
    assert components[6:9] == ["sigma2[trial]", f"{fit.sigma2.iloc[0]:.4f}", f"{np.sqrt(fit.sigma2.iloc[0]):.4f}"]
    cells = np.array(coefficients).reshape(3, 8)  # header, Intercept, ablat
    assert list(cells[:, 0]) == ["", "Intercept", "ablat"]
    assert list(cells[2, 1:3]) == [f"{fit.coef['ablat']:.4f}", f"{fit.se['ablat']:.4f}"]
    assert "Test of Moderators" in fit._repr_html_()

