"""ML and REML by maximising the profiled (restricted) likelihood: the optimiser.

The fixed effects are profiled out by GLS; the variance components are found by
L-BFGS on the unconstrained parameters of
:class:`~bayesmeta.design.parameters.Parameterization` with the analytic gradient, then
polished by Newton steps: on the exact Hessian where the likelihood gives it (nested
random intercepts, :meth:`~bayesmeta.engines.mode.objective.Objective.hessian`),
else on a finite-difference Hessian of the gradient. Convergence is judged by the
gradient or by the Newton decrement, which, unlike the gradient, does not grow
with the number of rows.
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
from ...likelihood.profiled import Evaluation, NotPositiveDefinite
from .centring import outcome_centred
from .curvature import hessian
from .drift import delta_drift
from .objective import Objective
from .scale_covariance import coefficient_inference

#: Largest Newton step in theta (log-SD units: a factor e^2 in an SD).
MAX_NEWTON_STEP = 2.0


@dataclass(frozen=True)
class ModeEstimate:
    """Raw output of an ML/REML/FE fit.

    ``alpha_vcov`` (covariance of the scale coefficients; with drifting ones,
    that of the projection orthogonal to the drift directions) and ``drift``
    (:class:`~bayesmeta.engines.mode.drift.Drift` records) are set for location-scale models,
    ``delta_vcov`` (covariance of the coefficients of ``V_scale=``) for models with one,
    ``zeta_vcov`` (covariance of the correlation coefficients) for scale models of structured terms.
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
    delta_vcov: np.ndarray | None = None
    zeta_vcov: np.ndarray | None = None


def _start(design: Design, param: Parameterization) -> np.ndarray:
    """Moment-based start: total heterogeneity split evenly over the variance components."""
    beta, *_ = np.linalg.lstsq(design.X, design.y, rcond=None)
    resid = design.y - design.X @ beta
    total = max(np.var(resid) - np.mean(design.V.diagonal()), 0.1 * np.mean(design.V.diagonal()))
    blocks = param.coefficient_blocks("alpha")
    n_scale = len(blocks)
    n_var = sum(int(np.isnan(fs).any()) for fs in param.fixed_sd) + n_scale or 1
    natural = []
    for t, fs, fr in zip(param.terms, param.fixed_sd, param.fixed_rho):
        sd = np.where(np.isnan(fs), np.sqrt(total / n_var), fs)
        rho = np.where(np.isnan(fr), 0.0, fr)
        natural.append((sd, rho))
    # scale models: the same variance for every group (least squares in the log-variance)
    alpha = [np.linalg.lstsq(sc.W, np.full(len(sc.W), np.log(total / n_var)), rcond=None)[0]
             for _, sc, _ in blocks]
    # V_scale: the sampling variances as given (a factor of 1); correlation models: rho = 0
    return param.theta_from_natural(natural, np.concatenate(alpha) if alpha else None)


def _curvature(objective: Objective, theta: np.ndarray, idx: np.ndarray) -> np.ndarray | None:
    """The Hessian of the objective over ``idx``: exact where the likelihood gives it, else
    central differences of the analytic gradient (None where it is not defined)."""
    if objective.exact_hessian:
        try:
            return objective.hessian(theta)[np.ix_(idx, idx)]
        except NotPositiveDefinite:
            return None
    return hessian(objective.gradient, theta, idx, step=1e-5, richardson=False)


def newton_decrement(g: np.ndarray, H: np.ndarray | None) -> float:
    """``g' H^-1 g``: twice the predicted gain of a Newton step, in log-likelihood units
    (inf when H is not positive definite).

    It does not grow with the size of the data, unlike the gradient: below 1e-6, the
    estimate is within 1e-3 standard errors of the optimum.
    """
    if H is None:
        return np.inf
    w, U = np.linalg.eigh(H)
    if w.min() <= 0:
        return np.inf
    return float(np.sum((U.T @ g) ** 2 / w))


def _newton_polish(objective: Objective, theta: np.ndarray, steps: int = 8,
                   tol: float = 1e-12) -> tuple[np.ndarray, float]:
    """Safeguarded Newton steps over the parameters off their boundaries.

    With the exact Hessian (nested designs) every step recomputes it, which
    converges quadratically; otherwise the finite-difference Hessian at the L-BFGS
    solution (where the curvature is already that of the optimum) is reused. Steps
    stop once the Newton decrement is below ``tol``; a step is accepted when the
    objective does not rise by more than its rounding error, which grows with the
    size of the data. Returns theta and the final Newton decrement.
    """
    f0, g0 = objective(theta)
    idx = np.flatnonzero(np.isfinite(theta) & objective.param.interior(theta, BOUNDARY_THETA))
    if len(idx) == 0:
        return theta, 0.0
    noise = 1e-13 * max(1.0, abs(f0))
    H = _curvature(objective, theta, idx)
    decrement = newton_decrement(g0[idx], H)
    for _ in range(steps):
        if not np.isfinite(decrement) or decrement < tol:
            break
        w, U = np.linalg.eigh(H)
        step = -(U @ ((U.T @ g0[idx]) / w))
        t = 1.0
        while t > 1e-4:
            cand = theta.copy()
            cand[idx] += t * step
            f1, g1 = objective(cand)
            if f1 <= f0 + noise:
                break
            t /= 2
        else:
            break
        theta, f0, g0 = cand, f1, g1
        if objective.exact_hessian:
            H = _curvature(objective, theta, idx)
        decrement = newton_decrement(g0[idx], H)
    return theta, decrement


