"""Closed-form likelihood for nested random intercepts with diagonal V, in O(n).

When every random term is a random intercept, the grouping factors are nested
(each group of a finer level lies inside one group of every coarser level) and
V is diagonal, the marginal covariance of a top-level group is

    Sigma = D + sum_l s_l sum_{g in level l} 1_g 1_g'

and its inverse follows from one Sherman-Morrison update per group, from the
finest level to the coarsest. Everything the likelihood needs is a Gram matrix
``[X, y, 1]' Sigma^-1 [X, y, 1]`` per group: summed over the children of a
group, then updated for the group's own random intercept. Derivatives are
carried along in forward mode, so the gradient costs a few more passes of the
same O(n) kind.

The variance may differ between the groups of a level (location-scale models:
``s_g = exp(w_g' alpha)``): :func:`gram_and_logdet_groups` takes one variance
per group and, for the derivatives, the derivative of every group's variance
along a few directions (``ds_g / dalpha = s_g w_g``, one direction per scale
coefficient); :func:`gram_and_logdet` is the special case of one variance per
level, with one direction per level.
"""

from __future__ import annotations

import numpy as np

from ..design.nested import NestedDesign
from .profiled import Evaluation, directional, profiled


def gram_and_logdet(nd: NestedDesign, s: np.ndarray, gradient: bool):
    """Sum over top-level groups of [X, y, 1]' Sigma^-1 [X, y, 1], and log|Sigma|.

    Parameters
    ----------
    nd : NestedDesign
    s : numpy.ndarray
        Variance of each covariance term (indexed like the design's terms).
    gradient : bool
        Also return the derivatives with respect to every level's variance.

    Returns
    -------
    T : (q, q) array, logdet : float, dT : (L, q, q) or None, dlogdet : (L,) or None
        Derivatives are ordered like ``nd.term_index``.
    """
    variances = [np.full(len(start), float(s[k])) for start, k in zip(nd.starts, nd.term_index)]
    directions = None
    if gradient:
        L = len(nd.starts)
        directions = [np.zeros((len(start), L)) for start in nd.starts]
        for level, D in enumerate(directions):
            D[:, level] = 1.0
    return gram_and_logdet_groups(nd, variances, directions)


def gram_and_logdet_groups(nd: NestedDesign, variances: list, directions: list | None = None):
    """The same sums with one variance per group, and derivatives along given directions.

    Parameters
    ----------
    nd : NestedDesign
    variances : list of numpy.ndarray
        For each level (finest first, as ``nd.starts``), the variance of each of its
        groups in sorted order.
    directions : list of numpy.ndarray, optional
        For each level, an array (n_groups, P): the derivative of every group's
        variance along each of P directions (e.g. the scale coefficients).

    Returns
    -------
    T : (q, q) array, logdet : float, dT : (P, q, q) or None, dlogdet : (P,) or None
        ``dT`` and ``dlogdet`` are the derivatives along the P directions.
    """
    U = nd.U
    n, q = U.shape
    gradient = directions is not None
    P = directions[0].shape[1] if gradient else 0
    # a finest level of one-row groups only adds to the diagonal: absorb it there
    d = nd.d.copy()
    absorbed = len(nd.starts[0]) == n
    if absorbed:
        d = d + variances[0]
    M = U[:, :, None] * U[:, None, :] / d[:, None, None]
    logdet = np.log(d)
    if gradient:
        dM = np.zeros((n, P, q, q))
        dlog = np.zeros((n, P))
        if absorbed:
            rate = directions[0] / d[:, None]
            dM = -M[:, None] * rate[:, :, None, None]
            dlog = rate
    for level, start in enumerate(nd.starts):
        if level == 0 and absorbed:
            continue
        M = np.add.reduceat(M, start, axis=0)
        logdet = np.add.reduceat(logdet, start)
        a = M[:, -1, -1]
        m = M[:, :, -1]
        sk = variances[level]
        denom = 1.0 + sk * a
        c = sk / denom
        mm = m[:, :, None] * m[:, None, :]
        if gradient:
            dM = np.add.reduceat(dM, start, axis=0)
            dlog = np.add.reduceat(dlog, start, axis=0)
            ds = directions[level]
            da = dM[:, :, -1, -1]
            dm = dM[:, :, :, -1]
            dlog += (ds * a[:, None] + sk[:, None] * da) / denom[:, None]
            dc = (ds - sk[:, None] ** 2 * da) / denom[:, None] ** 2
            cross = dm[:, :, :, None] * m[:, None, None, :]
            dM -= dc[:, :, None, None] * mm[:, None] + c[:, None, None, None] * (cross + np.swapaxes(cross, 2, 3))
        M = M - c[:, None, None] * mm
        logdet = logdet + np.log(denom)
    T = M.sum(axis=0)
    if not gradient:
        return T, float(logdet.sum()), None, None
    return T, float(logdet.sum()), dM.sum(axis=0), dlog.sum(axis=0)


def evaluate_nested(nested, G: list[np.ndarray], n: int, p: int, logdet_xtx: float, reml: bool,
                    gradient: bool = False) -> Evaluation:
    """The same quantities as :func:`evaluate`, by the O(n) closed form for nested intercepts.

    Parameters
    ----------
    nested : bayesmeta.design.nested.NestedDesign
    G : list of (1, 1) arrays
        The variance of each random-intercept term.
    """
    s = np.array([g[0, 0] for g in G])
    T, logdet, dT, dlogdet = gram_and_logdet(nested, s, gradient)
    ev = profiled(T, logdet, n, p, logdet_xtx, reml)
    if not gradient:
        return ev
    dG = [np.zeros((1, 1)) for _ in G]
    for level, (k, d) in enumerate(zip(nested.term_index, directional(dT, dlogdet, ev, p, reml))):
        dG[k][0, 0] = d
    return Evaluation(ev.loglik, ev.quad, ev.beta, ev.vcov, dG)


def evaluate_nested_groups(nested, variances: list[np.ndarray], n: int, p: int, logdet_xtx: float, reml: bool,
                           jacobians: list[np.ndarray] | None = None) -> Evaluation:
    """The closed form with one variance per group (location-scale models).

    Parameters
    ----------
    nested : bayesmeta.design.nested.NestedDesign
    variances : list of numpy.ndarray
        Per covariance term, the variance of each of its groups (indexed by group code).
    jacobians : list of numpy.ndarray, optional
        Per covariance term, (n_groups, P): the derivatives of the groups' variances
        with respect to P parameters; the result's ``dtheta`` is then the gradient of
        the log-likelihood with respect to them.
    """
    per_level = [variances[k][codes] for k, codes in zip(nested.term_index, nested.group_codes)]
    directions = None
    if jacobians is not None:
        directions = [jacobians[k][codes] for k, codes in zip(nested.term_index, nested.group_codes)]
    T, logdet, dT, dlogdet = gram_and_logdet_groups(nested, per_level, directions)
    ev = profiled(T, logdet, n, p, logdet_xtx, reml)
    if jacobians is None:
        return ev
    return Evaluation(ev.loglik, ev.quad, ev.beta, ev.vcov, None, directional(dT, dlogdet, ev, p, reml))
