"""Posteriors of one model for many outcome vectors, compiled once (simulation-based calibration).

Simulation studies sample the same model again and again with a new outcome:
rebuilding and recompiling the log-density each time costs seconds per data
set. For nested random intercepts with diagonal V (the fused likelihood Op of
:mod:`bayesmeta.likelihood.nested_op`) the outcome enters the graph as a shared
variable: the model is compiled for nutpie once and every data set only sets
that variable before sampling.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytensor

from ...design.build import Design
from ...design.parameters import Parameterization
from ...likelihood.nested_op import sorted_outcome
from . import nutpie_backend
from .priors import PriorSet
from .pymc_model import build_model
from .sampling import nutpie_defaults


def supports(design: Design) -> bool:
    """Whether :class:`OutcomeSampler` applies to the design (nested, nutpie installed)."""
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return False
    return design.nested is not None


class OutcomeSampler:
    """nutpie's NUTS on one compiled model, for designs that differ only in their outcome.

    Parameters
    ----------
    design : Design
        A nested design (see :func:`supports`); later designs must have the same
        rows, moderators, sampling variances and groups.
    param : Parameterization
    prior_set : PriorSet

    Examples
    --------
    >>> import bayesmeta as bm
    >>> from bayesmeta.engines.bayes.priors import resolve_priors
    >>> from bayesmeta.studies.simulation import with_outcome
    >>> model = bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    >>> sampler = OutcomeSampler(model.design, model.param, resolve_priors(model.design, model.param))
    >>> idata = sampler.sample(with_outcome(model, model.design.y + 1).design, draws=100, tune=100, chains=1,
    ...                        random_seed=1)
    >>> idata.posterior["beta"].dims
    ('chain', 'draw', 'term')
    """

    def __init__(self, design: Design, param: Parameterization, prior_set: PriorSet):
        if not supports(design):
            raise ValueError("OutcomeSampler: needs nutpie and a nested design (random intercepts, diagonal V).")
        self.design = design
        self.outcome = pytensor.shared(sorted_outcome(design.nested), name="outcome")
        self.model = build_model(design, param, prior_set, outcome=self.outcome)
        self.compiled = nutpie_backend.compile_quietly(self.model)

    def _check_same_design(self, design: Design) -> None:
        a, b = self.design.nested, design.nested
        same = (b is not None and a.U.shape == b.U.shape and np.array_equal(a.d, b.d)
                and np.array_equal(np.delete(a.U, a.U.shape[1] - 2, axis=1), np.delete(b.U, b.U.shape[1] - 2, axis=1))
                and len(a.starts) == len(b.starts) and all(np.array_equal(x, y) for x, y in zip(a.starts, b.starts)))
        if not same:
            raise ValueError("OutcomeSampler: the design differs from the compiled one in more than its outcome.")

    def sample(self, design: Design, *, draws: int, tune: int, chains: int, random_seed, **kwargs) -> az.InferenceData:
        """Posterior draws (groups ``posterior`` and ``sample_stats`` only) for ``design``'s outcome.

        Raises
        ------
        ValueError
            If ``design`` differs from the compiled one in anything but the outcome.
        """
        self._check_same_design(design)
        self.outcome.set_value(sorted_outcome(design.nested))
        nutpie_defaults(kwargs)
        return nutpie_backend.sample_compiled(self.compiled, self.model, draws=draws, tune=tune, chains=chains,
                                              cores=1, random_seed=random_seed, progressbar=False, **kwargs)
