"""The profiled (restricted) log-likelihood of a design, by the fastest exact path.

Nested random intercepts with diagonal V use the O(n) closed form
(:mod:`bayesmeta.likelihood.nested`); every other model the batched blocks
(:mod:`bayesmeta.likelihood.profiled`). Both give the same
:class:`~bayesmeta.likelihood.profiled.Evaluation`.
"""

from __future__ import annotations

import numpy as np

from ..design.build import Design
from .nested import evaluate_nested, evaluate_nested_groups
from .profiled import Evaluation, evaluate_batches


def evaluate(design: Design, G: list, reml: bool, gradient: bool = False,
             logdet_xtx: float | None = None, variances: list | None = None,
             v_factors: np.ndarray | None = None, coscale: list | None = None) -> Evaluation:
    """Profiled (restricted) log-likelihood at random-effect covariances ``G`` (one per term).

    ``gradient`` asks for d loglik / d G_k; ``logdet_xtx`` (the REML constant
    log|X'X|) is computed when not given. On the batched path (``design.nested``
    None), a term with ``G[k]`` None has one variance per group, ``variances[k]``
    (n_groups,), and ``v_factors`` (n,) scales the sampling covariance to
    D^1/2 V D^1/2, and ``coscale`` (per term, None or a
    :class:`~bayesmeta.likelihood.profiled.RowCoscale`) gives structured terms with scale
    models (see :func:`bayesmeta.likelihood.profiled.evaluate_batches`).
    """
    if logdet_xtx is None:
        logdet_xtx = design.logdet_xtx if reml else 0.0
    if design.nested is not None:
        return evaluate_nested(design.nested, G, design.n, design.p, logdet_xtx, reml, gradient)
    row_variances = None
    if variances is not None:
        row_variances = [None if v is None else np.asarray(v)[enc.codes] for v, enc in zip(variances, design.encodings)]
    return evaluate_batches(list(design.batches), G, design.n, design.p, logdet_xtx, reml, gradient,
                            row_variances, v_factors, coscale)


def evaluate_groups(design: Design, variances: list[np.ndarray], reml: bool,
                    jacobians: list[np.ndarray] | None = None, logdet_xtx: float | None = None,
                    second: list[np.ndarray] | None = None) -> Evaluation:
    """Profiled (restricted) log-likelihood with one variance per group of every term.

    For designs with the nested closed form (location-scale models among them).
    ``jacobians`` (per term, (n_groups, P)) ask for the gradient along P
    parameters, returned as the evaluation's ``dtheta``; ``second`` (per term,
    (n_groups, P, P), the variances' second derivatives) for the exact Hessian,
    returned as its ``hessian``.
    """
    if logdet_xtx is None:
        logdet_xtx = design.logdet_xtx if reml else 0.0
    return evaluate_nested_groups(design.nested, variances, design.n, design.p, logdet_xtx, reml, jacobians,
                                  second)
