"""Profile likelihood of one variance parameter of an ML/REML fit, as metafor's ``profile`` and ``confint``.

A *component* is one free variance parameter under its result-table label: a
variance (``sigma2[...]``, ``tau2[...]``, ``gamma2[...]``), a correlation
(``rho[...]``, ``phi[...]``) or a scale coefficient (``alpha[...]``). Its profile
log-likelihood at a value ``v`` is the fit's (restricted) log-likelihood
maximised over every other free variance parameter with the component held at
``v`` (the fixed effects are profiled out as in the fit), with the constants of
``fit.loglik``: metafor's ``profile.rma.mv`` / ``profile.rma.ls``.

Holding a component at ``v`` is one linear constraint ``a' theta = c(v)`` on the
unconstrained parameters of the fit's
:class:`~bayesmeta.design.parameters.Parameterization`: an SD (``c = log(sqrt(v) /
sd_unit)``) and a single correlation are one coordinate of theta, a scale
coefficient is a row of the map from theta to alpha. A correlation of an
unstructured matrix with more than two levels is one coordinate once the
canonical partial correlations are taken with its two levels first
(:class:`PermutedUnstructured`). Every profile point is the maximum over the
other coordinates, ``theta = base(v) + N u`` with N an orthonormal basis of the
constraint's null space, by L-BFGS-B on the block likelihood with its analytic
gradient (an SD's coordinate is kept above :data:`SD_FLOOR`, where the variance
is zero for all purposes). It starts from the points already solved
(warm start: the nearest one, or the line through the two nearest); an SD that
ends on its boundary although the likelihood rises inwards (the gradient of a
log SD is flat there, not zero) is restarted from inside. With
``thorough=True`` the fit's own optimum, projected onto the constraint, is a
further start: the profile of a location-scale model's coefficients is bimodal
(its refits by metafor's default optimizer land on a local optimum and metafor
reports the jump to it as a bound). Every confidence bound is checked that way:
if the profile there is higher from the fit's optimum than from the warm start,
or the "root" is a jump across the cut-off rather than a crossing, the bound is
searched again with every point maximised from both starts
(:meth:`ProfileLikelihood.bound`).

Confidence bounds solve ``2 (logLik_max - logLik_profile(v)) = qchisq(level, 1)``
on metafor's search intervals (``confint.rma.mv``, ``confint.rma.ls``,
``confint.rma.uni(type = "PL")``): variances ``[0, max(10, 100 v)]`` (standard
model ``[0, max(100, 10 v)]``); correlations ``[-1, 1]`` (``[min(0, v), 1]`` for
AR and HAR; for CS with q > 2 levels the lower end is the edge of the parameter
space, ``-1/(q - 1)``, where metafor starts at -1 and its refits fail); scale
coefficients ``v -+ min(10 |v|, 10 z se)``. A bound that reaches the end of the
interval is that end: without a sign when the end is the edge of the parameter
space (a variance of 0, a correlation of +-1), with ``"<"`` / ``">"`` otherwise.
The roots are found on a scale where the profile is nearly quadratic (log
variance, Fisher's z of a correlation), from the Wald bound on that scale.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..design.parameters import BOUNDARY_THETA, Parameterization
from ..engines.mode.objective import Objective
from ..errors import ConvergenceWarning, SpecificationError, warn
from ..spec.structures import (
    Unstructured,
    correlation_to_cpc,
    cpc_to_correlation,
    lower_pairs,
)
from .intervals import chi2_quantile, critical_value
from .qprofile import Bounds

#: Smallest unconstrained SD parameter of a profile fit (variance ~1e-26 sd_unit^2: zero for all purposes).
SD_FLOOR = -30.0
#: Correlations are held at most this far inside +-1 (their unconstrained parameter stays finite).
RHO_MARGIN = 1e-12
#: Absolute tolerance of the roots on the search scale (relative for variances).
ROOT_TOL = 1e-10
#: A profile log-likelihood this much above the fit's means the fit is not the maximum (metafor's lltol).
LLTOL = 1e-3
#: A bound is searched again from every start when the check from the fit's optimum moves the
#: profile log-likelihood there by more than this (a local optimum, not the refits' rounding).
CHECK_TOL = 1e-5
#: metafor's structures whose correlation is searched from min(0, estimate) (confint.rma.mv).
NONNEGATIVE_SEARCH = ("AR", "HAR")
#: Largest number of outward steps before the end of the search interval is tried.
MAX_STEPS = 4


class PermutedUnstructured(Unstructured):
    """Unstructured correlations through canonical partial correlations in another level order.

    With ``order = [j, i, ...]`` the first unconstrained parameter is ``arctanh(rho_ij)``,
    so that the correlation of levels i and j is one coordinate of theta.

    Examples
    --------
    >>> c = PermutedUnstructured([1, 2, 0])
    >>> rho = np.array([0.3, -0.2, 0.5])          # pairs (1, 0), (2, 0), (2, 1)
    >>> np.round(np.tanh(c.to_theta(rho, 3)[0]), 6), np.allclose(c.from_theta(c.to_theta(rho, 3), 3), rho)
    (np.float64(0.5), True)
    """

    def __init__(self, order):
        self.order = np.asarray(order)
        self.inverse = np.argsort(self.order)

    def from_theta(self, theta, q):
        R = cpc_to_correlation(np.tanh(theta), q)
        return R[np.ix_(self.inverse, self.inverse)][lower_pairs(q)]

    def to_theta(self, rho, q):
        R = self.matrix(np.asarray(rho, float), q)
        z = correlation_to_cpc(R[np.ix_(self.order, self.order)])
        return np.arctanh(np.clip(z, -1 + RHO_MARGIN, 1 - RHO_MARGIN))


@dataclass(frozen=True)
class Component:
    """One free variance parameter, how to hold it fixed and where to search its bounds.

    Attributes
    ----------
    label : str
        Its result-table label, e.g. ``"sigma2[district]"``.
    kind : {"variance", "correlation", "scale"}
    estimate : float
        The fit's estimate (variance scale for variances).
    se : float
        Its standard error where known (scale coefficients; NaN otherwise).
    param : Parameterization
        The parameterisation the profile works in (the fit's, or re-charted for a
        correlation of an unstructured matrix).
    theta : numpy.ndarray
        The fit's estimate in that parameterisation.
    direction : numpy.ndarray
        ``a`` of the constraint ``a' theta = c(value)``.
    position : int
        The coordinate of theta held fixed (variances, correlations); -1 for scale coefficients.
    index : int
        Its place among the fit's free parameters (the fit's theta order): the row of
        its standard error in :func:`bayesmeta.inference.component_intervals.hessian_se`.
    lower_edge : float
        The edge of the parameter space below (0, -1, the CS bound, or -inf).
    structure : str
        Name of the term's structure (searched ranges of correlations follow metafor's).
    standard : bool
        The standard model's tau^2 (metafor's ``confint.rma.uni`` search interval).
    """

    label: str
    kind: str
    estimate: float
    se: float
    param: Parameterization
    theta: np.ndarray
    direction: np.ndarray
    position: int
    index: int
    lower_edge: float = -np.inf
    structure: str = ""
    standard: bool = False

    def coordinate(self, value: float) -> float:
        """``c(value)``: what ``a' theta`` is when the component equals ``value``."""
        if self.kind == "variance":
            with np.errstate(divide="ignore"):
                return 0.5 * np.log(value) - np.log(self.param.sd_unit)
        if self.kind == "correlation":
            value = float(np.clip(value, self.lower_edge + RHO_MARGIN, 1 - RHO_MARGIN))
            k, q = self._term()
            correlation = self.param.terms[k].structure.correlation
            if correlation.n_rho(q) == 1:
                return float(correlation.to_theta(np.array([value]), q)[0])
            return float(np.arctanh(value))
        return float(value)

    def _term(self) -> tuple[int, int]:
        starts = np.cumsum([0] + self.param.sizes())
        k = int(np.searchsorted(starts, self.position, side="right") - 1)
        return k, self.param.terms[k].q

    def to_search(self, value) -> np.ndarray:
        """The scale on which bounds are searched: log variance, Fisher's z, alpha itself."""
        value = np.asarray(value, dtype=float)
        with np.errstate(divide="ignore"):
            if self.kind == "variance":
                return np.log(value)
            if self.kind == "correlation":
                return np.arctanh(value)
        return value

    def from_search(self, s) -> np.ndarray:
        s = np.asarray(s, dtype=float)
        return np.exp(s) if self.kind == "variance" else np.tanh(s) if self.kind == "correlation" else s

    def search_scale_sd(self, se: float) -> float:
        """An SE on the natural scale carried to the search scale (delta method)."""
        v = np.float64(self.estimate)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = 1 / v if self.kind == "variance" else 1 / (1 - v ** 2) if self.kind == "correlation" else 1.0
            return float(abs(se * slope))

    def search_interval(self, level: float) -> tuple[float, float, bool, bool]:
        """metafor's search interval: ends, and whether each is the edge of the parameter space."""
        v = self.estimate
        if self.kind == "variance":
            upper = max(100.0, 10 * v) if self.standard else (10.0 if v <= np.sqrt(np.finfo(float).eps)
                                                              else max(10.0, 100 * v))
            return 0.0, upper, True, False
        if self.kind == "correlation":
            lower = min(0.0, v) if self.structure in NONNEGATIVE_SEARCH else self.lower_edge
            return lower, 1.0, lower <= self.lower_edge, True
        if np.isnan(self.se):
            return v - 10 * abs(v), v + 10 * abs(v), False, False
        half = min(10 * abs(v), 10 * critical_value(level) * self.se)
        return v - half, v + half, False, False

    def default_range(self) -> tuple[float, float]:
        """metafor's default range of a profile plot (``profile.rma.mv`` / ``profile.rma.ls``)."""
        v = self.estimate
        if self.kind == "variance":
            return max(0.0, v / 4), max(0.1, 4 * v)
        if self.kind == "correlation":
            return max(-0.99999, v - 0.5), min(0.99999, v + 0.5)
        half = 4 * abs(v) if np.isnan(self.se) else critical_value(0.99) * self.se
        return v - half, v + half


