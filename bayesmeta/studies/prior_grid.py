"""Labelled grids of priors for prior-sensitivity studies."""

from __future__ import annotations

import itertools
import re

from ..errors import SpecificationError


def prior_label(prior) -> str:
    """A short label of a prior: ``HalfNormal(sigma=0.5)``.

    Examples
    --------
    >>> from pymc_extras.prior import Prior
    >>> prior_label(Prior("HalfNormal", sigma=0.5))
    'HalfNormal(sigma=0.5)'
    """
    return re.sub(r'^Prior\("([^"]+)",? ?', r"\1(", str(prior))


def prior_grid(**options) -> dict[str, dict]:
    """The labelled Cartesian product of prior options, for :meth:`bayesmeta.MetaModel.sensitivity`.

    Parameters
    ----------
    **options
        A ``priors`` key (``sd``, ``tau``, ``tau2``, ``beta``, ``rho``, ``sd[district]``, ...;
        keys with brackets go through ``**{"sd[district]": [...]}``) -> a list of Priors, or
        a dict of label -> Prior to name them yourself.

    Returns
    -------
    dict
        Label (``"sd=HalfNormal(sigma=0.5), beta=Normal(mu=0, sigma=1)"``) -> priors dict
        as :meth:`~bayesmeta.MetaModel.sample` takes it, in the order of the product.

    Examples
    --------
    >>> from pymc_extras.prior import Prior
    >>> grid = prior_grid(sd=[Prior("HalfNormal", sigma=s) for s in (0.5, 1.0)],
    ...                   beta={"vague": Prior("Normal", mu=0, sigma=10)})
    >>> list(grid)
    ['sd=HalfNormal(sigma=0.5), beta=vague', 'sd=HalfNormal(sigma=1.0), beta=vague']
    >>> grid['sd=HalfNormal(sigma=0.5), beta=vague']['beta']
    Prior("Normal", mu=0, sigma=10)
    """
    if not options:
        raise SpecificationError("prior_grid: give at least one key, e.g. prior_grid(sd=[...]).")
    labelled = {}
    for key, values in options.items():
        if isinstance(values, dict):
            pairs = list(values.items())
        elif isinstance(values, (list, tuple)):
            pairs = [(prior_label(v), v) for v in values]
        else:
            raise SpecificationError(f"prior_grid: {key} needs a list of Priors (or a dict label -> Prior), "
                                     f"got {type(values).__name__}.")
        if not pairs:
            raise SpecificationError(f"prior_grid: {key} has no priors.")
        if len({label for label, _ in pairs}) < len(pairs):
            raise SpecificationError(f"prior_grid: {key} has repeated priors; name them with a dict.")
        labelled[key] = pairs
    grid = {}
    for combination in itertools.product(*labelled.values()):
        label = ", ".join(f"{key}={name}" for key, (name, _) in zip(labelled, combination))
        grid[label] = {key: prior for key, (_, prior) in zip(labelled, combination)}
    return grid
