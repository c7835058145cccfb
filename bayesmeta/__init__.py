"""bayesmeta: multilevel, multivariate and other extended meta-analytic models.

One model specification (:class:`MetaModel`) feeds a likelihood engine (ML/REML,
reproducing R's metafor) and a Bayesian engine (PyMC) on the same likelihood.
"""

from . import datasets
from .bayes_results import BayesResult
from .builders import (ArmBasedModel, DoseResponseModel, NetworkModel, arm_based, dose_response, longitudinal,
                       multilevel, multivariate, network)
from .compare import compare
from .escalc import escalc
from .lincom import lincom
from .errors import (BoundaryWarning, ConvergenceWarning, DenseBlockWarning, DriftWarning,
                     MissingDataWarning, SpecificationError)
from .location_scale import location_scale
from .likelihood_ratio import lrt
from .model import MetaModel
from .results import ModeResult
from .vcalc import vcalc
from .vcov import ClusterBlocks
from .wide import wide_to_long
from .gl import gl_covariance

__all__ = ["MetaModel", "ModeResult", "BayesResult", "compare", "escalc", "datasets", "SpecificationError", "MissingDataWarning",
           "ConvergenceWarning", "BoundaryWarning", "DenseBlockWarning", "DriftWarning", "lrt", "location_scale", "vcalc", "ClusterBlocks", "wide_to_long", "gl_covariance",
           "lincom", "multilevel", "longitudinal", "arm_based", "ArmBasedModel",
           "network", "NetworkModel", "multivariate",
           "dose_response", "DoseResponseModel"]
__version__ = "0.1.0"
