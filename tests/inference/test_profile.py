"""Profile-likelihood and Q-profile confidence intervals (fit.confint), profile curves
(fit.profile) and the variance-component rows of fit.table(), against metafor 3.8
(tests/reference/fixtures/inference.json, made by tests/reference/make_inference_reference.R).

The fixture's bounds are roots found to 1e-10 (rma.mv) / 1e-12 (rma.uni, rma.ls); ours
agree to about 1e-9 relative, so the bounds are held to 1e-5 relative here (the
guide's tolerance for profile bounds is 1e-3). Where metafor has no reference (profile
intervals at level 0.90, the standard model's profile-likelihood interval, a
correlation of a 3 x 3 unstructured matrix), a bound is checked independently: the
model refitted with the component fixed at the bound (``fixed=``) must lose exactly
qchisq(level, 1) / 2 of log-likelihood.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from cases import berkey_blocks
from reference_tools import FIXTURES, assert_close

import bayesmeta as bm
from bayesmeta.errors import BoundaryWarning
from bayesmeta.inference import component_intervals
from bayesmeta.inference.intervals import chi2_quantile
from bayesmeta.inference.profile import ProfileLikelihood, free_components

with open(FIXTURES / "inference.json") as _fh:
    REF = json.load(_fh)

#: Relative tolerance of profile and Q-profile bounds (the roots of both programs agree to ~1e-9).
BOUND_REL = 1e-5
ROWS = ["tau2", "tau", "I2", "H2"]


def _bcg(rows=None) -> pd.DataFrame:
    d = REF["datasets"]["bcg"]
    dat = pd.DataFrame({"yi": d["yi"], "vi": d["vi"], "ablat": d["ablat"]})
    return dat if rows is None else dat.iloc[rows].reset_index(drop=True)


BCG_FITS = {  # fixture key -> (formula, rows, method, test)
    "REML_95": ("yi ~ 1", None, "REML", "z"),
    "REML_90": ("yi ~ 1", None, "REML", "z"),
    "ML_95": ("yi ~ 1", None, "ML", "z"),
    "ML_90": ("yi ~ 1", None, "ML", "z"),
    "mods_REML_95": ("yi ~ ablat", None, "REML", "z"),
    "mods_ML_95": ("yi ~ ablat", None, "ML", "z"),
    "subset_1to3_REML_95": ("yi ~ 1", [0, 1, 2], "REML", "z"),
    "subset_2_3_4_10_REML_95": ("yi ~ 1", [1, 2, 3, 9], "REML", "z"),
    "knha_REML_95_fixed": ("yi ~ 1", None, "REML", "knha"),
}


def _school(method="REML", **kwargs):
    return bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study",
                        **kwargs).fit(method)


def _berkey(method="REML", **kwargs):
    dat = bm.datasets.load("berkey1998")
    return bm.MetaModel("yi ~ 0 + outcome + outcome:I(year - 1983)", data=dat, V=berkey_blocks(dat),
                        random="~ outcome | trial", struct="UN", **kwargs).fit(method)


def _writing(method):
    dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    return bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length").fit(method)


def _check_rows(ci: pd.DataFrame, ref: dict, rows: list[str]) -> None:
    random = ref["random"]
    assert list(ci.index) == rows
    assert_close(ci["estimate"], random["estimate"], "estimate")
    assert_close(ci["ci_lb"], random["ci_lb"], "ci_lb", rel=BOUND_REL)
    assert_close(ci["ci_ub"], random["ci_ub"], "ci_ub", rel=BOUND_REL)


def _signs(ci: pd.DataFrame, label: str) -> tuple[str, str]:
    return ci.attrs["lb_sign"][label], ci.attrs["ub_sign"][label]


# Q-profile intervals of the standard model (A_bcg.confint) -------------------------


@pytest.mark.parametrize("key", list(BCG_FITS))
def test_qprofile_matches_metafor(key):
    ref = REF["A_bcg"]["confint"][key]
    formula, rows, method, test = BCG_FITS[key]
    fit = bm.MetaModel(formula, data=_bcg(rows), vi="vi").fit(method, test=test)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ci = fit.confint(level=ref["level"])
    assert ci.attrs["method"] == "qprofile" and ci.attrs["level"] == ref["level"]
    _check_rows(ci, ref, ROWS)
    assert _signs(ci, "tau2") == (ref["lb_sign"], ref["ub_sign"])
    assert ci.attrs["ci_null"] == ref["ci_null"]
    null_warnings = [w for w in caught if issubclass(w.category, BoundaryWarning) and "null/empty" in str(w.message)]
    assert len(null_warnings) == int(ref["ci_null"])


def test_qprofile_edge_cases_as_metafor_reports_them():
    # Q(0) is below the upper quantile: the lower bound is 0, without a sign (the edge of the space)
    ci = bm.MetaModel("yi ~ 1", data=_bcg([0, 1, 2]), vi="vi").fit().confint()
    assert ci.loc["tau2", "ci_lb"] == 0 and ci.loc["I2", "ci_lb"] == 0 and ci.loc["H2", "ci_lb"] == 1
    assert _signs(ci, "tau2") == ("", "")
    # Q(0) is below the lower quantile too: the null set, reported as [0, 0] with "<" signs
    with pytest.warns(BoundaryWarning, match="null/empty set"):
        ci = bm.MetaModel("yi ~ 1", data=_bcg([1, 2, 3, 9]), vi="vi").fit().confint()
    assert ci.attrs["ci_null"] and _signs(ci, "tau2") == ("<", "<")
    np.testing.assert_array_equal(ci[["ci_lb", "ci_ub"]].to_numpy(), [[0, 0], [0, 0], [0, 0], [1, 1]])


def test_standard_model_profile_likelihood_interval():
    """method="profile" on the standard model: metafor's rows, and the fit with tau^2 fixed at
    each bound loses exactly qchisq(level, 1) / 2 of restricted log-likelihood."""
    dat = _bcg()
    fit = bm.MetaModel("yi ~ ablat", data=dat, vi="vi").fit()
    for level in (0.95, 0.90):
        ci = fit.confint(level=level, method="profile")
        assert list(ci.index) == ROWS and ci.attrs["method"] == "profile"
        for bound in ci.loc["tau2", ["ci_lb", "ci_ub"]]:
            fixed = bm.MetaModel("yi ~ ablat", data=dat, vi="vi", fixed={"tau2": bound}).fit()
            assert 2 * (fit.loglik - fixed.loglik) == pytest.approx(float(chi2_quantile(level, 1)), abs=1e-6)
    np.testing.assert_allclose(ci.loc["tau", ["ci_lb", "ci_ub"]], np.sqrt(ci.loc["tau2", ["ci_lb", "ci_ub"]]))


# profile-likelihood intervals (B_school, C_multivariate, E_location_scale) ----------


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_multilevel_profile_intervals_match_metafor(method):
    fit = _school(method)
    ci = fit.confint()
    assert ci.attrs["method"] == "profile"
    for i, label in enumerate(["sigma2[district]", "sigma2[district/study]"]):
        ref = REF["B_school"]["confint"][f"{method}_sigma2_{i + 1}"]
        _check_rows(ci.loc[[label]], {"random": {k: v[:1] for k, v in ref["random"].items()}}, [label])
        assert _signs(ci, label) == (ref["lb_sign"], ref["ub_sign"])


def test_multivariate_profile_intervals_match_metafor():
    fit = _berkey()
    ci = fit.confint()
    labels = ["tau2[outcome | trial: AL]", "tau2[outcome | trial: PD]", "rho[outcome | trial]"]
    assert list(ci.index) == labels
    for label, key in zip(labels, ["tau2_1", "tau2_2", "rho"]):
        ref = REF["C_multivariate"]["confint"][key]
        _check_rows(ci.loc[[label]], {"random": {k: v[:1] for k, v in ref["random"].items()}}, [label])
        assert _signs(ci, label) == (ref["lb_sign"], ref["ub_sign"])
    # the upper bound of rho reaches the edge of the parameter space: exactly 1, no sign
    assert ci.loc["rho[outcome | trial]", "ci_ub"] == 1.0


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_scale_coefficient_intervals_match_metafor_global_profile(method):
    """metafor's default optimizer finds a local optimum of the alpha-1 profile (upper bound
    -2.1687 under REML); the fixture holds the global profile's bound (-1.9956)."""
    ci = _writing(method).confint()
    assert list(ci.index) == ["alpha[Intercept]", "alpha[length]"]
    for j, label in enumerate(ci.index):
        ref = REF["E_location_scale"][method][f"confint_alpha_{j + 1}"]
        _check_rows(ci.loc[[label]], ref, [label])
        assert _signs(ci, label) == (ref["lb_sign"], ref["ub_sign"])
    if method == "REML":
        assert abs(ci.loc["alpha[Intercept]", "ci_ub"] - (-2.1687)) > 0.1


