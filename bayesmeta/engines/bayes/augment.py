"""What is added to the posterior after sampling: random effects and predictions.

For every posterior draw the random effects of every covariance term are drawn
from their exact conditional Gaussian (:mod:`bayesmeta.engines.random_effects`) and
stored in the posterior group as ``u_<grouping>``, named by the innermost
grouping column:

* ``u_district``, ``u_study`` for the levels of ``~ 1 | district/study`` (dim named
  like the variable without ``u_``, coords the group labels: the districts as they
  are in the data, the studies as ``"district/study"`` pairs such as ``"3/12"``);
* ``u_trial`` for ``outcome | trial`` or ``1 + x | trial`` terms, with a second
  dim ``trial_effect`` (the inner levels or slope coefficients);
* ``u_row`` for the standard model's row-level effect (coords the data's row labels);
* two terms on one grouping column get the family as suffix (``u_trial_gamma2``).

The posterior predictive group holds ``y`` (dim ``obs``, the rows used) drawn
as ``X beta + Z u + e`` with fresh sampling errors ``e ~ N(0, V)`` (with
``V_scale=``, ``N(0, D^1/2 V D^1/2)`` at the draw's factors, which also enter
the random effects' conditional distribution); the observed data group holds the
observed ``y``.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr

from ...design.build import Design
from ...design.parameters import Parameterization
from ...errors import warn
from ..random_effects import (
    draw_random_effects,
    draw_sampling_errors,
    random_part,
    simulate_outcomes,
)
from .draws import parameter_draws, v_factor_draws

#: Largest number of values (draws x effects, draws x rows) stored per group.
MAX_STORED_VALUES = 50_000_000


def effect_key(label: str, family: str, taken: set) -> str:
    """Short name of a covariance term's grouping, used for the variable and its dim."""
    key = label.split(" | ")[-1].split("/")[-1]
    if key in taken:
        key = f"{key}_{family}"
    taken.add(key)
    return key


def _as_dataset(arrays: dict, chains: int, draws: int, coords: dict) -> xr.Dataset:
    return xr.Dataset({name: (("chain", "draw") + dims, values.reshape((chains, draws) + values.shape[1:]))
                       for name, (dims, values) in arrays.items()},
                      coords={"chain": np.arange(chains), "draw": np.arange(draws), **coords})


def add_random_effects_and_predictions(idata: az.InferenceData, design: Design, param: Parameterization,
                                       random_seed=None) -> None:
    """Add ``u_*`` to the posterior, and the posterior predictive and observed ``y``, in place.

    Parts that would exceed :data:`MAX_STORED_VALUES` values are left out with a warning.
    """
    rng = np.random.default_rng(random_seed)
    chains, draws = idata.posterior.sizes["chain"], idata.posterior.sizes["draw"]
    n_draws = chains * draws
    beta, G = parameter_draws(param, idata.posterior)
    v_factors = v_factor_draws(param, idata.posterior)
    n_effects = sum(enc.term.n_groups * enc.term.q for enc in design.encodings)
    mean = beta @ design.X.T
    if n_draws * n_effects > MAX_STORED_VALUES:
        warn(f"The random effects ({n_effects} per draw) and the posterior predictive were not drawn: "
                      f"{n_draws} draws would exceed {MAX_STORED_VALUES:,} stored values.", UserWarning)
        effects = None
    else:
        effects = draw_random_effects(design, beta, G, rng, v_factors)
        arrays, coords, taken = {}, {}, set()
        for enc, u in zip(design.encodings, effects):
            key = effect_key(enc.term.label, enc.term.family, taken)
            coords[key] = list(enc.groups)
            if enc.Z is None:
                arrays[f"u_{key}"] = ((key,), u[:, :, 0])
            else:
                coords[f"{key}_effect"] = list(enc.term.levels)
                arrays[f"u_{key}"] = ((key, f"{key}_effect"), u)
        idata.posterior = xr.merge([idata.posterior, _as_dataset(arrays, chains, draws, coords)])
        mean = mean + random_part(design, effects)
    obs = {"obs": list(design.row_labels)}
    idata.add_groups(observed_data=xr.Dataset({"y": (("obs",), design.y)}, coords=obs))
    if effects is None:
        return
    if n_draws * design.n > MAX_STORED_VALUES:
        warn(f"The posterior predictive ({design.n} rows per draw) was not drawn: {n_draws} draws would "
                      f"exceed {MAX_STORED_VALUES:,} stored values.", UserWarning)
        return
    replicated = mean + draw_sampling_errors(design.V, n_draws, rng, v_factors)
    idata.add_groups(posterior_predictive=_as_dataset({"y": (("obs",), replicated)}, chains, draws, obs))


def add_prior_predictive(idata: az.InferenceData, design: Design, param: Parameterization,
                         random_seed=None) -> None:
    """Add ``y`` drawn from the prior predictive (``X beta + Z u + e`` with ``u ~ N(0, G)``), in place."""
    rng = np.random.default_rng(random_seed)
    chains, draws = idata.prior.sizes["chain"], idata.prior.sizes["draw"]
    beta, G = parameter_draws(param, idata.prior)
    y = simulate_outcomes(design, beta, G, rng, v_factor_draws(param, idata.prior))
    obs = {"obs": list(design.row_labels)}
    idata.add_groups(prior_predictive=_as_dataset({"y": (("obs",), y)}, chains, draws, obs))
    if "observed_data" not in idata.groups():
        idata.add_groups(observed_data=xr.Dataset({"y": (("obs",), design.y)}, coords=obs))
