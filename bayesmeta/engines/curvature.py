"""Standard errors of variance parameters from the curvature of the log-likelihood.

The fixed effects' covariance comes from GLS, ``(X' Sigma^-1 X)^-1``; the
scale coefficients of a location-scale model get theirs, as in metafor's
``rma(..., scale = ~ z)``, from the inverse Hessian of the (restricted)
log-likelihood with the fixed effects profiled out. The Hessian is computed by
Richardson-extrapolated central differences of the analytic gradient (error of
order h^4), over every free variance parameter away from its boundary, so the
uncertainty of the other variance components is accounted for.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: Step of the central differences (theta is on a unit scale: log SDs, standardised coefficients).
STEP = 1e-3


def hessian(gradient: Callable[[np.ndarray], np.ndarray], theta: np.ndarray, idx: np.ndarray,
            step: float = STEP) -> np.ndarray:
    """Hessian of a function over the coordinates ``idx``, from its gradient.

    Parameters
    ----------
    gradient : callable
        theta -> gradient (full length).
    theta : numpy.ndarray
    idx : numpy.ndarray of int
        Coordinates to differentiate.
    step : float

    Returns
    -------
    numpy.ndarray (len(idx), len(idx)), symmetrised.
    """
    def central(h):
        H = np.empty((len(idx), len(idx)))
        for a, i in enumerate(idx):
            e = np.zeros_like(theta)
            e[i] = h
            H[:, a] = (gradient(theta + e)[idx] - gradient(theta - e)[idx]) / (2 * h)
        return H

    H = (4 * central(step / 2) - central(step)) / 3
    return (H + H.T) / 2


def covariance(H: np.ndarray, to_reported: np.ndarray, dropped: np.ndarray) -> np.ndarray:
    """Covariance of reported parameters ``r = to_reported @ theta`` from the Hessian in theta.

    Parameters
    ----------
    H : numpy.ndarray (m, m)
        Hessian of the negative log-likelihood in theta.
    to_reported : numpy.ndarray (m, m)
        Invertible linear map from theta to the reported coordinates.
    dropped : numpy.ndarray of bool (m,)
        Reported coordinates treated as fixed (drifting coefficients): their rows
        and columns are NaN, the others are the inverse of the Hessian without them.

    Returns
    -------
    numpy.ndarray (m, m)
        NaN everywhere when the remaining Hessian is not positive definite.
    """
    m = H.shape[0]
    inv_map = np.linalg.inv(to_reported)
    H_reported = inv_map.T @ H @ inv_map
    keep = np.flatnonzero(~dropped)
    out = np.full((m, m), np.nan)
    if len(keep):
        sub = H_reported[np.ix_(keep, keep)]
        try:
            L = np.linalg.cholesky(sub)
        except np.linalg.LinAlgError:
            return out
        inv_L = np.linalg.inv(L)
        out[np.ix_(keep, keep)] = inv_L.T @ inv_L
    return out
