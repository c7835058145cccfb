"""The PyMC model of a design: the random effects integrated out, the priors of the Bayesian engine.

Free variables: the fixed effects ``beta`` (dim ``term``); the standard
deviations of each variance family, ``sigma``, ``tau`` and ``gamma`` (the SDs
of ``sigma2``, ``tau2`` and ``gamma2``); the free correlations (the canonical
partial correlations ``cpc_<k>`` of each LKJ-distributed matrix, and
``cor_single`` for the single correlations of CS/HCS/AR/HAR). Deterministics
``sigma2``, ``tau2``, ``rho``, ``gamma2`` and ``phi`` carry the names, and their
coordinates the labels, of :class:`~bayesmeta.results.mode.ModeResult`: a
variance and its SD share the dim ``<family>_component`` (e.g.
``sigma2_component``), whose coordinates are the components' labels (fixed
components included; when some SD of a family is fixed, the free ones are the
variable ``<sd>_free`` and the SD variable is a deterministic). The likelihood is
the marginal Gaussian of :mod:`bayesmeta.likelihood.graph`, added as a potential.

Location-scale models add the scale coefficients ``alpha`` (dim ``scale_term``);
the variance of every group of a level with a scale model is ``exp(W alpha)``.
The proportional sampling-variance model (``V_scale=``) adds the coefficients
``delta`` (dim ``v_scale_term``): the sampling covariance is ``D^1/2 V D^1/2``,
``D = diag(exp(W delta))`` over the rows.
A structured term whose SDs and correlation have a scale model (``scale={"outcome |
study": {"tau": ..., "rho": ...}}``) has no SD or correlation variables: the SD of
every (cluster, level) cell is ``exp(0.5 W alpha)`` (its coefficients are part of
``alpha``), and the correlation of every cluster ``tanh(U zeta)``, with the
coefficients ``zeta`` (dim ``cor_term``) of its correlation model.
NUTS works on the coefficients ``beta_std``, ``alpha_std``, ``delta_std`` and
``zeta_std`` of the standardised moderators (``beta = T beta_std``, ``alpha = T
alpha_std``, ..., as the ML/REML engine for alpha, delta and zeta), which removes
the strong correlation between an intercept and uncentred moderators (an uncentred
moderator samples as fast as a centred one); independent Normal priors on the
coefficients (the defaults) become the equivalent multivariate normal prior on the
standardised coefficients, flat priors stay flat, and other priors are put on
``beta``, ``alpha``, ``delta`` or ``zeta`` directly.
Intercept-only models keep ``beta`` as their free variable.
"""

from __future__ import annotations

from contextvars import ContextVar

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc_extras.prior import Prior

from ...design.build import Design
from ...design.parameters import SD_NAMES, Parameterization
from ...design.scale_models import standardising_transform
from ...likelihood.graph import SharedData, block_loglik, total_loglik
from ...spec.structures import Unstructured, lower_pairs
from .priors import PriorSet


def component_dim(family: str) -> str:
    """The dim of a variance family (and of its SD) or a correlation family in the posterior."""
    return f"{family}_component"


def _same_family(priors) -> bool:
    first = priors[0]
    return all(
        p.distribution == first.distribution and p.transform == first.transform
        and set(p.parameters) == set(first.parameters)
        and all(np.isscalar(v) for v in p.parameters.values()) for p in priors)


class SharedHyperparameters:
    """The hyperparameters of a model's vector priors as shared variables.

    A model built with a registry (:func:`build_model` ``shared=``) takes its prior
    hyperparameters from shared variables, so its compiled log-density serves every
    prior set of the same families: :meth:`assign` sets the values of another
    registry built for another prior set. ``fingerprint`` lists the distributions;
    ``shareable`` is False when some prior could not be put into shared variables
    (priors of different families within one vector).
    """

    def __init__(self):
        self.shared: dict = {}
        self.values: dict = {}
        self.fingerprint: list = []
        self.shareable = True

    def register(self, name: str, key: str, value: np.ndarray):
        self.values[(name, key)] = value
        self.shared[(name, key)] = pytensor.shared(value, name=f"{name}_{key}")
        return self.shared[(name, key)]

    def assign(self, other: SharedHyperparameters) -> None:
        """Take the hyperparameter values of ``other`` (same fingerprint)."""
        for key, variable in self.shared.items():
            variable.set_value(other.values[key])


