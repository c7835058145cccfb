"""Likelihood-ratio tests of nested models, as metafor's ``anova(full, reduced)``.

``LRT = 2 (logLik_full - logLik_reduced)`` is referred to a chi-square
distribution with as many degrees of freedom as the full model has extra
parameters. The test needs two fits of the same data by the same method, the
reduced model nested in the full one: its fixed effects span a subspace of the
full model's, and every variance it has is one the full model can express
(a variance without scale model is the intercept of a scale model; a variance
the reduced model leaves out is zero in it, on the boundary, which makes the
chi-square reference conservative). REML likelihoods of models with different
fixed effects are not comparable, so REML needs the same fixed effects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import SpecificationError
from .intervals import chi2_sf


@dataclass(frozen=True)
class LRTResult:
    """A likelihood-ratio test of a reduced model against a full model.

    Attributes
    ----------
    statistic : float
        ``2 (logLik_full - logLik_reduced)``.
    df : int
        Difference in the number of parameters.
    pvalue : float
    table : pandas.DataFrame
        Rows ``Full`` and ``Reduced``: parameters, AIC, BIC, AICc, logLik, LRT, pval
        (as metafor's ``anova`` prints them).
    """

    statistic: float
    df: int
    pvalue: float
    table: pd.DataFrame

    def __str__(self) -> str:
        shown = self.table.copy()
        for c in ("AIC", "BIC", "AICc", "logLik", "LRT", "pval"):
            shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
        return shown.to_string()


def _in_span(A: np.ndarray, B: np.ndarray) -> bool:
    """Whether every column of A is a linear combination of the columns of B."""
    if A.shape[1] == 0:
        return True
    if B.shape[1] == 0:
        return False
    coef, *_ = np.linalg.lstsq(B, A, rcond=None)
    return bool(np.all(np.linalg.norm(A - B @ coef, axis=0) <= 1e-8 * np.maximum(np.linalg.norm(A, axis=0), 1.0)))


def _variance_design(fit, k: int) -> np.ndarray:
    """Per group, the moderators of term k's log variance (a column of ones without scale model)."""
    sc = fit.param.scale_of(k)
    return sc.W if sc is not None else np.ones((fit.param.terms[k].n_groups, 1))


def _check_nested(full, reduced) -> None:
    if full.method != reduced.method or full.method not in ("ML", "REML"):
        raise SpecificationError(f"lrt: both models must be fitted by ML or both by REML; got {full.method!r} "
                                 f"(full) and {reduced.method!r} (reduced).")
    d_full, d_red = full.design, reduced.design
    same_rows = d_full.n == d_red.n and np.array_equal(d_full.row_labels, d_red.row_labels)
    if not (same_rows and np.array_equal(d_full.y, d_red.y) and np.allclose(d_full.V.diagonal(), d_red.V.diagonal())
            and abs(d_full.V.logdet() - d_red.V.logdet()) < 1e-8):
        raise SpecificationError("lrt: the models were not fitted to the same data (rows, outcome and sampling "
                                 "covariance must agree; check rows dropped for missing values).")
    if full.parms <= reduced.parms:
        raise SpecificationError(f"lrt: the full model has {full.parms} parameters and the reduced one "
                                 f"{reduced.parms}; give the larger model first.")
    if not _in_span(d_red.X, d_full.X):
        raise SpecificationError("lrt: the reduced model's fixed effects are not nested in the full model's.")
    if full.method == "REML" and not _in_span(d_full.X, d_red.X):
        raise SpecificationError("lrt: REML likelihoods of models with different fixed effects are not comparable; "
                                 "fit both models with method='ML', or keep the fixed effects the same.")
    labels = [t.label for t in full.param.terms]
    for k, t in enumerate(reduced.param.terms):
        if t.label not in labels:
            raise SpecificationError(f"lrt: the reduced model's random term {t.label!r} is not in the full model.")
        j = labels.index(t.label)
        other = full.param.terms[j]
        if t.q > 1 or other.q > 1:
            if t.structure.name != other.structure.name or t.levels != other.levels:
                raise SpecificationError(f"lrt: the term {t.label!r} has different structures in the two models.")
            fixed_full = np.r_[full.param.fixed_sd[j], full.param.fixed_rho[j]]
            fixed_red = np.r_[reduced.param.fixed_sd[k], reduced.param.fixed_rho[k]]
            if np.any(~np.isnan(fixed_full) & (np.isnan(fixed_red) | (fixed_full != fixed_red))):
                raise SpecificationError(f"lrt: the full model fixes components of {t.label!r} that the reduced "
                                         "model estimates or fixes elsewhere.")
            continue
        if full.param.scale_of(j) is None and len(full.param.fixed_sd[j]) and not np.isnan(full.param.fixed_sd[j][0]):
            raise SpecificationError(f"lrt: the full model fixes the variance of {t.label!r}.")
        if not _in_span(_variance_design(reduced, k), _variance_design(full, j)):
            raise SpecificationError(f"lrt: the variance model of {t.label!r} in the reduced model is not nested in "
                                     "the full model's (scale moderators).")


def lrt(full, reduced) -> LRTResult:
    """Likelihood-ratio test of a reduced model against a full model.

    Parameters
    ----------
    full, reduced : ModeResult
        ML or REML fits of the same data; ``reduced`` nested in ``full``.

    Returns
    -------
    LRTResult

    Raises
    ------
    SpecificationError
        When the fits differ in method or data, are not nested, or (REML) differ in
        their fixed effects.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    >>> full = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length").fit()
    >>> reduced = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ 1").fit()
    >>> test = bm.lrt(full, reduced)
    >>> round(test.statistic, 4), test.df, round(test.pvalue, 4)
    (0.4308, 1, 0.5116)
    """
    for name, fit in (("full", full), ("reduced", reduced)):
        if not hasattr(fit, "loglik") or not hasattr(fit, "estimate"):
            raise SpecificationError(f"lrt: {name} must be an ML or REML fit (ModeResult), got {type(fit).__name__}.")
    _check_nested(full, reduced)
    statistic = 2.0 * (full.loglik - reduced.loglik)
    df = full.parms - reduced.parms
    pvalue = float(chi2_sf(statistic, df))
    table = pd.DataFrame({"df": [full.parms, reduced.parms], "AIC": [full.aic, reduced.aic],
                          "BIC": [full.bic, reduced.bic], "AICc": [full.aicc, reduced.aicc],
                          "logLik": [full.loglik, reduced.loglik], "LRT": [np.nan, statistic],
                          "pval": [np.nan, pvalue]}, index=["Full", "Reduced"])
    return LRTResult(float(statistic), int(df), pvalue, table)
