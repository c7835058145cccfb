"""Predicted effects of an ML/REML fit with confidence and prediction intervals, as metafor's ``predict``.

For moderator values ``x0`` the mean effect is ``x0' b`` with SE ``sqrt(x0' Vb x0)``
and a Wald interval (``ci_lb``, ``ci_ub``). The prediction interval (``pi_lb``,
``pi_ub``) is for the true effect of a new study: it adds, for every random term,
the variance of the new study's effect ``z0' G z0`` (``sigma2`` of each nested
level, ``tau2`` of the study's level of an ``inner | outer`` term, the slopes'
``z0' G z0``, ``exp(w0' alpha)`` of a scale model), as metafor does for a new
study in new clusters.

A new study in clusters of the data (``existing=``) is predicted by the fixed
part plus the BLUPs of those clusters' effects; its SE is the square root of the
prediction-error variance (:mod:`bayesmeta.inference.blups`), and only the terms
whose clusters are new add their variance to the prediction interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.columns import check_columns, require_frame
from ..design.encode import encode_new
from ..errors import SpecificationError, format_rows, warn
from .blups import (
    apply_transf,
    check_transf,
    conditional_moments,
    grouping_columns,
    interval,
    prediction_error,
)
from .intervals import check_level, critical_value

#: Label of the single prediction of a model without moderators.
NEW_STUDY = "new study"


@dataclass(frozen=True)
class NewRows:
    """The rows to predict.

    Attributes
    ----------
    X : numpy.ndarray (J, p)
    Z : list of numpy.ndarray
        Per covariance term, (J, q) the new study's random-effect design (NaN where
        the level of an ``inner | outer`` term is not known).
    variance : list of numpy.ndarray
        Per covariance term, (J,) the variance of the new study's effect in a new cluster.
    groups : list of numpy.ndarray
        Per covariance term, (J,) the cluster of the data each row belongs to, or -1.
    labels : numpy.ndarray
    """

    X: np.ndarray
    Z: list
    variance: list
    groups: list
    labels: np.ndarray


def predict(result, newdata: pd.DataFrame | None = None, level: float | None = None,
            transf: Callable | None = None, *, tau2_levels=None, gamma2_levels=None,
            existing=None) -> pd.DataFrame:
    """Predicted mean effects with confidence and prediction intervals.

    Parameters
    ----------
    result : ModeResult
        Anything with ``design``, ``param``, ``estimate.theta``, ``coef``, ``vcov``,
        ``df`` and ``level``.
    newdata : pandas.DataFrame, optional
        Moderator values, re-encoded through the model's formula (factors, splines
        and transforms included); also the inner column of ``inner | outer`` terms,
        the slope variables of random slopes, the scale moderators of a
        location-scale model and, with ``existing``, the grouping columns. Default:
        the rows of the data, or one row for a model without moderators, random
        slopes, ``inner | outer`` terms or scale models (as ``BayesResult.predict``).
    level : float, optional
        Probability of the intervals (default: the fit's level).
    transf : callable, optional
        Applied elementwise to ``pred`` and the limits (e.g. ``numpy.exp``); ``se``
        is then NaN, as in metafor.
    tau2_levels, gamma2_levels : str or sequence of str, optional
        The level of the ``tau2`` (first) or ``gamma2`` (second) ``inner | outer``
        term of every predicted row, or one level for all (metafor's
        ``tau2.levels``/``gamma2.levels``); they take precedence over the inner
        column of ``newdata``. Without either, a term whose level is not known
        adds its one variance if all levels share it, and otherwise makes the
        prediction interval NaN (with a warning), as metafor.
    existing : str or list of str or True, optional
        Levels (term labels such as ``"district"``, ``"district/study"``,
        ``"outcome | trial"``, or their grouping column) in which the new study
        belongs to a cluster of the data, named by the grouping columns of
        ``newdata`` (by its index for the standard model's ``"row"``); ``True``
        for every level. Naming a level of nested intercepts implies the coarser
        ones (the study's district is the one containing its school). The
        prediction then adds the BLUPs of those clusters, its ``se`` is the
        prediction-error SD (accounting for the estimated fixed effects), and the
        prediction interval adds only the variances of the other levels.

    Returns
    -------
    pandas.DataFrame
        ``pred``, ``se``, ``ci_lb``, ``ci_ub`` (Wald interval of the mean, normal or,
        with ``test="t"``, t on k - p degrees of freedom) and ``pi_lb``, ``pi_ub``
        (``pred -+ crit * sqrt(se^2 + variance of the new effects)``, with the same
        critical value), indexed by ``newdata``'s index, the rows used, or
        ``"new study"``.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> import pandas as pd
    >>> fit = bm.MetaModel("logrr ~ ablat", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
    >>> predict(fit, pd.DataFrame({"ablat": [10, 50]})).round(4)
         pred      se   ci_lb   ci_ub   pi_lb   pi_ub
    0 -0.0395  0.1866 -0.4053  0.3262 -0.6930  0.6139
    1 -1.2036  0.1716 -1.5400 -0.8672 -1.8412 -0.5661
    """
    crit = critical_value(check_level(result.level if level is None else level), result.df)
    check_transf(transf)
    chosen = _existing_terms(result.design, existing)
    rows = _new_rows(result, newdata, {"tau2": tau2_levels, "gamma2": gamma2_levels}, chosen)
    if chosen:
        moments = conditional_moments(result.design, result.param, result.estimate.theta, rows.groups, rows.Z)
        pred, se = prediction_error(result, rows.X, moments)
    else:
        pred = rows.X @ result.coef.to_numpy(float)
        se = np.sqrt(np.einsum("jp,pq,jq->j", rows.X, result.vcov.to_numpy(float), rows.X))
    new = sum((v for k, v in enumerate(rows.variance) if k not in chosen), np.zeros(len(pred)))
    ci_lb, ci_ub = interval(pred, se, crit, transf)
    pi_lb, pi_ub = interval(pred, np.sqrt(se ** 2 + new), crit, transf)
    return pd.DataFrame({"pred": apply_transf(transf, pred), "se": se if transf is None else np.nan,
                         "ci_lb": ci_lb, "ci_ub": ci_ub, "pi_lb": pi_lb, "pi_ub": pi_ub},
                        index=pd.Index(rows.labels))


def _existing_terms(design, existing) -> set[int]:
    """Indices of the covariance terms named by ``existing``, with the coarser levels of nested ones."""
    terms = [enc.term for enc in design.encodings]
    if existing is None or existing is False:
        return set()
    if existing is True:
        return set(range(len(terms)))
    keys = [existing] if isinstance(existing, str) else list(existing)
    chosen = set()
    for key in keys:
        matches = [k for k, t in enumerate(terms) if key in (t.label, t.label.split("/")[-1],
                                                              t.label.rsplit(" | ", 1)[-1])]
        if len(matches) != 1:
            raise SpecificationError(f"existing: {key!r} names {'no' if not matches else 'more than one'} level of "
                                     f"the model; its levels: {', '.join(repr(t.label) for t in terms) or 'none'}.")
        chosen.add(matches[0])
    for k in list(chosen):
        if terms[k].family == "sigma2":
            prefixes = {"/".join(terms[k].label.split("/")[:i]) for i in range(1, terms[k].label.count("/") + 1)}
            chosen.update(j for j, t in enumerate(terms) if t.family == "sigma2" and t.label in prefixes)
    return chosen


def _new_rows(result, newdata: pd.DataFrame | None, levels: dict, chosen: set[int]) -> NewRows:
    """Encode the rows to predict: fixed effects, random-effect designs, new-cluster variances, clusters."""
    design, param, theta = result.design, result.param, result.estimate.theta
    encodings = design.encodings
    G = param.covariances(theta)
    if newdata is None:
        X, labels = design.X, design.row_labels
        Z = [np.ones((design.n, 1)) if enc.Z is None else enc.Z for enc in encodings]
        groups = [enc.codes if k in chosen else np.full(design.n, -1) for k, enc in enumerate(encodings)]
        group_variances, _ = param.group_variances(theta)
        rows = param.coscale_rows(theta)
        scale = [rows[k][0] ** 2 if rows[k] is not None else group_variances[k][enc.codes]
                 for k, enc in enumerate(encodings)]
        if (X.shape[1] == 1 and np.ptp(X[:, 0]) == 0 and all(enc.Z is None for enc in encodings)
                and not param.has_scale and not chosen):
            X, labels, Z, groups = X[:1], np.array([NEW_STUDY]), [z[:1] for z in Z], [g[:1] for g in groups]
    else:
        require_frame(newdata, "newdata")
        X, labels = encode_new(design.model_spec.rhs, newdata, "newdata"), newdata.index.to_numpy()
        Z = [_new_design(enc, newdata) for enc in encodings]
        groups = [_cluster_codes(enc, newdata) if k in chosen else np.full(len(newdata), -1)
                  for k, enc in enumerate(encodings)]
        scale = [None if _variance_model(param, k) is None or k in chosen
                 else np.exp(_variance_model(param, k).new_W(newdata) @ param.alpha(theta)[param.alpha_slice(k)])
                 for k in range(len(encodings))]
    Z = _with_levels(encodings, Z, levels, len(X))
    variance = [scale[k] if _variance_model(param, k) is not None else _new_cluster_variance(enc, z, g, k in chosen)
                for k, (enc, z, g) in enumerate(zip(encodings, Z, G))]
    return NewRows(X, Z, variance, groups, labels)


def _variance_model(param, k: int):
    """The ScaleDesign of term k's variance (a random intercept's, or a structured term's cells'), or None."""
    coscale = param.coscale_of(k)
    return param.scale_of(k) if coscale is None else coscale.tau


def _new_cluster_variance(enc, z: np.ndarray, G: np.ndarray, existing: bool) -> np.ndarray:
    """``z' G z`` of every new row; where the level of an ``inner | outer`` term is not known, its one
    variance if all levels share it, NaN (with a warning) otherwise."""
    unknown = np.isnan(z).any(axis=1)
    if unknown.any() and existing:
        raise SpecificationError(f"existing: the level of {enc.inner!r} in {enc.term.label!r} is needed for a "
                                 "cluster of the data: give it as a column of newdata or by tau2_levels/gamma2_levels.")
    z = np.where(unknown[:, None], 0.0, z)
    variance = np.einsum("jq,qr,jr->j", z, G, z)
    if unknown.any():
        shared = np.allclose(np.diag(G), G[0, 0], rtol=1e-12, atol=0.0)
        variance[unknown] = G[0, 0] if shared else np.nan
        if not shared:
            warn(f"predict: the levels of {enc.inner!r} are not known, so the prediction intervals cannot "
                          f"add the variance of {enc.term.label!r}; give {enc.term.family}_levels= or a column "
                          f"{enc.inner!r} in newdata.", UserWarning)
    return variance


def _new_design(enc, newdata: pd.DataFrame) -> np.ndarray:
    """The random-effect design of one term on new rows (NaN rows: an ``inner`` column not given)."""
    if enc.inner is not None and enc.inner not in newdata.columns:
        return np.full((len(newdata), enc.term.q), np.nan)
    check_columns(newdata, "newdata", sorted(enc.columns))
    return enc.new_z(newdata)


def _with_levels(encodings, Z: list, levels: dict, n: int) -> list:
    """Replace the designs of the ``inner | outer`` terms whose levels are given (tau2_levels, gamma2_levels)."""
    Z = list(Z)
    for family, values in levels.items():
        if values is None:
            continue
        argument = f"{family}_levels"
        matches = [k for k, enc in enumerate(encodings) if enc.term.family == family and enc.inner is not None]
        if not matches:
            raise SpecificationError(f"{argument}: the model has no '~ inner | outer' term with {family} components.")
        term = encodings[matches[0]].term
        values = [str(values)] * n if np.ndim(values) == 0 else [str(v) for v in values]
        if len(values) != n:
            raise SpecificationError(f"{argument}: expected one level or {n} (one per predicted row), "
                                     f"got {len(values)}.")
        unknown = sorted(set(values) - set(term.levels))
        if unknown:
            raise SpecificationError(f"{argument}: level(s) {unknown} not in {term.label!r} "
                                     f"(levels: {list(term.levels)}).")
        Z[matches[0]] = (np.array(values)[:, None] == np.array(term.levels)[None, :]).astype(float)
    return Z


def _cluster_codes(enc, newdata: pd.DataFrame) -> np.ndarray:
    """The code of the cluster of the data that every new row names (grouping columns or index)."""
    columns = grouping_columns(enc.term)
    if columns is None:
        keys = newdata.index.tolist()
    else:
        check_columns(newdata, f"newdata (existing clusters of {enc.term.label!r})", list(columns))
        keys = (newdata[columns[0]].tolist() if len(columns) == 1
                else ["/".join(map(str, values)) for values in newdata[list(columns)].to_numpy()])
    lookup = {g: i for i, g in enumerate(enc.groups)}
    codes = np.array([lookup.get(key, -1) for key in keys], dtype=int)
    if (codes < 0).any():
        missing = [key for key, c in zip(keys, codes) if c < 0]
        raise SpecificationError(f"newdata: cluster(s) {format_rows(missing)} of {enc.term.label!r} are not in the "
                                 "data the model was fitted on (existing=).")
    return codes
