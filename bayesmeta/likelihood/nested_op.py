"""The nested closed form as one PyTensor Op, with its gradient, compiled by numba.

The log-likelihood of nested random intercepts with diagonal V (see
:mod:`bayesmeta.likelihood.nested`) written as a PyTensor graph costs about 50 small nodes,
whose per-node overhead dominates the evaluation on small data. Here the whole
computation is one numba loop: a forward pass from the rows to the top-level
groups (one Sherman-Morrison update per group) and a reverse pass that carries
the adjoints back, giving the gradient with respect to the fixed effects and to
every group's variance at the cost of about two forward passes.

Every level has one variance per group (a scalar variance is broadcast to its
groups in the graph), so the same Op serves models whose variances depend on
group-level moderators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from .profiled import LOG_2PI


@dataclass(frozen=True)
class NestedArrays:
    """The constant arrays of a nested design, in the kernel's layout.

    Attributes
    ----------
    X, y, d : the sorted rows (d: sampling variances)
    absorbed : bool
        The finest level has one row per group: its variances add to ``d``.
    ids : numpy.ndarray (int64)
        For every other level, finest first, the group of each unit of the stage
        below (rows for the first), concatenated.
    id_offsets : numpy.ndarray (int64)
        Where each level's ids start in ``ids`` (length levels + 1).
    sizes : numpy.ndarray (int64)
        Number of groups of each level.
    s_offsets : numpy.ndarray (int64)
        Where each level's groups start in ``s_index``, the absorbed level (if
        any) first (length levels + 2).
    s_index : numpy.ndarray (int64)
        For every group, the entry of the variance vector it uses.
    """

    X: np.ndarray
    y: np.ndarray
    d: np.ndarray
    absorbed: bool
    ids: np.ndarray
    id_offsets: np.ndarray
    sizes: np.ndarray
    s_offsets: np.ndarray
    s_index: np.ndarray


def nested_arrays(nd, per_group: bool) -> NestedArrays:
    """Kernel layout of a :class:`bayesmeta.design.nested.NestedDesign`.

    With ``per_group`` the variance vector has one entry per group (absorbed level
    first, then finest to coarsest); otherwise one per covariance term.
    """
    n = len(nd.d)
    p = _n_fixed(nd)
    levels = list(nd.starts)
    absorbed = len(levels[0]) == n
    ids, sizes, n_units = [], [], n
    for start in levels[1:] if absorbed else levels:
        ids.append(np.repeat(np.arange(len(start)), np.diff(np.append(start, n_units))))
        sizes.append(len(start))
        n_units = len(start)
    s_sizes = ([n] if absorbed else [0]) + sizes
    terms = ([] if absorbed else [0]) + list(nd.term_index)  # the placeholder level has no groups
    s_index = (np.arange(sum(s_sizes)) if per_group else
               np.concatenate([np.full(size, k) for size, k in zip(s_sizes, terms)]))
    return NestedArrays(np.ascontiguousarray(nd.U[:, :p]), sorted_outcome(nd), nd.d.copy(), absorbed,
                        np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64),
                        np.cumsum([0] + [len(i) for i in ids]).astype(np.int64), np.array(sizes, np.int64),
                        np.cumsum([0] + s_sizes).astype(np.int64), s_index.astype(np.int64))


def _n_fixed(nd) -> int:
    return nd.U.shape[1] - 2  # U holds the fixed-effects columns, the outcome and one more column


def sorted_outcome(nd) -> np.ndarray:
    """The outcome of a :class:`bayesmeta.design.nested.NestedDesign` in the kernel's (sorted) row order."""
    return np.ascontiguousarray(nd.U[:, _n_fixed(nd)])


