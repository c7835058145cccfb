"""Best linear unbiased predictions (BLUPs) of the random effects of an ML/REML fit.

Every quantity here is a linear function ``t = sum_k z_k' u_{k,g_k}`` of the
random effects of some clusters ``g_k`` (one effect for metafor's ``ranef``, the
sum of a row's effects for ``blup``, a new study's effects in existing clusters
for ``predict``). Given the data and the fixed effects ``b`` it is Gaussian,

    E[t | y; b] = c' Sigma^-1 (y - X b),    Var(t | y) = z' G z - c' Sigma^-1 c,

with ``c = Cov(Zu, t)``, which :func:`conditional_moments` returns as
``offset - slope @ b`` and ``variance``. With b estimated, the prediction error
of ``x' b_hat + E[t | y; b_hat]`` for ``x' b + t`` has variance

    Var(t | y) + (x - slope)' Vb (x - slope),

Henderson's prediction-error variance: ``G - G Z' P Z G`` for the random effects
(``P = Sigma^-1 - Sigma^-1 X Vb X' Sigma^-1``), the variance metafor's ``ranef``
reports, and ``tau2 vi / (tau2 + vi) + (1 - tau2 / (tau2 + vi))^2 x' Vb x`` for
a row of the standard model, as metafor's ``blup`` (:func:`prediction_error`).

Two exact evaluators, neither forming an n x n matrix:

* nested random intercepts with diagonal V (location-scale models included): a
  Kalman smoother over the tree of groups, O(n). Going up, each group collects a
  Gaussian message about the sum ``a`` of its own and its ancestors' effects (as
  :mod:`bayesmeta.engines.random_effects` does for draws); going down,
  ``a_g = (1 - w) a_parent + w m + noise`` (w = s / (s + v)) gives the smoothed
  mean and variance of ``a`` and of any partial sum ``T`` of the effects on the
  path, with a 2 x 2 covariance recursion. The data enter linearly, so the
  smoother runs once on the columns ``[y, X]``.
* any other design: solves with each independent block's marginal covariance,
  over the padded batches of :mod:`bayesmeta.design.blocks`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.build import Design
from ..engines.random_effects import CoscaleDraws
from ..errors import SpecificationError
from ..likelihood.profiled import RowCoscale, coscale_at, marginal_covariance
from ..spec.random_terms import ROW_TERM
from .intervals import check_level, critical_value


@dataclass(frozen=True)
class Moments:
    """Conditional moments of J linear functions ``t_j`` of the random effects.

    ``E[t | y; b] = offset - slope @ b`` and ``Var(t | y) = variance`` (b known).
    """

    offset: np.ndarray
    slope: np.ndarray
    variance: np.ndarray


def conditional_moments(design: Design, param, theta: np.ndarray, groups: list[np.ndarray],
                        z: list[np.ndarray | None]) -> Moments:
    """Moments of ``t_j = sum_k z_jk' u_{k, groups[k][j]}`` given the data.

    Parameters
    ----------
    design : Design
    param : Parameterization
    theta : numpy.ndarray
        The variance parameters (unconstrained).
    groups : list of numpy.ndarray
        Per covariance term, (J,) the cluster code whose effects enter ``t_j``, or
        -1 when term k does not enter it.
    z : list of numpy.ndarray or None
        Per covariance term, (J, q_k) the weights of its effects (None: a random
        intercept, weight 1).

    Returns
    -------
    Moments

    Examples
    --------
    The effect of the first district of the school data (and no study effect):

    >>> import numpy as np
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
    ...                    random="~ 1 | district/study").fit()
    >>> m = conditional_moments(fit.design, fit.param, fit.estimate.theta, [np.array([0]), np.array([-1])],
    ...                         [None, None])
    >>> blup = m.offset - m.slope @ fit.coef.to_numpy()
    >>> blup.round(4), np.sqrt(m.variance).round(4)
    (array([-0.19]), array([0.1582]))
    """
    if design.nested is not None:
        variances, _ = param.group_variances(theta)
        return _nested_moments(design, variances, groups)
    variances = [v if param.scale_of(k) is not None else None for k, v in enumerate(param.group_variances(theta)[0])]
    coscale = coscale_at(param, theta)
    clusters = [None if rows is None else _cluster_covariances(param.coscale_of(k), rows, t.q)
                for k, (rows, t) in enumerate(zip(coscale, param.terms))]
    return _block_moments(design, param.covariances(theta), groups, z, variances, param.v_multipliers(theta),
                          coscale, clusters)


def _cluster_covariances(coscale, rows: RowCoscale, q: int) -> np.ndarray:
    """G_j = D_j R(rho_j) D_j of every cluster of a structured term with a scale model (one draw of
    :class:`~bayesmeta.engines.random_effects.CoscaleDraws`), (n_groups, q, q); NaN in the rows and
    columns of the levels a cluster lacks (their cell, and so its SD, does not exist)."""
    sd_cells = np.empty(len(coscale.tau.W))
    sd_cells[coscale.cell_of_row] = rows.sd
    rho = np.empty(int(coscale.cluster_of_row.max()) + 1)
    rho[coscale.cluster_of_row] = rows.rho
    draw = CoscaleDraws(sd_cells[None], rho[None], coscale)
    absent = ~draw.present(q)
    G = draw.cluster_covariances(q)[0]
    G[absent[:, :, None] | absent[:, None, :]] = np.nan
    return G


def prediction_error(result, X0: np.ndarray, moments: Moments) -> tuple[np.ndarray, np.ndarray]:
    """Prediction ``x0' b + E[t | y; b]`` at the estimate, and the SD of its prediction error.

    See the module docstring; ``result`` needs ``coef`` and ``vcov``.
    """
    beta, vb = result.coef.to_numpy(float), result.vcov.to_numpy(float)
    pred = X0 @ beta + moments.offset - moments.slope @ beta
    lever = X0 - moments.slope
    variance = moments.variance + np.einsum("jp,pq,jq->j", lever, vb, lever)
    return pred, np.sqrt(np.clip(variance, 0.0, None))


def apply_transf(transf: Callable | None, values: np.ndarray) -> np.ndarray:
    """``transf`` elementwise (NumPy ufuncs on the whole array), or the values unchanged."""
    if transf is None:
        return values
    if isinstance(transf, np.ufunc):
        return np.asarray(transf(values), dtype=float)
    return np.vectorize(transf, otypes=[float])(values)


def check_transf(transf) -> None:
    """An error naming ``transf`` unless it is None or callable."""
    if transf is not None and not callable(transf):
        raise SpecificationError(f"transf: expected a function such as numpy.exp, got {transf!r}.")


def interval(pred: np.ndarray, sd: np.ndarray, crit: float, transf: Callable | None) -> tuple:
    """Limits ``pred -+ crit * sd``, transformed and put in increasing order (as metafor's ``.psort``)."""
    lower, upper = apply_transf(transf, pred - crit * sd), apply_transf(transf, pred + crit * sd)
    return np.fmin(lower, upper), np.fmax(lower, upper)


def _prediction_frame(pred, se, crit, transf, index) -> pd.DataFrame:
    """Columns ``pred, se, pi_lb, pi_ub`` (se NaN after ``transf``, as metafor)."""
    lower, upper = interval(pred, se, crit, transf)
    return pd.DataFrame({"pred": apply_transf(transf, pred), "se": se if transf is None else np.nan,
                         "pi_lb": lower, "pi_ub": upper}, index=index)


def grouping_columns(term) -> tuple[str, ...] | None:
    """Data columns whose values name the clusters of a covariance term (None for the standard
    model's row-level effect, whose clusters are the data's index labels)."""
    if term.family == "sigma2":
        return tuple(term.label.split("/"))
    if term.label == ROW_TERM:
        return None
    return (term.label.rsplit(" | ", 1)[1],)


def ranef(result, level: float | None = None, transf: Callable | None = None) -> dict[str, pd.DataFrame]:
    """BLUPs of the random effects with their prediction-error SDs, as metafor's ``ranef``.

    Parameters
    ----------
    result : ModeResult
        Anything with ``design``, ``param``, ``estimate.theta``, ``coef``, ``vcov``,
        ``df`` and ``level``.
    level : float, optional
        Probability of the prediction intervals (default: the fit's level).
    transf : callable, optional
        Applied to ``pred`` and the limits (``se`` is then NaN).

    Returns
    -------
    dict of str to pandas.DataFrame
        Keyed by the level's label (``"district"``, ``"district/study"``,
        ``"outcome | trial"``, ``"row"`` for the standard model). Columns
        ``pred`` (the BLUP), ``se`` (square root of the prediction-error variance
        ``G - G Z' P Z G``, which accounts for estimating the fixed effects) and
        ``pi_lb``, ``pi_ub`` (``pred -+ crit * se``, crit from the normal or, with
        ``test="t"``, the t distribution on k - p degrees of freedom). Random
        intercepts are indexed by cluster label; the effects of ``inner | outer``
        terms and random slopes by a MultiIndex (cluster, level), named by the
        grouping column and the inner column (``"coefficient"`` for slopes).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
    ...                    random="~ 1 | district/study").fit()
    >>> ranef(fit)["district"].head(3).round(4)  # doctest: +NORMALIZE_WHITESPACE
                pred      se   pi_lb   pi_ub
    district
    11       -0.1900  0.1665 -0.5164  0.1364
    12       -0.0847  0.1241 -0.3279  0.1585
    18        0.1407  0.1372 -0.1283  0.4097
    """
    crit = critical_value(check_level(result.level if level is None else level), result.df)
    check_transf(transf)
    design = result.design
    encodings = design.encodings
    n_effects = [enc.term.n_groups * enc.term.q for enc in encodings]
    total = sum(n_effects)
    groups, z, start = [], [], 0
    for enc, size in zip(encodings, n_effects):
        g = np.full(total, -1)
        g[start:start + size] = np.repeat(np.arange(enc.term.n_groups), enc.term.q)
        w = np.zeros((total, enc.term.q))
        w[start:start + size] = np.tile(np.eye(enc.term.q), (enc.term.n_groups, 1))
        groups.append(g)
        z.append(None if enc.Z is None else w)
        start += size
    moments = conditional_moments(design, result.param, result.estimate.theta, groups, z)
    pred, se = prediction_error(result, np.zeros((total, design.p)), moments)
    out, start = {}, 0
    for enc, size in zip(encodings, n_effects):
        part = slice(start, start + size)
        if enc.Z is None:
            index = pd.Index(enc.groups, name=enc.term.label)
        else:
            names = [grouping_columns(enc.term)[0], enc.inner or "coefficient"]
            index = pd.MultiIndex.from_product([enc.groups, enc.term.levels], names=names)
        out[enc.term.label] = _prediction_frame(pred[part], se[part], crit, transf, index)
        start += size
    return out


def blup(result, level: float | None = None, transf: Callable | None = None) -> pd.DataFrame:
    """Per data row, the fitted value plus the BLUPs of the row's random effects, as metafor's ``blup``.

    The prediction of the row's true effect ``x_i' b + sum_k z_ik' u_k`` (for
    ``rma.mv`` models metafor has no ``blup``; this is ``fitted`` plus every
    ``ranef`` BLUP of the row), with the SD of its prediction error.

    Parameters
    ----------
    result : ModeResult
    level, transf
        As for :func:`ranef`.

    Returns
    -------
    pandas.DataFrame
        Indexed by the rows used; columns ``pred``, ``se``, ``pi_lb``, ``pi_ub``.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
    >>> blup(fit).head(2).round(4)
         pred      se   pi_lb   pi_ub
    0 -0.8002  0.4099 -1.6037  0.0032
    1 -1.2517  0.3532 -1.9440 -0.5594
    """
    crit = critical_value(check_level(result.level if level is None else level), result.df)
    check_transf(transf)
    design = result.design
    groups = [enc.codes for enc in design.encodings]
    moments = conditional_moments(design, result.param, result.estimate.theta, groups,
                                  [enc.Z for enc in design.encodings])
    pred, se = prediction_error(result, design.X, moments)
    return _prediction_frame(pred, se, crit, transf, pd.Index(design.row_labels))


# the nested closed form: a Kalman smoother over the tree of groups -------------------------------

class _Tree:
    """The upward messages of nested random intercepts (diagonal V), on the data columns [y, X]."""

    def __init__(self, design: Design, variances: list[np.ndarray]):
        nd = design.nested
        p = design.p
        self.levels = len(nd.starts)
        # per level (finest first): every group's variance, in the sorted order of the closed form
        self.s = [variances[k][codes] for k, codes in zip(nd.term_index, nd.group_codes)]
        sizes = [len(nd.d)] + [len(start) for start in nd.starts]
        # children[l]: units of the finer stage in every group of level l
        self.children = [np.diff(np.r_[start, size]) for start, size in zip(nd.starts, sizes)]
        mean = np.column_stack([nd.U[:, p], nd.U[:, :p]])
        spread = nd.d
        self.messages = []
        for level, start in enumerate(nd.starts):
            precision = np.add.reduceat(1.0 / spread, start)
            mean = np.add.reduceat(mean / spread[:, None], start, axis=0) / precision[:, None]
            spread = 1.0 / precision
            self.messages.append((mean, spread))
            spread = spread + self.s[level]  # integrate the group's own effect out

    def smooth(self, include: np.ndarray, finest: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean (on [y, X]) and variance, given the data, of ``T_g`` = the sum of the effects of the
        levels in ``include`` on the path from the top to each group g of level ``finest``."""
        columns = self.messages[0][0].shape[1]
        top = len(self.messages[-1][1])
        mean_a, var_a = np.zeros((top, columns)), np.zeros(top)
        mean_t, var_t, cov_at = np.zeros((top, columns)), np.zeros(top), np.zeros(top)
        for level in reversed(range(finest, self.levels)):
            if level + 1 < self.levels:
                repeat = self.children[level + 1]
                mean_a, var_a, mean_t, var_t, cov_at = (np.repeat(x, repeat, axis=0)
                                                        for x in (mean_a, var_a, mean_t, var_t, cov_at))
            m, v = self.messages[level]
            s = self.s[level]
            w = np.divide(s, s + v, out=np.zeros_like(s), where=s > 0)
            step = w[:, None] * (m - mean_a)
            if include[level]:  # T_g = T_parent + u_g, u_g = a_g - a_parent = w (m - a_parent) + noise
                mean_t = mean_t + step
                var_t = var_t - 2 * w * cov_at + w ** 2 * var_a + w * v
                cov_at = (1 - w) * (cov_at - w * var_a) + w * v
            else:
                cov_at = (1 - w) * cov_at
            mean_a = mean_a + step
            var_a = (1 - w) ** 2 * var_a + w * v
        return mean_t, var_t

    def parents(self, level: int) -> np.ndarray:
        """Index of the parent (at level + 1) of every group of ``level``."""
        return np.repeat(np.arange(len(self.children[level + 1])), self.children[level + 1])


def _nested_moments(design: Design, variances: list[np.ndarray], groups: list[np.ndarray]) -> Moments:
    nd = design.nested
    tree = _Tree(design, variances)
    J = len(groups[0])
    position = []  # per level: sorted position of every group code
    for codes in nd.group_codes:
        inverse = np.empty(len(codes), int)
        inverse[codes] = np.arange(len(codes))
        position.append(inverse)
    chosen = [groups[k] for k in nd.term_index]  # finest level first
    included = np.column_stack([g >= 0 for g in chosen])
    offset, slope, variance = np.zeros(J), np.zeros((J, design.p)), np.zeros(J)
    patterns, which = np.unique(included, axis=0, return_inverse=True)
    for i, include in enumerate(patterns):
        if not include.any():
            continue
        rows = np.flatnonzero(which.ravel() == i)
        finest = int(np.argmax(include))
        pos = position[finest][chosen[finest][rows]]
        ancestor = pos
        for level in range(finest + 1, tree.levels):
            ancestor = tree.parents(level - 1)[ancestor]
            given = chosen[level][rows]
            if include[level] and np.any(position[level][given] != ancestor):
                inner = design.encodings[nd.term_index[finest]].term.label
                outer = design.encodings[nd.term_index[level]].term.label
                raise SpecificationError(f"newdata: the {inner!r} clusters of some rows do not lie in their "
                                         f"{outer!r} clusters (the levels are nested).")
        mean, var = tree.smooth(include, finest)
        offset[rows], slope[rows], variance[rows] = mean[pos, 0], mean[pos, 1:], var[pos]
    return Moments(offset, slope, variance)


# any other design: the independent blocks ------------------------------------------------------

def _block_moments(design: Design, G: list, groups: list[np.ndarray], z: list[np.ndarray | None],
                   variances: list | None = None, v_factors: np.ndarray | None = None,
                   coscale: list | None = None, clusters: list | None = None) -> Moments:
    """The batched path; a term with ``G[k]`` None (a scale model) has one variance per group,
    ``variances[k]``, or (a structured term's scale model, ``coscale[k]``) one covariance per cluster,
    ``clusters[k]`` (n_groups, q, q),
    and ``v_factors`` scale V (``V_scale=``), as in :func:`bayesmeta.likelihood.profiled.marginal_covariance`.
    The effect of a level a cluster lacks has a NaN variance."""
    variances = variances or [None] * len(G)
    coscale = coscale or [None] * len(G)
    clusters = clusters or [None] * len(G)
    row_variances = [None if v is None else v[enc.codes] for v, enc in zip(variances, design.encodings)]
    J = len(groups[0]) if groups else 0
    offset, slope, variance = np.zeros(J), np.zeros((J, design.p)), np.zeros(J)
    # per term: G_k z_jk (zero where term k does not enter t_j), and the block of every t_j's cluster
    weights, blocks = [], []
    for enc, g, zk, Gk, v, Gc in zip(design.encodings, groups, z, G, variances, clusters):
        inside = g >= 0
        zk = np.ones((J, 1)) if zk is None else zk
        if Gc is not None:  # the target's own cluster covariance; levels the cluster lacks never meet a row
            Gg = Gc[np.clip(g, 0, None)]
            absent = inside & np.any((zk != 0) & np.isnan(np.diagonal(Gg, axis1=1, axis2=2)), axis=1)
            Gg = np.nan_to_num(Gg)
            variance += np.where(inside, np.einsum("jq,jqr,jr->j", zk, Gg, zk), 0.0)
            variance[absent] = np.nan
            offset[absent] = np.nan
            weights.append(np.where(inside[:, None], np.einsum("jqr,jr->jq", Gg, zk), 0.0))
        else:
            Gz = zk * v[np.clip(g, 0, None)][:, None] if Gk is None else zk @ Gk
            weights.append(np.where(inside[:, None], Gz, 0.0))
            variance += np.einsum("jq,jq->j", weights[-1], zk)
        _, first = np.unique(enc.codes, return_index=True)
        blocks.append(np.where(inside, design.block_of_row[first][np.clip(g, 0, None)], -1))
    if not blocks:
        return Moments(offset, slope, variance)
    # pieces: the distinct (t_j, block) pairs
    pairs = np.unique(np.concatenate([np.column_stack([np.arange(J), b])[b >= 0] for b in blocks]), axis=0)
    for batch in design.batches:
        B, m = batch.rows.shape
        slot = np.full(design.n_blocks, -1)
        slot[design.block_of_row[batch.rows[:, 0]]] = np.arange(B)
        mine = pairs[slot[pairs[:, 1]] >= 0]
        if not len(mine):
            continue
        j, b = mine[:, 0], slot[mine[:, 1]]
        order = np.argsort(b, kind="stable")
        j, b = j[order], b[order]
        column = np.arange(len(b)) - np.searchsorted(b, b)  # rank of each piece within its block
        C = np.zeros((B, m, column.max() + 1))
        real = batch.rows >= 0
        safe = np.where(real, batch.rows, 0)
        for enc, g, w, Zb in zip(design.encodings, groups, weights, batch.Z):
            codes = np.where(real, enc.codes[safe], -1)
            same = (codes[b] == g[j][:, None]) & (g[j] >= 0)[:, None]
            value = w[j][:, :1] if Zb is None else np.einsum("pmq,pq->pm", Zb[b], w[j])
            C[b, :, column] += same * value
        S = np.linalg.solve(marginal_covariance(batch, G, row_variances, v_factors, coscale), C)
        np.add.at(offset, j, np.einsum("bm,bmc->bc", batch.y, S)[b, column])
        np.add.at(slope, j, np.einsum("bmp,bmc->bcp", batch.X, S)[b, column])
        np.add.at(variance, j, -np.einsum("bmc,bmc->bc", C, S)[b, column])
    return Moments(offset, slope, variance)
