"""The Laplace approximation at the posterior mode, with the Hessian computed accurately.

pymc-extras' ``fit_laplace`` takes the covariance of its Gaussian from the BFGS
optimizer's running approximation of the inverse Hessian (or from Hessian-vector
products, which the likelihood Ops of :mod:`bayesmeta.likelihood` cannot give: they
have a gradient but no second derivative), which is up to a few percent off for the variance
components. Here the Hessian of the log posterior in the unconstrained space comes
from central differences of the model's exact gradient, and the draws of the Gaussian
are mapped back to the constrained variables and deterministics by pymc-extras, as
``fit_laplace`` does.

The density approximated is the one whose mode PyMC's MAP finds: the log posterior
of the unconstrained values without the log-Jacobian of the transforms (for the
log-transformed standard deviations the log-Jacobian is linear, so the Hessian is the
same with or without it).
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pymc as pm
from pymc.blocking import DictToArrayBijection, RaveledVars
from pymc.initial_point import make_initial_point_fn
from pymc.model.transform.optimization import freeze_dims_and_data
from scipy import optimize

from ...errors import ConvergenceWarning, SpecificationError, warn
from ..mode.curvature import hessian

#: Optimizer settings of the posterior mode (here and in :func:`bayesmeta.engines.bayes.posterior_mode.find_mode`).
MODE_OPTIONS = {"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10000}

#: Newton steps that polish the optimizer's mode with the finite-difference Hessian.
NEWTON_STEPS = 5


def _precision(gradient, x: np.ndarray, names) -> np.ndarray:
    """Minus the Hessian of the log density at ``x``; refused when it is not positive definite, naming the
    parameters of the direction of least curvature."""
    precision = -hessian(gradient, x, np.arange(len(x)))  # Richardson-extrapolated central differences
    values, vectors = np.linalg.eigh(precision)
    if values[0] <= 0:
        flat = np.abs(vectors[:, 0]) > 0.5 * np.max(np.abs(vectors[:, 0]))
        raise SpecificationError(
            "The Laplace approximation needs a posterior mode with negative curvature in every direction, but the "
            f"log posterior is flat or convex along {', '.join(str(n) for n, f in zip(names, flat) if f)} at the "
            "mode; sample with NUTS (model.sample()) instead.")
    return precision


def _polished_mode(gradient, x: np.ndarray, names) -> tuple[np.ndarray, np.ndarray]:
    """Newton steps from the optimizer's mode until a step is below 1e-8 posterior SDs; the mode and the
    precision (minus the Hessian) there."""
    precision = _precision(gradient, x, names)
    for _ in range(NEWTON_STEPS):
        step = np.linalg.solve(precision, gradient(x))
        if np.all(np.abs(step) <= 1e-8 * np.sqrt(np.diag(np.linalg.inv(precision)))):
            return x, precision
        x = x + step
        precision = _precision(gradient, x, names)
    warn(f"The posterior mode of the Laplace approximation did not converge: {NEWTON_STEPS} Newton steps "
         "after the optimizer still move it.", ConvergenceWarning)
    return x, precision


def fit_laplace(model: pm.Model, draws: int, random_seed, initvals: dict | None = None) -> az.InferenceData:
    """The Gaussian approximation N(mode, H^-1) of the posterior in the unconstrained space, with draws.

    The mode is found by L-BFGS-B (tight tolerances) and polished by Newton steps;
    ``H`` is minus the Hessian of the log posterior there, from central differences
    of the model's exact gradient. One compiled function gives both the log posterior
    and its gradient.

    Parameters
    ----------
    model : pm.Model
    draws : int
        Number of draws of the approximation.
    random_seed : int, numpy Generator or None
        Seed of the draws.
    initvals : dict, optional
        Starting values of the optimizer (constrained values by variable name); the
        others start at the model's initial point.

    Returns
    -------
    az.InferenceData
        As pymc-extras' ``fit_laplace``: the groups ``posterior`` (free variables and
        deterministics), ``unconstrained_posterior``, ``fit`` (``mean_vector`` and
        ``covariance_matrix`` over the unconstrained values, dims ``rows`` x ``columns``)
        and ``optimizer_result``.
    """
    from pymc_extras.inference.laplace_approx.idata import (
        add_fit_to_inference_data,
        add_optimizer_result_to_inference_data,
        make_unpacked_variable_names,
    )
    from pymc_extras.inference.laplace_approx.laplace import draws_from_laplace_approx
    from pymc_extras.inference.laplace_approx.scipy_interface import (
        scipy_optimize_funcs_from_loss,
    )

    model = freeze_dims_and_data(model)
    point = make_initial_point_fn(model=model, overrides=initvals, return_transformed=True)(None)
    start = DictToArrayBijection.map({v.name: point[v.name] for v in model.continuous_value_vars})
    loss_and_gradient, _ = scipy_optimize_funcs_from_loss(
        loss=-model.logp(jacobian=False), inputs=model.continuous_value_vars,
        initial_point_dict=DictToArrayBijection.rmap(start), use_grad=True, use_hess=False, use_hessp=False)
    result = optimize.minimize(loss_and_gradient, start.data, jac=True, method="L-BFGS-B", options=MODE_OPTIONS)
    names = make_unpacked_variable_names([name for name, *_ in start.point_map_info], model)
    mode, precision = _polished_mode(lambda x: -np.asarray(loss_and_gradient(x)[1], dtype=float), result.x, names)
    covariance = np.linalg.inv(precision)
    covariance = (covariance + covariance.T) / 2
    posterior, unconstrained = draws_from_laplace_approx(mean=mode, covariance=covariance, draws=draws,
                                                         model=model, random_seed=random_seed)
    idata = az.InferenceData(posterior=posterior)
    idata["unconstrained_posterior"] = unconstrained
    result.pop("hess_inv", None)  # the optimizer's rough approximation, not the covariance used
    add_fit_to_inference_data(idata, mu=RaveledVars(mode, start.point_map_info), H_inv=covariance, model=model)
    add_optimizer_result_to_inference_data(idata, result, "L-BFGS-B", mu=RaveledVars(result.x, start.point_map_info),
                                           model=model)
    return idata
