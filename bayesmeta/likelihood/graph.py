"""The marginal likelihood as a PyTensor graph, for the Bayesian engine.

Same model and the same two evaluation paths as :mod:`bayesmeta.likelihood.profiled`
(which profiles the fixed effects out and works in NumPy): the batched blocks
(padded to a common size, Cholesky per block) and the O(n) closed form for
nested random intercepts with diagonal V (:mod:`bayesmeta.likelihood.nested`). Here the
fixed effects ``beta`` are free, and the log-likelihood is returned per
independent block, so that it can be summed for sampling and stored per block
for model comparison (LOO at the level of clusters); the sum used for sampling
factors the blocks in fused Ops (:func:`total_loglik`). The proportional
sampling-variance model (``V_scale=``) scales each block's V to ``D^1/2 V D^1/2``
with per-row factors ``exp(w_i' delta)``, and a structured term whose SDs and
correlation have a scale model adds ``M o (s s') o R_pair`` with per-row SDs ``s``
and ``R_pair[i, j]`` the correlation of row i's cluster at lag ``|l(i) - l(j)|``
(as :func:`bayesmeta.likelihood.profiled.marginal_covariance`; batched path only).

The optional restricted term ``1/2 p log 2pi + 1/2 log|X'X| - 1/2 log|X' Sigma^-1 X|``
turns the full likelihood into REML's: its maximum over (beta, theta) is the
REML estimate of theta.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.tensor.slinalg import solve_triangular

from ..design.build import Design
from .block_gaussian import block_gaussian_loglik
from .nested_op import nested_loglik, sorted_outcome
from .profiled import LOG_2PI


@dataclass(frozen=True)
class SharedData:
    """A design's data as shared variables, so that one compiled graph serves designs that differ
    only in them (simulated outcomes, assumed sampling covariances).

    Attributes
    ----------
    outcome : pytensor shared variable or None
        Nested designs: the outcome in the fused Op's row order.
    batches : tuple of (shared, shared)
        Batched designs: per batch, the padded outcomes (b, m) and sampling covariances (b, m, m).
    """

    outcome: object = None
    batches: tuple = ()

    @classmethod
    def of(cls, design: Design) -> SharedData:
        """Shared variables holding ``design``'s data."""
        if design.nested is not None:
            return cls(outcome=pytensor.shared(sorted_outcome(design.nested), name="outcome"))
        return cls(batches=tuple((pytensor.shared(b.y, name=f"y_{i}"), pytensor.shared(b.V, name=f"V_{i}"))
                                 for i, b in enumerate(design.batches)))

    def set_values(self, design: Design) -> None:
        """Put ``design``'s data into the shared variables (a design of the same structure)."""
        if self.outcome is not None:
            self.outcome.set_value(sorted_outcome(design.nested))
        for (y, V), batch in zip(self.batches, design.batches):
            y.set_value(batch.y)
            V.set_value(batch.V)


def _segment_sum(values, ids: np.ndarray, n_groups: int):
    """Sum rows of ``values`` that share an id (ids are sorted and dense 0..n_groups-1)."""
    zeros = pt.zeros((n_groups,) + tuple(values.shape[1:]), dtype=values.dtype)
    return pt.inc_subtensor(zeros[ids], values)


def _ids_from_starts(starts: np.ndarray, n_units: int) -> np.ndarray:
    return np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n_units)))


