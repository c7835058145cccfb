"""fit.predict(): mean effects with confidence and prediction intervals.

Against metafor's ``predict`` (tests/reference/fixtures/inference.json:
A_bcg.predict, B_school.predict, C_multivariate.predict with tau2.levels), and,
where metafor has no counterpart (a new study in an existing cluster, random
slopes, scale models), against dense n x n computations (``Dense`` of
test_blups.py).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from cases import MODELS, berkey_blocks, model_case, simulated
from inference_cases import BCG, Dense, location_scale_fit
from reference_tools import FIXTURES, assert_close
from scipy import stats

import bayesmeta as bm

with open(FIXTURES / "inference.json") as fh:
    REF = json.load(fh)
COLUMNS = ["pred", "se", "ci_lb", "ci_ub", "pi_lb", "pi_ub"]
Z975 = stats.norm.ppf(0.975)
NEWMODS = pd.DataFrame({"ablat": [10, 30, 50]})
BCG_CASES = {  # fixture entry: (formula, test, newdata, transf)
    "REML": ("yi ~ 1", "z", None, None),
    "REML_exp": ("yi ~ 1", "z", None, np.exp),
    "mods_REML_fitted": ("yi ~ ablat", "z", None, None),
    "mods_REML_new": ("yi ~ ablat", "z", NEWMODS, None),
    "mods_REML_new_exp": ("yi ~ ablat", "z", NEWMODS, np.exp),
    "knha_REML": ("yi ~ 1", "knha", None, None),
    "mods_knha_REML_new": ("yi ~ ablat", "knha", NEWMODS, None),
}


def _school():
    return bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")


def _berkey(struct="UN"):
    dat = bm.datasets.load("berkey1998")
    return bm.MetaModel("yi ~ 0 + outcome + outcome:I(year - 1983)", data=dat, V=berkey_blocks(dat),
                        random="~ outcome | trial", struct=struct).fit()


def _assert_frame(out: pd.DataFrame, ref: dict, what: str) -> None:
    assert out.columns.tolist() == COLUMNS
    for c in COLUMNS:
        expected = np.array([np.nan if v is None else v for v in ref[c]], dtype=float)
        if np.isnan(expected).all():
            assert out[c].isna().all(), f"{what} {c}: expected NaN"
        else:
            assert_close(out[c].to_numpy(), expected, f"{what} {c}")


@pytest.mark.parametrize("case", list(BCG_CASES))
def test_standard_model_matches_metafor(case):
    formula, test, newdata, transf = BCG_CASES[case]
    fit = bm.MetaModel(formula, data=BCG, vi="vi").fit(test=test)
    _assert_frame(fit.predict(newdata, transf=transf), REF["A_bcg"]["predict"][case], case)


def test_default_rows_and_labels():
    fit = bm.MetaModel("yi ~ 1", data=BCG, vi="vi").fit()
    assert fit.predict().index.tolist() == ["new study"]
    mods = bm.MetaModel("yi ~ ablat", data=BCG.set_index("trial"), vi="vi").fit()
    assert mods.predict().index.tolist() == list(range(1, 14))
    assert mods.predict(NEWMODS.set_axis(["a", "b", "c"])).index.tolist() == ["a", "b", "c"]


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_three_level_model_matches_metafor(method):
    _assert_frame(_school().fit(method).predict(), REF["B_school"]["predict"][method], method)


def test_structured_levels_match_metafor():
    fit = _berkey()
    ref = REF["C_multivariate"]["predict"]
    rows = pd.DataFrame({"outcome": ["AL", "PD", "AL", "PD"], "year": [1983, 1983, 1990, 1990]})
    _assert_frame(fit.predict(rows), ref, "levels from newdata")
    _assert_frame(fit.predict(rows, tau2_levels=ref["tau2_level"]), ref, "tau2_levels")
    # tau2_levels take precedence over the inner column: every row now adds tau^2 of AL
    all_al = fit.predict(rows, tau2_levels="AL")
    tau2 = fit.tau2.to_numpy()
    half = Z975 * np.sqrt(all_al["se"] ** 2 + tau2[0])
    assert_close(all_al["pi_ub"] - all_al["pred"], half, "PI with tau2 of AL")
    assert not np.allclose(all_al["pi_ub"], fit.predict(rows)["pi_ub"])


def test_unknown_structured_level():
    rows = pd.DataFrame({"year": [1983]})
    un = bm.MetaModel("yi ~ 1 + I(year - 1983)", data=bm.datasets.load("berkey1998"),
                      V=berkey_blocks(bm.datasets.load("berkey1998")), random="~ outcome | trial", struct="UN").fit()
    with pytest.warns(UserWarning, match="outcome"):
        out = un.predict(rows)
    assert out[["pi_lb", "pi_ub"]].isna().all().all() and out["ci_lb"].notna().all()
    cs = bm.MetaModel("yi ~ 1 + I(year - 1983)", data=bm.datasets.load("berkey1998"),
                      V=berkey_blocks(bm.datasets.load("berkey1998")), random="~ outcome | trial", struct="CS").fit()
    out = cs.predict(rows)  # every level has the same tau^2
    assert_close(out["pi_ub"] - out["pred"], Z975 * np.sqrt(out["se"] ** 2 + cs.tau2.iloc[0]), "CS PI")


def test_new_study_in_an_existing_district_against_dense():
    fit = _school().fit()
    dense = Dense(fit)
    codes = np.array([0, 3, 10])
    districts = [fit.design.encodings[0].groups[c] for c in codes]
    out = fit.predict(pd.DataFrame({"district": districts}), existing="district")
    a = np.zeros((3, dense.Z.shape[1]))
    a[np.arange(3), codes] = 1.0
    pred, se = dense.predict(np.ones((3, 1)), a)
    assert_close(out["pred"], pred, "pred", rel=1e-7)
    assert_close(out["se"], se, "se", rel=1e-7)
    assert_close(out["ci_ub"] - out["pred"], Z975 * se, "ci", rel=1e-7)
    study_var = fit.sigma2.iloc[1]
    assert_close(out["pi_ub"] - out["pred"], Z975 * np.sqrt(se ** 2 + study_var), "pi", rel=1e-7)
    # an existing study (its district implied) is the row's BLUP, with nothing left to add
    rows = bm.datasets.load("school").iloc[[0, 20]]
    study = fit.predict(rows, existing="district/study")
    blup = fit.blup().iloc[[0, 20]]
    assert_close(study[["pred", "se"]].to_numpy(), blup[["pred", "se"]].to_numpy(), "existing study = blup")
    assert_close(study["pi_lb"], study["ci_lb"], "no new variance")


def test_existing_study_of_the_standard_model_is_its_blup():
    fit = bm.MetaModel("yi ~ ablat", data=BCG, vi="vi").fit()
    out = fit.predict(BCG.iloc[[2, 7]], existing="row")
    assert_close(out[["pred", "se"]].to_numpy(), fit.blup().iloc[[2, 7]][["pred", "se"]].to_numpy(), "blup")
    with pytest.raises(bm.SpecificationError, match="cluster\\(s\\) 40"):
        fit.predict(BCG.iloc[[2]].set_axis([40]), existing="row")


def test_numeric_levels_of_a_heterogeneous_structure():
    fit = model_case(MODELS["HAR"], simulated(1)).fit()
    tau2 = fit.tau2.to_numpy()
    out = fit.predict(pd.DataFrame({"x": [0.0, 0.0]}), tau2_levels=[2, 0])
    assert_close(out["pi_ub"] - out["pred"], Z975 * np.sqrt(out["se"] ** 2 + tau2[[2, 0]]), "PI with tau2 of time")
    one = fit.predict(pd.DataFrame({"x": [0.0]}), tau2_levels=1)
    assert_close(one["pi_ub"] - one["pred"], Z975 * np.sqrt(one["se"] ** 2 + tau2[1]), "one level")


def test_existing_trial_of_a_multivariate_model_against_dense():
    fit = _berkey()
    dense = Dense(fit)
    rows = pd.DataFrame({"outcome": ["AL", "PD", "PD"], "year": [1983, 1990, 1985], "trial": [1, 1, 5]})
    out = fit.predict(rows, existing="trial")
    x0 = np.array([[1, 0, 0, 0], [0, 1, 0, 7], [0, 1, 0, 2]], dtype=float)
    a = np.zeros((3, dense.Z.shape[1]))
    a[[0, 1, 2], [0 * 2 + 0, 0 * 2 + 1, 4 * 2 + 1]] = 1.0  # effects (trial, level), levels AL, PD
    pred, se = dense.predict(x0, a)
    assert_close(out["pred"], pred, "pred", rel=1e-7)
    assert_close(out["se"], se, "se", rel=1e-7)
    assert_close(out["pi_lb"], out["ci_lb"], "no new variance")
    dat = bm.datasets.load("berkey1998")
    pooled = bm.MetaModel("yi ~ 1", data=dat, V=berkey_blocks(dat), random="~ outcome | trial", struct="UN").fit()
    with pytest.raises(bm.SpecificationError, match="level of 'outcome'"):
        pooled.predict(rows.drop(columns="outcome"), existing="trial")


def test_random_slopes_new_and_existing_clusters_against_dense():
    fit = model_case(MODELS["slopes UN"], simulated(1)).fit()
    dense = Dense(fit)
    G = fit.param.covariances(fit.estimate.theta)[0]
    rows = pd.DataFrame({"x": [-1.0, 0.5], "cluster": [2, 7]})
    z0 = np.column_stack([np.ones(2), rows["x"]])
    new = fit.predict(rows)
    assert_close(new["pred"], z0 @ fit.coef.to_numpy(), "pred")
    assert_close(new["pi_ub"] - new["pred"], Z975 * np.sqrt(new["se"] ** 2 + np.einsum("ji,ik,jk->j", z0, G, z0)),
                 "PI adds z0' G z0")
    out = fit.predict(rows, existing="cluster")
    a = np.zeros((2, dense.Z.shape[1]))
    for j, c in enumerate(rows["cluster"]):
        a[j, 2 * c:2 * c + 2] = z0[j]
    pred, se = dense.predict(z0, a)
    assert_close(out["pred"], pred, "pred", rel=1e-7)
    assert_close(out["se"], se, "se", rel=1e-7)


def test_location_scale_new_and_existing_clusters_against_dense():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)
        fit = location_scale_fit()
    dense = Dense(fit)
    rows = pd.DataFrame({"x": [0.3, -1.0], "w": [0.0, 1.0], "z": [1.0, -0.5], "district": [1, 4]})
    x0 = np.column_stack([np.ones(2), rows["x"]])
    district = fit.predict_variance(rows, term="district")["pred"].to_numpy()
    study = fit.predict_variance(rows, term="study")["pred"].to_numpy()
    new = fit.predict(rows)
    assert_close(new["pi_ub"] - new["pred"], Z975 * np.sqrt(new["se"] ** 2 + district + study), "new clusters")
    out = fit.predict(rows, existing="district")
    a = np.zeros((2, dense.Z.shape[1]))
    a[[0, 1], rows["district"]] = 1.0
    pred, se = dense.predict(x0, a)
    assert_close(out["pred"], pred, "pred", rel=1e-7)
    assert_close(out["se"], se, "se", rel=1e-7)
    assert_close(out["pi_ub"] - out["pred"], Z975 * np.sqrt(se ** 2 + study), "existing district", rel=1e-7)


def test_t_tests_use_t_quantiles():
    fit = _school().fit(test="t")
    out = fit.predict(level=0.9)
    crit = stats.t(fit.k - fit.p).ppf(0.95)
    assert_close(out["ci_ub"] - out["pred"], crit * out["se"], "ci")
    assert_close(out["pi_ub"] - out["pred"], crit * np.sqrt(out["se"] ** 2 + fit.sigma2.sum()), "pi")


def test_bad_arguments_are_named():
    fit = _school().fit()
    school = bm.datasets.load("school")
    with pytest.raises(bm.SpecificationError, match="existing: 'county'"):
        fit.predict(existing="county")
    with pytest.raises(bm.SpecificationError, match="cluster\\(s\\) 999"):
        fit.predict(pd.DataFrame({"district": [11, 999]}), existing="district")
    with pytest.raises(bm.SpecificationError, match="'district' not found"):
        fit.predict(pd.DataFrame({"year": [1]}), existing="district")
    with pytest.raises(bm.SpecificationError, match="tau2_levels"):
        fit.predict(tau2_levels="AL")
    nested_apart = bm.MetaModel("effect ~ 1", data=school.assign(sid=school["study"]), vi="var",
                                random=["~ 1 | district", "~ 1 | sid"]).fit()
    assert nested_apart.design.nested is not None
    with pytest.raises(bm.SpecificationError, match="do not lie in"):
        nested_apart.predict(pd.DataFrame({"district": [11], "sid": [30]}), existing=["district", "sid"])
    berkey = _berkey()
    rows = pd.DataFrame({"outcome": ["AL"], "year": [1983]})
    with pytest.raises(bm.SpecificationError, match="tau2_levels: level\\(s\\) \\['XX'\\]"):
        berkey.predict(rows, tau2_levels="XX")
    with pytest.raises(bm.SpecificationError, match="expected one level or 1"):
        berkey.predict(rows, tau2_levels=["AL", "PD"])
    with pytest.raises(bm.SpecificationError, match="gamma2_levels"):
        berkey.predict(rows, gamma2_levels="AL")
    with pytest.raises(bm.SpecificationError, match="transf"):
        berkey.predict(rows, transf=1)
    with pytest.raises(bm.SpecificationError, match="newdata"):
        berkey.predict(pd.DataFrame({"outcome": ["AL"]}))


@pytest.mark.slow
def test_same_columns_and_rows_as_the_posterior():
    model = _school()
    post = model.fit("laplace", draws=200, random_seed=1)
    fit = model.fit()
    for newdata in (None, pd.DataFrame({"x": [0, 1]}, index=["a", "b"])):
        ours, theirs = fit.predict(newdata), post.predict(newdata, random_seed=1)
        assert ours.columns.tolist() == theirs.columns.tolist()
        assert ours.index.tolist() == theirs.index.tolist()
