"""Location-scale models shared by several test modules: a simulated multilevel data
set with scale moderators at both levels, its dense likelihood, and the comparison
of a fit with a metafor fixture entry."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from engine_tools import dense_profile_loglik
from reference_tools import ABS_IC, assert_close

import bayesmeta as bm
from bayesmeta.errors import MissingDataWarning

ALPHA_DISTRICT = (np.log(0.04), 1.0)   # log sigma2_district = a0 + a1 * w   (w: district moderator, 0/1)
ALPHA_STUDY = (np.log(0.02), 0.6)      # log sigma2_study    = a0 + a1 * z   (z: study moderator)
BETA = (0.2, 0.3)


def dense_loglik_location_scale(model, theta, reml):
    d, param = model.design, model.param
    variances, _ = param.group_variances(theta)
    S = np.diag(d.V.diagonal())
    for enc, v in zip(d.encodings, variances):
        same = enc.codes[:, None] == enc.codes[None, :]
        S = S + same * v[enc.codes][:, None]
    return dense_profile_loglik(d, S, reml)[0]


def simulate(seed: int, n_districts: int = 40, studies=(2, 8)) -> pd.DataFrame:
    """Studies (one row each) nested in districts, with a district-level and a study-level scale moderator."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_districts):
        w = float(g % 2)
        u = rng.normal(0, np.sqrt(np.exp(ALPHA_DISTRICT[0] + ALPHA_DISTRICT[1] * w)))
        for s in range(rng.integers(*studies)):
            z, x = rng.normal(), rng.normal()
            vi = rng.uniform(0.005, 0.03)
            e = rng.normal(0, np.sqrt(np.exp(ALPHA_STUDY[0] + ALPHA_STUDY[1] * z)))
            rows.append({"district": g, "study": s, "w": w, "z": z, "x": x, "vi": vi,
                         "yi": BETA[0] + BETA[1] * x + u + e + rng.normal(0, np.sqrt(vi))})
    return pd.DataFrame(rows)


def assert_location_scale_matches(fit, ref, skip_alpha=()):
    """Every reported number of a location-scale fit against one metafor fixture entry."""
    assert fit.k == ref["k"] and fit.parms == ref["parms"]
    assert_close(fit.coef.to_numpy(), ref["coef"], "coef")
    assert_close(fit.se.to_numpy(), ref["se"], "se")
    assert_close(fit.vcov.to_numpy(), ref["vcov"], "vcov")
    assert_close(fit.zval.to_numpy(), ref["zval"], "zval")
    assert_close(fit.pval.to_numpy(), ref["pval"], "pval")
    assert_close(fit.ci.to_numpy(), np.column_stack([ref["ci_lb"], ref["ci_ub"]]), "ci")
    keep = np.array([i not in skip_alpha for i in range(len(ref["alpha"]))])
    assert_close(fit.alpha.to_numpy()[keep], np.array(ref["alpha"])[keep], "alpha")
    assert_close(fit.alpha_se.to_numpy()[keep], np.array(ref["se_alpha"])[keep], "se_alpha")
    assert_close(fit.alpha_vcov.to_numpy()[np.ix_(keep, keep)], np.array(ref["va"])[np.ix_(keep, keep)], "va")
    assert_close(fit.alpha_zval.to_numpy()[keep], np.array(ref["zval_alpha"])[keep], "zval_alpha")
    assert_close(fit.alpha_pval.to_numpy()[keep], np.array(ref["pval_alpha"])[keep], "pval_alpha")
    assert_close(fit.alpha_ci.to_numpy()[keep],
                 np.column_stack([ref["ci_lb_alpha"], ref["ci_ub_alpha"]])[keep], "ci_alpha")
    for ic in ("loglik", "deviance", "aic", "bic", "aicc"):
        assert abs(getattr(fit, ic) - ref[ic]) < ABS_IC, f"{ic}: {getattr(fit, ic)} vs {ref[ic]}"
    assert_close(fit.q, ref["QE"], "QE")
    if fit.p > 1:
        assert_close(fit.wald_test().statistic, ref["QM"], "QM")
        assert_close(fit.wald_test().pvalue, ref["QMp"], "QMp")
    if ref["q"] > 1 and not skip_alpha:
        qs = fit.wald_test(part="scale")
        assert_close(qs.statistic, ref["QS"], "QS")
        assert_close(qs.pvalue, ref["QSp"], "QSp")
    assert_close(fit.fitted.to_numpy(), ref["fitted"], "fitted")
    if not skip_alpha:
        fitted_variance = fit.predict_variance()
        assert_close(fitted_variance["pred"].to_numpy(), ref["tau2"], "tau2 of every row")
        assert_close(fitted_variance["log_pred"].to_numpy(), ref["fitted_scale"], "fitted log tau2")


def fit_case(formula, data_name, vi, scale, method, test="z"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        model = bm.MetaModel(formula, data=bm.datasets.load(data_name), vi=vi, scale=scale)
    return model, model.fit(method, test=test)
