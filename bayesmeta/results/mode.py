"""Results of ML/REML/FE fits (and posterior modes).

:class:`ModeResult` turns an engine's raw estimate into the quantities users
read: coefficients with Wald tests and intervals, variance components under
metafor's names, information criteria with metafor's conventions, and the
heterogeneity statistics Q and I2 of Sera et al. (2019, eq. 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from ..design.build import Design
from ..design.parameters import Parameterization
from ..design.scale_models import select_level
from ..engines.mode.optimize import ModeEstimate, fit_mode
from ..errors import SpecificationError
from ..inference.intervals import chi2_sf, critical_value, two_sided_p, wald_interval
from ..inference.permutation import PermutationTest, permutation_test
from ..inference.wald import WaldTest, hypothesis_matrix, wald_test
from ..likelihood.profiled import LOG_2PI
from ..spec.random_terms import ROW_TERM
from .components import with_component_properties
from .report import format_mode_summary

#: An SD at or below this fraction of the model's typical SD is reported as on the boundary.
BOUNDARY_SD = 1e-4


@with_component_properties
@dataclass(frozen=True)
class ModeResult:
    """Estimates of a meta-analytic model by ML, REML or FE.

    Attributes
    ----------
    method : str
        ``"ML"``, ``"REML"`` or ``"FE"``.
    coef, se, zval, pval : pandas.Series
        Fixed-effect estimates, standard errors, Wald statistics and p-values,
        indexed by fixed-effect column name. With ``test="t"`` the statistics are
        t-statistics on ``k - p`` degrees of freedom.
    ci : pandas.DataFrame
        Wald confidence intervals (columns ``ci_lb``, ``ci_ub``).
    vcov : pandas.DataFrame
        Covariance matrix of the fixed effects.
    sigma2, tau2, rho, gamma2, phi : pandas.Series
        Variance components as metafor names them: ``sigma2`` nested levels
        (outer to inner), ``tau2``/``rho`` the first ``inner | outer`` or slope
        term (or the standard model's heterogeneity), ``gamma2``/``phi`` the second.
    loglik, deviance, aic, bic, aicc : float
        Fit statistics with metafor's conventions (the REML constant included).
    q, q_df, q_pvalue, i2 : float
        Cochran's Q of the fixed-effects model, its degrees of freedom and p-value,
        and I2 = max((Q - df)/Q, 0).
    fitted, residuals : pandas.Series
        X b and y - X b, indexed by the rows used.
    rows_used, rows_dropped : numpy.ndarray
        Index labels of the data rows used and dropped.
    alpha, alpha_se, alpha_zval, alpha_pval : pandas.Series
        Location-scale models: the scale coefficients (log-variance scale) with
        SEs from the inverse Hessian of the (restricted) log-likelihood, Wald
        statistics and p-values (t on k - q degrees of freedom with ``test="t"``,
        q the number of scale coefficients, as metafor).
    alpha_ci, alpha_vcov : pandas.DataFrame
        Their Wald intervals and covariance matrix.
    drifting : list of str
        Scale coefficients drifting to +-infinity (their SEs are NaN).
    """

    design: Design = field(repr=False)
    param: Parameterization = field(repr=False)
    estimate: ModeEstimate = field(repr=False)
    test: str = "z"
    level: float = 0.95

    @property
    def method(self) -> str:
        """``"ML"``, ``"REML"``, ``"FE"`` or ``"MAP"``."""
        return self.estimate.method

    @property
    def k(self) -> int:
        """Number of rows (estimates) used."""
        return self.design.n

    @property
    def p(self) -> int:
        """Number of fixed effects."""
        return self.design.p

    @cached_property
    def coef(self) -> pd.Series:
        return pd.Series(self.estimate.evaluation.beta, index=self.design.coef_names, name="estimate")

    @cached_property
    def vcov(self) -> pd.DataFrame:
        names = self.design.coef_names
        return pd.DataFrame(self.estimate.evaluation.vcov, index=names, columns=names)

    @cached_property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov)), index=self.coef.index, name="se")

    @property
    def df(self) -> float:
        """Degrees of freedom of the Wald tests (inf for z-tests)."""
        return float(self.k - self.p) if self.test == "t" else np.inf

    @cached_property
    def zval(self) -> pd.Series:
        return (self.coef / self.se).rename("tval" if self.test == "t" else "zval")

    @cached_property
    def pval(self) -> pd.Series:
        return pd.Series(two_sided_p(self.zval, self.df), index=self.coef.index, name="pval")

    @cached_property
    def ci(self) -> pd.DataFrame:
        lower, upper = wald_interval(self.coef, self.se, self.level, self.df)
        return pd.DataFrame({"ci_lb": lower, "ci_ub": upper})

    def wald_test(self, terms=None, L=None, part: str = "location") -> WaldTest:
        """Wald test that some coefficients (or linear combinations ``L b``) are zero.

        Parameters
        ----------
        terms : list of str, optional
            Coefficient names to test jointly. Default: every coefficient except an
            intercept (metafor's omnibus test of moderators; the intercept itself in an
            intercept-only model).
        L : array_like, optional
            Matrix of linear combinations (one row per hypothesis), instead of ``terms``.
        part : {"location", "scale"}
            Test the fixed effects (default) or the scale coefficients of a
            location-scale model (metafor's QS test; F-test on (m, k - q) degrees of
            freedom with ``test="t"``).

        Returns
        -------
        WaldTest
            Chi-square test, or an F-test on (m, k - p) degrees of freedom with ``test="t"``.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> fit = bm.MetaModel("logor ~ ablat", data=bm.datasets.load("bcg"), vi="logorvar").fit()
        >>> print(fit.wald_test(["ablat"]))
        Test of ablat: QM(df = 1) = 25.2473, p-val < .0001
        """
        if part not in ("location", "scale"):
            raise SpecificationError(f"part: expected 'location' or 'scale', got {part!r}.")
        if part == "scale" and not self.param.has_scale:
            raise SpecificationError("part: 'scale' needs a location-scale model (MetaModel(..., scale=...)).")
        estimate = self.coef if part == "location" else self.alpha
        vcov = self.vcov if part == "location" else self.alpha_vcov
        df_resid = self.df if part == "location" else self.alpha_df
        names = list(estimate.index)
        own = names if part == "location" else [n for sc in self.param.scale_models if sc is not None
                                                for n in sc.names]
        default = [n for n, o in zip(names, own) if o != "Intercept"] or names
        L, terms = hypothesis_matrix(names, terms, L, default)
        return wald_test(estimate.to_numpy(), vcov.to_numpy(), L, terms, df_resid, part)

    def table(self) -> pd.DataFrame:
        """Estimate, SE and interval of every parameter (columns ``estimate, se, ci_lb, ci_ub``),
        indexed like the Bayesian results (``beta[name]``, ``alpha[name]``, ``sigma2[name]``, ...);
        variance components have no SE or interval here."""
        parts = [_labelled("beta", self.coef, self.se, self.ci), _labelled("alpha", self.alpha, self.alpha_se,
                                                                           self.alpha_ci)]
        c = self.components
        none = pd.Series(np.nan, index=c.index)
        parts.append(pd.DataFrame({"estimate": c["estimate"].to_numpy(float), "se": none, "ci_lb": none,
                                   "ci_ub": none}).set_axis([f"{f}[{n}]" for f, n in zip(c["family"], c["name"])]))
        return pd.concat([p for p in parts if len(p)])

    # scale coefficients (location-scale models) ---------------------------

    @cached_property
    def alpha(self) -> pd.Series:
        return pd.Series(self.param.alpha(self.estimate.theta), index=self.param.alpha_names(), name="alpha",
                         dtype=float)

    @cached_property
    def alpha_vcov(self) -> pd.DataFrame:
        """Covariance of the scale coefficients (NaN rows and columns for drifting ones)."""
        names = self.param.alpha_names()
        values = self.estimate.alpha_vcov.copy() if self.estimate.alpha_vcov is not None else np.zeros((0, 0))
        drifting = np.isin(names, self.drifting)
        values[drifting, :] = np.nan
        values[:, drifting] = np.nan
        return pd.DataFrame(values, index=names, columns=names)

    @cached_property
    def alpha_se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.alpha_vcov)), index=self.alpha.index, name="se", dtype=float)

    @property
    def alpha_df(self) -> float:
        """Degrees of freedom of the scale coefficients' tests (k - q for t-tests, inf for z)."""
        return float(self.k - self.param.n_alpha) if self.test == "t" else np.inf

    @cached_property
    def alpha_zval(self) -> pd.Series:
        return (self.alpha / self.alpha_se).rename("tval" if self.test == "t" else "zval")

    @cached_property
    def alpha_pval(self) -> pd.Series:
        return pd.Series(two_sided_p(self.alpha_zval, self.alpha_df), index=self.alpha.index, name="pval",
                         dtype=float)

    @cached_property
    def alpha_ci(self) -> pd.DataFrame:
        lower, upper = wald_interval(self.alpha, self.alpha_se, self.level, self.alpha_df)
        return pd.DataFrame({"ci_lb": lower, "ci_ub": upper})

    def predict_variance(self, newdata: pd.DataFrame | None = None, term: str | None = None,
                         level: float | None = None) -> pd.DataFrame:
        """Fitted variances of a scale model (e.g. tau_i^2) with Wald intervals.

        The linear predictor ``w' alpha`` (a log variance) gets its SE from the
        covariance of alpha; the interval is exponentiated, as metafor's
        ``predict(fit, newscale = ..., transf = exp)``. Where a scale coefficient
        drifts, the predictions that involve the drift get NaN SEs and intervals
        (their variance is estimated as zero); the others keep theirs.

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            Scale-moderator values; default: every group of the level (every row for
            the row-level heterogeneity).
        term : str, optional
            The level (as named in ``scale=``), when several have a scale model.
        level : float, optional
            Confidence level (default: the fit's).

        Returns
        -------
        pandas.DataFrame
            ``pred`` (the variance), ``ci_lb``, ``ci_ub``, and ``log_pred``/``log_se``
            (the log variance and its SE).

        Examples
        --------
        >>> import bayesmeta as bm
        >>> import pandas as pd
        >>> dat = bm.datasets.load("bangertdrowns2004")
        >>> fit = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length").fit()
        >>> fit.predict_variance(pd.DataFrame({"length": [1, 10, 20]})).round(4)
             pred   ci_lb   ci_ub  log_pred  log_se
        0  0.0286  0.0054  0.1512   -3.5539  0.8496
        1  0.0437  0.0174  0.1101   -3.1295  0.4710
        2  0.0701  0.0140  0.3502   -2.6580  0.8208
        """
        k = select_level(self.param.scale_models, term)
        sc = self.param.scale_models[k]
        part = self.param.alpha_slice(k)
        alpha = self.alpha.to_numpy()[part]
        vcov = self.estimate.alpha_vcov[part, part]
        W0 = sc.W if newdata is None else sc.new_W(newdata)
        index = pd.Index(sc.groups) if newdata is None else newdata.index
        log_pred = W0 @ alpha
        log_se = np.sqrt(np.einsum("ni,ij,nj->n", W0, vcov, W0))
        for d in self.estimate.drift:
            moved = np.abs(W0 @ np.asarray(d.direction)[part]) > 1e-8 * np.abs(W0).sum(axis=1)
            log_se[moved] = np.nan
        crit = critical_value(self.level if level is None else level, self.alpha_df)
        return pd.DataFrame({"pred": np.exp(log_pred), "ci_lb": np.exp(log_pred - crit * log_se),
                             "ci_ub": np.exp(log_pred + crit * log_se), "log_pred": log_pred, "log_se": log_se},
                            index=index)

    def permutation_test(self, n: int = 1000, random_seed=None, *, part: str = "both", term: str | None = None,
                         exact: bool | None = None, progressbar: bool = True) -> PermutationTest:
        """Permutation test of the location and scale coefficients, as metafor's ``permutest``.

        Permutes the scale moderators over the groups of their level (and the
        rows of the fixed-effects design, or the signs of the outcomes for an
        intercept-only location model), refits, and compares the z statistics; see
        :mod:`bayesmeta.inference.permutation`. Exact (every distinct permutation) when there
        are at most ``n`` of them.

        Parameters
        ----------
        n : int
            Number of permutations (the observed data included) of a random test.
        random_seed : int, optional
        part : {"both", "scale", "location"}
        term : str, optional
            The level whose scale model is tested, when several have one.
        exact : bool, optional
            Force an exact test.
        progressbar : bool
            Show a tqdm progress bar.

        Returns
        -------
        bayesmeta.inference.permutation.PermutationTest

        Examples
        --------
        >>> import bayesmeta as bm
        >>> dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
        >>> fit = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length").fit()
        >>> test = fit.permutation_test(n=1000, random_seed=7, part="scale", progressbar=False)  # doctest: +SKIP
        >>> test.pval_alpha  # doctest: +SKIP
        Intercept    0.233
        length       0.491
        Name: pval, dtype: float64
        """
        return permutation_test(self, n, random_seed, part=part, term=term, exact=exact, progressbar=progressbar)

    def refit(self, design: Design | None = None, param: Parameterization | None = None) -> "ModeResult":
        """The same method, test and level on another design or parameterisation (e.g. permuted data)."""
        design = self.design if design is None else design
        param = self.param if param is None else param
        return replace(self, design=design, param=param, estimate=fit_mode(design, param, self.method))

    @property
    def drifting(self) -> list[str]:
        """Scale coefficients that drift to +-infinity (a group variance estimated as zero)."""
        return [c for d in self.estimate.drift for c in d.coefficients]

    # variance components -------------------------------------------------

    @cached_property
    def components(self) -> pd.DataFrame:
        """All variance components: family, term, estimate, whether fixed, whether on the boundary."""
        rows = []
        for term, (sd, rho), fs, fr in zip(self.param.terms, self.estimate.natural,
                                            self.param.fixed_sd, self.param.fixed_rho):
            for i, s in enumerate(sd):
                rows.append({"family": term.family, "name": term.sd_label(i), "estimate": float(s) ** 2,
                             "sqrt": float(s), "n_levels": term.n_groups, "fixed": not np.isnan(fs[i]),
                             "boundary": bool(np.isnan(fs[i]) and s <= BOUNDARY_SD * self.param.sd_unit)})
            for i, r in enumerate(rho):
                rows.append({"family": term.correlation_family, "name": term.rho_label(i), "estimate": float(r),
                             "sqrt": np.nan,
                             "n_levels": term.n_groups, "fixed": not np.isnan(fr[i]),
                             "boundary": bool(np.isnan(fr[i]) and abs(r) > 1 - 1e-6)})
        return pd.DataFrame(rows, columns=["family", "name", "estimate", "sqrt", "n_levels", "fixed", "boundary"])

    def component_values(self, family: str) -> pd.Series:
        """The estimates of one family of components (``"sigma2"``, ``"tau2"``, ``"rho"``, ...)."""
        c = self.components
        sel = c[c["family"] == family]
        return pd.Series(sel["estimate"].to_numpy(), index=sel["name"].to_numpy(), name=family, dtype=float)

    @property
    def boundary(self) -> list[str]:
        """Names of the components estimated on their boundary (variance 0, correlation +-1)."""
        c = self.components
        return [f"{f}[{n}]" for f, n in zip(c.loc[c["boundary"], "family"], c.loc[c["boundary"], "name"])]

    # fit statistics --------------------------------------------------------

    @property
    def loglik(self) -> float:
        return self.estimate.evaluation.loglik

    @property
    def parms(self) -> int:
        """Number of estimated parameters: fixed effects plus free variance components."""
        return self.p + (0 if self.method == "FE" else self.param.n_free)

    @property
    def _n_ic(self) -> int:
        return self.k - self.p if self.method == "REML" else self.k

    @property
    def deviance(self) -> float:
        """-2 logLik for REML; -2 (logLik - saturated logLik) for ML and FE, as metafor."""
        if self.method == "REML":
            return -2 * self.loglik
        saturated = -0.5 * (self.k * LOG_2PI + self.design.V.logdet())
        return -2 * (self.loglik - saturated)

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.parms

    @property
    def bic(self) -> float:
        return -2 * self.loglik + self.parms * np.log(self._n_ic)

    @property
    def aicc(self) -> float:
        m = max(self._n_ic, self.parms + 2)
        return -2 * self.loglik + 2 * self.parms * m / (m - self.parms - 1)

    @property
    def q(self) -> float:
        """Cochran's Q: weighted residual sum of squares of the fixed-effects fit."""
        return self.estimate.q_fixed

    @property
    def q_df(self) -> int:
        return self.k - self.p

    @property
    def q_pvalue(self) -> float:
        return float(chi2_sf(self.q, self.q_df)) if self.q_df > 0 else np.nan

    @property
    def i2(self) -> float:
        """I2 = max((Q - (k - p)) / Q, 0) (Sera et al. 2019, eq. 4)."""
        return max((self.q - self.q_df) / self.q, 0.0) if self.q > 0 else 0.0

    # rows ------------------------------------------------------------------

    @cached_property
    def fitted(self) -> pd.Series:
        return pd.Series(self.design.X @ self.coef.to_numpy(), index=self.design.row_labels, name="fitted")

    @cached_property
    def residuals(self) -> pd.Series:
        return pd.Series(self.design.y, index=self.design.row_labels).sub(self.fitted).rename("residual")

    rows_used = property(lambda self: self.design.row_labels, doc="Index labels of the data rows used.")
    rows_dropped = property(lambda self: self.design.dropped,
                            doc="Index labels of the data rows dropped for missing values.")
    converged = property(lambda self: self.estimate.converged,
                         doc="Whether the optimiser converged (gradient below tolerance).")

    @property
    def is_standard(self) -> bool:
        """Whether this is the standard random-effects model (one row-level effect)."""
        return len(self.param.terms) == 1 and self.param.terms[0].label == ROW_TERM

    @property
    def is_location_scale(self) -> bool:
        return self.param.has_scale

    def summary(self) -> str:
        """A printable report in the style of metafor's ``print.rma.mv``."""
        return format_mode_summary(self)

    def __str__(self) -> str:
        return self.summary()


def _labelled(family: str, estimate: pd.Series, se: pd.Series, ci: pd.DataFrame) -> pd.DataFrame:
    """Rows ``family[name]`` of the result table."""
    return pd.DataFrame({"estimate": estimate.to_numpy(float), "se": se.to_numpy(float),
                         "ci_lb": ci["ci_lb"].to_numpy(float), "ci_ub": ci["ci_ub"].to_numpy(float)},
                        index=[f"{family}[{n}]" for n in estimate.index])
