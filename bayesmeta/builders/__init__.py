"""Builders: one function per specification family, each returning a MetaModel."""

from .longitudinal import longitudinal
from .multilevel import multilevel

__all__ = ["longitudinal", "multilevel"]