_SHARED: ContextVar = ContextVar("shared_hyperparameters", default=None)


def _vector_variable(name: str, priors: tuple, dim: str):
    """One vector variable when all priors share a distribution, else one per element, stacked."""
    registry = _SHARED.get()
    if _same_family(priors):
        params = {k: np.array([p.parameters[k] for p in priors], dtype=float) for k in priors[0].parameters}
        if registry is not None:
            registry.fingerprint.append((name, priors[0].distribution, priors[0].transform, tuple(params)))
            params = {k: registry.register(name, k, v) for k, v in params.items()}
        return Prior(priors[0].distribution, **params, dims=dim, transform=priors[0].transform).create_variable(name)
    if registry is not None:
        registry.shareable = False
    parts = [p.deepcopy().create_variable(f"{name}_{i}") for i, p in enumerate(priors)]
    return pm.Deterministic(name, pt.stack(parts), dims=dim)


def _sd_variable(name: str, variance_name: str, priors: tuple, scales: tuple, dim: str):
    """Free SDs whose priors are on the SDs or on the variances (``scales``: "sd" or "variance").

    Priors on variances create the variance variable (``variance_name``, or
    ``<variance_name>_<i>`` one by one when mixed with SD priors) and take its root.
    """
    if all(s == "sd" for s in scales):
        return _vector_variable(name, priors, dim)
    if all(s == "variance" for s in scales):
        return pm.Deterministic(name, pt.sqrt(_vector_variable(variance_name, priors, dim)), dims=dim)
    parts = [p.deepcopy().create_variable(f"{name}_{i}") if s == "sd"
             else pt.sqrt(p.deepcopy().create_variable(f"{variance_name}_{i}"))
             for i, (p, s) in enumerate(zip(priors, scales))]
    return pm.Deterministic(name, pt.stack(parts), dims=dim)


def _lkj_correlations(name: str, q: int, prior_set: PriorSet):
    """Correlations (metafor's pair order) of a matrix with an LKJ prior, through canonical
    partial correlations (CPCs).

    With CPC (i, j) ~ Beta(b_j, b_j) on (-1, 1), b_j = eta + (q - 2 - j) / 2, the
    correlation matrix has exactly the LKJ(eta) distribution (Lewandowski, Kurowicka
    and Joe 2009, C-vine); under flat priors the CPCs are uniform.
    """
    _, cols = lower_pairs(q)
    if prior_set.flat:
        u = pm.Uniform(name, 0.0, 1.0, shape=len(cols))
    else:
        b = prior_set.lkj_eta + (q - 2 - cols) / 2.0
        u = pm.Beta(name, alpha=b, beta=b, shape=len(cols))
    return Unstructured.correlations_pt(2.0 * u - 1.0, q)


def _independent_normals(priors) -> bool:
    return all(p.distribution == "Normal" and set(p.parameters) == {"mu", "sigma"}
               and all(np.isscalar(v) for v in p.parameters.values()) for p in priors)


def _standardised_coefficients(name: str, priors: tuple, T: np.ndarray, flat: bool, dim: str):
    """Coefficients ``name`` = ``T @ <name>_std``: NUTS works on the coefficients of standardised
    columns (``X @ T``), which removes the correlation between an intercept and uncentred
    moderators. Independent Normal priors on the coefficients become the equivalent
    multivariate normal prior on the standardised ones (with a prior grid's hyperparameters in
    shared variables), flat priors stay flat; other priors go on the coefficients directly."""
    if not (flat or _independent_normals(priors)):
        return _vector_variable(name, priors, dim)
    std_name = f"{name}_std"
    if flat:
        standardised = pm.Flat(std_name, dims=dim)
    else:
        T_inv = np.linalg.inv(T)
        mu = np.array([p.parameters["mu"] for p in priors], dtype=float)
        sigma = np.array([p.parameters["sigma"] for p in priors], dtype=float)
        registry = _SHARED.get()
        if registry is not None:
            registry.fingerprint.append((name, "Normal", "standardised", ("mu", "sigma")))
            mu, sigma = registry.register(name, "mu", mu), registry.register(name, "sigma", sigma)
            cov = pt.dot(T_inv * sigma ** 2, T_inv.T)
        else:
            cov = T_inv @ np.diag(sigma ** 2) @ T_inv.T
        standardised = pm.MvNormal(std_name, mu=pt.dot(T_inv, mu), cov=(cov + cov.T) / 2, dims=dim)
        standardised_priors(pm.modelcontext(None))[name] = (mu, sigma, T)
    return pm.Deterministic(name, pt.dot(T, standardised), dims=dim)


