"""Row-level log-likelihoods of a non-factorised normal model, for leave-one-out cross-validation.

Rows of one block are correlated (shared random effects, covariances in V),
so the likelihood does not factorise by row. Leave-one-out needs, per draw, the
density of each row given the other rows of the data (Buerkner, Gabry and
Vehtari 2021, "Efficient leave-one-out cross-validation for Bayesian
non-factorized normal and Student-t models", Computational Statistics 36):
with the block's marginal covariance ``Sigma`` (random effects integrated out),
its precision ``P = Sigma^-1`` and the residual ``r = y - X beta``,

    y_i | y_-i ~ N(y_i - g_i / P_ii, 1 / P_ii),   g = P r,

so ``log p(y_i | y_-i) = (log P_ii - log 2 pi - g_i^2 / P_ii) / 2``. Rows of other
blocks are independent, so only the block is needed. With a proportional
sampling-variance model (``V_scale=``) the block's V is ``D^1/2 V D^1/2`` with the
draw's per-row factors; a structured term with a scale model adds
``sd_i sd_j R_pair[i, j]`` at the draw's cell SDs and cluster correlations. NumPy only, batched over blocks of equal padded size and
over chunks of draws.
"""

from __future__ import annotations

import numpy as np

from ...design.blocks import build_batches
from ...design.build import Design
from ..random_effects import CoscaleDraws, sd_factors

#: Matrix entries (draws x blocks x m x m) handled at once.
CHUNK_ENTRIES = 2_000_000


def _covariances(batch, G: list[np.ndarray], codes: list[np.ndarray], n_draws: int,
                 v_factors: np.ndarray | None = None) -> np.ndarray:
    """Sigma of every draw and block of the batch, (S, B, m, m).

    ``G[k]`` is (S, q, q), (S, n_groups) for a term whose group variances come from a
    scale model, or a :class:`~bayesmeta.engines.random_effects.CoscaleDraws`; ``codes[k]`` the group of every entry of the batch (B, m); ``v_factors``
    (S, n) the per-row factors of the sampling variances (``V_scale=``).
    """
    if v_factors is None:
        sigma = np.broadcast_to(batch.V, (n_draws,) + batch.V.shape).copy()
    else:
        f = sd_factors(batch, v_factors)
        sigma = batch.V * f[..., :, None] * f[..., None, :]
    for Z, M, Gk, code in zip(batch.Z, batch.M, G, codes):
        if isinstance(Gk, CoscaleDraws):
            sigma += M * Gk.pairs(batch)
        elif Gk.ndim == 2:  # per-group variances: pairs in one group share their group's variance
            sigma += M * Gk[:, code][..., None]
        elif Z is None:
            sigma += M * Gk[:, 0, 0][:, None, None, None]
        else:
            sigma += M * np.einsum("bmq,sqr,bnr->sbmn", Z, Gk, Z)
    return sigma


def row_log_likelihood(design: Design, beta: np.ndarray, G: list[np.ndarray],
                       v_factors: np.ndarray | None = None) -> np.ndarray:
    """``log p(y_i | y_-i, theta)`` of every row and draw, (S, n).

    Parameters
    ----------
    design : Design
    beta : numpy.ndarray (S, p)
        Fixed effects of S draws.
    G : list
        Per covariance term, (S, q, q) covariances, (S, n_groups) group variances or a
        :class:`~bayesmeta.engines.random_effects.CoscaleDraws`
        (as :func:`bayesmeta.engines.bayes.draws.parameter_draws` returns them).
    v_factors : numpy.ndarray (S, n), optional
        Per draw and row, the factor of its sampling variance (``V_scale=``, as
        :func:`bayesmeta.engines.bayes.draws.v_factor_draws` returns them).

    Returns
    -------
    numpy.ndarray (S, n)
    """
    batches = design.batches or build_batches(design.y, design.X, design.V, design.encodings, design.block_of_row)
    n_draws = len(beta)
    out = np.empty((n_draws, design.n))
    for batch in batches:
        real = batch.rows >= 0
        safe = np.where(real, batch.rows, 0)
        codes = [np.where(real, enc.codes[safe], 0) for enc in design.encodings]
        B, m = batch.rows.shape
        step = max(1, CHUNK_ENTRIES // (B * m * m))
        for start in range(0, n_draws, step):
            chunk = slice(start, start + step)
            sigma = _covariances(batch, [g[chunk] for g in G], codes, len(beta[chunk]),
                                 None if v_factors is None else v_factors[chunk])
            precision = np.linalg.inv(sigma)
            resid = batch.y[None] - np.einsum("bmp,sp->sbm", batch.X, beta[chunk])
            g = np.einsum("sbmn,sbn->sbm", precision, resid)
            p_ii = np.diagonal(precision, axis1=2, axis2=3)
            loglik = 0.5 * (np.log(p_ii) - np.log(2 * np.pi) - g ** 2 / p_ii)
            out[chunk][:, batch.rows[real]] = loglik[:, real]
    return out
