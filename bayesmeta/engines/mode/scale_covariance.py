"""The covariances of the coefficients of scale models (alpha; zeta of the correlation models of structured
terms) and of the proportional sampling-variance model (delta, ``V_scale=``), and their drift.

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


def coefficient_inference(objective: Objective, theta: np.ndarray, prior_precision: dict | None = None
                          ) -> tuple[np.ndarray, np.ndarray, tuple, np.ndarray]:
    """Drifting coefficients and the covariances of the scale coefficients alpha, of the
    sampling-variance coefficients delta (``V_scale=``) and of the correlation coefficients zeta (scale
    models of structured terms) at an estimate: ``(alpha_vcov, delta_vcov, drift, zeta_vcov)``.

    The covariance is the inverse Hessian of the negative (restricted)
    log-likelihood over every free variance parameter off its boundary, mapped to
    the coefficients; along drift directions the likelihood is flat, so the
    covariance is that of the projection orthogonal to them
    (:func:`bayesmeta.engines.mode.curvature.covariance`). ``prior_precision`` adds the curvature of
    independent Normal priors on the coefficients (posterior modes): a dict with any of the keys
    ``"alpha"``, ``"delta"`` and ``"zeta"``, per coefficient of that part (the precisions ``1 / sigma^2``;
    0 for no prior curvature).
    """
    param = objective.param
    drift = find_drift(param, finite(theta), objective.loglik, float(np.median(objective.design.V.diagonal())))
    n_alpha, n_delta = param.n_alpha, param.n_delta
    zeta_positions = param.coefficient_positions("zeta")
    positions = np.concatenate([param.alpha_positions(), param.delta_positions(), zeta_positions]).astype(int)
    idx = np.flatnonzero(np.isfinite(theta) & param.interior(theta, BOUNDARY_THETA))
    idx = np.union1d(idx, positions).astype(int)
    where = np.searchsorted(idx, positions)
    to_reported = np.eye(param.n_free)
    if n_alpha:
        to_reported[param.alpha_positions()] = param.alpha_transform()
    if len(zeta_positions):
        to_reported[zeta_positions] = param.coefficient_transform("zeta")
    if param.v_scale is not None:
        d = param.delta_positions()
        to_reported[np.ix_(d, d)] = param.v_scale.transform
    to_reported = to_reported[np.ix_(idx, idx)]
    flat = np.zeros((len(idx), len(drift)))
    rows = {"alpha": where[:n_alpha], "delta": where[n_alpha:n_alpha + n_delta], "zeta": where[n_alpha + n_delta:]}
    for j, dr in enumerate(drift):
        flat[rows[dr.part], j] = dr.direction
    H = hessian(objective.gradient, finite(theta), idx)
    extra = None
    if prior_precision is not None:
        unknown = set(prior_precision) - set(rows)
        if unknown:
            raise ValueError(f"coefficient_inference: prior precisions of unknown parts {sorted(unknown)}.")
        extra = np.zeros((len(idx), len(idx)))
        for part, precision in prior_precision.items():
            extra[rows[part], rows[part]] = precision
    vcov = covariance(H, to_reported, flat, extra)[np.ix_(where, where)]
    a, d = slice(0, n_alpha), slice(n_alpha, n_alpha + n_delta)
    z = slice(n_alpha + n_delta, len(positions))
    return vcov[a, a], vcov[d, d], drift, vcov[z, z]
