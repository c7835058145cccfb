"""Sampling the posterior (PyMC's or nutpie's NUTS) and the prior of the PyMC model."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pymc as pm

from ...design.build import Design
from ...design.parameters import Parameterization
from . import nutpie_backend
from .augment import add_prior_predictive, add_random_effects_and_predictions
from .priors import PriorSet
from .pymc_model import build_model

#: PyMC adapts a dense mass matrix up to this many free parameters (a diagonal one above).
DENSE_MASS_MAX = 100

#: Store per-block log-likelihoods when blocks x draws stays below this (memory).
MAX_LOGLIK_VALUES = 50_000_000


def sample(design: Design, param: Parameterization, prior_set: PriorSet, *, draws: int, tune: int,
           chains: int, cores: int | None, random_seed, sampler: str, progressbar: bool, **kwargs):
    """Run NUTS and return the InferenceData, with per-block log-likelihoods moved to their group."""
    store = design.n_blocks * draws * chains <= MAX_LOGLIK_VALUES
    model = build_model(design, param, prior_set, store_block_loglik=store)
    kwargs.setdefault("target_accept", 0.9)
    if sampler == "nutpie":
        kwargs.setdefault("low_rank_modified_mass_matrix", True)  # nutpie's answer to correlations
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
    model = build_model(design, param, prior_set)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Potential.*")
        idata = pm.sample_prior_predictive(draws=draws, model=model, random_seed=random_seed)
    add_prior_predictive(idata, design, param, random_seed)
    return idata
