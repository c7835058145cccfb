"""Small-study effects: Egger's regression test and trim-and-fill, as metafor's ``regtest`` and ``trimfill``.

**Regression test** (:func:`regtest`). The model is refitted with a measure of
precision added as a moderator, by default the standard error
``sei = sqrt(v_i)`` (Egger's test); the test of its coefficient is the test for
funnel-plot asymmetry. ``model="rma"`` (metafor's default) refits the fitted
model itself (same method and test; for multilevel and multivariate models this
is the multilevel Egger test, sei as a moderator of the multilevel model);
``model="lm"`` is the classical weighted regression with weights ``1 / v_i`` and
a multiplicative dispersion (t-test on k - p - 1 degrees of freedom). For an
intercept-only model and a predictor that vanishes with the sampling variance
(``"sei"``, ``"vi"``, ``"ninv"``, ``"sqrtninv"``) the intercept is the *limit
estimate*, the effect expected in a study of infinite precision.

**Trim and fill** (:func:`trimfill`, Duval and Tweedie 2000), for the standard
model without moderators: the side with the missing studies is the one opposite
to the sign of the Egger slope (slope < 0: missing on the right); the data are
reflected to that side and sorted; repeatedly, the model is fitted on the k - k0
least extreme studies, the studies are centred at its estimate, and k0 is
estimated from the ranks of the absolute centred values (estimators ``"L0"``,
``"R0"``, ``"Q0"``) until k0 no longer changes. The k0 most extreme studies are
then mirrored about the last estimate ("filled"), and the model is refitted on
the k + k0 studies with the same method (and, unlike metafor, the same test and
level as the fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.rows import redundant_columns
from ..design.sampling_covariance import from_variances
from ..design.subset import matching_parameterization, rebuild
from ..design.terms import encode_terms
from ..errors import SpecificationError
from .influence import refit_rows, require_refittable, require_standard
from .intervals import critical_value, two_sided_p

#: Predictors of the regression test, and whether each vanishes for a study of infinite precision.
PREDICTORS = {"sei": True, "vi": True, "ni": False, "ninv": True, "sqrtni": False, "sqrtninv": True}
#: Estimators of the number of missing studies.
ESTIMATORS = ("L0", "R0", "Q0")


# regression test -------------------------------------------------------------

@dataclass(frozen=True)
class RegTest:
    """Result of the regression test for funnel-plot asymmetry.

    Attributes
    ----------
    model, predictor : str
    zval, pval : float
        Test of the predictor's coefficient (a t statistic when ``dfs`` is finite).
    dfs : float
        Degrees of freedom of the test (NaN for a z-test).
    limit_estimate, limit_ci_lb, limit_ci_ub : float
        The intercept (the effect as the predictor goes to 0) and its interval; NaN
        when the model has moderators or the predictor does not vanish.
    fit : object
        The model with the predictor (a ``ModeResult`` for ``model="rma"``; for
        ``"lm"`` a DataFrame of the weighted regression's coefficients).
    """

    model: str
    predictor: str
    zval: float
    pval: float
    dfs: float
    limit_estimate: float
    limit_ci_lb: float
    limit_ci_ub: float
    fit: object

    def __str__(self) -> str:
        kind = {"rma": "meta-regression model (the fitted model with the predictor)",
                "lm": "weighted regression with multiplicative dispersion"}[self.model]
        stat = "z" if np.isnan(self.dfs) else f"t(df = {self.dfs:g})"
        lines = ["Regression Test for Funnel Plot Asymmetry", "", f"Model:     {kind}",
                 f"Predictor: {self.predictor}", "",
                 f"Test for Funnel Plot Asymmetry: {stat} = {self.zval:.4f}, p = {self.pval:.4f}"]
        if not np.isnan(self.limit_estimate):
            lines.append(f"Limit Estimate (as {self.predictor} -> 0):   b = {self.limit_estimate:.4f} "
                         f"(CI: {self.limit_ci_lb:.4f}, {self.limit_ci_ub:.4f})")
        return "\n".join(lines)


def _predictor_values(fit, predictor: str, ni) -> np.ndarray:
    """The predictor of every row used."""
    v = fit.design.V.diagonal()
    if predictor == "sei":
        return np.sqrt(v)
    if predictor == "vi":
        return v
    if ni is None:
        raise SpecificationError(f"ni: predictor {predictor!r} needs the sample sizes (ni=, one per row used).")
    if isinstance(ni, pd.Series):
        values = ni.reindex(fit.design.row_labels).to_numpy(dtype=float)
    else:
        values = np.asarray(ni, dtype=float).ravel()
        if len(values) != fit.design.n:
            raise SpecificationError(f"ni: expected {fit.design.n} sample sizes (one per row used), got {len(values)}.")
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise SpecificationError("ni: sample sizes must be positive and given for every row used.")
    return {"ni": values, "ninv": 1 / values, "sqrtni": np.sqrt(values), "sqrtninv": 1 / np.sqrt(values)}[predictor]


def _weighted_regression(y, X, v, names, level):
    """Weighted least squares (weights 1/v) with estimated dispersion: estimates, SEs, df."""
    w = 1.0 / v
    xtwx = X.T @ (w[:, None] * X)
    beta = np.linalg.solve(xtwx, X.T @ (w * y))
    df = len(y) - X.shape[1]
    dispersion = float(np.sum(w * (y - X @ beta) ** 2) / df)
    se = np.sqrt(dispersion * np.diag(np.linalg.inv(xtwx)))
    crit = critical_value(level, df)
    table = pd.DataFrame({"estimate": beta, "se": se, "tval": beta / se, "pval": two_sided_p(beta / se, df),
                          "ci_lb": beta - crit * se, "ci_ub": beta + crit * se}, index=names)
    return table, float(df)


def with_predictor(fit, values: np.ndarray, name: str):
    """The fit refitted with one more column in X (an error naming it if X becomes rank deficient)."""
    design = fit.design
    names = list(design.coef_names) + [name]
    X = np.column_stack([design.X, values])
    if redundant_columns(X, names):
        raise SpecificationError(f"predictor: the model matrix is not of full rank after adding {name!r}.")
    design = rebuild(design, X=X, coef_names=names)
    return fit.refit(design, matching_parameterization(fit.param, design))


def regtest(fit, model: str = "rma", predictor: str = "sei", ni=None) -> RegTest:
    """Regression test for funnel-plot asymmetry (Egger's test), as metafor's ``regtest``.

    Parameters
    ----------
    fit : ModeResult
        An ML, REML or FE fit (not location-scale).
    model : {"rma", "lm"}
        Refit the model with the predictor as a moderator (metafor's default), or the
        classical weighted regression (see :mod:`bayesmeta.inference.small_study`).
    predictor : {"sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv"}
        The standard error (default), the sampling variance, or the sample size, its
        inverse, square root or inverse square root.
    ni : array_like or pandas.Series, optional
        Sample sizes (one per row used, or a Series aligned by index), for the
        sample-size predictors.

    Returns
    -------
    RegTest

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
    >>> print(regtest(fit))
    Regression Test for Funnel Plot Asymmetry
    <BLANKLINE>
    Model:     meta-regression model (the fitted model with the predictor)
    Predictor: sei
    <BLANKLINE>
    Test for Funnel Plot Asymmetry: z = -0.8033, p = 0.4218
    Limit Estimate (as sei -> 0):   b = -0.5104 (CI: -1.1182, 0.0974)
    """
    if model not in ("rma", "lm"):
        raise SpecificationError(f"model: expected 'rma' or 'lm', got {model!r}.")
    if predictor not in PREDICTORS:
        raise SpecificationError(f"predictor: expected one of {', '.join(PREDICTORS)}, got {predictor!r}.")
    require_refittable(fit, "regtest")
    design = fit.design
    if design.n <= design.p + 1:
        raise SpecificationError(f"regtest: needs more rows ({design.n}) than coefficients with the predictor "
                                 f"({design.p + 1}).")
    values = _predictor_values(fit, predictor, ni)
    if model == "rma":
        res = with_predictor(fit, values, predictor)
        table = pd.DataFrame({"estimate": res.coef, "se": res.se, "pval": res.pval}).join(res.ci)
        stat, dfs = res.zval.to_numpy(), (res.df if np.isfinite(res.df) else np.nan)
    else:
        X = np.column_stack([design.X, values])
        table, dfs = _weighted_regression(design.y, X, design.V.diagonal(), list(design.coef_names) + [predictor],
                                          fit.level)
        res, stat = table, table["tval"].to_numpy()
    limit = PREDICTORS[predictor] and design.p == 1 and np.all(design.X[:, 0] == 1)
    first = table.iloc[0]
    return RegTest(model, predictor, float(stat[-1]), float(table["pval"].iloc[-1]), float(dfs),
                   float(first["estimate"]) if limit else np.nan, float(first["ci_lb"]) if limit else np.nan,
                   float(first["ci_ub"]) if limit else np.nan, res)


# trim and fill ---------------------------------------------------------------

@dataclass(frozen=True)
class TrimFill:
    """Result of the trim-and-fill method.

    Attributes
    ----------
    k0 : int
        Estimated number of missing studies.
    se_k0 : float
        Its standard error.
    p_k0 : float
        p-value of k0 (the R0 estimator only; NaN otherwise).
    side : {"left", "right"}
        Side of the funnel plot where studies are missing.
    estimator : str
    data : pandas.DataFrame
        The filled data: ``yi``, ``vi`` and ``fill`` (True for the filled studies,
        labelled ``"Filled 1"``, ...), the observed rows first.
    fit : ModeResult
        The model fitted on the filled data (the original fit when k0 = 0).
    """

    k0: int
    se_k0: float
    p_k0: float
    side: str
    estimator: str
    data: pd.DataFrame
    fit: object

    @property
    def estimate(self) -> float:
        """The pooled estimate of the filled data."""
        return float(self.fit.coef.iloc[0])

    @property
    def se(self) -> float:
        return float(self.fit.se.iloc[0])

    @property
    def ci_lb(self) -> float:
        return float(self.fit.ci["ci_lb"].iloc[0])

    @property
    def ci_ub(self) -> float:
        return float(self.fit.ci["ci_ub"].iloc[0])

    @property
    def tau2(self) -> float:
        """tau^2 of the filled data."""
        return float(self.fit.tau2.iloc[0])

    def __str__(self) -> str:
        return (f"Trim-and-fill ({self.estimator}): estimated number of missing studies on the {self.side} side: "
                f"{self.k0} (SE = {self.se_k0:.4f})\n\n{self.fit}")


def _missing_count(centred: np.ndarray, estimator: str) -> tuple[float, float]:
    """The estimate of k0 and its SE from the studies centred at the current estimate (before rounding)."""
    k = len(centred)
    order = np.argsort(np.abs(centred), kind="stable")  # ties by order, as R's rank(ties.method = "first")
    ranks = np.empty(k)
    ranks[order] = np.arange(1, k + 1)
    signed = np.sign(centred) * ranks
    if estimator == "R0":
        k0 = k - np.max(-signed[signed < 0], initial=0) - 1
        return k0, np.sqrt(2 * max(0.0, k0) + 2)
    s_r = signed[signed > 0].sum()
    k0 = (4 * s_r - k * (k + 1)) / (2 * k - 1) if estimator == "L0" else k - 0.5 - np.sqrt(2 * k ** 2 - 4 * s_r + 0.25)
    var_sr = (k * (k + 1) * (2 * k + 1) + 10 * k0 ** 3 + 27 * k0 ** 2 + 17 * k0 - 18 * k * k0 ** 2 - 18 * k * k0
              + 6 * k ** 2 * k0) / 24
    if estimator == "L0":
        return k0, 4 * np.sqrt(var_sr) / (2 * k - 1)
    return k0, 2 * np.sqrt(var_sr) / np.sqrt((k - 0.5) ** 2 - k0 * (2 * k - k0 - 1))


def _filled_fit(fit, y_fill: np.ndarray, v_fill: np.ndarray, labels: np.ndarray):
    """The standard model refitted on the observed rows plus the filled ones (``labels``: of all rows;
    the filled rows have no position in the data: -1)."""
    design = fit.design
    v = np.concatenate([design.V.diagonal(), v_fill])
    filled = rebuild(design, y=np.concatenate([design.y, y_fill]), X=np.ones((len(v), 1)), V=from_variances(v),
                     encodings=encode_terms(None, pd.DataFrame(index=labels)), row_labels=labels,
                     positions=np.concatenate([design.positions, np.full(len(y_fill), -1)]))
    return fit.refit(filled, matching_parameterization(fit.param, filled))


def trimfill(fit, side: str | None = None, estimator: str = "L0", maxiter: int = 100) -> TrimFill:
    """Trim-and-fill estimate of the number of missing studies and the filled fit, as metafor's ``trimfill``.

    Parameters
    ----------
    fit : ModeResult
        A standard-model fit (``random=None``) without moderators.
    side : {"left", "right"}, optional
        Side where studies are missing; by default the side opposite to the sign of
        the Egger slope (the slope of sei in the model refitted with it).
    estimator : {"L0", "R0", "Q0"}
    maxiter : int
        Maximum number of trim iterations.

    Returns
    -------
    TrimFill
        ``k0``, ``side``, the filled ``data`` (column ``fill`` marks the filled studies)
        and the ``fit`` of the filled data.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> bcg = bm.datasets.load("bcg")
    >>> tf = trimfill(bm.MetaModel("logrr ~ 1", data=bcg, vi="logrrvar").fit())
    >>> tf.k0, tf.side, round(tf.estimate, 4), round(tf.se, 4), round(tf.tau2, 4)
    (1, 'right', -0.6571, 0.1785, 0.3313)
    >>> tf.data.tail(2).round(4)
                  yi      vi   fill
    12       -0.0173  0.0714  False
    Filled 1  0.3104  0.2230   True
    """
    require_standard(fit, "trimfill", intercept_only=True)
    if side is not None and side not in ("left", "right"):
        raise SpecificationError(f"side: expected 'left', 'right' or None, got {side!r}.")
    if estimator not in ESTIMATORS:
        raise SpecificationError(f"estimator: expected one of {', '.join(ESTIMATORS)}, got {estimator!r}.")
    design = fit.design
    if side is None:
        slope = with_predictor(fit, np.sqrt(design.V.diagonal()), "sei").coef.iloc[-1]
        side = "right" if slope < 0 else "left"
    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * design.y, kind="stable")
    y, v = sign * design.y[order], design.V.diagonal()[order]
    k = len(y)
    k0, previous, iteration = 0, -1, 0
    while k0 != previous:
        previous, iteration = k0, iteration + 1
        if iteration > maxiter:
            raise SpecificationError(f"maxiter: the trim-and-fill algorithm did not converge in {maxiter} iterations.")
        trimmed = fit if k0 == 0 else refit_rows(fit, order[:k - k0])
        if trimmed is None:
            raise SpecificationError(f"trimfill: the model could not be fitted on the {k - k0} least extreme studies.")
        beta = sign * float(trimmed.coef.iloc[0])
        k0, se_k0 = _missing_count(y - beta, estimator)
        k0, se_k0 = max(0, int(np.round(k0))), max(0.0, float(se_k0))
    # metafor's p.k0 of R0: 1 - sum_{j=1}^{k0+1} 2^-j
    p_k0 = 0.5 ** (k0 + 1) if estimator == "R0" else np.nan
    y_fill, v_fill = sign * (2 * beta - y[k - k0:]), v[k - k0:]
    labels = np.concatenate([design.row_labels.astype(object), [f"Filled {j + 1}" for j in range(k0)]])
    filled_fit = fit if k0 == 0 else _filled_fit(fit, y_fill, v_fill, labels)
    data = pd.DataFrame({"yi": np.concatenate([design.y, y_fill]), "vi": np.concatenate([design.V.diagonal(), v_fill]),
                         "fill": np.arange(k + k0) >= k}, index=pd.Index(labels))
    return TrimFill(k0, se_k0, p_k0, side, estimator, data, filled_fit)