def _nested_logp(design: Design, beta, G: list, restricted: bool, variances=None):
    """Per-block log-likelihood (and X' Sigma^-1 X) by the nested closed form.

    ``variances`` (location-scale models) gives, per term, None or a vector of the
    variances of its groups (indexed by group code), used instead of ``G``.
    """
    nd = design.nested
    p = design.p
    X = nd.U[:, :p]
    y = nd.U[:, p]
    per_group = variances or [None] * len(G)
    # the variance of every group of every level (finest first), in sorted order
    s = [G[k][0, 0] if per_group[k] is None else per_group[k][codes]
         for k, codes in zip(nd.term_index, nd.group_codes)]
    d = pt.as_tensor_variable(nd.d)
    levels = list(zip(nd.starts, s))
    n = len(y)
    if len(levels[0][0]) == n:  # one-row groups: absorbed into the diagonal
        d = d + levels[0][1]
        levels = levels[1:]
    r = y - pt.dot(X, beta)
    a, b, c, logdet = 1.0 / d, r / d, r ** 2 / d, pt.log(d)
    P = X[:, :, None] * X[:, None, :] / d[:, None, None] if restricted else None
    x1 = X / d[:, None] if restricted else None
    n_units = n
    for start, sk in levels:
        ids = _ids_from_starts(start, n_units)
        n_units = len(start)
        a, b, c, logdet = (_segment_sum(v, ids, n_units) for v in (a, b, c, logdet))
        denom = 1.0 + sk * a
        c = c - sk * b ** 2 / denom
        b = b / denom
        a = a / denom
        logdet = logdet + pt.log(denom)
        if restricted:
            P = _segment_sum(P, ids, n_units)
            x1 = _segment_sum(x1, ids, n_units)
            P = P - (sk / denom)[:, None, None] * x1[:, :, None] * x1[:, None, :]
            x1 = x1 / denom[:, None]
    top_rows = nd.row_starts[-1] if nd.row_starts else np.arange(n)
    sizes = np.diff(np.append(top_rows, n))
    logp = -0.5 * (sizes * LOG_2PI + logdet + c)
    block_ids = design.block_of_row[nd.perm[top_rows]]
    A = P.sum(axis=0) if restricted else None
    return logp, block_ids, A


#: Blocks up to this size use an unrolled Cholesky factorisation, vectorised over the
#: batch; larger ones call LAPACK block by block.
UNROLL_MAX = 8


def _unrolled_cholesky(S, m: int) -> dict:
    """Cholesky factor of every m x m block of S (B, m, m) as a dict (i, j) -> (B,) vector.

    Elementwise operations only, vectorised over the batch, which PyTensor fuses
    into a few loops: much faster than a per-block LAPACK call for small blocks.
    A block that is not positive definite gives NaN (the draw is rejected).
    """
    L = {}
    for j in range(m):
        L[j, j] = pt.sqrt(S[:, j, j] - sum((L[j, k] ** 2 for k in range(j)), start=pt.constant(0.0)))
        for i in range(j + 1, m):
            acc = sum((L[i, k] * L[j, k] for k in range(j)), start=pt.constant(0.0))
            L[i, j] = (S[:, i, j] - acc) / L[j, j]
    return L


def _unrolled_forward(L: dict, b, m: int) -> list:
    """Solve L z = b for each block; b is (B, m), the result a list of (B,) vectors."""
    z = []
    for i in range(m):
        acc = sum((L[i, k] * z[k] for k in range(i)), start=pt.constant(0.0))
        z.append((b[:, i] - acc) / L[i, i])
    return z


