"""Cluster-robust inference (fit.robust) against metafor's robust() and clubSandwich.

Fixture: tests/reference/fixtures/inference.json (tests/reference/make_inference_reference.R),
entries A_bcg, B_school, C_multivariate and D_categorical ``robust`` (metafor's robust(): CR1,
CR0, and CR2 with clubSandwich = TRUE) and ``clubSandwich`` (vcovCR, coef_test, conf_int and
Wald_test HTZ called directly). Beyond the fixture, two independent dense implementations
check what metafor and clubSandwich were not asked: CR1 with clusters that split the
model's independent blocks (metafor's full-weight scores), and CR2 of a location-scale and
a location-coscale fit with clubSandwich's own J x J algorithm transcribed.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from reference_tools import FIXTURES, assert_close

import bayesmeta as bm
from bayesmeta.errors import MissingDataWarning, RobustTestWarning, SpecificationError

with open(FIXTURES / "inference.json") as _fh:
    REF = json.load(_fh)
DATA = REF["datasets"]
#: Absolute tolerance for p-values and covariances (all references are far above it, or exactly 0).
TINY = 1e-10


# the fixture's models -------------------------------------------------------

def _bcg() -> pd.DataFrame:
    return pd.DataFrame({k: DATA["bcg"][k] for k in ("trial", "ablat", "yi", "vi")})


def _kon() -> pd.DataFrame:
    kon = bm.datasets.load("konstantopoulos2011")
    kon["period"] = DATA["konstantopoulos"]["period"]
    return kon


def _fit(case: str):
    """The fit of a fixture entry, as the R script specifies it."""
    if case in ("bcg_mods", "bcg_reml"):
        return bm.MetaModel("yi ~ ablat" if case == "bcg_mods" else "yi ~ 1", data=_bcg(), vi="vi").fit()
    if case == "school":
        return bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
                            random="~ 1 | district/study").fit()
    if case == "berkey":
        b = DATA["berkey"]
        berkey = pd.DataFrame({k: b[k] for k in ("trial", "outcome", "year", "yi")})
        return bm.MetaModel("yi ~ 0 + outcome + outcome:I(year - 1983)", data=berkey, V=np.array(b["V"]),
                            random="~ outcome | trial", struct="UN").fit()
    formula = "yi ~ period" if case == "kon" else "yi ~ 0 + period"
    return bm.MetaModel(formula, data=_kon(), vi="vi", random="~ 1 | district/school").fit()


_FITS: dict = {}


def fit_of(case: str):
    if case not in _FITS:
        _FITS[case] = _fit(case)
    return _FITS[case]


def cluster_of(case: str):
    """metafor's cluster argument: BCG trials as a Series; the others by grouping-factor name."""
    return _bcg()["trial"] if case.startswith("bcg") else "trial" if case == "berkey" else "district"


def _check_names(rob, rownames):
    """Our coefficients are metafor's, in its order (Intercept = intrcpt, outcome[AL] = outcomeAL,
    period[T.1989-1995] = period1989-1995)."""
    ours = [n.replace("[T.", "").replace("[", "").replace("]", "") for n in rob.coef.index]
    assert ["intrcpt" if n == "Intercept" else n for n in ours] == rownames


def _check_vcov(rob, ref):
    _check_names(rob, ref["rownames"])
    assert_close(rob.vcov.to_numpy(), np.array(ref["values"]), "vcov", abs_zero=TINY)


def _check_wald(test, ref):
    """A Wald test against clubSandwich's Wald_test(..., test = "HTZ")."""
    assert test.test == "HTZ" and test.df == ref["df_num"]
    assert_close(test.statistic, ref["Fstat"], "Fstat", abs_zero=TINY)
    assert_close(test.delta, ref["delta"], "delta", abs_zero=TINY)
    assert_close(test.df_resid, ref["df_denom"], "df_denom")
    if ref["p_val"] is None:
        assert np.isnan(test.pvalue)
    else:
        assert_close(test.pvalue, ref["p_val"], "p_val", abs_zero=TINY)


def _quiet_wald(rob, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RobustTestWarning)
        return rob.wald_test(**kwargs)


# metafor's robust() -----------------------------------------------------------

