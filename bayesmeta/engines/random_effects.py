"""Random effects drawn from their exact conditional distribution, draw by draw.

Given the fixed effects ``beta`` and the covariances ``G_k`` of one posterior
draw, the random effects are Gaussian,

    u | y ~ N(G Z' Sigma^-1 r,  G - G Z' Sigma^-1 Z G),    r = y - X beta,

and independent between blocks. Two exact samplers, both vectorised over a
chunk of draws:

* nested random intercepts with diagonal V (the closed-form case of
  :mod:`bayesmeta.likelihood.nested`): a Kalman pass over the tree of groups. Going up,
  each group collects a Gaussian message ``N(m; a, v)`` about the sum ``a`` of
  its own and its ancestors' effects; going down, each group's ``a`` is drawn
  given its parent's, and its effect is the difference. O(n) per draw.
* any other design: Matheron's rule per block of rows: with ``u0 ~ N(0, G)``
  and ``e0 ~ N(0, V)``, ``u = u0 + G Z' Sigma^-1 (r - Z u0 - e0)`` has exactly
  the conditional distribution above.

With a proportional sampling-variance model (``V_scale=``) the sampling
covariance of a draw is ``D^1/2 V D^1/2`` with per-row factors ``D = diag(m)``
(``v_factors``, one row of factors per draw; block designs only).

A structured term whose SDs and correlation have a scale model gives, per draw,
the SD of every (cluster, level) cell and the correlation of every cluster
(:class:`CoscaleDraws`): cluster j's effects have covariance ``G_j = D_j R_j D_j``
over the levels it has. The effects of levels a cluster lacks have no SD (their
cell has no moderators): they are NaN, and contribute nothing to :func:`random_part`.

Everything here is plain numpy on a :class:`~bayesmeta.design.build.Design`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..design.build import Design
from ..design.coscale import CoscaleDesign
from ..design.sampling_covariance import BlockDiagonal

#: Matrix entries (draws x block entries) handled at once.
CHUNK_ENTRIES = 4_000_000


def psd_sqrt(G: np.ndarray) -> np.ndarray:
    """A square root ``R`` with ``R R' = G`` of every matrix in a stack (..., q, q).

    Eigen-decomposition with negative round-off eigenvalues set to 0, so a
    singular ``G`` (an SD of 0, a correlation of 1) is fine.
    """
    values, vectors = np.linalg.eigh(G)
    return vectors * np.sqrt(np.clip(values, 0.0, None))[..., None, :]


@dataclass(frozen=True)
class CoscaleDraws:
    """A structured term with a scale model of its SDs and correlation, at S parameter draws.

    Attributes
    ----------
    sd_cells : numpy.ndarray (S, n_cells)
        The SD ``exp(0.5 w_cell' alpha)`` of every (cluster, level) cell.
    rho_clusters : numpy.ndarray (S, n_clusters)
        The correlation ``tanh(u_j' zeta)`` of every cluster (0 without a correlation model).
    design : CoscaleDesign
        Cells, clusters and levels of the rows, and the structure.
    """

    sd_cells: np.ndarray
    rho_clusters: np.ndarray
    design: CoscaleDesign

    def __len__(self) -> int:
        return len(self.sd_cells)

    def __getitem__(self, draws: slice) -> CoscaleDraws:
        """The draws ``draws`` (a slice)."""
        return CoscaleDraws(self.sd_cells[draws], self.rho_clusters[draws], self.design)

    def pairs(self, batch) -> np.ndarray:
        """``sd_i sd_j R_pair[i, j]`` of every pair of the batch's entries, (S, B, m, m): the term's
        contribution to Sigma where M marks pairs of one cluster (padding rows get SD 0)."""
        d = self.design
        real = batch.rows >= 0
        safe = np.where(real, batch.rows, 0)
        sd = np.where(real, self.sd_cells[:, d.cell_of_row[safe]], 0.0)
        level = d.level_of_row[safe]
        lag = np.abs(level[:, :, None] - level[:, None, :])
        rho = self.rho_clusters[:, d.cluster_of_row[safe]][..., None]
        return sd[..., :, None] * sd[..., None, :] * d.structure.correlation.pair(rho, lag)

    def cluster_covariances(self, q: int) -> np.ndarray:
        """``G_j = D_j R_j D_j`` of every draw and cluster, (S, n_clusters, q, q); the SD of a level
        the cluster lacks is 0 (see :meth:`present`)."""
        d = self.design
        n_draws, n_clusters = self.rho_clusters.shape
        sd = np.zeros((n_draws, n_clusters, q))
        sd[:, d.cluster_of_row, d.level_of_row] = self.sd_cells[:, d.cell_of_row]
        lag = np.abs(np.subtract.outer(np.arange(q), np.arange(q)))
        R = d.structure.correlation.pair(self.rho_clusters[:, :, None, None], lag)
        return sd[..., :, None] * sd[..., None, :] * R

    def present(self, q: int) -> np.ndarray:
        """Mask (n_clusters, q) of the levels every cluster has."""
        d = self.design
        mask = np.zeros((self.rho_clusters.shape[1], q), bool)
        mask[d.cluster_of_row, d.level_of_row] = True
        return mask


def sd_factors(batch, v_factors: np.ndarray) -> np.ndarray:
    """The square roots of per-row sampling-variance factors ``v_factors`` (S, n) laid out as the
    batch's entries, (S, B, m), 1 on padding rows."""
    real = batch.rows >= 0
    return np.where(real, np.sqrt(v_factors[:, np.where(real, batch.rows, 0)]), 1.0)


def draw_random_effects(design: Design, beta: np.ndarray, G: list[np.ndarray],
                        rng: np.random.Generator, v_factors: np.ndarray | None = None) -> list[np.ndarray]:
    """Draw every random effect from its conditional distribution, once per parameter draw.

    Parameters
    ----------
    design : Design
    beta : numpy.ndarray (S, p)
        Fixed effects of S draws.
    G : list of numpy.ndarray (S, q_k, q_k)
        Random-effect covariance of every covariance term, per draw; (S, n_groups)
        group variances for a term with a scale model, a :class:`CoscaleDraws` for a
        structured term with one (block designs).
    rng : numpy.random.Generator
    v_factors : numpy.ndarray (S, n), optional
        Per draw and row, the factor of its sampling variance (``V_scale=``; block designs).

    Returns
    -------
    list of numpy.ndarray (S, n_groups_k, q_k)
        Per covariance term, the effects of its groups (indexed by group code); NaN for the
        levels a cluster lacks under a scale model of a structured term.
    """
    n_draws = beta.shape[0]
    if design.nested is not None and v_factors is not None:
        raise ValueError("draw_random_effects: sampling-variance factors need a block design, not the nested one.")
    if design.nested is not None:
        sampler, per_draw = _NestedSampler(design), design.n
    else:
        sampler = _BlockSampler(design)
        per_draw = sum(b.rows.shape[0] * b.rows.shape[1] ** 2 for b in design.batches)
    chunk = max(1, CHUNK_ENTRIES // max(per_draw, 1))
    parts = [sampler.draw(beta[i:i + chunk], [g[i:i + chunk] for g in G], rng,
                          None if v_factors is None else v_factors[i:i + chunk])
             for i in range(0, n_draws, chunk)]
    return [np.concatenate([part[k] for part in parts]) for k in range(len(design.encodings))]


def _group_covariances(g, q: int):
    """Per draw, the covariance of every group's effects, (S, n_groups, q, q), for a :class:`CoscaleDraws`;
    ``g`` itself (one matrix per draw, or per-group variances) otherwise."""
    return g.cluster_covariances(q) if isinstance(g, CoscaleDraws) else g


def draw_prior_effects(design: Design, G: list, rng: np.random.Generator) -> list[np.ndarray]:
    """Draws of ``u_k ~ N(0, G_k)`` for every group of every term, (S, n_groups_k, q_k).

    A term with a scale model gives its groups' variances, (S, n_groups), instead of G_k, a
    structured term with one a :class:`CoscaleDraws` (effects of levels a cluster lacks are 0 here).
    """
    out = []
    for g, enc in zip(G, design.encodings):
        z = rng.standard_normal((len(g), enc.term.n_groups, enc.term.q))
        g = _group_covariances(g, enc.term.q)
        if g.ndim == 2:
            out.append(np.sqrt(g)[:, :, None] * z)
        else:
            out.append(np.einsum(f"s{'g' if g.ndim == 4 else ''}ij,sgj->sgi", psd_sqrt(g), z))
    return out


def random_part(design: Design, effects: list[np.ndarray]) -> np.ndarray:
    """``sum_k Z_k u_k`` for every row and draw, (S, n); undefined (NaN) effects count as 0."""
    total = 0.0
    for enc, u in zip(design.encodings, effects):
        u = np.where(np.isnan(u), 0.0, u)
        if enc.Z is None:
            total = total + u[:, enc.codes, 0]
        else:
            total = total + np.einsum("nq,snq->sn", enc.Z, u[:, enc.codes, :])
    return total


def draw_sampling_errors(V: BlockDiagonal, n_draws: int, rng: np.random.Generator,
                         v_factors: np.ndarray | None = None) -> np.ndarray:
    """Draws of ``e ~ N(0, V)``, (S, n), block by block; with per-row factors ``v_factors`` (S, n),
    ``e ~ N(0, D^1/2 V D^1/2)``, ``D = diag(v_factors)`` of each draw."""
    e = np.zeros((n_draws, V.n))
    for stack in V.stacks:
        z = rng.standard_normal((n_draws,) + stack.rows.shape)
        e[:, stack.rows] = np.einsum("bij,sbj->sbi", psd_sqrt(stack.mats), z)
    return e if v_factors is None else e * np.sqrt(v_factors)


class _NestedSampler:
    """Kalman pass over the tree of nested groups (diagonal V, random intercepts only)."""

    def __init__(self, design: Design):
        nd = design.nested
        self.nd, self.p = nd, design.p
        self.levels = list(zip(nd.starts, nd.term_index))  # finest first
        self.n_groups = [enc.term.n_groups for enc in design.encodings]
        # term code of every group of a level, in the sorted order of the closed form
        self.group_codes = list(nd.group_codes)
        sizes = [len(nd.d)] + [len(start) for start, _ in self.levels]
        # number of children (units of the finer stage) of every group of each level
        self.children = [np.diff(np.r_[start, size]) for (start, _), size in zip(self.levels, sizes)]

    def draw(self, beta: np.ndarray, G: list[np.ndarray], rng: np.random.Generator,
             v_factors: None = None) -> list[np.ndarray]:  # no V_scale on the nested path: v_factors is None
        nd, p = self.nd, self.p
        n_draws = beta.shape[0]
        # the variance of every group of every level, (n_groups_level, S) (scale models: one per group)
        variance = [G[k][:, codes].T if G[k].ndim == 2 else np.broadcast_to(G[k][:, 0, 0], (len(codes), n_draws))
                    for (_, k), codes in zip(self.levels, self.group_codes)]
        mean = nd.U[:, p][:, None] - nd.U[:, :p] @ beta.T  # residuals (n, S)
        spread = np.repeat(nd.d[:, None], n_draws, axis=1)
        messages = []
        for level, (start, k) in enumerate(self.levels):
            precision = np.add.reduceat(1.0 / spread, start, axis=0)
            mean = np.add.reduceat(mean / spread, start, axis=0) / precision
            spread = 1.0 / precision
            messages.append((mean, spread))
            spread = spread + variance[level]  # integrate the group's own effect out
        out = [np.zeros((n_draws, n, 1)) for n in self.n_groups]
        parent = 0.0
        for level in reversed(range(len(self.levels))):
            (mean, spread), k = messages[level], self.levels[level][1]
            if level + 1 < len(self.levels):
                parent = np.repeat(parent, self.children[level + 1], axis=0)
            s = variance[level]
            weight = s / (s + spread)
            total = parent + weight * (mean - parent) + np.sqrt(weight * spread) * rng.standard_normal(mean.shape)
            out[k][:, self.group_codes[level], 0] = (total - parent).T
            parent = total
        return out


class _BlockSampler:
    """Matheron's rule over the padded batches of blocks."""

    def __init__(self, design: Design):
        import scipy.sparse as sp  # a fifth of a second to import: with the first draws, not the package

        self.design = design
        self.cache = []
        for batch in design.batches:
            real = batch.rows >= 0
            safe = np.where(real, batch.rows, 0)
            codes, gather = [], []
            for enc in design.encodings:
                c = np.where(real, enc.codes[safe], -1)
                entries = np.flatnonzero(c.ravel() >= 0)
                gather.append(sp.csr_matrix((np.ones(len(entries)), (c.ravel()[entries], entries)),
                                            shape=(enc.term.n_groups, c.size)))
                codes.append(np.where(real, c, 0))
            self.cache.append((real, psd_sqrt(batch.V), codes, gather))

    def draw(self, beta: np.ndarray, G: list[np.ndarray], rng: np.random.Generator,
             v_factors: np.ndarray | None = None) -> list[np.ndarray]:
        design = self.design
        n_draws = beta.shape[0]
        prior = draw_prior_effects(design, G, rng)
        pulled = [np.zeros_like(u) for u in prior]
        for batch, (real, root_v, codes, gather) in zip(design.batches, self.cache):
            B, m = batch.rows.shape
            e0 = np.einsum("bij,sbj->sbi", root_v, rng.standard_normal((n_draws, B, m)))
            if v_factors is None:
                S = np.broadcast_to(batch.V, (n_draws, B, m, m)).copy()
            else:  # e0 ~ N(0, D^1/2 V D^1/2) and the same sampling covariance in S
                f = sd_factors(batch, v_factors)
                e0 = e0 * f
                S = batch.V * f[..., :, None] * f[..., None, :]
            r = batch.y - np.einsum("bmp,sp->sbm", batch.X, beta) - e0
            for Z, M, g, u0, c in zip(batch.Z, batch.M, G, prior, codes):
                if isinstance(g, CoscaleDraws):
                    r -= np.einsum("bmj,sbmj->sbm", Z, u0[:, c, :])
                    S += M * g.pairs(batch)
                elif Z is None:
                    r -= np.where(real, u0[:, c, 0], 0.0)
                    # a scale model gives its groups' variances (S, n_groups)
                    S += M * (np.where(real, g[:, c], 0.0)[..., None] if g.ndim == 2
                              else g[:, 0, 0][:, None, None, None])
                else:
                    r -= np.einsum("bmj,sbmj->sbm", Z, u0[:, c, :])
                    S += M * np.matmul(np.einsum("bmi,sij->sbmj", Z, g), np.swapaxes(Z, 1, 2)[None])
            w = np.linalg.solve(S, r[..., None])[..., 0]
            for k, (Z, to_groups) in enumerate(zip(batch.Z, gather)):
                weighted = w[..., None] if Z is None else w[..., None] * Z
                q = weighted.shape[-1]
                flat = np.moveaxis(weighted.reshape(n_draws, B * m, q), 1, 0).reshape(B * m, n_draws * q)
                pulled[k] += np.moveaxis((to_groups @ flat).reshape(-1, n_draws, q), 1, 0)
        out = []
        for enc, u0, z, g in zip(design.encodings, prior, pulled, G):
            if isinstance(g, CoscaleDraws):  # G_j Z_j' w per cluster; levels it lacks have no effect
                u = u0 + np.einsum("sgi,sgij->sgj", z, g.cluster_covariances(enc.term.q))
                out.append(np.where(g.present(enc.term.q), u, np.nan))
            else:
                out.append(u0 + (z * g[..., None] if g.ndim == 2 else np.einsum("sgi,sij->sgj", z, g)))
        return out


def simulate_outcomes(design: Design, beta: np.ndarray, G: list[np.ndarray], rng: np.random.Generator,
                      v_factors: np.ndarray | None = None) -> np.ndarray:
    """New outcomes ``X beta + Z u + e`` with ``u ~ N(0, G)`` and ``e ~ N(0, V)``, (S, n).

    ``beta`` is (S, p) and ``G`` as for :func:`draw_prior_effects` (one draw per row of beta; a structured
    term with a scale model gives each row the effect of its own cell);
    ``v_factors`` (S, n) scales V as for :func:`draw_sampling_errors`.
    """
    effects = draw_prior_effects(design, G, rng)
    return (beta @ design.X.T + random_part(design, effects)
            + draw_sampling_errors(design.V, len(beta), rng, v_factors))
