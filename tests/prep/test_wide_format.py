"""bm.wide_to_long: the metafor fixtures (berkey, smoking) and exact constructions for
fibrinogen, hsls, hyp and p53."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from reference_tools import ABS_IC, assert_close, assert_matches_metafor, load_fixture

import bayesmeta as bm

BERKEY = load_fixture("berkey")["un"]
SMOKING = load_fixture("smoking")["consistency"]


def _assert_blocks(ours, expected, rel=1e-12):
    assert len(ours) == len(expected)
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a, np.atleast_2d(b), rtol=rel, atol=0)


def berkey_long():
    return bm.wide_to_long(bm.datasets.load("berkey98"), ["PD", "AL"], vech=["var_PD", "cov_PD_AL", "var_AL"])


def test_berkey98_matches_metafor_blocks_and_fit():
    long, V = berkey_long()
    _assert_blocks(V, BERKEY["V_blocks"])
    assert long.columns.tolist() == ["study", "outcome", "y", "pubyear", "npat"]
    assert long["outcome"].cat.ordered and long["outcome"].cat.categories.tolist() == ["PD", "AL"]
    assert long["outcome"].astype(str).tolist() == ["PD", "AL"] * 5
    fit = bm.MetaModel("y ~ 0 + outcome", data=long, V=V, random="~ outcome | study", struct="UN").fit()
    ours = dict(zip(fit.coef.index, fit.coef.to_numpy()))
    assert_close([ours["outcome[AL]"], ours["outcome[PD]"]], BERKEY["coef"], "coef")
    assert abs(fit.loglik - BERKEY["loglik"]) < ABS_IC


def test_berkey98_blocks_equal_berkey1998_long_blocks():
    """The same blocks as tests/test_reference_blog.py builds from berkey1998's v1i, v2i."""
    dat = bm.datasets.load("berkey1998")
    expected = [g[["v1i", "v2i"]].to_numpy() for _, g in dat.groupby("trial", sort=False)]
    _assert_blocks(berkey_long()[1], expected)


def smoking_long():
    return bm.wide_to_long(bm.datasets.load("smoking"), {"B": "yB", "C": "yC", "D": "yD"}, id="study",
                           vech=["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"])


def test_smoking_matches_metafor_long_rows_blocks_and_fit():
    long, V = smoking_long()
    assert [[s, str(o)] for s, o in long[["study", "outcome"]].to_numpy()] == [list(r) for r in SMOKING["long_rows"]]
    _assert_blocks(V, SMOKING["V_blocks"])
    assert long.columns.tolist()[:4] == ["study", "outcome", "y", "design"]
    assert "SBB" not in long.columns and "yB" not in long.columns
    fit = bm.MetaModel("y ~ 0 + outcome", data=long, V=V, random="~ outcome | study", struct="CS",
                       fixed={"rho": 0.5}).fit("REML")
    assert_matches_metafor(fit, SMOKING)


def _vech_from_names(row: pd.Series, names: list[str], parse) -> np.ndarray:
    pairs = [parse(n) for n in names]
    k = max(max(p) for p in pairs) + 1
    out = np.zeros((k, k))
    for name, (a, b) in zip(names, pairs):
        out[a, b] = out[b, a] = row[name]
    return out


@pytest.mark.parametrize("name, id, y_cols, vech, parse", [
    ("fibrinogen", "cohort", ["b2", "b3", "b4", "b5"],
     ["V_2_2", "V_2_3", "V_2_4", "V_2_5", "V_3_3", "V_3_4", "V_3_5", "V_4_4", "V_4_5", "V_5_5"],
     lambda n: (int(n[2]) - 2, int(n[4]) - 2)),
    ("hsls", "race", ["b1", "b2", "b3"], ["V11", "V12", "V13", "V22", "V23", "V33"],
     lambda n: (int(n[1]) - 1, int(n[2]) - 1)),
])
def test_vech_layouts_exact(name, id, y_cols, vech, parse):
    wide = bm.datasets.load(name)
    long, V = bm.wide_to_long(wide, y_cols, id=id, vech=vech)
    k = len(y_cols)
    assert len(long) == k * len(wide) and long.columns.tolist() == [id, "outcome", "y"]
    np.testing.assert_array_equal(long["y"].to_numpy(), wide[y_cols].to_numpy().ravel())
    np.testing.assert_array_equal(long[id].to_numpy(), np.repeat(wide[id].to_numpy(), k))
    _assert_blocks(V, [_vech_from_names(r, vech, parse) for _, r in wide.iterrows()], rel=0)


