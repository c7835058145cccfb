"""Variance-component parameters: names, fixed values and unconstrained transforms.

Each random-effect covariance matrix ``G_k`` is built by a
:class:`~bayesmeta.spec.structures.Structure` from standard deviations and
correlations (the *natural* parameters). Optimizers and samplers work on an
unconstrained vector ``theta`` of the free natural parameters:

* SDs: ``sd = sd_unit * exp(theta)``;
* correlations: the structure's own map (a scaled tanh onto the admissible
  range of a single correlation; canonical partial correlations for a UN
  matrix, see :mod:`bayesmeta.spec.structures`);
* the coefficients of a scale model (a level whose variance is log-linear in
  moderators, :mod:`bayesmeta.design.scale_models`), in place of that level's SD:
  ``alpha = transform @ theta``, the coefficients of standardised moderators;
* the coefficients of a structured term's scale model
  (:mod:`bayesmeta.design.coscale`), in place of its SDs and correlations: those of
  its SDs (counted among alpha) and then those of its correlation (zeta);
* last, the coefficients of the proportional sampling-variance model
  (``V_scale=``: V scaled by ``exp(w_i' delta)``), ``delta = transform @ theta``.

:class:`Parameterization` is the one place that knows the layout of theta.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpecificationError
from ..spec.structures import Structure, lower_pairs

#: Names of the variance and correlation families, as metafor prints them.
FAMILIES = {"sigma2": None, "tau2": "rho", "gamma2": "phi"}
#: The standard deviation of each variance family (the names of the posterior's SD variables).
SD_NAMES = {"sigma2": "sigma", "tau2": "tau", "gamma2": "gamma"}
#: theta of an SD fixed at exactly zero on the boundary.
ZERO_THETA = -np.inf
#: theta below which an SD counts as on its boundary (SD < sd_unit * exp(-9) ~ 1e-4 sd_unit).
BOUNDARY_THETA = -9.0


@dataclass(frozen=True)
class CovarianceTerm:
    """One random-effect covariance matrix G (q x q) shared by all groups of a factor.

    Attributes
    ----------
    label : str
        How the term is shown, e.g. ``"district/study"`` or ``"outcome | trial"``.
    family : str
        ``"sigma2"`` (a nested level), ``"tau2"`` (first structured term or the
        standard model's heterogeneity) or ``"gamma2"`` (second structured term).
    structure : Structure
    levels : tuple of str
        Names of the q effects (inner factor levels or slope coefficients).
    n_groups : int
        Number of groups (levels of the grouping factor).
    """

    label: str
    family: str
    structure: Structure
    levels: tuple
    n_groups: int

    @property
    def q(self) -> int:
        return len(self.levels)

    @property
    def n_sd(self) -> int:
        return self.structure.n_sd(self.q)

    @property
    def n_rho(self) -> int:
        return self.structure.n_rho(self.q)

    @property
    def correlation_family(self) -> str | None:
        """``"rho"``, ``"phi"`` or None (nested levels)."""
        return FAMILIES[self.family]

    def sd_label(self, i: int) -> str:
        """Label of the i-th SD (variance): the term, or ``"term: level"``."""
        return self.label if self.n_sd == 1 else f"{self.label}: {self.levels[i]}"

    def rho_label(self, i: int) -> str:
        """Label of the i-th correlation: the term, or ``"term: level_j, level_i"`` (metafor's order)."""
        if self.n_rho == 1:
            return self.label
        rows, cols = lower_pairs(self.q)
        return f"{self.label}: {self.levels[cols[i]]}, {self.levels[rows[i]]}"


@dataclass(frozen=True)
class Parameterization:
    """All variance components of a model, with their fixed values and transforms.

    Attributes
    ----------
    terms : tuple of CovarianceTerm
    sd_unit : float
        Typical SD: the unconstrained SD parameters are log(sd / sd_unit).
    fixed_sd : tuple of numpy.ndarray
        Per term, fixed SD values (NaN where free).
    fixed_rho : tuple of numpy.ndarray
        Per term, fixed correlations (NaN where free).
    scale_models : tuple
        Per term, its :class:`~bayesmeta.design.scale_models.ScaleDesign` or None
        (empty when the model has no scale model). A term with a scale model has
        no SD and no correlation (empty ``fixed_sd`` and ``fixed_rho``); its theta
        entries are the standardised scale coefficients.
    not_identified : tuple of NotIdentified
        Components the data cannot identify (:mod:`bayesmeta.design.identifiability`),
        fixed here (or, for some UN correlations, only flagged).
    v_scale : ScaleDesign or None
        The proportional sampling-variance model (``V_scale=``, one group per row):
        V is scaled to ``D^1/2 V D^1/2``, ``D = diag(exp(w_i' delta))``. Its
        standardised coefficients are the last entries of theta.
    coscale_models : tuple
        Per term, its :class:`~bayesmeta.design.coscale.CoscaleDesign` or None (empty
        without any): a structured term whose SDs and correlation have a scale model
        has no SD and no correlation; its theta entries are the standardised
        coefficients of its SDs (part of alpha) and then of its correlation (zeta).
    """

    terms: tuple
    sd_unit: float
    fixed_sd: tuple
    fixed_rho: tuple
    scale_models: tuple = ()
    not_identified: tuple = ()
    v_scale: object = None
    coscale_models: tuple = ()

    def identification_notes(self) -> list[str]:
        """One line per component the data cannot identify (empty when all are identified)."""
        return [n.describe(self.terms) for n in self.not_identified]

    def not_identified_labels(self) -> set[str]:
        """Table labels (``sigma2[g]``, ``rho[...]``) of the components the data cannot identify."""
        return {label for n in self.not_identified for label in n.labels(self.terms)}

    def scale_of(self, k: int):
        """The scale model of term k, or None."""
        return self.scale_models[k] if self.scale_models else None

    def coscale_of(self, k: int):
        """The scale model of structured term k (:class:`~bayesmeta.design.coscale.CoscaleDesign`), or None."""
        return self.coscale_models[k] if self.coscale_models else None

    @property
    def has_scale(self) -> bool:
        """Whether some variance has a scale model (random intercepts or structured terms)."""
        return any(sc is not None for sc in self.scale_models) or self.has_coscale

    @property
    def has_coscale(self) -> bool:
        """Whether some structured term's SDs and correlation have a scale model."""
        return any(cs is not None for cs in self.coscale_models)

    def coefficient_blocks(self, part: str) -> list[tuple[int, object, slice]]:
        """(term, ScaleDesign, positions in theta) of every block of ``"alpha"`` (variance models of random
        intercepts and SD models of structured terms) or ``"zeta"`` (correlation models) coefficients."""
        out, pos = [], 0
        for k, size in enumerate(self.sizes()):
            sc, cs = self.scale_of(k), self.coscale_of(k)
            if part == "alpha" and sc is not None:
                out.append((k, sc, slice(pos + size - sc.r, pos + size)))
            elif part == "alpha" and cs is not None:
                out.append((k, cs.tau, slice(pos, pos + cs.tau.r)))
            elif part == "zeta" and cs is not None and cs.zeta is not None:
                out.append((k, cs.zeta, slice(pos + cs.tau.r, pos + size)))
            pos += size
        return out

    def coefficient_designs(self, part: str = "alpha") -> tuple:
        """Per term, the ScaleDesign of its ``"alpha"`` (variance) or ``"zeta"`` (correlation) coefficients,
        or None (for :func:`~bayesmeta.design.scale_models.select_level`)."""
        designs = [None] * len(self.terms)
        for k, d, _ in self.coefficient_blocks(part):
            designs[k] = d
        return tuple(designs)

    @property
    def n_alpha(self) -> int:
        return sum(d.r for _, d, _ in self.coefficient_blocks("alpha"))

    @property
    def n_zeta(self) -> int:
        """Number of coefficients of the correlation models of structured terms."""
        return sum(d.r for _, d, _ in self.coefficient_blocks("zeta"))

    @property
    def n_delta(self) -> int:
        """Number of coefficients of the proportional sampling-variance model (0 without one)."""
        return 0 if self.v_scale is None else self.v_scale.r

    @property
    def n_free(self) -> int:
        return sum(self.sizes()) + self.n_delta

    def delta_positions(self) -> np.ndarray:
        """Positions in theta of the (standardised) coefficients of the sampling-variance model: the last ones."""
        return np.arange(self.n_free - self.n_delta, self.n_free)

    def delta_names(self) -> list[str]:
        """Names of the coefficients of the sampling-variance model (columns of its formula)."""
        return [] if self.v_scale is None else list(self.v_scale.names)

    def delta(self, theta: np.ndarray) -> np.ndarray:
        """The coefficients delta of the sampling-variance model at ``theta`` (empty without one)."""
        if self.v_scale is None:
            return np.zeros(0)
        return self.v_scale.transform @ np.asarray(theta, dtype=float)[self.delta_positions()]

    def v_multipliers(self, theta: np.ndarray) -> np.ndarray | None:
        """Per row, the factor ``exp(w_i' delta)`` of its sampling variance (None without ``V_scale``)."""
        if self.v_scale is None:
            return None
        return np.exp(self.v_scale.W_std @ np.asarray(theta, dtype=float)[self.delta_positions()])

    def sizes(self) -> list[int]:
        """Number of theta entries of every term."""
        return [int(np.isnan(fs).sum() + np.isnan(fr).sum()) + sum(m.r for m in (self.scale_of(k), self.coscale_of(k))
                                                                   if m is not None)
                for k, (fs, fr) in enumerate(zip(self.fixed_sd, self.fixed_rho))]

    def free_sd_positions(self) -> list[int]:
        """Positions in theta of the free SDs."""
        out, pos = [], 0
        for fs, size in zip(self.fixed_sd, self.sizes()):
            out += list(range(pos, pos + int(np.isnan(fs).sum())))
            pos += size
        return out

    def coefficient_names(self, part: str = "alpha") -> list[str]:
        """Names of the ``"alpha"`` (variance) or ``"zeta"`` (correlation) coefficients, ``"level: term"``
        when several levels have them."""
        blocks = self.coefficient_blocks(part)
        if len(blocks) == 1:
            return list(blocks[0][1].names)
        return [f"{d.label}: {name}" for _, d, _ in blocks for name in d.names]

    def coefficient_positions(self, part: str = "alpha") -> np.ndarray:
        """Positions in theta of the (standardised) ``"alpha"`` or ``"zeta"`` coefficients."""
        return np.array([i for _, _, where in self.coefficient_blocks(part) for i in range(where.start, where.stop)], dtype=int)

    def coefficient_slice(self, k: int, part: str = "alpha") -> slice:
        """Where the ``part`` coefficients of term k sit among all of them."""
        start = 0
        for j, d, _ in self.coefficient_blocks(part):
            if j == k:
                return slice(start, start + d.r)
            start += d.r
        raise KeyError(f"term {k} has no {part} coefficients")

    def coefficient_transform(self, part: str = "alpha") -> np.ndarray:
        """Matrix (n_part, n_free) mapping theta to the ``"alpha"`` or ``"zeta"`` coefficients."""
        blocks = self.coefficient_blocks(part)
        A = np.zeros((sum(d.r for _, d, _ in blocks), self.n_free))
        row = 0
        for _, d, where in blocks:
            A[row:row + d.r, where] = d.transform
            row += d.r
        return A

    def alpha_names(self) -> list[str]:
        """Names of the scale coefficients (``"level: term"`` when several levels have one)."""
        return self.coefficient_names("alpha")

    def alpha_positions(self) -> np.ndarray:
        """Positions in theta of the (standardised) scale coefficients."""
        return self.coefficient_positions("alpha")

    def alpha_slice(self, k: int) -> slice:
        """Where the scale coefficients of term k sit among all scale coefficients."""
        return self.coefficient_slice(k, "alpha")

    def alpha_transform(self) -> np.ndarray:
        """Matrix (n_alpha, n_free) mapping theta to the scale coefficients alpha."""
        return self.coefficient_transform("alpha")

    def alpha(self, theta: np.ndarray) -> np.ndarray:
        """The scale coefficients alpha at ``theta``."""
        return self.alpha_transform() @ np.asarray(theta, dtype=float) if self.n_alpha else np.zeros(0)

    def zeta(self, theta: np.ndarray) -> np.ndarray:
        """The coefficients zeta of the correlation models (Fisher's z of rho) at ``theta``."""
        return self.coefficient_transform("zeta") @ np.asarray(theta, dtype=float) if self.n_zeta else np.zeros(0)

    def coscale_rows(self, theta: np.ndarray) -> list:
        """Per term, None or (with a scale model of a structured term) the SD and the correlation of every
        row's cell and cluster, ``(sd (n,), rho (n,))``."""
        theta = np.asarray(theta, dtype=float)
        out, pos = [], 0
        for k, size in enumerate(self.sizes()):
            cs = self.coscale_of(k)
            out.append(None if cs is None else cs.row_values(theta[pos:pos + size]))
            pos += size
        return out

    def free_names(self) -> list[str]:
        """Readable names of the free parameters, in theta order."""
        names, alpha, zeta = [], iter(self.alpha_names()), iter(self.coefficient_names("zeta"))
        for k, (t, fs, fr) in enumerate(zip(self.terms, self.fixed_sd, self.fixed_rho)):
            names += [f"sd[{t.sd_label(i)}]" for i in np.flatnonzero(np.isnan(fs))]
            names += [f"rho[{t.rho_label(i)}]" for i in np.flatnonzero(np.isnan(fr))]
            sc, cs = self.scale_of(k), self.coscale_of(k)
            if sc is not None or cs is not None:
                names += [f"alpha[{next(alpha)}]" for _ in range((sc or cs.tau).r)]
            if cs is not None:
                names += [f"zeta[{next(zeta)}]" for _ in range(cs.n_zeta)]
        return names + [f"delta[{name}]" for name in self.delta_names()]

    def component_labels(self) -> dict[str, list[str]]:
        """Labels of every component (fixed ones included) by family, in term order
        (terms with a scale model have none)."""
        out: dict[str, list[str]] = {}
        for k, t in enumerate(self.terms):
            if self.scale_of(k) is not None or self.coscale_of(k) is not None:
                continue
            out.setdefault(t.family, []).extend(t.sd_label(i) for i in range(t.n_sd))
            if t.correlation_family and t.n_rho:
                out.setdefault(t.correlation_family, []).extend(t.rho_label(i) for i in range(t.n_rho))
        return out

    def group_variances(self, theta: np.ndarray, jacobian: bool = False) -> tuple[list, list | None]:
        """Variance of every group of every (random-intercept) term, and its derivatives.

        Returns
        -------
        variances : list of numpy.ndarray
            Per term, (n_groups,): ``exp(w_g' alpha)`` for a term with a scale model,
            its one variance repeated otherwise (None for a structured term with a
            scale model: see :meth:`coscale_rows`).
        jacobians : list of numpy.ndarray or None
            Per term, (n_groups, n_free): the derivatives of the variances with
            respect to theta.
        """
        theta = np.asarray(theta, dtype=float)
        natural = self.natural(theta)
        variances, jacobians, pos = [], [] if jacobian else None, 0
        for k, (t, (sd, _), fs, size) in enumerate(zip(self.terms, natural, self.fixed_sd, self.sizes())):
            sc = self.scale_of(k)
            J = np.zeros((t.n_groups, self.n_free)) if jacobian else None
            if self.coscale_of(k) is not None:
                v = None
            elif sc is not None:
                W = sc.W_std
                v = np.exp(W @ theta[pos + size - sc.r:pos + size])
                if jacobian:
                    J[:, pos + size - sc.r:pos + size] = v[:, None] * W
            else:
                v = np.full(t.n_groups, sd[0] ** 2)
                if jacobian and np.isnan(fs[0]):
                    J[:, pos] = 2 * sd[0] ** 2  # d sd^2 / d theta, with sd = sd_unit * exp(theta)
            variances.append(v)
            if jacobian:
                jacobians.append(J)
            pos += size
        return variances, jacobians

    def interior(self, theta: np.ndarray, sd_floor: float = BOUNDARY_THETA, rho_limit: float = 7.0) -> np.ndarray:
        """Mask of parameters away from their boundaries (SD not ~0, correlation not ~+-1)."""
        mask, pos = [], 0
        for j, (t, fs, fr, size) in enumerate(zip(self.terms, self.fixed_sd, self.fixed_rho, self.sizes())):
            if self.scale_of(j) is not None or self.coscale_of(j) is not None:  # scale coefficients are unconstrained
                mask.append(np.ones(size, bool))
            else:
                k = int(np.isnan(fs).sum())
                mask.append(theta[pos:pos + k] > sd_floor)
                mask.append(t.structure.correlation.interior(finite(theta[pos + k:pos + size]), t.q, rho_limit))
            pos += size
        mask.append(np.ones(self.n_delta, bool))  # delta is unconstrained
        return np.concatenate(mask)

    def natural(self, theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (sd, rho) vectors of every term at ``theta``."""
        theta = np.asarray(theta, dtype=float)
        out, pos = [], 0
        for k, (t, fs, fr, size) in enumerate(zip(self.terms, self.fixed_sd, self.fixed_rho, self.sizes())):
            if self.scale_of(k) is not None or self.coscale_of(k) is not None:  # no SD or correlation: see
                # group_variances and coscale_rows
                out.append((np.zeros(0), np.zeros(0)))
                pos += size
                continue
            sd = fs.copy()
            free = np.isnan(fs)
            sd[free] = self.sd_unit * np.exp(theta[pos:pos + free.sum()])
            pos += free.sum()
            rho = fr.copy()
            free_r = np.isnan(fr)
            n = free_r.sum()
            if n:
                rho[free_r] = t.structure.correlation.from_theta(theta[pos:pos + n], t.q)
            pos += n
            out.append((sd, rho))
        return out

    def theta_from_natural(self, natural: list[tuple[np.ndarray, np.ndarray]], alpha=None,
                           delta=None, zeta=None) -> np.ndarray:
        """Inverse of :meth:`natural` (for starting values); an SD of 0 maps to -inf.

        ``alpha`` gives the scale coefficients of the terms with a scale model
        (concatenated, as :meth:`alpha_names`), ``zeta`` those of the correlation
        models and ``delta`` those of the sampling-variance model; zero when omitted.
        """
        parts = []
        alpha = np.zeros(self.n_alpha) if alpha is None else np.asarray(alpha, dtype=float)
        zeta = np.zeros(self.n_zeta) if zeta is None else np.asarray(zeta, dtype=float)
        for k, (t, fs, fr, (sd, rho)) in enumerate(zip(self.terms, self.fixed_sd, self.fixed_rho, natural)):
            sc, cs = self.scale_of(k), self.coscale_of(k)
            if sc is not None or cs is not None:
                parts.append(np.linalg.solve((sc or cs.tau).transform, alpha[self.alpha_slice(k)]))
                if cs is not None and cs.zeta is not None:
                    parts.append(np.linalg.solve(cs.zeta.transform, zeta[self.coefficient_slice(k, "zeta")]))
                continue
            with np.errstate(divide="ignore"):
                parts.append(np.log(np.asarray(sd)[np.isnan(fs)] / self.sd_unit))
            free_r = np.isnan(fr)
            if free_r.any():
                parts.append(t.structure.correlation.to_theta(np.asarray(rho), t.q))
        if self.v_scale is not None:
            delta = np.zeros(self.n_delta) if delta is None else np.asarray(delta, dtype=float)
            parts.append(np.linalg.solve(self.v_scale.transform, delta))
        return np.concatenate(parts) if parts else np.zeros(0)

    def covariances(self, theta: np.ndarray) -> list[np.ndarray]:
        """The q x q matrices G_k at ``theta`` (None for a term with a scale model: see
        :meth:`group_variances` and :meth:`coscale_rows`)."""
        return [None if self.scale_of(k) is not None or self.coscale_of(k) is not None
                else t.structure.covariance(sd, rho, t.q)
                for k, (t, (sd, rho)) in enumerate(zip(self.terms, self.natural(theta)))]

    def gradient(self, theta: np.ndarray, dG: list, dvariances: list | None = None,
                 dlog_v: np.ndarray | None = None, dcoscale: list | None = None) -> np.ndarray:
        """Chain rule: from derivatives in the covariance parameters to derivatives in theta.

        Parameters
        ----------
        theta : numpy.ndarray
        dG : list
            Per term, the derivative with respect to G_k (q x q), or None for a term
            with a scale model.
        dvariances : list, optional
            Per term with a scale model, the derivatives (n_groups,) with respect to its
            group variances ``v_g = exp(w_g' alpha)`` (None for the other terms).
        dlog_v : numpy.ndarray, optional
            With ``V_scale``: per row, the derivative with respect to the log of its
            sampling-variance factor, ``eta_i = w_i' delta``.
        dcoscale : list, optional
            Per structured term with a scale model, the derivatives with respect to
            every row's SD and correlation, ``(d_sd (n,), d_rho (n,))`` (None for the
            other terms; see :meth:`CoscaleDesign.gradient`).
        """
        theta = np.asarray(theta, dtype=float)
        grad, pos = [], 0
        for k, (t, fs, fr, (sd, rho), H, size) in enumerate(zip(self.terms, self.fixed_sd, self.fixed_rho,
                                                                self.natural(theta), dG, self.sizes())):
            sc, cs = self.scale_of(k), self.coscale_of(k)
            if sc is not None:
                W = sc.W_std
                v = np.exp(W @ theta[pos:pos + size])
                grad.append(W.T @ (v * dvariances[k]))
                pos += size
                continue
            if cs is not None:
                grad.append(cs.gradient(theta[pos:pos + size], *dcoscale[k]))
                pos += size
                continue
            d_sd, d_rho = t.structure.jacobian(sd, rho, t.q)
            free = np.isnan(fs)
            grad.append(np.einsum("kij,ij->k", d_sd, H)[free] * sd[free])  # d sd / d theta = sd
            pos += free.sum()
            n = int(np.isnan(fr).sum())
            if n:
                g_rho = np.einsum("kij,ij->k", d_rho, H)
                grad.append(t.structure.correlation.theta_jacobian(theta[pos:pos + n], t.q).T @ g_rho)
                pos += n
        if self.v_scale is not None:
            grad.append(self.v_scale.W_std.T @ dlog_v)
        return np.concatenate(grad) if grad else np.zeros(0)


def finite(theta: np.ndarray) -> np.ndarray:
    """Replace -inf (an SD fixed at zero on the boundary) by a value giving SD ~ 0."""
    return np.where(np.isneginf(theta), -745.0, theta)


def _as_list(value, n: int, name: str) -> np.ndarray:
    """Fixed values for ``n`` components: scalar, or a list with None for free entries (finite numbers)."""
    if value is None:
        return np.full(n, np.nan)
    if isinstance(value, (str, bytes, dict, set)) or (not np.isscalar(value) and not hasattr(value, "__len__")):
        raise SpecificationError(f"fixed: {name!r} expects a number or a list of numbers (None for free ones), "
                                 f"got {value!r}.")
    values = [value] * n if np.isscalar(value) else list(value)
    if len(values) != n:
        raise SpecificationError(f"fixed: {name!r} needs {n} values (None for free ones), got {len(values)}.")
    bad = [v for v in values if v is not None and (isinstance(v, (bool, np.bool_)) or not isinstance(
        v, (int, float, np.integer, np.floating)) or not np.isfinite(v))]
    if bad:
        raise SpecificationError(f"fixed: {name!r} values must be finite numbers (None for free ones); got "
                                 f"{', '.join(map(repr, bad))}.")
    return np.array([np.nan if v is None else float(v) for v in values])


def _fix_not_identified(notes, fixed_sd: list, fixed_rho: list) -> tuple:
    """Fix the components the data cannot identify that the user left free; the notes that apply."""
    applied = []
    for note in notes:
        values = fixed_sd[note.term] if note.kind == "sd" else fixed_rho[note.term]
        free = [i for i in note.entries if i < len(values) and np.isnan(values[i])]
        if not free:
            continue
        if note.fixed:
            values[free] = note.value
        applied.append(note)
    return tuple(applied)


def build_parameterization(terms: tuple, fixed: dict | None, sd_unit: float,
                           scale_models: tuple = (), not_identified: tuple = (), v_scale=None,
                           coscale_models: tuple = ()) -> Parameterization:
    """Turn the user's ``fixed`` dict into per-term fixed SDs and correlations.

    Parameters
    ----------
    terms : tuple of CovarianceTerm
    fixed : dict, optional
        metafor-style: ``{"sigma2": [None, 0.0], "tau2": 0.1, "rho": 0.5, "gamma2": ..., "phi": ...}``;
        variances are given on the variance scale, ``None`` marks a free entry.
    sd_unit : float
        Typical SD for scaling the unconstrained parameters.
    scale_models : tuple, optional
        Per term, its scale model (:class:`~bayesmeta.design.scale_models.ScaleDesign`) or None.
    not_identified : tuple of NotIdentified, optional
        Components the data cannot identify (:func:`~bayesmeta.design.identifiability.find_non_identified`):
        those the user left free are fixed (variances and correlations at 0) and recorded.
    v_scale : ScaleDesign, optional
        The proportional sampling-variance model (``V_scale=``), one group per row.
    coscale_models : tuple, optional
        Per term, the scale model of a structured term's SDs and correlation
        (:class:`~bayesmeta.design.coscale.CoscaleDesign`) or None.
    """
    if fixed is not None and not isinstance(fixed, dict):
        raise SpecificationError(f"fixed: expected a dict such as {{'sigma2': [None, 0.0]}}, got "
                                 f"{type(fixed).__name__}.")
    fixed = dict(fixed or {})
    unknown = set(fixed) - {"sigma2", "tau2", "rho", "gamma2", "phi"}
    if unknown:
        raise SpecificationError(
            f"fixed: unknown component(s) {sorted(unknown)}; use 'sigma2', 'tau2', 'rho', 'gamma2' or 'phi'."
        )
    fixed_sd, fixed_rho = [], []
    sigma_terms = [t for t in terms if t.family == "sigma2"]
    sigma_fixed = _as_list(fixed.get("sigma2"), len(sigma_terms), "sigma2")
    if "sigma2" in fixed and not sigma_terms:
        raise SpecificationError("fixed: 'sigma2' given but the model has no nested random intercepts.")
    i_sigma = 0
    for t in terms:
        if t.family == "sigma2":
            fixed_sd.append(np.array([sigma_fixed[i_sigma]]))
            fixed_rho.append(np.zeros(0))
            i_sigma += 1
            continue
        corr_name = t.correlation_family
        fixed_sd.append(_as_list(fixed.get(t.family), t.n_sd, t.family))
        if corr_name in fixed and t.n_rho == 0:
            raise SpecificationError(f"fixed: {corr_name!r} given but the {t.structure.name} term {t.label!r} has no correlation.")
        rho = _as_list(fixed.get(corr_name), t.n_rho, corr_name) if t.n_rho else np.zeros(0)
        if np.isnan(rho).any() and not np.isnan(rho).all():
            raise SpecificationError(
                f"fixed: correlations of the {t.structure.name} term {t.label!r} must be all free or all fixed."
            )
        lo = t.structure.rho_lower_bound(t.q)
        bad = rho[~np.isnan(rho)]
        if np.any((bad <= lo - 1e-12) | (bad > 1)):
            raise SpecificationError(f"fixed: {corr_name!r} values {bad} are outside ({lo:.3g}, 1].")
        fixed_rho.append(rho)
    for name in ("tau2", "gamma2"):
        if name in fixed and not any(t.family == name for t in terms):
            raise SpecificationError(f"fixed: {name!r} given but the model has no such component.")
    for t, fs in zip(terms, fixed_sd):
        if np.any(fs[~np.isnan(fs)] < 0):
            raise SpecificationError(f"fixed: {t.family!r} values of {t.label!r} must be non-negative variances, got "
                                     f"{fs[~np.isnan(fs) & (fs < 0)].tolist()}.")
    fixed_sd = [np.where(np.isnan(fs), np.nan, np.sqrt(np.abs(fs))) for fs in fixed_sd]
    for k, sc in enumerate(scale_models):
        if sc is None:
            continue
        if not np.isnan(fixed_sd[k]).all():
            raise SpecificationError(f"fixed: the variance of {terms[k].label!r} is given by its scale model "
                                     f"({sc.formula!r}) and cannot be fixed.")
        fixed_sd[k], fixed_rho[k] = np.zeros(0), np.zeros(0)
    for k, cs in enumerate(coscale_models):
        if cs is None:
            continue
        if not (np.isnan(fixed_sd[k]).all() and np.isnan(fixed_rho[k]).all()):
            raise SpecificationError(f"fixed: the SDs and the correlation of {terms[k].label!r} are given by its scale "
                                     "model and cannot be fixed.")
        fixed_sd[k], fixed_rho[k] = np.zeros(0), np.zeros(0)
    applied = _fix_not_identified(not_identified, fixed_sd, fixed_rho)
    return Parameterization(tuple(terms), float(sd_unit), tuple(fixed_sd), tuple(fixed_rho), tuple(scale_models),
                            applied, v_scale, tuple(coscale_models))
