"""bayesmeta: multilevel, multivariate and other extended meta-analytic models.

One model specification (:class:`MetaModel`) feeds a likelihood engine (ML/REML,
reproducing R's metafor) and a Bayesian engine (PyMC) on the same likelihood.

The package is laid out as the flow of a fit: ``spec`` (what was asked) ->
``design`` (data to arrays) -> ``likelihood`` -> ``engines`` (ML/REML and
Bayesian) -> ``inference`` -> ``results``; beside it ``prep`` (effect sizes and
sampling covariances), ``builders`` (one module per model family),
``datasets`` and ``priors`` (published heterogeneity priors). Importing the package loads no PyMC, PyTensor or ArviZ; the
Bayesian engine is loaded by the first call that samples (``bm.Prior`` too is
loaded on first use).
"""

from . import datasets, priors
from .builders.arm_based import ArmBasedModel, arm_based
from .builders.dose_response import DoseResponseModel, dose_response
from .builders.location_scale import location_scale
from .builders.longitudinal import longitudinal
from .builders.multilevel import multilevel
from .builders.multivariate import multivariate
from .builders.network import NetworkModel, network
from .design.sampling_covariance import ClusterBlocks
from .errors import (
    BoundaryWarning,
    ConvergenceWarning,
    DenseBlockWarning,
    DriftWarning,
    IdentificationWarning,
    MissingDataWarning,
    RobustTestWarning,
    SpecificationError,
)
from .inference.combinations import lincom
from .inference.comparison import compare
from .inference.likelihood_ratio import anova, lrt
from .model import MetaModel
from .plots.caterpillar import caterpillar
from .plots.compare import compare_plot
from .plots.forest import forest
from .plots.funnel import funnel
from .plots.profile import profile_plot
from .plots.coscale import coscale_plot
from .plots.variance import variance_plot
from .prep.dependent_covariance import vcalc
from .prep.effect_sizes import escalc
from .prep.greenland_longnecker import gl_covariance
from .prep.wide_format import wide_to_long
from .results.mode import ModeResult
from .results.posterior import BayesResult
from .studies.assumptions import assumption_sensitivity
from .studies.prior_grid import prior_grid
from .studies.sbc import sbc
from .studies.simulation_study import simulation_study

__all__ = ["MetaModel", "ModeResult", "BayesResult", "Prior", "datasets", "priors",
           "multilevel", "multivariate", "longitudinal", "arm_based", "ArmBasedModel", "network", "NetworkModel",
           "dose_response", "DoseResponseModel", "location_scale",
           "escalc", "vcalc", "ClusterBlocks", "wide_to_long", "gl_covariance",
           "compare", "lincom", "lrt", "anova", "simulation_study", "sbc", "assumption_sensitivity", "prior_grid",
           "forest", "funnel", "profile_plot", "compare_plot", "caterpillar", "variance_plot", "coscale_plot",
           "SpecificationError", "MissingDataWarning", "ConvergenceWarning", "BoundaryWarning", "DenseBlockWarning",
           "DriftWarning", "RobustTestWarning", "IdentificationWarning"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``bm.Prior`` (pymc_extras' Prior) without importing PyMC with the package."""
    if name == "Prior":
        from pymc_extras.prior import Prior

        return Prior
    raise AttributeError(f"module 'bayesmeta' has no attribute {name!r}")
