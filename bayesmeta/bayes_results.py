"""Results of the Bayesian engine: posterior draws with diagnostics.

:class:`BayesResult` wraps an :class:`arviz.InferenceData` whose posterior
holds ``beta`` (dim ``term``), ``sd`` (dim ``component``), ``cor`` where
correlations exist, and the frequentist-named deterministics ``sigma2``,
``tau2``, ``rho``, ``gamma2``, ``phi``. Problems of the sampler (divergences,
R-hat above 1.01, effective sample sizes below 400, low E-BFMI) are computed
once, raised as :class:`~bayesmeta.errors.ConvergenceWarning` and shown in
:meth:`BayesResult.summary`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property

import arviz as az
import numpy as np
import pandas as pd

from .errors import ConvergenceWarning
from .priors import PriorSet

#: Thresholds for diagnostics warnings.
MAX_RHAT = 1.01
MIN_ESS = 400
MIN_BFMI = 0.3
#: Posterior variables reported (those present).
REPORTED = ("beta", "sigma2", "tau2", "rho", "gamma2", "phi")


@dataclass(frozen=True)
class BayesResult:
    """Posterior draws of a meta-analytic model.

    Attributes
    ----------
    idata : arviz.InferenceData
        Posterior, sample statistics and (per independent block) ``log_likelihood``.
    priors : PriorSet
        The priors used, with :meth:`PriorSet.table`.
    sampler : str
        ``"pymc"`` or ``"nutpie"``.
    """

    idata: az.InferenceData
    priors: PriorSet = field(repr=False)
    sampler: str = "pymc"
    level: float = 0.95

    def __post_init__(self):
        for message in self.problems:
            warnings.warn(message, ConvergenceWarning, stacklevel=3)

    @property
    def var_names(self) -> list[str]:
        post = self.idata.posterior
        return [v for v in ("beta", "sd", "cor") if v in post]

    @cached_property
    def diagnostics(self) -> dict:
        """Divergences, max R-hat, min bulk and tail ESS, min E-BFMI over the free parameters."""
        names = self.var_names
        rhat = az.rhat(self.idata, var_names=names)
        ess_bulk = az.ess(self.idata, var_names=names, method="bulk")
        ess_tail = az.ess(self.idata, var_names=names, method="tail")

        def extreme(ds, fn):
            values = np.concatenate([np.ravel(ds[v].values) for v in ds.data_vars])
            values = values[np.isfinite(values)]
            return float(fn(values)) if len(values) else np.nan

        stats = self.idata.get("sample_stats")
        divergences = int(stats["diverging"].sum()) if stats is not None and "diverging" in stats else 0
        try:
            bfmi = float(np.min(az.bfmi(self.idata)))
        except (KeyError, ValueError, TypeError, AttributeError):
            bfmi = np.nan
        n_chains = self.idata.posterior.sizes["chain"]
        return {"chains": int(n_chains), "draws": int(self.idata.posterior.sizes["draw"]),
                "divergences": divergences, "max_rhat": extreme(rhat, np.max),
                "min_ess_bulk": extreme(ess_bulk, np.min), "min_ess_tail": extreme(ess_tail, np.min),
                "min_bfmi": bfmi}

    @cached_property
    def problems(self) -> list[str]:
        """Readable descriptions of every failed diagnostic check."""
        if self.sampler == "laplace":  # independent draws from a Gaussian: nothing to diagnose
            return []
        d = self.diagnostics
        out = []
        if d["divergences"]:
            out.append(f"{d['divergences']} divergent transition(s) after tuning; "
                       "increase target_accept or reparameterise.")
        if d["chains"] > 1 and d["max_rhat"] > MAX_RHAT:
            out.append(f"R-hat up to {d['max_rhat']:.3f} (> {MAX_RHAT}): the chains have not mixed.")
        if d["min_ess_bulk"] < MIN_ESS or d["min_ess_tail"] < MIN_ESS:
            out.append(f"effective sample size as low as {min(d['min_ess_bulk'], d['min_ess_tail']):.0f} "
                       f"(< {MIN_ESS}): draw more samples.")
        if np.isfinite(d["min_bfmi"]) and d["min_bfmi"] < MIN_BFMI:
            out.append(f"E-BFMI as low as {d['min_bfmi']:.2f} (< {MIN_BFMI}).")
        return out

    def table(self) -> pd.DataFrame:
        """Posterior mean, SD, equal-tailed interval, ESS and R-hat of every reported parameter."""
        names = [v for v in REPORTED if v in self.idata.posterior]
        lo, hi = (1 - self.level) / 2, (1 + self.level) / 2
        s = az.summary(self.idata, var_names=names, kind="all", stat_focus="mean", round_to="none",
                       stat_funcs={"lower": lambda x: np.quantile(x, lo), "upper": lambda x: np.quantile(x, hi)})
        s = s.rename(columns={"sd": "post_sd"})
        return s[["mean", "post_sd", "lower", "upper", "ess_bulk", "ess_tail", "r_hat"]]

    def summary(self) -> str:
        """A printable report: diagnostics, posterior table and priors."""
        d = self.diagnostics
        how = ("Laplace approximation at the posterior mode" if self.sampler == "laplace"
               else f"{self.sampler} NUTS")
        lines = [f"Bayesian meta-analysis ({how}: {d['chains']} chain(s) x {d['draws']} draws)", ""]
        lines.append(f"divergences: {d['divergences']}   max R-hat: {d['max_rhat']:.3f}   "
                     f"min ESS bulk/tail: {d['min_ess_bulk']:.0f}/{d['min_ess_tail']:.0f}   "
                     f"min E-BFMI: {d['min_bfmi']:.2f}")
        lines.append("")
        table = self.table()
        fmt = table.copy()
        for c in ("mean", "post_sd", "lower", "upper"):
            fmt[c] = table[c].map(lambda v: f"{v:.4f}")
        for c in ("ess_bulk", "ess_tail"):
            fmt[c] = table[c].map(lambda v: f"{v:.0f}")
        fmt["r_hat"] = table["r_hat"].map(lambda v: f"{v:.3f}")
        fmt = fmt.rename(columns={"post_sd": "sd", "lower": f"{100 * (1 - self.level) / 2:g}%",
                                  "upper": f"{100 * (1 + self.level) / 2:g}%"})
        lines.append(fmt.to_string())
        lines.append("")
        lines.append("Priors:")
        lines.append(self.priors.table().to_string(index=False))
        if self.problems:
            lines.append("")
            lines += [f"Warning: {p}" for p in self.problems]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

