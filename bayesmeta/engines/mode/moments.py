"""Estimators of tau^2 for the standard model other than ML/REML, as metafor's ``rma(method=...)``.

The standard random-effects model ``y_i = x_i' b + u_i + e_i``, ``u_i ~ N(0, tau^2)``,
``e_i ~ N(0, v_i)`` with known ``v_i``. With weights ``w`` and
``P_w = W - W X (X'W X)^-1 X'W`` (``W = diag(w)``), ``k`` estimates and ``p``
fixed effects:

====== ============================================================ =======================================
method tau^2                                                        reference
====== ============================================================ =======================================
``DL`` ``(y'P y - (k - p)) / tr(P)``, ``w = 1/v``                    DerSimonian and Laird (1986)
``HE`` ``(y'P y - tr(P V)) / (k - p)``, ``w = 1`` (OLS residuals)    Hedges (1983)
``HS`` ``(y'P y - k) / sum(w)``, ``w = 1/v``                         Hunter and Schmidt (2004)
``SJ`` ``tau0^2 y'P y / (k - p)``, ``w = 1/(v + tau0^2)``,           Sidik and Jonkman (2005)
       ``tau0^2 = mean((y - mean(y))^2)`` (one step)
``PM`` the root of ``y'P y = k - p``, ``w = 1/(v + tau^2)``           Paule and Mandel (1982)
``EB`` the same equation (metafor solves it by Morris' empirical     Morris (1983)
       Bayes iteration, which converges to the same root)
====== ============================================================ =======================================

Negative values are truncated to 0, as metafor does. ``se_tau2`` gives metafor's
standard error of each estimator (and of ML and REML): the moment formulas
``Var(y'P y)`` of the estimating equation for DL/HE/HS/SJ, ``sqrt(2 k^2 / (k - p)) /
sum(w)`` for EB/PM, ``sqrt(2 / sum(w^2))`` for ML and ``sqrt(2 / tr(P P))`` for REML
(the inverse Fisher information).

Like metafor, the fixed effects are then the weighted least-squares estimate with
weights ``1 / (v + tau^2)``, and the reported log-likelihood is the ML
log-likelihood at the estimate (metafor's ``logLik()`` of such fits; AIC, BIC and
AICc follow from it with ``k`` observations and ``p + 1`` parameters).

One deliberate difference: for models *without an intercept* metafor's ``rma()``
centres ``y`` at its mean inside these estimating equations (and in QE), which
changes the estimates; here ``y`` enters as it is (the residuals of the model as
specified), as in the ML/REML fits and metafor's ``rma.mv``. Models with an
intercept are unaffected.

No n x n matrix is formed: every trace is computed from ``X``, the weights and
p x p matrices.
"""

from __future__ import annotations

import numpy as np

from ...design.build import Design
from ...design.parameters import Parameterization
from ...errors import SpecificationError
from ...likelihood.marginal import evaluate
from .centring import outcome_centred
from .optimize import ModeEstimate

#: The estimators of this module, by metafor's name.
MOMENT_METHODS = ("DL", "HE", "HS", "SJ", "EB", "PM")


class Projection:
    """``P = W - W X (X'W X)^-1 X'W`` for diagonal weights ``w``, without forming P.

    Parameters
    ----------
    w : numpy.ndarray (n,)
        Positive weights.
    X : numpy.ndarray (n, p)

    Examples
    --------
    >>> X = np.ones((3, 1))
    >>> P = Projection(np.ones(3), X)
    >>> round(P.trace(), 10), round(P.quad(np.array([1.0, 2.0, 3.0])), 10)
    (2.0, 2.0)
    """

    def __init__(self, w: np.ndarray, X: np.ndarray):
        self.w, self.X = np.asarray(w, dtype=float), np.asarray(X, dtype=float)
        self.U = self.w[:, None] * self.X
        self.H = np.linalg.inv(self.X.T @ self.U)

    def quad(self, y: np.ndarray) -> float:
        """``y' P y``: the weighted residual sum of squares of the WLS fit."""
        r = y - self.X @ (self.H @ (self.U.T @ y))
        return float(np.sum(self.w * r ** 2))

    def trace(self, d: np.ndarray | None = None) -> float:
        """``tr(P D)`` with ``D = diag(d)`` (the identity when ``d`` is None)."""
        d = np.ones(len(self.w)) if d is None else d
        return float(np.sum(self.w * d) - np.sum(self.H * (self.U.T @ (d[:, None] * self.U))))

    def trace2(self, d1: np.ndarray | None = None, d2: np.ndarray | None = None) -> float:
        """``tr(P D1 P D2)`` for diagonal ``D1``, ``D2`` (identities when None)."""
        ones = np.ones(len(self.w))
        d1 = ones if d1 is None else d1
        d2 = ones if d2 is None else d2
        A1 = self.U.T @ (d1[:, None] * self.U)
        A2 = self.U.T @ (d2[:, None] * self.U)
        cross = self.U.T @ ((self.w * d1 * d2)[:, None] * self.U)
        return float(np.sum(self.w ** 2 * d1 * d2) - 2 * np.sum(self.H * cross)
                     + np.trace(self.H @ A1 @ self.H @ A2))


def standard_variances(design: Design, method: str) -> np.ndarray:
    """The sampling variances of a standard model (V must be diagonal), or an error naming ``method``."""
    if any(s.size > 1 for s in design.V.stacks):
        raise SpecificationError(f"method: {method!r} needs independent estimates with sampling variances vi "
                                 "(a diagonal V), as metafor's rma(); this V has covariances between rows.")
    return design.V.diagonal()


