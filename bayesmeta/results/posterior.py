"""Results of the Bayesian engine: posterior draws with diagnostics.

:class:`BayesResult` wraps an :class:`arviz.InferenceData` whose posterior
holds ``beta`` (dim ``term``), the SDs ``sigma``/``tau``/``gamma`` beside the
variances ``sigma2``/``tau2``/``gamma2`` and the correlations ``rho``/``phi``
(labelled as in :class:`~bayesmeta.results.mode.ModeResult`), ``alpha`` (dim
``scale_term``) for location-scale models (and the SD models of structured terms),
``zeta`` (dim ``cor_term``) for the correlation models of structured terms,
``delta`` (dim ``v_scale_term``) for a proportional sampling-variance model
(``V_scale=``), and the random effects ``u_*``. It reports them with the same
contract as ModeResult: ``coef``, ``se``, ``ci``, ``sigma2``, ``tau2``, ``rho``,
``alpha``, ``zeta``, ``delta`` (posterior means, SDs
and equal-tailed intervals) and ``table()``. Problems of the sampler (divergences, R-hat above
1.01, effective sample sizes below 400, low E-BFMI) are computed once, raised as
:class:`~bayesmeta.errors.ConvergenceWarning` and shown in :meth:`BayesResult.summary`.

ArviZ is imported when a result is first inspected, not with the package.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..design.parameters import SD_NAMES
from ..design.scale_models import select_level
from ..engines.bayes.draws import parameter_draws
from ..errors import ConvergenceWarning, warn
from ..inference.power_scaling import power_scaling as power_scaling_table
from .check import CheckReport, check_bayes
from .components import with_component_properties
from .report import bayes_html, bayes_repr, format_bayes_summary

if TYPE_CHECKING:
    import arviz as az

    from ..engines.bayes.priors import PriorSet

#: Thresholds for diagnostics warnings.
MAX_RHAT = 1.01
MIN_ESS = 400
MIN_BFMI = 0.3
#: Posterior variables reported in the table (those present).
REPORTED = ("beta", "alpha", "zeta", "delta", "sigma2", "tau2", "rho", "gamma2", "phi")
#: Posterior variables whose convergence is diagnosed (those present).
DIAGNOSED = ("beta", "alpha", "zeta", "delta", *SD_NAMES.values(), "rho", "phi")
#: How each sampler is named in tables: both samplers run NUTS (``sampler`` says which one).
METHODS = {"pymc": "NUTS", "nutpie": "NUTS", "laplace": "Laplace"}


@with_component_properties
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
        ``"pymc"``, ``"nutpie"`` or ``"laplace"``.
    level : float
        Probability of the reported intervals.
    design, param : Design and Parameterization, optional
        The model's arrays, needed by :meth:`predict`.
    """

    idata: "az.InferenceData" = field(repr=False)
    priors: "PriorSet" = field(repr=False)
    sampler: str = "nutpie"
    level: float = 0.95
    design: object = field(default=None, repr=False)
    param: object = field(default=None, repr=False)

    def __post_init__(self):
        for message in self.problems:
            warn(message, ConvergenceWarning)

    @property
    def method(self) -> str:
        """``"NUTS"`` (either sampler) or ``"Laplace"``."""
        return METHODS.get(self.sampler, self.sampler)

    @property
    def var_names(self) -> list[str]:
        """The posterior variables whose convergence is diagnosed."""
        post = self.idata.posterior
        return [v for v in DIAGNOSED if v in post]

    @cached_property
    def _convergence(self) -> dict:
        """R-hat, bulk and tail ESS (ArviZ datasets) of every diagnosed or reported variable,
        computed once for :attr:`diagnostics` and :meth:`table`."""
        import arviz as az

        post = self.idata.posterior
        names = list(dict.fromkeys([*self.var_names, *(v for v in REPORTED if v in post)]))
        with warnings.catch_warnings():  # fixed components are constant: no R-hat or ESS (NaN)
            warnings.simplefilter("ignore", RuntimeWarning)
            return {"r_hat": az.rhat(self.idata, var_names=names),
                    "ess_bulk": az.ess(self.idata, var_names=names, method="bulk"),
                    "ess_tail": az.ess(self.idata, var_names=names, method="tail")}

    @cached_property
    def diagnostics(self) -> dict:
        """Divergences, max R-hat, min bulk and tail ESS, min E-BFMI over the free parameters."""
        import arviz as az

        names = self.var_names
        rhat, ess_bulk, ess_tail = (self._convergence[k][names] for k in ("r_hat", "ess_bulk", "ess_tail"))

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
        """Posterior mean (``estimate``), SD (``se``), equal-tailed interval (``ci_lb``, ``ci_ub``),
        ESS and R-hat of every reported parameter, indexed as :meth:`ModeResult.table`
        (ESS and R-hat are NaN for the independent draws of a Laplace approximation)."""
        names = [v for v in REPORTED if v in self.idata.posterior]
        parts = []
        for v in names:
            part = self._summaries(v)
            labels = list(part.index) if self.idata.posterior[v].ndim > 2 else None
            for column in ("ess_bulk", "ess_tail", "r_hat"):
                part[column] = (np.nan if self.sampler == "laplace"
                                else np.ravel(self._convergence[column][v].values))
            parts.append(part.set_axis([f"{v}[{i}]" for i in labels] if labels is not None else [v]))
        return pd.concat(parts)

    # the shared contract: posterior means, SDs and intervals -------------------

    def _summaries(self, name: str) -> pd.DataFrame:
        """Mean, SD and equal-tailed interval of each element of a posterior variable,
        indexed by its coordinate (empty when the model has no such variable)."""
        post = self.idata.posterior
        if name not in post:
            return pd.DataFrame(columns=["estimate", "se", "ci_lb", "ci_ub"], dtype=float)
        draws = self._draws(name)
        draws = draws.reshape(len(draws), -1)
        lo, hi = (1 - self.level) / 2, (1 + self.level) / 2
        index = pd.Index(post[name][post[name].dims[-1]].values) if post[name].ndim > 2 else pd.Index([name])
        return pd.DataFrame({"estimate": draws.mean(axis=0), "se": draws.std(axis=0, ddof=1),
                             "ci_lb": np.quantile(draws, lo, axis=0), "ci_ub": np.quantile(draws, hi, axis=0)},
                            index=index)

    @cached_property
    def coef(self) -> pd.Series:
        """Posterior means of the fixed effects."""
        return self._summaries("beta")["estimate"]

    @cached_property
    def se(self) -> pd.Series:
        """Posterior SDs of the fixed effects."""
        return self._summaries("beta")["se"]

    @cached_property
    def ci(self) -> pd.DataFrame:
        """Equal-tailed posterior intervals of the fixed effects (``ci_lb``, ``ci_ub``)."""
        return self._summaries("beta")[["ci_lb", "ci_ub"]]

    @property
    def alpha(self) -> pd.Series:
        """Posterior means of the scale coefficients."""
        return self._summaries("alpha")["estimate"].rename("alpha")

    @property
    def zeta(self) -> pd.Series:
        """Posterior means of the coefficients of the correlation models of structured terms
        (``atanh(rho_j) = u_j' zeta``); empty without one."""
        return self._summaries("zeta")["estimate"].rename("zeta")

    @property
    def delta(self) -> pd.Series:
        """Posterior means of the coefficients of the sampling-variance model (``V_scale=``: V is
        multiplied by ``exp(w_i' delta)``); empty without one."""
        return self._summaries("delta")["estimate"].rename("delta")

    def component_values(self, family: str) -> pd.Series:
        """Posterior means of one family of components (``"sigma2"``, ``"tau2"``, ``"rho"``, ...)."""
        return self._summaries(family)["estimate"].rename(family)

    def predict(self, newdata: pd.DataFrame | None = None, level: float | None = None,
                random_seed=0) -> pd.DataFrame:
        """Posterior of the mean effect and prediction interval for a new study.

        For every posterior draw, the mean is ``x0' beta`` and the true effect of a
        new study is the mean plus new random effects at every level
        (``z0' u_new`` with ``u_new ~ N(0, G_k)`` for every term), as metafor's
        ``predict`` (the interval excludes the new study's sampling error).

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            Moderator values (and the inner column of ``inner | outer`` terms).
            Default: the rows of the data, or one row for a model without moderators.
        level : float, optional
            Probability of the intervals (default: the result's ``level``).
        random_seed : int or None
            Seed of the new random effects drawn for the prediction interval. The
            default (0) makes repeated calls give the same interval; ``None`` draws
            fresh ones (the interval then varies by Monte Carlo error).

        Returns
        -------
        pandas.DataFrame
            ``pred`` (posterior mean), ``se`` (posterior SD), ``ci_lb``/``ci_ub`` and
            ``pi_lb``/``pi_ub`` (equal-tailed intervals of the mean and of a new study's effect).

        Examples
        --------
        >>> import bayesmeta as bm
        >>> school = bm.multilevel("effect ~ 1", bm.datasets.load("school"), levels="district/study", vi="var")
        >>> post = school.fit("laplace", random_seed=1)  # or school.sample(...)
        >>> post.predict().round(3)
                    pred     se  ci_lb  ci_ub  pi_lb  pi_ub
        new study  0.183  0.076  0.036  0.337 -0.411  0.764
        """
        if self.design is None or self.param is None:
            raise ValueError("predict needs the model's design: use a result of MetaModel.sample or fit.")
        level = self.level if level is None else level
        design = self.design
        # the log-variance moderators of every term with a scale model (of groups, or of the cells of a
        # structured term: a row's variance is its cell's, whatever the correlation)
        scales = self.param.coefficient_designs("alpha")
        if newdata is None:
            X0, labels = design.X, design.row_labels
            Z0 = [np.ones((design.n, 1)) if enc.Z is None else enc.Z for enc in design.encodings]
            W0 = [None if sc is None else sc.W[self._group_of_row(k)] for k, sc in enumerate(scales)]
            if (X0.shape[1] == 1 and np.ptp(X0[:, 0]) == 0 and all(enc.Z is None for enc in design.encodings)
                    and not self.param.has_scale):
                X0, Z0, labels = X0[:1], [z[:1] for z in Z0], np.array(["new study"])
        else:
            X0, Z0 = design.new_rows(newdata)
            W0 = [None if sc is None else sc.new_W(newdata) for sc in scales]
            labels = newdata.index.to_numpy()
        beta, G = parameter_draws(self.param, self.idata.posterior)
        alpha = self._draws("alpha") if self.param.has_scale else None
        mean = beta @ X0.T  # (S, n0)
        variance = sum(np.einsum("ni,sij,nj->sn", z, g, z) if w is None
                       else np.exp(alpha[:, self.param.alpha_slice(k)] @ w.T)
                       for k, (z, g, w) in enumerate(zip(Z0, G, W0)))
        rng = np.random.default_rng(random_seed)
        new_study = mean + np.sqrt(np.clip(variance, 0.0, None)) * rng.standard_normal(mean.shape)
        lo, hi = (1 - level) / 2, (1 + level) / 2
        return pd.DataFrame({"pred": mean.mean(axis=0), "se": mean.std(axis=0, ddof=1),
                             "ci_lb": np.quantile(mean, lo, axis=0), "ci_ub": np.quantile(mean, hi, axis=0),
                             "pi_lb": np.quantile(new_study, lo, axis=0), "pi_ub": np.quantile(new_study, hi, axis=0)},
                            index=pd.Index(labels))

    def _group_of_row(self, k: int) -> np.ndarray:
        """The group of every row in term k's scale model: its group, or its (cluster, level) cell."""
        cs = self.param.coscale_of(k)
        return cs.cell_of_row if cs is not None else self.design.encodings[k].codes

    def _draws(self, name: str) -> np.ndarray:
        values = self.idata.posterior[name].values
        return values.reshape((-1,) + values.shape[2:])

    def predict_variance(self, newdata: pd.DataFrame | None = None, term: str | None = None,
                         level: float | None = None) -> pd.DataFrame:
        """Posterior of the variances of a scale model (e.g. tau_i^2) at moderator values.

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            Scale-moderator values; default: every group of the level (every (cluster,
            level) cell of a structured term, whose variances are the cells' tau^2).
        term : str, optional
            The level, when several have a scale model.
        level : float, optional
            Probability of the equal-tailed intervals (default: the result's).

        Returns
        -------
        pandas.DataFrame
            ``pred`` (posterior mean of the variance), ``ci_lb``, ``ci_ub`` (its
            equal-tailed interval), ``log_pred`` and ``log_se`` (posterior mean and SD
            of the log variance), as :meth:`ModeResult.predict_variance`, and
            ``median`` (the posterior median of the variance, the counterpart of the
            REML point estimate ``exp(w' alpha)`` for a skewed posterior).
        """
        return self._predictor_summary("alpha", newdata, term, level, np.exp, ("log_pred", "log_se"))

    def predict_correlation(self, newdata: pd.DataFrame | None = None, term: str | None = None,
                            level: float | None = None) -> pd.DataFrame:
        """Posterior of the correlations of a structured term's correlation model, ``tanh(u' zeta)``.

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            Values of the correlation model's moderators; default: every cluster.
        term : str, optional
            The structured term (as named in ``scale=``), when several have a correlation model.
        level : float, optional
            Probability of the equal-tailed intervals (default: the result's).

        Returns
        -------
        pandas.DataFrame
            ``pred`` (posterior mean of the correlation), ``ci_lb``, ``ci_ub`` (its
            equal-tailed interval), ``z_pred`` and ``z_se`` (posterior mean and SD of
            Fisher's z), as :meth:`ModeResult.predict_correlation`, and ``median`` (the
            posterior median of the correlation, ``tanh`` of the median of z).
        """
        return self._predictor_summary("zeta", newdata, term, level, np.tanh, ("z_pred", "z_se"))

    def _predictor_summary(self, part: str, newdata, term, level, transform, linear: tuple[str, str]) -> pd.DataFrame:
        """Posterior mean, equal-tailed interval and median of ``transform`` of a scale or correlation model's
        linear predictor, with the predictor's posterior mean and SD (columns named by ``linear``)."""
        index, eta = self._linear_predictor(part, newdata, term)
        level = self.level if level is None else level
        value = transform(eta)
        return pd.DataFrame({"pred": value.mean(axis=0), "ci_lb": np.quantile(value, (1 - level) / 2, axis=0),
                             "ci_ub": np.quantile(value, (1 + level) / 2, axis=0), linear[0]: eta.mean(axis=0),
                             linear[1]: eta.std(axis=0, ddof=1), "median": np.median(value, axis=0)}, index=index)

    def _linear_predictor(self, part: str, newdata: pd.DataFrame | None, term: str | None):
        """The index of the predictions of term ``term``'s ``"alpha"`` or ``"zeta"`` model (its groups, or
        newdata's) and the draws (S, n0) of its linear predictor ``W0 c``."""
        if self.param is None:
            raise ValueError("predictions of scale models need the model's parameterisation: use a result of "
                             "MetaModel.sample or fit.")
        designs = self.param.coefficient_designs(part)
        k = select_level(designs, term)
        sc = designs[k]
        W0 = sc.W if newdata is None else sc.new_W(newdata)
        draws = self._draws(part)[:, self.param.coefficient_slice(k, part)] @ W0.T  # (S, n0)
        return pd.Index(sc.groups) if newdata is None else newdata.index, draws

    def power_scaling(self, alphas=(0.8, 1.25), threshold: float = 0.05) -> pd.DataFrame:
        """Sensitivity of every parameter to power-scaling its prior and its likelihood, without refits.

        The cumulative Jensen-Shannon distance of Kallioinen et al. (2023) per unit
        log alpha, as ``az.psens`` (``prior`` and ``likelihood`` columns), a diagnosis
        (``prior-data conflict`` when both reach ``threshold``, ``strong prior / weak
        likelihood`` when only the prior does), and the posterior mean and SD with the
        prior or the likelihood raised to each alpha, by Pareto-smoothed importance
        sampling, with the Pareto k of the weights and a ``reliable`` flag (see
        :mod:`bayesmeta.inference.power_scaling`).

        Returns
        -------
        pandas.DataFrame
            Indexed as :meth:`table` (``beta[...]``, ``tau2[...]``, ...).

        Examples
        --------
        >>> import bayesmeta as bm
        >>> model = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar")
        >>> post = model.sample(draws=300, tune=300, chains=2, random_seed=1, progressbar=False)
        >>> sens = post.power_scaling()
        >>> sens.index.tolist(), sens.columns[:4].tolist()
        (['beta[Intercept]', 'tau2[row]'], ['prior', 'likelihood', 'diagnosis', 'mean'])
        """
        if self.sampler == "laplace" or "log_prior" not in self.idata.groups() \
                or "log_likelihood" not in self.idata.groups():
            raise ValueError("power_scaling() needs MCMC draws with log_prior and log_likelihood groups "
                             "(MetaModel.sample stores them).")
        names = [v for v in REPORTED if v in self.idata.posterior]
        return power_scaling_table(self.idata, names, alphas, threshold)

    def check(self) -> CheckReport:
        """Diagnostics to read before interpreting the posterior (issue 16; drmTMB's ``check_drm``).

        Divergences, R-hat, bulk and tail ESS, E-BFMI (MCMC only), then the checks
        of the data and the model shared with ML/REML fits
        (:mod:`bayesmeta.results.check`): each line ``ok``, ``note`` or
        ``problem``, printed, or as a DataFrame with ``.table``.
        """
        return check_bayes(self, {"r_hat": MAX_RHAT, "ess": MIN_ESS, "bfmi": MIN_BFMI})

    def summary(self, digits: int = 4) -> str:
        """A printable report: diagnostics (of MCMC draws), posterior table and priors.

        Independent draws of the Laplace approximation need no convergence
        diagnostics: its report leaves them out.

        Parameters
        ----------
        digits : int
            Decimals of the printed numbers; a nonzero value that would show fewer
            than two significant digits is printed in scientific notation with
            ``digits - 1`` of them (5.58e-05, not 0.0001).
        """
        return format_bayes_summary(self, digits)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return bayes_repr(self)

    def _repr_html_(self) -> str:
        """Diagnostics, the posterior table and the priors as HTML tables, for notebooks."""
        return bayes_html(self)

