"""Affine invariance of ML/REML: the outcome is centred before the optimiser sees it.

The profiled likelihood only depends on the outcome through its residuals from
the column space of X, so replacing ``y`` by ``y - X b0`` (``b0`` the weighted
least-squares fit with weights ``1 / v_i``) changes nothing but the fixed
effects, which come back as ``b0 + b``. In floating point it changes a lot: the
closed form for nested random intercepts forms ``y' W y - c' b``, which for an
outcome shifted far from zero (the BCG log risk ratios plus 1e8) cancels to
noise, and the optimiser then finds tau^2 = 0.0037 instead of 0.338.

Centring is applied when the outcome is large compared with its residuals
(:data:`CENTRE_RATIO`); for ordinary data the design is used as it is. A change
of scale (``y`` times a, ``V`` times a^2) needs nothing: the variance
parameters are measured in units of the typical sampling SD
(:attr:`~bayesmeta.design.parameters.Parameterization.sd_unit`).
"""

from __future__ import annotations

from dataclasses import replace
from functools import wraps

import numpy as np

from ...design.build import Design

#: Centre when sum(w y^2) exceeds this many times sum(w r^2) (r the WLS residuals): digits
#: that the Gram-matrix form of the likelihood would lose to cancellation.
CENTRE_RATIO = 1e3


def weighted_fit(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares coefficients (weights 1 / v_i) and residuals of the outcome.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> d = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").design
    >>> b0, r = weighted_fit(d)
    >>> round(float(b0[0]), 4)
    -0.4303
    """
    w = 1.0 / design.V.diagonal()
    root = np.sqrt(w)
    b0, *_ = np.linalg.lstsq(design.X * root[:, None], design.y * root, rcond=None)
    return b0, design.y - design.X @ b0


def with_outcome(design: Design, y: np.ndarray) -> Design:
    """``design`` with another outcome on the same rows (blocks, batches and nested layout kept)."""
    y = np.asarray(y, dtype=float)
    nested = design.nested
    if nested is not None:
        U = nested.U.copy()
        U[:, design.p] = y[nested.perm]
        nested = replace(nested, U=U)
    batches = tuple(replace(b, y=np.where(b.rows >= 0, y[np.maximum(b.rows, 0)], 0.0)) for b in design.batches)
    return replace(design, y=y, nested=nested, batches=batches)


def centre_outcome(design: Design) -> tuple[Design, np.ndarray]:
    """The design with its outcome centred (``y - X b0``) when that matters, and ``b0``.

    Returns the design itself and zeros when the outcome is not large compared with
    its residuals (see :data:`CENTRE_RATIO`).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> dat = bm.datasets.load("bcg").assign(y=lambda d: d["logrr"] + 1e8)
    >>> d = bm.MetaModel("y ~ 1", data=dat, vi="logrrvar").design
    >>> centred, b0 = centre_outcome(d)
    >>> float(b0[0]) > 9.9e7, bool(abs(centred.y).max() < 10)
    (True, True)
    """
    b0, r = weighted_fit(design)
    w = 1.0 / design.V.diagonal()
    total, residual = float(np.sum(w * design.y ** 2)), float(np.sum(w * r ** 2))
    if not np.isfinite(total) or total <= CENTRE_RATIO * max(residual, np.finfo(float).tiny):
        return design, np.zeros(design.p)
    return with_outcome(design, r), b0


def shift_estimate(estimate, b0: np.ndarray):
    """An estimate of the centred problem carried back: fixed effects plus ``b0``.

    ``estimate`` is a :class:`~bayesmeta.engines.mode.optimize.ModeEstimate` or a
    likelihood :class:`~bayesmeta.likelihood.profiled.Evaluation`; the variance
    components, the log-likelihood, Q and the covariance of the fixed effects are
    unchanged by centring.
    """
    if not np.any(b0):
        return estimate
    if hasattr(estimate, "evaluation"):
        return replace(estimate, evaluation=shift_estimate(estimate.evaluation, b0),
                       beta_fixed=estimate.beta_fixed + b0)
    return replace(estimate, beta=estimate.beta + b0)


def outcome_centred(fit):
    """Decorator of an ML/REML fitting function ``fit(design, param, method, **options)``: fit the
    centred problem (:func:`centre_outcome`) and carry the estimate back (:func:`shift_estimate`)."""

    @wraps(fit)
    def centred_fit(design: Design, param, method: str, *args, **kwargs):
        design, b0 = centre_outcome(design)
        return shift_estimate(fit(design, param, method, *args, **kwargs), b0)

    return centred_fit


def offset_fixed_effects(evaluate):
    """Decorator of a method returning an :class:`~bayesmeta.likelihood.profiled.Evaluation` of an
    object whose design was centred (attribute ``beta_offset``, the ``b0`` of :func:`centre_outcome`):
    the fixed effects of the evaluation are carried back."""

    @wraps(evaluate)
    def carried_back(self, *args, **kwargs):
        return shift_estimate(evaluate(self, *args, **kwargs), self.beta_offset)

    return carried_back
