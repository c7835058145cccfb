"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari and Gelman 2018).

Each replication draws parameters from the prior and a data set from them
(:meth:`~bayesmeta.MetaModel.sample_prior_predictive`), samples the posterior
of that data set with NUTS, and records for every parameter the rank of its
true value among ``L`` posterior draws (thinned evenly from all draws). If
the sampler and the model are right, every rank is uniform on ``0, ..., L``;
:meth:`SBCResult.test` checks this with a chi-square test over equal bins and
:meth:`SBCResult.plot` draws the rank histograms with the 99% band of a
uniform histogram.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..engines.bayes.draws import labelled_draws
from ..errors import SpecificationError
from ..inference.intervals import chi2_sf
from .parallel import run_replications
from .simulation import with_outcome

#: Parameters ranked: the fixed effects, variance components, correlations and scale coefficients.
RANKED = ("beta", "sigma2", "tau2", "gamma2", "rho", "phi", "alpha")


@dataclass(frozen=True)
class SBCResult:
    """Ranks of simulation-based calibration.

    Attributes
    ----------
    ranks : pandas.DataFrame
        One row per replication, one column per parameter (labels as in the result
        tables): the number of the ``L`` kept posterior draws below the true value.
    truths : pandas.DataFrame
        The prior draws used as true values, same layout.
    L : int
        Posterior draws kept per replication (ranks lie in ``0..L``).
    bins : int
        Bins of the uniformity test and the histograms; ``(L + 1) / bins`` ranks per bin.
    divergences : numpy.ndarray
        Divergent transitions per replication.
    """

    ranks: pd.DataFrame
    truths: pd.DataFrame
    L: int
    bins: int
    divergences: np.ndarray

    def counts(self) -> pd.DataFrame:
        """Ranks per bin (rows: bins, columns: parameters)."""
        width = (self.L + 1) // self.bins
        return pd.DataFrame({p: np.bincount(r.to_numpy(int) // width, minlength=self.bins)
                             for p, r in self.ranks.items()})

    def test(self) -> pd.DataFrame:
        """Chi-square test of uniform ranks per parameter: ``statistic, df, pval``."""
        counts = self.counts()
        expected = len(self.ranks) / self.bins
        statistic = ((counts - expected) ** 2 / expected).sum()
        df = self.bins - 1
        return pd.DataFrame({"statistic": statistic, "df": df, "pval": [chi2_sf(s, df) for s in statistic]})

    def plot(self, axes=None):
        """Rank histograms, one panel per parameter, with the 99% band of uniform counts.

        Returns
        -------
        numpy.ndarray of matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt
        from scipy.stats import binom

        counts = self.counts()
        n_par = counts.shape[1]
        if axes is None:
            _, axes = plt.subplots(1, n_par, figsize=(3.2 * n_par, 2.8), squeeze=False)
        axes = np.ravel(axes)
        n, p = len(self.ranks), 1.0 / self.bins
        low, high = binom.ppf(0.005, n, p), binom.ppf(0.995, n, p)
        for ax, (name, column) in zip(axes, counts.items()):
            ax.axhspan(low, high, color="0.85", zorder=0)
            ax.axhline(n * p, color="0.5", lw=0.8)
            ax.bar(np.arange(self.bins), column.to_numpy(), width=1.0, color="C0", edgecolor="white")
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("rank bin")
        axes[0].set_ylabel("replications")
        return axes

    def summary(self) -> str:
        """The uniformity tests as text."""
        return (f"SBC: {len(self.ranks)} replications, L = {self.L} draws, {self.bins} bins, "
                f"{int(self.divergences.sum())} divergent transitions\n" + self.test().round(4).to_string())

    def __repr__(self) -> str:
        return self.summary()


class _Replication:
    """One SBC replication: the posterior of the index-th simulated outcome and the ranks of the truths.

    Replications are sampled by nutpie on one compiled model whose outcome is data
    (:class:`~bayesmeta.engines.bayes.data_sampler.DataSampler`), compiled once
    per process, under the priors the data were simulated from; without nutpie they
    are built and sampled anew for every replication.
    """

    def __init__(self, model, ys: np.ndarray, truths: pd.DataFrame, L: int, sample_options: dict):
        self.model, self.ys, self.truths, self.L, self.sample_options = model, ys, truths, L, sample_options
        self._sampler = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_sampler": None}  # compiled functions stay in their process

    def _posterior(self, index: int, seed: int):
        from ..engines.bayes import data_sampler
        from ..engines.bayes.priors import resolve_priors

        new = with_outcome(self.model, self.ys[index])
        options = dict(self.sample_options)
        priors = options.pop("priors")
        if not data_sampler.supports(new.design):
            return new.sample(random_seed=seed, progressbar=False, priors=priors, **options).idata
        if self._sampler is None:
            design, param = self.model.design, self.model.param
            self._sampler = data_sampler.DataSampler(design, param, resolve_priors(design, param, priors))
        options.pop("cores", None)
        return self._sampler.sample(new.design, random_seed=seed, **options)

    def __call__(self, index: int, seed: int) -> tuple[dict, int]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = self._posterior(index, seed)
        draws = labelled_draws(idata.posterior, RANKED)
        ranks = {}
        for label in self.truths.columns:
            values = draws[label]
            kept = values[np.linspace(0, len(values) - 1, self.L).round().astype(int)]
            ranks[label] = int(np.sum(kept < self.truths.at[index, label]))
        return ranks, int(idata.sample_stats["diverging"].sum())


def sbc(model, n: int = 200, *, priors=None, draws: int = 200, tune: int = 200, chains: int = 1,
        L: int = 99, bins: int = 10, random_seed=None, n_jobs: int = 1, backend: str = "joblib", client=None,
        progressbar: bool = True) -> SBCResult:
    """Simulation-based calibration of ``model`` under ``priors``.

    Parameters
    ----------
    model : MetaModel
    n : int
        Replications (prior draws, each with its simulated data set and posterior).
    priors : dict, optional
        As for :meth:`~bayesmeta.MetaModel.sample` (proper priors only).
    draws, tune, chains : int
        NUTS settings per replication (``draws * chains >= L``).
    L : int
        Posterior draws kept per replication, evenly spaced (thinning reduces autocorrelation).
    bins : int
        Bins of the uniformity test; must divide ``L + 1``.
    random_seed : int, optional
    n_jobs, backend, client
        Parallel execution (see :func:`~bayesmeta.studies.parallel.run_replications`).
    progressbar : bool

    Returns
    -------
    SBCResult

    Notes
    -----
    With nutpie installed, every replication is sampled by nutpie on one model
    compiled once per process, the outcome being data
    (:class:`~bayesmeta.engines.bayes.data_sampler.DataSampler`), under the
    priors resolved once on the model's own data; without nutpie every replication
    is built and sampled (by ``model.sample``) anew.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> model = bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    >>> result = bm.sbc(model, n=4, draws=50, tune=50, L=49, bins=5, random_seed=1, progressbar=False)
    >>> result.ranks.shape  # a demo; a real check takes n=200 or more (the default)
    (4, 3)
    >>> list(result.test().columns)
    ['statistic', 'df', 'pval']
    """
    for name, value in (("L", L), ("bins", bins), ("draws", draws), ("chains", chains)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SpecificationError(f"{name}: expected a positive integer, got {value!r}.")
    if (L + 1) % bins:
        raise SpecificationError(f"bins: must divide L + 1 = {L + 1} (equal bins of ranks), got {bins}.")
    if draws * chains < L:
        raise SpecificationError(f"L: {L} kept draws need draws * chains >= L, got {draws} x {chains}.")
    seed_prior, seed_runs = np.random.SeedSequence(random_seed).spawn(2)
    prior = model.sample_prior_predictive(draws=n, random_seed=int(seed_prior.generate_state(1)[0]), priors=priors)
    truths = pd.DataFrame(labelled_draws(prior.prior, RANKED))
    truths = truths.loc[:, truths.std() > 0]  # fixed components are not ranked
    ys = prior.prior_predictive["y"].stack(sample=("chain", "draw")).transpose("sample", "obs").values
    replication = _Replication(model, ys, truths, L, {"draws": draws, "tune": tune, "chains": chains, "cores": 1,
                                                       "priors": priors})
    results = run_replications(replication, n, random_seed=int(seed_runs.generate_state(1)[0]), n_jobs=n_jobs,
                               backend=backend, client=client, progressbar=progressbar, description="SBC")
    ranks = pd.DataFrame([r for r, _ in results], columns=truths.columns)
    return SBCResult(ranks, truths, L, bins, np.array([d for _, d in results]))
