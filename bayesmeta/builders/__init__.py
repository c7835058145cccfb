"""Builders: one function per specification family, each returning a MetaModel."""

from .arm_based import ArmBasedModel, arm_based
from .dose_response import DoseResponseModel, dose_response
from .longitudinal import longitudinal
from .multilevel import multilevel
from .multivariate import multivariate
from .network import NetworkModel, network

__all__ = ["ArmBasedModel", "arm_based", "DoseResponseModel", "dose_response", "longitudinal", "multilevel", "multivariate", "NetworkModel", "network"]
