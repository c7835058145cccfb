"""Posteriors of one model for many data sets of the same design, compiled once.

Simulation-based calibration samples a model again and again with new
outcomes, and assumption sensitivity with new sampling covariances: rebuilding
and recompiling the log-density each time costs seconds per data set. Here the
design's data enter the graph as shared variables
(:class:`~bayesmeta.likelihood.graph.SharedData`: the outcome of a nested
design, or the outcomes and sampling covariances of every batch of blocks), the
model is compiled for nutpie once, and each data set only sets those variables
before sampling.
"""

from __future__ import annotations

import arviz as az
import numpy as np

from ...design.build import Design
from ...design.parameters import Parameterization
from ...likelihood.graph import SharedData
from . import nutpie_backend
from .priors import PriorSet
from .pymc_model import build_model
from .sampling import LogPrior, complete_idata, nutpie_defaults


def supports(design: Design) -> bool:
    """Whether :class:`DataSampler` applies (nutpie installed; a nested or batched design)."""
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return False
    return design.nested is not None or bool(design.batches)


def same_structure(a: Design, b: Design) -> bool:
    """Whether two designs differ at most in the data :class:`SharedData` holds.

    Nested designs: anything but the outcome; batched designs: anything but the
    outcomes and the sampling covariances of the batches.
    """
    if (a.nested is None) != (b.nested is None) or len(a.batches) != len(b.batches):
        return False
    if a.nested is not None:
        x, y = a.nested, b.nested
        outcome = x.U.shape[1] - 2
        return (x.U.shape == y.U.shape and np.array_equal(x.d, y.d)
                and np.array_equal(np.delete(x.U, outcome, axis=1), np.delete(y.U, outcome, axis=1))
                and len(x.starts) == len(y.starts) and all(map(np.array_equal, x.starts, y.starts)))
    for p, q in zip(a.batches, b.batches):
        if p.V.shape != q.V.shape or not (np.array_equal(p.rows, q.rows) and np.array_equal(p.X, q.X)):
            return False
        if len(p.Z) != len(q.Z) or not all((z is None and w is None) or (z is not None and w is not None
                                                                         and np.array_equal(z, w))
                                           for z, w in zip(p.Z, q.Z)):
            return False
        if not all(np.array_equal(m, n) for m, n in zip(p.M, q.M)):
            return False
    return True


class DataSampler:
    """nutpie's NUTS on one compiled model, for designs that differ only in their data.

    Parameters
    ----------
    design : Design
        A nested or batched design (see :func:`supports`); later designs must have
        the same structure (:func:`same_structure`).
    param : Parameterization
    prior_set : PriorSet

    Examples
    --------
    >>> import bayesmeta as bm
    >>> from bayesmeta.engines.bayes.priors import resolve_priors
    >>> from bayesmeta.studies.simulation import with_outcome
    >>> model = bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    >>> sampler = DataSampler(model.design, model.param, resolve_priors(model.design, model.param))
    >>> idata = sampler.sample(with_outcome(model, model.design.y + 1).design, draws=100, tune=100, chains=1,
    ...                        random_seed=1)
    >>> idata.posterior["beta"].dims
    ('chain', 'draw', 'term')
    """

    def __init__(self, design: Design, param: Parameterization, prior_set: PriorSet):
        if not supports(design):
            raise ValueError("DataSampler: needs nutpie and a nested or batched design.")
        self.design = design
        self.data = SharedData.of(design)
        self.prior_set = prior_set
        self.model = build_model(design, param, prior_set, data=self.data)
        self.compiled = nutpie_backend.compile_model(self.model)
        self._log_prior = None

    def sample(self, design: Design, *, draws: int, tune: int, chains: int, random_seed, **kwargs) -> az.InferenceData:
        """Posterior draws (groups ``posterior`` and ``sample_stats`` only) for ``design``'s data.

        ``kwargs`` go to :func:`nutpie.sample` (bayesmeta's defaults otherwise).

        Raises
        ------
        ValueError
            If ``design`` differs from the compiled one in more than its data.
        """
        if not same_structure(self.design, design):
            raise ValueError("DataSampler: the design differs from the compiled one in more than its data "
                             "(outcome, sampling covariances).")
        self.data.set_values(design)
        nutpie_defaults(kwargs)
        return nutpie_backend.sample_compiled(self.compiled, self.model, draws=draws, tune=tune, chains=chains,
                                              cores=1, random_seed=random_seed, progressbar=False, **kwargs)

    def sample_complete(self, design: Design, param: Parameterization, *, draws: int, tune: int, chains: int,
                        random_seed, **kwargs) -> az.InferenceData:
        """:meth:`sample`, then the groups :meth:`bayesmeta.MetaModel.sample` adds: each row's
        log-likelihood (from ``design``'s data), the log prior (compiled once), random effects and
        predictions."""
        idata = self.sample(design, draws=draws, tune=tune, chains=chains, random_seed=random_seed, **kwargs)
        if self._log_prior is None:
            self._log_prior = LogPrior(self.model)
        return complete_idata(idata, design, param, self.model, "row", random_seed, self._log_prior)
