"""bm.variance_plot: the fitted heterogeneity of a location-scale model against a moderator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plots.plot_tools import by_gid, render

import bayesmeta as bm


@pytest.fixture(scope="module")
def location_scale():
    dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    return dat, bm.location_scale("yi ~ length", dat, vi="vi", scale="~ length").fit()


def test_curve_and_groups_are_predict_variance(location_scale):
    dat, fit = location_scale
    ax = bm.variance_plot(fit, x="length", data=dat, points=7)
    render(ax)
    grid = pd.DataFrame({"length": np.linspace(dat["length"].min(), dat["length"].max(), 7)})
    (curve,) = by_gid(ax, "curve REML")
    assert np.allclose(curve.get_ydata(), np.sqrt(fit.predict_variance(grid)["pred"]))
    (groups,) = by_gid(ax, "groups")
    assert np.allclose(groups.get_xdata(), dat["length"])
    assert np.allclose(groups.get_ydata(), np.sqrt(fit.predict_variance(dat)["pred"]))
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].max() == pytest.approx(np.sqrt(fit.predict_variance(grid)["ci_ub"]).max())
    ax = bm.variance_plot(fit, x="length", data=dat, sd=False, points=7, show_groups=False)
    assert np.allclose(by_gid(ax, "curve REML")[0].get_ydata(), fit.predict_variance(grid)["pred"])
    assert ax.get_ylabel() == "heterogeneity variance"


def test_errors(location_scale):
    dat, fit = location_scale
    with pytest.raises(bm.SpecificationError, match="x"):
        bm.variance_plot(fit, x="weeks", data=dat)
    plain = bm.MetaModel("yi ~ length", data=dat, vi="vi").fit()
    with pytest.raises(bm.SpecificationError, match="location-scale"):
        bm.variance_plot(plain, x="length", data=dat)
