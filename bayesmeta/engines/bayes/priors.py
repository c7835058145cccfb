"""Priors of the Bayesian engine: defaults scaled to the data, and user overrides.

Priors are :class:`pymc_extras.prior.Prior` objects. The ``priors`` argument of
:meth:`~bayesmeta.MetaModel.sample` is a dict with any of

``"beta"``
    a Prior for every fixed effect;
``"sd"``
    a Prior for every random-effect standard deviation; ``"sigma"``, ``"tau"``,
    ``"gamma"`` for those of one family (the SDs of ``sigma2``, ``tau2``, ``gamma2``);
``"lkj_eta"``
    the shape of the LKJ prior on every unstructured (UN) correlation matrix;
``"rho"``
    a Prior for every single correlation of a CS, HCS, AR or HAR structure;
``"alpha"``
    a Prior for every scale coefficient of a location-scale model;
``"beta[name]"``, ``"sd[label]"``, ``"sigma[label]"``, ``"rho[label]"``, ``"alpha[name]"``
    overrides for one parameter (names as in :meth:`PriorSet.table`).

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
  drift to +-infinity under ML/REML (a group without heterogeneity) finite.

``priors="flat"`` gives flat priors in every free parameter's own coordinates
(Flat fixed effects, HalfFlat SDs, uniform single correlations and uniform
canonical partial correlations of UN matrices, Flat scale coefficients): the
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

    def table(self) -> pd.DataFrame:
        """One row per parameter: its name and prior."""
        rows = [(f"beta[{n}]", str(p)) for n, p in zip(self.beta_names, self.beta)]
        rows += [(f"{SD_NAMES[f]}[{n}]", str(p)) for f, n, p in zip(self.sd_families, self.sd_names, self.sd)]
        rows += [(f"rho[{n}]", str(p)) for n, p in zip(self.rho_names, self.rho)]
        rows += [(f"alpha[{n}]", str(p)) for n, p in zip(self.alpha_names, self.alpha)]
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


def _alpha_priors(param: Parameterization, sy: float) -> list:
    """Default Normal priors of the scale coefficients (see the module docstring)."""
    out = []
    for sc in param.scale_models:
        if sc is None:
            continue
        spread = sc.W.std(axis=0)
        varying = spread > 0
        width = ALPHA_SCALE * (1 + np.sum(np.abs(sc.W.mean(axis=0)[varying]) / spread[varying]))
        centre = 2 * np.log(sy) / np.where(varying, 1.0, sc.W[0])  # a constant column c: c * alpha = 2 log s
        out += [Prior("Normal", mu=0.0, sigma=round(ALPHA_SCALE / s, 6)) if s > 0
                else Prior("Normal", mu=round(float(m), 6), sigma=round(float(width), 6))
                for s, m in zip(spread, centre)]
    return out


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
    if isinstance(priors, str):
        if priors != "flat":
            raise SpecificationError(f"priors: expected a dict or 'flat', got {priors!r}.")
        lo = _rho_lower_bounds(param)
        return PriorSet(tuple(Prior("Flat") for _ in beta_names), tuple(Prior("HalfFlat") for _ in sd_names),
                        tuple(Prior("Uniform", lower=b, upper=1.0) for b in lo), 1.0 if un_names else None,
                        tuple(beta_names), sd_names, tuple(rho_names), flat=True,
                        alpha=tuple(Prior("Flat") for _ in alpha_names), alpha_names=tuple(alpha_names),
                        sd_families=sd_families)
    sy = float(np.std(design.y)) or 1.0
    beta = {n: Prior("Normal", mu=0.0, sigma=round(s, 6)) for n, s in zip(beta_names, _beta_scales(design))}
    sd = {key: Prior("HalfNormal", sigma=round(s, 6)) for key, s in zip(sd_keys, _sd_scales(design, param, sy))}
    rho = {n: Prior("Uniform", lower=b, upper=1.0) for n, b in zip(rho_names, _rho_lower_bounds(param))}
    alpha = dict(zip(alpha_names, _alpha_priors(param, sy)))
    eta = DEFAULT_LKJ_ETA if un_names else None
    for key, value in dict(priors or {}).items():
        if key == "lkj_eta":
            if not np.isscalar(value) or value <= 0:
                raise SpecificationError(f"priors: 'lkj_eta' must be a positive number, got {value!r}.")
            eta = float(value) if un_names else None
            continue
        group, _, name = key.partition("[")
        targets = {"beta": beta, "sd": sd, "rho": rho, "alpha": alpha, **{
            sd_name: {k: v for k, v in sd.items() if k[0] == family} for family, sd_name in SD_NAMES.items()}}.get(group)
        if targets is None:
            raise SpecificationError(
                f"priors: unknown key {key!r}; use 'beta', 'sd' (or 'sigma', 'tau', 'gamma'), 'rho', 'alpha', "
                "'lkj_eta' or e.g. 'sd[district]'.")
        if not isinstance(value, Prior):
            raise SpecificationError(f"priors: {key!r} must be a pymc_extras.prior.Prior, got {type(value).__name__}.")
        labels = {k: (k[1] if isinstance(k, tuple) else k) for k in targets}
        if name:
            name = name[:-1] if name.endswith("]") else name
            chosen = [k for k, label in labels.items() if label == name]
            if not chosen:
                raise SpecificationError(f"priors: {key!r} matches no parameter; {group} parameters: "
                                         f"{', '.join(labels.values()) or 'none'}.")
        else:
            chosen = list(targets)
            if not chosen and group in SD_NAMES.values():
                raise SpecificationError(f"priors: {key!r} matches no parameter: the model has no free "
                                         f"{group} (SDs of the {_family_of(group)} components).")
        destination = sd if group not in ("beta", "rho", "alpha") else targets
        for k in chosen:
            destination[k] = value
    return PriorSet(tuple(beta.values()), tuple(sd.values()), tuple(rho.values()), eta,
                    tuple(beta_names), sd_names, tuple(rho_names),
                    alpha=tuple(alpha.values()), alpha_names=tuple(alpha_names), sd_families=sd_families)


def _family_of(sd_name: str) -> str:
    return next(f for f, name in SD_NAMES.items() if name == sd_name)


def _rho_lower_bounds(param: Parameterization) -> list[float]:
    out = []
    for t, fr in zip(param.terms, param.fixed_rho):
        if t.structure.correlation.prior == "uniform":
            out += [t.structure.rho_lower_bound(t.q)] * int(np.isnan(fr).sum())
    return out