def standardised_priors(model: pm.Model) -> dict:
    """The coefficients sampled through standardised ones whose priors are independent Normals:
    name -> (mu, sigma, T), with ``name = T @ <name>_std`` (see :func:`_standardised_coefficients`)."""
    if not hasattr(model, "bayesmeta_standardised"):
        model.bayesmeta_standardised = {}
    return model.bayesmeta_standardised


def beta_transform(design: Design) -> np.ndarray | None:
    """T with ``X @ T`` the fixed-effects design with its non-constant columns centred (when
    there is an intercept) and scaled; None when there is nothing to standardise."""
    T = standardising_transform(design.X)
    return None if np.array_equal(T, np.eye(len(T))) else T


def fixed_effects_start(model: pm.Model, design: Design, beta: np.ndarray) -> dict | None:
    """Initial values that put the fixed effects at ``beta``: of ``beta_std`` or of ``beta``
    (None when beta stacks priors of different families)."""
    if "beta_std" in model.named_vars:
        return {"beta_std": np.linalg.solve(beta_transform(design), beta)}
    if model["beta"] in model.free_RVs:
        return {"beta": np.asarray(beta, dtype=float)}  # dims "term": shape (p,)
    return None


def _fixed_effects(design: Design, prior_set: PriorSet):
    T = beta_transform(design)
    if T is None:
        return _vector_variable("beta", prior_set.beta, "term")
    return _standardised_coefficients("beta", prior_set.beta, T, prior_set.flat, "term")


def _part_coefficients(param: Parameterization, part: str, priors: tuple, flat: bool, dim: str):
    """The ``"alpha"`` or ``"zeta"`` coefficients (dim ``dim``) over the standardised moderators of
    all their blocks (:meth:`Parameterization.coefficient_blocks`)."""
    T = param.coefficient_transform(part)[:, param.coefficient_positions(part)]
    return _standardised_coefficients(part, priors, T, flat, dim)


def _scale_coefficients(param: Parameterization, prior_set: PriorSet):
    """The scale coefficients ``alpha`` (dim ``scale_term``), and per term the vector of its
    groups' variances ``exp(W alpha)`` (None for terms without a scale model of their groups'
    variances: structured terms with a scale model get theirs from :func:`_coscale_rows`)."""
    alpha = _part_coefficients(param, "alpha", prior_set.alpha, prior_set.flat, "scale_term")
    variances = [None if param.scale_of(k) is None else
                 pt.exp(pt.dot(param.scale_of(k).W, alpha[param.alpha_slice(k)])) for k in range(len(param.terms))]
    return alpha, variances


def _coscale_rows(param: Parameterization, prior_set: PriorSet, alpha) -> list:
    """Scale models of structured terms: the correlation coefficients ``zeta`` (dim ``cor_term``), and per
    term None or ``(sd_rows, rho_rows, correlation)``: every row's SD ``exp(0.5 w_cell' alpha)`` of its
    (cluster, level) cell, its cluster's correlation ``tanh(u_cluster' zeta)`` (0 for structures without
    one) and the term's correlation family (as :func:`bayesmeta.likelihood.graph.block_loglik` takes them)."""
    zeta = _part_coefficients(param, "zeta", prior_set.zeta, prior_set.flat, "cor_term") if param.n_zeta else None
    out = []
    for k, t in enumerate(param.terms):
        cs = param.coscale_of(k)
        if cs is None:
            out.append(None)
            continue
        sd_rows = pt.exp(0.5 * pt.dot(cs.tau.W, alpha[param.alpha_slice(k)]))[cs.cell_of_row]
        if cs.zeta is None:
            rho_rows = pt.zeros(len(cs.cluster_of_row))
        else:
            rho_rows = pt.tanh(pt.dot(cs.zeta.W, zeta[param.coefficient_slice(k, "zeta")]))[cs.cluster_of_row]
        out.append((sd_rows, rho_rows, t.structure.correlation))
    return out