def _permuted(param: Parameterization, k: int, order) -> Parameterization:
    """``param`` with the correlations of term k charted by :class:`PermutedUnstructured`."""
    term = param.terms[k]
    structure = replace(term.structure, correlation=PermutedUnstructured(order))
    terms = tuple(replace(t, structure=structure) if j == k else t for j, t in enumerate(param.terms))
    return replace(param, terms=terms)


def free_components(fit) -> list[Component]:
    """Every free variance parameter of a fit, in result-table order (scale coefficients first).

    Parameters
    ----------
    fit : result
        Anything with the result contract's ``param``, ``estimate``, ``alpha_se``,
        ``is_standard`` and ``is_location_scale``.

    Returns
    -------
    list of Component

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
    ...                    random="~ 1 | district/study").fit()
    >>> [c.label for c in free_components(fit)]
    ['sigma2[district]', 'sigma2[district/study]']
    """
    param, theta = fit.param, np.asarray(fit.estimate.theta, dtype=float)
    n = param.n_free
    standard = bool(fit.is_standard and not fit.is_location_scale)
    scale, variances = [], []
    A, alpha, alpha_names, alpha_row = param.alpha_transform(), param.alpha(theta), param.alpha_names(), 0
    alpha_positions = param.alpha_positions()
    pos = 0
    for k, (term, (sd, rho), fs, fr, size) in enumerate(zip(param.terms, fit.estimate.natural, param.fixed_sd,
                                                             param.fixed_rho, param.sizes())):
        sc = param.scale_of(k)
        if sc is not None:
            for _ in range(sc.r):
                scale.append(Component(f"alpha[{alpha_names[alpha_row]}]", "scale", float(alpha[alpha_row]),
                                       float(fit.alpha_se.iloc[alpha_row]), param, theta, A[alpha_row], -1,
                                       int(alpha_positions[alpha_row])))
                alpha_row += 1
            pos += size
            continue
        for i in np.flatnonzero(np.isnan(fs)):
            variances.append(Component(f"{term.family}[{term.sd_label(i)}]", "variance", float(sd[i]) ** 2,
                                       np.nan, param, theta, np.eye(n)[pos], pos, pos, 0.0,
                                       term.structure.name, standard))
            pos += 1
        free_r = np.flatnonzero(np.isnan(fr))
        for r in free_r:
            chart, at = param, pos + r
            rows, cols = lower_pairs(term.q)
            if len(free_r) > 1 and cols[r] > 0:  # not one coordinate: chart with levels (j, i) first
                order = [cols[r], rows[r]] + [x for x in range(term.q) if x not in (cols[r], rows[r])]
                chart, at = _permuted(param, k, order), pos
            chart_theta = chart.theta_from_natural(fit.estimate.natural, alpha) if chart is not param else theta
            variances.append(Component(f"{term.correlation_family}[{term.rho_label(r)}]", "correlation",
                                       float(rho[r]), np.nan, chart, chart_theta, np.eye(n)[at], at, pos + r,
                                       term.structure.rho_lower_bound(term.q), term.structure.name))
        pos += len(free_r)
    return scale + variances


