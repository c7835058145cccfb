"""ML and REML by maximising the profiled (restricted) likelihood.

The fixed effects are profiled out by GLS; the variance components are found by
L-BFGS on the unconstrained parameters of
:class:`~bayesmeta.parameters.Parameterization` with the analytic gradient, then
polished by Newton steps on a finite-difference Hessian of that gradient.
Variance components whose optimum lies on the boundary are set to exactly zero
when doing so does not lower the likelihood.

For location-scale models the likelihood is evaluated with one variance per
group and gives the gradient in theta directly; after the fit, drifting scale
coefficients are detected (:mod:`bayesmeta.drift`) and the covariance of the
scale coefficients is taken from the Hessian (:mod:`bayesmeta.engines.curvature`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from ..design import Design
from ..drift import find_drift
from ..errors import ConvergenceWarning, DriftWarning
from ..likelihood import Evaluation, NotPositiveDefinite
from ..parameters import Parameterization
from . import curvature

#: theta below which an SD is tried at exactly zero (SD < scale * exp(-9) ~ 1e-4 scale).
_BOUNDARY_THETA = -9.0
_ZERO_THETA = -np.inf


@dataclass(frozen=True)
class ModeEstimate:
    """Raw output of an ML/REML/FE fit.

    ``alpha_vcov`` (covariance of the scale coefficients; with drifting ones,
    that of the projection orthogonal to the drift directions) and ``drift``
    (:class:`~bayesmeta.drift.Drift` records) are set for location-scale models.
    """

    method: str
    theta: np.ndarray
    natural: list
    evaluation: Evaluation
    converged: bool
    message: str
    n_iter: int
    gradient_norm: float
    q_fixed: float
    beta_fixed: np.ndarray
    alpha_vcov: np.ndarray | None = None
    drift: tuple = ()


class _Objective:
    """Negative (restricted) log-likelihood of theta, caching the last evaluation."""

    def __init__(self, design: Design, param: Parameterization, reml: bool):
        self.design, self.param, self.reml = design, param, reml
        self.logdet_xtx = design.logdet_xtx if reml else 0.0

    def evaluate(self, theta: np.ndarray, gradient: bool = False) -> Evaluation:
        theta = _finite(theta)
        if self.param.has_scale:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # extreme alphas: checked below
                variances, jacobians = self.param.group_variances(theta, jacobian=gradient)
                ev = self.design.evaluate_groups(variances, self.reml, jacobians, self.logdet_xtx)
            if not (np.isfinite(ev.loglik) and (ev.dtheta is None or np.all(np.isfinite(ev.dtheta)))):
                raise NotPositiveDefinite("variances out of range")
            return ev
        G = self.param.covariances(theta)
        return self.design.evaluate(G, self.reml, gradient, self.logdet_xtx)

    def loglik(self, theta: np.ndarray) -> float:
        try:
            return self.evaluate(theta).loglik
        except NotPositiveDefinite:
            return -np.inf

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            ev = self.evaluate(theta, gradient=True)
        except NotPositiveDefinite:
            return 1e300, np.zeros_like(theta)
        g = ev.dtheta if ev.dtheta is not None else self.param.gradient(_finite(theta), ev.dG)
        return -ev.loglik, -g

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        return self(theta)[1]


def _finite(theta: np.ndarray) -> np.ndarray:
    """Replace -inf (an SD fixed at zero on the boundary) by a value giving SD ~ 0."""
    return np.where(np.isneginf(theta), -745.0, theta)


def _start(design: Design, param: Parameterization) -> np.ndarray:
    """Moment-based start: total heterogeneity split evenly over the variance components."""
    beta, *_ = np.linalg.lstsq(design.X, design.y, rcond=None)
    resid = design.y - design.X @ beta
    total = max(np.var(resid) - np.mean(design.V.diagonal()), 0.1 * np.mean(design.V.diagonal()))
    n_scale = sum(sc is not None for sc in param.scales)
    n_var = sum(int(np.isnan(fs).any()) for fs in param.fixed_sd) + n_scale or 1
    natural = []
    for t, fs, fr in zip(param.terms, param.fixed_sd, param.fixed_rho):
        sd = np.where(np.isnan(fs), np.sqrt(total / n_var), fs)
        rho = np.where(np.isnan(fr), 0.0, fr)
        natural.append((sd, rho))
    # scale models: the same variance for every group (least squares in the log-variance)
    alpha = [np.linalg.lstsq(sc.W, np.full(len(sc.W), np.log(total / n_var)), rcond=None)[0]
             for sc in param.scales if sc is not None]
    return param.theta_from_natural(natural, np.concatenate(alpha) if alpha else None)


def _newton_polish(objective: _Objective, theta: np.ndarray, steps: int = 8, tol: float = 1e-8) -> np.ndarray:
    """Safeguarded Newton steps with a finite-difference Hessian of the analytic gradient.

    The Hessian is computed once at the L-BFGS solution (where the curvature is
    already that of the optimum) and reused; steps stop when the gradient of the
    interior parameters is below ``tol`` times the size of the objective.
    """
    f0, g0 = objective(theta)
    tol = tol * max(1.0, abs(f0))
    idx = np.flatnonzero(np.isfinite(theta) & objective.param.interior(theta, _BOUNDARY_THETA))
    if len(idx) == 0 or np.max(np.abs(g0[idx])) < tol:
        return theta
    h = 1e-5
    H = np.empty((len(idx), len(idx)))
    for a, i in enumerate(idx):
        e = np.zeros_like(theta)
        e[i] = h
        H[:, a] = (objective.gradient(theta + e)[idx] - objective.gradient(theta - e)[idx]) / (2 * h)
    w, U = np.linalg.eigh((H + H.T) / 2)
    if w.min() <= 0:
        return theta
    for _ in range(steps):
        step = -(U @ ((U.T @ g0[idx]) / w))
        t = 1.0
        while t > 1e-4:
            cand = theta.copy()
            cand[idx] += t * step
            f1, g1 = objective(cand)
            if f1 <= f0 + 1e-12:
                break
            t /= 2
        else:
            break
        theta, f0, g0 = cand, f1, g1
        if np.max(np.abs(g0[idx])) < tol:
            break
    return theta


def _snap_to_boundary(objective: _Objective, theta: np.ndarray) -> np.ndarray:
    """Set SDs that drift towards zero to exactly zero if the likelihood does not drop."""
    free_sd = _free_sd_positions(objective.param)
    f_best = objective(theta)[0]
    for i in free_sd:
        if theta[i] < _BOUNDARY_THETA:
            cand = theta.copy()
            cand[i] = _ZERO_THETA
            f = objective(cand)[0]
            if f <= f_best + 1e-9:
                theta, f_best = cand, min(f, f_best)
    return theta


def _free_sd_positions(param: Parameterization) -> list[int]:
    out, pos = [], 0
    for fs, size in zip(param.fixed_sd, param._sizes()):
        k = int(np.isnan(fs).sum())
        out += list(range(pos, pos + k))
        pos += size
    return out


def scale_inference(objective: _Objective, theta: np.ndarray,
                    prior_precision: np.ndarray | None = None) -> tuple[np.ndarray, tuple]:
    """Drifting scale coefficients and the covariance of the scale coefficients at an estimate.

    The covariance is the inverse Hessian of the negative (restricted)
    log-likelihood over every free variance parameter off its boundary, mapped to
    the scale coefficients; along drift directions the likelihood is flat, so the
    covariance is that of the projection orthogonal to them
    (:func:`bayesmeta.engines.curvature.covariance`). ``prior_precision`` (per scale
    coefficient) adds the curvature of independent Normal priors (posterior modes).
    """
    param = objective.param
    drift = find_drift(param, _finite(theta), objective.loglik, float(np.median(objective.design.V.diagonal())))
    positions = param.alpha_positions()
    idx = np.flatnonzero(np.isfinite(theta) & param.interior(theta, _BOUNDARY_THETA))
    idx = np.union1d(idx, positions).astype(int)
    where = np.searchsorted(idx, positions)
    to_reported = np.eye(param.n_free)
    to_reported[positions] = param.alpha_transform()
    to_reported = to_reported[np.ix_(idx, idx)]
    flat = np.zeros((len(idx), len(drift)))
    for j, d in enumerate(drift):
        flat[where, j] = d.direction
    H = curvature.hessian(objective.gradient, _finite(theta), idx)
    extra = None
    if prior_precision is not None:
        extra = np.zeros((len(idx), len(idx)))
        extra[where, where] = prior_precision
    vcov = curvature.covariance(H, to_reported, flat, extra)
    return vcov[np.ix_(where, where)], drift


def fit_mode(design: Design, param: Parameterization, method: str, maxiter: int = 2000,
             polish: bool = True) -> ModeEstimate:
    """Fit by ML, REML or FE (variance components fixed at zero / their fixed values).

    Parameters
    ----------
    design : Design
    param : Parameterization
    method : {"ML", "REML", "FE"}
    maxiter : int
        Maximum number of L-BFGS iterations.
    polish : bool
        Refine the L-BFGS solution by Newton steps.
    """
    reml = method == "REML"
    objective = _Objective(design, param, reml)
    zero_G = [np.zeros((t.q, t.q)) for t in param.terms]
    fe = design.evaluate(zero_G, reml=False)
    if method == "FE" or param.n_free == 0:
        theta = np.full(param.n_free, _ZERO_THETA) if method == "FE" else np.zeros(0)
        if method == "FE":
            ev = fe
            natural = [(np.zeros(t.n_sd), np.zeros(t.n_rho)) for t in param.terms]
        else:
            ev = objective.evaluate(theta)
            natural = param.natural(theta)
        return ModeEstimate(method, theta, natural, ev, True, "no free variance components", 0, 0.0, fe.quad, fe.beta)
    theta0 = _start(design, param)
    best = None
    for start in [theta0, theta0 - 1.0, theta0 + 1.0]:
        res = minimize(objective, start, jac=True, method="L-BFGS-B",
                       options={"maxiter": maxiter, "ftol": 1e-12, "gtol": 1e-9, "maxcor": 20})
        if best is None or res.fun < best.fun - 1e-9:
            best = res
        # L-BFGS often stops in its line search once at machine precision: judge by the gradient
        interior = param.interior(res.x, _BOUNDARY_THETA)
        small_gradient = not interior.any() or np.max(np.abs(res.jac[interior])) < 1e-4 * max(1.0, abs(res.fun))
        if res.fun < 1e299 and (res.success or small_gradient):
            break
    theta = _newton_polish(objective, best.x) if polish else best.x
    theta = _snap_to_boundary(objective, theta)
    _, grad = objective(theta)
    active = param.interior(theta, _BOUNDARY_THETA)
    gnorm = float(np.max(np.abs(grad[active]))) if active.any() else 0.0
    ev = objective.evaluate(theta)
    converged = bool(np.isfinite(ev.loglik) and gnorm < 1e-3)
    message = str(best.message)
    if not converged:
        warnings.warn(
            f"{method} optimisation may not have converged (max |gradient| {gnorm:.2g}; optimizer: {message}).",
            ConvergenceWarning, stacklevel=3)
    natural = param.natural(_finite(theta))
    natural = [(np.where(sd < param.scale * np.exp(-700), 0.0, sd), rho) for sd, rho in natural]
    alpha_vcov, drift = scale_inference(objective, theta) if param.has_scale else (None, ())
    for d in drift:
        warnings.warn(f"{method}: {d}.", DriftWarning, stacklevel=3)
    return ModeEstimate(method, theta, natural, ev, converged, message, int(best.nit), gnorm, fe.quad, fe.beta,
                        alpha_vcov, drift)
