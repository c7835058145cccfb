"""Scale coefficients drifting to +-infinity are detected, flagged and explained.

Real data where this happens: metafor's rma(logrr, logrrvar, mods = ~ ablat,
scale = ~ alloc, data = bcg, method = "ML") runs the coefficient of random
allocation to -23.4 with an SE of 41984 (the randomised trials show no
heterogeneity at all). REML on the same data does not drift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from location_scale_cases import BETA, assert_location_scale_matches, simulate
from reference_tools import assert_close, load_fixture

import bayesmeta as bm
from bayesmeta.errors import DriftWarning

REF = load_fixture("location_scale")


def _fit(scale="~ alloc", method="ML"):
    model = bm.MetaModel("logrr ~ ablat", data=bm.datasets.load("bcg"), vi="logrrvar", scale=scale)
    return model.fit(method)


def test_drifting_coefficient_is_flagged_and_the_rest_matches_metafor():
    with pytest.warns(DriftWarning, match=r"alpha\[alloc\[T.random\]\] -> -inf: the 'row' variance of 7 group"):
        fit = _fit()
    ref = REF["bcg_alloc_ML"]
    assert ref["se_alpha"][1] > 1e4 and ref["alpha"][1] < -20  # metafor's estimate drifts too
    assert fit.drifting == ["alloc[T.random]"]
    assert fit.alpha["alloc[T.random]"] < -15
    assert np.isnan(fit.alpha_se["alloc[T.random]"]) and np.isnan(fit.alpha_pval["alloc[T.random]"])
    # every other number is metafor's: the drifting coefficient only sends tau^2 of those trials to 0
    assert_location_scale_matches(fit, ref, skip_alpha=(1,))
    drift = fit.estimate.drift[0]
    random_rows = bm.datasets.load("bcg").index[bm.datasets.load("bcg")["alloc"] == "random"]
    assert drift.groups == tuple(map(str, random_rows)) and drift.signs == (-1,)
    text = fit.summary()
    assert "Note: drifting scale coefficients: alpha[alloc[T.random]] -> -inf" in text
    assert "not meaningful" in text


def test_reml_on_the_same_data_does_not_drift():
    fit = _fit(method="REML")
    assert fit.drifting == [] and np.all(np.isfinite(fit.alpha_se))


def test_drift_of_the_reference_level_moves_several_coefficients():
    """With 'random' as the reference level, the drift direction is (-1, +1, +1): flagged as such,
    while the variances of the other groups keep their (metafor) SEs."""
    with pytest.warns(DriftWarning):
        fit = _fit(scale="~ C(alloc, Treatment('random'))")
    assert [d.signs for d in fit.estimate.drift] == [(-1, 1, 1)]
    assert len(fit.drifting) == 3 and fit.alpha_se.isna().all()
    ref = REF["bcg_alloc_ML"]
    pred = fit.predict_variance(pd.DataFrame({"alloc": ["alternate", "systematic", "random"]}))
    # log tau^2 of the alternate group is metafor's intercept; of the systematic group, intercept + its coefficient
    assert_close(pred["log_pred"].iloc[0], ref["alpha"][0], "log tau2 (alternate)")
    assert_close(pred["log_se"].iloc[0], ref["se_alpha"][0], "its SE")
    va = np.array(ref["va"])
    assert_close(pred["log_se"].iloc[1], np.sqrt(va[0, 0] + va[2, 2] + 2 * va[0, 2]), "SE (systematic)")
    assert np.isnan(pred["log_se"].iloc[2]) and pred["pred"].iloc[2] < 1e-8


def test_homogeneous_data_drift_the_intercept():
    """An intercept-only scale model on data without heterogeneity: tau^2 -> 0, as the
    standard model's boundary estimate."""
    rng = np.random.default_rng(1)
    vi = rng.uniform(0.02, 0.1, 20)
    dat = pd.DataFrame({"vi": vi, "yi": 0.3 + rng.normal(0, 0.5 * np.sqrt(vi))})
    assert bm.MetaModel("yi ~ 1", data=dat, vi="vi").fit().tau2.iloc[0] == 0
    with pytest.warns(DriftWarning, match=r"alpha\[Intercept\] -> -inf"):
        fit = bm.MetaModel("yi ~ 1", data=dat, vi="vi", scale="~ 1").fit()
    assert fit.drifting == ["Intercept"]


def test_small_but_identified_heterogeneity_is_not_flagged():
    """ML with scale ~ wic on the writing-to-learn data: SEs of 12.6, but a finite optimum
    (tau^2 of the wic = 0 studies is 0.003), as in metafor."""
    dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["wic"])
    fit = bm.MetaModel("yi ~ wic", data=dat, vi="vi", scale="~ wic").fit("ML")
    assert fit.drifting == [] and fit.alpha_se.iloc[0] > 10
    assert_location_scale_matches(fit, REF["bd_wic_ML"])


def test_cluster_level_scale_coefficient_drifts_when_those_clusters_do_not_vary():
    """Multilevel: districts with w = 1 get identical means, so their variance is 0 and alpha[w] -> -inf;
    the flag names those districts."""

    dat = simulate(6, n_districts=40)
    residual = dat["yi"] - BETA[0] - BETA[1] * dat["x"]
    flat = dat["w"] == 1
    dat.loc[flat, "yi"] -= residual.groupby(dat["district"]).transform("mean")[flat]
    model = bm.MetaModel("yi ~ x", data=dat, vi="vi", random="~ 1 | district/study", scale={"district": "~ w"})
    with pytest.warns(DriftWarning, match=r"alpha\[w\] -> -inf: the 'district' variance of 20 group\(s\)"):
        fit = model.fit("ML")
    assert fit.drifting == ["w"]
    assert fit.estimate.drift[0].groups == tuple(str(g) for g in sorted(dat.loc[flat, "district"].unique()))
    assert np.isfinite(fit.alpha_se["Intercept"]) and np.isnan(fit.alpha_se["w"])


def test_correlation_heading_for_one_drifts():
    from coscale_cases import simulate

    dat, blocks = simulate(1, n_studies=30)  # the marine studies' correlation is estimated as 1
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, random="~ outcome | study", struct="UN",
                         scale={"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat", "rho": "~ habitat"}})
    with pytest.warns(bm.DriftWarning, match=r"zeta\[Intercept\] -> \+inf, zeta\[habitat\[T.terrestrial\]\] -> -inf"):
        fit = model.fit("REML")
    assert fit.drifting == [] and fit.drifting_zeta == ["Intercept", "habitat[T.terrestrial]"]
    assert fit.zeta_se.isna().all() and np.all(np.isfinite(fit.alpha_se))
    marine = fit.predict_correlation().loc[lambda t: t["z_pred"] > 6]
    assert len(marine) == 14 and np.allclose(marine["pred"], 1.0, atol=1e-5)
    assert "drifting correlation coefficients" in fit.summary()
    assert not fit.check().ok
