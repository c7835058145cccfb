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
            step: float = STEP, richardson: bool = True) -> np.ndarray:
    """Hessian of a function over the coordinates ``idx``, from its gradient.

    Parameters
    ----------
    gradient : callable
        theta -> gradient (full length).
    theta : numpy.ndarray
    idx : numpy.ndarray of int
        Coordinates to differentiate.
    step : float
    richardson : bool
        Extrapolate central differences at ``step`` and ``step / 2`` (error of order
        step^4), or use one central difference (half the gradient evaluations).

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

    H = (4 * central(step / 2) - central(step)) / 3 if richardson else central(step)
    return (H + H.T) / 2


def covariance(H: np.ndarray, to_reported: np.ndarray, flat: np.ndarray | None = None,
               extra: np.ndarray | None = None) -> np.ndarray:
    """Covariance of reported parameters ``r = to_reported @ theta`` from the Hessian in theta.

    Parameters
    ----------
    H : numpy.ndarray (m, m)
        Hessian of the negative log-likelihood in theta.
    to_reported : numpy.ndarray (m, m)
        Invertible linear map from theta to the reported coordinates.
    flat : numpy.ndarray (m, j), optional
        Directions (in reported coordinates) along which the likelihood is flat
        (drifting coefficients). The covariance is then that of the estimate
        projected on their orthogonal complement: it is right for every linear
        function of the parameters orthogonal to them, and meaningless for the others.
    extra : numpy.ndarray (m, m), optional
        Added to the Hessian in reported coordinates (the curvature of a prior).

    Returns
    -------
    numpy.ndarray (m, m)
        NaN everywhere when the (projected) Hessian is not positive definite.
    """
    m = H.shape[0]
    inv_map = np.linalg.inv(to_reported)
    H_reported = inv_map.T @ H @ inv_map
    if extra is not None:
        H_reported = H_reported + extra
    basis = np.eye(m)
    if flat is not None and flat.shape[1]:
        Q, _ = np.linalg.qr(flat, mode="complete")
        basis = Q[:, flat.shape[1]:]
    try:
        L = np.linalg.cholesky(basis.T @ H_reported @ basis)
    except np.linalg.LinAlgError:
        return np.full((m, m), np.nan)
    half = basis @ np.linalg.inv(L).T
    return half @ half.T
