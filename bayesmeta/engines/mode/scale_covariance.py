"""The covariance of the scale coefficients of a location-scale model, and their drift.

At an ML/REML estimate (or a posterior mode) the scale coefficients get the
inverse Hessian of the negative (restricted) log-likelihood, as metafor's
``rma(..., scale = ~ z)``; coefficients drifting to +-infinity
(:mod:`bayesmeta.engines.mode.drift`) are projected out first.
"""

from __future__ import annotations

import numpy as np

from ...design.parameters import BOUNDARY_THETA, finite
from .curvature import covariance, hessian
from .drift import find_drift
from .objective import Objective


def scale_inference(objective: Objective, theta: np.ndarray,
                    prior_precision: np.ndarray | None = None) -> tuple[np.ndarray, tuple]:
    """Drifting scale coefficients and the covariance of the scale coefficients at an estimate.

    The covariance is the inverse Hessian of the negative (restricted)
    log-likelihood over every free variance parameter off its boundary, mapped to
    the scale coefficients; along drift directions the likelihood is flat, so the
    covariance is that of the projection orthogonal to them
    (:func:`bayesmeta.engines.mode.curvature.covariance`). ``prior_precision`` (per scale
    coefficient) adds the curvature of independent Normal priors (posterior modes).
    """
    param = objective.param
    drift = find_drift(param, finite(theta), objective.loglik, float(np.median(objective.design.V.diagonal())))
    positions = param.alpha_positions()
    idx = np.flatnonzero(np.isfinite(theta) & param.interior(theta, BOUNDARY_THETA))
    idx = np.union1d(idx, positions).astype(int)
    where = np.searchsorted(idx, positions)
    to_reported = np.eye(param.n_free)
    to_reported[positions] = param.alpha_transform()
    to_reported = to_reported[np.ix_(idx, idx)]
    flat = np.zeros((len(idx), len(drift)))
    for j, d in enumerate(drift):
        flat[where, j] = d.direction
    H = hessian(objective.gradient, finite(theta), idx)
    extra = None
    if prior_precision is not None:
        extra = np.zeros((len(idx), len(idx)))
        extra[where, where] = prior_precision
    vcov = covariance(H, to_reported, flat, extra)
    return vcov[np.ix_(where, where)], drift
