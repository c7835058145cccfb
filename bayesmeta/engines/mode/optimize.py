"""ML and REML by maximising the profiled (restricted) likelihood: the optimiser.

The fixed effects are profiled out by GLS; the variance components are found by
L-BFGS on the unconstrained parameters of
:class:`~bayesmeta.design.parameters.Parameterization` with the analytic gradient, then
polished by Newton steps on a finite-difference Hessian of that gradient.
Variance components whose optimum lies on the boundary are set to exactly zero
when doing so does not lower the likelihood.

For location-scale models the likelihood is evaluated with one variance per
group and gives the gradient in theta directly; after the fit, drifting scale
coefficients are detected (:mod:`bayesmeta.engines.mode.drift`) and the covariance of the
scale coefficients is taken from the Hessian (:mod:`bayesmeta.engines.mode.scale_covariance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...design.build import Design
from ...design.parameters import BOUNDARY_THETA, ZERO_THETA, Parameterization, finite
from ...errors import ConvergenceWarning, DriftWarning, warn
from ...likelihood.marginal import evaluate
from ...likelihood.profiled import Evaluation
from .curvature import hessian
from .objective import Objective
from .scale_covariance import scale_inference


@dataclass(frozen=True)
class ModeEstimate:
    """Raw output of an ML/REML/FE fit.

    ``alpha_vcov`` (covariance of the scale coefficients; with drifting ones,
    that of the projection orthogonal to the drift directions) and ``drift``
    (:class:`~bayesmeta.engines.mode.drift.Drift` records) are set for location-scale models.
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


def _start(design: Design, param: Parameterization) -> np.ndarray:
    """Moment-based start: total heterogeneity split evenly over the variance components."""
    beta, *_ = np.linalg.lstsq(design.X, design.y, rcond=None)
    resid = design.y - design.X @ beta
    total = max(np.var(resid) - np.mean(design.V.diagonal()), 0.1 * np.mean(design.V.diagonal()))
    n_scale = sum(sc is not None for sc in param.scale_models)
    n_var = sum(int(np.isnan(fs).any()) for fs in param.fixed_sd) + n_scale or 1
    natural = []
    for t, fs, fr in zip(param.terms, param.fixed_sd, param.fixed_rho):
        sd = np.where(np.isnan(fs), np.sqrt(total / n_var), fs)
        rho = np.where(np.isnan(fr), 0.0, fr)
        natural.append((sd, rho))
    # scale models: the same variance for every group (least squares in the log-variance)
    alpha = [np.linalg.lstsq(sc.W, np.full(len(sc.W), np.log(total / n_var)), rcond=None)[0]
             for sc in param.scale_models if sc is not None]
    return param.theta_from_natural(natural, np.concatenate(alpha) if alpha else None)


def _newton_polish(objective: Objective, theta: np.ndarray, steps: int = 8, tol: float = 1e-8) -> np.ndarray:
    """Safeguarded Newton steps with a finite-difference Hessian of the analytic gradient.

    The Hessian is computed once at the L-BFGS solution (where the curvature is
    already that of the optimum) and reused; steps stop when the gradient of the
    interior parameters is below ``tol`` times the size of the objective.
    """
    f0, g0 = objective(theta)
    tol = tol * max(1.0, abs(f0))
    idx = np.flatnonzero(np.isfinite(theta) & objective.param.interior(theta, BOUNDARY_THETA))
    if len(idx) == 0 or np.max(np.abs(g0[idx])) < tol:
        return theta
    H = hessian(objective.gradient, theta, idx, step=1e-5, richardson=False)
    w, U = np.linalg.eigh(H)
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


def _snap_to_boundary(objective: Objective, theta: np.ndarray) -> np.ndarray:
    """Set SDs that drift towards zero to exactly zero if the likelihood does not drop."""
    free_sd = objective.param.free_sd_positions()
    f_best = objective(theta)[0]
    for i in free_sd:
        if theta[i] < BOUNDARY_THETA:
            cand = theta.copy()
            cand[i] = ZERO_THETA
            f = objective(cand)[0]
            if f <= f_best + 1e-9:
                theta, f_best = cand, min(f, f_best)
    return theta


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
    objective = Objective(design, param, reml)
    zero_G = [np.zeros((t.q, t.q)) for t in param.terms]
    fe = evaluate(design, zero_G, reml=False)
    if method == "FE" or param.n_free == 0:
        theta = np.full(param.n_free, ZERO_THETA) if method == "FE" else np.zeros(0)
        if method == "FE":
            ev = fe
            natural = [(np.zeros(t.n_sd), np.zeros(t.n_rho)) for t in param.terms]
        else:
            ev = objective.evaluate(theta)
            natural = param.natural(theta)
        return ModeEstimate(method, theta, natural, ev, True, "no free variance components", 0, 0.0, fe.quad, fe.beta)
    # scipy.optimize is slow to import: it is imported with the first fit
    from scipy.optimize import minimize

    theta0 = _start(design, param)
    best = None
    for start in [theta0, theta0 - 1.0, theta0 + 1.0]:
        res = minimize(objective, start, jac=True, method="L-BFGS-B",
                       options={"maxiter": maxiter, "ftol": 1e-12, "gtol": 1e-9, "maxcor": 20})
        if best is None or res.fun < best.fun - 1e-9:
            best = res
        # L-BFGS often stops in its line search once at machine precision: judge by the gradient
        interior = param.interior(res.x, BOUNDARY_THETA)
        small_gradient = not interior.any() or np.max(np.abs(res.jac[interior])) < 1e-4 * max(1.0, abs(res.fun))
        if res.fun < 1e299 and (res.success or small_gradient):
            break
    theta = _newton_polish(objective, best.x) if polish else best.x
    theta = _snap_to_boundary(objective, theta)
    _, grad = objective(theta)
    active = param.interior(theta, BOUNDARY_THETA)
    gnorm = float(np.max(np.abs(grad[active]))) if active.any() else 0.0
    ev = objective.evaluate(theta)
    converged = bool(np.isfinite(ev.loglik) and gnorm < 1e-3)
    message = str(best.message)
    if not converged:
        warn(
            f"{method} optimisation may not have converged (max |gradient| {gnorm:.2g}; optimizer: {message}).",
            ConvergenceWarning)
    natural = param.natural(finite(theta))
    natural = [(np.where(sd < param.sd_unit * np.exp(-700), 0.0, sd), rho) for sd, rho in natural]
    alpha_vcov, drift = scale_inference(objective, theta) if param.has_scale else (None, ())
    for d in drift:
        warn(f"{method}: {d}.", DriftWarning)
    return ModeEstimate(method, theta, natural, ev, converged, message, int(best.nit), gnorm, fe.quad, fe.beta,
                        alpha_vcov, drift)
