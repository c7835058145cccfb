"""bm.compare_plot (every parameter of several fits, a panel per family) and bm.caterpillar."""

from __future__ import annotations

import numpy as np
import pytest
from plots.plot_tools import by_gid, render, segments, tick_labels

import bayesmeta as bm


@pytest.fixture(scope="module")
def fits():
    model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    return model.fit("REML"), model.fit("ML")


def test_compare_plot_draws_the_compare_table(fits):
    reml, ml = fits
    axes = bm.compare_plot(reml, ml)
    render(axes)
    assert [ax.get_title(loc="left") for ax in axes] == ["fixed effects", "variances sigma2"]
    assert tick_labels(axes[1]) == ["district", "district/study"]
    table = bm.compare(reml, ml)
    for ax, rows in zip(axes, (["beta[Intercept]"], ["sigma2[district]", "sigma2[district/study]"])):
        for name in ("REML", "ML"):
            (points,) = by_gid(ax, name)
            assert np.allclose(points.get_xdata(), table.loc[rows, (name, "estimate")])
            (lines,) = by_gid(ax, f"interval {name}")
            assert np.allclose(segments(lines)[:, :2], table.loc[rows, [(name, "ci_lb"), (name, "ci_ub")]])


def test_compare_plot_on_one_axes_and_errors(fits):
    reml, ml = fits
    (ax,) = bm.compare_plot(reml, ml, ax=bm.forest(reml), params=["beta[Intercept]"])
    assert by_gid(ax, "REML")[0].get_xdata()[0] == pytest.approx(reml.coef.iloc[0])
    with pytest.raises(bm.SpecificationError, match="params"):
        bm.compare_plot(reml, params=["beta[x]"])
    with pytest.raises(bm.SpecificationError, match="names"):
        bm.compare_plot(reml, ml, names=["a"])


def test_caterpillar_sorts_the_blups(fits):
    reml, ml = fits
    ax = bm.caterpillar(reml, ml, term="district")
    render(ax)
    ranef = reml.ranef()["district"]
    order = np.argsort(ranef["pred"].to_numpy(), kind="stable")
    assert tick_labels(ax) == [str(g) for g in ranef.index[order]]
    (points,) = by_gid(ax, "REML")
    assert np.allclose(points.get_xdata(), ranef["pred"].to_numpy()[order])
    (lines,) = by_gid(ax, "interval REML")
    assert np.allclose(segments(lines)[:, :2], ranef[["pi_lb", "pi_ub"]].to_numpy()[order])
    assert len(bm.caterpillar(reml, term="study").get_yticks()) == 56
    with pytest.raises(bm.SpecificationError, match="term"):
        bm.caterpillar(reml, term="school")


def test_caterpillar_of_correlated_effects():
    from cases import berkey_model

    fit = berkey_model().fit()
    ax = bm.caterpillar(fit, sort=False)
    ranef = fit.ranef()["outcome | trial"]  # trials x outcomes, in the order of the BLUP table
    assert tick_labels(ax) == [f"{trial}: {outcome}" for trial, outcome in ranef.index]
    assert np.allclose(by_gid(ax, "REML")[0].get_xdata(), ranef["pred"])
