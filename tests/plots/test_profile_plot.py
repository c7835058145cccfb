"""bm.profile_plot: the profile likelihood of each component with its estimate and interval."""

from __future__ import annotations

import numpy as np
import pytest
from plots.plot_tools import by_gid, render, span

import bayesmeta as bm
from bayesmeta.inference.intervals import chi2_quantile


@pytest.fixture(scope="module")
def school():
    return bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
                        random="~ 1 | district/study").fit()


def test_one_panel_per_component_with_the_profile_and_interval(school):
    axes = bm.profile_plot(school, points=6)
    render(axes)
    assert [ax.get_xlabel() for ax in axes] == ["sigma2[district]", "sigma2[district/study]"]
    ci = school.confint()
    for ax, label in zip(axes, ci.index):
        (curve,) = by_gid(ax, "profile")
        prof = school.profile(label, points=6)
        assert np.allclose(curve.get_xdata(), prof["value"]) and np.allclose(curve.get_ydata(), prof["loglik"])
        (cutoff,) = by_gid(ax, "cutoff")
        assert cutoff.get_ydata()[0] == pytest.approx(school.loglik - chi2_quantile(0.95, 1) / 2)
        (estimate,) = by_gid(ax, "estimate")
        assert estimate.get_xdata()[0] == pytest.approx(ci.loc[label, "estimate"])
        (interval,) = by_gid(ax, "interval")
        assert np.allclose(span(interval), ci.loc[label, ["ci_lb", "ci_ub"]].to_numpy(float))
        assert ax.get_ylabel() == "restricted log-likelihood"


def test_the_standard_model_and_a_chosen_component():
    fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit("ML")
    (ax,) = bm.profile_plot(fit, "tau2", points=5)
    assert ax.get_xlabel().startswith("tau2") and ax.get_ylabel() == "log-likelihood"
    ci = fit.confint(method="profile")
    (interval,) = by_gid(ax, "interval")
    assert np.allclose(span(interval), ci.loc["tau2", ["ci_lb", "ci_ub"]].to_numpy(float))


def test_errors(school):
    with pytest.raises(bm.SpecificationError, match="component"):
        bm.profile_plot(school, "tau2")
    fe = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit("FE")
    with pytest.raises(bm.SpecificationError, match="fit"):
        bm.profile_plot(fe)
