"""The posterior mode (MAP) of the PyMC model, and the Laplace approximation there."""

from __future__ import annotations

import numpy as np
import pymc as pm

from ...design.build import Design
from ...design.parameters import Parameterization
from ...likelihood.marginal import evaluate
from ...likelihood.profiled import Evaluation
from ..mode.centring import weighted_fit
from ..mode.objective import Objective
from ..mode.optimize import ModeEstimate
from ..mode.scale_covariance import coefficient_inference
from .augment import add_random_effects_and_predictions
from .draws import natural_from_draws
from .laplace import MODE_OPTIONS, fit_laplace
from .priors import PriorSet
from .pymc_model import build_model, fixed_effects_start


def _normal_precisions(priors) -> np.ndarray:
    """Per coefficient, the precision 1 / sigma^2 of a Normal prior (0 for other priors)."""
    return np.array([1.0 / p.parameters["sigma"] ** 2 if p.distribution == "Normal"
                     and np.isscalar(p.parameters.get("sigma")) else 0.0 for p in priors])


def find_mode(design: Design, param: Parameterization, prior_set: PriorSet, restricted: bool):
    """Posterior mode (MAP) of the graph, as a :class:`~bayesmeta.engines.mode.optimize.ModeEstimate`.

    The fixed effects' covariance is the inverse of the posterior precision of
    beta given the variance components (X' Sigma^-1 X plus the precision of Normal
    priors); the log-likelihood reported is that of the graph's likelihood
    (restricted if ``restricted``) at the mode. Scale coefficients (``alpha``), the
    coefficients of the sampling-variance model (``delta``) and those of the correlation
    models of structured terms (``zeta``) get the inverse of the likelihood's Hessian plus
    the precision of their Normal priors.
    """
    model = build_model(design, param, prior_set, restricted=restricted)
    # start the fixed effects at their weighted least-squares fit, not at 0: an outcome far from zero
    # (the BCG log risk ratios plus 1e8) would otherwise leave L-BFGS far from the mode (issue 16)
    start = fixed_effects_start(model, design, weighted_fit(design)[0])
    point, raw = pm.find_MAP(start=start, model=model, progressbar=False, method="L-BFGS-B", return_raw=True,
                             options=MODE_OPTIONS)
    natural = [(sd[0], rho[0]) for sd, rho in
               natural_from_draws(param, {k: np.atleast_1d(v)[None] for k, v in point.items()})]
    alpha, delta, zeta = (np.atleast_1d(point[name]) if present else None for name, present in
                          (("alpha", param.has_scale), ("delta", param.v_scale is not None), ("zeta", param.n_zeta)))
    with np.errstate(divide="ignore"):  # an SD of exactly 0 maps to -inf, as in ML/REML
        theta = param.theta_from_natural(natural, alpha, delta, zeta)
    objective = Objective(design, param, restricted)
    profiled = objective.evaluate(theta)
    beta = np.atleast_1d(point["beta"])
    A = np.linalg.inv(profiled.vcov)
    shift = beta - profiled.beta
    vcov = np.linalg.inv(A + np.diag(_normal_precisions(prior_set.beta)))
    loglik = profiled.loglik - 0.5 * shift @ A @ shift
    zero = [np.zeros((t.q, t.q)) for t in param.terms]
    fe = evaluate(design, zero, reml=False)
    gradient_norm = float(np.max(np.abs(raw.jac))) if getattr(raw, "jac", None) is not None else np.nan
    alpha_vcov, delta_vcov, drift, zeta_vcov = None, None, (), None
    if param.has_scale or param.v_scale is not None:
        precisions = {part: _normal_precisions(getattr(prior_set, part)) for part in ("alpha", "delta", "zeta")}
        alpha_vcov, delta_vcov, drift, zeta_vcov = coefficient_inference(objective, theta, precisions)
    return ModeEstimate("MAP", theta, natural, Evaluation(loglik, profiled.quad, beta, vcov, None),
                        bool(raw.success or gradient_norm < 1e-4), str(raw.message), int(getattr(raw, "nit", 0)),
                        gradient_norm, fe.quad, fe.beta, alpha_vcov if param.has_scale else None, drift,
                        delta_vcov, zeta_vcov)


def laplace(design: Design, param: Parameterization, prior_set: PriorSet, draws: int, random_seed,
            restricted: bool = False):
    """Gaussian approximation at the posterior mode, with draws (:func:`.laplace.fit_laplace`).

    The Gaussian's covariance is the inverse of minus the Hessian of the log posterior
    in the unconstrained space at the mode; the optimizer starts the fixed effects at
    their weighted least-squares fit, as :func:`find_mode`.
    """
    model = build_model(design, param, prior_set, restricted=restricted)
    start = fixed_effects_start(model, design, weighted_fit(design)[0])
    idata = fit_laplace(model, draws, random_seed, initvals=start)
    add_random_effects_and_predictions(idata, design, param, random_seed)
    return idata
