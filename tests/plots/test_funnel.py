"""bm.funnel: the studies, the pseudo-confidence region, significance contours and trim-and-fill."""

from __future__ import annotations

import numpy as np
import pytest
from plots.plot_tools import by_gid, render

import bayesmeta as bm


@pytest.fixture(scope="module")
def bcg():
    dat = bm.datasets.load("bcg")
    return dat, bm.MetaModel("logrr ~ 1", data=dat, vi="logrrvar").fit()


def test_studies_against_their_standard_errors(bcg):
    dat, fit = bcg
    ax = bm.funnel(fit)
    render(ax)
    (studies,) = by_gid(ax, "studies")
    assert np.allclose(studies.get_offsets(), np.column_stack([dat["logrr"], np.sqrt(dat["logrrvar"])]))
    (estimate,) = by_gid(ax, "estimate")
    assert estimate.get_xdata()[0] == pytest.approx(fit.coef.iloc[0])
    assert ax.get_ylabel() == "Standard error" and ax.get_ylim()[0] > ax.get_ylim()[1]  # largest SE at the bottom
    (region,) = by_gid(ax, "pseudo-confidence region")
    path = region.get_paths()[0].vertices
    widest = path[np.argmax(path[:, 1])]  # at the largest SE drawn: estimate -+ 1.96 se
    assert abs(abs(widest[0] - fit.coef.iloc[0]) / widest[1] - 1.959963984540054) < 1e-6


def test_contours_and_trimfill(bcg):
    _, fit = bcg
    ax = bm.funnel(fit, contours=(0.90, 0.95, 0.99), trimfill=True)
    render(ax)
    assert len(by_gid(ax, "contour")) == 6  # three bands on each side
    assert by_gid(ax, "pseudo-confidence region") == []
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:3] == ["0.1 > p > 0.05", "0.05 > p > 0.01", "p < 0.01"]
    tf = fit.trimfill()
    (filled,) = by_gid(ax, "filled")
    data = tf.data[tf.data["fill"]]
    assert np.allclose(filled.get_offsets(), np.column_stack([data["yi"], np.sqrt(data["vi"])]))
    assert "trim-and-fill estimate" in labels


def test_other_axes_and_residuals(bcg):
    dat, fit = bcg
    ax = bm.funnel(fit, yaxis="seinv")
    (studies,) = by_gid(ax, "studies")
    assert np.allclose(studies.get_offsets()[:, 1], 1 / np.sqrt(dat["logrrvar"]))
    reg = bm.MetaModel("logrr ~ ablat", data=dat, vi="logrrvar").fit()
    ax = bm.funnel(reg)
    (studies,) = by_gid(ax, "studies")
    assert np.allclose(studies.get_offsets()[:, 0], reg.residuals)
    assert ax.get_xlabel() == "Residual value"


def test_errors_name_the_argument(bcg):
    dat, fit = bcg
    reg = bm.MetaModel("logrr ~ ablat", data=dat, vi="logrrvar").fit()
    with pytest.raises(bm.SpecificationError, match="trimfill"):
        bm.funnel(reg, trimfill=True)
    with pytest.raises(bm.SpecificationError, match="yaxis"):
        bm.funnel(fit, yaxis="n")
    with pytest.raises(bm.SpecificationError, match="contours"):
        bm.funnel(fit, contours=(95,))
