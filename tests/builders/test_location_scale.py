"""Location-scale models (row-level scale) against metafor's rma(yi, vi, mods, scale).

Fixtures: tests/reference/make_location_scale_reference.R. Coefficients are
compared by position (R and formulaic name factor contrasts differently).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from location_scale_cases import assert_location_scale_matches, fit_case
from reference_tools import assert_close, load_fixture

import bayesmeta as bm
from bayesmeta.errors import MissingDataWarning

REF = load_fixture("location_scale")

#: model name -> (formula, data set, vi column, scale formula, keyword arguments of fit)
SPECS = {
    "bd_length": ("yi ~ length", "bangertdrowns2004", "vi", "~ length"),
    "bd_grade": ("yi ~ C(grade)", "bangertdrowns2004", "vi", "~ C(grade)"),
    "bcg_alloc": ("logrr ~ ablat", "bcg", "logrrvar", "~ alloc"),
    "kon_year": ("yi ~ 1", "konstantopoulos2011", "vi", "~ year"),
}
CASES = [(f"{name}_{method}", *spec, method, "z") for name, spec in SPECS.items() for method in ("ML", "REML")
         if f"{name}_{method}" != "bcg_alloc_ML"]  # drifts: see test_drift.py
CASES += [("bd_length_meta_REML_t", "yi ~ length + meta", "bangertdrowns2004", "vi", "~ length + meta", "REML", "t"),
          ("bd_meta_noint_REML", "yi ~ meta", "bangertdrowns2004", "vi", "~ 0 + C(meta)", "REML", "z"),
          ("bd_length_scale1_REML", "yi ~ length", "bangertdrowns2004", "vi", "~ 1", "REML", "z"),
          ("bd_grade_scale1_REML", "yi ~ C(grade)", "bangertdrowns2004", "vi", "~ 1", "REML", "z")]






@pytest.mark.parametrize("name, formula, data_name, vi, scale, method, test", CASES, ids=[c[0] for c in CASES])
def test_matches_metafor(name, formula, data_name, vi, scale, method, test):
    _, fit = fit_case(formula, data_name, vi, scale, method, test)
    ref = REF[name]
    assert fit.method == ref["method"] and fit.test == ref["test"]
    if test == "t":
        assert fit.alpha_df == ref["ddf_alpha"]
    assert fit.drifting == []
    assert_location_scale_matches(fit, ref)


@pytest.mark.parametrize("name", ["bd_length_REML", "bd_grade_ML", "kon_year_REML"])
def test_predicted_variances_match_metafor(name):
    """predict(fit, newscale = ...) of metafor: log tau2 with SE, exponentiated interval."""
    base, method = name.rsplit("_", 1)
    formula, data_name, vi, scale = SPECS[base]
    _, fit = fit_case(formula, data_name, vi, scale, method)
    ref = REF[name]
    newscale = np.array(ref["newscale"])
    if base == "bd_grade":  # rows of the dummy columns: grade 1, 2 and 4
        newdata = pd.DataFrame({"grade": [1, 2, 4]})
    else:
        newdata = pd.DataFrame({scale.split()[-1]: newscale[:, 0]})
    pred = fit.predict_variance(newdata)
    assert_close(pred["log_pred"].to_numpy(), ref["pred_log_tau2"], "log tau2")
    assert_close(pred["log_se"].to_numpy(), ref["pred_se"], "se of log tau2")
    assert_close(pred["ci_lb"].to_numpy(), np.exp(ref["pred_ci_lb"]), "lower")
    assert_close(pred["ci_ub"].to_numpy(), np.exp(ref["pred_ci_ub"]), "upper")
    assert_close(pred["pred"].to_numpy(), np.exp(ref["pred_log_tau2"]), "tau2")


def test_intercept_only_scale_is_the_standard_model():
    """scale='~ 1' is the random-effects model with tau2 = exp(alpha)."""
    dat = bm.datasets.load("bcg")
    plain = bm.MetaModel("logrr ~ ablat", data=dat, vi="logrrvar").fit()
    scaled = bm.MetaModel("logrr ~ ablat", data=dat, vi="logrrvar", scale="~ 1").fit()
    assert abs(plain.loglik - scaled.loglik) < 1e-8
    assert_close(np.exp(scaled.alpha.iloc[0]), plain.tau2.iloc[0], "tau2")
    assert_close(scaled.coef.to_numpy(), plain.coef.to_numpy(), "coef")
    assert scaled.tau2.empty and plain.parms == scaled.parms


def test_summary_reports_both_parts():
    _, fit = fit_case(*SPECS["bd_length"], "REML")
    text = fit.summary()
    assert text.startswith("Location-Scale Model (k = 46; method: REML)")
    assert "Model Results (Location):" in text and "Model Results (Scale; row: log variance ~ length):" in text
    assert "Test of Scale Coefficients, length: QS(df = 1) = 0.4194, p-val = 0.5172" in text
    table = fit.table()
    assert list(table.index) == ["beta[Intercept]", "beta[length]", "alpha[Intercept]", "alpha[length]"]


def test_wald_test_of_scale_coefficients():
    _, fit = fit_case(*SPECS["bd_grade"], "REML")
    wald = fit.wald_test(["C(grade)[T.3]"], part="scale")
    z = fit.alpha_zval["C(grade)[T.3]"]
    assert_close(wald.statistic, z ** 2, "chi2 = z^2")
    with pytest.raises(bm.SpecificationError, match="unknown coefficient"):
        fit.wald_test(["length"], part="scale")
    with pytest.raises(bm.SpecificationError, match="part: expected"):
        fit.wald_test(part="variance")
    plain = bm.MetaModel("logrr ~ ablat", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
    with pytest.raises(bm.SpecificationError, match="needs a location-scale model"):
        plain.wald_test(part="scale")


def _bcg():
    return bm.datasets.load("bcg")


@pytest.mark.parametrize("kwargs, message", [
    ({"scale": "alloc"}, r"scale: expected a one-sided formula such as '~ z', got 'alloc'"),
    ({"scale": "~ allocation"}, r"scale: column 'allocation' not found"),
    ({"scale": ["~ alloc"]}, r"scale: expected a formula such as '~ z' or a dict"),
    ({"scale": {"study": "~ alloc"}}, r"scale: no random level 'study'; levels: 'row'"),
    ({"scale": "~ alloc", "fixed": {"tau2": 0.1}}, r"fixed: the variance of 'row' is given by its scale model"),
    ({"scale": "~ alloc", "random": []}, r"scale: the model has no random effects"),
    ({"scale": "~ alloc", "random": "~ 1 + ablat | trial"}, r"scale: '1 \+ ablat \| trial' has random slopes"),
    ({"scale": "~ 1 + alloc + C(alloc)"}, r"redundant column\(s\): 'C\(alloc\)\[T.random\]'"),
])
def test_scale_specification_errors(kwargs, message):
    with pytest.raises(bm.SpecificationError, match=message):
        bm.MetaModel("logrr ~ ablat", data=_bcg(), vi="logrrvar", **kwargs)


def test_scale_with_covariances_in_v_uses_the_batched_path():
    # issue 17: a V with covariances no longer refuses scale=; the likelihood is checked against a dense
    # density in tests/likelihood/test_coscale_blocks.py
    dat = _bcg()
    V = np.diag(dat["logrrvar"].to_numpy())
    V[0, 1] = V[1, 0] = 0.01
    model = bm.MetaModel("logrr ~ ablat", data=dat, V=V, scale="~ alloc")
    assert model.design.nested is None and model.param.has_scale
    with pytest.raises(bm.SpecificationError, match="'FE' sets every variance to zero"):
        bm.MetaModel("logrr ~ ablat", data=dat, vi="logrrvar", scale="~ alloc").fit("FE")


def test_missing_scale_moderators_drop_rows_with_a_warning():
    dat = bm.datasets.load("bangertdrowns2004")
    with pytest.warns(MissingDataWarning, match="columns 'length': rows 33, 34"):
        model = bm.MetaModel("yi ~ 1", data=dat, vi="vi", scale="~ length")
    assert model.design.n == 46