@numba.njit(cache=True)
def nested_value_and_grad(X, y, d0, absorbed, ids, id_offsets, sizes, s_offsets, s_index, beta, s):
    """Log-likelihood and its gradient with respect to ``beta`` and the variances ``s``.

    The variance of group ``g`` of level ``k`` is ``s[s_index[s_offsets[k + 1] + g]]``
    (level ``-1`` is the absorbed one); the gradient of every entry of ``s`` sums
    over the groups that use it.
    """
    n, p = X.shape
    n_levels = len(sizes)
    r = y.copy()
    for i in range(n):
        for j in range(p):
            r[i] -= X[i, j] * beta[j]
    d = d0.copy()
    if absorbed:
        for i in range(n):
            d[i] += s[s_index[s_offsets[0] + i]]
    a = 1.0 / d
    b = r / d
    c = r * r / d
    lg = np.log(d)
    saved_A = np.empty(sizes.sum())
    saved_B = np.empty(sizes.sum())
    saved_den = np.empty(sizes.sum())
    g0 = 0
    for k in range(n_levels):
        m = sizes[k]
        A = np.zeros(m)
        B = np.zeros(m)
        C = np.zeros(m)
        Lg = np.zeros(m)
        for u in range(id_offsets[k + 1] - id_offsets[k]):
            g = ids[id_offsets[k] + u]
            A[g] += a[u]
            B[g] += b[u]
            C[g] += c[u]
            Lg[g] += lg[u]
        a = np.empty(m)
        b = np.empty(m)
        c = np.empty(m)
        lg = np.empty(m)
        for g in range(m):
            sg = s[s_index[s_offsets[k + 1] + g]]
            den = 1.0 + sg * A[g]
            saved_A[g0 + g] = A[g]
            saved_B[g0 + g] = B[g]
            saved_den[g0 + g] = den
            a[g] = A[g] / den
            b[g] = B[g] / den
            c[g] = C[g] - sg * B[g] * B[g] / den
            lg[g] = Lg[g] + np.log(den)
        g0 += m
    value = -0.5 * (lg.sum() + c.sum())
    # reverse pass: adjoints of (a, b, c, lg) of every unit, from the top down
    m = len(c)
    ga = np.zeros(m)
    gb = np.zeros(m)
    gc = np.full(m, -0.5)
    gl = np.full(m, -0.5)
    gs = np.zeros(len(s))
    for k in range(n_levels - 1, -1, -1):
        m = sizes[k]
        g0 -= m
        gA = np.empty(m)
        gB = np.empty(m)
        for g in range(m):
            sg = s[s_index[s_offsets[k + 1] + g]]
            A = saved_A[g0 + g]
            B = saved_B[g0 + g]
            den = saved_den[g0 + g]
            den2 = den * den
            gA[g] = ga[g] / den2 - gb[g] * sg * B / den2 + gc[g] * sg * sg * B * B / den2 + gl[g] * sg / den
            gB[g] = gb[g] / den - gc[g] * 2.0 * sg * B / den
            gs[s_index[s_offsets[k + 1] + g]] += (-ga[g] * A * A - gb[g] * A * B - gc[g] * B * B) / den2 + gl[g] * A / den
        n_units = id_offsets[k + 1] - id_offsets[k]
        ca = np.empty(n_units)
        cb = np.empty(n_units)
        cc = np.empty(n_units)
        cl = np.empty(n_units)
        for u in range(n_units):
            g = ids[id_offsets[k] + u]
            ca[u] = gA[g]
            cb[u] = gB[g]
            cc[u] = gc[g]
            cl[u] = gl[g]
        ga, gb, gc, gl = ca, cb, cc, cl
    gbeta = np.zeros(p)
    for i in range(n):
        gr = (gb[i] + 2.0 * gc[i] * r[i]) / d[i]
        for j in range(p):
            gbeta[j] -= X[i, j] * gr
        if absorbed:
            gs[s_index[s_offsets[0] + i]] += (-ga[i] - gb[i] * r[i] - gc[i] * r[i] * r[i]) / (d[i] * d[i]) + gl[i] / d[i]
    return value, gbeta, gs


#: The design arrays that :class:`NestedLoglik` takes as inputs after beta, the variances and the outcome.
ARRAY_INPUTS = ("X", "d", "ids", "id_offsets", "sizes", "s_offsets", "s_index")


