"""Tests of scale coefficients: likelihood-ratio tests (bm.lrt) and permutation tests
(fit.permutation_test) against metafor's anova() and permutest().

The exact permutation test (six studies: 2^6 sign flips of the outcomes, 6! = 720
permutations of the scale moderator, all enumerated by both programs) is
deterministic, so its p-values must equal metafor's exactly. The random test on the
full data is compared within Monte Carlo error: two independent estimates of the same
p-value from 1000 permutations each differ by less than 4 standard errors
(sqrt(2 p (1 - p) / 1000)).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from location_scale_cases import fit_case
from reference_tools import ABS_IC, FIXTURES, assert_close

import bayesmeta as bm
from bayesmeta.errors import MissingDataWarning
from bayesmeta.inference.permutation import _count_distinct, _distinct_permutations

with open(FIXTURES / "location_scale.json") as _fh:
    _ALL = json.load(_fh)
FIXTURE = _ALL["models"]
LRTS = {(t["full"], t["reduced"]): t for t in _ALL["lrt"]}


def _writing(formula, scale, method="REML"):
    return fit_case(formula, "bangertdrowns2004", "vi", scale, method)[1]


def _full_data_fixture(name):
    return _ALL[name]


@pytest.mark.parametrize("full, reduced, specs", [
    ("bd_length_REML", "bd_length_scale1_REML", (("yi ~ length", "~ length", "REML"), ("yi ~ length", "~ 1", "REML"))),
    ("bd_length_ML", "bd_null_ML", (("yi ~ length", "~ length", "ML"), ("yi ~ 1", "~ 1", "ML"))),
    ("bd_grade_REML", "bd_grade_scale1_REML", (("yi ~ C(grade)", "~ C(grade)", "REML"),
                                               ("yi ~ C(grade)", "~ 1", "REML"))),
])
def test_lrt_matches_metafor_anova(full, reduced, specs):
    dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"]) if "length" in full else None
    fits = []
    for formula, scale, method in specs:
        data = dat if dat is not None else bm.datasets.load("bangertdrowns2004")
        fits.append(bm.MetaModel(formula, data=data, vi="vi", scale=scale).fit(method))
    test = bm.lrt(*fits)
    ref = LRTS[(full, reduced)]
    assert test.df == ref["df"]
    assert_close(test.statistic, ref["LRT"], "LRT")
    assert_close(test.pvalue, ref["pval"], "LRT p-value")
    assert test.table.loc["Full", "df"] == ref["parms_full"] and test.table.loc["Reduced", "df"] == ref["parms_reduced"]
    for column, name in (("AIC", "aic"), ("logLik", "loglik")):
        assert abs(test.table.loc["Full", column] - FIXTURE[full][name]) < ABS_IC
        assert abs(test.table.loc["Reduced", column] - FIXTURE[reduced][name]) < ABS_IC
    assert "LRT" in str(test)


def test_lrt_of_a_scale_model_against_the_standard_model():
    """The standard model (one tau^2) is the scale model '~ 1': same LRT as against it."""
    dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    full = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length").fit()
    standard = bm.MetaModel("yi ~ length", data=dat, vi="vi").fit()
    ref = LRTS[("bd_length_REML", "bd_length_scale1_REML")]
    assert_close(bm.lrt(full, standard).statistic, ref["LRT"], "LRT")


def test_lrt_refuses_models_that_are_not_comparable():
    dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length", "meta"])
    full = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length").fit()
    with pytest.raises(bm.SpecificationError, match="REML likelihoods of models with different fixed effects"):
        bm.lrt(full, bm.MetaModel("yi ~ 1", data=dat, vi="vi", scale="~ 1").fit())
    with pytest.raises(bm.SpecificationError, match="both by REML"):
        bm.lrt(full, bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ 1").fit("ML"))
    with pytest.raises(bm.SpecificationError, match="give the larger model first"):
        bm.lrt(bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ 1").fit(), full)
    with pytest.raises(bm.SpecificationError, match="not nested in the full model's \\(scale moderators\\)"):
        bm.lrt(bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length + meta").fit(),
               bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ grade").fit())
    with pytest.raises(bm.SpecificationError, match="not fitted to the same data"):
        bm.lrt(full, bm.MetaModel("yi ~ length", data=dat.iloc[1:], vi="vi", scale="~ 1").fit())
    with pytest.raises(bm.SpecificationError, match="must be an ML or REML fit"):
        bm.lrt(full, "reduced")


def _tiny():
    ref = _full_data_fixture("permutest_exact")
    dat = bm.datasets.load("bangertdrowns2004")
    return ref, bm.MetaModel("yi ~ 1", data=dat[dat["id"].isin(ref["ids"])], vi="vi", scale="~ length").fit()


def test_exact_permutation_test_equals_metafor():
    ref, fit = _tiny()
    assert_close(fit.alpha.to_numpy(), FIXTURE["tiny_length_REML"]["alpha"], "alpha")
    test = fit.permutation_test(n=1000, progressbar=False)
    assert test.exact_scale and test.n_scale == ref["n_scale"] == 720
    assert test.exact_location and test.n_location == len(ref["zval_perm"]) == 64
    # a deterministic test: the same p-values, exactly
    assert test.pval.tolist() == pytest.approx(ref["pval"], abs=1e-12)
    assert test.QMp == pytest.approx(ref["QMp"], abs=1e-12)
    assert test.pval_alpha.tolist() == pytest.approx(ref["pval_alpha"], abs=1e-12)
    assert test.QSp == pytest.approx(ref["QSp"], abs=1e-12)
    # and the same permutation distribution of the scale slope's z
    theirs = np.sort(np.abs(np.array(ref["zval_alpha_perm"])[:, 1]))
    assert_close(np.sort(np.abs(test.zval_alpha_perm["length"].to_numpy())), theirs, "z of length", abs_zero=1e-5)
    assert_close(np.sort(np.abs(test.zval_perm["Intercept"].to_numpy())), np.sort(np.abs(ref["zval_perm"])),
                 "z of the intercept (sign flips)")
    assert "exact, 720 permutations" in str(test)


@pytest.mark.slow
def test_random_permutation_test_agrees_with_metafor_within_monte_carlo_error():
    ref = _full_data_fixture("permutest_random")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        fit = _writing("yi ~ length", "~ length")
    test = fit.permutation_test(n=ref["iter"], random_seed=7, progressbar=False)
    assert not test.exact_scale and test.n_scale == 1000 and test.n_location == 1000
    ours = np.r_[test.pval.to_numpy(), test.pval_alpha.to_numpy(), test.QSp]
    theirs = np.r_[ref["pval"], ref["pval_alpha"], ref["QSp"]]
    p = (ours + theirs) / 2
    assert np.all(np.abs(ours - theirs) <= 4 * np.sqrt(2 * p * (1 - p) / 1000) + 1e-3), (ours, theirs)


def test_permutations_enumerate_distinct_arrangements():
    rows = np.array([[1.0], [1.0], [2.0], [3.0]])
    orders = [tuple(rows[o, 0]) for o in _distinct_permutations(rows)]
    assert len(orders) == len(set(orders)) == _count_distinct(rows) == 12


def test_permutation_test_arguments():
    _, fit = _tiny()
    with pytest.raises(bm.SpecificationError, match="part: expected"):
        fit.permutation_test(part="alpha")
    with pytest.raises(bm.SpecificationError, match="n: expected an integer of at least 2"):
        fit.permutation_test(n=1)
    plain = bm.MetaModel("logrr ~ ablat", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
    from bayesmeta.inference.permutation import permutation_test
    with pytest.raises(bm.SpecificationError, match="location-scale model"):
        permutation_test(plain)