def _factor_and_solve(S, b, extra, m: int):
    """log|S|, |L^-1 b|^2 and L^-1 extra (B, m, k) for every block.

    The unrolled Cholesky serves small blocks without ``extra``; the restricted
    term's solves against X take the LAPACK path, because unrolling them makes the
    gradient's graph too large to compile in reasonable time.
    """
    if m <= UNROLL_MAX and extra is None:
        L = _unrolled_cholesky(S, m)
        logdet = 2.0 * sum(pt.log(L[j, j]) for j in range(m))
        quad = sum(zi ** 2 for zi in _unrolled_forward(L, b, m))
        return logdet, quad, None
    L = pt.linalg.cholesky(S)
    z = solve_triangular(L, b, lower=True, b_ndim=1)
    logdet = 2.0 * pt.log(pt.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    solved = solve_triangular(L, extra, lower=True, b_ndim=2) if extra is not None else None
    return logdet, (z ** 2).sum(axis=1), solved


def _coscale_term(batch, Z: np.ndarray, rows):
    """A structured term with a scale model in one batch: ``M``'s factor ``sd_i sd_j R_pair[i, j]`` (B, m, m)
    from ``rows = (sd_rows (n,), rho_rows (n,), correlation)``; padding rows get SD 0."""
    sd_rows, rho_rows, correlation = rows
    real = batch.rows >= 0
    safe = np.where(real, batch.rows, 0)
    level = np.argmax(Z, axis=2)
    lag = np.abs(level[:, :, None] - level[:, None, :])
    sd = sd_rows[safe] * real
    return sd[:, :, None] * sd[:, None, :] * correlation.pair_pt(rho_rows[safe][:, :, None], lag)


def _batch_systems(design: Design, beta, G: list, variances, data: SharedData | None, v_factors, coscale):
    """Per batch of blocks, the batch, its marginal covariances ``S`` (B, m, m) and residuals ``r`` (B, m).

    ``variances`` (scale models): per term, None or the vector of its groups' variances,
    used instead of ``G`` (pairs of rows in one group share their group's variance).
    ``data``: the batches' outcomes and sampling covariances as shared variables.
    ``v_factors`` (``V_scale``): per row, the factor m_i of its sampling variance; each
    batch's V becomes ``V_ik sqrt(m_i m_k)`` (padding rows keep the factor 1).
    ``coscale``: per term, None or ``(sd_rows, rho_rows, correlation)`` (see :func:`block_loglik`).
    Products with the design are written as broadcast products and sums, not batched matrix
    products: small blocks make those a loop of tiny BLAS calls.
    """
    per_group = variances or [None] * len(G)
    per_row = coscale or [None] * len(G)
    for i, batch in enumerate(design.batches):
        y_batch, V_batch = data.batches[i] if data is not None and data.batches else (batch.y, batch.V)
        S = pt.as_tensor_variable(V_batch)
        real = batch.rows >= 0
        safe = np.where(real, batch.rows, 0)
        if v_factors is not None:
            f = pt.where(real, pt.sqrt(v_factors)[safe], 1.0)  # (B, m), as profiled.by_row
            S = S * f[:, :, None] * f[:, None, :]
        for Z, M, Gk, v, rows, enc in zip(batch.Z, batch.M, G, per_group, per_row, design.encodings):
            if rows is not None:
                S = S + M * _coscale_term(batch, Z, rows)
            elif v is not None:
                S = S + M * (v[enc.codes[safe]] * real)[:, :, None]
            elif Z is None:
                S = S + M * Gk[0, 0]
            else:  # M o (Z G Z'), from the products of every pair of rows' random-effect designs (B, m, m, q, q)
                pairs = M[:, :, :, None, None] * Z[:, :, None, :, None] * Z[:, None, :, None, :]
                S = S + (pairs * Gk).sum(axis=(3, 4))
        yield batch, S, y_batch - (batch.X * beta).sum(axis=2)


def _batched_logp(design: Design, beta, G: list, restricted: bool, variances=None, data: SharedData | None = None,
                  v_factors=None, coscale=None):
    """Per-block log-likelihood (and X' Sigma^-1 X) over padded batches of blocks
    (arguments as for :func:`_batch_systems`)."""
    parts, ids = [], []
    A = 0.0
    for batch, S, r in _batch_systems(design, beta, G, variances, data, v_factors, coscale):
        m = batch.rows.shape[1]
        logdet, quad, ZX = _factor_and_solve(S, r, batch.X if restricted else None, m)
        real = (batch.rows >= 0).sum(axis=1)
        parts.append(-0.5 * (real * LOG_2PI + logdet + quad))
        ids.append(design.block_of_row[batch.rows[:, 0]])
        if restricted:
            W = ZX.reshape((-1, design.p))
            A = A + W.T @ W
    return pt.concatenate(parts), np.concatenate(ids), A if restricted else None


def _batched_total(design: Design, beta, G: list, variances, data: SharedData | None, v_factors, coscale):
    """The log-likelihood summed over the batches' blocks, one fused Op per batch
    (:mod:`bayesmeta.likelihood.block_gaussian`)."""
    total = 0.0
    for batch, S, r in _batch_systems(design, beta, G, variances, data, v_factors, coscale):
        # -1/2 log 2pi per row, from the batch's array of real rows: no constant that depends on the data's size
        total = total + block_gaussian_loglik(S, r) - 0.5 * LOG_2PI * pt.as_tensor_variable(batch.rows >= 0).sum()
    return total


def block_loglik(design: Design, beta, G: list, restricted: bool = False, variances=None,
                 data: SharedData | None = None, v_factors=None, coscale=None):
    """Log-likelihood of every independent block, ordered by block id.

    Parameters
    ----------
    design : Design
    beta : pytensor vector (p,)
    G : list of pytensor matrices
        Random-effect covariance of each covariance term (None for a term with a
        scale model).
    restricted : bool
        Also return the restricted (REML) term.
    variances : list, optional
        Location-scale models: per term, None or the pytensor vector of the
        variances of its groups, ``exp(W alpha)``.
    data : SharedData, optional
        A batched design's outcomes and sampling covariances as shared variables.
    v_factors : pytensor vector (n,), optional
        The proportional sampling-variance model (``V_scale=``): per row, the factor
        ``m_i = exp(w_i' delta)``; the sampling covariance becomes ``D^1/2 V D^1/2``,
        ``D = diag(m)``. Batched designs only (models with ``V_scale`` never use the
        nested closed form).
    coscale : list, optional
        Scale models of structured terms: per term, None or ``(sd_rows, rho_rows, correlation)``,
        the pytensor vectors (n,) of every row's SD (of its (cluster, level) cell) and correlation
        (of its cluster) and the term's :class:`~bayesmeta.spec.structures.Correlation`; pairs of
        rows in one cluster get ``sd_i sd_j correlation.pair(rho, |l(i) - l(j)|)`` (``G[k]`` is then
        None). Batched designs only.

    Returns
    -------
    logp : pytensor vector (n_blocks,)
    restricted_term : pytensor scalar or None
    """
    if design.nested is not None:
        if v_factors is not None or any(c is not None for c in coscale or ()):
            raise ValueError("block_loglik: sampling-variance factors (V_scale) and scale models of structured terms "
                             "need the batched path, not the nested closed form.")
        if data is not None and data.outcome is not None:
            raise ValueError("block_loglik: a nested design's outcome is data only in the fused Op (total_loglik).")
        logp, ids, A = _nested_logp(design, beta, G, restricted, variances)
    elif design.batches:
        logp, ids, A = _batched_logp(design, beta, G, restricted, variances, data, v_factors, coscale)
    else:  # no random effects and no batches: cannot happen (batches are always built otherwise)
        raise ValueError("design has neither batches nor a nested closed form")
    order = np.argsort(ids)
    logp = logp[order]
    term = None
    if restricted:
        term = 0.5 * (design.p * LOG_2PI + design.logdet_xtx) - pt.log(pt.diagonal(pt.linalg.cholesky(A))).sum()
    return logp, term


def total_loglik(design: Design, beta, G: list, restricted: bool = False, variances=None, term_variances=None,
                 data: SharedData | None = None, v_factors=None, coscale=None):
    """The log-likelihood summed over blocks (plus the restricted term if asked).

    Without the restricted term, nested designs use one fused Op with its own gradient
    (:mod:`bayesmeta.likelihood.nested_op`), about twice as fast to evaluate as the graph
    of :func:`block_loglik`, and batched designs one fused Op per batch that factors and
    solves its blocks (:mod:`bayesmeta.likelihood.block_gaussian`), around a graph that only
    builds the blocks' covariances and residuals; with it, the graph of :func:`block_loglik`
    is summed.

    Parameters
    ----------
    design, beta, G, restricted, variances
        As for :func:`block_loglik`.
    term_variances : pytensor vector, optional
        The variance of every term, when all are one-dimensional and there is no
        scale model (the same as ``G``, with fewer graph nodes).
    data : SharedData, optional
        The design's data as shared variables (:meth:`SharedData.of`); not with the
        restricted term of a nested design.
    v_factors : pytensor vector (n,), optional
        Per-row sampling-variance factors (``V_scale=``), as for :func:`block_loglik`.
    coscale : list, optional
        Per-row SDs and correlations of structured terms with scale models, as for :func:`block_loglik`.
    """
    outcome = data.outcome if data is not None else None
    if outcome is not None and restricted:
        raise ValueError("total_loglik: the outcome of a nested design can be data only without the restricted term.")
    if design.nested is None and not restricted:
        return _batched_total(design, beta, G, variances, data, v_factors, coscale)
    # the restricted term, or a nested design with V_scale or coscale terms (block_loglik refuses the latter)
    if restricted or v_factors is not None or any(c is not None for c in coscale or ()):
        logp, term = block_loglik(design, beta, G, restricted=restricted, variances=variances, data=data,
                                  v_factors=v_factors, coscale=coscale)
        return logp.sum() + (term if restricted else 0.0)
    if term_variances is not None and variances is None:
        return nested_loglik(design, beta, term_variances, outcome)
    nd = design.nested
    per_term = [G[k][0, 0] if G[k] is not None else None for k in range(len(G))]
    for k, codes in zip(nd.term_index, nd.group_codes):
        if variances is not None and variances[k] is not None:
            per_term[k] = variances[k][codes]
    return nested_loglik(design, beta, per_term, outcome)