class NestedLoglik(Op):
    """Total log-likelihood of a nested design; outputs (value, d/d beta, d/d variances).

    Inputs: ``beta`` (p,), the variances (one per term or one per group, see
    :func:`nested_arrays`), the outcome in the kernel's row order, then the design's
    arrays (:data:`ARRAY_INPUTS`). The outcome and the arrays are data: as shared
    variables (:func:`nested_loglik_node`), one compiled graph serves every data set of
    the same form, and numba's disk cache (``mode="NUMBA"``) serves later processes.
    Only the value is differentiable (once), in beta and the variances: its gradient is
    the Op's second and third outputs.
    """

    __props__ = ("absorbed",)

    def __init__(self, absorbed: bool):
        self.absorbed = bool(absorbed)

    def make_node(self, beta, s, y, *arrays):
        if len(arrays) != len(ARRAY_INPUTS):
            raise TypeError(f"NestedLoglik: expected the arrays {ARRAY_INPUTS}, got {len(arrays)} arrays.")
        floats = [pt.as_tensor_variable(v).astype("float64") for v in (beta, s, y)]
        X, d = (pt.as_tensor_variable(v).astype("float64") for v in arrays[:2])
        integers = [pt.as_tensor_variable(v).astype("int64") for v in arrays[2:]]
        return Apply(self, [*floats, X, d, *integers], [pt.dscalar(), pt.dvector(), pt.dvector()])

    def perform(self, node, inputs, output_storage):
        beta, s, y, X, d, ids, id_offsets, sizes, s_offsets, s_index = inputs
        if y.shape != d.shape:
            raise ValueError(f"NestedLoglik: expected {d.shape[0]} outcomes, got {y.shape}.")
        value, gbeta, gs = nested_value_and_grad(X, np.ascontiguousarray(y), d, self.absorbed, ids, id_offsets, sizes,
                                                 s_offsets, s_index, beta, s)
        output_storage[0][0] = np.asarray(value - 0.5 * len(y) * LOG_2PI)
        output_storage[1][0] = gbeta
        output_storage[2][0] = gs

    def L_op(self, inputs, outputs, output_grads):
        if not all(isinstance(g.type, DisconnectedType) for g in output_grads[1:]):
            raise NotImplementedError("NestedLoglik: only the value is differentiable.")
        data = [grad_undefined(self, i, inputs[i], "the outcome is data" if i == 2 else "the design is data")
                for i in range(2, len(inputs))]
        return [output_grads[0] * outputs[1], output_grads[0] * outputs[2], *data]


@register_funcify_default_op_cache_key(NestedLoglik)
def numba_nested_loglik(op: NestedLoglik, node=None, **kwargs):
    """:class:`NestedLoglik` in a graph compiled by numba (PyTensor's ``mode="NUMBA"``): the
    kernel is called from compiled code, so the whole log-density runs without Python.
    The design enters as inputs, so the compiled function (and numba's disk cache of it)
    does not depend on the data."""
    absorbed = op.absorbed

    @numba.njit
    def nested_loglik_numba(beta, s, y, X, d, ids, id_offsets, sizes, s_offsets, s_index):  # pragma: no cover
        value, gbeta, gs = nested_value_and_grad(X, np.ascontiguousarray(y), d, absorbed, ids, id_offsets, sizes,
                                                 s_offsets, s_index, beta, s)
        return np.asarray(value - 0.5 * len(y) * LOG_2PI), gbeta, gs

    return nested_loglik_numba


def nested_loglik_node(arrays: NestedArrays, beta, s, y):
    """The outputs (value, d/d beta, d/d variances) of :class:`NestedLoglik` on ``arrays``, which
    enter the graph as shared variables."""
    shared = [pytensor.shared(np.ascontiguousarray(getattr(arrays, name)), name=f"nested_{name}")
              for name in ARRAY_INPUTS]
    return NestedLoglik(arrays.absorbed)(beta, s, y, *shared)


def nested_loglik(design, beta, variances: list, outcome=None):
    """Total log-likelihood of a nested design as one Op.

    Parameters
    ----------
    design : Design
        With ``design.nested`` set.
    beta : pytensor vector (p,)
    variances : list or pytensor vector
        Per covariance term (indexed like the design's terms), a pytensor scalar
        (broadcast to the term's groups) or a vector with one variance per group
        in the nested design's sorted group order; or one vector with the
        variance of every term.
    outcome : pytensor vector, optional
        The outcome in the kernel's row order (:func:`sorted_outcome`), e.g. a shared
        variable; by default the design's outcome in a shared variable of its own.
    """
    nd = design.nested
    y = pytensor.shared(sorted_outcome(nd), name="nested_y") if outcome is None else outcome
    if isinstance(variances, pt.TensorVariable):
        value, _, _ = nested_loglik_node(nested_arrays(nd, False), beta, variances, y)
        return value
    variances = [pt.as_tensor_variable(v) for v in variances]
    per_group = any(v.ndim > 0 for v in variances)
    arrays = nested_arrays(nd, per_group)
    if per_group:
        s = pt.concatenate([pt.alloc(variances[k], len(start)) if variances[k].ndim == 0 else variances[k]
                            for start, k in zip(nd.starts, nd.term_index)])
    else:
        s = pt.stack(variances)
    value, _, _ = nested_loglik_node(arrays, beta, s, y)
    return value