def test_hyp_se_and_correlation_column():
    wide = bm.datasets.load("hyp")
    long, V = bm.wide_to_long(wide, {"SBP": "sbp", "DBP": "dbp"}, id="study", se=["sbp_se", "dbp_se"], cor="rho")
    assert long.columns.tolist() == ["study", "outcome", "y", "ish"]
    assert long["outcome"].astype(str).tolist()[:2] == ["SBP", "DBP"]
    expected = [np.array([[s1 ** 2, r * s1 * s2], [r * s1 * s2, s2 ** 2]])
                for s1, s2, r in wide[["sbp_se", "dbp_se", "rho"]].to_numpy()]
    _assert_blocks(V, expected)


def test_p53_variances_with_missing_outcomes():
    wide = bm.datasets.load("p53")
    long, V = bm.wide_to_long(wide, ["y1", "y2"], id="study", var=["V1", "V2"])
    present = wide[["y1", "y2"]].notna().to_numpy()
    assert len(long) == present.sum() == 9
    assert long["outcome"].astype(str).tolist() == ["y1", "y2", "y2", "y2", "y1", "y2", "y2", "y1", "y2"]
    expected = [np.diag(v[p]) for v, p in zip(wide[["V1", "V2"]].to_numpy(), present)]
    _assert_blocks(V, expected, rel=0)
    assert [b.shape for b in V] == [(2, 2), (1, 1), (1, 1), (2, 2), (1, 1), (2, 2)]


def test_constant_correlation_and_matrix():
    wide = bm.datasets.load("hyp")
    _, by_number = bm.wide_to_long(wide, ["sbp", "dbp"], id="study", se=["sbp_se", "dbp_se"], cor=0.7)
    _, by_matrix = bm.wide_to_long(wide, ["sbp", "dbp"], id="study", se=["sbp_se", "dbp_se"],
                                   cor=[[1.0, 0.7], [0.7, 1.0]])
    _assert_blocks(by_number, by_matrix, rel=0)
    assert by_number[0][0, 1] == pytest.approx(0.7 * 0.72 * 0.27)


def test_study_without_outcomes_is_dropped_with_a_warning():
    wide = bm.datasets.load("p53")
    wide.loc[2, "y2"] = np.nan
    with pytest.warns(bm.MissingDataWarning, match=r"dropped 1 studies without any outcome: 3\."):
        long, V = bm.wide_to_long(wide, ["y1", "y2"], id="study", var=["V1", "V2"])
    assert 3 not in long["study"].tolist() and len(V) == 5


def test_row_labels_as_study_and_custom_names():
    wide = bm.datasets.load("berkey98").set_index(pd.Index(list("abcde")))
    long, _ = bm.wide_to_long(wide, ["PD", "AL"], vech=["var_PD", "cov_PD_AL", "var_AL"],
                              outcome_name="measure", value_name="effect")
    assert long.columns.tolist()[:3] == ["study", "measure", "effect"]
    assert long["study"].tolist()[:3] == ["a", "a", "b"]


def _hyp():
    return bm.datasets.load("hyp")


def berkey_model():
    return bm.datasets.load("berkey98")


