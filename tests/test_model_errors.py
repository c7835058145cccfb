"""Bad input gets a clear error naming the argument, column or rows (GUIDE section 6)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayesmeta as bm
from bayesmeta import MissingDataWarning, SpecificationError


@pytest.fixture
def school():
    return bm.datasets.load("school")


def test_missing_values_dropped_with_warning_naming_rows(school):
    school.loc[[3, 10], "effect"] = np.nan
    school.loc[20, "var"] = np.nan
    with pytest.warns(MissingDataWarning, match=r"3 row\(s\).*'effect', 'var'.*rows 3, 10, 20"):
        model = bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study")
    fit = model.fit()
    assert fit.k == 53
    assert fit.rows_dropped.tolist() == [3, 10, 20]
    assert 3 not in fit.rows_used
    assert "3 row(s) with missing values dropped" in fit.summary()


def test_missing_values_raise_on_request(school):
    school.loc[5, "district"] = np.nan
    with pytest.raises(SpecificationError, match=r"'district'.*rows 5.*na_action='raise'"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study", na_action="raise")


def test_missing_value_in_moderator(school):
    school.loc[0, "year"] = np.nan
    with pytest.warns(MissingDataWarning, match="'year'"):
        fit = bm.MetaModel("effect ~ year", data=school, vi="var").fit()
    assert fit.k == 55


@pytest.mark.parametrize("bad", [0.0, -0.1, np.inf])
def test_non_positive_or_non_finite_variances(school, bad):
    school.loc[[7, 9], "var"] = bad
    with pytest.raises(SpecificationError, match=r"vi: .*rows 7, 9"):
        bm.MetaModel("effect ~ 1", data=school, vi="var")


def test_vi_wrong_length(school):
    with pytest.raises(SpecificationError, match="vi: expected 56 sampling variances, got 3"):
        bm.MetaModel("effect ~ 1", data=school, vi=[1, 2, 3])


def test_non_finite_outcome(school):
    school.loc[4, "effect"] = np.inf
    with pytest.raises(SpecificationError, match=r"outcome is not finite in rows 4"):
        bm.MetaModel("effect ~ 1", data=school, vi="var")


def test_v_wrong_size(school):
    with pytest.raises(SpecificationError, match=r"V: expected a 56 x 56 matrix, got shape \(3, 3\)"):
        bm.MetaModel("effect ~ 1", data=school, V=np.eye(3))
    with pytest.raises(SpecificationError, match="V: the blocks cover 2 rows but the data have 56"):
        bm.MetaModel("effect ~ 1", data=school, V=[np.eye(2)])
    with pytest.raises(SpecificationError, match="V: block 0 is not a square matrix"):
        bm.MetaModel("effect ~ 1", data=school, V=[np.ones((2, 3))])


def test_v_not_symmetric(school):
    V = np.diag(school["var"].to_numpy())
    V[0, 1] = 0.01
    with pytest.raises(SpecificationError, match=r"V: the block covering rows 0, 1 is not symmetric"):
        bm.MetaModel("effect ~ 1", data=school, V=V)


def test_v_not_positive_semidefinite(school):
    V = np.diag(school["var"].to_numpy())
    V[2, 3] = V[3, 2] = 1.0
    with pytest.raises(SpecificationError, match=r"V: the block covering rows 2, 3 is not positive semi-definite"):
        bm.MetaModel("effect ~ 1", data=school, V=V)


def test_vi_and_v_together_or_neither(school):
    with pytest.raises(SpecificationError, match="exactly one of vi="):
        bm.MetaModel("effect ~ 1", data=school)
    with pytest.raises(SpecificationError, match="exactly one of vi="):
        bm.MetaModel("effect ~ 1", data=school, vi="var", V=np.eye(56))


def test_unknown_columns(school):
    with pytest.raises(SpecificationError, match=r"column 'dose' not found"):
        bm.MetaModel("effect ~ dose", data=school, vi="var")
    with pytest.raises(SpecificationError, match=r"column 'region' not found"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | region/study")
    with pytest.raises(SpecificationError, match=r"column 'variance' not found"):
        bm.MetaModel("effect ~ 1", data=school, vi="variance")


def test_rank_deficient_fixed_effects_named(school):
    school["year2"] = 2 * school["year"]
    with pytest.raises(SpecificationError, match=r"rank deficient; redundant column\(s\): 'year2'"):
        bm.MetaModel("effect ~ year + year2", data=school, vi="var")


def test_struct_that_does_not_fit(school):
    with pytest.raises(SpecificationError, match="struct: 'XYZ' does not fit"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ study | district", struct="XYZ")
    with pytest.raises(SpecificationError, match="struct: 'AR' does not fit the random-slope term"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 + year | district", struct="AR")
    with pytest.raises(SpecificationError, match="struct: got 1 structures for 0 non-nested random terms"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random=["~ 1 | district"], struct=["UN"])
    with pytest.raises(SpecificationError, match="struct: got 1 structures for 2 non-nested"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random=["~ study | district", "~ 1 + year | district"],
                     struct=["UN"])
    school["one"] = "a"
    with pytest.raises(SpecificationError, match="HAR needs at least two levels of 'one'"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ one | district", struct="HAR")
    with pytest.raises(SpecificationError, match="struct: given, but random is None"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", struct="UN")


def test_malformed_random_terms(school):
    with pytest.raises(SpecificationError, match="must start with '~'"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random="1 | district")
    with pytest.raises(SpecificationError, match="exactly one '\\|'"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 + district")
    with pytest.raises(SpecificationError, match="not a column name"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | log(district)")


def test_more_parameters_than_data(school):
    small = school.iloc[[0, 1, 10]]  # two districts (rows of different districts alone would not identify both levels)
    with pytest.raises(SpecificationError, match="4 parameters .* only 3 rows"):
        bm.MetaModel("effect ~ year", data=small, vi="var", random="~ 1 | district/study")


def test_fixed_components_checked(school):
    with pytest.raises(SpecificationError, match="fixed: 'sigma2' needs 2 values"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study", fixed={"sigma2": [0.1]})
    with pytest.raises(SpecificationError, match="fixed: unknown component"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study", fixed={"omega": 1})
    with pytest.raises(SpecificationError, match="fixed: 'rho' given but the DIAG term"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ study | district", struct="DIAG",
                     fixed={"rho": 0.5})
    with pytest.raises(SpecificationError, match=r"fixed: 'sigma2' values of 'district' must be non-negative variances, got \[-1.0\]"):
        bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study", fixed={"sigma2": [-1, None]})


def test_fixed_component_is_held(school):
    fit = bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study",
                       fixed={"sigma2": [None, 0.0]}).fit("ML")
    assert fit.sigma2.iloc[1] == 0.0
    district = bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district").fit("ML")
    assert abs(fit.loglik - district.loglik) < 1e-8
    assert fit.parms == 2
    assert fit.components["fixed"].tolist() == [False, True]


def test_bad_fit_arguments(school):
    model = bm.MetaModel("effect ~ 1", data=school, vi="var")
    with pytest.raises(SpecificationError, match="method: expected one of ML, REML, FE, DL, HE, HS, SJ, EB, PM"):
        model.fit("GENQ")
    with pytest.raises(SpecificationError, match="test: expected 'z', 't' or 'knha'"):
        model.fit(test="wald")
    with pytest.raises(SpecificationError, match="level:"):
        model.fit(level=95)


def test_not_a_dataframe():
    with pytest.raises(SpecificationError, match="data: expected a pandas DataFrame"):
        bm.MetaModel("y ~ 1", data={"y": [1, 2]}, vi=[1, 1])


def test_non_convergence_is_surfaced(school):
    model = bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study")
    with pytest.warns(bm.ConvergenceWarning, match="may not have converged"):
        fit = model.fit(control={"maxiter": 1, "polish": False})
    assert not fit.converged
    assert "may not have converged" in fit.summary()


def test_boundary_estimates_reported():
    dat = bm.datasets.load("thrombolytic")
    dat["row"] = np.arange(len(dat))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = bm.MetaModel("absrisk ~ 1", data=dat, vi="var", random="~ 1 | trial/row").fit()
    assert [w.category for w in caught] == [bm.BoundaryWarning]  # the only warning (issue 16)
    assert "sigma2[trial] estimated on the boundary" in str(caught[0].message)
    assert fit.boundary == ["sigma2[trial]"]
    assert fit.sigma2.iloc[0] == 0.0
    assert "estimated on the boundary: sigma2[trial]" in fit.summary()


def test_warnings_point_at_the_callers_line():
    """Warnings are attributed to the user's code, however deep in the package they are raised."""
    dat = bm.datasets.load("school").assign(effect=lambda d: d["effect"].where(d.index != 3))
    with pytest.warns(MissingDataWarning) as direct:
        bm.MetaModel("effect ~ 1", data=dat, vi="var")
    with pytest.warns(MissingDataWarning) as through_a_builder:
        bm.multilevel("effect ~ 1", dat, levels="district/study", vi="var")
    assert direct[0].filename == through_a_builder[0].filename == __file__