def _modelled(param: Parameterization, k: int) -> bool:
    """Whether term k's variances (and correlations) come from a scale model, not SD and correlation variables."""
    return param.scale_of(k) is not None or param.coscale_of(k) is not None


def _sampling_variance_factors(param: Parameterization, prior_set: PriorSet):
    """The coefficients ``delta`` (dim ``v_scale_term``) of the sampling-variance model and every
    row's factor ``exp(W delta)`` of its sampling variance."""
    sc = param.v_scale
    delta = _standardised_coefficients("delta", prior_set.delta, sc.transform, prior_set.flat, "v_scale_term")
    return pt.exp(pt.dot(sc.W, delta))


def _standard_deviations(model: pm.Model, param: Parameterization, prior_set: PriorSet) -> list:
    """The SD vector of every term (fixed entries as constants; None for a term with a scale model,
    structured terms included).

    Each variance family gets one SD variable over its components: the free
    variable itself when all are free, else a deterministic over the free
    variable ``<sd>_free`` and the fixed values.
    """
    labels = param.component_labels()
    family_sd, complete = {}, {}
    for family in (f for f in SD_NAMES if f in labels):
        mine = [i for i, f in enumerate(prior_set.sd_families) if f == family]
        priors = tuple(prior_set.sd[i] for i in mine)
        scales = tuple(prior_set.scale_of_sd(i) for i in mine)
        name, dim = SD_NAMES[family], component_dim(family)
        complete[family] = len(mine) == len(labels[family])
        if complete[family]:
            family_sd[family] = _sd_variable(name, family, priors, scales, dim)
            continue
        values = pt.zeros(len(labels[family]))
        if mine:
            free_labels = [prior_set.sd_names[i] for i in mine]
            model.add_coord(f"{family}_free", free_labels)
            free = [labels[family].index(n) for n in free_labels]
            values = pt.set_subtensor(values[free], _sd_variable(f"{name}_free", f"{family}_free", priors, scales,
                                                                 f"{family}_free"))
        family_sd[family] = values
    out, start, parts = [], {f: 0 for f in family_sd}, {f: [] for f in family_sd}
    for k, (t, fs) in enumerate(zip(param.terms, param.fixed_sd)):
        if _modelled(param, k):
            out.append(None)
            continue
        sd = family_sd[t.family][start[t.family]:start[t.family] + t.n_sd]
        start[t.family] += t.n_sd
        fixed = np.flatnonzero(~np.isnan(fs))
        if len(fixed):
            sd = pt.set_subtensor(sd[fixed], fs[fixed])
        parts[t.family].append(sd)
        out.append(sd)
    for family in family_sd:
        if not complete[family]:
            pm.Deterministic(SD_NAMES[family], pt.concatenate(parts[family]).copy(), dims=component_dim(family))
    return out


def _correlations(param: Parameterization, prior_set: PriorSet) -> list:
    """The correlation vector of every term (fixed entries as constants; empty for a term with a scale model)."""
    single = [t.rho_label(i) for t, fr in zip(param.terms, param.fixed_rho)
              if t.structure.correlation.prior == "uniform" for i in np.flatnonzero(np.isnan(fr))]
    free_single = None
    if single:
        pm.modelcontext(None).add_coord("single", single)
        free_single = _vector_variable("cor_single", prior_set.rho, "single")
    out, i_single = [], 0
    for k, (t, fr) in enumerate(zip(param.terms, param.fixed_rho)):
        free = np.flatnonzero(np.isnan(fr))
        if _modelled(param, k) or not len(free):
            out.append(pt.as_tensor_variable(np.nan_to_num(fr)))
        elif t.structure.correlation.prior == "lkj":
            out.append(_lkj_correlations(f"cpc_{k}", t.q, prior_set))
        else:
            out.append(free_single[i_single:i_single + len(free)])
            i_single += len(free)
    return out


