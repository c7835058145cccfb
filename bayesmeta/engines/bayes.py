"""The Bayesian engine: a PyMC model with the random effects integrated out.

Free variables: the fixed effects ``beta`` (dim ``term``), the free random-effect
standard deviations ``sd`` (dim ``component``) and the free correlations (the
canonical partial correlations ``cpc_k`` of each UN matrix, with an exact LKJ prior,
and ``cor_single`` for the single correlations of CS/HCS/AR/HAR), gathered in the
deterministic ``cor`` (dim ``correlation``). Deterministics ``sigma2``, ``tau2``,
``rho``, ``gamma2`` and ``phi`` carry the frequentist names of
:class:`~bayesmeta.results.ModeResult`. The likelihood is the marginal Gaussian
of :mod:`bayesmeta.graph`, added as a potential, block by block.

Location-scale models add the scale coefficients ``alpha`` (dim ``scale_term``);
the variance of every group of a level with a scale model is ``exp(W alpha)``.
NUTS works on the coefficients ``alpha_std`` of the standardised moderators
(``alpha = T alpha_std``, as the ML/REML engine), which removes the strong
correlation between an intercept and uncentred moderators; independent Normal
priors on ``alpha`` (the default) become the equivalent multivariate normal prior
on ``alpha_std``, flat priors stay flat, and other priors are put on ``alpha``
directly.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc_extras.prior import Prior

from ..design import Design
from ..graph import block_loglik, total_loglik
from ..parameters import FAMILIES, Parameterization
from ..priors import PriorSet, free_labels


def _same_family(priors) -> bool:
    first = priors[0]
    return all(
        p.distribution == first.distribution and set(p.parameters) == set(first.parameters)
        and all(np.isscalar(v) for v in p.parameters.values()) for p in priors)


def _vector_variable(name: str, priors: tuple, dim: str):
    """One vector variable when all priors share a distribution, else one per element, stacked."""
    if _same_family(priors):
        params = {k: np.array([p.parameters[k] for p in priors], dtype=float) for k in priors[0].parameters}
        return Prior(priors[0].distribution, **params, dims=dim).create_variable(name)
    parts = [p.deepcopy().create_variable(f"{name}_{i}") for i, p in enumerate(priors)]
    return pm.Deterministic(name, pt.stack(parts), dims=dim)


def _cpc_correlations(z, q: int):
    """Lower-triangle (row-wise) correlations of the matrix with canonical partial correlations z.

    The PyTensor twin of :func:`bayesmeta.parameters.cpc_to_correlation`.
    """
    L = [[None] * q for _ in range(q)]
    L[0][0] = pt.constant(1.0)
    k = 0
    for i in range(1, q):
        remaining = pt.constant(1.0)
        for j in range(i):
            L[i][j] = z[k] * pt.sqrt(remaining)
            remaining = remaining - L[i][j] ** 2
            k += 1
        L[i][i] = pt.sqrt(remaining)
    rows = [pt.stack([L[i][j] if j <= i else pt.constant(0.0) for j in range(q)]) for i in range(q)]
    Lm = pt.stack(rows)
    R = Lm @ Lm.T
    i, j = np.tril_indices(q, -1)
    return R[i, j]


def _un_correlations(name: str, q: int, prior_set: PriorSet):
    """Free correlations of a UN matrix through canonical partial correlations (CPCs).

    With CPC (i, j) ~ Beta(b_j, b_j) on (-1, 1), b_j = eta + (q - 2 - j) / 2, the
    correlation matrix has exactly the LKJ(eta) distribution (Lewandowski, Kurowicka
    and Joe 2009, C-vine); under flat priors the CPCs are uniform.
    """
    _, cols = np.tril_indices(q, -1)
    if prior_set.flat:
        u = pm.Uniform(name, 0.0, 1.0, shape=len(cols))
    else:
        b = prior_set.lkj_eta + (q - 2 - cols) / 2.0
        u = pm.Beta(name, alpha=b, beta=b, shape=len(cols))
    return _cpc_correlations(2.0 * u - 1.0, q)


def _scale_coefficients(param: Parameterization, prior_set: PriorSet):
    """The scale coefficients ``alpha`` (dim ``scale_term``), and per term the vector of its
    groups' variances ``exp(W alpha)`` (None for terms without a scale model)."""
    priors = prior_set.alpha
    T = param.alpha_transform()[:, param.alpha_positions()]
    normal = all(p.distribution == "Normal" and set(p.parameters) == {"mu", "sigma"}
                 and all(np.isscalar(v) for v in p.parameters.values()) for p in priors)
    if prior_set.flat or normal:
        if prior_set.flat:
            alpha_std = pm.Flat("alpha_std", dims="scale_term")
        else:
            T_inv = np.linalg.inv(T)
            mu = np.array([p.parameters["mu"] for p in priors], dtype=float)
            sigma = np.array([p.parameters["sigma"] for p in priors], dtype=float)
            cov = T_inv @ np.diag(sigma ** 2) @ T_inv.T
            alpha_std = pm.MvNormal("alpha_std", mu=T_inv @ mu, cov=(cov + cov.T) / 2, dims="scale_term")
        alpha = pm.Deterministic("alpha", pt.dot(T, alpha_std), dims="scale_term")
    else:
        alpha = _vector_variable("alpha", priors, "scale_term")
    variances = [None if sc is None else pt.exp(pt.dot(sc.W, alpha[param.alpha_slice(k)]))
                 for k, sc in enumerate(param.scales)]
    return alpha, variances


