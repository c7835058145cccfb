"""Q-profile confidence intervals of tau^2 in the standard model, as metafor's ``confint.rma.uni``.

The generalised Q statistic ``Q(tau^2) = r' (V + tau^2 I)^-1 r`` (``r`` the
residuals of the GLS fit with those weights; evaluated block by block) falls
from Cochran's Q at ``tau^2 = 0`` towards 0. The Q-profile interval (Viechtbauer
2007) collects the ``tau^2`` whose Q lies between the chi-square(k - p)
quantiles at ``(1 - level)/2`` and ``(1 + level)/2``; it does not depend on
the estimator (ML, REML or a moment method give the same interval).

metafor's conventions, reproduced here:

- The search interval is ``[0, max(100, 10 tau^2)]``.
- ``Q(0)`` below the upper quantile: the lower bound is 0 (no sign: 0 is the
  edge of the parameter space). ``Q(0)`` below the lower quantile too: both
  bounds are 0 and the interval is the null (empty) set, ``ci_null``, with the
  signs ``"<"`` (metafor prints ``<0.0000`` and a note).
- A Q that stays above a quantile over the whole interval gives the end of the
  interval with the sign ``">"``.
- ``tau`` is the square root of the ``tau^2`` row; ``I2 = 100 tau^2 / (tau^2 + vt)``
  (percent) and ``H2 = tau^2 / vt + 1`` with metafor's typical within-study
  variance ``vt`` (:func:`bayesmeta.inference.heterogeneity.typical_variance`),
  applied to the estimate and to both bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.build import Design
from ..engines.mode.centring import centre_outcome
from ..likelihood.marginal import evaluate
from .intervals import chi2_quantile

#: Tolerance of the roots of Q(tau^2) = quantile (metafor's fixtures use uniroot with 1e-12).
TOL = 1e-12


@dataclass(frozen=True)
class Bounds:
    """Confidence bounds of one parameter with metafor's signs.

    Q-profile intervals fill both bounds; a profile-likelihood search fills one
    side at a time (the other is NaN).

    Attributes
    ----------
    lower, upper : float
    lower_sign, upper_sign : str
        ``""`` for a root or a bound at the edge of the parameter space, ``"<"`` / ``">"``
        when the true bound lies beyond the end of the searched interval.
    null : bool
        The interval is the null (empty) set (Q-profile only).
    """

    lower: float
    upper: float
    lower_sign: str = ""
    upper_sign: str = ""
    null: bool = False


def q_statistic(design: Design, tau2: float) -> float:
    """The generalised Q statistic ``r' (V + tau^2 I)^-1 r`` of the standard model at ``tau2``.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
    >>> round(q_statistic(fit.design, 0.0), 4), round(q_statistic(fit.design, 0.3132), 4)
    (152.233, 12.1365)
    """
    return float(evaluate(design, [np.array([[tau2]])], reml=False).quad)


def search_interval(tau2: float) -> tuple[float, float]:
    """metafor's search interval of a standard model's tau^2: ``[0, max(100, 10 tau^2)]``."""
    return 0.0, max(100.0, 10 * tau2)


def q_profile(design: Design, tau2: float, level: float) -> Bounds:
    """The Q-profile confidence interval of the standard model's tau^2.

    Parameters
    ----------
    design : Design
        A standard model (one row-level random effect).
    tau2 : float
        The estimate (it sets the end of the search interval).
    level : float

    Returns
    -------
    Bounds

    Examples
    --------
    >>> import bayesmeta as bm
    >>> model = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar")
    >>> b = q_profile(model.design, 0.3132, 0.95)
    >>> round(b.lower, 4), round(b.upper, 4), b.null
    (0.1197, 1.1115, False)
    """
    from scipy.optimize import brentq  # slow to import: loaded with the first interval

    design, _ = centre_outcome(design)  # affine invariance (issue 16)
    df = design.n - design.p
    crit_upper, crit_lower = chi2_quantile([(1 + level) / 2, (1 - level) / 2], df)
    low, high = search_interval(tau2)
    q_low, q_high = q_statistic(design, low), q_statistic(design, high)

    def root(crit: float) -> float:
        return float(brentq(lambda t: q_statistic(design, t) - crit, low, high, xtol=TOL, rtol=TOL, maxiter=1000))

    if q_low < crit_lower:
        return Bounds(low, low, "<", "<", null=low <= 0)
    upper, upper_sign = (high, ">") if q_high > crit_lower else (root(crit_lower), "")
    if q_high > crit_upper:
        return Bounds(high, high, ">", ">")
    lower = low if q_low < crit_upper else root(crit_upper)
    return Bounds(lower, upper, "", upper_sign)


def heterogeneity_rows(tau2: float, bounds: Bounds, vt: float) -> pd.DataFrame:
    """The rows ``tau2, tau, I2, H2`` (columns ``estimate, ci_lb, ci_ub``) of metafor's ``confint.rma.uni``.

    Examples
    --------
    >>> heterogeneity_rows(0.3, Bounds(0.1, 1.2), 0.03).round(3)
          estimate   ci_lb   ci_ub
    tau2     0.300   0.100   1.200
    tau      0.548   0.316   1.095
    I2      90.909  76.923  97.561
    H2      11.000   4.333  41.000
    """
    values = np.array([tau2, bounds.lower, bounds.upper], dtype=float)
    rows = {"tau2": values, "tau": np.sqrt(values), "I2": 100 * values / (values + vt), "H2": values / vt + 1}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["estimate", "ci_lb", "ci_ub"])