ROBUST = [("A_bcg", "CR1_mods", "bcg_mods", "CR1"), ("A_bcg", "CR0_mods", "bcg_mods", "CR0"),
          ("A_bcg", "CR2_mods", "bcg_mods", "CR2"), ("A_bcg", "CR1_intercept", "bcg_reml", "CR1"),
          ("A_bcg", "CR2_intercept", "bcg_reml", "CR2"), ("B_school", "CR2", "school", "CR2"),
          ("B_school", "CR1", "school", "CR1"), ("C_multivariate", "CR2", "berkey", "CR2"),
          ("D_categorical", "treatment_CR2", "kon", "CR2"), ("D_categorical", "cell_means_CR2", "kon_cm", "CR2"),
          ("D_categorical", "treatment_CR1", "kon", "CR1")]


@pytest.mark.parametrize("section, entry, case, adjust", ROBUST, ids=[f"{s}.{e}" for s, e, _, _ in ROBUST])
def test_matches_metafor_robust(section, entry, case, adjust):
    ref = REF[section]["robust"][entry]
    assert ref["vbest"] == adjust
    rob = fit_of(case).robust(cluster_of(case), adjust)
    coef = ref["coef"]
    _check_names(rob, coef["rownames"])
    assert rob.n_clusters == ref["n_clusters"]
    assert_close(rob.coef.to_numpy(), coef["estimate"], "coef")
    assert_close(rob.se.to_numpy(), coef["se"], "se")
    assert_close(rob.tval.to_numpy(), coef["tval"], "tval")
    assert_close(rob.df.to_numpy(), coef["df"], "df")
    assert_close(rob.pval.to_numpy(), coef["pval"], "pval", abs_zero=TINY)
    assert_close(rob.ci.to_numpy(), np.column_stack([coef["ci_lb"], coef["ci_ub"]]), "ci")
    _check_vcov(rob, ref["vcov"])
    # metafor's omnibus test: QM = F statistic on QMdf; HTZ of the non-intercept coefficients under CR2
    test = _quiet_wald(rob)
    assert_close(test.statistic, ref["QM"], "QM", abs_zero=TINY)
    assert test.df == ref["QMdf"][0]
    assert_close(test.df_resid, ref["QMdf"][1], "QMdf")
    if ref["QMp"] is None:
        assert np.isnan(test.pvalue)
    else:
        assert_close(test.pvalue, ref["QMp"], "QMp", abs_zero=TINY)


# clubSandwich called directly ----------------------------------------------------

CLUB = [("A_bcg", None, "bcg_mods"), ("B_school", None, "school"), ("C_multivariate", None, "berkey"),
        ("D_categorical", "treatment", "kon"), ("D_categorical", "cell_means", "kon_cm")]


def _club(section, part):
    ref = REF[section]["clubSandwich"]
    return ref if part is None else ref[part]


@pytest.mark.parametrize("section, part, case", CLUB, ids=[f"{s}.{p or ''}" for s, p, _ in CLUB])
def test_matches_clubsandwich_vcovcr_coef_test_conf_int(section, part, case):
    ref = _club(section, part)
    rob = fit_of(case).robust(cluster_of(case), "CR2")
    _check_vcov(rob, ref["vcovCR_CR2"]["vcov"])
    ct = ref["coef_test_CR2"]
    assert ct["vcov_type"] == "CR2"
    assert_close(rob.coef.to_numpy(), ct["beta"], "beta")
    assert_close(rob.se.to_numpy(), ct["SE"], "SE")
    assert_close(rob.tval.to_numpy(), ct["tstat"], "tstat")
    assert_close(rob.df.to_numpy(), ct["df_Satt"], "df_Satt")
    assert_close(rob.pval.to_numpy(), ct["p_Satt"], "p_Satt", abs_zero=TINY)
    if "conf_int_CR2" in ref:
        ci = ref["conf_int_CR2"]
        assert_close(rob.ci.to_numpy(), np.column_stack([ci["CI_L"], ci["CI_U"]]), "conf_int")


WALD = [  # (section, part, key, case, hypotheses: coefficient positions or an L matrix)
    ("A_bcg", None, "Wald_test_HTZ", "bcg_mods", [1]),
    ("C_multivariate", None, "Wald_test_HTZ_slopes", "berkey", [2, 3]),
    ("C_multivariate", None, "Wald_test_HTZ_all", "berkey", [0, 1, 2, 3]),
    ("D_categorical", "treatment", "contrasts", "kon", [1, 2]),
    ("D_categorical", "cell_means", "all_zero", "kon_cm", [0, 1, 2]),
    ("D_categorical", "cell_means", "all_equal", "kon_cm", np.array([[-1.0, 1, 0], [-1, 0, 1]])),
]


