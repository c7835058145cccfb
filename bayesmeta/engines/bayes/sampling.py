"""Sampling the posterior (PyMC's or nutpie's NUTS) and the prior of the PyMC model."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pymc.backends.arviz import coords_and_dims_for_inferencedata

from ...design.build import Design
from ...design.parameters import Parameterization
from ..mode.centring import centre_outcome
from . import nutpie_backend
from .augment import add_prior_predictive, add_random_effects_and_predictions
from .draws import parameter_draws, v_factor_draws
from .options import available_cores
from .pointwise import row_log_likelihood
from .priors import PriorSet
from .pymc_model import (
    SharedHyperparameters,
    build_model,
    fixed_effects_start,
    standardised_priors,
)

#: PyMC adapts a dense mass matrix up to this many free parameters (a diagonal one above).
DENSE_MASS_MAX = 100

#: Store log-likelihoods (per row or per block) when their number x draws stays below this (memory).
MAX_LOGLIK_VALUES = 50_000_000
#: NUTS's target acceptance rate unless the user sets one (both samplers).
TARGET_ACCEPT = 0.9
#: What the log_likelihood group holds: each row given the others, or each independent block.
LOO_KINDS = ("row", "cluster")


@contextmanager
def pymc_logs(verbose: bool):
    """PyMC's informational log lines (sampler assignment, initialisation, chains, timing) only
    when ``verbose``; its warnings always."""
    logger = logging.getLogger("pymc")
    before = logger.level
    if not verbose:
        logger.setLevel(max(before, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(before)


def sample(design: Design, param: Parameterization, prior_set: PriorSet, *, draws: int, tune: int,
           chains: int, cores: int | None, random_seed, sampler: str, progressbar: bool, loo: str = "row",
           **kwargs):
    """Run NUTS and return the InferenceData with its ``log_likelihood`` (per row or per block,
    see ``loo``) and ``log_prior`` groups, random effects and posterior predictive."""
    # PyMC's log lines come with the progress bar: progressbar=False silences both
    if sampler == "nutpie":  # a grid of one: the same compiled form serves single fits and grids
        ((idata, _),) = sample_grid(design, param, [prior_set], draws=draws, tune=tune, chains=chains, cores=cores,
                                    random_seed=random_seed, progressbar=progressbar, loo=loo, **kwargs)
        return idata
    store = (design.n_blocks if loo == "cluster" else design.n) * draws * chains <= MAX_LOGLIK_VALUES
    model = build_model(design, param, prior_set, store_block_loglik=store and loo == "cluster")
    kwargs.setdefault("target_accept", TARGET_ACCEPT)
    if cores is None:  # PyMC's default takes half the CPUs (it assumes hyper-threads)
        cores = min(chains, available_cores())
    # a dense mass matrix absorbs correlations between parameters (an intercept and an
    # uncentred moderator's slope), which otherwise cause divergences; cheap in few dimensions
    dimension = sum(np.size(v) for v in model.initial_point().values())
    kwargs.setdefault("init", "jitter+adapt_full" if dimension <= DENSE_MASS_MAX else "jitter+adapt_diag")
    start = fixed_effects_at_outcome(model, design)
    if start is not None:
        kwargs.setdefault("initvals", start)
    with warnings.catch_warnings(), pymc_logs(progressbar):
        warnings.filterwarnings("ignore", message="QuadPotentialFullAdapt is an experimental feature")
        idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores, random_seed=random_seed,
                          progressbar=progressbar, model=model, compute_convergence_checks=False, **kwargs)
    return complete_idata(idata, design, param, model, loo if store else None, random_seed)


def fixed_effects_at_outcome(model: pm.Model, design: Design) -> dict | None:
    """Initial values of the fixed effects at their weighted least-squares fit when the outcome is
    far from zero (the BCG log risk ratios plus 1e8), where NUTS could not leave a start at 0
    (issue 16); None otherwise."""
    _, b0 = centre_outcome(design)
    return fixed_effects_start(model, design, b0) if np.any(b0) else None


def nutpie_defaults(kwargs: dict) -> None:
    """bayesmeta's defaults for nutpie, in place: :data:`TARGET_ACCEPT` and a low-rank modified mass matrix."""
    kwargs.setdefault("target_accept", TARGET_ACCEPT)
    kwargs.setdefault("low_rank_modified_mass_matrix", True)  # nutpie's answer to correlations