@pytest.mark.parametrize("level", [0.90, 0.95])
def test_profile_bounds_lose_the_chi_square_quantile(level):
    """At level 0.90 (no metafor reference) every bound is checked by an independent refit:
    the model with the component fixed at the bound (``fixed=``, fitted by the ordinary
    optimiser) loses qchisq(level, 1) / 2 of restricted log-likelihood."""
    crit = float(chi2_quantile(level, 1))
    school = bm.datasets.load("school")
    fit = _school()
    ci = fit.confint(level=level)
    for bound in ci.loc["sigma2[district]", ["ci_lb", "ci_ub"]]:
        refit = bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study",
                             fixed={"sigma2": [bound, None]}).fit()
        assert 2 * (fit.loglik - refit.loglik) == pytest.approx(crit, abs=1e-6)
    for bound in ci.loc["sigma2[district/study]", ["ci_lb", "ci_ub"]]:
        refit = bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study",
                             fixed={"sigma2": [None, bound]}).fit()
        assert 2 * (fit.loglik - refit.loglik) == pytest.approx(crit, abs=1e-6)
    berkey = _berkey()
    ci = berkey.confint(level=level)
    for bound in ci.loc["rho[outcome | trial]", ["ci_lb", "ci_ub"]]:
        if bound < 1:
            assert 2 * (berkey.loglik - _berkey(fixed={"rho": bound}).loglik) == pytest.approx(crit, abs=1e-6)
        else:  # the profile stays above the cut-off up to the edge rho = 1 (level 0.95)
            assert 2 * (berkey.loglik - _berkey(fixed={"rho": 0.999999}).loglik) < crit


