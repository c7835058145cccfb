"""Confidence intervals, standard errors and profiles of variance components, as metafor's
``confint`` and ``profile``, and the variance-component rows of the result table.

Intervals (:func:`confint`)
    ``method="profile"``: profile likelihood (:mod:`bayesmeta.inference.profile`),
    metafor's ``confint.rma.mv`` / ``confint.rma.ls`` (and ``confint.rma.uni(type =
    "PL")`` for the standard model). ``method="qprofile"``: the Q-profile interval of
    the standard model's tau^2 (:mod:`bayesmeta.inference.qprofile`), metafor's
    default for ``rma()`` and the default here for the standard model. For the
    standard model both give metafor's rows ``tau2, tau, I2, H2``.
Standard errors (:func:`component_se`)
    The standard model's tau^2 (ML, REML): metafor's ``se.tau2``, the inverse
    Fisher information (``sqrt(2 / sum(w^2))`` under ML, ``sqrt(2 / tr(P P))``
    under REML, ``w = 1 / (v + tau^2)``; ``fit.se_tau2``). Every other
    component: the inverse Hessian of the negative (restricted) log-likelihood
    in the unconstrained parameters of the fit, over every free parameter off
    its boundary, carried to the variance and correlation scale by the delta
    method; the same quantity as metafor's ``rma.mv(..., cvvc = TRUE)``
    (``sqrt(diag(fit$vvc))``, a numerical Hessian on the variance scale),
    which metafor does not print. NaN for components on their boundary (a
    variance of 0, a correlation of +-1) and for fixed ones.

Everything computed is kept in a ``cache`` dict that the result passes in
(profiles with their solved points, bounds, standard errors), so that
``table()``, ``confint()``, ``profile()`` and :func:`bayesmeta.compare` never
compute anything twice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..design.parameters import BOUNDARY_THETA, finite
from ..engines.mode.curvature import covariance, hessian
from ..engines.mode.objective import Objective
from ..errors import BoundaryWarning, SpecificationError, warn
from .intervals import check_level
from .profile import Component, ProfileLikelihood, free_components
from .qprofile import Bounds, heterogeneity_rows, q_profile

METHODS = ("profile", "qprofile")
#: The columns of :func:`confint`.
COLUMNS = ["estimate", "ci_lb", "ci_ub"]


def is_standard(fit) -> bool:
    """The standard random-effects model (one row-level effect, no scale model)."""
    return bool(fit.is_standard and not fit.is_location_scale)


def natural_jacobian(param, theta: np.ndarray) -> np.ndarray:
    """d(variances, correlations, scale coefficients)/d theta, in theta order (block diagonal)."""
    J, pos = np.zeros((param.n_free, param.n_free)), 0
    for k, (term, (sd, _), fs, fr, size) in enumerate(zip(param.terms, param.natural(finite(theta)),
                                                           param.fixed_sd, param.fixed_rho, param.sizes())):
        sc = param.scale_of(k)
        if sc is not None:
            J[pos:pos + size, pos:pos + size] = sc.transform
        else:
            n_sd, n_rho = int(np.isnan(fs).sum()), int(np.isnan(fr).sum())
            J[np.arange(pos, pos + n_sd), np.arange(pos, pos + n_sd)] = 2 * sd[np.isnan(fs)] ** 2
            if n_rho:
                block = slice(pos + n_sd, pos + size)
                J[block, block] = term.structure.correlation.theta_jacobian(finite(theta[block]), term.q)
        pos += size
    return J


def hessian_se(fit) -> np.ndarray:
    """Delta-method SEs of every free parameter (theta order, natural scale) from the inverse Hessian."""
    param, theta = fit.param, np.asarray(fit.estimate.theta, dtype=float)
    se = np.full(param.n_free, np.nan)
    idx = np.flatnonzero(np.isfinite(theta) & param.interior(theta, BOUNDARY_THETA))
    if len(idx) == 0:
        return se
    objective = Objective(fit.design, param, fit.method == "REML")
    H = hessian(objective.gradient, finite(theta), idx)
    J = natural_jacobian(param, theta)[np.ix_(idx, idx)]
    try:
        cov = covariance(H, J)
    except np.linalg.LinAlgError:
        return se
    se[idx] = np.sqrt(np.diag(cov))
    return se


def component_se(fit, cache: dict | None = None) -> pd.Series:
    """Standard errors of the free variance components and correlations (see the module's definitions).

    Parameters
    ----------
    fit : result
        An ML or REML fit (the result contract's ``design``, ``param``, ``estimate``,
        ``method``, ``se_tau2``, ...).
    cache : dict, optional

    Returns
    -------
    pandas.Series
        Indexed by table label (``sigma2[...]``, ``tau2[...]``, ``rho[...]``, ...).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> school = bm.datasets.load("school")
    >>> fit = bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study").fit()
    >>> component_se(fit).round(4)
    sigma2[district]          0.0355
    sigma2[district/study]    0.0111
    Name: se, dtype: float64
    """
    cache = {} if cache is None else cache
    if "se" not in cache:
        comps = [c for c in free_components(fit) if c.kind != "scale"]
        values = hessian_se(fit)[[c.index for c in comps]] if comps else np.zeros(0)
        if is_standard(fit) and comps and np.isfinite(fit.se_tau2):
            values = np.array([fit.se_tau2])
        cache["se"] = pd.Series(values, index=[c.label for c in comps], name="se", dtype=float)
    return cache["se"].copy()


def _check_fit(fit, what: str) -> None:
    if fit.method not in ("ML", "REML"):
        raise SpecificationError(f"{what}: profile likelihoods need an ML or REML fit, not {fit.method}.")


def _profile(fit, comp: Component, cache: dict) -> ProfileLikelihood:
    key = ("profile", comp.label)
    if key not in cache:
        cache[key] = ProfileLikelihood(fit, comp)
    return cache[key]


def _bounds(fit, comps: list[Component], level: float, cache: dict, progressbar: bool) -> dict[str, Bounds]:
    """Both profile-likelihood bounds of every component (kept in ``cache``), with a progress bar."""
    from tqdm.auto import tqdm

    se = component_se(fit, cache)
    out = {}
    # disable is left to tqdm's default when shown, so that TQDM_DISABLE=1 (executed notebooks) silences it
    with tqdm(total=2 * len(comps), desc="confint", delay=1.0, **({} if progressbar else {"disable": True})) as bar:
        for comp in comps:
            key = ("bounds", comp.label, level)
            if key not in cache:
                prof = _profile(fit, comp, cache)
                hint = comp.se if comp.kind == "scale" else se.get(comp.label, np.nan)
                lower = prof.bound("lower", level, hint)
                bar.update()
                upper = prof.bound("upper", level, hint)
                cache[key] = Bounds(lower.lower, upper.upper, lower.lower_sign, upper.upper_sign)
                bar.update()
            else:
                bar.update(2)
            out[comp.label] = cache[key]
    return out


def _q_bounds(fit, level: float, cache: dict) -> Bounds:
    key = ("qprofile", level)
    if key not in cache:
        cache[key] = q_profile(fit.design, float(fit.tau2.iloc[0]), level)
    return cache[key]


def _frame(rows: pd.DataFrame, signs: dict, method: str, level: float) -> pd.DataFrame:
    """The interval table with metafor's signs and the method in ``attrs``, warning about open bounds."""
    for label, b in signs.items():
        if b.null:
            warn(f"{label}: the upper and lower CI bounds both fall below {b.upper:g}; the CI is "
                          "therefore the null/empty set (reported as [0, 0]).", BoundaryWarning)
        for side, sign, value in (("lower", b.lower_sign, b.lower), ("upper", b.upper_sign, b.upper)):
            if sign and not b.null:
                warn(f"{label}: the {side} bound lies beyond the searched interval; reported as its end "
                              f"{value:.6g} (metafor prints {sign}{value:.4f}).", BoundaryWarning)
    frame = rows[COLUMNS].copy()
    frame.attrs = {"method": method, "level": level,
                   "lb_sign": {label: b.lower_sign for label, b in signs.items()},
                   "ub_sign": {label: b.upper_sign for label, b in signs.items()},
                   "ci_null": any(b.null for b in signs.values())}
    return frame


def confint(fit, level: float = 0.95, method: str | None = None, *, cache: dict | None = None,
            progressbar: bool = True) -> pd.DataFrame:
    """Confidence intervals of the variance components (and scale coefficients), as metafor's ``confint``.

    Parameters
    ----------
    fit : result
        An ML or REML fit (any fit of the standard model for ``"qprofile"``).
    level : float
    method : {"profile", "qprofile"}, optional
        Default ``"qprofile"`` for the standard model (metafor's default for
        ``rma()``), ``"profile"`` otherwise.
    cache : dict, optional
        Where profiles and bounds are kept between calls.
    progressbar : bool
        Show a tqdm progress bar when the profiles take more than a second.

    Returns
    -------
    pandas.DataFrame
        Columns ``estimate, ci_lb, ci_ub``; rows the table labels of every free
        component (``alpha[...]``, ``sigma2[...]``, ``tau2[...]``, ``rho[...]``, ...), or
        ``tau2, tau, I2, H2`` for the standard model (I2 in percent). ``attrs``
        holds ``method``, ``level``, metafor's signs of the bounds (``lb_sign`` and
        ``ub_sign`` by row: ``"<"`` / ``">"`` where the bound lies beyond the end of
        the searched interval, reported as that end) and ``ci_null`` (the Q-profile
        interval is the null set: both bounds 0).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
    ...                    random="~ 1 | district/study").fit()
    >>> confint(fit).round(4)
                            estimate   ci_lb   ci_ub
    sigma2[district]          0.0651  0.0222  0.2072
    sigma2[district/study]    0.0327  0.0163  0.0628
    """
    level = check_level(level)
    cache = {} if cache is None else cache
    standard = is_standard(fit)
    method = method if method is not None else "qprofile" if standard else "profile"
    if method not in METHODS:
        raise SpecificationError(f"method: expected 'profile' or 'qprofile', got {method!r}.")
    if method == "qprofile":
        if not standard:
            raise SpecificationError("method: 'qprofile' is for the standard random-effects model (random=None, no "
                                     "scale model); use method='profile'.")
        if fit.method in ("FE", "MAP") or fit.param.n_free == 0:
            raise SpecificationError("confint: the model has no estimated tau^2.")
        bounds = _q_bounds(fit, level, cache)
        return _frame(heterogeneity_rows(float(fit.tau2.iloc[0]), bounds, fit.vt), {"tau2": bounds}, method, level)
    _check_fit(fit, "confint")
    comps = free_components(fit)
    if not comps:
        scale = " (the scale model's coefficients have Wald intervals: fit.alpha_ci, fit.zeta_ci)" \
            if fit.param.has_scale else ""
        raise SpecificationError(f"confint: the model has no estimated variance components{scale}.")
    signs = _bounds(fit, comps, level, cache, progressbar)
    if standard:
        b = signs[comps[0].label]
        return _frame(heterogeneity_rows(comps[0].estimate, b, fit.vt), {"tau2": b}, method, level)
    frame = pd.DataFrame([[c.estimate, signs[c.label].lower, signs[c.label].upper] for c in comps],
                         index=[c.label for c in comps], columns=COLUMNS)
    return _frame(frame, signs, method, level)


def find_component(fit, component: str) -> Component:
    """The free component a user names: its table label, or a family with one free component."""
    comps = free_components(fit)
    labels = [c.label for c in comps]
    if not isinstance(component, str):
        raise SpecificationError(f"component: expected a label such as {labels[:1]}, got {component!r}.")
    matches = [c for c in comps if c.label == component or c.label.split("[")[0] == component]
    if len(matches) != 1:
        what = "is ambiguous" if matches else "is not a free component of the model"
        scale = (" (profiles of scale-model coefficients are not available; see their Wald intervals, "
                 "fit.alpha_ci and fit.zeta_ci)" if fit.param.has_scale else "")
        raise SpecificationError(f"component: {component!r} {what}; choose one of {labels}{scale}.")
    return matches[0]


def profile(fit, component: str, points: int = 20, bounds=None, *, cache: dict | None = None,
            progressbar: bool = True) -> pd.DataFrame:
    """The profile (restricted) log-likelihood of one component on a grid, as metafor's ``profile``.

    Parameters
    ----------
    fit : result
        An ML or REML fit.
    component : str
        Table label (``"sigma2[district]"``, ``"rho[outcome | trial]"``, ``"alpha[length]"``),
        or a family name when the model has one free component of it (``"tau2"``).
    points : int
        Number of grid points (metafor's ``steps``).
    bounds : tuple of float, optional
        Ends of the grid (metafor's ``xlim``). Default as metafor: variances
        ``[max(0, v/4), max(0.1, 4 v)]`` (standard model: from ``min(tau^2, lower
        Q-profile bound)`` to ``max(0.1, tau^2, upper bound)`` at the fit's level), correlations ``v -+
        0.5`` within ``(-0.99999, 0.99999)``, scale coefficients ``v -+ 2.576 se``.
    cache : dict, optional
    progressbar : bool

    Returns
    -------
    pandas.DataFrame
        ``value`` (the component, on the variance scale for variances), ``loglik``
        (the profile log-likelihood, restricted under REML, with the constants of
        ``fit.loglik``) and ``beta[name]`` (the fixed effects at each point). ``attrs``:
        ``component`` (its label), ``estimate``, ``loglik`` (the fit's) and ``method``.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
    ...                    random="~ 1 | district/study").fit()
    >>> profile(fit, "sigma2[district]", points=3).round(4)
        value   loglik  beta[Intercept]
    0  0.0163 -10.9799           0.1716
    1  0.1383  -8.8262           0.1853
    2  0.2602 -10.6046           0.1850
    """
    _check_fit(fit, "profile")
    cache = {} if cache is None else cache
    comp = find_component(fit, component)
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise SpecificationError(f"points: expected an integer >= 2, got {points!r}.")
    if bounds is None:
        if comp.standard:
            b = _q_bounds(fit, fit.level, cache)
            bounds = (min(comp.estimate, b.lower), max(0.1, comp.estimate, b.upper))
        else:
            bounds = comp.default_range()
    lo, hi = _check_bounds(comp, bounds)
    grid = np.linspace(lo, hi, points)
    prof = _profile(fit, comp, cache)
    lls, thetas = prof.curve(grid, progressbar)
    betas = np.array([prof.objective.evaluate(finite(t)).beta for t in thetas])
    frame = pd.DataFrame({"value": grid, "loglik": lls})
    for j, name in enumerate(fit.design.coef_names):
        frame[f"beta[{name}]"] = betas[:, j]
    frame.attrs = {"component": comp.label, "estimate": comp.estimate, "loglik": float(fit.loglik),
                   "method": fit.method}
    return frame


def _check_bounds(comp: Component, bounds) -> tuple[float, float]:
    try:
        lo, hi = sorted(float(b) for b in bounds)
    except (TypeError, ValueError):
        raise SpecificationError(f"bounds: expected two numbers, got {bounds!r}.") from None
    edge = {"variance": (0.0, np.inf), "correlation": (comp.lower_edge, 1.0)}.get(comp.kind, (-np.inf, np.inf))
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < edge[0] or hi > edge[1] or lo == hi:
        raise SpecificationError(f"bounds: {bounds!r} must be two different finite values within "
                                 f"[{edge[0]:g}, {edge[1]:g}] for {comp.label}.")
    return lo, hi


def component_table(fit, cache: dict | None = None, progressbar: bool = True) -> pd.DataFrame:
    """The variance-component rows of ``fit.table()``: estimate, SE and confidence interval.

    Every component of the model (fixed ones with NaN SE and interval), indexed
    by table label. The interval is the Q-profile interval for the standard
    model and the profile-likelihood interval otherwise, at the fit's level; the
    SE as :func:`component_se`. FE and MAP fits get NaN; fits of the standard
    model by a moment estimator (``"DL"``, ...) get the Q-profile interval and
    metafor's ``se.tau2`` of that estimator. Scale coefficients are not profiled
    here (the table shows their Wald intervals).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    >>> component_table(model.fit()).round(4)
                            estimate      se   ci_lb   ci_ub
    sigma2[district]          0.0651  0.0355  0.0222  0.2072
    sigma2[district/study]    0.0327  0.0111  0.0163  0.0628
    """
    cache = {} if cache is None else cache
    c = fit.components
    labels = [f"{f}[{n}]" for f, n in zip(c["family"], c["name"])]
    table = pd.DataFrame({"estimate": c["estimate"].to_numpy(float)}, index=labels)
    table["se"], table["ci_lb"], table["ci_ub"] = np.nan, np.nan, np.nan
    if fit.method in ("FE", "MAP") or fit.param.n_free == 0:
        return table
    if is_standard(fit):
        b = _q_bounds(fit, fit.level, cache)
        se = component_se(fit, cache).iloc[0] if fit.method in ("ML", "REML") else fit.se_tau2
        table.iloc[0, 1:] = [se, b.lower, b.upper]
        return table
    comps = [comp for comp in free_components(fit) if comp.kind != "scale"]
    if fit.method not in ("ML", "REML") or not comps:
        return table
    bounds = _bounds(fit, comps, fit.level, cache, progressbar)
    se = component_se(fit, cache)
    for comp in comps:
        table.loc[comp.label, ["se", "ci_lb", "ci_ub"]] = [se[comp.label], bounds[comp.label].lower,
                                                           bounds[comp.label].upper]
    return table