@pytest.mark.parametrize("section, part, key, case, hypotheses", WALD, ids=[w[2] + "-" + w[3] for w in WALD])
def test_matches_clubsandwich_wald_test_htz(section, part, key, case, hypotheses):
    ref = _club(section, part)
    ref = ref[key] if key in ref else ref["Wald_test_HTZ"][key]
    rob = fit_of(case).robust(cluster_of(case), "CR2")
    if isinstance(hypotheses, list):
        test = _quiet_wald(rob, terms=[rob.coef.index[i] for i in hypotheses])
    else:
        test = _quiet_wald(rob, L=hypotheses)
    _check_wald(test, ref)


def test_htz_without_denominator_df_warns_and_gives_no_p_value():
    # Berkey: 4 coefficients, 5 trials; clubSandwich's nu - q + 1 = -0.549 (F = 0, p = NA)
    rob = fit_of("berkey").robust("trial")
    with pytest.warns(RobustTestWarning, match="denominator degrees of freedom"):
        test = rob.wald_test()
    assert test.statistic == 0 and test.delta == 0 and np.isnan(test.pvalue) and test.df_resid < 0
    assert "p-val = NA" in str(test)


# beyond the fixture: independent dense implementations -----------------------------

def test_cr1_with_clusters_splitting_blocks_uses_full_weights():
    """Study clusters split the district blocks of the school model: metafor's scores
    (X'W)[:, c] e_c with the full W, here from a dense Sigma built independently."""
    school = bm.datasets.load("school")
    fit = fit_of("school")
    s2 = fit.sigma2.to_numpy()
    same_d = school["district"].to_numpy()[:, None] == school["district"].to_numpy()[None, :]
    Sigma = np.diag(school["var"].to_numpy() + s2[1]) + s2[0] * same_d
    X = np.ones((len(school), 1))
    W = np.linalg.inv(Sigma)
    bread = np.linalg.inv(X.T @ W @ X)
    e = school["effect"].to_numpy() - X @ fit.coef.to_numpy()
    study = school["district"].astype(str) + "/" + school["study"].astype(str)
    scores = np.array([(X.T @ W)[:, (study == c).to_numpy()] @ e[(study == c).to_numpy()]
                       for c in study.unique()])
    J, p = len(scores), 1
    expected = bread @ scores.T @ scores @ bread * J / (J - p)
    rob = fit.robust("district/study", "CR1")
    assert rob.n_clusters == J == 56
    assert_close(rob.vcov.to_numpy(), expected, "CR1 vcov", rel=1e-10, abs_zero=0)
    assert_close(rob.df.to_numpy(), [J - p], "df")


def _clubsandwich_dense(X, y, Sigma, beta, cluster, L):
    """clubSandwich's CR2, Satterthwaite and HTZ (vcov_CR, get_GH, get_P_array, Wald_testing)
    transcribed with its J x J arrays, for inverse-variance weights and U = X."""
    groups = [np.flatnonzero(cluster == c) for c in pd.unique(cluster)]
    W = np.linalg.inv(Sigma)
    M = np.linalg.inv(X.T @ W @ X)
    r = y - X @ beta
    E, Gs, Hs = [], [], []
    for g in groups:
        Th = Sigma[np.ix_(g, g)]
        R = np.linalg.cholesky(Th).T  # R'R = Theta (R's chol())
        Xc, Wc = X[g], np.linalg.inv(Th)
        Gm = R @ (np.eye(len(g)) - Xc @ M @ Xc.T @ Wc) @ Th @ R.T
        w, U = np.linalg.eigh(Gm)
        A = R.T @ (U * np.where(w > 1e-12, w, np.inf) ** -0.5) @ U.T @ R
        Ec = Xc.T @ Wc @ A
        E.append(Ec @ r[g])
        Gs.append(M @ Ec @ R.T)
        Hs.append(M @ Ec @ Xc @ np.linalg.cholesky(M))
    meat = sum(np.outer(u, u) for u in E)
    vcov = M @ meat @ M
    J = len(groups)

    def nu(C):
        q = C.shape[0]
        G = [C @ g for g in Gs]
        H = np.stack([C @ h for h in Hs], axis=-1)  # q x p x J
        P = np.zeros((q, q, J, J))
        for i in range(q):
            for j in range(q):
                P[i, j] = -H[i].T @ H[j] + np.diag([g[i] @ g[j] for g in G])
        Omega = np.trace(P, axis1=2, axis2=3)
        w, U = np.linalg.eigh(Omega)
        T = U @ np.diag(w ** -0.5) @ U.T
        B = np.einsum("si,ijcd,tj->stcd", T, P, T)
        var = np.array([[np.sum(B[s, t] * B[t, s]) + np.sum(B[s, s] * B[t, t]) for t in range(q)]
                        for s in range(q)])
        return q * (q + 1) / var.sum()

    df = np.array([nu(np.eye(X.shape[1])[[i]]) for i in range(X.shape[1])])
    b = L @ beta
    Q = b @ np.linalg.solve(L @ vcov @ L.T, b)
    v, q = nu(L), L.shape[0]
    return vcov, df, max((v - q + 1) / v, 0) * Q / q, v - q + 1


