"""Heterogeneity statistics: I^2 and H^2 as metafor defines them, beside the Q-based I^2 of Sera et al.

Every I^2 here is in percent, as metafor prints it. ``k`` is the number of
estimates, ``p`` of fixed effects, ``Q`` Cochran's statistic of the
fixed-effects fit (Sera et al. 2019, eq. 4).

``vt`` (typical within-study variance)
    ``(k - p) / tr(P)`` with ``P = W - W X (X'W X)^-1 X'W`` and ``W = V^-1``
    (``diag(1/v_i)`` for independent estimates; moderators included), as
    metafor's ``rma()`` (``fit$vt``) and the metafor FAQ on I^2 for multilevel
    and multivariate models (which takes ``W = solve(V)``). It is computed block
    by block, never as an n x n matrix.
``i2`` (metafor)
    ``100 D / (D + vt)``, ``D`` the heterogeneity variance of an estimate:
    ``tau^2`` in the standard model (metafor's ``I2`` of ``rma()``), the sum of
    the ``sigma2`` components for nested random intercepts (the FAQ's total
    I^2). A structured term (``~ inner | outer``, the ``tau2``/``gamma2``
    families, and random slopes) contributes the variance it adds to an
    estimate, averaged over the rows: the mean of its heterogeneous variances
    weighted by how many rows have each level (``tau^2`` itself for CS, ID and
    AR; the mean of ``z_i' G z_i`` for random slopes). A location-scale model
    contributes the mean over the rows of its fitted ``tau_i^2`` (metafor's
    ``rma(scale=)`` stores one I^2 per row, ``100 tau_i^2 / (tau_i^2 + vt)``, and
    prints none). For fixed-effects fits (``method="FE"`` or ``random=[]``)
    metafor's I^2 is Q-based: ``max(0, 100 (Q - (k - p)) / Q)``.
``i2_levels``
    The share of every random level (indexed by the term's label, as
    ``fit.sigma2``): ``100 D_j / (D + vt)``; they sum to ``i2`` (the FAQ's
    per-component multilevel I^2). Empty for fixed-effects fits.
``h2`` (metafor)
    ``(D + vt) / vt = 100 / (100 - i2)``; for fixed-effects fits ``Q / (k - p)``.
    metafor defines it for ``rma()`` only; for other models it is this same
    ratio of total to sampling variance. For a DerSimonian-Laird fit
    (``tau^2 = (Q - (k - p)) / tr(P)``) metafor's I^2 and H^2 are exactly the
    Q-based ones, Higgins and Thompson's (2002) original statistics.
``i2_q`` (Sera et al. 2019, eq. 4)
    ``100 max((Q - (k - p)) / Q, 0)``: the definition of the paper (and of
    mixmeta), for any model. It does not depend on the variance estimates.

With ``k = p`` there is no residual information: I^2 is 0 and H^2 is 1, as metafor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.build import Design
from ..design.parameters import finite


@dataclass(frozen=True)
class Heterogeneity:
    """I^2 (percent) and H^2 of a fit, by metafor's definitions and the paper's.

    Attributes
    ----------
    vt : float
        Typical within-study variance ``(k - p) / tr(P)``.
    i2 : float
        metafor's I^2 (percent).
    h2 : float
        metafor's H^2.
    i2_q : float
        The Q-based I^2 of Sera et al. (2019, eq. 4), in percent.
    i2_levels : pandas.Series
        Each random level's share of I^2 (percent), indexed by the term's label.
    level_variances : pandas.Series
        Each level's heterogeneity variance of an estimate (mean over the rows).
    """

    vt: float
    i2: float
    h2: float
    i2_q: float
    i2_levels: pd.Series
    level_variances: pd.Series


def typical_variance(design: Design) -> float:
    """metafor's typical within-study variance ``vt = (k - p) / tr(P)`` (NaN if V is singular).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("logor ~ 1", data=bm.datasets.load("bcg"), vi="logorvar").fit()
    >>> round(typical_variance(fit.design), 6)
    0.029082
    """
    k, p = design.n, design.p
    if k <= p:
        return 0.0
    trace_w, A, B = 0.0, np.zeros((p, p)), np.zeros((p, p))
    for stack in design.V.stacks:
        try:
            np.linalg.cholesky(stack.mats)
        except np.linalg.LinAlgError:
            return np.nan
        W = np.linalg.inv(stack.mats)
        X = design.X[stack.rows]
        WX = W @ X
        trace_w += float(np.trace(W, axis1=1, axis2=2).sum())
        A += np.einsum("bmi,bmj->ij", X, WX)
        B += np.einsum("bmi,bmj->ij", WX, WX)
    return (k - p) / (trace_w - float(np.trace(np.linalg.solve(A, B))))


def level_variances(fit) -> pd.Series:
    """The heterogeneity variance each random level adds to an estimate, averaged over the rows.

    Parameters
    ----------
    fit : result
        Anything with the result contract's ``design``, ``param`` and ``estimate``.

    Returns
    -------
    pandas.Series
        Indexed by the terms' labels (``"district"``, ``"district/study"``,
        ``"outcome | trial"``, ``"row"`` for the standard model).
    """
    design, param, estimate = fit.design, fit.param, fit.estimate
    scale_variances = param.group_variances(finite(estimate.theta))[0] if param.has_scale else None
    values = {}
    for k, (enc, (sd, rho)) in enumerate(zip(design.encodings, estimate.natural)):
        if param.scale_of(k) is not None:
            per_row = scale_variances[k][enc.codes]
        elif param.coscale_of(k) is not None:
            per_row = param.coscale_rows(finite(estimate.theta))[k][0] ** 2
        else:
            G = enc.term.structure.covariance(sd, rho, enc.term.q)
            per_row = np.full(design.n, G[0, 0]) if enc.Z is None else np.einsum("ni,ij,nj->n", enc.Z, G, enc.Z)
        values[enc.term.label] = float(np.mean(per_row))
    return pd.Series(values, name="variance", dtype=float)


def q_based_i2(q: float, df: int) -> float:
    """``100 max((Q - df) / Q, 0)`` (Sera et al. 2019, eq. 4), in percent.

    Examples
    --------
    >>> round(q_based_i2(163.16491786676636, 12), 1)
    92.6
    """
    return 100 * max((q - df) / q, 0.0) if q > 0 else 0.0


def heterogeneity(fit) -> Heterogeneity:
    """I^2, H^2 and the typical within-study variance of a fit (see the module's definitions).

    Parameters
    ----------
    fit : result
        Anything with the result contract's ``design``, ``param``, ``estimate``,
        ``method``, ``q`` and ``q_df``.

    Returns
    -------
    Heterogeneity
        The statistics, by the definitions of this module.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> school = bm.datasets.load("school")
    >>> h = heterogeneity(bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study").fit())
    >>> round(h.i2, 2), round(h.i2_q, 2)
    (95.19, 90.5)
    >>> h.i2_levels.round(2)
    district          63.32
    district/study    31.86
    Name: I2, dtype: float64
    """
    vt = typical_variance(fit.design)
    i2_q = q_based_i2(fit.q, fit.q_df)
    variances = level_variances(fit)
    if fit.method == "FE" or variances.empty:
        h2 = fit.q / fit.q_df if fit.q_df > 0 else 1.0
        return Heterogeneity(vt, i2_q, h2, i2_q, pd.Series(dtype=float, name="I2"), variances)
    if fit.q_df <= 0:
        return Heterogeneity(vt, 0.0, 1.0, i2_q, (0 * variances).rename("I2"), variances)
    total = float(variances.sum())
    levels = (100 * variances / (total + vt)).rename("I2")
    return Heterogeneity(vt, float(levels.sum()), total / vt + 1, i2_q, levels, variances)
