"""Closed-form likelihood for nested random intercepts with diagonal V, in O(n).

When every random term is a random intercept, the grouping factors are nested
(each group of a finer level lies inside one group of every coarser level) and
V is diagonal, the marginal covariance of a top-level group is

    Sigma = D + sum_l s_l sum_{g in level l} 1_g 1_g'

and its inverse follows from one Sherman-Morrison update per group, from the
finest level to the coarsest. Everything the likelihood needs is the Gram
matrix ``T = U' Sigma^-1 U`` of ``U = [X, y, 1]``, summed over the top-level
groups, and ``log|Sigma|``. With ``W_g`` the inverse covariance of group ``g``
(of any level) and ``m_g = U_g' W_g 1`` (a vector of length ``p + 2``; its last
entry is ``a_g = 1' W_g 1``), one update is

    M = sum of the children's m,   den = 1 + s_g a,   m_g = M / den,
    T -= (s_g / den) M M',         log|Sigma_g| = sum of the children's + log(den),

starting from ``T = U' D^-1 U`` and ``m_i = u_i / d_i`` for the rows. So each
level costs a few sums over vectors of length ``p + 2`` per unit: no
``(p + 2) x (p + 2)`` matrix is formed per row or group.

Derivatives are carried along in forward mode: along P directions (the
derivative of every group's variance with respect to P parameters, e.g. the
model's unconstrained variance parameters) and, when asked, to second order
(the second derivatives of the variances along pairs of directions), which
gives the exact Hessian of the profiled likelihood
(:func:`bayesmeta.likelihood.profiled.second_directional`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..design.nested import NestedDesign
from .profiled import Evaluation, directional, profiled, second_directional

#: Designs with at least this many rows use the compiled kernel
#: (:mod:`bayesmeta.likelihood.nested_kernel`); smaller ones NumPy, which is as fast
#: there and does not load numba.
COMPILED_MIN_ROWS = 20_000


@dataclass
class _Units:
    """The state of every unit of one stage (rows, then the groups of each level)."""

    m: np.ndarray            # (N, q)
    logdet: np.ndarray       # (N,)
    dm: np.ndarray | None = None       # (N, P, q)
    dlog: np.ndarray | None = None     # (N, P)
    d2m: np.ndarray | None = None      # (N, P, P, q)
    d2log: np.ndarray | None = None    # (N, P, P)

    def summed(self, start: np.ndarray) -> _Units:
        """Sums over the children of every group (``start``: where each group's units start)."""
        if len(start) == len(self.logdet):  # one unit per group: nothing to sum
            return self
        fields = (self.m, self.logdet, self.dm, self.dlog, self.d2m, self.d2log)
        return _Units(*(None if v is None else np.add.reduceat(v, start, axis=0) for v in fields))


def _outer_sum(weights: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``sum_g weights[g, ...] left[g, ..., i] right[g, j]`` as one matrix product.

    ``weights`` (G, *k), ``left`` (G, *k, q) or (G, q) (broadcast over k), ``right`` (G, q);
    the result is (*k, q, q).
    """
    left = left.reshape(left.shape[:1] + (1,) * (weights.ndim - left.ndim + 1) + left.shape[1:])
    weighted = weights[..., None] * left
    return np.tensordot(weighted, right, axes=([0], [0]))


def gram_and_logdet_groups(nd: NestedDesign, variances: list, directions: list | None = None,
                           second: list | None = None):
    """``T = U' Sigma^-1 U`` and ``log|Sigma|`` summed over top-level groups, with derivatives.

    Parameters
    ----------
    nd : NestedDesign
    variances : list of numpy.ndarray
        For each level (finest first, as ``nd.starts``), the variance of each of its
        groups in sorted order, or one variance for all (a scalar).
    directions : list of numpy.ndarray, optional
        For each level, an array (n_groups, P): the derivative of every group's
        variance along each of P directions (e.g. the model's parameters); (P,)
        for a level with one variance.
    second : list of numpy.ndarray, optional
        For each level, an array (n_groups, P, P): the second derivatives of the
        variances along pairs of directions, (P, P) for a level with one variance;
        asks for second derivatives.

    Returns
    -------
    T : (k, k) array, logdet : float, dT : (P, k, k) or None, dlogdet : (P,) or None,
    d2T : (P, P, k, k) or None, d2logdet : (P, P) or None
        ``k = p + 1``: the Gram matrix of ``[X, y]``.
    """
    if len(nd.d) >= COMPILED_MIN_ROWS:
        from .nested_kernel import gram_compiled  # numba: loaded for large designs only

        return gram_compiled(nd, variances, directions, second)
    U, d = nd.U, nd.d
    gradient, hessian = directions is not None, second is not None
    P = np.shape(directions[0])[-1] if gradient else 0
    sizes = [len(start) for start in nd.starts]
    variances = [np.broadcast_to(v, (G,)) for v, G in zip(variances, sizes)]
    if gradient:
        directions = [np.broadcast_to(v, (G, P)) for v, G in zip(directions, sizes)]
    if hessian:
        second = [np.broadcast_to(v, (G, P, P)) for v, G in zip(second, sizes)]
    q = U.shape[1]
    T = (U / d[:, None]).T @ U
    units = _Units(U / d[:, None], np.log(d))
    dT = np.zeros((P, q, q)) if gradient else None
    d2T = np.zeros((P, P, q, q)) if hessian else None
    for level, start in enumerate(nd.starts):
        total = units.summed(start)
        M, s = total.m, variances[level]
        if level == 0 and gradient:  # the rows' state does not depend on the variances
            G = len(s)
            total.dm, total.dlog = np.zeros((G, P, q)), np.zeros((G, P))
            if hessian:
                total.d2m, total.d2log = np.zeros((G, P, P, q)), np.zeros((G, P, P))
        a = M[:, -1]
        r = 1.0 / (1.0 + s * a)
        c = s * r
        T -= _outer_sum(c, M, M)
        units = _Units(M * r[:, None], total.logdet - np.log(r))
        if not gradient:
            continue
        ds, dM = directions[level], total.dm
        da = dM[:, :, -1]
        dden = ds * a[:, None] + s[:, None] * da
        dr = -dden * (r ** 2)[:, None]
        dc = ds * r[:, None] + s[:, None] * dr
        cross = _outer_sum(c[:, None], dM, M)  # sum c dM_p M'
        dT -= _outer_sum(dc, M, M) + cross + np.swapaxes(cross, 1, 2)
        units.dm = dM * r[:, None, None] + M[:, None, :] * dr[:, :, None]
        units.dlog = total.dlog + dden * r[:, None]
        if not hessian:
            continue
        d2s, d2M = second[level], total.d2m
        d2a = d2M[:, :, :, -1]
        pair = ds[:, :, None] * da[:, None, :]
        d2den = d2s * a[:, None, None] + pair + np.swapaxes(pair, 1, 2) + s[:, None, None] * d2a
        d2r = -d2den * (r ** 2)[:, None, None] + 2 * dden[:, :, None] * dden[:, None, :] * (r ** 3)[:, None, None]
        pair = ds[:, :, None] * dr[:, None, :]
        d2c = d2s * r[:, None, None] + pair + np.swapaxes(pair, 1, 2) + s[:, None, None] * d2r
        E = _outer_sum(dc[:, :, None], dM[:, None, :, :], M)  # [p, r, i, j] = sum dc_p dM_r,i M_j
        F = _outer_sum(c[:, None, None], d2M, M)             # sum c d2M_pr,i M_j
        H = np.tensordot(c[:, None, None] * dM, dM, axes=([0], [0])).transpose(0, 2, 1, 3)  # c dM_p,i dM_r,j
        E = E + np.swapaxes(E, 2, 3)
        d2T -= (_outer_sum(d2c, M, M) + E + np.swapaxes(E, 0, 1) + F + np.swapaxes(F, 2, 3)
                + H + np.swapaxes(H, 0, 1))
        pair = dM[:, :, None, :] * dr[:, None, :, None]
        units.d2m = (d2M * r[:, None, None, None] + pair + np.swapaxes(pair, 1, 2)
                     + M[:, None, None, :] * d2r[..., None])
        units.d2log = total.d2log + d2den * r[:, None, None] - dden[:, :, None] * dden[:, None, :] * (r ** 2)[:, None, None]
    logdet = float(units.logdet.sum())
    dlogdet = units.dlog.sum(axis=0) if gradient else None
    d2logdet = units.d2log.sum(axis=0) if hessian else None
    k = q - 1  # the constant column only carries the sums of weights
    return (T[:k, :k], logdet, dT[:, :k, :k] if gradient else None, dlogdet,
            d2T[:, :, :k, :k] if hessian else None, d2logdet)


def gram_and_logdet(nd: NestedDesign, s: np.ndarray, gradient: bool):
    """The same sums with one variance per level, and derivatives with respect to them.

    Parameters
    ----------
    nd : NestedDesign
    s : numpy.ndarray
        Variance of each covariance term (indexed like the design's terms).
    gradient : bool
        Also return the derivatives with respect to every level's variance.

    Returns
    -------
    T : (p + 1, p + 1) array, logdet : float, dT : (L, p + 1, p + 1) or None, dlogdet : (L,) or None
        Derivatives are ordered like ``nd.term_index``.
    """
    variances = [np.full(len(start), float(s[k])) for start, k in zip(nd.starts, nd.term_index)]
    directions = None
    if gradient:
        L = len(nd.starts)
        directions = [np.zeros((len(start), L)) for start in nd.starts]
        for level, D in enumerate(directions):
            D[:, level] = 1.0
    return gram_and_logdet_groups(nd, variances, directions)[:4]


def evaluate_nested(nested, G: list[np.ndarray], n: int, p: int, logdet_xtx: float, reml: bool,
                    gradient: bool = False) -> Evaluation:
    """The profiled likelihood by the O(n) closed form, with d loglik / d G_k.

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
    for k, d in zip(nested.term_index, directional(dT, dlogdet, ev, p, reml)):
        dG[k][0, 0] = d
    return Evaluation(ev.loglik, ev.quad, ev.beta, ev.vcov, dG)


def evaluate_nested_groups(nested, variances: list[np.ndarray], n: int, p: int, logdet_xtx: float, reml: bool,
                           jacobians: list[np.ndarray] | None = None,
                           second: list[np.ndarray] | None = None) -> Evaluation:
    """The closed form with one variance per group, and derivatives along given parameters.

    Parameters
    ----------
    nested : bayesmeta.design.nested.NestedDesign
    variances : list of numpy.ndarray or float
        Per covariance term, the variance of each of its groups (indexed by group
        code), or one variance shared by its groups (a scalar).
    jacobians : list of numpy.ndarray, optional
        Per covariance term, (n_groups, P), or (P,) for a shared variance: the
        derivatives of the groups' variances with respect to P parameters; the
        result's ``dtheta`` is then the gradient of the log-likelihood with respect to them.
    second : list of numpy.ndarray, optional
        Per covariance term, (n_groups, P, P) or (P, P): the second derivatives of the
        groups' variances; the result's ``hessian`` is then the exact Hessian of the
        log-likelihood with respect to the P parameters.
    """
    def per_level(values):
        return [values[k] if np.ndim(variances[k]) == 0 else values[k][codes]
                for k, codes in zip(nested.term_index, nested.group_codes)]

    T, logdet, dT, dlogdet, d2T, d2logdet = gram_and_logdet_groups(
        nested, per_level(variances), None if jacobians is None else per_level(jacobians),
        None if second is None else per_level(second))
    ev = profiled(T, logdet, n, p, logdet_xtx, reml)
    if jacobians is None:
        return ev
    hessian = None if second is None else second_directional(dT, d2T, d2logdet, ev, p, reml)
    return Evaluation(ev.loglik, ev.quad, ev.beta, ev.vcov, None, directional(dT, dlogdet, ev, p, reml), hessian)