def test_cr2_of_a_location_scale_fit_matches_clubsandwich_algorithm():
    """Location-scale model (heterogeneity log-linear in length), clusters of unequal sizes
    by grade: the per-cluster reduction equals clubSandwich's J x J algorithm."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length", "meta"])
    fit = bm.MetaModel("yi ~ length + meta", data=dat, vi="vi", scale="~ length").fit()
    tau2 = np.exp(fit.alpha["Intercept"] + fit.alpha["length"] * dat["length"].to_numpy())
    Sigma = np.diag(dat["vi"].to_numpy() + tau2)
    X = np.column_stack([np.ones(len(dat)), dat["length"], dat["meta"]])
    L = np.eye(3)[1:]
    vcov, df, F, df2 = _clubsandwich_dense(X, dat["yi"].to_numpy(), Sigma, fit.coef.to_numpy(),
                                          dat["grade"].to_numpy(), L)
    rob = fit.robust(dat["grade"])
    assert rob.n_clusters == dat["grade"].nunique()
    assert_close(rob.vcov.to_numpy(), vcov, "vcov", rel=1e-8, abs_zero=0)
    assert_close(rob.df.to_numpy(), df, "Satterthwaite df", rel=1e-8)
    test = rob.wald_test(L=L)
    assert_close(test.statistic, F, "HTZ F", rel=1e-8)
    assert_close(test.df_resid, df2, "HTZ df", rel=1e-8)


def test_cr2_of_a_location_coscale_fit_matches_clubsandwich_algorithm():
    """Bivariate location-coscale model (SDs and correlation by habitat, a fifth of the outcomes missing):
    CR2 by study and by habitat-and-outcome-count clusters equals clubSandwich's J x J algorithm on the
    marginal covariance built pair by pair in the test (clubSandwich cannot fit the model itself)."""
    from coscale_cases import dense_sigma, simulate

    dat, blocks = simulate(7, n_studies=40, missing=0.2)
    fit = bm.MetaModel("yi ~ 0 + outcome + habitat", data=dat, V=blocks, random="~ outcome | study",
                       struct="UN", scale={"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat",
                                                               "rho": "~ habitat"}}).fit()
    Sigma = dense_sigma(dat, blocks, fit.alpha.to_numpy(), fit.zeta.to_numpy())
    X = np.column_stack([dat["outcome"] == "A", dat["outcome"] == "B", dat["habitat"] == "terrestrial"]).astype(float)
    L = np.eye(3)[[2]]
    size = dat.groupby("study")["yi"].transform("size").astype(str)
    for cluster in (dat["study"].to_numpy(), (dat["habitat"] + size).to_numpy()):
        vcov, df, F, df2 = _clubsandwich_dense(X, dat["yi"].to_numpy(), Sigma, fit.coef.to_numpy(), cluster, L)
        rob = fit.robust(cluster)
        assert_close(rob.vcov.to_numpy(), vcov, "vcov", rel=1e-7, abs_zero=0)
        assert_close(rob.df.to_numpy(), df, "Satterthwaite df", rel=1e-7)
        test = rob.wald_test(L=L)
        assert_close(test.statistic, F, "HTZ F", rel=1e-7)
        assert_close(test.df_resid, df2, "HTZ df", rel=1e-7)


def test_cr2_when_one_cluster_alone_estimates_a_coefficient():
    """A moderator that is nonzero in one cluster only gives that cluster leverage 1: its
    G_c is singular and the inverse square root drops the null space, as clubSandwich's."""
    dat = _bcg()
    band = np.digitize(dat["ablat"], [20, 35, 45])
    dat["north"] = (band == 3).astype(float)
    fit = bm.MetaModel("yi ~ ablat + north", data=dat, vi="vi").fit()
    tau2 = fit.tau2.iloc[0]
    X = np.column_stack([np.ones(len(dat)), dat["ablat"], dat["north"]])
    L = np.eye(3)[1:]
    vcov, df, F, df2 = _clubsandwich_dense(X, dat["yi"].to_numpy(), np.diag(dat["vi"].to_numpy() + tau2),
                                          fit.coef.to_numpy(), band, L)
    rob = fit.robust(band)
    assert_close(rob.vcov.to_numpy(), vcov, "vcov", rel=1e-8, abs_zero=0)
    assert_close(rob.df.to_numpy(), df, "Satterthwaite df", rel=1e-8)
    test = rob.wald_test(L=L)
    assert_close([test.statistic, test.df_resid], [F, df2], "HTZ", rel=1e-8)