def _sj_start(y: np.ndarray) -> float:
    """Sidik and Jonkman's initial estimate: the unweighted mean squared deviation of y."""
    return float(np.mean((y - y.mean()) ** 2))


def _generalised_q_root(y: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
    """The tau^2 at which the generalised Q statistic equals its degrees of freedom (0 if Q(0) < k - p)."""
    from scipy.optimize import brentq  # slow to import: loaded with the first PM/EB fit

    df = len(y) - X.shape[1]

    def excess(tau2: float) -> float:
        return Projection(1 / (v + tau2), X).quad(y) - df

    if excess(0.0) <= 0:
        return 0.0
    upper = max(100.0, 10 * float(np.var(y)))
    while excess(upper) > 0:
        upper *= 10
    return float(brentq(excess, 0.0, upper, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=1000))


def moment_tau2(y: np.ndarray, v: np.ndarray, X: np.ndarray, method: str) -> float:
    """The estimate of tau^2 by ``method`` (one of :data:`MOMENT_METHODS`), truncated at 0.

    Examples
    --------
    >>> y, v, X = np.array([0.1, 0.5, 0.9]), np.array([0.01, 0.02, 0.04]), np.ones((3, 1))
    >>> round(moment_tau2(y, v, X, "HE"), 6)
    0.136667
    """
    k, p = X.shape
    if method == "HE":
        P = Projection(np.ones(k), X)
        tau2 = (P.quad(y) - P.trace(v)) / (k - p)
    elif method == "SJ":
        start = _sj_start(y)
        tau2 = start * Projection(1 / (v + start), X).quad(y) / (k - p) if start > 0 else 0.0
    elif method in ("PM", "EB"):
        tau2 = _generalised_q_root(y, v, X)
    else:
        P = Projection(1 / v, X)
        tau2 = (P.quad(y) - (k - p)) / P.trace() if method == "DL" else (P.quad(y) - k) / np.sum(1 / v)
    return max(float(tau2), 0.0)


def se_tau2(y: np.ndarray, v: np.ndarray, X: np.ndarray, tau2: float, method: str) -> float:
    """metafor's ``se.tau2`` of the estimate ``tau2`` by ``method`` (moment methods, ``"ML"``, ``"REML"``).

    Examples
    --------
    >>> v, X = np.array([0.01, 0.02, 0.04]), np.ones((3, 1))
    >>> round(se_tau2(np.zeros(3), v, X, 0.1, "ML"), 6)
    0.099232
    """
    k, p = X.shape
    if method == "HE":
        P = Projection(np.ones(k), X)
        return float(np.sqrt(2 * P.trace2(v, v) + 4 * tau2 * P.trace(v) + 2 * tau2 ** 2 * (k - p)) / (k - p))
    if method in ("DL", "HS"):
        P = Projection(1 / v, X)
        spread = np.sqrt(2 * (k - p) + 4 * tau2 * P.trace() + 2 * tau2 ** 2 * P.trace2())
        return float(spread / (P.trace() if method == "DL" else np.sum(P.w)))
    if method == "SJ":
        start = _sj_start(y)
        P = Projection(1 / (v + start), X)
        return float(start / (k - p) * np.sqrt(2 * P.trace2(v, v) + 4 * tau2 * P.trace2(v) + 2 * tau2 ** 2
                                                * P.trace2()))
    w = 1 / (v + tau2)
    if method in ("PM", "EB"):
        return float(np.sqrt(2 * k ** 2 / (k - p)) / np.sum(w))
    if method == "ML":
        return float(np.sqrt(2 / np.sum(w ** 2)))
    if method == "REML":
        return float(np.sqrt(2 / Projection(w, X).trace2()))
    raise SpecificationError(f"method: no standard error of tau^2 for {method!r}.")


@outcome_centred  # affine invariance: a far-off outcome is centred first (issue 16)
def fit_moments(design: Design, param: Parameterization, method: str) -> ModeEstimate:
    """Fit the standard model with tau^2 from a moment (or generalised-Q) estimator.

    Parameters
    ----------
    design : Design
        A standard model: one row-level random effect, diagonal V.
    param : Parameterization
        Its tau^2 may be fixed (``fixed={"tau2": ...}``), which every method then keeps.
    method : {"DL", "HE", "HS", "SJ", "EB", "PM"}

    Returns
    -------
    ModeEstimate
        ``method`` is the estimator's name; the evaluation (fixed effects, their
        covariance, log-likelihood) is the ML one at the estimate.
    """
    if method not in MOMENT_METHODS:
        raise SpecificationError(f"method: expected one of {', '.join(MOMENT_METHODS)}, got {method!r}.")
    v = standard_variances(design, method)
    fixed = param.fixed_sd[0][0]
    tau2 = moment_tau2(design.y, v, design.X, method) if np.isnan(fixed) else float(fixed) ** 2
    natural = [(np.array([np.sqrt(tau2)]), np.zeros(0))]
    evaluation = evaluate(design, [np.array([[tau2]])], reml=False)
    fe = evaluate(design, [np.zeros((1, 1))], reml=False)
    message = f"{method} estimate of tau^2" if np.isnan(fixed) else "tau^2 fixed"
    return ModeEstimate(method, param.theta_from_natural(natural), natural, evaluation, True, message, 0, 0.0,
                        fe.quad, fe.beta)
