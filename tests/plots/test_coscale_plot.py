"""bm.coscale_plot: the fitted SDs and correlation of a structured term's scale model against a moderator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from plots.plot_tools import by_gid, render

import bayesmeta as bm

HABITATS = pd.DataFrame({"habitat": ["marine", "terrestrial"]})


def _points_and_bars(ax):
    """The REML fit's points and its error bars (the caps share the gid)."""
    artists = by_gid(ax, "estimates REML")
    lines = [a for a in artists if isinstance(a, Line2D) and a.get_marker() == "o"]
    bars = [a for a in artists if isinstance(a, LineCollection)]
    assert len(lines) == 1 and len(bars) == 1
    return lines[0], bars[0]


@pytest.fixture(scope="module")
def habitat_fit():
    dat = bm.datasets.load("habitat")
    V = bm.vcalc("vi", "study", obs="outcome", rho=0.4, data=dat)
    return bm.MetaModel("yi ~ 0 + outcome", data=dat, V=V, random="~ outcome | study", struct="UN",
                        scale={"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat",
                                                   "rho": "~ habitat"}}).fit()


def test_points_and_error_bars_are_the_predictions(habitat_fit):
    fit = habitat_fit
    axes = bm.coscale_plot(fit, x="habitat", newdata=HABITATS)
    render(axes[0])
    assert [ax.get_title() for ax in axes] == ["SD of outcome A", "SD of outcome B", "correlation"]
    for ax, level in zip(axes[:2], ["A", "B"]):
        predicted = fit.predict_variance(HABITATS.assign(outcome=level))
        points, bars = _points_and_bars(ax)
        assert np.allclose(points.get_ydata(), np.sqrt(predicted["pred"]))
        bars = bars.get_segments()
        assert np.allclose([s[:, 1] for s in bars], np.sqrt(predicted[["ci_lb", "ci_ub"]].to_numpy()))
        assert [t.get_text() for t in ax.get_xticklabels()] == ["marine", "terrestrial"]
    correlation = fit.predict_correlation(HABITATS)
    points, bars = _points_and_bars(axes[2])
    assert np.allclose(points.get_ydata(), correlation["pred"])
    assert np.allclose([s[:, 1] for s in bars.get_segments()], correlation[["ci_lb", "ci_ub"]].to_numpy())


def test_numeric_moderator_draws_curves():
    dat = bm.datasets.load("habitat")
    dat["depth"] = (dat["habitat"] == "terrestrial") * 1.0 + dat["study"].str[1:].astype(int) / 1000
    V = bm.vcalc("vi", "study", obs="outcome", rho=0.4, data=dat)
    fit = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=V, random="~ outcome | study", struct="HCS",
                       scale={"outcome | study": {"rho": "~ depth"}}).fit()
    grid = pd.DataFrame({"depth": np.linspace(0, 1.2, 5)})
    axes = bm.coscale_plot(fit, x="depth", newdata=grid)
    (curve,) = by_gid(axes[-1], "estimates REML")
    assert np.allclose(curve.get_xdata(), grid["depth"])
    assert np.allclose(curve.get_ydata(), fit.predict_correlation(grid)["pred"])


def test_errors(habitat_fit):
    with pytest.raises(bm.SpecificationError, match="x: 'depth'"):
        bm.coscale_plot(habitat_fit, x="depth", newdata=HABITATS)
    plain = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
    with pytest.raises(bm.SpecificationError, match="not a fit of a scale model of a structured term"):
        bm.coscale_plot(plain, x="habitat", newdata=HABITATS)
    with pytest.raises(bm.SpecificationError, match="'trial' matches no scale model"):
        bm.coscale_plot(habitat_fit, x="habitat", newdata=HABITATS, term="trial")
