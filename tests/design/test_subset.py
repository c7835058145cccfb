"""Designs built from another design's arrays (bayesmeta.design.subset) against the formula path.

A subset design must be the design MetaModel builds on the subset of the data:
same arrays, same groups (renumbered), same likelihood, for the standard model
(nested closed form with one level), nested intercepts (closed form) and a
multivariate UN model (batched blocks).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesmeta as bm
from bayesmeta.design.subset import (
    matching_parameterization,
    positions_kept,
    rebuild,
    subset_design,
)
from bayesmeta.errors import SpecificationError
from bayesmeta.likelihood.marginal import evaluate


def _berkey(data):
    vech = ["var_PD", "cov_PD_AL", "var_AL"]
    return bm.multivariate(data, outcomes=["PD", "AL"], id="pubyear", vech=vech)


CASES = {
    "standard": (lambda d: bm.MetaModel("logrr ~ ablat", data=d, vi="logrrvar"), "bcg",
                 lambda d: d.index % 4 != 1),
    "nested": (lambda d: bm.MetaModel("effect ~ year", data=d, vi="var", random="~ 1 | district/study"), "school",
               lambda d: ~d["district"].isin([18, 71]) & (d.index != 5)),
    "multivariate": (_berkey, "berkey98", lambda d: d["pubyear"] != 1979),
}


@pytest.mark.parametrize("case", CASES)
def test_a_subset_is_the_design_of_the_subset_of_the_data(case):
    make, name, select = CASES[case]
    data = bm.datasets.load(name)
    full = make(data)
    keep = np.asarray(select(data))
    if case == "multivariate":  # one data row per trial, one design row per outcome of a trial
        enc = full.design.encodings[0]
        keep = np.asarray(enc.groups)[enc.codes] != 1979
    sub = subset_design(full.design, keep)
    direct = make(data[np.asarray(select(data))]).design
    np.testing.assert_array_equal(sub.y, direct.y)
    np.testing.assert_array_equal(sub.X, direct.X)
    if case != "multivariate":  # the builder's long data are numbered afresh
        np.testing.assert_array_equal(sub.row_labels, direct.row_labels)
    np.testing.assert_allclose(sub.V.to_dense(), direct.V.to_dense())
    assert (sub.nested is None) == (direct.nested is None) == (case == "multivariate")
    for a, b in zip(sub.encodings, direct.encodings):
        assert a.term == b.term  # labels, structure, levels and the number of groups left
        np.testing.assert_array_equal(a.codes, b.codes)
        assert a.groups == b.groups
    np.testing.assert_array_equal(sub.block_of_row, direct.block_of_row)
    param = matching_parameterization(full.param, sub)
    G = [0.3 * np.eye(t.q) + 0.1 for t in param.terms]
    for reml in (False, True):
        a, b = evaluate(sub, G, reml), evaluate(direct, G, reml)
        assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
        np.testing.assert_allclose(a.beta, b.beta, rtol=1e-12)


def test_refits_on_a_subset_match_fits_of_the_subset():
    school = bm.datasets.load("school")
    fit = bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study").fit()
    keep = school["district"].to_numpy() != 71
    sub = subset_design(fit.design, keep)
    refit = fit.refit(sub, matching_parameterization(fit.param, sub))
    direct = bm.MetaModel("effect ~ 1", data=school[keep], vi="var", random="~ 1 | district/study").fit()
    np.testing.assert_allclose(refit.coef, direct.coef, rtol=1e-9)
    np.testing.assert_allclose(refit.sigma2, direct.sigma2, rtol=1e-6)
    assert refit.components["n_levels"].tolist() == [10, 53]


def test_rebuild_with_another_column_is_the_model_with_that_moderator():
    dat = bm.datasets.load("bcg").assign(sei=lambda d: np.sqrt(d["logrrvar"]))
    full = bm.MetaModel("logrr ~ 1", data=dat, vi="logrrvar")
    d = full.design
    rebuilt = rebuild(d, X=np.column_stack([d.X, np.sqrt(d.V.diagonal())]), coef_names=["Intercept", "sei"])
    direct = bm.MetaModel("logrr ~ sei", data=dat, vi="logrrvar").design
    for reml in (False, True):
        a, b = evaluate(rebuilt, [np.array([[0.2]])], reml), evaluate(direct, [np.array([[0.2]])], reml)
        assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
        np.testing.assert_allclose(a.beta, b.beta, rtol=1e-12)
    with pytest.raises(TypeError, match="nested"):
        rebuild(d, nested=None)


def test_rows_to_keep_are_checked():
    assert positions_kept(4, [3, 1, 1]).tolist() == [1, 3]
    with pytest.raises(SpecificationError, match="keep: a boolean mask needs 4"):
        positions_kept(4, [True, False])
    with pytest.raises(SpecificationError, match="no rows left"):
        positions_kept(4, np.zeros(4, bool))
    with pytest.raises(SpecificationError, match=r"0\.\.3"):
        positions_kept(4, [0, 4])
    with pytest.raises(SpecificationError, match="integers"):
        positions_kept(4, [0.5])


def test_location_scale_models_are_not_subset():
    dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    model = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length")
    sub = subset_design(model.design, np.arange(10))
    with pytest.raises(SpecificationError, match="location-scale"):
        matching_parameterization(model.param, sub)


def test_labelled_rows_are_kept_with_their_labels():
    dat = bm.datasets.load("bcg").set_index(pd.Index([f"t{i}" for i in range(13)]))
    d = bm.MetaModel("logrr ~ 1", data=dat, vi="logrrvar").design
    sub = subset_design(d, [0, 5, 12])
    assert sub.row_labels.tolist() == ["t0", "t5", "t12"]
    assert sub.encodings[0].groups == ("t0", "t5", "t12")
    assert sub.positions.tolist() == [0, 5, 12]
