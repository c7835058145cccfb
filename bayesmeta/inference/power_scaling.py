"""Power-scaling sensitivity of a posterior to its prior and its likelihood, without refits.

Kallioinen, Paananen, Buerkner and Vehtari (2023), "Detecting and diagnosing
prior and likelihood sensitivity with power-scaling", Statistics and
Computing 34: raising the prior (or the likelihood) to a power ``alpha`` near 1
changes the posterior by importance weights ``p^(alpha - 1)``; how far the
posterior moves, measured by the cumulative Jensen-Shannon distance per unit of
``log alpha``, is the sensitivity (as ArviZ's ``psens``, which this module calls).
Both sensitivities at or above 0.05 suggest a prior-data conflict; a
sensitive prior with an insensitive likelihood, a strong prior or a weak
likelihood. Power-scaled posteriors at given ``alpha`` are summarised with
Pareto-smoothed importance weights; a Pareto k above ``min(1 - 1/log10(S), 0.7)``
(S draws) flags the weights, and the summary, as unreliable.

Needs the ``log_prior`` (one variable per prior) and ``log_likelihood`` groups
of the InferenceData, which :meth:`bayesmeta.MetaModel.sample` stores.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..engines.bayes.draws import labelled_draws

#: Sensitivity (cumulative Jensen-Shannon distance per unit log alpha) that counts as sensitive.
THRESHOLD = 0.05


def diagnose(prior: float, likelihood: float, threshold: float = THRESHOLD) -> str:
    """priorsense's diagnosis from the two sensitivities.

    Examples
    --------
    >>> diagnose(0.08, 0.12), diagnose(0.08, 0.01), diagnose(0.01, 0.2)
    ('prior-data conflict', 'strong prior / weak likelihood', '-')
    """
    if prior >= threshold and likelihood >= threshold:
        return "prior-data conflict"
    if prior >= threshold:
        return "strong prior / weak likelihood"
    return "-"


def _sensitivities(idata, names: list[str], component: str) -> pd.Series:
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sens = az.psens(idata, component=component, var_names=names)
    if not hasattr(sens, "data_vars"):  # one variable comes back as a DataArray
        sens = sens.to_dataset(name=names[0])
    out = {}
    for name in names:
        values = sens[name]
        labels = [name] if values.ndim == 0 else [f"{name}[{c}]" for c in values[values.dims[0]].values]
        out.update(zip(labels, np.atleast_1d(values.values)))
    return pd.Series(out, dtype=float)


def _log_density(idata, component: str) -> np.ndarray:
    """Per draw, the total log prior or log likelihood (chain-major)."""
    group = idata.log_prior if component == "prior" else idata.log_likelihood
    total = 0.0
    for variable in group.data_vars.values():
        extra = [d for d in variable.dims if d not in ("chain", "draw")]
        total = total + (variable.sum(extra) if extra else variable)
    return np.asarray(total.values).reshape(-1)


def power_scaled_summaries(idata, draws: pd.DataFrame, component: str, alpha: float) -> pd.DataFrame:
    """Mean and SD of every column of ``draws`` under the prior or likelihood raised to ``alpha``,
    by Pareto-smoothed importance sampling, with the Pareto k of the weights."""
    import arviz as az

    log_weights = (alpha - 1.0) * _log_density(idata, component)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smoothed, k = az.psislw(log_weights - log_weights.max())
    w = np.exp(smoothed - np.logaddexp.reduce(smoothed))
    mean = w @ draws.to_numpy()
    sd = np.sqrt(w @ (draws.to_numpy() - mean) ** 2)
    return pd.DataFrame({"mean": mean, "sd": sd, "pareto_k": float(k)}, index=draws.columns)


def power_scaling(idata, names: list[str], alphas=(0.8, 1.25), threshold: float = THRESHOLD) -> pd.DataFrame:
    """Sensitivity of every scalar of ``names`` to prior and likelihood power-scaling.

    Parameters
    ----------
    idata : arviz.InferenceData
        With ``posterior``, ``log_prior`` and ``log_likelihood`` groups.
    names : list of str
        Posterior variables (e.g. ``beta``, ``tau2``).
    alphas : pair of float
        Powers at which the scaled posteriors are summarised.
    threshold : float
        Sensitivity counted as sensitive in the diagnosis.

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter (table labels): ``prior``, ``likelihood`` (sensitivities),
        ``diagnosis``, ``mean`` (the posterior mean), then for each component and alpha
        ``mean_<component>_<alpha>`` and ``sd_<component>_<alpha>``, and the columns
        ``pareto_k_<component>_<alpha>`` and ``reliable`` (every Pareto k below the
        threshold ``min(1 - 1/log10(S), 0.7)``).
    """
    draws = pd.DataFrame(labelled_draws(idata.posterior, names))
    out = pd.DataFrame({"prior": _sensitivities(idata, names, "prior"),
                        "likelihood": _sensitivities(idata, names, "likelihood")}).loc[draws.columns]
    out["diagnosis"] = [diagnose(p, lik, threshold) for p, lik in zip(out.prior, out.likelihood)]
    out["mean"] = draws.mean().to_numpy()
    k_limit = min(1 - 1 / np.log10(len(draws)), 0.7)
    reliable = np.ones(len(out), bool)
    for component in ("prior", "likelihood"):
        for alpha in alphas:
            scaled = power_scaled_summaries(idata, draws, component, alpha)
            suffix = f"{component}_{alpha:g}"
            out[f"mean_{suffix}"] = scaled["mean"].to_numpy()
            out[f"sd_{suffix}"] = scaled["sd"].to_numpy()
            out[f"pareto_k_{suffix}"] = scaled["pareto_k"].to_numpy()
            reliable &= scaled["pareto_k"].to_numpy() < k_limit
    out["reliable"] = reliable
    return out
