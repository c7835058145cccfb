"""New data sets drawn from a model's design: same X, V and random structure, chosen parameters.

``y = X beta + Z u + e`` with ``u ~ N(0, G)`` (per group) and ``e ~ N(0, V)``
(per block): O(n) per data set, never an n x n matrix.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from ..design.subset import rebuild
from ..engines.bayes.draws import covariances_from_draws
from ..engines.random_effects import CoscaleDraws, simulate_outcomes
from ..errors import SpecificationError
from .truths import truth_arrays


def parameter_values(fit_or_values) -> dict:
    """Values by table label from a fit (its estimates) or from a dict/Series of values."""
    if hasattr(fit_or_values, "idata"):
        raise SpecificationError("params: a posterior has no single parameter value; give a dict of values "
                                 "(e.g. post.table()['estimate']) or an ML/REML fit.")
    if hasattr(fit_or_values, "table") and hasattr(fit_or_values, "estimate"):
        return fit_or_values.table()["estimate"].to_dict()
    return fit_or_values


def simulate_data(model, params, n: int = 1, random_seed=None) -> pd.DataFrame:
    """``n`` outcome vectors drawn from ``model`` at ``params``; see :meth:`bayesmeta.MetaModel.simulate`."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SpecificationError(f"n: expected a positive number of data sets, got {n!r}.")
    param = model.param
    beta, values = truth_arrays(model.design, param, parameter_values(params))
    G = [_repeated(g, n) for g in covariances_from_draws(param, values)]
    factors = None
    if param.v_scale is not None:  # V scaled by exp(w_i' delta)
        factors = np.broadcast_to(np.exp(param.v_scale.W @ values["delta"][0]), (n, model.design.n))
    y = simulate_outcomes(model.design, np.broadcast_to(beta, (n, len(beta))), G, np.random.default_rng(random_seed),
                          factors)
    return pd.DataFrame(y.T, index=pd.Index(model.design.row_labels), columns=[f"sim_{i + 1}" for i in range(n)])


def _repeated(g, n: int):
    """One draw of a term's covariances (or of a structured scale model's SDs and correlations) for n data sets."""
    if isinstance(g, CoscaleDraws):
        return CoscaleDraws(np.repeat(g.sd_cells, n, axis=0), np.repeat(g.rho_clusters, n, axis=0), g.design)
    return np.broadcast_to(g, (n,) + g.shape[1:])


def with_outcome(model, y) -> object:
    """A copy of ``model`` whose outcome is ``y`` (one value per row used); everything else shared.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> model = bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    >>> with_outcome(model, model.design.y + 1.0).fit().coef.round(4).tolist()
    [1.1847]
    """
    y = np.asarray(y, dtype=float).ravel()
    if y.shape != (model.design.n,):
        raise SpecificationError(f"y: expected {model.design.n} outcomes (one per row used), got {y.size}.")
    if not np.isfinite(y).all():
        raise SpecificationError(f"y: rows {np.flatnonzero(~np.isfinite(y))[:5].tolist()} are not finite.")
    new = copy.copy(model)
    new.design = rebuild(model.design, y=y)
    return new