def test_ninety_percent_intervals_lie_inside_ninety_five():
    fit = _writing("REML")
    wide, narrow = fit.confint(0.95), fit.confint(0.90)
    assert np.all(narrow["ci_lb"] > wide["ci_lb"]) and np.all(narrow["ci_ub"] < wide["ci_ub"])
    assert np.all(narrow["ci_lb"] < narrow["estimate"]) and np.all(narrow["estimate"] < narrow["ci_ub"])


def test_bounds_are_rechecked_from_the_fits_optimum():
    """The alpha-1 profile of the location-scale model has a second, local optimum (alpha-2 near
    -3.26, logLik -23.07 at alpha-1 = -2; the one metafor's default optimizer finds). A warm start
    on that branch must not decide the bound: it is re-checked from the fit's own optimum."""
    fit = _writing("REML")
    comp = free_components(fit)[0]
    prof = ProfileLikelihood(fit, comp)
    local = np.linalg.solve(fit.param.alpha_transform(), [-2.05, -3.26])
    base = prof._base(-2.05)
    prof.solved[-2.05] = prof._maximise(base, prof._to_u(local, base))
    assert prof.solved[-2.05][0] < -20  # the local branch
    bound = prof.bound("upper", 0.95, comp.se)
    assert_close(bound.upper, REF["E_location_scale"]["REML"]["confint_alpha_1"]["random"]["ci_ub"], "ci_ub",
                 rel=BOUND_REL)


def _three_outcomes(categories) -> pd.DataFrame:
    rng = np.random.default_rng(12)
    rows = []
    for study in range(30):
        u = rng.multivariate_normal(np.zeros(3), [[0.10, 0.05, -0.03], [0.05, 0.08, 0.02], [-0.03, 0.02, 0.06]])
        for j, outcome in enumerate("ABC"):
            if rng.uniform() < 0.85:
                vi = rng.uniform(0.01, 0.05)
                rows.append({"study": study, "outcome": outcome, "vi": vi,
                             "yi": 0.1 * j + u[j] + rng.normal(0, np.sqrt(vi))})
    dat = pd.DataFrame(rows)
    dat["outcome"] = pd.Categorical(dat["outcome"], categories=categories)
    return dat