def complete_idata(idata, design: Design, param: Parameterization, model: pm.Model, loo: str | None, random_seed,
                   log_prior: LogPrior | None = None):
    """Log-likelihoods (per row or block; none when ``loo`` is None), log prior (by ``log_prior``, compiled
    for the model when not given), random effects, predictions."""
    if loo == "cluster":
        loglik = idata.posterior["block_loglik"].rename("y")
        idata.add_groups(log_likelihood=loglik.to_dataset())
        idata.posterior = idata.posterior.drop_vars("block_loglik")
    elif loo == "row":
        add_row_log_likelihood(idata, design, param)
    (log_prior or LogPrior(model)).add_to(idata)
    add_random_effects_and_predictions(idata, design, param, random_seed)
    return idata


def sample_grid(design: Design, param: Parameterization, prior_sets: list, *, draws: int, tune: int, chains: int,
                cores: int | None, random_seed, progressbar: bool, loo: str = "row", done=None, **kwargs) -> list:
    """nutpie's NUTS under several prior sets, compiling once per set of prior families.

    Every prior set builds its PyMC model (cheap) with its hyperparameters in shared
    variables (:class:`~bayesmeta.engines.bayes.pymc_model.SharedHyperparameters`); models
    with the same distributions share the compiled log-density of the first, whose
    shared variables take each prior set's values in turn. The draws equal those of
    ``sample(..., sampler="nutpie")`` in distribution (not draw for draw: the compiled
    graphs round differently). ``done`` is called after each prior set (a progress bar's
    ``update``).

    Returns
    -------
    list of (arviz.InferenceData, int)
        Per prior set, in order, its InferenceData and the number of log-densities
        compiled for it (1 for the first of its families, else 0).
    """
    nutpie_defaults(kwargs)
    mode = kwargs.pop("mode", None)
    store = (design.n_blocks if loo == "cluster" else design.n) * draws * chains <= MAX_LOGLIK_VALUES
    groups = {}
    for i, prior_set in enumerate(prior_sets):
        registry = SharedHyperparameters()
        model = build_model(design, param, prior_set, store_block_loglik=store and loo == "cluster", shared=registry)
        key = (tuple(registry.fingerprint), prior_set.lkj_eta, prior_set.flat) if registry.shareable else i
        groups.setdefault(key, []).append((i, model, registry))
    out = [None] * len(prior_sets)
    for members in groups.values():
        _, first, first_registry = members[0]
        family_mode = mode or nutpie_backend.choose_mode(first.logp(), design.n_blocks)
        compiled = nutpie_backend.compile_model(first, family_mode, start=fixed_effects_at_outcome(first, design))
        # takes each prior set's hyperparameters with the shared variables
        log_prior = LogPrior(first, nutpie_backend.single_mode(family_mode))
        for position, (i, model, registry) in enumerate(members):
            first_registry.assign(registry)
            with pymc_logs(progressbar):
                idata = nutpie_backend.sample_compiled(compiled, first, draws=draws, tune=tune, chains=chains,
                                                       cores=cores, random_seed=random_seed,
                                                       progressbar=progressbar, **kwargs)
            out[i] = (complete_idata(idata, design, param, model, loo if store else None, random_seed, log_prior),
                      int(position == 0))
            if done is not None:
                done()
    return out


