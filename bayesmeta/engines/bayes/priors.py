"""Priors of the Bayesian engine: defaults scaled to the data, and user overrides.

Priors are :class:`pymc_extras.prior.Prior` objects. The ``priors`` argument of
:meth:`~bayesmeta.MetaModel.sample` is a dict with any of

``"beta"``
    a Prior for every fixed effect;
``"sd"``
    a Prior for every random-effect standard deviation; ``"sigma"``, ``"tau"``,
    ``"gamma"`` for those of one family (the SDs of ``sigma2``, ``tau2``, ``gamma2``);
``"sigma2"``, ``"tau2"``, ``"gamma2"``
    a Prior on the **variances** of one family (the SD is its square root), e.g.
    the published empirical priors :func:`bayesmeta.priors.turner2015` and
    :func:`bayesmeta.priors.rhodes2015`;
``"lkj_eta"``
    the shape of the LKJ prior on every unstructured (UN) correlation matrix;
``"rho"``
    a Prior for every single correlation of a CS, HCS, AR or HAR structure;
``"alpha"``
    a Prior for every scale coefficient of a location-scale model;
``"delta"``
    a Prior for every coefficient of the proportional sampling-variance model
    (``V_scale=``: V scaled by ``exp(w_i' delta)``);
``"zeta"``
    a Prior for every coefficient of the correlation models of structured terms
    (``scale={"outcome | study": {"rho": ...}}``: ``atanh(rho_j) = u_j' zeta``; the
    coefficients of their SDs are scale coefficients, ``"alpha"``);
``"beta[name]"``, ``"sd[label]"``, ``"sigma[label]"``, ``"tau2[label]"``, ``"rho[label]"``, ``"alpha[name]"``,
``"delta[name]"``, ``"zeta[name]"``
    overrides for one parameter (names as in :meth:`PriorSet.table`).

A prior of an SD or a variance must put all its mass on (0, inf): a distribution
on the positive numbers, a Uniform or TruncatedNormal with lower bound >= 0, or
any prior with ``transform="exp"`` (e.g. a log-t distribution); anything else is
refused, naming the parameter.

Default rule (documented, data-scaled, weakly informative), with
``s_y = max(sd(y), |mean(y)|)``:

* fixed effect of a non-constant column x: ``Normal(0, 10 s_y / sd(x))``;
  of a constant column (the intercept): ``Normal(0, 10 s_y (1 + sum_j |mean(x_j)| / sd(x_j)))``,
  wide enough for any intercept implied by uncentred moderators;
* SD of a random intercept or of the effect of a factor level: ``HalfNormal(sd(y))``;
  SD of a random slope on a continuous z: ``HalfNormal(sd(y) / sd(z))``;
* UN correlation matrices: ``LKJ(eta = 2)``;
* a single correlation: ``Uniform(lo, 1)``, with lo = -1/(q-1) for exchangeable
  structures (the positive definite range) and -1 otherwise;
* scale coefficients (log-variance scale), with moderators taken over the groups
  of their level: for a non-constant column w, ``Normal(0, 2.5 / sd(w))`` (a
  change of one SD of w multiplies the variance by up to e^5 ~ 150 at two prior
  SDs); for a constant column (the intercept),
  ``Normal(2 log s, 2.5 (1 + sum_j |mean(w_j)| / sd(w_j)))`` with ``s = sd(y)``,
  centred where the SD priors put the heterogeneity and wide enough for any
  intercept implied by uncentred moderators. These keep coefficients that would
  drift to +-infinity under ML/REML (a group without heterogeneity) finite;
* coefficients of the sampling-variance model (``V_scale=``, log of the factor on
  the sampling variances, moderators taken over the rows): the same widths,
  ``Normal(0, 2.5 / sd(w))`` for a non-constant column and
  ``Normal(0, 2.5 (1 + sum_j |mean(w_j)| / sd(w_j)))`` for a constant one, centred
  at a factor of 1 (the sampling variances as given); the factor of a row then
  lies within e^-5 ~ 1/150 and e^5 ~ 150 at two prior SDs;
* coefficients of the correlation models of structured terms (Fisher's z of each
  cluster's correlation, moderators taken over the clusters): the same rule with
  unit width, ``Normal(0, 1 / sd(u))`` for a non-constant column and
  ``Normal(0, 1 + sum_j |mean(u_j)| / sd(u_j))`` for a constant one, centred at a
  correlation of 0. Alpha's width 2.5 would be too wide on this scale: Normal(0, 2.5)
  on z puts 44% of its mass on |rho| > 0.96 (a U-shaped prior on rho), while Normal(0, 1)
  gives rho a density within a factor of two of the Uniform(-1, 1) prior of a plain
  single correlation for |rho| < 0.99 (and about 95% of its mass on |rho| < 0.96); a change
  of one SD of a moderator then moves z by up to 2 at two prior SDs. These keep
  correlations that would drift to +-1 under ML/REML inside (-1, 1).

``priors="flat"`` gives flat priors in every free parameter's own coordinates
(Flat fixed effects, HalfFlat SDs, uniform single correlations and uniform
canonical partial correlations of UN matrices, Flat scale, correlation-model and
sampling-variance coefficients): the
posterior mode is then the ML estimate (REML with the restricted term).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pymc_extras.prior import Prior

from ...design.build import Design
from ...design.parameters import SD_NAMES, Parameterization
from ...errors import SpecificationError

DEFAULT_LKJ_ETA = 2.0
#: Prior SD of a scale coefficient per unit SD of its moderator (log-variance scale).
ALPHA_SCALE = 2.5
#: Prior SD of a correlation-model coefficient per unit SD of its moderator (Fisher's z scale).
ZETA_SCALE = 1.0


@dataclass(frozen=True)
class PriorSet:
    """The resolved prior of every free parameter, in graph order."""

    beta: tuple
    sd: tuple
    rho: tuple
    lkj_eta: float
    beta_names: tuple
    sd_names: tuple
    rho_names: tuple
    flat: bool = False
    alpha: tuple = ()
    alpha_names: tuple = ()
    sd_families: tuple = ()
    #: Per SD: "sd" (the prior is on the SD) or "variance" (on its square).
    sd_scales: tuple = ()
    delta: tuple = ()
    delta_names: tuple = ()
    zeta: tuple = ()
    zeta_names: tuple = ()

    def scale_of_sd(self, i: int) -> str:
        """Whether the prior of the i-th free SD is on the SD or on the variance."""
        return self.sd_scales[i] if self.sd_scales else "sd"

    def table(self) -> pd.DataFrame:
        """One row per parameter: its name and prior."""
        rows = [(f"beta[{n}]", str(p)) for n, p in zip(self.beta_names, self.beta)]
        rows += [(f"{f if self.scale_of_sd(i) == 'variance' else SD_NAMES[f]}[{n}]", str(p))
                 for i, (f, n, p) in enumerate(zip(self.sd_families, self.sd_names, self.sd))]
        rows += [(f"rho[{n}]", str(p)) for n, p in zip(self.rho_names, self.rho)]
        rows += [(f"alpha[{n}]", str(p)) for n, p in zip(self.alpha_names, self.alpha)]
        rows += [(f"delta[{n}]", str(p)) for n, p in zip(self.delta_names, self.delta)]
        rows += [(f"zeta[{n}]", str(p)) for n, p in zip(self.zeta_names, self.zeta)]
        if self.lkj_eta is not None:
            rows.append(("cor (UN)", "uniform CPCs (flat)" if self.flat else f"LKJ(eta={self.lkj_eta:g})"))
        return pd.DataFrame(rows, columns=["parameter", "prior"])


def free_labels(param: Parameterization) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """(family, label) of the free SDs, labels of the free single correlations (uniform
    priors) and of the free correlations of LKJ-distributed matrices."""
    sd, single, joint = [], [], []
    for t, fs, fr in zip(param.terms, param.fixed_sd, param.fixed_rho):
        sd += [(t.family, t.sd_label(i)) for i in np.flatnonzero(np.isnan(fs))]
        labels = [t.rho_label(i) for i in np.flatnonzero(np.isnan(fr))]
        (joint if t.structure.correlation.prior == "lkj" else single).extend(labels)
    return sd, single, joint


def _sd_scales(design: Design, param: Parameterization, sy: float) -> list[float]:
    scales = []
    for enc, fs in zip(design.encodings, param.fixed_sd):
        free = np.flatnonzero(np.isnan(fs))
        if enc.Z is None:
            per_level = np.full(len(fs), sy)
        else:
            per_level = []
            for j in range(enc.Z.shape[1]):
                z = enc.Z[:, j]
                indicator = np.all(np.isin(z, (0.0, 1.0)))
                per_level.append(sy if indicator or np.std(z) == 0 else sy / np.std(z))
            per_level = np.array(per_level)
            if not enc.term.structure.heterogeneous:
                per_level = per_level[:1]
        scales += [float(per_level[i]) for i in free]
    return scales


def _beta_scales(design: Design) -> list[float]:
    y, X = design.y, design.X
    sy = max(np.std(y), abs(np.mean(y))) or 1.0
    sd = X.std(axis=0)
    varying = sd > 0
    spread = np.sum(np.abs(X.mean(axis=0)[varying]) / sd[varying])
    return [10 * sy / s if s > 0 else 10 * sy * (1 + spread) for s in sd]


def _linear_predictor_priors(W: np.ndarray, centre: float, scale: float = ALPHA_SCALE) -> list:
    """Default Normal priors of the coefficients of a linear predictor ``W c`` (log variances, log
    factors, Fisher's z; see the module docstring): ``Normal(0, scale / sd(w))`` for a non-constant
    column, and for a constant column c a prior centred at ``c * coefficient = centre``, wide enough
    (``scale (1 + sum_j |mean(w_j)| / sd(w_j))``) for any intercept implied by uncentred moderators."""
    spread = W.std(axis=0)
    varying = spread > 0
    width = scale * (1 + np.sum(np.abs(W.mean(axis=0)[varying]) / spread[varying]))
    centres = centre / np.where(varying, 1.0, W[0])
    return [Prior("Normal", mu=0.0, sigma=round(scale / s, 6)) if s > 0
            else Prior("Normal", mu=round(float(m), 6), sigma=round(float(width), 6))
            for s, m in zip(spread, centres)]


def _alpha_priors(param: Parameterization, sy: float) -> list:
    """Default Normal priors of the scale coefficients (variance models of random intercepts and SD
    models of structured terms), centred at the variance ``s^2`` (see the module docstring)."""
    return [prior for _, design, _ in param.coefficient_blocks("alpha")
            for prior in _linear_predictor_priors(design.W, 2 * np.log(sy))]


def _zeta_priors(param: Parameterization) -> list:
    """Default Normal priors of the coefficients of the correlation models, centred at a correlation of 0."""
    return [prior for _, design, _ in param.coefficient_blocks("zeta")
            for prior in _linear_predictor_priors(design.W, 0.0, ZETA_SCALE)]


def _delta_priors(param: Parameterization) -> list:
    """Default Normal priors of the coefficients of the sampling-variance model, centred at a factor of 1."""
    return [] if param.v_scale is None else _linear_predictor_priors(param.v_scale.W, 0.0)


#: Hyperparameters that must be positive (scales, rates, shapes, degrees of freedom).
POSITIVE_PARAMETERS = frozenset({"sigma", "tau", "lam", "beta", "alpha", "nu", "b", "kappa", "eta", "scale"})
#: Distributions whose support lies in [0, inf) (and so fit a standard deviation).
NON_NEGATIVE = frozenset({"HalfNormal", "HalfCauchy", "HalfStudentT", "HalfFlat", "Exponential", "Gamma",
                          "InverseGamma", "LogNormal", "Weibull", "ChiSquared", "Lognormal", "Pareto"})


def _numbers(value) -> np.ndarray | None:
    """A hyperparameter as a float array, or None when it is not numeric (a nested Prior)."""
    if isinstance(value, Prior):
        return None
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None


def check_prior(key: str, prior: Prior, group: str) -> None:
    """Refuse hyperparameters that define no distribution, and supports that do not fit the parameter.

    Examples
    --------
    >>> check_prior("sd", Prior("HalfNormal", sigma=-1.0), "sd")
    Traceback (most recent call last):
    ...
    bayesmeta.errors.SpecificationError: priors: 'sd' has sigma=-1.0; it must be positive.
    """
    for name, value in prior.parameters.items():
        numbers = _numbers(value)
        if numbers is None:
            continue
        if not np.all(np.isfinite(numbers)):
            raise SpecificationError(f"priors: {key!r} has {name}={value!r}; hyperparameters must be finite.")
        signed = prior.distribution == "SkewNormal" and name == "alpha"  # a skewness, of either sign
        if name in POSITIVE_PARAMETERS and not signed and np.any(numbers <= 0):
            raise SpecificationError(f"priors: {key!r} has {name}={value!r}; it must be positive.")
    lower, upper = (_numbers(prior.parameters.get(b)) for b in ("lower", "upper"))
    if lower is not None and upper is not None and np.any(lower >= upper):
        raise SpecificationError(f"priors: {key!r} has lower >= upper ({prior}).")
    if group in SD_NAMES.values() or group in SD_NAMES or group == "sd":
        bounded = prior.distribution in ("Uniform", "TruncatedNormal") and lower is not None and np.all(lower >= 0)
        what = "variances" if group in SD_NAMES else "standard deviations"
        if prior.distribution not in NON_NEGATIVE and not bounded and prior.transform != "exp":
            raise SpecificationError(f"priors: {key!r} is a prior of {what}, which are positive; "
                                     f"{prior} puts mass on negative values (use e.g. HalfNormal, LogNormal "
                                     "or transform='exp').")
    if group == "rho" and prior.distribution == "Uniform" and lower is not None and upper is not None \
            and (np.any(lower < -1) or np.any(upper > 1)):
        raise SpecificationError(f"priors: {key!r} is a prior of correlations; {prior} reaches outside [-1, 1].")


def resolve_priors(design: Design, param: Parameterization, priors=None) -> PriorSet:
    """Defaults, then the user's ``priors`` dict (or ``"flat"``) on top.

    Raises
    ------
    SpecificationError
        For unknown keys, names that match no parameter, or values that are not Priors.
    """
    sd_keys, rho_names, un_names = free_labels(param)
    sd_families, sd_names = (tuple(x) for x in zip(*sd_keys)) if sd_keys else ((), ())
    beta_names = list(design.coef_names)
    alpha_names = param.alpha_names()
    delta_names = tuple(param.delta_names())
    zeta_names = tuple(param.coefficient_names("zeta"))
    if priors is not None and not isinstance(priors, (dict, str)):
        raise SpecificationError(f"priors: expected a dict such as {{'sd': Prior('HalfNormal', sigma=1)}} or 'flat', "
                                 f"got {type(priors).__name__}.")
    if isinstance(priors, str):
        if priors != "flat":
            raise SpecificationError(f"priors: expected a dict or 'flat', got {priors!r}.")
        lo = _rho_lower_bounds(param)
        return PriorSet(tuple(Prior("Flat") for _ in beta_names), tuple(Prior("HalfFlat") for _ in sd_names),
                        tuple(Prior("Uniform", lower=b, upper=1.0) for b in lo), 1.0 if un_names else None,
                        tuple(beta_names), sd_names, tuple(rho_names), flat=True,
                        alpha=tuple(Prior("Flat") for _ in alpha_names), alpha_names=tuple(alpha_names),
                        sd_families=sd_families, delta=tuple(Prior("Flat") for _ in delta_names),
                        delta_names=delta_names, zeta=tuple(Prior("Flat") for _ in zeta_names), zeta_names=zeta_names)
    sy = float(np.std(design.y)) or 1.0
    beta = {n: Prior("Normal", mu=0.0, sigma=round(s, 6)) for n, s in zip(beta_names, _beta_scales(design))}
    sd = {key: Prior("HalfNormal", sigma=round(s, 6)) for key, s in zip(sd_keys, _sd_scales(design, param, sy))}
    rho = {n: Prior("Uniform", lower=b, upper=1.0) for n, b in zip(rho_names, _rho_lower_bounds(param))}
    alpha = dict(zip(alpha_names, _alpha_priors(param, sy)))
    delta = dict(zip(delta_names, _delta_priors(param)))
    zeta = dict(zip(zeta_names, _zeta_priors(param)))
    scales = {key: "sd" for key in sd}
    eta = DEFAULT_LKJ_ETA if un_names else None
    for key, value in dict(priors or {}).items():
        if not isinstance(key, str):
            raise SpecificationError(f"priors: keys are parameter names such as 'beta' or 'sd[district]', got {key!r}.")
        if key == "lkj_eta":
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(value) or value <= 0:
                raise SpecificationError(f"priors: 'lkj_eta' must be a positive number, got {value!r}.")
            eta = float(value) if un_names else None
            continue
        group, _, name = key.partition("[")
        families = {name: {k: v for k, v in sd.items() if k[0] == family}
                    for family, sd_name in SD_NAMES.items() for name in (family, sd_name)}
        coefficients = {"beta": beta, "rho": rho, "alpha": alpha, "delta": delta, "zeta": zeta}
        targets = {"sd": sd, **coefficients, **families}.get(group)
        if targets is None:
            raise SpecificationError(
                f"priors: unknown key {key!r}; use 'beta', 'sd' (or 'sigma', 'tau', 'gamma'), the variances "
                "'sigma2', 'tau2', 'gamma2', 'rho', 'alpha', 'delta', 'zeta', 'lkj_eta' or e.g. 'sd[district]', "
                "'tau2[row]'.")
        if not isinstance(value, Prior):
            raise SpecificationError(f"priors: {key!r} must be a pymc_extras.prior.Prior, got {type(value).__name__}.")
        check_prior(key, value, group)
        labels = {k: (k[1] if isinstance(k, tuple) else k) for k in targets}
        if name:
            name = name[:-1] if name.endswith("]") else name
            chosen = [k for k, label in labels.items() if label == name]
            if not chosen:
                raise SpecificationError(f"priors: {key!r} matches no parameter; {group} parameters: "
                                         f"{', '.join(labels.values()) or 'none'}.")
        else:
            chosen = list(targets)
            if not chosen and group in families:
                raise SpecificationError(f"priors: {key!r} matches no parameter: the model has no free "
                                         f"{_family_of(group)} components.")
        destination = targets if group in coefficients else sd
        for k in chosen:
            destination[k] = value
            if destination is sd:
                scales[k] = "variance" if group in SD_NAMES else "sd"
    return PriorSet(tuple(beta.values()), tuple(sd.values()), tuple(rho.values()), eta,
                    tuple(beta_names), sd_names, tuple(rho_names),
                    alpha=tuple(alpha.values()), alpha_names=tuple(alpha_names), sd_families=sd_families,
                    sd_scales=tuple(scales.values()), delta=tuple(delta.values()), delta_names=delta_names,
                    zeta=tuple(zeta.values()), zeta_names=zeta_names)


def _family_of(name: str) -> str:
    """The variance family of an SD name or of the family itself."""
    return name if name in SD_NAMES else next(f for f, sd_name in SD_NAMES.items() if sd_name == name)


def _rho_lower_bounds(param: Parameterization) -> list[float]:
    out = []
    for t, fr in zip(param.terms, param.fixed_rho):
        if t.structure.correlation.prior == "uniform":
            out += [t.structure.rho_lower_bound(t.q)] * int(np.isnan(fr).sum())
    return out
