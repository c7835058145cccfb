"""The marginal and restricted log-likelihood with the fixed effects profiled out, in NumPy.

Rows fall into independent blocks (no sampling covariance and no shared random
effect between blocks), stacked into padded batches of equal size
(:mod:`bayesmeta.design.blocks`), so every evaluation is a handful of batched
small-matrix operations and no n x n matrix is ever formed.

For a block with marginal covariance Sigma = V + sum_k M_k o (Z_k G_k Z_k') (``o``
is the elementwise product, M_k marks pairs of rows sharing a group of term k):

    ML:   l   = -1/2 [ n log 2pi + sum log|Sigma| + sum r' Sigma^-1 r ]
    REML: l_R = -1/2 [ (n-p) log 2pi - log|X'X| + log|X' Sigma^-1 X| + sum log|Sigma| + sum r' Sigma^-1 r ]

with r = y - X b and b the GLS estimate (Sera et al. 2019, eqs. 2-3).

A random intercept with one variance per group (a scale model, v_g = exp(w_g' alpha))
adds M_k o v_{g(i)} instead, a structured term whose SDs and correlation have a scale
model adds M_k o (s s') o R_pair, with s_i the SD of row i's (cluster, level) cell and
R_pair[i, j] = R(rho_cluster)[l(i), l(j)] (:mod:`bayesmeta.design.coscale`), and a
proportional sampling-variance model (``V_scale``) replaces V by D^1/2 V D^1/2,
D = diag(exp(w_i' delta)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..design.blocks import Batch

LOG_2PI = np.log(2 * np.pi)


@dataclass(frozen=True)
class Evaluation:
    """Everything computed at one value of the variance components.

    ``dG`` holds d loglik / d G_k per covariance term; ``dtheta`` the derivatives
    along given directions (the model's parameters), when the evaluation was asked
    for them instead, and ``hessian`` the exact second derivatives along them.
    With per-row variances (batched path): ``drows`` per such term, (n,), the sum
    over its row pairs (i, j) sharing a group of d loglik / d Sigma_ij, by row i
    (summed over a group's rows: d loglik / d v_g); ``dlog_v`` (n,), d loglik / d eta_i
    for sampling-variance factors exp(eta_i); ``dcoscale`` per structured term with a
    scale model, ``(d_sd (n,), d_rho (n,))``: d loglik / d s_i and the sum over row i's
    pairs of d loglik / d rho of its cluster.
    """

    loglik: float
    quad: float
    beta: np.ndarray
    vcov: np.ndarray
    dG: list | None
    dtheta: np.ndarray | None = None
    hessian: np.ndarray | None = None
    drows: list | None = None
    dlog_v: np.ndarray | None = None
    dcoscale: list | None = None


def by_row(batch: Batch, values: np.ndarray, pad: float) -> np.ndarray:
    """Per-row ``values`` (n,) laid out as the batch's (B, m) entries, ``pad`` on padding."""
    return np.where(batch.rows >= 0, values[np.maximum(batch.rows, 0)], pad)


@dataclass(frozen=True)
class RowCoscale:
    """A structured term with a scale model, evaluated at one theta: per row, the SD of its
    (cluster, level) cell and the correlation of its cluster, and the correlation family."""

    sd: np.ndarray
    rho: np.ndarray
    correlation: object


def coscale_at(param, theta: np.ndarray) -> list:
    """Per term of a Parameterization, its :class:`RowCoscale` at ``theta`` (None for terms without a scale
    model of their SDs and correlation)."""
    return [None if rows is None else RowCoscale(*rows, t.structure.correlation)
            for rows, t in zip(param.coscale_rows(theta), param.terms)]


def coscale_pairs(batch: Batch, Z: np.ndarray, rows: RowCoscale) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The batch's per-entry SDs (B, m) and, per pair of entries, R_pair and d R_pair / d rho (B, m, m)."""
    level = np.argmax(Z, axis=2)
    lag = np.abs(level[:, :, None] - level[:, None, :])
    rho = by_row(batch, rows.rho, 0.0)[:, :, None]
    return by_row(batch, rows.sd, 0.0), rows.correlation.pair(rho, lag), rows.correlation.pair_derivative(rho, lag)


def marginal_covariance(batch: Batch, G: list, row_variances: list | None = None,
                        v_factors: np.ndarray | None = None, coscale: list | None = None) -> np.ndarray:
    """Sigma = D^1/2 V D^1/2 + sum_k M_k o (Z_k G_k Z_k') for every block of the batch.

    Parameters
    ----------
    batch : Batch
    G : list
        Per covariance term, its q x q matrix, or None for a random intercept with one
        variance per group, given by ``row_variances[k]``.
    row_variances : list, optional
        Per term with ``G[k]`` None, the variance of every row's group (n,).
    v_factors : numpy.ndarray, optional
        Per row, the factor d_i of its sampling variance (D = diag(d); None: D = I).
    coscale : list, optional
        Per term, None or its :class:`RowCoscale` (then ``G[k]`` is None).
    """
    if v_factors is None:
        S = batch.V.copy()
    else:
        f = np.sqrt(by_row(batch, v_factors, 1.0))
        S = batch.V * f[:, :, None] * f[:, None, :]
    for k, (Z, M, Gk) in enumerate(zip(batch.Z, batch.M, G)):
        if coscale and coscale[k] is not None:
            sd, R, _ = coscale_pairs(batch, Z, coscale[k])
            S += M * sd[:, :, None] * sd[:, None, :] * R
        elif Gk is None:
            S += M * by_row(batch, row_variances[k], 0.0)[:, :, None]
        elif Z is None:
            S += M * Gk[0, 0]
        else:
            S += M * np.matmul(Z @ Gk, np.swapaxes(Z, 1, 2))
    return S


class NotPositiveDefinite(ArithmeticError):
    """A marginal covariance block is not positive definite at these parameters."""


def evaluate_batches(batches: list[Batch], G: list, n: int, p: int, logdet_xtx: float,
                     reml: bool, gradient: bool = False, row_variances: list | None = None,
                     v_factors: np.ndarray | None = None, coscale: list | None = None) -> Evaluation:
    """Profiled (restricted) log-likelihood at covariance matrices ``G``.

    Parameters
    ----------
    batches : list of Batch
    G : list of numpy.ndarray
        One q x q random-effect covariance per covariance term.
    n, p : int
        Number of rows and of fixed effects.
    logdet_xtx : float
        log|X'X| (REML constant).
    reml : bool
        Restricted (True) or full (False) likelihood.
    gradient : bool
        Also return d l / d G_k (q x q each; for terms with ``G[k]`` None the
        evaluation's ``drows``, and with ``v_factors`` its ``dlog_v``).
    row_variances, v_factors, coscale : optional
        Per-group variances, sampling-variance factors and structured terms with scale
        models, as for :func:`marginal_covariance` (gradients in the evaluation's
        ``drows``, ``dlog_v`` and ``dcoscale``).

    Raises
    ------
    NotPositiveDefinite
        If some block's marginal covariance is not positive definite.
    """
    cache = []
    A = np.zeros((p, p))
    c = np.zeros(p)
    logdet = 0.0
    for batch in batches:
        S = marginal_covariance(batch, G, row_variances, v_factors, coscale)
        try:
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError as err:
            raise NotPositiveDefinite(str(err)) from None
        logdet += 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum()
        W = np.linalg.inv(S)
        WX = W @ batch.X
        Wy = np.einsum("bij,bj->bi", W, batch.y)
        A += np.einsum("bmi,bmj->ij", batch.X, WX)
        c += np.einsum("bmi,bm->i", batch.X, Wy)
        cache.append((W, WX, Wy))
    A_inv = np.linalg.inv(A)
    beta = A_inv @ c
    quad = 0.0
    dG = [None if g is None else np.zeros((g.shape[0], g.shape[0])) for g in G] if gradient else None
    coscale = coscale or [None] * len(G)
    drows = [None if g is not None or c is not None or not gradient else np.zeros(n) for g, c in zip(G, coscale)]
    dcoscale = [None if c is None or not gradient else (np.zeros(n), np.zeros(n)) for c in coscale]
    dlog_v = np.zeros(n) if gradient and v_factors is not None else None
    for batch, (W, WX, Wy) in zip(batches, cache):
        Wr = Wy - WX @ beta
        r = batch.y - batch.X @ beta
        quad += np.einsum("bm,bm->", r, Wr)
        if gradient:
            Q = -0.5 * W + 0.5 * Wr[:, :, None] * Wr[:, None, :]
            if reml:
                Q += 0.5 * np.matmul(WX @ A_inv, np.swapaxes(WX, 1, 2))
            real = batch.rows >= 0
            for k, (Z, M) in enumerate(zip(batch.Z, batch.M)):
                QM = Q * M
                if coscale[k] is not None:
                    sd, R, dR = coscale_pairs(batch, Z, coscale[k])
                    d_sd, d_rho = dcoscale[k]
                    d_sd[batch.rows[real]] += 2.0 * (QM * R * sd[:, None, :]).sum(axis=2)[real]
                    d_rho[batch.rows[real]] += (QM * dR * sd[:, :, None] * sd[:, None, :]).sum(axis=2)[real]
                elif G[k] is None:  # d l / d v_g = sum of Q_ij over the pairs of rows in group g
                    drows[k][batch.rows[real]] += QM.sum(axis=2)[real]
                else:
                    dG[k] += QM.sum() if Z is None else np.einsum("bmi,bmn,bnj->ij", Z, QM, Z)
            if dlog_v is not None:  # d Sigma_ik / d eta_i = Vs_ik / 2 (i != k), Vs_ii (i = k)
                f = np.sqrt(by_row(batch, v_factors, 1.0))
                dlog_v[batch.rows[real]] += (Q * batch.V * f[:, :, None] * f[:, None, :]).sum(axis=2)[real]
    if reml:
        _, logdet_a = np.linalg.slogdet(A)
        ll = -0.5 * ((n - p) * LOG_2PI - logdet_xtx + logdet_a + logdet + quad)
    else:
        ll = -0.5 * (n * LOG_2PI + logdet + quad)
    if gradient:
        dG = [None if d is None else np.atleast_2d(d) for d in dG]
    return Evaluation(float(ll), float(quad), beta, A_inv, dG, drows=drows if gradient else None, dlog_v=dlog_v,
                      dcoscale=dcoscale if gradient else None)


def profiled(T: np.ndarray, logdet: float, n: int, p: int, logdet_xtx: float, reml: bool) -> Evaluation:
    """Log-likelihood with beta profiled out, from the Gram matrix [X, y]' Sigma^-1 [X, y] and log|Sigma|."""
    A, c, yy = T[:p, :p], T[:p, p], T[p, p]
    try:
        A_inv = np.linalg.inv(A)
    except np.linalg.LinAlgError as err:
        raise NotPositiveDefinite(str(err)) from None
    if not np.isfinite(logdet):
        raise NotPositiveDefinite("non-positive marginal variance")
    beta = A_inv @ c
    quad = float(yy - c @ beta)
    if reml:
        ll = -0.5 * ((n - p) * LOG_2PI - logdet_xtx + np.linalg.slogdet(A)[1] + logdet + quad)
    else:
        ll = -0.5 * (n * LOG_2PI + logdet + quad)
    return Evaluation(float(ll), quad, beta, A_inv, None)


def directional(dT: np.ndarray, dlogdet: np.ndarray, ev: Evaluation, p: int, reml: bool) -> np.ndarray:
    """Derivatives of the profiled log-likelihood along the directions of ``dT`` and ``dlogdet``."""
    beta, A_inv = ev.beta, ev.vcov
    dA, dc, dyy = dT[:, :p, :p], dT[:, :p, p], dT[:, p, p]
    dquad = dyy - 2 * dc @ beta + np.einsum("i,kij,j->k", beta, dA, beta)
    d = dlogdet + dquad
    if reml:
        d = d + np.einsum("ij,kji->k", A_inv, dA)
    return -0.5 * d


def second_directional(dT: np.ndarray, d2T: np.ndarray, d2logdet: np.ndarray, ev: Evaluation, p: int,
                       reml: bool) -> np.ndarray:
    """Second derivatives of the profiled log-likelihood along pairs of directions.

    From the first and second derivatives of the Gram matrix ``T = [X, y]' Sigma^-1 [X, y]``
    and of ``log|Sigma|``. With ``A = X' Sigma^-1 X``, ``c = X' Sigma^-1 y`` and
    ``beta = A^-1 c``, the profiled quadratic form ``Q = y' Sigma^-1 y - c' A^-1 c`` has

        d2Q_ij = d2(yy)_ij - 2 d2c_ij' beta + beta' d2A_ij beta - 2 e_i' A^-1 e_j,   e_i = dc_i - dA_i beta,

    and ``d2 log|A|_ij = tr(A^-1 d2A_ij) - tr(A^-1 dA_i A^-1 dA_j)``.
    """
    beta, A_inv = ev.beta, ev.vcov
    dA, dc = dT[:, :p, :p], dT[:, :p, p]
    e = dc - dA @ beta
    d2Q = (d2T[:, :, p, p] - 2 * d2T[:, :, :p, p] @ beta + np.einsum("i,klij,j->kl", beta, d2T[:, :, :p, :p], beta)
           - 2 * e @ A_inv @ e.T)
    d2 = d2logdet + d2Q
    if reml:
        AdA = A_inv @ dA  # (P, p, p)
        d2 = d2 + np.einsum("ij,klji->kl", A_inv, d2T[:, :, :p, :p]) - np.einsum("kij,lji->kl", AdA, AdA)
    H = -0.5 * d2
    return (H + H.T) / 2
