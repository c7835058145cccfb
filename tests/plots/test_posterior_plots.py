"""The plots of posteriors (NUTS, Laplace), beside ML/REML fits, checked against the draws."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from plots.plot_tools import by_gid, diamond, render, segments, tick_labels

import bayesmeta as bm

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def school():
    dat = bm.datasets.load("school")
    model = bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | district/study")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)  # short chains
        post = model.sample(draws=150, tune=150, chains=2, random_seed=5, progressbar=False)
    return dat, model.fit("REML"), post


def _draws(post, name):
    values = post.idata.posterior[name].values
    return values.reshape((-1,) + values.shape[2:])


def test_forest_of_a_fit_beside_its_posterior(school):
    dat, reml, post = school
    ax = bm.forest(reml, post, slab=dat["study"], shrunken=True)
    render(ax)
    labels = tick_labels(ax)
    assert labels[-2:] == ["REML (RE model)", "NUTS (posterior)"]
    assert len(labels) == 56 + 11 + 2
    reml_diamond, nuts_diamond = sorted(by_gid(ax, "pooled"), key=lambda p: -diamond(p)[3])
    p = post.predict()
    assert np.allclose(diamond(nuts_diamond)[:3], [p["ci_lb"].iloc[0], p["pred"].iloc[0], p["ci_ub"].iloc[0]])
    assert np.allclose(segments(by_gid(ax, "prediction NUTS")[0])[0, :2], [p["pi_lb"].iloc[0], p["pi_ub"].iloc[0]])
    q = reml.predict()
    assert np.allclose(diamond(reml_diamond)[:3], [q["ci_lb"].iloc[0], q["pred"].iloc[0], q["ci_ub"].iloc[0]])
    # the shrunken estimates of the posterior: means of beta + u_district + u_study, row by row
    codes_d = pd.Index(post.idata.posterior["u_district"].coords["district"].values).get_indexer(dat["district"])
    theta = (_draws(post, "beta")[:, 0][:, None] + _draws(post, "u_district")[:, codes_d]
             + _draws(post, "u_study"))
    _, points = by_gid(ax, "shrunken NUTS")
    order = np.argsort(-points.get_ydata(), kind="stable")  # from the top: data order
    assert np.allclose(points.get_xdata()[order], theta.mean(axis=0))
    lines, _ = by_gid(ax, "shrunken NUTS")
    assert np.allclose(segments(lines)[order, 0], np.quantile(theta, 0.025, axis=0))
    _, blups = by_gid(ax, "shrunken REML")
    assert np.allclose(blups.get_xdata()[order], reml.blup()["pred"])


def test_caterpillar_of_posterior_random_effects(school):
    _, reml, post = school
    ax = bm.caterpillar(post, reml, term="district")
    render(ax)
    u = _draws(post, "u_district")
    order = np.argsort(u.mean(axis=0), kind="stable")
    districts = post.idata.posterior["u_district"].coords["district"].values
    assert tick_labels(ax) == [str(d) for d in districts[order]]
    (points,) = by_gid(ax, "NUTS")
    assert np.allclose(points.get_xdata(), u.mean(axis=0)[order])
    (lines,) = by_gid(ax, "interval NUTS")
    assert np.allclose(segments(lines)[:, 1], np.quantile(u, 0.975, axis=0)[order])


def test_compare_plot_and_funnel_of_a_posterior(school):
    _, reml, post = school
    axes = bm.compare_plot(reml, post)
    render(axes)
    table = bm.compare(reml, post)
    rows = ["sigma2[district]", "sigma2[district/study]"]
    (lines,) = by_gid(axes[1], "interval NUTS")
    assert np.allclose(segments(lines)[:, :2], table.loc[rows, [("NUTS", "ci_lb"), ("NUTS", "ci_ub")]])
    assert np.allclose(table.loc[rows, ("NUTS", "estimate")], post.sigma2)
    ax = bm.funnel(post)
    render(ax)
    (centre,) = by_gid(ax, "estimate")
    assert centre.get_xdata()[0] == pytest.approx(post.coef.iloc[0])
    assert centre.get_label() == "posterior mean"
    with pytest.raises(bm.SpecificationError, match="trimfill"):
        bm.funnel(post, trimfill=True)
    with pytest.raises(bm.SpecificationError, match="fit"):
        bm.profile_plot(post)


def test_variance_plot_of_a_laplace_posterior():
    dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    model = bm.location_scale("yi ~ length", dat, vi="vi", scale="~ length")
    fit, post = model.fit(), model.fit("laplace", draws=400, random_seed=2)
    ax = bm.variance_plot(fit, post, x="length", data=dat, points=9)
    render(ax)
    grid = pd.DataFrame({"length": np.linspace(dat["length"].min(), dat["length"].max(), 9)})
    curve = post.predict_variance(grid)
    assert np.allclose(by_gid(ax, "curve Laplace")[0].get_ydata(), np.sqrt(curve["median"]))
    band = ax.collections[1].get_paths()[0].vertices
    assert band[:, 1].max() == pytest.approx(np.sqrt(curve["ci_ub"]).max())
    assert np.allclose(by_gid(ax, "curve REML")[0].get_ydata(), np.sqrt(fit.predict_variance(grid)["pred"]))
