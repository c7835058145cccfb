"""The Gaussian log-density of many small blocks as one PyTensor Op, with its gradient, compiled by numba.

The batched path of :mod:`bayesmeta.likelihood.graph` stacks independent blocks of one
size ``m`` into arrays ``S`` (B, m, m) of marginal covariances and ``r`` (B, m) of
residuals. Written as a graph, the factorisation of every block (an unrolled Cholesky)
and its reverse pass cost about a hundred small nodes, whose overhead dominates the
evaluation, and which numba takes tens of seconds to compile. Here one loop over the
blocks factors each one, solves it and returns

    value = -1/2 sum_b (log|S_b| + r_b' S_b^-1 r_b),
    d value / d S_b = -1/2 (S_b^-1 - a_b a_b'),   d value / d r_b = -a_b,   a_b = S_b^-1 r_b,

so the graph around it only builds ``S`` and ``r`` from the parameters and the design.
Padding (rows of ``S`` that are unit vectors, with zero residuals) adds nothing. A block
that is not positive definite makes the value NaN, which rejects the draw.

The kernel is compiled once per machine (numba's disk cache); in a graph compiled by
numba (``mode="NUMBA"``) it is called from compiled code, so a whole log-density runs
without Python and nutpie can call it as a C callback.
"""

from __future__ import annotations

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key


@numba.njit(cache=True)
def block_value_and_grad(S, r):  # pragma: no cover - compiled
    """``-1/2 sum_b (log|S_b| + r_b' S_b^-1 r_b)`` and its gradients with respect to ``S`` and ``r``."""
    n_blocks, m = r.shape
    dS = np.empty((n_blocks, m, m))
    dr = np.empty((n_blocks, m))
    L = np.empty((m, m))
    Linv = np.empty((m, m))
    z = np.empty(m)
    a = np.empty(m)
    value = 0.0
    for b in range(n_blocks):
        # Cholesky factor L (lower) of S_b
        for j in range(m):
            acc = S[b, j, j]
            for k in range(j):
                acc -= L[j, k] * L[j, k]
            if not acc > 0.0:
                return np.nan, dS, dr
            L[j, j] = np.sqrt(acc)
            for i in range(j + 1, m):
                acc = S[b, i, j]
                for k in range(j):
                    acc -= L[i, k] * L[j, k]
                L[i, j] = acc / L[j, j]
        # L^-1 (lower), by forward substitution on the identity
        for j in range(m):
            for i in range(m):
                if i < j:
                    Linv[i, j] = 0.0
                    continue
                acc = 1.0 if i == j else 0.0
                for k in range(j, i):
                    acc -= L[i, k] * Linv[k, j]
                Linv[i, j] = acc / L[i, i]
        logdet = 0.0
        quad = 0.0
        for i in range(m):
            logdet += 2.0 * np.log(L[i, i])
            acc = 0.0
            for k in range(i + 1):
                acc += Linv[i, k] * r[b, k]
            z[i] = acc
            quad += acc * acc
        # a = L^-T z = S^-1 r
        for i in range(m):
            acc = 0.0
            for k in range(i, m):
                acc += Linv[k, i] * z[k]
            a[i] = acc
        value -= 0.5 * (logdet + quad)
        # S^-1 = L^-T L^-1
        for i in range(m):
            dr[b, i] = -a[i]
            for j in range(i + 1):
                acc = 0.0
                for k in range(i, m):
                    acc += Linv[k, i] * Linv[k, j]
                g = -0.5 * (acc - a[i] * a[j])
                dS[b, i, j] = g
                dS[b, j, i] = g
    return value, dS, dr


class BlockGaussianLoglik(Op):
    """``-1/2 sum_b (log|S_b| + r_b' S_b^-1 r_b)`` over stacked blocks; outputs (value, d/dS, d/dr).

    Inputs: ``S`` (B, m, m), symmetric positive definite, and ``r`` (B, m). Only the
    value is differentiable (once): its gradient is the Op's second and third outputs.
    The constant ``-1/2 n log 2 pi`` is left to the caller.
    """

    __props__ = ()

    def make_node(self, S, r):
        S = pt.as_tensor_variable(S).astype("float64")
        r = pt.as_tensor_variable(r).astype("float64")
        if S.ndim != 3 or r.ndim != 2:
            raise TypeError(f"BlockGaussianLoglik: expected S (B, m, m) and r (B, m), got {S.ndim} and {r.ndim} "
                            "dimensions.")
        return Apply(self, [S, r], [pt.dscalar(), pt.dtensor3(), pt.dmatrix()])

    def perform(self, node, inputs, output_storage):
        S, r = inputs
        if S.shape[0] != r.shape[0] or S.shape[1:] != (r.shape[1], r.shape[1]):
            raise ValueError(f"BlockGaussianLoglik: S of shape {S.shape} does not match r of shape {r.shape}.")
        value, dS, dr = block_value_and_grad(np.ascontiguousarray(S), np.ascontiguousarray(r))
        output_storage[0][0] = np.asarray(value)
        output_storage[1][0] = dS
        output_storage[2][0] = dr

    def L_op(self, inputs, outputs, output_grads):
        if not all(isinstance(g.type, DisconnectedType) for g in output_grads[1:]):
            raise NotImplementedError("BlockGaussianLoglik: only the value is differentiable.")
        return [output_grads[0] * outputs[1], output_grads[0] * outputs[2]]


@register_funcify_default_op_cache_key(BlockGaussianLoglik)
def numba_block_gaussian(op: BlockGaussianLoglik, node=None, **kwargs):
    """:class:`BlockGaussianLoglik` in a graph compiled by numba (``mode="NUMBA"``)."""

    @numba.njit
    def block_gaussian_numba(S, r):  # pragma: no cover - compiled
        value, dS, dr = block_value_and_grad(np.ascontiguousarray(S), np.ascontiguousarray(r))
        return np.asarray(value), dS, dr

    return block_gaussian_numba


def block_gaussian_loglik(S, r):
    """The value of :class:`BlockGaussianLoglik` on ``S`` (B, m, m) and ``r`` (B, m)."""
    value, _, _ = BlockGaussianLoglik()(S, r)
    return value