@pytest.mark.parametrize("make, kwargs, message", [
    (berkey_model, dict(outcomes=["PD", "AL"], vech=["var_PD", "var_AL"]),
     r"vech: 2 outcomes need k\(k\+1\)/2 = 3 columns"),
    (berkey_model, dict(outcomes=["PD", "XX"], vech=["var_PD", "cov_PD_AL", "var_AL"]), "outcomes: column 'XX' not found"),
    (berkey_model, dict(outcomes=["PD", "AL"], vech=["var_PD", "nope", "var_AL"]), "vech: column 'nope' not found"),
    (_hyp, dict(outcomes=["sbp", "dbp"], id="study", var=["sbp_se", "dbp_se"], se=["sbp_se", "dbp_se"]),
     "give exactly one covariance layout, vech= or var= or se=; got var, se"),
    (_hyp, dict(outcomes=["sbp", "dbp"], id="study"), "got none"),
    (berkey_model, dict(outcomes=["PD", "AL"], vech=["var_PD", "cov_PD_AL", "var_AL"], cor=0.5), "cor: only used with var"),
    (_hyp, dict(outcomes=["sbp", "dbp"], id="study", se=["sbp_se"]), r"se: expected 2 columns"),
    (_hyp, dict(outcomes=["sbp", "dbp"], id="study", se=["sbp_se", "dbp_se"], cor="nope"), "cor: column 'nope'"),
    (_hyp, dict(outcomes=["sbp", "dbp"], id="study", se=["sbp_se", "dbp_se"], cor=1.5), "cor: 1.5 is not"),
    (_hyp, dict(outcomes=["sbp", "dbp"], se=["sbp_se", "dbp_se"]), "id: data has a column 'study'"),
    (_hyp, dict(outcomes=["sbp", "dbp"], id="ish", se=["sbp_se", "dbp_se"]), "id: column 'ish' must identify each row"),
])
def test_layout_errors(make, kwargs, message):
    with pytest.raises(bm.SpecificationError, match=message):
        bm.wide_to_long(make(), **kwargs)


def test_missing_variance_of_present_outcome_names_study_and_column():
    wide = bm.datasets.load("p53")
    wide.loc[0, "V1"] = np.nan
    with pytest.raises(bm.SpecificationError, match=r"study 1: missing variances of present outcomes \['y1'\] \(columns V1\)"):
        bm.wide_to_long(wide, ["y1", "y2"], id="study", var=["V1", "V2"])


def test_missing_covariance_names_the_columns():
    wide = bm.datasets.load("hyp")
    wide.loc[1, "rho"] = np.nan
    with pytest.raises(bm.SpecificationError, match=r"study 2: missing covariances .* \(columns sbp_se, dbp_se and cor column 'rho'\)"):
        bm.wide_to_long(wide, ["sbp", "dbp"], id="study", se=["sbp_se", "dbp_se"], cor="rho")


def test_non_positive_variance_and_not_positive_definite():
    wide = bm.datasets.load("berkey98")
    wide.loc[3, "var_AL"] = -0.001
    with pytest.raises(bm.SpecificationError, match=r"study 3: variances must be positive \(columns var_AL\)"):
        bm.wide_to_long(wide, ["PD", "AL"], vech=["var_PD", "cov_PD_AL", "var_AL"])
    wide = bm.datasets.load("berkey98")
    wide.loc[1, "cov_PD_AL"] = 0.01
    with pytest.raises(bm.SpecificationError,
                       match=r"study 1: the covariance block of outcomes \['PD', 'AL'\] is not positive definite "
                             r"\(columns cov_PD_AL; var_AL; var_PD\)"):
        bm.wide_to_long(wide, ["PD", "AL"], vech=["var_PD", "cov_PD_AL", "var_AL"])
    # dropping the outcome that made the block indefinite leaves a valid block
    wide.loc[1, "AL"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, V = bm.wide_to_long(wide, ["PD", "AL"], vech=["var_PD", "cov_PD_AL", "var_AL"])
    assert V[1].shape == (1, 1)
