"""bm.forest: rows, labels, groups, the pooled diamond and the weights, against metafor."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from plots.plot_tools import (
    by_gid,
    diamond,
    overlapping_labels,
    render,
    segments,
    tick_labels,
)
from reference_tools import assert_close, load_fixture

import bayesmeta as bm
from bayesmeta.plots.canvas import MIN_FONT

REF = load_fixture("plots")


@pytest.fixture(scope="module")
def school():
    dat = bm.datasets.load("school")
    return dat, bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | district/study").fit()


@pytest.fixture(scope="module")
def bcg():
    dat = bm.datasets.load("bcg")
    return dat, bm.MetaModel("logrr ~ 1", data=dat, vi="logrrvar").fit()


def _annotations(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_school_rows_groups_and_diamond(school):
    dat, fit = school
    ax = bm.forest(fit, slab=dat["study"])
    render(ax)
    labels = tick_labels(ax)
    assert len(labels) == 56 + 11 + 1  # studies, district headers, the pooled row
    headers = [t.get_text() for t in ax.get_yticklabels() if t.get_fontweight() == "bold"]
    assert headers[:11] == [f"district {d}" for d in dat["district"].unique()]
    assert headers[-1] == "REML (RE model)"
    # studies in data order under their district, every study labelled by its slab
    assert [x for x in labels if not x.startswith(("district", "REML"))] == [str(s) for s in dat["study"]]
    (pooled,) = by_gid(ax, "pooled")
    lower, centre, upper, _ = diamond(pooled)
    ref = REF["school"]
    assert_close([lower, centre, upper], [ref["ci_lb"], ref["pred"], ref["ci_ub"]], "diamond")
    prediction = segments(by_gid(ax, "prediction REML")[0])
    assert_close(prediction[0, :2], [ref["pi_lb"], ref["pi_ub"]], "prediction interval")
    assert ax.get_xlabel() == "Observed outcome"


def test_observed_intervals_are_the_normal_intervals_of_the_data(school):
    dat, fit = school
    ax = bm.forest(fit)
    lines, points = by_gid(ax, "observed")
    seg = segments(lines)
    se = np.sqrt(dat["var"].to_numpy())
    order = np.argsort(-seg[:, 2])  # from the top: data order
    assert np.allclose(seg[order, 0], dat["effect"] - 1.959963984540054 * se)
    assert np.allclose(seg[order, 1], dat["effect"] + 1.959963984540054 * se)
    assert np.allclose(points.get_offsets()[order, 0], dat["effect"])


@pytest.mark.parametrize("case", ["bcg", "school", "berkey"])
def test_printed_weights_are_metafors(case, school, bcg):
    from cases import berkey_model

    fit = {"bcg": bcg[1], "school": school[1], "berkey": berkey_model().fit()}[case]
    ax = bm.forest(fit, group=False)
    rows = [t for t in _annotations(ax) if t.endswith("%")]
    printed = np.array([float(t.split()[-1].rstrip("%")) for t in rows])
    ref = np.array(REF[case]["weights"])
    # the rows are printed top to bottom in data order, weights to one decimal
    assert len(printed) == len(ref) and np.max(np.abs(printed - ref)) <= 0.05 + 1e-9
    from bayesmeta.plots.rows import row_weights

    assert_close(row_weights(fit), ref, "weights")


def test_transformation_and_reference_line(bcg):
    dat, fit = bcg
    ax = bm.forest(fit, transf=np.exp, xlabel="Risk ratio", slab=dat["author"])
    (pooled,) = by_gid(ax, "pooled")
    ref = REF["bcg"]
    assert_close(diamond(pooled)[:3], np.exp([ref["ci_lb"], ref["pred"], ref["ci_ub"]]), "exp diamond")
    (refline,) = by_gid(ax, "refline")
    assert refline.get_xdata()[0] == 1.0
    assert ax.get_xlabel() == "Risk ratio"
    assert "Aronson" in tick_labels(ax)
    bold = [t.get_text() for t in ax.texts if t.get_fontweight() == "bold"]
    assert "  0.49 [  0.34,   0.70]" in bold  # the pooled row: exp(-0.7145) [exp(-1.0669), exp(-0.3622)]


def test_sorting_within_groups(school):
    dat, fit = school
    ax = bm.forest(fit, slab=dat["study"], sort="estimate")
    order = [lab for lab in tick_labels(ax) if not lab.startswith(("district", "REML"))]
    effects = dat.set_index(dat["study"].astype(str))["effect"]
    for district, rows in dat.groupby("district", sort=False):
        shown = [s for s in order if s in set(rows["study"].astype(str))]
        assert list(effects[shown]) == sorted(effects[shown])


def test_shrunken_estimates_are_the_blups(bcg):
    _, fit = bcg
    ax = bm.forest(fit, shrunken=True)
    lines, points = by_gid(ax, "shrunken REML")
    blup = fit.blup()
    order = np.argsort(-points.get_ydata())
    assert np.allclose(points.get_xdata()[order], blup["pred"])
    assert np.allclose(segments(lines)[order, :2], blup[["pi_lb", "pi_ub"]])


def test_moderators_show_fitted_values_not_a_pooled_diamond(bcg):
    dat, _ = bcg
    fit = bm.MetaModel("logrr ~ ablat", data=dat, vi="logrrvar").fit()
    ax = bm.forest(fit)
    render(ax)
    assert by_gid(ax, "pooled") == []
    fitted = by_gid(ax, "fitted REML")
    assert len(fitted) == 13
    pred = fit.predict()
    assert np.allclose(sorted(diamond(p)[1] for p in fitted), sorted(pred["pred"]))


def test_two_fits_two_diamonds(school):
    dat, fit = school
    ml = bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | district/study").fit("ML")
    ax = bm.forest(fit, ml, names=["REML", "ML"])
    render(ax)
    diamonds = by_gid(ax, "pooled")
    assert len(diamonds) == 2
    assert np.isclose(diamond(diamonds[1])[1], ml.coef.iloc[0])
    assert tick_labels(ax)[-2:] == ["REML (RE model)", "ML (RE model)"]


@pytest.mark.slow
def test_many_studies_keep_readable_labels():
    rng = np.random.default_rng(1)
    k = 60
    vi = rng.uniform(0.01, 0.2, k)
    dat = pd.DataFrame({"yi": rng.normal(0.3, 0.3, k), "vi": vi,
                        "author": [f"Author{i} et al. ({1980 + i % 40})" for i in range(k)]})
    fit = bm.MetaModel("yi ~ 1", data=dat, vi="vi").fit()
    ax = bm.forest(fit, slab=dat["author"])
    render(ax)
    assert len(tick_labels(ax)) == k + 1
    assert ax.get_yticklabels()[0].get_fontsize() >= 8  # the figure grew with the rows
    assert overlapping_labels(ax) == 0
    # a user's small Axes: labels shrink to a floor and every few rows are labelled, never overlapping
    _, small = plt.subplots(figsize=(6, 2.5))
    bm.forest(fit, slab=dat["author"], ax=small)
    assert small.get_yticklabels()[0].get_fontsize() >= MIN_FONT
    assert 10 < len(tick_labels(small)) < k / 2
    assert overlapping_labels(small) == 0


def test_errors_name_the_argument(school, bcg):
    _, fit = school
    with pytest.raises(bm.SpecificationError, match="slab"):
        bm.forest(fit, slab=["a", "b"])
    with pytest.raises(bm.SpecificationError, match="sort"):
        bm.forest(fit, sort="size")
    with pytest.raises(bm.SpecificationError, match="argument 2"):
        bm.forest(fit, bcg[1])
    with pytest.raises(bm.SpecificationError, match="transf"):
        bm.forest(fit, transf="exp")
    with pytest.raises(bm.SpecificationError, match="slab"):
        bm.forest(fit, slab=pd.Series(["x"], index=[999]))