# arguments and results ---------------------------------------------------------------

def test_cluster_given_by_name_series_or_array_agree_and_follow_dropped_rows():
    dat = _bcg()
    dat.loc[4, "ablat"] = np.nan
    with pytest.warns(MissingDataWarning):
        fit = bm.MetaModel("yi ~ ablat", data=dat, vi="vi").fit()
    by_series = fit.robust(dat["trial"].iloc[::-1])  # aligned by label, not position
    by_data_rows = fit.robust(dat["trial"].to_numpy())
    by_used_rows = fit.robust(list(dat["trial"].drop(index=4)))
    assert by_series.n_clusters == 12
    for other in (by_data_rows, by_used_rows):
        assert np.allclose(other.vcov, by_series.vcov, rtol=1e-14, atol=0) and other.clusters == by_series.clusters


def test_cluster_by_name_equals_the_values():
    school = bm.datasets.load("school")
    by_name = fit_of("school").robust("district")
    by_values = fit_of("school").robust(school["district"])
    assert by_name.clusters == by_values.clusters
    assert np.allclose(by_name.vcov, by_values.vcov, rtol=1e-14, atol=0)
    assert np.allclose(by_name.df, by_values.df, rtol=1e-14, atol=0)


def test_table_follows_the_result_contract_and_level():
    rob = fit_of("bcg_mods").robust(_bcg()["trial"], level=0.9)
    table = rob.table()
    assert list(table.columns) == ["estimate", "se", "ci_lb", "ci_ub", "tval", "df", "pval"]
    assert list(table.index) == ["beta[Intercept]", "beta[ablat]"]
    wide = fit_of("bcg_mods").robust(_bcg()["trial"])
    assert (rob.ci["ci_ub"] - rob.ci["ci_lb"] < wide.ci["ci_ub"] - wide.ci["ci_lb"]).all()
    assert "CR2; 13 clusters" in str(rob) and "Test of ablat (HTZ)" in str(rob)


@pytest.mark.parametrize("kwargs, message", [
    ({"cluster": "trial", "adjust": "CR3"}, "adjust: expected one of CR0, CR1, CR2"),
    ({"cluster": "study"}, "cluster: 'study' is not a grouping factor .*'district', 'district/study'"),
    ({"cluster": pd.Series([1, 2], index=[0, 1])}, r"cluster: no value for rows 2, 3, .*\(54 in all\)"),
    ({"cluster": np.arange(10)}, r"cluster: expected one value per row of the data \(56\)"),
    ({"cluster": np.zeros((56, 2))}, "cluster: expected a grouping column name"),
    ({"cluster": np.r_[np.nan, np.arange(55)]}, "cluster: missing values in rows 0"),
    ({"cluster": np.zeros(56)}, "at least two clusters"),
    ({"cluster": "district/study"}, r"cluster: CR2 needs the random effects .* nested .* rows 0, 1, 2"),
    ({"cluster": "district", "level": 95}, "level: expected a number between 0 and 1"),
])
def test_errors_name_the_argument(kwargs, message):
    with pytest.raises(SpecificationError, match=message):
        fit_of("school").robust(**kwargs)


def test_wald_test_arguments():
    rob = fit_of("kon_cm").robust("district")
    with pytest.raises(SpecificationError, match="L: the 2 hypotheses are linearly dependent"):
        rob.wald_test(L=[[1, -1, 0], [2, -2, 0]])
    with pytest.raises(SpecificationError, match="terms: unknown coefficient"):
        rob.wald_test(terms=["period"])
    default = rob.wald_test()  # no intercept: every coefficient, as metafor's QM
    assert default.terms == list(rob.coef.index) and default.df == 3


def test_cr1_needs_more_clusters_than_coefficients():
    fit = fit_of("berkey")
    with pytest.raises(SpecificationError, match=r"cluster: CR1 needs more clusters \(2\) than coefficients \(4\)"):
        fit.robust(np.repeat([1, 2], 5), "CR1")