@pytest.mark.slow
def test_unstructured_correlation_of_later_levels():
    """rho(C, B) of a 3 x 3 UN matrix is not one coordinate of the fit's parameters (canonical
    partial correlations): it is profiled in a re-ordered chart. With the levels ordered C, B, A
    the same correlation is a coordinate of the ordinary chart: both must agree."""
    fits = [bm.MetaModel("yi ~ 0 + outcome", data=_three_outcomes(cats), vi="vi", random="~ outcome | study",
                         struct="UN").fit() for cats in (list("ABC"), list("CBA"))]
    assert fits[0].loglik == pytest.approx(fits[1].loglik, abs=1e-8)
    profiles = [fit.confint().loc[label] for fit, label in zip(fits, ["rho[outcome | study: B, C]",
                                                                       "rho[outcome | study: C, B]"])]
    assert_close(profiles[0].to_numpy(), profiles[1].to_numpy(), "rho(B, C)", rel=1e-6)
    assert profiles[0]["ci_lb"] < profiles[0]["estimate"] < profiles[0]["ci_ub"]


# profile curves (B_school.profile) --------------------------------------------------


@pytest.mark.parametrize("key, label", [("sigma2_1", "sigma2[district]"), ("sigma2_2", "sigma2[district/study]")])
def test_profile_curve_matches_metafor(key, label):
    ref = REF["B_school"]["profile"][key]
    fit = _school()
    curve = fit.profile(label)
    assert curve.attrs["component"] == label and curve.attrs["loglik"] == pytest.approx(ref["maxll"], abs=1e-8)
    assert_close(curve["value"], ref["grid"], "grid", rel=1e-8)
    np.testing.assert_allclose(curve["loglik"], ref["ll"], rtol=0, atol=1e-6)
    assert_close(curve["beta[Intercept]"], ref["beta"], "beta")


def test_profile_arguments():
    fit = _berkey()
    curve = fit.profile("rho", points=5, bounds=(0.9, -0.5))
    assert curve["value"].tolist() == pytest.approx([-0.5, -0.15, 0.2, 0.55, 0.9])
    assert np.all(curve["loglik"] <= fit.loglik + 1e-8)
    assert curve["loglik"].idxmax() == 3  # the estimate 0.561 lies between 0.55 and 0.9
    default = fit.profile("tau2[outcome | trial: PD]", points=2)
    assert default["value"].tolist() == pytest.approx([0.0204466 / 4, 0.1], rel=1e-5)
    with pytest.raises(bm.SpecificationError, match="component: 'tau2' is ambiguous"):
        fit.profile("tau2")
    with pytest.raises(bm.SpecificationError, match="component: 'sigma2' is not a free component"):
        fit.profile("sigma2")
    with pytest.raises(bm.SpecificationError, match="bounds:"):
        fit.profile("rho", bounds=(-1.5, 0.5))
    with pytest.raises(bm.SpecificationError, match="points: expected an integer >= 2"):
        fit.profile("rho", points=1)


def test_standard_model_profile_range_follows_metafor():
    fit = bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi").fit()
    curve = fit.profile("tau2", points=3)
    q = fit.confint()
    assert curve["value"].iloc[0] == pytest.approx(q.loc["tau2", "ci_lb"])
    assert curve["value"].iloc[-1] == pytest.approx(q.loc["tau2", "ci_ub"])


# the result table and compare --------------------------------------------------------


def test_table_fills_variance_rows_of_the_standard_model():
    ref = REF["A_bcg"]
    for key, method in (("REML", "REML"), ("ML", "ML")):
        fit = bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi").fit(method)
        row = fit.table().loc["tau2[row]"]
        assert_close(row["se"], ref["fits"][key]["se_tau2"], "se.tau2")
        ci = ref["confint"][f"{key}_95"]["random"]
        assert_close(row[["ci_lb", "ci_ub"]].to_numpy(float), [ci["ci_lb"][0], ci["ci_ub"][0]], "Q-profile CI",
                     rel=BOUND_REL)


#: metafor's rma.mv(..., cvvc = TRUE) SEs of the variance components (sqrt(diag(fit$vvc))),
#: from the inverse Hessian of the (restricted) log-likelihood on the variance scale, computed
#: with metafor 3.8-1 and control = list(optimizer = "bobyqa", rhoend = 1e-12) (the fits of
#: tests/reference/make_inference_reference.R): school REML and ML, Berkey (mods, UN) REML.
CVVC = {
    ("school", "REML"): [0.0355102238813, 0.0110921659912],
    ("school", "ML"): [0.0307422842262, 0.0111396776025],
    ("berkey", "REML"): [0.0347073261408, 0.0225226948325, 0.5022306532410],
}


