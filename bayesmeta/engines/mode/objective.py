"""The objective of ML/REML: the negative profiled (restricted) log-likelihood of theta.

Designs with the nested closed form (nested random intercepts with diagonal V,
with or without scale models) are evaluated with one variance per group and
derivatives straight in theta, to second order when asked: their Hessian is
exact (:meth:`Objective.hessian`). Other designs (block V, structured terms, the
proportional sampling-variance model ``V_scale``, scale models beside them) give
the analytic gradient, and their Hessian comes from finite differences of it
(:func:`bayesmeta.engines.mode.curvature.hessian`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...design.build import Design
from ...design.parameters import Parameterization, finite
from ...likelihood.marginal import evaluate, evaluate_groups
from ...likelihood.profiled import Evaluation, NotPositiveDefinite, coscale_at
from .centring import centre_outcome, offset_fixed_effects


def term_variances(param: Parameterization, theta: np.ndarray, order: int = 0) -> tuple[list, list, list]:
    """The variances of every term's groups at ``theta``, with derivatives in theta up to ``order``.

    A term without a scale model gives one variance for all its groups (a scalar),
    its derivative (n_free,) and second derivative (n_free, n_free): with
    ``sd = sd_unit exp(theta)``, ``dv/dtheta = 2 v`` and ``d2v/dtheta2 = 4 v``. A
    term with a scale model, ``v = exp(W_std theta)`` per group, gives (n_groups,),
    ``v w`` (n_groups, n_free) and ``v w w'`` (n_groups, n_free, n_free).

    Returns
    -------
    variances, jacobians, second : lists per term (the last two None below their order)
    """
    theta = np.asarray(theta, dtype=float)
    m = param.n_free
    variances, jacobians, second, pos = [], [], [], 0
    for k, (t, (sd, _), fs, size) in enumerate(zip(param.terms, param.natural(theta), param.fixed_sd,
                                                    param.sizes())):
        sc = param.scale_of(k)
        if sc is not None:
            W = sc.W_std
            block = slice(pos + size - sc.r, pos + size)
            v = np.exp(W @ theta[block])
            J = np.zeros((len(v), m)) if order >= 1 else None
            D = np.zeros((len(v), m, m)) if order >= 2 else None
            if order >= 1:
                J[:, block] = v[:, None] * W
            if order >= 2:
                D[:, block, block] = v[:, None, None] * W[:, :, None] * W[:, None, :]
        else:
            v = float(sd[0] ** 2)
            J, D = (np.zeros(m) if order >= 1 else None), (np.zeros((m, m)) if order >= 2 else None)
            if size and np.isnan(fs[0]):
                if order >= 1:
                    J[pos] = 2.0 * v
                if order >= 2:
                    D[pos, pos] = 4.0 * v
        variances.append(v)
        jacobians.append(J)
        second.append(D)
        pos += size
    return variances, jacobians if order >= 1 else None, second if order >= 2 else None


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
        design, self.beta_offset = centre_outcome(design)  # affine invariance (issue 16)
        self.design, self.param, self.reml = design, param, reml
        self.logdet_xtx = design.logdet_xtx if reml else 0.0

    @property
    def exact_hessian(self) -> bool:
        """Whether :meth:`hessian` is exact (the nested closed form) rather than None."""
        return self.design.nested is not None

    @offset_fixed_effects
    def evaluate(self, theta: np.ndarray, gradient: bool = False, hessian: bool = False) -> Evaluation:
        """The profiled likelihood's :class:`~bayesmeta.likelihood.profiled.Evaluation` at ``theta``.

        ``hessian`` (nested designs only) also asks for the exact Hessian in theta.
        """
        theta = finite(theta)
        if self.design.nested is None:
            return self._evaluate_batches(theta, gradient)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # extreme alphas: checked below
            variances, jacobians, second = term_variances(self.param, theta, 2 if hessian else int(gradient))
            ev = evaluate_groups(self.design, variances, self.reml, jacobians, self.logdet_xtx, second)
        derivatives = [v for v in (ev.dtheta, ev.hessian) if v is not None]
        if not (np.isfinite(ev.loglik) and all(np.all(np.isfinite(v)) for v in derivatives)):
            raise NotPositiveDefinite("variances out of range")
        return ev

    def _evaluate_batches(self, theta: np.ndarray, gradient: bool) -> Evaluation:
        """The batched path; with scale models or ``V_scale``, the gradient in theta as ``dtheta``."""
        param = self.param
        G = param.covariances(theta)
        if not param.has_scale and param.v_scale is None:
            return evaluate(self.design, G, self.reml, gradient, self.logdet_xtx)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # extreme coefficients: checked below
            variances = [v if param.scale_of(k) is not None else None
                         for k, v in enumerate(param.group_variances(theta)[0])]
            factors = param.v_multipliers(theta)
            coscale = coscale_at(param, theta)
            sds = [c.sd for c in coscale if c is not None]
            finite_parts = [v for v in variances if v is not None] + ([] if factors is None else [factors]) + sds
            if not all(np.all(np.isfinite(v) & (v > 0)) for v in finite_parts):
                raise NotPositiveDefinite("variances out of range")
            ev = evaluate(self.design, G, self.reml, gradient, self.logdet_xtx, variances, factors, coscale)
        if not gradient:
            return ev
        dvariances = [None if d is None else np.bincount(enc.codes, weights=d, minlength=enc.term.n_groups)
                      for d, enc in zip(ev.drows, self.design.encodings)]
        dtheta = param.gradient(theta, ev.dG, dvariances, ev.dlog_v, ev.dcoscale)
        if not np.all(np.isfinite(dtheta)):
            raise NotPositiveDefinite("variances out of range")
        return replace(ev, dtheta=dtheta)

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

    def with_hessian(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Value, gradient and exact Hessian of the objective from one evaluation (nested designs).

        Raises
        ------
        NotPositiveDefinite
            Where the likelihood is not defined.
        """
        ev = self.evaluate(theta, hessian=True)
        return -ev.loglik, -ev.dtheta, -ev.hessian

    def hessian(self, theta: np.ndarray) -> np.ndarray | None:
        """The exact Hessian of the objective in theta (nested designs), or None (use finite differences).

        Raises
        ------
        NotPositiveDefinite
            Where the likelihood is not defined.
        """
        if not self.exact_hessian:
            return None
        return -self.evaluate(theta, hessian=True).hessian
