"""Simulation studies: bias, RMSE and coverage of every parameter under several methods.

Each replication draws a data set from the model's design at the true values
(:func:`~bayesmeta.studies.simulation.simulate_data`), fits it with every method
(ML/REML/moment estimators through ``fit``, ``"NUTS"`` through ``sample``) and
records each parameter's estimate and interval: the table's ``estimate`` (the
posterior mean for NUTS) and ``ci_lb, ci_ub`` (Wald intervals for fixed effects;
for variance components the table's intervals: Q-profile for the standard model's
tau^2 under every estimator, profile likelihood under ML/REML otherwise; equal-tailed
posterior intervals for NUTS).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..engines.mode.moments import MOMENT_METHODS
from ..errors import SpecificationError
from .parallel import run_replications
from .simulation import parameter_values, simulate_data, with_outcome
from .truths import complete_truths

BAYES_METHODS = ("NUTS",)
KNOWN_METHODS = ("REML", "ML", "FE", *MOMENT_METHODS, *BAYES_METHODS)


@dataclass(frozen=True)
class SimulationStudy:
    """Results of :func:`simulation_study`.

    Attributes
    ----------
    estimates : pandas.DataFrame
        One row per replication, method and parameter: ``replication, method,
        parameter, truth, estimate, ci_lb, ci_ub`` (NaN where a fit failed, with the
        error in ``error``).
    level : float
        Probability of the intervals.
    """

    estimates: pd.DataFrame
    level: float

    @property
    def table(self) -> pd.DataFrame:
        """Per method and parameter: ``truth, mean, bias, bias_mcse, rmse, coverage, coverage_mcse, n_ok``.

        Monte Carlo standard errors: ``sd(estimate) / sqrt(n_ok)`` for the bias and
        ``sqrt(c (1 - c) / n_ok)`` for the coverage ``c``.
        """
        rows = []
        for (method, parameter), part in self.estimates.groupby(["method", "parameter"], sort=False):
            ok = part.dropna(subset=["estimate"])
            error = ok.estimate - ok.truth
            covered = ((ok.ci_lb <= ok.truth) & (ok.truth <= ok.ci_ub)).to_numpy(float)
            n_ok = len(ok)
            c = covered.mean() if n_ok else np.nan
            rows.append({"method": method, "parameter": parameter, "truth": part.truth.iloc[0],
                         "mean": ok.estimate.mean(), "bias": error.mean(),
                         "bias_mcse": ok.estimate.std(ddof=1) / np.sqrt(n_ok) if n_ok > 1 else np.nan,
                         "rmse": float(np.sqrt(np.mean(error ** 2))) if n_ok else np.nan,
                         "coverage": c, "coverage_mcse": float(np.sqrt(c * (1 - c) / n_ok)) if n_ok else np.nan,
                         "n_ok": n_ok})
        return pd.DataFrame(rows)

    def summary(self, digits: int = 4) -> str:
        """The table as text."""
        return (f"Simulation study: {self.estimates.replication.nunique()} replications, "
                f"{self.level:.0%} intervals\n" + self.table.round(digits).to_string(index=False))

    def __repr__(self) -> str:
        return self.summary()


def _fit_table(model, method: str, level: float, seed: int, sample_options: dict) -> pd.DataFrame:
    if method in BAYES_METHODS:
        result = model.sample(random_seed=seed, level=level, progressbar=False, **sample_options)
        return result.table()[["estimate", "ci_lb", "ci_ub"]]
    fit = model.fit(method, level=level)
    if method != "FE":
        fit.confint(level, progressbar=False)  # computed once, silently; the table reuses the intervals
    return fit.table()[["estimate", "ci_lb", "ci_ub"]]


class _Replication:
    """One replication (a picklable callable for joblib and dask)."""

    def __init__(self, model, truths: dict, methods: tuple, level: float, sample_options: dict):
        self.model, self.truths, self.methods = model, truths, methods
        self.level, self.sample_options = level, sample_options

    def __call__(self, index: int, seed: int) -> pd.DataFrame:
        y = simulate_data(self.model, self.truths, n=1, random_seed=seed).iloc[:, 0].to_numpy()
        refit = with_outcome(self.model, y)
        parts = []
        for method in self.methods:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # boundary and convergence notes of single replications
                    table = _fit_table(refit, method, self.level, seed, self.sample_options)
                error = ""
            except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
                table, error = pd.DataFrame(columns=["estimate", "ci_lb", "ci_ub"], dtype=float), repr(exc)
            part = pd.DataFrame({"parameter": list(self.truths), "truth": list(self.truths.values())})
            part = part.join(table, on="parameter")
            part.insert(0, "method", method)
            part["error"] = error
            parts.append(part)
        out = pd.concat(parts, ignore_index=True)
        out.insert(0, "replication", index)
        return out


def simulation_study(model, truths, n: int = 100, *, methods=("REML", "NUTS"), level: float = 0.95,
                     draws: int = 500, tune: int = 500, chains: int = 2, random_seed=None, n_jobs: int = 1,
                     backend: str = "joblib", client=None, progressbar: bool = True) -> SimulationStudy:
    """Bias, RMSE and coverage of every parameter and method over ``n`` simulated data sets.

    Parameters
    ----------
    model : MetaModel
        Its design (X, V, random structure) generates every data set.
    truths : dict, pandas.Series or ModeResult
        True values by table label (``beta[...]``, ``sigma2[...]``, ``tau2[...]``,
        ``rho[...]``, ...; see :func:`~bayesmeta.studies.truths.truth_labels`), or a
        fit whose estimates are taken as the truth.
    n : int
        Number of replications.
    methods : sequence of str
        ``"REML"``, ``"ML"``, moment estimators (``"DL"``, ...) and ``"NUTS"``.
    level : float
        Probability of the intervals whose coverage is counted.
    draws, tune, chains : int
        NUTS settings per replication.
    random_seed : int, optional
        Makes every replication reproducible, whatever the backend.
    n_jobs, backend, client
        Parallel execution (see :func:`~bayesmeta.studies.parallel.run_replications`).
    progressbar : bool

    Returns
    -------
    SimulationStudy

    Examples
    --------
    >>> import bayesmeta as bm
    >>> model = bm.MetaModel("logrr ~ 1", bm.datasets.load("bcg"), vi="logrrvar")
    >>> study = bm.simulation_study(model, {"beta[Intercept]": -0.7, "tau2": 0.3}, n=10, methods=("REML", "DL"),
    ...                             random_seed=1, progressbar=False)
    >>> study.table[["method", "parameter", "n_ok"]].values.tolist()
    [['REML', 'beta[Intercept]', 10], ['REML', 'tau2[row]', 10], ['DL', 'beta[Intercept]', 10], ['DL', 'tau2[row]', 10]]
    """
    truths = complete_truths(model.design, model.param, parameter_values(truths))
    methods = tuple(methods)
    unknown = [m for m in methods if m not in KNOWN_METHODS]
    if not methods or unknown:
        raise SpecificationError(f"methods: expected some of {', '.join(KNOWN_METHODS)}, got {methods!r}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in methods:  # a method that does not apply to the model fails here, not in every replication
            if method not in BAYES_METHODS:
                model.fit(method)
    replication = _Replication(model, truths, methods, level,
                               {"draws": draws, "tune": tune, "chains": chains, "cores": 1})
    results = run_replications(replication, n, random_seed=random_seed, n_jobs=n_jobs, backend=backend,
                               client=client, progressbar=progressbar, description="simulation study")
    return SimulationStudy(pd.concat(results, ignore_index=True), level)