@pytest.mark.parametrize("case", list(CVVC))
def test_table_fills_variance_rows_with_hessian_se_and_profile_ci(case):
    name, method = case
    fit = _school(method) if name == "school" else _berkey(method)
    table = fit.table()
    rows = [i for i in table.index if not i.startswith("beta[")]
    # numDeriv's Hessian in metafor and ours differ in the 7th digit
    assert_close(table.loc[rows, "se"], CVVC[case], "se", rel=1e-5)
    ci = fit.confint()
    np.testing.assert_array_equal(table.loc[rows, ["ci_lb", "ci_ub"]].to_numpy(), ci[["ci_lb", "ci_ub"]].to_numpy())


def test_table_keeps_fixed_and_boundary_components_without_se():
    fit = _school(fixed={"sigma2": [None, 0.02]})
    table = fit.table()
    assert np.isnan(table.loc["sigma2[district/study]", ["se", "ci_lb", "ci_ub"]].to_numpy(float)).all()
    assert list(fit.confint().index) == ["sigma2[district]"]  # fixed components have no row
    assert np.isfinite(table.loc["sigma2[district]", ["se", "ci_lb", "ci_ub"]].to_numpy(float)).all()
    boundary = bm.MetaModel("yi ~ 1", data=_bcg([0, 1, 2]), vi="vi").fit("ML")
    assert boundary.tau2.iloc[0] < 1e-8
    assert boundary.table().loc["tau2[row]", "ci_lb"] == 0


def test_intervals_are_computed_once(monkeypatch):
    fit = _school()
    first = fit.table()

    def fail(*args, **kwargs):
        raise AssertionError("a bound was computed again")

    monkeypatch.setattr(component_intervals.ProfileLikelihood, "bound", fail)
    monkeypatch.setattr(component_intervals, "hessian_se", fail)
    pd.testing.assert_frame_equal(fit.table(), first)
    table = bm.compare(fit, fit)
    assert not table.isna().any().any()
    assert fit.confint()["ci_lb"].tolist() == first["ci_lb"].iloc[1:].tolist()
    mine = fit.confint()
    mine.loc["sigma2[district]", "ci_lb"] = -1.0  # a returned frame is the caller's
    assert fit.confint().loc["sigma2[district]", "ci_lb"] == first.loc["sigma2[district]", "ci_lb"]


@pytest.mark.slow
def test_compare_shows_intervals_in_every_row_on_both_sides():
    model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    post = model.fit("laplace", draws=400, random_seed=3)
    table = bm.compare(model.fit(), post)
    assert list(table.index) == ["beta[Intercept]", "sigma2[district]", "sigma2[district/study]"]
    assert not table.isna().any().any()


# errors ------------------------------------------------------------------------------


def test_confint_errors_name_the_argument():
    school = _school()
    with pytest.raises(bm.SpecificationError, match="method: 'qprofile' is for the standard"):
        school.confint(method="qprofile")
    with pytest.raises(bm.SpecificationError, match="method: expected 'profile' or 'qprofile'"):
        school.confint(method="wald")
    with pytest.raises(bm.SpecificationError, match="level: expected a number between 0 and 1"):
        school.confint(level=95)
    fe = bm.MetaModel("yi ~ 1", data=_bcg(), vi="vi").fit("FE")
    with pytest.raises(bm.SpecificationError, match="confint: the model has no estimated tau"):
        fe.confint()
    with pytest.raises(bm.SpecificationError, match="profile likelihoods need an ML or REML fit"):
        fe.confint(method="profile")
    fixed = _school(fixed={"sigma2": [0.05, 0.03]})
    with pytest.raises(bm.SpecificationError, match="no estimated variance components"):
        fixed.confint()
    assert np.isnan(fe.table().loc["tau2[row]", "se"])


def test_bound_at_the_end_of_the_search_interval_is_signed():
    """A variance the data barely bound (estimated as 0 next to sampling variances of 100): its
    upper bound lies beyond metafor's search interval [0, 10] and is reported as that end with
    the sign ">" and a warning; the lower bound is the edge 0, without a sign."""
    dat = pd.DataFrame({"yi": [0.0, 0.1, -0.1], "vi": [100.0, 100.0, 100.0], "g": ["a", "b", "c"]})
    fit = bm.MetaModel("yi ~ 1", data=dat, vi="vi", random="~ 1 | g").fit()
    assert fit.sigma2.iloc[0] == 0
    with pytest.warns(BoundaryWarning, match="upper bound lies beyond the searched interval"):
        ci = fit.confint()
    label = ci.index[0]
    assert ci.loc[label, "ci_lb"] == 0 and ci.loc[label, "ci_ub"] == 10
    assert _signs(ci, label) == ("", ">")
