"""Results of ML/REML/FE fits.

:class:`ModeResult` turns an engine's raw estimate into the quantities users
read: coefficients with Wald tests and intervals, variance components under
metafor's names, information criteria with metafor's conventions, and the
heterogeneity statistics Q and I2 of Sera et al. (2019, eq. 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from .design import ROW_TERM, Design
from .engines.mode import ModeEstimate
from .errors import SpecificationError
from .likelihood import LOG_2PI
from .parameters import Parameterization

#: An SD at or below this fraction of the model's scale is reported as on the boundary.
BOUNDARY_SD = 1e-4


@dataclass(frozen=True)
class WaldTest:
    """A Wald test of linear hypotheses ``L b = 0`` about the fixed effects.

    Attributes
    ----------
    statistic : float
        Chi-square statistic (z-tests) or F statistic (``test="t"``).
    df : int
        Number of hypotheses (rows of L).
    df_resid : float
        Denominator degrees of freedom of the F-test (inf for the chi-square test).
    pvalue : float
    terms : list of str
        Coefficients involved.
    part : str
        ``"location"`` (fixed effects) or ``"scale"`` (scale coefficients).
    """

    statistic: float
    df: int
    df_resid: float
    pvalue: float
    terms: list
    part: str = "location"

    def __str__(self) -> str:
        name = ("QS" if self.part == "scale" else "QM") if np.isinf(self.df_resid) else "F"
        dfs = f"df = {self.df}" if np.isinf(self.df_resid) else f"df1 = {self.df}, df2 = {self.df_resid:g}"
        p = "< .0001" if self.pvalue < 1e-4 else f"= {self.pvalue:.4f}"
        return f"Test of {', '.join(self.terms)}: {name}({dfs}) = {self.statistic:.4f}, p-val {p}"


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
        Wald confidence intervals (columns ``lower``, ``upper``).
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
        return self.estimate.method

    @property
    def k(self) -> int:
        """Number of rows (estimates) used."""
        return self.design.n

    @property
    def p(self) -> int:
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
        dist = stats.t(self.df) if self.test == "t" else stats.norm
        return pd.Series(2 * dist.sf(np.abs(self.zval)), index=self.coef.index, name="pval")

    @cached_property
    def ci(self) -> pd.DataFrame:
        dist = stats.t(self.df) if self.test == "t" else stats.norm
        crit = dist.ppf(0.5 + self.level / 2)
        return pd.DataFrame({"lower": self.coef - crit * self.se, "upper": self.coef + crit * self.se})

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
        if L is None:
            if terms is None:
                own = names if part == "location" else [n for sc in self.param.scales if sc is not None
                                                        for n in sc.names]
                terms = [n for n, o in zip(names, own) if o != "Intercept"] or names
            unknown = [t for t in terms if t not in names]
            if unknown:
                raise SpecificationError(f"terms: unknown coefficient(s) {unknown}; available: {names}.")
            if not terms:
                raise SpecificationError("terms: nothing to test (the model has only an intercept).")
            L = np.eye(len(names))[[names.index(t) for t in terms]]
        else:
            L = np.atleast_2d(np.asarray(L, dtype=float))
            if L.shape[1] != len(names):
                raise SpecificationError(f"L: expected {len(names)} columns (one per coefficient), got {L.shape[1]}.")
            terms = [names[j] for j in np.flatnonzero(np.abs(L).sum(axis=0) > 0)]
        Lb = L @ estimate.to_numpy()
        covariance = L @ vcov.to_numpy() @ L.T
        stat = float(Lb @ np.linalg.solve(covariance, Lb)) if np.all(np.isfinite(covariance)) else np.nan
        m = L.shape[0]
        if self.test == "t":
            return WaldTest(stat / m, m, df_resid, float(stats.f.sf(stat / m, m, df_resid)), list(terms), part)
        return WaldTest(stat, m, np.inf, float(stats.chi2.sf(stat, m)), list(terms), part)

    def table(self) -> pd.DataFrame:
        """Estimate, SE and interval of every parameter, indexed like the Bayesian results
        (``beta[name]``, ``alpha[name]``, ``sigma2[name]``, ...); variance components have no SE here."""
        rows = {f"beta[{n}]": (self.coef[n], self.se[n], self.ci.loc[n, "lower"], self.ci.loc[n, "upper"])
                for n in self.coef.index}
        rows.update({f"alpha[{n}]": (self.alpha[n], self.alpha_se[n], self.alpha_ci.loc[n, "lower"],
                                     self.alpha_ci.loc[n, "upper"]) for n in self.alpha.index})
        for family, name, value in self.components[["family", "name", "estimate"]].itertuples(index=False):
            rows[f"{family}[{name}]"] = (value, np.nan, np.nan, np.nan)
        return pd.DataFrame.from_dict(rows, orient="index", columns=["estimate", "se", "lower", "upper"])

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
        dist = stats.t(self.alpha_df) if self.test == "t" else stats.norm
        return pd.Series(2 * dist.sf(np.abs(self.alpha_zval)), index=self.alpha.index, name="pval", dtype=float)

    @cached_property
    def alpha_ci(self) -> pd.DataFrame:
        dist = stats.t(self.alpha_df) if self.test == "t" else stats.norm
        crit = dist.ppf(0.5 + self.level / 2)
        return pd.DataFrame({"lower": self.alpha - crit * self.alpha_se, "upper": self.alpha + crit * self.alpha_se})

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
        from .scale import select_level

        k = select_level(self.param.scales, term)
        sc = self.param.scales[k]
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
        dist = stats.t(self.alpha_df) if self.test == "t" else stats.norm
        crit = dist.ppf(0.5 + (self.level if level is None else level) / 2)
        return pd.DataFrame({"pred": np.exp(log_pred), "ci_lb": np.exp(log_pred - crit * log_se),
                             "ci_ub": np.exp(log_pred + crit * log_se), "log_pred": log_pred, "log_se": log_se},
                            index=index)

    def permutation_test(self, n: int = 1000, random_seed=None, *, part: str = "both", term: str | None = None,
                         exact: bool | None = None, progressbar: bool = True):
        """Permutation test of the location and scale coefficients, as metafor's ``permutest``.

        Permutes the scale moderators over the groups of their level (and the
        rows of the fixed-effects design, or the signs of the outcomes for an
        intercept-only location model), refits, and compares the z statistics; see
        :mod:`bayesmeta.permutation`. Exact (every distinct permutation) when there
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
        bayesmeta.permutation.PermutationTest

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
        from .permutation import permutation_test

        return permutation_test(self, n, random_seed, part=part, term=term, exact=exact, progressbar=progressbar)

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
            corr = {"tau2": "rho", "gamma2": "phi"}.get(term.family)
            for i, s in enumerate(sd):
                level = term.label if term.n_sd == 1 else f"{term.label}: {term.levels[i]}"
                rows.append({"family": term.family, "name": level, "estimate": float(s) ** 2,
                             "sqrt": float(s), "n_levels": term.n_groups, "fixed": not np.isnan(fs[i]),
                             "boundary": bool(np.isnan(fs[i]) and s <= BOUNDARY_SD * self.param.scale)})
            a, b = np.tril_indices(term.q, -1)
            for i, r in enumerate(rho):
                name = term.label if term.n_rho == 1 else f"{term.label}: {term.levels[b[i]]}, {term.levels[a[i]]}"
                rows.append({"family": corr, "name": name, "estimate": float(r), "sqrt": np.nan,
                             "n_levels": term.n_groups, "fixed": not np.isnan(fr[i]),
                             "boundary": bool(np.isnan(fr[i]) and abs(r) > 1 - 1e-6)})
        return pd.DataFrame(rows, columns=["family", "name", "estimate", "sqrt", "n_levels", "fixed", "boundary"])

    def _family(self, family: str) -> pd.Series:
        c = self.components
        sel = c[c["family"] == family]
        return pd.Series(sel["estimate"].to_numpy(), index=sel["name"].to_numpy(), name=family, dtype=float)

    @property
    def sigma2(self) -> pd.Series:
        return self._family("sigma2")

    @property
    def tau2(self) -> pd.Series:
        return self._family("tau2")

    @property
    def rho(self) -> pd.Series:
        return self._family("rho")

    @property
    def gamma2(self) -> pd.Series:
        return self._family("gamma2")

    @property
    def phi(self) -> pd.Series:
        return self._family("phi")

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
        return float(stats.chi2.sf(self.q, self.q_df)) if self.q_df > 0 else np.nan

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

    @property
    def rows_used(self) -> np.ndarray:
        return self.design.row_labels

    @property
    def rows_dropped(self) -> np.ndarray:
        return self.design.dropped

    @property
    def converged(self) -> bool:
        return self.estimate.converged

    @property
    def is_standard(self) -> bool:
        """Whether this is the standard random-effects model (one row-level effect)."""
        return len(self.param.terms) == 1 and self.param.terms[0].label == ROW_TERM

    @property
    def is_location_scale(self) -> bool:
        return self.param.has_scale

    def summary(self) -> str:
        """A printable report in the style of metafor's ``print.rma.mv``."""
        from .summary import format_mode_summary

        return format_mode_summary(self)

    def __str__(self) -> str:
        return self.summary()
