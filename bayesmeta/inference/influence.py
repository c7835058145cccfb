"""Influence diagnostics and leave-one-out refits, as metafor's ``influence``, ``cooks.distance`` and ``leave1out``.

Every diagnostic compares the fit with refits that leave out one row (one
study) or one cluster of rows. A refit uses the design of the rows left
(:func:`bayesmeta.design.subset.subset_design`, built from the arrays: the
formula is not re-encoded) and the fit's own ``refit(design, param)``, so the
same method, test and level. A refit that fails, or whose fixed effects are no
longer estimable (a moderator constant on the rows left), gives NaN, as in
metafor.

For the standard model (:func:`influence`, metafor's ``influence.rma.uni``),
with ``w_i = 1 / (v_i + tau^2)``, ``H = X (X'WX)^-1 X'W`` and, for the refit
without row i, ``tau2_(i)``, ``b_(i)`` and ``Var(b_(i))``:

* ``rstudent``: ``(y_i - x_i b_(i)) / sqrt(s2w v_i + x_i Var(b_(i)) x_i' + s2w tau2_(i))``;
* ``dffits``: ``(x_i b - x_i b_(i)) / sqrt(s2w h_ii (tau2_(i) + v_i))``;
* ``cook_d``: ``(b - b_(i))' Var(b)^-1 (b - b_(i))``;
* ``cov_r``: ``det Var(b_(i)) / det Var(b)``;
* ``tau2_del``, ``QE_del``: tau^2 and Cochran's Q of the refit;
* ``hat``: ``h_ii``; ``weight``: ``100 w_i / sum(w)`` (percent);
* ``dfbs[name]``: ``(b - b_(i)) / sqrt(s2w diag((X'W_(i)X)^-1))``, with all rows and
  the weights of ``tau2_(i)``;

``s2w`` is the factor of the refit's covariance over ``(X'WX)^-1`` (1 except
under Knapp and Hartung's adjustment). A row is flagged ``influential`` when
``|dffits| > 3 sqrt(p / (k - p))``, or the chi-square(p) distribution function
at ``cook_d`` exceeds 0.5, or ``hat > 3 p / k``, or some ``|dfbs| > 1``.

Cook's distance (:func:`cooks_distance`) has the same definition for every
model, per row or per cluster (metafor's ``cooks.distance.rma.mv``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..design.rows import redundant_columns
from ..design.subset import matching_parameterization, subset_design
from ..errors import SpecificationError
from ..likelihood.profiled import NotPositiveDefinite
from .intervals import chi2_sf
from .permutation import single_threaded_blas
from .robust import resolve_clusters

#: Leave-out loops with at least this many refits show a progress bar.
MANY_REFITS = 20


# refits ----------------------------------------------------------------------

def refit_rows(fit, keep):
    """The fit refitted on the rows ``keep`` (mask or positions), or None when it cannot be.

    None when the fixed effects are not estimable on those rows or the refit
    fails; warnings of the refit are silenced (as metafor's refits are).
    """
    design = subset_design(fit.design, keep)
    if design.n <= design.p or redundant_columns(design.X, design.coef_names):
        return None
    param = matching_parameterization(fit.param, design)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit.refit(design, param)
    except (SpecificationError, NotPositiveDefinite, np.linalg.LinAlgError, ArithmeticError):
        return None


def leave_out_fits(fit, codes: np.ndarray, progressbar: bool = True, desc: str = "leave-one-out refits") -> list:
    """Refits without each cluster ``g`` (the rows with ``codes == g``), for g = 0, 1, ...; None where one fails."""
    from tqdm.auto import tqdm

    n = int(codes.max()) + 1
    show = progressbar and n >= MANY_REFITS
    with single_threaded_blas():
        return [refit_rows(fit, codes != g) for g in tqdm(range(n), desc=desc, disable=not show)]


def cooks_d(fit, refit) -> float:
    """``(b - b_(i))' Var(b)^-1 (b - b_(i))`` (NaN without a refit)."""
    if refit is None:
        return np.nan
    d = fit.coef.to_numpy() - refit.coef.to_numpy()
    return float(d @ np.linalg.solve(fit.vcov.to_numpy(), d))


# clusters --------------------------------------------------------------------

def cluster_codes(design, cluster) -> tuple[np.ndarray, pd.Index]:
    """The cluster of every row used (codes 0..m-1) and the m cluster labels.

    Parameters
    ----------
    design : Design
    cluster : None, str, pandas.Series or array_like
        None: every row is its own cluster (labels: the row labels, in row order).
        Otherwise as the ``cluster`` of :func:`bayesmeta.inference.robust.robust`: a
        grouping factor of the random terms by name, a Series aligned by index, or
        one value per row (used, or of the data).

    Returns
    -------
    codes : numpy.ndarray (n,)
    labels : pandas.Index
        Sorted, as metafor sorts cluster labels (in order of appearance when they
        cannot be sorted).
    """
    if cluster is None:
        return np.arange(design.n), pd.Index(design.row_labels)
    clusters = resolve_clusters(design, cluster)
    labels = pd.Index(clusters.labels, name=cluster if isinstance(cluster, str) else getattr(cluster, "name", None))
    try:
        order = np.argsort(labels.to_numpy(), kind="stable")
    except TypeError:  # labels of mixed types
        return clusters.codes, labels
    rank = np.empty(len(order), int)
    rank[order] = np.arange(len(order))
    return rank[clusters.codes], labels[order]


# checks ----------------------------------------------------------------------

def require_refittable(fit, what: str) -> None:
    """Refuse fits that cannot be refitted on other rows (posterior modes, location-scale models)."""
    if fit.method == "MAP":
        raise SpecificationError(f"{what}: not available for posterior modes (method 'MAP'); fit by ML or REML.")
    if fit.param.has_scale:
        raise SpecificationError(f"{what}: not available for location-scale models (scale=).")


def require_standard(fit, what: str, intercept_only: bool = False) -> None:
    """Refuse fits that are not the standard random-effects model (or that have moderators)."""
    require_refittable(fit, what)
    if not fit.is_standard:
        raise SpecificationError(f"{what}: available for the standard random-effects model (random=None), "
                                 "as metafor's rma(); for multilevel and multivariate models use "
                                 "cooks_distance(cluster=...).")
    if intercept_only and fit.design.p != 1:
        raise SpecificationError(f"{what}: only for models without moderators (the formula 'yi ~ 1'), as in metafor.")
    if fit.design.n < 3:
        raise SpecificationError(f"{what}: needs at least 3 rows, got {fit.design.n}.")


# the standard model ----------------------------------------------------------

def heterogeneity_tau2(fit) -> float:
    """tau^2 of a standard-model fit."""
    return float(fit.tau2.iloc[0])


def _covariance_factor(refit, tau2: float) -> float:
    """``s2w``: the refit's Var(b) over (X'WX)^-1 (1 unless the covariance is scaled, e.g. Knapp-Hartung)."""
    X, v = refit.design.X, refit.design.V.diagonal()
    w = 1.0 / (v + tau2)
    return float(np.trace(refit.vcov.to_numpy() @ (X.T @ (w[:, None] * X))) / X.shape[1])


def influence(fit, progressbar: bool = True) -> pd.DataFrame:
    """Influence diagnostics of every row of a standard random-effects model (metafor's ``influence.rma.uni``).

    Parameters
    ----------
    fit : ModeResult
        A standard-model fit (``random=None``) by ML, REML or FE.
    progressbar : bool
        Show a tqdm progress bar (when there are at least 20 refits).

    Returns
    -------
    pandas.DataFrame
        One row per row of the data used (indexed by its label) with the columns
        ``rstudent, dffits, cook_d, cov_r, tau2_del, QE_del, hat, weight`` (metafor's,
        weight in percent), then ``dfbs[name]`` for every coefficient (metafor's
        ``dfbs`` table) and ``influential`` (metafor's ``is.infl``, printed as ``*``).
        Definitions: :mod:`bayesmeta.inference.influence`.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("logrr ~ ablat", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
    >>> inf = influence(fit)
    >>> inf[["rstudent", "cook_d", "hat", "dfbs[ablat]"]].iloc[5:8].round(4)
       rstudent  cook_d     hat  dfbs[ablat]
    5    0.9658  0.2883  0.2367       0.3511
    6   -2.6687  0.3643  0.0640       0.4230
    7    0.5560  0.2719  0.3570      -0.3430
    >>> int(inf["influential"].sum())
    0
    """
    require_standard(fit, "influence")
    design = fit.design
    X, y, v = design.X, design.y, design.V.diagonal()
    k, p = X.shape
    beta, vb = fit.coef.to_numpy(), fit.vcov.to_numpy()
    w = 1.0 / (v + heterogeneity_tau2(fit))
    hat = w * np.einsum("ij,ij->i", X @ np.linalg.inv(X.T @ (w[:, None] * X)), X)
    hat[hat > 1 - 10 * np.finfo(float).eps] = 1.0
    columns = ["rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "QE_del"]
    out = {c: np.full(k, np.nan) for c in columns}
    dfbs = np.full((k, p), np.nan)
    for i, res in enumerate(leave_out_fits(fit, np.arange(k), progressbar)):
        if res is None:
            continue
        tau2_del, b_del, vb_del = heterogeneity_tau2(res), res.coef.to_numpy(), res.vcov.to_numpy()
        s2w = _covariance_factor(res, tau2_del)
        resid = y[i] - X[i] @ b_del
        resid = 0.0 if abs(resid) < 100 * np.finfo(float).eps else resid
        out["rstudent"][i] = resid / np.sqrt(s2w * (v[i] + tau2_del) + X[i] @ vb_del @ X[i])
        out["dffits"][i] = X[i] @ (beta - b_del) / np.sqrt(s2w * hat[i] * (tau2_del + v[i]))
        w_del = 1.0 / (v + tau2_del)
        dfbs[i] = (beta - b_del) / np.sqrt(s2w * np.diag(np.linalg.inv(X.T @ (w_del[:, None] * X))))
        out["cook_d"][i] = cooks_d(fit, res)
        out["cov_r"][i] = np.linalg.det(vb_del) / np.linalg.det(vb)
        out["tau2_del"][i], out["QE_del"][i] = tau2_del, res.q
    out["hat"], out["weight"] = hat, 100 * w / w.sum()
    table = pd.DataFrame(out, index=pd.Index(design.row_labels))
    for j, name in enumerate(design.coef_names):
        table[f"dfbs[{name}]"] = dfbs[:, j]
    with np.errstate(invalid="ignore"):
        table["influential"] = ((np.abs(table["dffits"]) > 3 * np.sqrt(p / (k - p)))
                                | (1 - chi2_sf(table["cook_d"], p) > 0.5)
                                | (table["hat"] > 3 * p / k)
                                | (np.abs(dfbs) > 1).any(axis=1))
    return table


def leave1out(fit, progressbar: bool = True) -> pd.DataFrame:
    """The standard model refitted without each row in turn (metafor's ``leave1out.rma.uni``).

    Parameters
    ----------
    fit : ModeResult
        A standard-model fit (``random=None``) without moderators.
    progressbar : bool
        Show a tqdm progress bar (when there are at least 20 refits).

    Returns
    -------
    pandas.DataFrame
        Indexed by the row left out: ``estimate, se, zval, pval, ci_lb, ci_ub`` of
        the refit (``tval`` under t-tests), its heterogeneity test ``Q, Qp``, and
        ``tau2, I2, H2`` (I^2 in percent, as metafor defines them: the refit's
        ``i2`` and ``h2``; FE fits have no ``tau2`` column).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
    >>> leave1out(fit)[["estimate", "se", "ci_lb", "ci_ub", "tau2", "I2"]].head(3).round(4)
       estimate      se   ci_lb   ci_ub    tau2       I2
    0   -0.7071  0.1900 -1.0794 -0.3348  0.3362  93.2259
    1   -0.6540  0.1807 -1.0082 -0.2999  0.2926  92.2540
    2   -0.6856  0.1857 -1.0495 -0.3216  0.3207  92.9354
    """
    require_standard(fit, "leave1out", intercept_only=True)
    stat = fit.zval.name
    rows = []
    for res in leave_out_fits(fit, np.arange(fit.design.n), progressbar):
        if res is None:
            rows.append({})
            continue
        rows.append({"estimate": res.coef.iloc[0], "se": res.se.iloc[0], stat: res.zval.iloc[0],
                     "pval": res.pval.iloc[0], "ci_lb": res.ci["ci_lb"].iloc[0], "ci_ub": res.ci["ci_ub"].iloc[0],
                     "Q": res.q, "Qp": res.q_pvalue, "tau2": heterogeneity_tau2(res), "I2": res.i2, "H2": res.h2})
    columns = ["estimate", "se", stat, "pval", "ci_lb", "ci_ub", "Q", "Qp", "tau2", "I2", "H2"]
    if fit.method == "FE":
        columns.remove("tau2")
    return pd.DataFrame(rows, index=pd.Index(fit.design.row_labels), columns=columns, dtype=float)


# any model -------------------------------------------------------------------

def cooks_distance(fit, cluster=None, progressbar: bool = True) -> pd.Series:
    """Cook's distances of rows or clusters (metafor's ``cooks.distance``, for ``rma`` and ``rma.mv`` fits).

    ``D = (b - b_(c))' Var(b)^-1 (b - b_(c))``, with ``b_(c)`` the coefficients of
    the model refitted without cluster c (its variance components re-estimated).

    Parameters
    ----------
    fit : ModeResult
        An ML, REML or FE fit (not location-scale).
    cluster : None, str, pandas.Series or array_like
        None: one distance per row. Otherwise the cluster of every row: a grouping
        of the random terms by name (``"district"``), a Series aligned by index, or
        one value per row (see :func:`cluster_codes`).
    progressbar : bool
        Show a tqdm progress bar (when there are at least 20 refits).

    Returns
    -------
    pandas.Series
        ``cook_d`` per row (in row order) or per cluster (sorted by label).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
    ...                    random="~ 1 | district/study").fit()
    >>> cooks_distance(fit, cluster="district").round(4).head(3)
    district
    11    0.0694
    12    0.0162
    18    0.0420
    Name: cook_d, dtype: float64
    """
    require_refittable(fit, "cooks_distance")
    codes, labels = cluster_codes(fit.design, cluster)
    refits = leave_out_fits(fit, codes, progressbar, desc="Cook's distances")
    return pd.Series([cooks_d(fit, r) for r in refits], index=labels, name="cook_d", dtype=float)