class ProfileLikelihood:
    """The profile (restricted) log-likelihood of one component, with every solved point kept.

    Parameters
    ----------
    fit : result
        Anything with the result contract's ``design``, ``method`` and ``loglik``.
    component : Component

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
    ...                    random="~ 1 | district/study").fit()
    >>> prof = ProfileLikelihood(fit, free_components(fit)[0])
    >>> round(prof.loglik(0.0650619), 6) == round(fit.loglik, 6), round(prof.loglik(0.2), 4)
    (True, -9.7741)
    >>> b = prof.bound("upper", 0.95)
    >>> round(b.upper, 5), b.upper_sign
    (0.20724, '')
    """

    def __init__(self, fit, component: Component):
        if fit.method not in ("ML", "REML"):
            raise SpecificationError(f"profile: needs an ML or REML fit, not {fit.method}.")
        self.component = component
        self.loglik_max = float(fit.loglik)
        self.objective = Objective(fit.design, component.param, fit.method == "REML")
        a = component.direction
        n = len(a)
        self.support, self.norm2 = np.flatnonzero(a), float(a @ a)
        sd_positions = set(component.param.free_sd_positions())
        columns = [np.eye(n)[:, j] for j in range(n) if j not in self.support]
        sd_columns = [j in sd_positions for j in range(n) if j not in self.support]
        if len(self.support) > 1:  # the null space of a within its support (scale coefficients)
            null = np.linalg.svd(a[self.support][None, :])[2][1:]
            for row in null:
                column = np.zeros(n)
                column[self.support] = row
                columns.append(column)
                sd_columns.append(False)
        self.N = np.column_stack(columns) if columns else np.zeros((n, 0))
        self.sd_columns = np.array(sd_columns, dtype=bool)
        self.solved: dict[float, tuple[float, np.ndarray]] = {component.estimate: (self.loglik_max, component.theta)}
        self.checked: set[float] = set()
        self.higher = -np.inf

    # one profile point ---------------------------------------------------------

    def _base(self, value: float) -> np.ndarray:
        base = np.zeros(len(self.component.direction))
        a = self.component.direction
        base[self.support] = a[self.support] * self.component.coordinate(value) / self.norm2
        return base

    def _to_u(self, theta: np.ndarray, base: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=float).copy()
        sd = self.component.param.free_sd_positions()
        theta[sd] = np.maximum(theta[sd], SD_FLOOR)
        diff = np.where(np.isfinite(base) & np.isfinite(theta), theta - base, 0.0)
        return self.N.T @ diff

    def _distance(self, a: float, b: float) -> tuple[bool, float]:
        """How far two values are: on the search scale where both are finite there, else on the natural one."""
        with np.errstate(invalid="ignore"):
            d = abs(float(self.component.to_search(a) - self.component.to_search(b)))
        return (False, d) if np.isfinite(d) else (True, abs(a - b))

    def _warm_start(self, value: float) -> np.ndarray:
        """The maximiser at the nearest solved point, or the line through the two nearest solved
        points (on the search scale) where the value lies between them or just beyond."""
        near = sorted(self.solved, key=lambda v: self._distance(v, value))[:2]
        theta = self.solved[near[0]][1]
        if len(near) == 2:
            s, s1, s2 = (float(self.component.to_search(v)) for v in (value, *near))
            other = self.solved[near[1]][1]
            if np.all(np.isfinite([s, s1, s2])) and np.all(np.isfinite(theta) & np.isfinite(other)) \
                    and s1 != s2 and abs(s - s1) <= 2 * abs(s2 - s1):
                return theta + (other - theta) * (s - s1) / (s2 - s1)
        return theta

    def _maximise(self, base: np.ndarray, u0: np.ndarray) -> tuple[float, np.ndarray]:
        """The maximum over u from ``u0``; an SD left on its boundary although the likelihood
        rises inwards (its gradient is flat there, not zero) is restarted from inside."""
        # slow to import: loaded with the first profile
        from scipy.optimize import minimize

        if len(u0) == 0:
            return -self.objective(base)[0], base

        def f(u):
            value, grad = self.objective(base + self.N @ u)
            return value, self.N.T @ grad

        bounds = [(SD_FLOOR, None) if is_sd else (None, None) for is_sd in self.sd_columns]
        best = None
        for _ in range(2):
            res = minimize(f, u0, jac=True, method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": 1000, "ftol": 1e-14, "gtol": 1e-6, "maxcor": 20, "maxls": 10})
            if best is None or res.fun < best.fun:
                best = res
            stuck = self.sd_columns & (res.x < BOUNDARY_THETA) & (res.jac < 0)
            if not stuck.any():
                break
            u0 = res.x.copy()
            u0[stuck] = 0.0
        return -float(best.fun), base + self.N @ best.x

    def point(self, value: float, thorough: bool = False) -> tuple[float, np.ndarray]:
        """The profile log-likelihood at ``value`` and the maximising theta (memoised).

        Maximised from the warm start (:meth:`_warm_start`); ``thorough`` adds the fit's
        optimum, projected onto the constraint, as a second start.
        """
        value = float(value)
        if value in self.solved and (not thorough or value in self.checked or value == self.component.estimate):
            return self.solved[value]
        base = self._base(value)
        best = self.solved.get(value, (-np.inf, None))
        starts = [self._warm_start(value)] + ([self.component.theta] if thorough else [])
        for start in starts:
            candidate = self._maximise(base, self._to_u(start, base))
            if candidate[0] > best[0]:
                best = candidate
        self.solved[value] = best
        if thorough:
            self.checked.add(value)
        self.higher = max(self.higher, best[0] - self.loglik_max)
        return best

    def loglik(self, value: float, thorough: bool = False) -> float:
        """The profile (restricted) log-likelihood at ``value``."""
        return self.point(value, thorough)[0]

    def curve(self, values, progressbar: bool = True) -> tuple[np.ndarray, list]:
        """Profile log-likelihoods and maximising thetas at ``values`` (each checked from the fit's optimum).

        Solved from the estimate outwards, each point warm-started from its neighbour.
        """
        from tqdm.auto import tqdm

        values = np.asarray(values, dtype=float)
        s_hat = self.component.to_search(self.component.estimate)
        distance = np.abs(self.component.to_search(values) - s_hat)
        order = np.argsort(np.where(np.isfinite(distance), distance, np.inf), kind="stable")
        out = [None] * len(values)
        for i in tqdm(order, desc=f"profile {self.component.label}", disable=not progressbar, delay=1.0):
            out[i] = self.point(values[i], thorough=True)
        self.warn_if_higher()
        return np.array([o[0] for o in out]), [o[1] for o in out]

    def warn_if_higher(self) -> None:
        """Warn (once) when a profile point beats the fit's log-likelihood, as metafor's ``profile``."""
        if self.higher > LLTOL:
            warn(f"{self.component.label}: a profile log-likelihood exceeds the fit's by "
                          f"{self.higher:.3g}; the fit may not be at the maximum of the likelihood.",
                          ConvergenceWarning)
            self.higher = -np.inf

    # confidence bounds ------------------------------------------------------------

    def bound(self, side: str, level: float, se: float = np.nan) -> Bounds:
        """The lower or upper profile-likelihood confidence bound (the other one is NaN).

        Parameters
        ----------
        side : {"lower", "upper"}
        level : float
        se : float, optional
            A standard error of the estimate on the natural scale: the Wald bound
            on the search scale is the first point tried.

        Returns
        -------
        Bounds
            The bound and its sign (``""`` for a root or the edge of the parameter
            space; ``"<"`` / ``">"`` for the end of metafor's search interval).
        """
        crit = float(chi2_quantile(level, 1))
        value, sign, root = self._bound(side, level, crit, se, thorough=False)
        if self._suspect(value, root, crit):  # a local optimum decided it: every point from several starts
            value, sign, root = self._bound(side, level, crit, se, thorough=True)
            if self._suspect(value, root, crit):
                warn(f"{self.component.label}: the profile likelihood jumps at the {side} bound "
                              f"{value:.6g} (a local optimum of the refits); the bound may be wrong.",
                              ConvergenceWarning)
        if not np.isfinite(value):
            warn(f"{self.component.label}: cannot obtain the {side} bound of the profile-likelihood CI: "
                          "the refits fail up to the estimate.", ConvergenceWarning)
        self.warn_if_higher()
        return Bounds(value, np.nan, sign, "") if side == "lower" else Bounds(np.nan, value, "", sign)

    def _suspect(self, value: float, root: bool, crit: float) -> bool:
        """Whether a bound of the warm-started profile fails the check from the fit's own optimum:
        a higher profile there (the warm start was a local optimum), or a "root" where the
        profile jumps across the cut-off instead of crossing it (a local optimum beside it)."""
        if not np.isfinite(value):
            return False
        warm = self.loglik(value)
        checked = self.loglik(value, thorough=True)
        return checked > warm + CHECK_TOL or (root and abs(2 * (self.loglik_max - checked) - crit) > 2 * CHECK_TOL)

    def _bound(self, side: str, level: float, crit: float, se: float, thorough: bool) -> tuple[float, str, bool]:
        """The bound, its sign and whether it is a root (rather than an end of the search interval)."""
        # slow to import: loaded with the first interval
        from scipy.optimize import brentq

        comp = self.component
        low, high, low_edge, high_edge = comp.search_interval(level)
        end, at_edge = (low, low_edge) if side == "lower" else (high, high_edge)
        direction = -1.0 if side == "lower" else 1.0

        def excess(value: float) -> float:  # > 0 outside the interval
            return 2 * (self.loglik_max - self.loglik(value, thorough)) - crit

        # outward steps on the search scale from the Wald bound there
        s_hat = float(comp.to_search(comp.estimate))
        step = np.sqrt(crit) * comp.search_scale_sd(se)
        if not np.isfinite(step) or step <= 0:
            step = 1.0 if comp.kind != "scale" else max(abs(comp.estimate), 1.0)
        inside = comp.estimate
        if np.isfinite(s_hat):
            for _ in range(MAX_STEPS):
                value = float(comp.from_search(s_hat + direction * step))
                if direction * (value - end) >= 0 or value == inside:
                    break
                if excess(value) > 0:
                    ends = sorted((float(comp.to_search(inside)), float(comp.to_search(value))))
                    root = brentq(lambda s: excess(float(comp.from_search(s))), *ends, xtol=ROOT_TOL, rtol=1e-12,
                                  maxiter=200)
                    return float(comp.from_search(root)), "", True
                inside, step = value, 2 * step
        # the end of the search interval (metafor: moved inwards if the profile fit fails there)
        for _ in range(10):
            h_end = excess(end)
            if np.isfinite(h_end):
                break
            end, at_edge = end - direction * abs(end - comp.estimate) / 10, False
        if not np.isfinite(h_end):
            return np.nan, "", False
        if h_end < 0:
            return float(end), "" if at_edge else ("<" if side == "lower" else ">"), False
        lo, hi = sorted((float(end), float(inside)))
        tol = ROOT_TOL * max(abs(end), abs(inside), 1e-300)
        return float(brentq(excess, lo, hi, xtol=tol, rtol=1e-12, maxiter=200)), "", True
