"""Influence diagnostics, Cook's distances and leave-one-out refits against metafor.

Fixture: tests/reference/fixtures/inference.json (tests/reference/make_inference_reference.R):
A_bcg.influence (influence.rma.uni, REML with and without the moderator ablat),
A_bcg.leave1out and B_school.cooks_distance (cooks.distance.rma.mv per district and per
row). Beyond the fixture, values printed by metafor 3.8-1 for the calls quoted beside them
(Knapp-Hartung and FE fits, and a data set with an influential study, where the fixture's
flags are all false), and refits compared with fits of the reduced data.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from reference_tools import FIXTURES, assert_close

import bayesmeta as bm
from bayesmeta.errors import SpecificationError
from bayesmeta.inference.influence import cluster_codes

with open(FIXTURES / "inference.json") as _fh:
    REF = json.load(_fh)
INFLUENCE_COLUMNS = ["rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "QE_del", "hat", "weight"]


def _bcg() -> pd.DataFrame:
    """dat <- escalc('RR', ...) of the fixture: trial, ablat, yi, vi."""
    return pd.DataFrame({k: REF["datasets"]["bcg"][k] for k in ("trial", "ablat", "yi", "vi")})


def _school_fit():
    return bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study").fit()


@pytest.mark.parametrize("case, formula, coefs", [("REML", "yi ~ 1", ["intrcpt"]),
                                                  ("mods_REML", "yi ~ ablat", ["intrcpt", "ablat"])])
def test_influence_matches_metafor(case, formula, coefs):
    ref = REF["A_bcg"]["influence"][case]
    inf = bm.MetaModel(formula, data=_bcg(), vi="vi").fit().influence(progressbar=False)
    names = [c.replace("intrcpt", "Intercept") for c in coefs]
    assert list(inf.columns) == INFLUENCE_COLUMNS + [f"dfbs[{n}]" for n in names] + ["influential"]
    assert inf.index.tolist() == list(range(13))
    for column in INFLUENCE_COLUMNS:
        assert_close(inf[column], ref["inf"][column], column)
    for coef, name in zip(coefs, names):
        assert_close(inf[f"dfbs[{name}]"], ref["dfbs"][coef], f"dfbs {coef}")
    assert inf["influential"].tolist() == ref["is_infl"]
    assert ref["inf_flag"] == [""] * 13


def test_an_influential_study_is_flagged_as_metafor_flags_it():
    dat = _bcg()
    dat.loc[7, "yi"] = 1.5
    inf = bm.MetaModel("yi ~ 1", data=dat, vi="vi").fit().influence(progressbar=False)
    # d2 <- dat; d2$yi[8] <- 1.5; influence(rma(yi, vi, data = d2)): is.infl TRUE for study 8 only
    assert np.flatnonzero(inf["influential"]).tolist() == [7]
    assert_close(inf.loc[[0, 7], ["rstudent", "dffits", "cook_d", "hat"]].to_numpy(),
                 [[-0.27628720300355653, -0.06582068884687345, 0.00454879825077982, 0.06305091064021430],
                  [4.12484885374853683, 1.23890283925169120, 0.54599658397152617, 0.08907933411216076]], "outlier")


def test_influence_of_a_fixed_effects_fit():
    inf = bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi").fit(method="FE").influence(progressbar=False)
    # influence(rma(yi, vi, data = dat, method = "FE")): rows 1 and 8; which(is.infl) = 4, 6, 8
    assert_close(inf.loc[[0, 7], ["rstudent", "dffits", "cook_d", "cov_r", "QE_del", "dfbs[Intercept]"]].to_numpy(),
                 [[-8.06495713109908e-01, -5.73863122697002e-02, 3.29318883591554e-03, 1.00506305340034e+00,
                   1.51582572747109e+02, -5.73863122697002e-02],
                  [9.17862716223338e+00, 7.71509950769771e+00, 5.95227604136775e+01, 1.70652511689018e+00,
                   6.79858114990849e+01, 7.71509950769772e+00]], "FE")
    assert (inf["tau2_del"] == 0).all()
    assert np.flatnonzero(inf["influential"]).tolist() == [3, 5, 7]


def test_influence_under_knapp_hartung_scales_by_the_refits_factor():
    inf = bm.MetaModel("yi ~ ablat", data=_bcg(), vi="vi").fit(test="knha").influence(progressbar=False)
    # influence(rma(yi, vi, mods = ~ ablat, data = dat, test = "knha")), rows 1, 7 and 13
    columns = ["rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "dfbs[Intercept]", "dfbs[ablat]"]
    expected = [[0.193600002906877566, 0.054832222299012717, 0.003697835517210177, 1.365557371271150844,
                 0.085883097005566386, 0.005578840194547815, 0.019175224852537479],
                [-2.603911002381765094, -0.624910602328810905, 0.280375609597396935, 0.294230553465278932,
                 0.040476033452442821, -0.639151201801386293, 0.412725458853449578],
                [1.828215238537855170, 0.370883709663223260, 0.110342322713656890, 0.508426051148858194,
                 0.044356483941462223, 0.058058996078932355, 0.118553241256916714]]
    assert_close(inf.loc[[0, 6, 12], columns].to_numpy(), expected, "knha")


def test_refits_use_the_fits_tau2_estimator():
    inf = bm.MetaModel("yi ~ ablat", data=_bcg(), vi="vi").fit(method="DL").influence(progressbar=False)
    # influence(rma(yi, vi, mods = ~ ablat, data = dat, method = "DL")), rows 1 and 7:
    # rstudent, cook.d, tau2.del, dfbs ablat
    assert_close(inf.loc[[0, 6], ["rstudent", "cook_d", "tau2_del", "dfbs[ablat]"]].to_numpy(),
                 [[0.22554524658020364, 0.00345724226170949, 0.06738315813090719, 0.02662944968950302],
                  [-2.68001180764514269, 0.35940068062556441, 0.03845945691658592, 0.40028908245533518]], "DL")
    out = bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi").fit(method="PM").leave1out(progressbar=False)
    # leave1out(rma(yi, vi, data = dat, method = "PM", control = list(tol = 1e-12))), rows 1 and 7
    assert_close(out.loc[[0, 6], ["estimate", "tau2", "I2"]].to_numpy(),
                 [[-0.708512483665968, 0.355758936442236, 93.575203029848268],
                  [-0.655334261830958, 0.294464531445522, 92.312546006269869]], "PM")


def test_leave1out_matches_metafor():
    ref = REF["A_bcg"]["leave1out"]
    out = bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi").fit().leave1out(progressbar=False)
    assert list(out.columns) == ["estimate", "se", "zval", "pval", "ci_lb", "ci_ub", "Q", "Qp", "tau2", "I2", "H2"]
    for column in out.columns:
        assert_close(out[column], ref[column], column, abs_zero=1e-30 if column == "Qp" else 1e-6)


def test_leave1out_under_knapp_hartung_and_fe():
    out = bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi").fit(test="knha").leave1out(progressbar=False)
    # leave1out(rma(yi, vi, data = dat, test = "knha")), rows 1 and 8: estimate, se, tval, pval, ci.lb, ci.ub
    assert "tval" in out.columns
    assert_close(out.loc[[0, 7], ["estimate", "se", "tval", "pval", "ci_lb", "ci_ub"]].to_numpy(),
                 [[-0.70708378469925925, 0.19400273843194665, -3.64471032942297368, 0.00385620581313451,
                   -1.13408093300511381, -0.28008663639340464],
                  [-0.79476760451552064, 0.18229510655058503, -4.35978573179626583, 0.00113670035569801,
                   -1.19599642879068258, -0.39353878024035871]], "knha")
    fe = bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi").fit(method="FE").leave1out(progressbar=False)
    # leave1out(rma(yi, vi, data = dat, method = "FE")): no tau2; estimate, I2, H2 of rows 1 and 8
    assert "tau2" not in fe.columns
    assert_close(fe.loc[[0, 7], ["estimate", "I2", "H2"]].to_numpy(),
                 [[-0.427961089641878, 92.743229118856732, 13.780233886100781],
                  [-0.742737063040948, 83.820153415175369, 6.180528318098627]], "FE")


def test_cooks_distance_per_district_matches_metafor():
    ref = REF["B_school"]["cooks_distance"]["cluster_district"]
    cd = _school_fit().cooks_distance(cluster="district", progressbar=False)
    assert [str(c) for c in cd.index] == ref["rownames"]
    assert cd.index.name == "district"
    assert_close(cd, ref["cook_d"], "cook_d per district")


def test_cooks_distance_per_row_matches_metafor():
    ref = REF["B_school"]["cooks_distance"]["per_row"]
    cd = _school_fit().cooks_distance(progressbar=False)
    assert len(cd) == 56
    assert_close(cd, ref["cook_d"], "cook_d per row")


def test_clusters_given_by_values_are_aligned_by_label():
    school = bm.datasets.load("school")
    design = _school_fit().design
    codes, labels = cluster_codes(design, "district")
    assert labels.tolist() == sorted(school["district"].unique())
    np.testing.assert_array_equal(labels[codes], school["district"])
    shuffled = school["district"].sample(frac=1.0, random_state=3)
    for given in (shuffled, school["district"].to_numpy(), school["district"].tolist()):
        other_codes, other_labels = cluster_codes(design, given)
        np.testing.assert_array_equal(other_codes, codes)
        assert other_labels.tolist() == labels.tolist()
    rows, row_labels = cluster_codes(design, None)
    assert rows.tolist() == list(range(56)) and row_labels.tolist() == list(range(56))


def test_a_cluster_left_out_is_the_fit_of_the_data_without_it():
    school = bm.datasets.load("school")
    fit = _school_fit()
    cd = fit.cooks_distance(cluster=school["district"], progressbar=False)
    without = bm.MetaModel("effect ~ 1", data=school[school["district"] != 71], vi="var",
                           random="~ 1 | district/study").fit()
    d = fit.coef.to_numpy() - without.coef.to_numpy()
    assert cd.loc[71] == pytest.approx(float(d @ np.linalg.solve(fit.vcov.to_numpy(), d)), rel=1e-6)


def test_rows_whose_removal_makes_a_coefficient_inestimable_are_nan():
    dat = _bcg().assign(group=["a"] * 12 + ["b"])
    inf = bm.MetaModel("yi ~ group", data=dat, vi="vi").fit().influence(progressbar=False)
    assert inf.loc[12, ["rstudent", "cook_d", "dfbs[group[T.b]]"]].isna().all()
    assert not inf.loc[:11, ["rstudent", "cook_d", "dfbs[group[T.b]]"]].isna().any().any()
    # metafor: hat = 1 for the only row of group b, so is.infl is TRUE there (and only there)
    assert inf["hat"].iloc[12] == 1.0
    assert np.flatnonzero(inf["influential"]).tolist() == [12]


def test_errors_name_what_is_wrong():
    school = _school_fit()
    with pytest.raises(SpecificationError, match="standard random-effects model"):
        school.influence()
    with pytest.raises(SpecificationError, match="without moderators"):
        bm.MetaModel("yi ~ ablat", data=_bcg(), vi="vi").fit().leave1out()
    with pytest.raises(SpecificationError, match="'school' is not a grouping factor"):
        school.cooks_distance(cluster="school")
    with pytest.raises(SpecificationError, match="cluster: expected one value per row"):
        school.cooks_distance(cluster=[1, 2, 3])
    with pytest.raises(SpecificationError, match="at least 3 rows"):
        bm.MetaModel("yi ~ 1", data=_bcg().head(2), vi="vi").fit().influence()
    dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    ls = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length").fit()
    with pytest.raises(SpecificationError, match="location-scale"):
        ls.cooks_distance()
