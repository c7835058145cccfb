"""The nested closed form compiled by numba: one pass over the sorted rows per level.

The same recursion as :mod:`bayesmeta.likelihood.nested` (see there for the
algebra), as loops over the groups of every level with the derivatives carried
along in forward mode, to first or second order: no array of derivatives per
row is ever summed by NumPy, so a million rows (200,000 clusters) cost about
0.1 s per value, 0.2 s with the gradient and 0.35 s with the exact Hessian
(2-core machine). :func:`bayesmeta.likelihood.nested.gram_and_logdet_groups`
calls it for designs of :data:`bayesmeta.likelihood.nested.COMPILED_MIN_ROWS` rows
or more (below that, NumPy is as fast and numba's import is not worth it).

numba caches the compiled kernel on disk (``cache=True``), so only the first
process ever compiles it.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def gram_forward(U, d, log_d, closes, offsets, s, ds, d2s, uniform, us, uds, ud2s, order):  # pragma: no cover - compiled
    """``[X, y]' Sigma^-1 [X, y]`` and ``log|Sigma|``, with derivatives up to ``order``.

    One pass over the sorted rows, depth first: every level keeps the running sums
    of its open group; when a group closes (after its last row), its update is
    applied and its state added to the open group of the next level.

    Parameters
    ----------
    U : (n, q) float64
        Sorted rows ``[X, y, 1]``.
    d : (n,) float64
        Their sampling variances.
    log_d : float
        ``sum(log(d))``.
    closes : (n,) int64
        Number of levels (finest first) whose group ends with each row.
    offsets : int64 (levels + 1)
        Where each level's groups start in ``s``, ``ds`` and ``d2s`` (an empty range
        for a level with one variance).
    s : (G,) float64
        The variance of every group of the levels with one variance per group, level
        by level (finest first) in sorted order.
    ds : (G, P) float64
        Its derivatives along P directions (order >= 1).
    d2s : (G, P, P) float64
        Its second derivatives (order 2).
    uniform : (levels,) bool
        Levels whose groups share one variance, given by ``us``, ``uds`` and ``ud2s``
        (levels, ...) instead.
    order : int
        0, 1 or 2.

    Returns
    -------
    T (k, k), logdet, dT (P, k, k), dlogdet (P,), d2T (P, P, k, k), d2logdet (P, P),
    with k = q - 1 (the constant column carries the sums of weights only).
    """
    n, q = U.shape
    k = q - 1
    L = len(offsets) - 1
    P = ds.shape[1] if order >= 1 else 0
    P2 = P if order >= 2 else 0
    T = np.zeros((k, k))
    dT = np.zeros((P, k, k))
    d2T = np.zeros((P2, P2, k, k))
    # running sums of the open group of every level (level L: all top-level groups)
    M = np.zeros((L + 1, q))
    Lg = np.zeros(L + 1)
    dM = np.zeros((L + 1, P, q))
    dLg = np.zeros((L + 1, P))
    d2M = np.zeros((L + 1, P2, P2, q))
    d2Lg = np.zeros((L + 1, P2, P2))
    count = np.zeros(L, np.int64)
    da = np.empty(P)
    dden = np.empty(P)
    dr = np.empty(P)
    dc = np.empty(P)
    for i in range(n):
        w = 1.0 / d[i]
        for a in range(q):
            M[0, a] += U[i, a] * w
        for a in range(k):
            for b in range(a + 1):
                T[a, b] += U[i, a] * U[i, b] * w
        for level in range(closes[i]):
            j = offsets[level] + count[level]
            count[level] += 1
            up = level + 1
            sg = us[level] if uniform[level] else s[j]
            dsj = uds[level] if uniform[level] or order == 0 else ds[j]
            d2sj = ud2s[level] if uniform[level] or order < 2 else d2s[j]
            A = M[level, q - 1]
            den = 1.0 + sg * A
            r = 1.0 / den
            c = sg * r
            for a in range(k):
                for b in range(a + 1):
                    T[a, b] -= c * M[level, a] * M[level, b]
            Lg[up] += Lg[level] + np.log(den)
            # the rows do not depend on the variances: at the first level, the terms
            # with derivatives of the children's sums vanish
            inner = level > 0
            if order >= 1:
                for p in range(P):
                    da[p] = dM[level, p, q - 1]
                    dden[p] = dsj[p] * A + sg * da[p]
                    dr[p] = -dden[p] * r * r
                    dc[p] = dsj[p] * r + sg * dr[p]
                    if dc[p] != 0.0:
                        for a in range(k):
                            for b in range(a + 1):
                                dT[p, a, b] -= dc[p] * M[level, a] * M[level, b]
                    if inner:
                        for a in range(k):
                            for b in range(a + 1):
                                dT[p, a, b] -= c * (dM[level, p, a] * M[level, b] + M[level, a] * dM[level, p, b])
                    dLg[up, p] += dLg[level, p] + dden[p] * r
            if order >= 2:
                for p in range(P):
                    for t in range(p + 1):
                        d2den = d2sj[p, t] * A + dsj[p] * da[t] + dsj[t] * da[p] + sg * d2M[level, p, t, q - 1]
                        d2r = -d2den * r * r + 2.0 * dden[p] * dden[t] * r * r * r
                        d2c = d2sj[p, t] * r + dsj[p] * dr[t] + dsj[t] * dr[p] + sg * d2r
                        if d2c != 0.0:
                            for a in range(k):
                                for b in range(a + 1):
                                    d2T[p, t, a, b] -= d2c * M[level, a] * M[level, b]
                        if inner:
                            for a in range(k):
                                for b in range(a + 1):
                                    d2T[p, t, a, b] -= (
                                        dc[p] * (dM[level, t, a] * M[level, b] + M[level, a] * dM[level, t, b])
                                        + dc[t] * (dM[level, p, a] * M[level, b] + M[level, a] * dM[level, p, b])
                                        + c * (d2M[level, p, t, a] * M[level, b] + M[level, a] * d2M[level, p, t, b]
                                               + dM[level, p, a] * dM[level, t, b] + dM[level, t, a] * dM[level, p, b]))
                            for a in range(q):
                                d2M[up, p, t, a] += (d2M[level, p, t, a] * r + dM[level, p, a] * dr[t]
                                                     + dM[level, t, a] * dr[p])
                                d2M[level, p, t, a] = 0.0
                        if d2r != 0.0:
                            for a in range(q):
                                d2M[up, p, t, a] += M[level, a] * d2r
                        d2Lg[up, p, t] += d2Lg[level, p, t] + d2den * r - dden[p] * dden[t] * r * r
                        d2Lg[level, p, t] = 0.0
            if order >= 1:
                for p in range(P):
                    for a in range(q):
                        dM[up, p, a] += M[level, a] * dr[p]
                    if inner:
                        for a in range(q):
                            dM[up, p, a] += dM[level, p, a] * r
                            dM[level, p, a] = 0.0
                    dLg[level, p] = 0.0
            for a in range(q):
                M[up, a] += M[level, a] * r
                M[level, a] = 0.0
            Lg[level] = 0.0
    # fill the symmetric halves
    for a in range(k):
        for b in range(a):
            T[b, a] = T[a, b]
            for p in range(P):
                dT[p, b, a] = dT[p, a, b]
    for p in range(P2):
        for t in range(p + 1):
            for a in range(k):
                for b in range(a):
                    d2T[p, t, b, a] = d2T[p, t, a, b]
            d2T[t, p] = d2T[p, t]
            d2Lg[L, t, p] = d2Lg[L, p, t]
    return T, Lg[L] + log_d, dT, dLg[L].copy(), d2T, d2Lg[L].copy()


def gram_compiled(nd, variances: list, directions: list | None, second: list | None):
    """:func:`gram_forward` on a :class:`~bayesmeta.design.nested.NestedDesign`, with per-level inputs.

    Same arguments and results as :func:`bayesmeta.likelihood.nested.gram_and_logdet_groups`:
    per level, a variance per group (n_groups,) or one for the level (a scalar), and
    likewise the derivatives ((n_groups, P) or (P,)) and second derivatives
    ((n_groups, P, P) or (P, P)).
    """
    order = 0 if directions is None else (1 if second is None else 2)
    L = len(nd.starts)
    uniform = np.array([np.ndim(v) == 0 for v in variances])
    P = np.shape(directions[0])[-1] if order >= 1 else 0
    Pd = P if order >= 2 else 0
    per_group = [k for k in range(L) if not uniform[k]]
    offsets = np.cumsum([0] + [0 if uniform[k] else len(nd.starts[k]) for k in range(L)]).astype(np.int64)

    def stacked(values, shape):
        parts = [np.asarray(values[k], dtype=float) for k in per_group]
        return np.ascontiguousarray(np.concatenate(parts)) if parts else np.zeros((0,) + shape)

    def levels(values, shape):
        out = np.zeros((L,) + shape)
        for k in range(L):
            if uniform[k]:
                out[k] = values[k]
        return out

    s = stacked(variances, ())
    ds = stacked(directions, (P,)) if order >= 1 else np.zeros((0, 0))
    d2s = stacked(second, (P, P)) if order >= 2 else np.zeros((0, Pd, Pd))
    us = levels(variances, ())
    uds = levels(directions, (P,)) if order >= 1 else np.zeros((L, 0))
    ud2s = levels(second, (P, P)) if order >= 2 else np.zeros((L, Pd, Pd))
    T, logdet, dT, dlogdet, d2T, d2logdet = gram_forward(nd.U, nd.d, nd.log_d, nd.closes, offsets, s, ds, d2s,
                                                         uniform, us, uds, ud2s, order)
    return (T, float(logdet), dT if order >= 1 else None, dlogdet if order >= 1 else None,
            d2T if order >= 2 else None, d2logdet if order >= 2 else None)
