"""The objective of ML/REML: the negative profiled (restricted) log-likelihood of theta."""

from __future__ import annotations

import numpy as np

from ...design.build import Design
from ...design.parameters import Parameterization, finite
from ...likelihood.marginal import evaluate, evaluate_groups
from ...likelihood.profiled import Evaluation, NotPositiveDefinite


class Objective:
    """Negative (restricted) log-likelihood of the unconstrained variance parameters theta.

    Calling it gives the value and the analytic gradient (1e300 and a zero
    gradient where some marginal covariance is not positive definite), as
    scipy's optimizers take them.

    Parameters
    ----------
    design : Design
    param : Parameterization
    reml : bool
        Restricted (REML) or full (ML) likelihood.
    """

    def __init__(self, design: Design, param: Parameterization, reml: bool):
        self.design, self.param, self.reml = design, param, reml
        self.logdet_xtx = design.logdet_xtx if reml else 0.0

    def evaluate(self, theta: np.ndarray, gradient: bool = False) -> Evaluation:
        """The profiled likelihood's :class:`~bayesmeta.likelihood.profiled.Evaluation` at ``theta``."""
        theta = finite(theta)
        if self.param.has_scale:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # extreme alphas: checked below
                variances, jacobians = self.param.group_variances(theta, jacobian=gradient)
                ev = evaluate_groups(self.design, variances, self.reml, jacobians, self.logdet_xtx)
            if not (np.isfinite(ev.loglik) and (ev.dtheta is None or np.all(np.isfinite(ev.dtheta)))):
                raise NotPositiveDefinite("variances out of range")
            return ev
        return evaluate(self.design, self.param.covariances(theta), self.reml, gradient, self.logdet_xtx)

    def loglik(self, theta: np.ndarray) -> float:
        """The log-likelihood (-inf where it is not defined)."""
        try:
            return self.evaluate(theta).loglik
        except NotPositiveDefinite:
            return -np.inf

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            ev = self.evaluate(theta, gradient=True)
        except NotPositiveDefinite:
            return 1e300, np.zeros_like(theta)
        g = ev.dtheta if ev.dtheta is not None else self.param.gradient(finite(theta), ev.dG)
        return -ev.loglik, -g

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        """The gradient of the objective (minus that of the log-likelihood)."""
        return self(theta)[1]
