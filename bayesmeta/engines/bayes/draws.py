"""Posterior (or prior) draws of the model's parameters as NumPy arrays.

The Bayesian graph stores, per draw, the variance components under metafor's
names (``sigma2``, ``tau2``, ``rho``, ``gamma2``, ``phi``), the scale
coefficients ``alpha``, the coefficients ``zeta`` of the correlation models of
structured terms and the coefficients ``delta`` of the sampling-variance model;
everything computed from draws afterwards (random effects, row log-likelihoods,
predictions, posterior predictive) starts from the per-term covariances (per
group variances of a scale model, cell SDs and cluster correlations of a scale
model of a structured term) and the per-row sampling-variance factors built here.
NumPy only.
"""

from __future__ import annotations

import numpy as np

from ...design.parameters import FAMILIES, Parameterization
from ..random_effects import CoscaleDraws


def natural_from_draws(param: Parameterization, values: dict) -> list:
    """Per-term (sd, rho) from the deterministics sigma2/tau2/rho/gamma2/phi.

    ``values`` maps each family present to an array (S, k) of S draws; the
    result holds, per term, arrays ``sd`` (S, n_sd) and ``rho`` (S, n_rho).
    """
    cursor = {f: 0 for pair in FAMILIES.items() for f in pair if f}
    natural = []
    n_draws = len(next(iter(values.values()))) if values else 0
    for k, t in enumerate(param.terms):
        if param.scale_of(k) is not None or param.coscale_of(k) is not None:  # no SD: from alpha (and zeta)
            natural.append((np.zeros((n_draws, 0)), np.zeros((n_draws, 0))))
            continue
        family = values[t.family]
        sd = np.sqrt(family[:, cursor[t.family]:cursor[t.family] + t.n_sd])
        cursor[t.family] += t.n_sd
        rho = np.zeros((len(family), t.n_rho))
        corr = FAMILIES.get(t.family)
        if corr and t.n_rho:
            rho = values[corr][:, cursor[corr]:cursor[corr] + t.n_rho]
            cursor[corr] += t.n_rho
        natural.append((sd, rho))
    return natural


def covariances_from_draws(param: Parameterization, values: dict) -> list:
    """Per term, the random-effect covariance of every draw, (S, q, q); for a term with a
    scale model, the variance of each of its groups in every draw, (S, n_groups), from
    ``values["alpha"]`` (S, n_alpha); for a structured term with a scale model, its
    :class:`~bayesmeta.engines.random_effects.CoscaleDraws` (cell SDs from ``alpha``, cluster
    correlations from ``values["zeta"]``)."""
    out = []
    for k, (t, (sd, rho)) in enumerate(zip(param.terms, natural_from_draws(param, values))):
        sc, cs = param.scale_of(k), param.coscale_of(k)
        if cs is not None:
            sd_cells = np.exp(0.5 * values["alpha"][:, param.alpha_slice(k)] @ cs.tau.W.T)
            rho = (np.zeros((len(sd_cells), t.n_groups)) if cs.zeta is None
                   else np.tanh(values["zeta"][:, param.coefficient_slice(k, "zeta")] @ cs.zeta.W.T))
            out.append(CoscaleDraws(sd_cells, rho, cs))
        elif sc is not None:
            out.append(np.exp(values["alpha"][:, param.alpha_slice(k)] @ sc.W.T))
        else:
            out.append(t.structure.covariances(sd, rho, t.q))
    return out


def labelled_draws(group, names) -> dict[str, np.ndarray]:
    """Every scalar of the variables ``names`` present in an ArviZ group, labelled as the
    result tables (``beta[Intercept]``, ``tau2[row]``): label -> draws, chains stacked (chain-major)."""
    out = {}
    for name in names:
        if name not in group:
            continue
        values = group[name]
        extra = [d for d in values.dims if d not in ("chain", "draw")]
        flat = values.values.reshape(values.sizes["chain"] * values.sizes["draw"], -1)
        labels = [name] if not extra else [f"{name}[{c}]" for c in values[extra[0]].values]
        out.update(zip(labels, flat.T))
    return out


def _stacked(group, name: str) -> np.ndarray:
    """A variable's draws with the chains stacked (chain-major), (S, ...)."""
    values = group[name].values
    return values.reshape((-1,) + values.shape[2:])


def v_factor_draws(param: Parameterization, posterior) -> np.ndarray | None:
    """Per draw and row, the factor ``exp(w_i' delta)`` of its sampling variance (S, n), chains
    stacked, from ``delta`` (``V_scale=``); None for a model without a sampling-variance model."""
    if param.v_scale is None:
        return None
    return np.exp(_stacked(posterior, "delta") @ param.v_scale.W.T)


def parameter_draws(param: Parameterization, posterior) -> tuple[np.ndarray, list]:
    """Fixed effects (S, p) and per-term covariances (S, q, q) of every draw, chains stacked
    (for a term with a scale model, the variances of its groups, (S, n_groups); for a structured
    term with one, its :class:`~bayesmeta.engines.random_effects.CoscaleDraws`)."""
    families = {f for t in param.terms for f in (t.family, FAMILIES.get(t.family)) if f and f in posterior}
    if param.has_scale:
        families.add("alpha")
    if param.n_zeta:
        families.add("zeta")
    return _stacked(posterior, "beta"), covariances_from_draws(param, {f: _stacked(posterior, f) for f in families})