def build_model(design: Design, param: Parameterization, prior_set: PriorSet,
                restricted: bool = False, store_block_loglik: bool = False,
                shared: SharedHyperparameters | None = None, data: SharedData | None = None) -> pm.Model:
    """The PyMC model of a design under the given priors.

    Parameters
    ----------
    design : Design
    param : Parameterization
    prior_set : PriorSet
    restricted : bool
        Add the restricted-likelihood term (its mode under flat priors is REML).
    store_block_loglik : bool
        Keep the log-likelihood of every block as the deterministic ``block_loglik``
        (moved to the ``log_likelihood`` group after sampling).
    shared : SharedHyperparameters, optional
        Take the priors' hyperparameters from shared variables, recorded here.
    data : SharedData, optional
        The design's data (outcome, sampling covariances) as shared variables, so that one
        compiled model serves designs that differ only in them (see
        :class:`bayesmeta.likelihood.graph.SharedData`).
    """
    token = _SHARED.set(shared)
    try:
        return _build_model(design, param, prior_set, restricted, store_block_loglik, data)
    finally:
        _SHARED.reset(token)


def _build_model(design: Design, param: Parameterization, prior_set: PriorSet, restricted: bool,
                 store_block_loglik: bool, data) -> pm.Model:
    labels = param.component_labels()
    coords = {"term": list(design.coef_names), "block": np.arange(design.n_blocks)}
    coords.update({component_dim(family): names for family, names in labels.items()})
    if param.has_scale:
        coords["scale_term"] = param.alpha_names()
    if param.v_scale is not None:
        coords["v_scale_term"] = param.delta_names()
    if param.n_zeta:
        coords["cor_term"] = param.coefficient_names("zeta")
    with pm.Model(coords=coords) as model:
        beta = _fixed_effects(design, prior_set)
        variances, coscale = None, None
        if param.has_scale:
            alpha, variances = _scale_coefficients(param, prior_set)
            coscale = _coscale_rows(param, prior_set, alpha) if param.has_coscale else None
        v_factors = _sampling_variance_factors(param, prior_set) if param.v_scale is not None else None
        sds = _standard_deviations(model, param, prior_set)
        rhos = _correlations(param, prior_set)
        G, families = [], {f: [] for f in labels}
        for t, sd, rho in zip(param.terms, sds, rhos):
            if sd is None:
                G.append(None)
                continue
            G.append(t.structure.covariance_pt(sd, rho, t.q))
            families[t.family].append(sd ** 2)
            if t.correlation_family and t.n_rho:
                families[t.correlation_family].append(rho)
        for family, parts in families.items():
            if family in model.named_vars:  # the variances themselves carry the prior
                continue
            # copies: pt.concatenate of one part returns that part itself, and two
            # deterministics must never share one variable (the second would rename it)
            pm.Deterministic(family, pt.concatenate(parts).copy(), dims=component_dim(family))
        if store_block_loglik:
            pm.Deterministic("block_loglik", block_loglik(design, beta, G, variances=variances, data=data,
                                                          v_factors=v_factors, coscale=coscale)[0], dims="block")
        # nested intercepts only, each with one free SD: the likelihood takes the variances directly (fewer nodes)
        simple = (variances is None and v_factors is None and len(param.terms) > 0
                  and all(t.q == 1 for t in param.terms)
                  and not np.any(~np.isnan(np.concatenate(param.fixed_sd))))
        term_variances = pt.concatenate([sd ** 2 for sd in sds]) if simple else None
        pm.Potential("loglik", total_loglik(design, beta, G, restricted=restricted, variances=variances,
                                            term_variances=term_variances, data=data, v_factors=v_factors,
                                            coscale=coscale))
    return model
