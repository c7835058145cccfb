"""Scale models at every level of nested random intercepts (no reference program fits these).

Checked against exact computations instead: the O(n) closed form with one
variance per group equals the dense n x n Gaussian likelihood, its forward-mode
gradient equals finite differences, a scale model '~ 1' at a level is the plain
multilevel model, and REML recovers the parameters of simulated data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from location_scale_cases import (
    ALPHA_DISTRICT,
    ALPHA_STUDY,
    BETA,
    dense_loglik_location_scale,
    simulate,
)

import bayesmeta as bm
from bayesmeta.builders.location_scale import location_scale
from bayesmeta.engines.mode.objective import Objective

#: True parameters of the simulation: location, district-level and study-level scale coefficients.




def model_case(dat, scale=None, formula="yi ~ x", levels="district/study"):
    scale = {"district": "~ w", "study": "~ z"} if scale is None else scale
    return location_scale(formula, dat, vi="vi", levels=levels, scale=scale)




@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("levels, scale", [
    ("district/study", {"district": "~ w", "study": "~ z"}),
    ("district/study", {"district": "~ w"}),
    ("district/study/row", {"study": "~ w + z", "row": "~ z"}),
], ids=["both-levels", "district-only", "three-levels"])
def test_closed_form_equals_dense_likelihood_and_gradient(levels, scale, reml):
    dat = simulate(1, n_districts=8)
    dat["row"] = np.arange(len(dat))
    if levels == "district/study/row":  # several rows per study, z constant within studies
        dat.loc[dat["study"] % 2 == 0, "study"] = 0
        dat["z"] = dat.groupby(["district", "study"])["z"].transform("first")
    model = model_case(dat, scale, levels=levels)
    objective = Objective(model.design, model.param, reml)
    rng = np.random.default_rng(2)
    for _ in range(3):
        theta = rng.normal(-0.5, 0.7, model.param.n_free)
        ev = objective.evaluate(theta, gradient=True)
        expected = dense_loglik_location_scale(model, theta, reml)
        assert abs(ev.loglik - expected) < 1e-9 * abs(expected)
        h = 1e-6
        numeric = [(objective.evaluate(theta + h * e).loglik - objective.evaluate(theta - h * e).loglik) / (2 * h)
                   for e in np.eye(len(theta))]
        np.testing.assert_allclose(ev.dtheta, numeric, rtol=1e-5, atol=1e-6)


def test_scale_intercept_at_a_level_is_the_plain_multilevel_model():
    dat = simulate(3, n_districts=10)
    plain = bm.MetaModel("yi ~ x", data=dat, vi="vi", random="~ 1 | district/study").fit()
    scaled = model_case(dat, {"district": "~ 1"}).fit()
    assert abs(plain.loglik - scaled.loglik) < 1e-7
    np.testing.assert_allclose(np.exp(scaled.alpha.iloc[0]), plain.sigma2.iloc[0], rtol=1e-5)
    np.testing.assert_allclose(scaled.sigma2.to_numpy(), plain.sigma2.to_numpy()[1:], rtol=1e-5)
    np.testing.assert_allclose(scaled.coef.to_numpy(), plain.coef.to_numpy(), rtol=1e-6)
    assert list(scaled.sigma2.index) == ["district/study"] and scaled.parms == plain.parms


def test_moderators_must_be_constant_within_clusters():
    dat = simulate(4, n_districts=6)
    dat.loc[dat.index[[0, 5]], "w"] = 7.0  # districts of rows 0 and 5 now have two values of w
    bad = sorted({str(dat.loc[0, "district"]), str(dat.loc[dat.index[5], "district"])})
    with pytest.raises(bm.SpecificationError, match=r"scale \('district'\): moderator column\(s\) 'w' of '~ w' vary "
                                                    rf"within \d cluster\(s\) of 'district': {', '.join(bad)}"):
        model_case(dat, {"district": "~ w"})
    with pytest.raises(bm.SpecificationError, match="name the level"):
        model_case(dat, "~ w")
    with pytest.raises(bm.SpecificationError, match=r"scale: 'district/study' is given two|given two scale formulas"):
        model_case(dat, {"study": "~ z", "district/study": "~ 1"})


def test_reml_recovers_simulated_parameters():
    """400 districts x 2-7 studies: every estimate within 3 SEs of the truth."""
    dat = simulate(2024, n_districts=400)
    fit = model_case(dat).fit("REML")
    assert fit.converged and fit.drifting == []
    truth = np.r_[ALPHA_DISTRICT, ALPHA_STUDY]
    assert list(fit.alpha.index) == ["district: Intercept", "district: w", "district/study: Intercept",
                                     "district/study: z"]
    assert np.all(np.abs(fit.alpha.to_numpy() - truth) < 3 * fit.alpha_se.to_numpy()), (fit.alpha, fit.alpha_se)
    assert np.all(np.abs(fit.coef.to_numpy() - BETA) < 3 * fit.se.to_numpy())
    assert fit.alpha_se.max() < 0.5  # informative at this size
    assert fit.components.empty or fit.sigma2.empty  # every level has a scale model
    text = fit.summary()
    assert text.startswith("Multilevel Location-Scale Model")
    assert "district: log variance ~ w, district/study: log variance ~ z" in text


def test_cluster_level_predictions_tests_and_lrt():
    dat = simulate(5, n_districts=60)
    full = model_case(dat).fit("ML")
    by_district = full.predict_variance(term="district")
    assert len(by_district) == dat["district"].nunique()
    new = full.predict_variance(pd.DataFrame({"w": [0.0, 1.0]}), term="district")
    np.testing.assert_allclose(np.log(new["pred"]), full.alpha.iloc[0] + np.array([0.0, 1.0]) * full.alpha.iloc[1])
    with pytest.raises(bm.SpecificationError, match="name one"):
        full.predict_variance()
    reduced = model_case(dat, {"study": "~ z"}).fit("ML")
    test = bm.lrt(full, reduced)
    assert test.df == 1 and abs(test.statistic - 2 * (full.loglik - reduced.loglik)) < 1e-12
    wald = full.wald_test(["district: w"], part="scale")
    assert abs(wald.statistic - full.alpha_zval["district: w"] ** 2) < 1e-10
    perm = full.permutation_test(n=20, random_seed=1, term="district", progressbar=False)
    assert perm.n_location == 0 and perm.n_scale == 20 and 0 < perm.pval_alpha["district: w"] <= 1
    with pytest.raises(bm.SpecificationError, match="location part can be permuted only in row-level"):
        full.permutation_test(n=20, part="location", progressbar=False)