def add_row_log_likelihood(idata: az.InferenceData, design: Design, param: Parameterization) -> None:
    """The ``log_likelihood`` group: ``y`` (chain, draw, obs), each row's density given the others."""
    beta, G = parameter_draws(param, idata.posterior)
    chains, draws = idata.posterior.sizes["chain"], idata.posterior.sizes["draw"]
    loglik = row_log_likelihood(design, beta, G, v_factor_draws(param, idata.posterior)).reshape(
        chains, draws, design.n)
    coords = {"chain": idata.posterior.chain.values, "draw": idata.posterior.draw.values,
              "obs": list(design.row_labels)}
    idata.add_groups(log_likelihood=xr.Dataset({"y": (("chain", "draw", "obs"), loglik)}, coords=coords))


class LogPrior:
    """The elementwise log prior of a model's free variables, compiled once: the ``log_prior`` group of
    :func:`pymc.compute_log_prior` (one variable per prior, as ``az.psens`` expects), except that
    coefficients sampled through standardised ones (``beta_std``, ``alpha_std``) report the log
    density of their own priors at ``beta`` and ``alpha``, element by element (it differs from the
    standardised coefficients' joint density by the constant log-Jacobian of the transform).

    A model whose hyperparameters are shared variables
    (:class:`~bayesmeta.engines.bayes.pymc_model.SharedHyperparameters`) is evaluated
    with their current values, so one compiled function serves a whole prior grid.
    """

    def __init__(self, model: pm.Model, mode: str | None = None):
        from pymc.model.transform.conditioning import remove_value_transforms
        from pytensor.graph.replace import vectorize_graph

        untransformed = remove_value_transforms(model)  # the posterior holds untransformed values
        names = [rv.name for rv in untransformed.free_RVs]
        values = [untransformed.rvs_to_values[rv] for rv in untransformed.free_RVs]
        # one call for all draws: the graph vectorised over a leading draws dimension
        draws = [pt.tensor(v.name, dtype=v.dtype, shape=(None,) + v.type.shape) for v in values]
        outs = dict(zip(names, vectorize_graph(untransformed.logp(vars=untransformed.free_RVs, sum=False),
                                               replace=dict(zip(values, draws)))))
        # coefficients sampled through standardised ones: the log density of the user's independent
        # Normal priors, element by element, at the coefficients (beta, alpha)
        for name, (mu, sigma, T) in standardised_priors(model).items():
            standardised = draws[names.index(f"{name}_std")]
            outs[name] = pm.logp(pm.Normal.dist(mu=mu, sigma=sigma), pt.dot(standardised, T.T))
            del outs[f"{name}_std"]
        self.inputs, self.names = names, list(outs)
        self.function = pytensor.function(draws, list(outs.values()), on_unused_input="ignore", mode=mode)
        self.coords, self.dims = coords_and_dims_for_inferencedata(untransformed)

    def add_to(self, idata: az.InferenceData) -> None:
        """Add the ``log_prior`` group to ``idata`` (its posterior draws), in place."""
        posterior = idata.posterior
        chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
        values = [posterior[name].values.reshape((chains * draws,) + posterior[name].shape[2:])
                  for name in self.inputs]
        variables = {}
        for name, out in zip(self.names, self.function(*values)):
            out = np.asarray(out).reshape((chains, draws) + np.shape(out)[1:])
            dims = tuple(self.dims.get(name, ()))
            if len(dims) != out.ndim - 2:  # no dims, or one log density for a vector (an LKJ prior)
                dims = tuple(f"{name}_dim_{i}" for i in range(out.ndim - 2))
            variables[name] = (("chain", "draw") + dims, out)
        used = {d for dims, _ in variables.values() for d in dims}
        coords = {"chain": posterior.chain.values, "draw": posterior.draw.values,
                  **{k: v for k, v in self.coords.items() if k in used}}
        idata.add_groups({"log_prior": xr.Dataset(variables, coords=coords)})


def sample_prior(design: Design, param: Parameterization, prior_set: PriorSet, draws: int, random_seed):
    """Prior draws of the parameters and the prior predictive of the outcome, as InferenceData."""
    model = build_model(design, param, prior_set)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Potential.*")
        with pymc_logs(False):
            idata = pm.sample_prior_predictive(draws=draws, model=model, random_seed=random_seed)
    add_prior_predictive(idata, design, param, random_seed)
    return idata