def _newton_fit(objective: Objective, theta: np.ndarray, maxiter: int = 40, tol: float = 1e-16,
                stall_tol: float = 1e-10) -> tuple[np.ndarray, float, int] | None:
    """Newton's method on the exact Hessian from the start (nested designs without scale models).

    Each iteration is one evaluation to second order (value, gradient and Hessian
    together, the cost of about two gradients), and convergence is quadratic: a
    handful of iterations where L-BFGS needs tens of gradients. Directions of
    negative curvature are turned (the absolute eigenvalues), steps are capped at
    :data:`MAX_NEWTON_STEP` and backtracked until the objective does not rise by
    more than its rounding error.

    Iterations stop at a Newton decrement below ``tol`` (1e-16: quadratic
    convergence makes the last digits cheap, and agreement with metafor's estimates
    to 1e-10 relies on them), or below ``stall_tol`` once a step would no longer reduce
    the decrement (rounding bounds it: large data, uncentred moderators).

    Returns theta, the Newton decrement and the number of iterations, or None when
    a standard deviation heads for its boundary (zero) or the iterations run out:
    then L-BFGS takes over.
    """
    try:
        f0, g0, H = objective.with_hessian(theta)
    except NotPositiveDefinite:
        return None
    free_sd = np.array(objective.param.free_sd_positions(), dtype=int)
    for iteration in range(maxiter):
        w, U = np.linalg.eigh(H)
        decrement = np.inf
        if w.min() > 0:
            decrement = float(np.sum((U.T @ g0) ** 2 / w))
            if decrement < tol:
                return theta, decrement, iteration
        w = np.maximum(np.abs(w), 1e-8 * max(np.abs(w).max(), 1e-300))
        step = -(U @ ((U.T @ g0) / w))
        step *= min(1.0, MAX_NEWTON_STEP / max(np.abs(step).max(), 1e-300))
        noise = 1e-13 * max(1.0, abs(f0))
        t = 1.0
        while t > 1e-6:
            cand = theta + t * step
            try:
                f1, g1, H1 = objective.with_hessian(cand)
                if f1 <= f0 + noise:
                    break
            except NotPositiveDefinite:
                pass
            t /= 4
        else:  # no step keeps the objective: at the rounding floor near the optimum, or lost
            return (theta, decrement, iteration) if decrement < stall_tol else None
        if decrement < stall_tol and not newton_decrement(g1, H1) < decrement:
            return theta, decrement, iteration  # at the rounding floor: the step would only add noise
        theta, f0, g0, H = cand, f1, g1, H1
        if len(free_sd) and theta[free_sd].min() < BOUNDARY_THETA:
            return None
    return None


def _snap_to_boundary(objective: Objective, theta: np.ndarray) -> np.ndarray:
    """Set SDs that drift towards zero to exactly zero if the likelihood does not drop."""
    free_sd = [i for i in objective.param.free_sd_positions() if theta[i] < BOUNDARY_THETA]
    if not free_sd:
        return theta
    f_best = objective(theta)[0]
    for i in free_sd:
        if theta[i] < BOUNDARY_THETA:
            cand = theta.copy()
            cand[i] = ZERO_THETA
            f = objective(cand)[0]
            if f <= f_best + 1e-9:
                theta, f_best = cand, min(f, f_best)
    return theta


@outcome_centred  # affine invariance: a far-off outcome is centred first (issue 16)
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
    theta0 = _start(design, param)
    if polish and objective.exact_hessian and not param.has_scale:
        newton = _newton_fit(objective, theta0)
        if newton is not None:
            return _result(objective, method, newton[0], newton[1], newton[2], "Newton: converged", fe)
    # scipy.optimize takes a fifth of a second to import: only when Newton's method does not apply
    from scipy.optimize import minimize

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
    theta, decrement = _newton_polish(objective, best.x) if polish else (best.x, np.inf)
    return _result(objective, method, theta, decrement, int(best.nit), str(best.message), fe)


def _result(objective: Objective, method: str, theta: np.ndarray, decrement: float, n_iter: int, message: str,
            fe: Evaluation) -> ModeEstimate:
    """The estimate at the optimiser's solution: boundary snapping, convergence check, scale inference."""
    param = objective.param
    theta = _snap_to_boundary(objective, theta)
    _, grad = objective(theta)
    active = param.interior(theta, BOUNDARY_THETA)
    gnorm = float(np.max(np.abs(grad[active]))) if active.any() else 0.0
    ev = objective.evaluate(theta)
    # the gradient grows with the data (a million rows: rounding alone gives ~1e-3); the
    # Newton decrement does not
    converged = bool(np.isfinite(ev.loglik) and (gnorm < 1e-3 or decrement < 1e-6))
    if not converged:
        warn(
            f"{method} optimisation may not have converged (max |gradient| {gnorm:.2g}; optimizer: {message}).",
            ConvergenceWarning)
    natural = param.natural(finite(theta))
    natural = [(np.where(sd < param.sd_unit * np.exp(-700), 0.0, sd), rho) for sd, rho in natural]
    alpha_vcov, delta_vcov, drift, zeta_vcov = None, None, (), None
    if param.has_scale or param.v_scale is not None:
        alpha_vcov, delta_vcov, drift, zeta_vcov = coefficient_inference(objective, theta)
    for d in drift:
        warn(f"{method}: {d}.", DriftWarning)
    drifting_delta = delta_drift(param, finite(theta))
    if drifting_delta:
        warn(f"{method}: {drifting_delta}.", DriftWarning)
    return ModeEstimate(method, theta, natural, ev, converged, message, n_iter, gnorm, fe.quad, fe.beta,
                        alpha_vcov if param.has_scale else None, drift, delta_vcov, zeta_vcov)