def component_labels(param: Parameterization) -> dict[str, list[str]]:
    """Labels of every component (fixed ones included) by family, in ModeResult order
    (terms with a scale model have none)."""
    out: dict[str, list[str]] = {}
    for k, t in enumerate(param.terms):
        if param.scale_of(k) is not None:
            continue
        out.setdefault(t.family, []).extend(
            [param._sd_label(t, i) for i in range(t.n_sd)])
        corr = FAMILIES.get(t.family)
        if corr and t.n_rho:
            out.setdefault(corr, []).extend([param._rho_label(t, i) for i in range(t.n_rho)])
    return out


def build_model(design: Design, param: Parameterization, prior_set: PriorSet,
                restricted: bool = False, store_block_loglik: bool = False) -> pm.Model:
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
    """
    sd_labels, rho_labels, un_labels = free_labels(param)
    labels = component_labels(param)
    coords = {"term": list(design.coef_names), "block": np.arange(design.n_blocks)}
    if sd_labels:
        coords["component"] = sd_labels
    if rho_labels or un_labels:
        coords["correlation"] = rho_labels + un_labels
    for family, names in labels.items():
        coords[f"{family}_name"] = names
    if param.has_scale:
        coords["scale_term"] = param.alpha_names()
    with pm.Model(coords=coords) as model:
        beta = _vector_variable("beta", prior_set.beta, "term")
        variances = _scale_coefficients(param, prior_set)[1] if param.has_scale else None
        sd_free = _vector_variable("sd", prior_set.sd, "component") if sd_labels else None
        if rho_labels:
            model.add_coord("single", rho_labels)
        rho_free = _vector_variable("cor_single", prior_set.rho, "single") if rho_labels else None
        G, families, cors = [], {f: [] for f in labels}, []
        i_sd = i_rho = 0
        for k, (t, fs, fr) in enumerate(zip(param.terms, param.fixed_sd, param.fixed_rho)):
            if param.scale_of(k) is not None:
                G.append(None)
                continue
            sd = pt.as_tensor_variable(np.nan_to_num(fs))
            free = np.flatnonzero(np.isnan(fs))
            if len(free):
                sd = pt.set_subtensor(sd[free], sd_free[i_sd:i_sd + len(free)])
                i_sd += len(free)
            rho = pt.as_tensor_variable(np.nan_to_num(fr))
            free_r = np.flatnonzero(np.isnan(fr))
            if len(free_r) and t.structure.correlation == "unstructured":
                rho = _un_correlations(f"cpc_{k}", t.q, prior_set)
                cors.append(rho)
            elif len(free_r):
                rho = pt.set_subtensor(rho[free_r], rho_free[i_rho:i_rho + len(free_r)])
                cors.append(rho[free_r])
                i_rho += len(free_r)
            G.append(t.structure.covariance_pt(sd, rho, t.q))
            families[t.family].append(sd ** 2 if t.structure.heterogeneous or t.n_sd == 1 else sd[:1] ** 2)
            corr = FAMILIES.get(t.family)
            if corr and t.n_rho:
                families[corr].append(rho)
        if cors:
            # copies: pt.concatenate of one part returns that part itself, and two
            # deterministics must never share one variable (the second would rename it)
            pm.Deterministic("cor", pt.concatenate(cors).copy(), dims="correlation")
        for family, parts in families.items():
            pm.Deterministic(family, pt.concatenate(parts).copy(), dims=f"{family}_name")
        if store_block_loglik:
            pm.Deterministic("block_loglik", block_loglik(design, beta, G, variances=variances)[0], dims="block")
        # nested intercepts only, each with one free SD: the likelihood takes sd^2 directly (fewer nodes)
        simple = (variances is None and all(t.q == 1 for t in param.terms)
                  and len(param.terms) == len(sd_labels) == np.isnan(np.concatenate(param.fixed_sd)).sum())
        pm.Potential("loglik", total_loglik(design, beta, G, restricted=restricted, variances=variances,
                                            term_variances=sd_free ** 2 if simple else None))
    return model


#: PyMC adapts a dense mass matrix up to this many free parameters (a diagonal one above).
DENSE_MASS_MAX = 100

#: Store per-block log-likelihoods when blocks x draws stays below this (memory).
MAX_LOGLIK_VALUES = 50_000_000


def sample(design: Design, param: Parameterization, prior_set: PriorSet, *, draws: int, tune: int,
           chains: int, cores: int | None, random_seed, sampler: str, progressbar: bool, **kwargs):
    """Run NUTS and return the InferenceData, with per-block log-likelihoods moved to their group."""
    from .augment import add_random_effects_and_predictions  # augment imports this module
    store = design.n_blocks * draws * chains <= MAX_LOGLIK_VALUES
    model = build_model(design, param, prior_set, store_block_loglik=store)
    kwargs.setdefault("target_accept", 0.9)
    if sampler == "nutpie":
        kwargs.setdefault("low_rank_modified_mass_matrix", True)  # nutpie's answer to correlations
        from . import nutpie_backend

        # the log-density is called from Python, which serialises the chains: one thread is fastest
        idata = nutpie_backend.sample(model, draws=draws, tune=tune, chains=chains, cores=cores or 1,
                                      random_seed=random_seed, progressbar=progressbar, **kwargs)
    else:
        if cores is None:  # PyMC's default takes half the CPUs (it assumes hyper-threads)
            cores = min(chains, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                        else os.cpu_count() or 1)
        # a dense mass matrix absorbs correlations between parameters (an intercept and an
        # uncentred moderator's slope), which otherwise cause divergences; cheap in few dimensions
        dimension = sum(np.size(v) for v in model.initial_point().values())
        kwargs.setdefault("init", "jitter+adapt_full" if dimension <= DENSE_MASS_MAX else "jitter+adapt_diag")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="QuadPotentialFullAdapt is an experimental feature")
            idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores, random_seed=random_seed,
                              progressbar=progressbar, model=model, compute_convergence_checks=False, **kwargs)
    if store:
        loglik = idata.posterior["block_loglik"].rename("y")
        idata.add_groups(log_likelihood=loglik.to_dataset())
        idata.posterior = idata.posterior.drop_vars("block_loglik")
    add_random_effects_and_predictions(idata, design, param, random_seed)
    return idata


def sample_prior(design: Design, param: Parameterization, prior_set: PriorSet, draws: int, random_seed):
    """Prior draws of the parameters and the prior predictive of the outcome, as InferenceData."""
    from .augment import add_prior_predictive

    model = build_model(design, param, prior_set)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Potential.*")
        idata = pm.sample_prior_predictive(draws=draws, model=model, random_seed=random_seed)
    add_prior_predictive(idata, design, param, random_seed)
    return idata


def natural_from_draws(param: Parameterization, values: dict) -> list:
    """Per-term (sd, rho) from the deterministics sigma2/tau2/rho/gamma2/phi.

    ``values`` maps each family present to an array (S, k) of S draws; the
    result holds, per term, arrays ``sd`` (S, n_sd) and ``rho`` (S, n_rho).
    """
    cursor = {f: 0 for f in ("sigma2", "tau2", "rho", "gamma2", "phi")}
    natural = []
    n_draws = len(next(iter(values.values()))) if values else 0
    for k, t in enumerate(param.terms):
        if param.scale_of(k) is not None:  # no SD: the variances come from alpha
            natural.append((np.zeros((n_draws, 0)), np.zeros((n_draws, 0))))
            continue
        family = values[t.family]
        sd = np.sqrt(family[:, cursor[t.family]:cursor[t.family] + t.n_sd])
        cursor[t.family] += t.n_sd
        rho = np.zeros((len(family), t.n_rho))
        corr = FAMILIES.get(t.family)
        if corr and t.n_rho:
            rho = values[corr][:, cursor[corr]:cursor[corr] + t.n_rho]
            cursor[corr] += t.n_rho
        natural.append((sd, rho))
    return natural


def covariances_from_draws(param: Parameterization, values: dict) -> list[np.ndarray]:
    """Per term, the random-effect covariance of every draw, (S, q, q); for a term with a
    scale model, the variance of each of its groups in every draw, (S, n_groups), from
    ``values["alpha"]`` (S, n_alpha)."""
    out = []
    for k, (t, (sd, rho)) in enumerate(zip(param.terms, natural_from_draws(param, values))):
        sc = param.scale_of(k)
        if sc is not None:
            out.append(np.exp(values["alpha"][:, param.alpha_slice(k)] @ sc.W.T))
        else:
            out.append(np.stack([t.structure.covariance(sd_s, rho_s, t.q) for sd_s, rho_s in zip(sd, rho)]))
    return out


def find_mode(design: Design, param: Parameterization, prior_set: PriorSet, restricted: bool):
    """Posterior mode (MAP) of the graph, as a :class:`~bayesmeta.engines.mode.ModeEstimate`.

    The fixed effects' covariance is the inverse of the posterior precision of
    beta given the variance components (X' Sigma^-1 X plus the precision of Normal
    priors); the log-likelihood reported is that of the graph's likelihood
    (restricted if ``restricted``) at the mode. Scale coefficients get the inverse
    of the likelihood's Hessian plus the precision of their Normal priors.
    """
    from ..likelihood import Evaluation
    from .mode import ModeEstimate, _Objective, scale_inference

    model = build_model(design, param, prior_set, restricted=restricted)
    point, raw = pm.find_MAP(model=model, progressbar=False, method="L-BFGS-B", return_raw=True,
                             options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10000})
    natural = [(sd[0], rho[0]) for sd, rho in
               natural_from_draws(param, {k: np.atleast_1d(v)[None] for k, v in point.items()})]
    alpha = np.atleast_1d(point["alpha"]) if param.has_scale else None
    with np.errstate(divide="ignore"):
        theta = param.theta_from_natural(natural, alpha)  # an SD of exactly 0 maps to -inf, as in ML/REML
    objective = _Objective(design, param, restricted)
    profiled = objective.evaluate(theta)
    beta = np.atleast_1d(point["beta"])
    A = np.linalg.inv(profiled.vcov)
    shift = beta - profiled.beta
    prior_precision = np.array([1.0 / p.parameters["sigma"] ** 2 if p.distribution == "Normal"
                                and np.isscalar(p.parameters.get("sigma")) else 0.0 for p in prior_set.beta])
    vcov = np.linalg.inv(A + np.diag(prior_precision))
    loglik = profiled.loglik - 0.5 * shift @ A @ shift
    zero = [np.zeros((t.q, t.q)) for t in param.terms]
    fe = design.evaluate(zero, reml=False)
    gradient_norm = float(np.max(np.abs(raw.jac))) if getattr(raw, "jac", None) is not None else np.nan
    alpha_vcov, drift = None, ()
    if param.has_scale:
        alpha_precision = np.array([1.0 / p.parameters["sigma"] ** 2 if p.distribution == "Normal"
                                    and np.isscalar(p.parameters.get("sigma")) else 0.0 for p in prior_set.alpha])
        alpha_vcov, drift = scale_inference(objective, theta, alpha_precision)
    return ModeEstimate("MAP", theta, natural, Evaluation(loglik, profiled.quad, beta, vcov, None),
                        bool(raw.success or gradient_norm < 1e-4), str(raw.message), int(getattr(raw, "nit", 0)),
                        gradient_norm, fe.quad, fe.beta, alpha_vcov, drift)


def laplace(design: Design, param: Parameterization, prior_set: PriorSet, draws: int, random_seed,
            restricted: bool = False):
    """Gaussian approximation at the posterior mode (pymc-extras' fit_laplace), with draws."""
    import pymc_extras as pmx

    from .augment import add_random_effects_and_predictions
    model = build_model(design, param, prior_set, restricted=restricted)
    idata = pmx.fit_laplace(model=model, draws=draws, random_seed=random_seed, progressbar=False)
    add_random_effects_and_predictions(idata, design, param, random_seed)
    return idata
