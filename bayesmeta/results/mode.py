"""Results of ML/REML/FE fits (and posterior modes).

:class:`ModeResult` turns an engine's raw estimate into the quantities users
read: coefficients with Wald tests and intervals, variance components under
metafor's names, information criteria with metafor's conventions, Cochran's Q
and the heterogeneity statistics I^2 and H^2 (metafor's and the Q-based one of
Sera et al. 2019, eq. 4; see :mod:`bayesmeta.inference.heterogeneity`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from ..design.build import Design
from ..design.parameters import Parameterization
from ..design.scale_models import select_level
from ..engines.mode.moments import MOMENT_METHODS, fit_moments, se_tau2
from ..engines.mode.optimize import ModeEstimate, fit_mode
from ..errors import SpecificationError
from ..inference.blups import blup as row_blups
from ..inference.blups import ranef as cluster_blups
from ..inference.component_intervals import component_table
from ..inference.component_intervals import confint as component_confint
from ..inference.component_intervals import profile as component_profile
from ..inference.heterogeneity import Heterogeneity, heterogeneity
from ..inference.influence import cooks_distance, influence, leave1out
from ..inference.intervals import chi2_sf, critical_value, two_sided_p, wald_interval
from ..inference.permutation import PermutationTest, permutation_test
from ..inference.prediction import predict as predict_effects
from ..inference.robust import RobustResult
from ..inference.robust import robust as cluster_robust
from ..inference.small_study import RegTest, TrimFill, regtest, trimfill
from ..inference.wald import WaldTest, hypothesis_matrix, wald_test
from ..likelihood.profiled import LOG_2PI
from ..spec.random_terms import ROW_TERM
from .check import CheckReport, check_mode
from .components import with_component_properties
from .report import format_mode_summary, mode_html, mode_repr

#: An SD at or below this fraction of the model's typical SD is reported as on the boundary.
BOUNDARY_SD = 1e-4


def _statistic(estimate: pd.Series, se: pd.Series, test: str) -> pd.Series:
    """Wald statistics of coefficients, named ``zval`` (z-tests) or ``tval``."""
    return (estimate / se).rename("tval" if test != "z" else "zval")


def _p_values(statistic: pd.Series, df: float) -> pd.Series:
    """Two-sided p-values of Wald statistics (t with ``df`` degrees of freedom; z when inf)."""
    return pd.Series(two_sided_p(statistic, df), index=statistic.index, name="pval", dtype=float)


def _interval(estimate: pd.Series, se: pd.Series, level: float, df: float) -> pd.DataFrame:
    """Wald intervals ``ci_lb``, ``ci_ub`` of coefficients at ``level``."""
    lower, upper = wald_interval(estimate, se, level, df)
    return pd.DataFrame({"ci_lb": lower, "ci_ub": upper})


@with_component_properties
@dataclass(frozen=True)
class ModeResult:
    """Estimates of a meta-analytic model by ML, REML, FE or a moment estimator of tau^2.

    Attributes
    ----------
    method : str
        ``"ML"``, ``"REML"``, ``"FE"``, ``"MAP"`` or, for the standard model, the
        estimator of tau^2 (``"DL"``, ``"HE"``, ``"HS"``, ``"SJ"``, ``"EB"``, ``"PM"``).
    test : str
        ``"z"``, ``"t"`` or ``"knha"`` (Knapp-Hartung: the covariance of the fixed
        effects is multiplied by :attr:`s2w`, tests and intervals use t on k - p
        degrees of freedom, as metafor's ``rma(test="knha")``).
    coef, se, zval, pval : pandas.Series
        Fixed-effect estimates, standard errors, Wald statistics and p-values,
        indexed by fixed-effect column name. With ``test="t"`` or ``"knha"`` the
        statistics are t-statistics on ``k - p`` degrees of freedom.
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
    q, q_df, q_pvalue : float
        Cochran's Q of the fixed-effects model, its degrees of freedom and p-value.
    i2, h2, i2_levels, i2_q, vt : float or pandas.Series
        metafor's I^2 (percent) and H^2, the share of every random level, the
        Q-based I^2 of Sera et al. (2019, eq. 4, percent) and the typical
        within-study variance (:mod:`bayesmeta.inference.heterogeneity`).
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
    delta, delta_se, delta_zval, delta_pval : pandas.Series
        Models with a proportional sampling-variance component (``V_scale=``): its
        coefficients (V multiplied by ``exp(w_i' delta)``), indexed by the columns of
        the ``V_scale`` formula, with SEs from the inverse Hessian of the
        (restricted) log-likelihood.
    delta_ci, delta_vcov : pandas.DataFrame
        Their Wald intervals (z, or t on k - p - r degrees of freedom with ``test="t"``)
        and covariance matrix.
    zeta, zeta_se, zeta_zval, zeta_pval : pandas.Series
        Scale models of structured terms: the coefficients of the correlation,
        ``atanh(rho_j) = u_j' zeta`` (Fisher's z), with SEs from the inverse Hessian
        of the (restricted) log-likelihood; their SDs' coefficients are in ``alpha``.
    zeta_ci, zeta_vcov : pandas.DataFrame
        Their Wald intervals (z, or t on k - q degrees of freedom with ``test="t"``,
        q the number of alpha and zeta coefficients) and covariance matrix.
    """

    design: Design = field(repr=False)
    param: Parameterization = field(repr=False)
    estimate: ModeEstimate = field(repr=False)
    test: str = "z"
    level: float = 0.95

    converged = property(lambda self: self.estimate.converged,
                         doc="Whether the optimiser converged (gradient below tolerance).")

    @property
    def method(self) -> str:
        """``"ML"``, ``"REML"``, ``"FE"``, ``"MAP"`` or a moment estimator of tau^2 (``"DL"``, ...)."""
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
        scale = self.s2w if self.test == "knha" else 1.0
        return pd.DataFrame(scale * self.estimate.evaluation.vcov, index=names, columns=names)

    @cached_property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov)), index=self.coef.index, name="se")

    @property
    def df(self) -> float:
        """Degrees of freedom of the Wald tests (inf for z-tests)."""
        return float(self.k - self.p) if self.test != "z" else np.inf

    @cached_property
    def zval(self) -> pd.Series:
        return _statistic(self.coef, self.se, self.test)

    @cached_property
    def pval(self) -> pd.Series:
        return _p_values(self.zval, self.df)

    @cached_property
    def ci(self) -> pd.DataFrame:
        return _interval(self.coef, self.se, self.level, self.df)

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
        part : {"location", "scale", "correlation"}
            Test the fixed effects (default), the scale coefficients of a
            location-scale model (metafor's QS test; F-test on (m, k - q) degrees of
            freedom with ``test="t"``) or the correlation coefficients ``zeta`` of a
            structured term's scale model.

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
        if part not in ("location", "scale", "correlation"):
            raise SpecificationError(f"part: expected 'location', 'scale' or 'correlation', got {part!r}.")
        if part == "scale" and not self.param.has_scale:
            raise SpecificationError("part: 'scale' needs a location-scale model (MetaModel(..., scale=...)).")
        if part == "correlation" and not self.param.n_zeta:
            raise SpecificationError("part: 'correlation' needs a scale model of a structured term's correlation "
                                     "(MetaModel(..., scale={'outcome | study': {'rho': '~ z'}})).")
        estimate, vcov, df_resid = {"location": (self.coef, self.vcov, self.df),
                                    "scale": (self.alpha, self.alpha_vcov, self.alpha_df),
                                    "correlation": (self.zeta, self.zeta_vcov, self.alpha_df)}[part]
        names = list(estimate.index)
        blocks = self.param.coefficient_blocks("zeta" if part == "correlation" else "alpha")
        own = names if part == "location" else [n for _, d, _ in blocks for n in d.names]
        default = [n for n, o in zip(names, own) if o != "Intercept"] or names
        L, terms = hypothesis_matrix(names, terms, L, default)
        return wald_test(estimate.to_numpy(), vcov.to_numpy(), L, terms, df_resid, part)

    def table(self) -> pd.DataFrame:
        """Estimate, SE and interval of every parameter (columns ``estimate, se, ci_lb, ci_ub``),
        indexed like the Bayesian results (``beta[name]``, ``alpha[name]``, ``sigma2[name]``, ...).

        Fixed effects and scale coefficients: Wald SEs and intervals (as metafor's
        summary). Variance components and correlations of ML/REML fits, at the fit's
        level (:mod:`bayesmeta.inference.component_intervals`): the interval is the
        Q-profile interval for the standard model's tau^2 and the profile-likelihood
        interval (:meth:`confint`) otherwise; the SE is metafor's ``se.tau2`` for the
        standard model (inverse Fisher information) and otherwise the inverse Hessian
        of the (restricted) log-likelihood carried to the variance or correlation
        scale by the delta method (metafor's ``rma.mv(..., cvvc = TRUE)``; NaN on the
        boundary). Fixed components, and FE and MAP fits, have none. The intervals are
        computed once and kept on the result.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
        ...                    random="~ 1 | district/study").fit()
        >>> fit.table().round(4)
                                estimate      se   ci_lb   ci_ub
        beta[Intercept]           0.1847  0.0846  0.0190  0.3504
        sigma2[district]          0.0651  0.0355  0.0222  0.2072
        sigma2[district/study]    0.0327  0.0111  0.0163  0.0628
        """
        parts = [_labelled("beta", self.coef, self.se, self.ci), _labelled("alpha", self.alpha, self.alpha_se,
                                                                           self.alpha_ci),
                 _labelled("zeta", self.zeta, self.zeta_se, self.zeta_ci),
                 _labelled("delta", self.delta, self.delta_se, self.delta_ci)]
        parts.append(component_table(self, self._interval_cache))
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
        """Degrees of freedom of the scale (and correlation) coefficients' tests (k - q for t-tests, q the
        number of them; inf for z)."""
        return float(self.k - self.param.n_alpha - self.param.n_zeta) if self.test != "z" else np.inf

    @cached_property
    def alpha_zval(self) -> pd.Series:
        return _statistic(self.alpha, self.alpha_se, self.test)

    @cached_property
    def alpha_pval(self) -> pd.Series:
        return _p_values(self.alpha_zval, self.alpha_df)

    @cached_property
    def alpha_ci(self) -> pd.DataFrame:
        return _interval(self.alpha, self.alpha_se, self.level, self.alpha_df)

    # correlation coefficients (scale models of structured terms) ------------

    @cached_property
    def zeta(self) -> pd.Series:
        """Coefficients of the correlation models: ``atanh(rho_j) = u_j' zeta`` (empty without one)."""
        return pd.Series(self.param.zeta(self.estimate.theta), index=self.param.coefficient_names("zeta"),
                         name="zeta", dtype=float)

    @cached_property
    def zeta_vcov(self) -> pd.DataFrame:
        """Covariance of zeta (inverse Hessian of the (restricted) log-likelihood)."""
        names = self.param.coefficient_names("zeta")
        values = self.estimate.zeta_vcov.copy() if self.estimate.zeta_vcov is not None else np.zeros((0, 0))
        drifting = np.isin(names, self.drifting_zeta)
        values[drifting, :] = np.nan
        values[:, drifting] = np.nan
        return pd.DataFrame(values, index=names, columns=names)

    @cached_property
    def zeta_se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.zeta_vcov)), index=self.zeta.index, name="se", dtype=float)

    @cached_property
    def zeta_zval(self) -> pd.Series:
        return _statistic(self.zeta, self.zeta_se, self.test)

    @cached_property
    def zeta_pval(self) -> pd.Series:
        return _p_values(self.zeta_zval, self.alpha_df)

    @cached_property
    def zeta_ci(self) -> pd.DataFrame:
        return _interval(self.zeta, self.zeta_se, self.level, self.alpha_df)

    # the proportional sampling-variance model (V_scale=) ------------------

    @cached_property
    def delta(self) -> pd.Series:
        """Coefficients of ``V_scale=``: V is multiplied by ``exp(w_i' delta)`` (empty without one)."""
        return pd.Series(self.param.delta(self.estimate.theta), index=self.param.delta_names(), name="delta",
                         dtype=float)

    @cached_property
    def delta_vcov(self) -> pd.DataFrame:
        """Covariance of the coefficients of ``V_scale=`` (inverse Hessian of the (restricted) log-likelihood)."""
        names = self.param.delta_names()
        values = self.estimate.delta_vcov if self.estimate.delta_vcov is not None else np.zeros((0, 0))
        return pd.DataFrame(values, index=names, columns=names)

    @cached_property
    def delta_se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.delta_vcov)), index=self.delta.index, name="se", dtype=float)

    @property
    def delta_df(self) -> float:
        """Degrees of freedom of the tests of delta (k - p - r for t-tests, inf for z)."""
        return float(self.k - self.p - self.param.n_delta) if self.test != "z" else np.inf

    @cached_property
    def delta_zval(self) -> pd.Series:
        return _statistic(self.delta, self.delta_se, self.test)

    @cached_property
    def delta_pval(self) -> pd.Series:
        return _p_values(self.delta_zval, self.delta_df)

    @cached_property
    def delta_ci(self) -> pd.DataFrame:
        return _interval(self.delta, self.delta_se, self.level, self.delta_df)

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
            the row-level heterogeneity; every (cluster, level) cell of a structured
            term, whose SDs are the square roots).
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
        designs = self.param.coefficient_designs("alpha")
        k = select_level(designs, term)
        part = self.param.alpha_slice(k)
        W0, index, log_pred, log_se = _linear_prediction(designs[k], self.alpha.to_numpy()[part],
                                                         self.estimate.alpha_vcov[part, part], newdata)
        for d in (d for d in self.estimate.drift if d.part == "alpha"):
            moved = np.abs(W0 @ np.asarray(d.direction)[part]) > 1e-8 * np.abs(W0).sum(axis=1)
            log_se[moved] = np.nan
        crit = critical_value(self.level if level is None else level, self.alpha_df)
        return pd.DataFrame({"pred": np.exp(log_pred), "ci_lb": np.exp(log_pred - crit * log_se),
                             "ci_ub": np.exp(log_pred + crit * log_se), "log_pred": log_pred, "log_se": log_se},
                            index=index)

    def predict_correlation(self, newdata: pd.DataFrame | None = None, term: str | None = None,
                            level: float | None = None) -> pd.DataFrame:
        """Fitted correlations of a structured term's correlation model, with Wald intervals.

        The linear predictor ``u' zeta`` (Fisher's z of the correlation) gets its SE
        from the covariance of zeta; the prediction and the interval are carried to
        the correlation scale by tanh.

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            Values of the correlation model's moderators; default: every cluster.
        term : str, optional
            The structured term (as named in ``scale=``), when several have a correlation model.
        level : float, optional
            Confidence level (default: the fit's).

        Returns
        -------
        pandas.DataFrame
            ``pred`` (the correlation), ``ci_lb``, ``ci_ub``, and ``z_pred``/``z_se``
            (Fisher's z and its SE).

        Examples
        --------
        >>> import bayesmeta as bm
        >>> dat = bm.datasets.load("berkey1998")
        >>> V = [g[["v1i", "v2i"]].to_numpy() for _, g in dat.groupby("trial", sort=False)]
        >>> fit = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=V, random="~ outcome | trial", struct="UN",
        ...                    scale={"outcome | trial": {"rho": "~ 1"}}).fit()
        >>> fit.predict_correlation().iloc[:1].round(4)
             pred   ci_lb   ci_ub  z_pred    z_se
        1  0.6088 -0.6363  0.9741   0.707  0.7444
        """
        designs = self.param.coefficient_designs("zeta")
        k = select_level(designs, term)
        part = self.param.coefficient_slice(k, "zeta")
        _, index, z_pred, z_se = _linear_prediction(designs[k], self.zeta.to_numpy()[part],
                                                    self.estimate.zeta_vcov[part, part], newdata)
        crit = critical_value(self.level if level is None else level, self.alpha_df)
        return pd.DataFrame({"pred": np.tanh(z_pred), "ci_lb": np.tanh(z_pred - crit * z_se),
                             "ci_ub": np.tanh(z_pred + crit * z_se), "z_pred": z_pred, "z_se": z_se}, index=index)

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
        >>> test = fit.permutation_test(n=200, random_seed=7, part="scale", progressbar=False)
        >>> test.pval_alpha
        Intercept    0.23
        length       0.50
        Name: pval, dtype: float64
        """
        return permutation_test(self, n, random_seed, part=part, term=term, exact=exact, progressbar=progressbar)

    def refit(self, design: Design | None = None, param: Parameterization | None = None) -> ModeResult:
        """The same method, test and level on another design or parameterisation (e.g. permuted data)."""
        design = self.design if design is None else design
        param = self.param if param is None else param
        fit = fit_moments if self.method in MOMENT_METHODS else fit_mode
        return replace(self, design=design, param=param, estimate=fit(design, param, self.method))

    @property
    def drifting(self) -> list[str]:
        """Scale coefficients that drift to +-infinity (a group variance estimated as zero); correlation
        coefficients in :attr:`drifting_zeta`."""
        return [c for d in self.estimate.drift if d.part == "alpha" for c in d.coefficients]

    @property
    def drifting_zeta(self) -> list[str]:
        """Correlation coefficients that drift to +-infinity (a cluster's correlation estimated as +-1)."""
        return [c for d in self.estimate.drift if d.part == "zeta" for c in d.coefficients]

    # influence diagnostics and small-study tests (issue 12 item 10: influence, cooks_distance,
    # leave1out, regtest, trimfill) -------------------------------------------------------

    def influence(self, progressbar: bool = True) -> pd.DataFrame:
        """Influence diagnostics of every row of the standard model, as metafor's ``influence``:
        ``rstudent, dffits, cook_d, cov_r, tau2_del, QE_del, hat, weight``, ``dfbs[name]`` per
        coefficient and ``influential``; see :func:`bayesmeta.inference.influence.influence`.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
        >>> fit.influence()[["rstudent", "cook_d", "weight", "dfbs[Intercept]"]].head(2).round(4)
           rstudent  cook_d  weight  dfbs[Intercept]
        0   -0.2181  0.0017  5.0595          -0.0403
        1   -1.2918  0.1132  6.3647          -0.3459
        """
        return influence(self, progressbar)

    def cooks_distance(self, cluster=None, progressbar: bool = True) -> pd.Series:
        """Cook's distance of every row, or of every cluster (``cluster="district"``, a Series or
        one value per row), refitting without it, as metafor's ``cooks.distance``; see
        :func:`bayesmeta.inference.influence.cooks_distance`.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
        ...                    random="~ 1 | district/study").fit()
        >>> int(fit.cooks_distance(cluster="district").idxmax())
        71
        """
        return cooks_distance(self, cluster, progressbar)

    def leave1out(self, progressbar: bool = True) -> pd.DataFrame:
        """The standard model without moderators refitted without each row in turn, as metafor's
        ``leave1out`` (``estimate, se, zval, pval, ci_lb, ci_ub, Q, Qp, tau2, I2, H2``); see
        :func:`bayesmeta.inference.influence.leave1out`.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
        >>> fit.leave1out()["estimate"].agg(["min", "max"]).round(4)
        min   -0.7948
        max   -0.6284
        Name: estimate, dtype: float64
        """
        return leave1out(self, progressbar)

    def regtest(self, model: str = "rma", predictor: str = "sei", ni=None) -> RegTest:
        """Regression test for funnel-plot asymmetry (Egger's test), as metafor's ``regtest``;
        see :func:`bayesmeta.inference.small_study.regtest`.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
        >>> test = fit.regtest()
        >>> round(test.zval, 4), round(test.pval, 4), round(test.limit_estimate, 4)
        (-0.8033, 0.4218, -0.5104)
        """
        return regtest(self, model, predictor, ni)

    def trimfill(self, side: str | None = None, estimator: str = "L0") -> TrimFill:
        """Trim-and-fill: the number of missing studies ``k0``, their ``side``, the filled ``data``
        and the ``fit`` of the filled data, as metafor's ``trimfill``; see
        :func:`bayesmeta.inference.small_study.trimfill`.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
        >>> tf = fit.trimfill()
        >>> tf.k0, tf.side, round(tf.estimate, 4), round(tf.se, 4)
        (1, 'right', -0.6571, 0.1785)
        """
        return trimfill(self, side, estimator)

    # predictions and BLUPs (issue 12 items 3 and 4: predict, ranef, blup) -------------

    def predict(self, newdata: pd.DataFrame | None = None, level: float | None = None, transf=None, *,
                tau2_levels=None, gamma2_levels=None, existing=None) -> pd.DataFrame:
        """Predicted effects with confidence and prediction intervals, as metafor's ``predict``.

        By default for a new study in new clusters (the prediction interval adds
        the variance of every random level); ``existing=`` predicts a new study in
        clusters of the data (fixed part plus their BLUPs); ``tau2_levels`` /
        ``gamma2_levels`` choose the levels of ``inner | outer`` terms. See
        :func:`bayesmeta.inference.prediction.predict` for every argument.

        Returns
        -------
        pandas.DataFrame
            ``pred, se, ci_lb, ci_ub, pi_lb, pi_ub``, as ``BayesResult.predict``.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
        >>> fit.predict().round(4)
                     pred      se   ci_lb   ci_ub   pi_lb   pi_ub
        new study -0.7145  0.1798 -1.0669 -0.3622 -1.8667  0.4376
        """
        return predict_effects(self, newdata, level, transf, tau2_levels=tau2_levels, gamma2_levels=gamma2_levels,
                               existing=existing)

    def ranef(self, level: float | None = None, transf=None) -> dict[str, pd.DataFrame]:
        """BLUPs of the random effects by level (``pred, se, pi_lb, pi_ub``), as metafor's ``ranef``;
        see :func:`bayesmeta.inference.blups.ranef`.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
        >>> fit.ranef()["row"].head(2).round(4)  # doctest: +NORMALIZE_WHITESPACE
               pred      se   pi_lb   pi_ub
        row
        0   -0.0857  0.4092 -0.8877  0.7163
        1   -0.5372  0.3638 -1.2501  0.1758
        """
        return cluster_blups(self, level, transf)

    def blup(self, level: float | None = None, transf=None) -> pd.DataFrame:
        """Per row, the fitted value plus the row's BLUPs (``pred, se, pi_lb, pi_ub``), as metafor's
        ``blup``; see :func:`bayesmeta.inference.blups.blup`.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
        >>> fit.blup().head(2).round(4)
             pred      se   pi_lb   pi_ub
        0 -0.8002  0.4099 -1.6037  0.0032
        1 -1.2517  0.3532 -1.9440 -0.5594
        """
        return row_blups(self, level, transf)

    # cluster-robust inference (issue 12 item 6: robust) ----------------------

    def robust(self, cluster, adjust: str = "CR2", *, level: float | None = None) -> RobustResult:
        """Cluster-robust tests and intervals of the fixed effects, as metafor's ``robust``.

        ``adjust="CR2"`` (default) equals clubSandwich's ``vcovCR(type = "CR2")`` with
        Satterthwaite t-tests (``coef_test``) and HTZ Wald tests (``Wald_test``), i.e.
        metafor's ``robust(..., clubSandwich = TRUE)``; ``"CR1"`` and ``"CR0"`` equal
        metafor's ``robust()`` with ``adjust = TRUE`` / ``FALSE`` (t and F tests on
        J - p degrees of freedom). See :func:`bayesmeta.inference.robust.robust`.

        Parameters
        ----------
        cluster : str, pandas.Series or array_like
            A grouping factor of the random terms by name (``"district"``, the outer
            column of ``"~ outcome | trial"``, ...), or the cluster of every row: a
            Series aligned by index label with the data, or an array by position.
        adjust : {"CR2", "CR1", "CR0"}
        level : float, optional
            Confidence level (default: the fit's).

        Returns
        -------
        bayesmeta.inference.robust.RobustResult
            ``coef, se, df, tval, pval, ci, vcov, table()`` and ``wald_test(terms, L)``.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> dat = bm.datasets.load("bcg")
        >>> fit = bm.MetaModel("logrr ~ ablat", data=dat, vi="logrrvar").fit()
        >>> rob = fit.robust(dat["trial"])
        >>> rob.table()[["estimate", "se", "df", "pval"]].round(4)
                         estimate      se      df    pval
        beta[Intercept]    0.2515  0.1915  3.7052  0.2645
        beta[ablat]       -0.0291  0.0054  5.2128  0.0025
        >>> print(rob.wald_test())
        Test of ablat (HTZ): F(df1 = 1, df2 = 5.213) = 29.4227, p-val = 0.0025
        """
        return cluster_robust(self, cluster, adjust, level=level)

    # profile-likelihood and Q-profile intervals (issue 12 items 1 and 2: confint, profile) ------

    @cached_property
    def _interval_cache(self) -> dict:
        """Profiles, bounds and SEs of the variance components already computed (``table()``,
        ``confint()``, ``profile()`` and ``bm.compare`` share them)."""
        return {}

    def confint(self, level: float = 0.95, method: str | None = None, progressbar: bool = True) -> pd.DataFrame:
        """Confidence intervals of the variance components and scale coefficients, as metafor's ``confint``.

        ``method="profile"``: profile likelihood (metafor's ``confint.rma.mv`` and
        ``confint.rma.ls``): the bounds solve ``2 (logLik - profile logLik) =
        qchisq(level, 1)`` with every other variance parameter re-maximised, on
        metafor's search intervals; a bound at the end of an interval is that end
        (0 for a variance, +-1 for a correlation). ``method="qprofile"`` (the default
        for the standard model, as metafor's ``rma``): the Q-profile interval of tau^2,
        with rows ``tau2, tau, I2, H2`` (both methods give these rows for the standard
        model). See :func:`bayesmeta.inference.component_intervals.confint`.

        Returns
        -------
        pandas.DataFrame
            Columns ``estimate, ci_lb, ci_ub``, indexed by table label; ``attrs`` holds
            metafor's signs of bounds beyond the searched interval and ``ci_null``.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
        >>> fit.confint().round(4)
              estimate    ci_lb    ci_ub
        tau2    0.3132   0.1197   1.1115
        tau     0.5597   0.3460   1.0543
        I2     92.2214  81.9206  97.6781
        H2     12.8558   5.5311  43.0677
        """
        return component_confint(self, level, method, cache=self._interval_cache, progressbar=progressbar)

    def profile(self, component: str, points: int = 20, bounds=None, progressbar: bool = True) -> pd.DataFrame:
        """The profile (restricted) log-likelihood of one component on a grid, as metafor's ``profile``
        (``value``, ``loglik`` and the fixed effects ``beta[name]`` at each point); see
        :func:`bayesmeta.inference.component_intervals.profile`.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> school = bm.datasets.load("school")
        >>> fit = bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study").fit()
        >>> fit.profile("sigma2[district/study]", points=3)[["value", "loglik"]].round(4)
            value   loglik
        0  0.0082 -14.3356
        1  0.0696 -10.5298
        2  0.1309 -16.5278
        """
        return component_profile(self, component, points, bounds, cache=self._interval_cache,
                                 progressbar=progressbar)

    # variance components -------------------------------------------------

    @cached_property
    def components(self) -> pd.DataFrame:
        """All variance components: family, term, estimate, whether fixed, whether on the boundary, and whether
        the data identify it (``identified``; see :mod:`bayesmeta.design.identifiability`)."""
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
        frame = pd.DataFrame(rows, columns=["family", "name", "estimate", "sqrt", "n_levels", "fixed", "boundary"])
        labels = [f"{f}[{n}]" for f, n in zip(frame["family"], frame["name"])]
        return frame.assign(identified=[label not in self.param.not_identified_labels() for label in labels])

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
        with np.errstate(divide="ignore"):  # k = p under REML: log(0) = -inf, as R prints it
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

    # heterogeneity statistics, tau^2 estimators, Knapp-Hartung (issue 12 items 5, 7, 8) ---------

    @cached_property
    def heterogeneity(self) -> Heterogeneity:
        """I^2, H^2 and the typical within-study variance, by metafor's definitions and the
        paper's (:func:`bayesmeta.inference.heterogeneity.heterogeneity`)."""
        return heterogeneity(self)

    @property
    def i2(self) -> float:
        """metafor's I^2 in percent: ``100 tau^2 / (tau^2 + vt)`` in the standard model, the total
        share ``100 sum(sigma2) / (sum(sigma2) + vt)`` in multilevel models (see
        :mod:`bayesmeta.inference.heterogeneity` for structured terms, location-scale and FE fits).

        Examples
        --------
        >>> import bayesmeta as bm
        >>> fit = bm.MetaModel("logor ~ 1", data=bm.datasets.load("bcg"), vi="logorvar").fit()
        >>> round(fit.i2, 2), round(fit.h2, 2), round(fit.i2_q, 2)
        (92.07, 12.61, 92.65)
        """
        return self.heterogeneity.i2

    h2 = property(lambda self: self.heterogeneity.h2,
                  doc="metafor's H^2: ``tau^2 / vt + 1`` (total over sampling variability); ``Q / (k - p)`` for FE.")
    i2_levels = property(lambda self: self.heterogeneity.i2_levels,
                         doc="Each random level's share of :attr:`i2` (percent), indexed by the term's label.")
    i2_q = property(lambda self: self.heterogeneity.i2_q,
                    doc="The Q-based I^2 of Sera et al. (2019, eq. 4), in percent: 100 max((Q - (k - p)) / Q, 0).")
    vt = property(lambda self: self.heterogeneity.vt,
                  doc="metafor's typical within-study variance (k - p) / tr(P), P = W - W X (X'WX)^-1 X'W, W = V^-1.")

    @property
    def se_tau2(self) -> float:
        """metafor's ``se.tau2`` of the standard model's tau^2 for the method of the fit (ML, REML and
        the moment estimators, :func:`bayesmeta.engines.mode.moments.se_tau2`); NaN for other models,
        FE and MAP fits, a fixed tau^2 or correlated estimates (V not diagonal)."""
        if (not self.is_standard or self.is_location_scale or self.param.n_free == 0
                or self.method not in MOMENT_METHODS + ("ML", "REML")
                or any(s.size > 1 for s in self.design.V.stacks)):
            return np.nan
        return se_tau2(self.design.y, self.design.V.diagonal(), self.design.X, float(self.tau2.iloc[0]), self.method)

    @property
    def s2w(self) -> float:
        """Knapp-Hartung factor ``r' Sigma^-1 r / (k - p)`` (0 when the weighted residual sum of squares
        is 0, as metafor); the covariance of the fixed effects is multiplied by it under ``test="knha"``."""
        quad = self.estimate.evaluation.quad
        return quad / (self.k - self.p) if quad > np.finfo(float).eps else 0.0

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

    @property
    def is_standard(self) -> bool:
        """Whether this is the standard random-effects model (one row-level effect)."""
        return len(self.param.terms) == 1 and self.param.terms[0].label == ROW_TERM

    @property
    def is_location_scale(self) -> bool:
        """Whether a variance has a scale model (``scale=``) or V is scaled (``V_scale=``): the standard
        model's Q-based statistics (Q-profile interval, ``se_tau2``, metafor's I^2) then do not apply."""
        return self.param.has_scale or self.param.v_scale is not None

    def check(self) -> CheckReport:
        """Diagnostics to read before interpreting the fit (issue 16; drmTMB's ``check_drm``).

        Optimiser convergence and gradient, the Hessian (positive definite, condition),
        components on a boundary or not identified, drifting scale coefficients, rows
        dropped, V (dimension, storage, smallest eigenvalue, condition), the fixed
        effects' rank and condition: each line ``ok``, ``note`` or ``problem``
        (:mod:`bayesmeta.results.check`), printed, or as a DataFrame with ``.table``.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
        >>> report = fit.check()
        >>> report.ok, report.table.loc["hessian", "status"]
        (True, 'ok')
        """
        return check_mode(self)

    def summary(self, digits: int = 4) -> str:
        """A printable report in the style of metafor's ``print.rma.mv``.

        Parameters
        ----------
        digits : int
            Decimals of the printed numbers (metafor's ``digits``); a nonzero value that
            would show fewer than two significant digits is printed in scientific notation
            with ``digits - 1`` of them (5.58e-05, not 0.0001).
        """
        return format_mode_summary(self, digits)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return mode_repr(self)

    def _repr_html_(self) -> str:
        """The summary as HTML tables, for notebooks."""
        return mode_html(self)


def _linear_prediction(design, coef: np.ndarray, vcov: np.ndarray, newdata: pd.DataFrame | None) -> tuple:
    """Moderators, index, linear predictor and its SE of a scale design's groups (or of new rows)."""
    W0 = design.W if newdata is None else design.new_W(newdata)
    index = pd.Index(design.groups) if newdata is None else newdata.index
    return W0, index, W0 @ coef, np.sqrt(np.einsum("ni,ij,nj->n", W0, vcov, W0))


def _labelled(family: str, estimate: pd.Series, se: pd.Series, ci: pd.DataFrame) -> pd.DataFrame:
    """Rows ``family[name]`` of the result table."""
    return pd.DataFrame({"estimate": estimate.to_numpy(float), "se": se.to_numpy(float),
                         "ci_lb": ci["ci_lb"].to_numpy(float), "ci_ub": ci["ci_ub"].to_numpy(float)},
                        index=[f"{family}[{n}]" for n in estimate.index])
