"""Variance components under metafor's names, as properties of every result."""

from __future__ import annotations

#: metafor's name of each family of components, and what it holds.
FAMILY_DOCS = {
    "sigma2": "Variances of nested random intercepts, outer to inner level (metafor's sigma2).",
    "tau2": "Variances of the first ``inner | outer`` or slope term, or the standard model's heterogeneity.",
    "rho": "Correlations of the first ``inner | outer`` or slope term.",
    "gamma2": "Variances of the second ``inner | outer`` or slope term.",
    "phi": "Correlations of the second ``inner | outer`` or slope term.",
}


def with_component_properties(cls):
    """Class decorator: properties ``sigma2``, ``tau2``, ``rho``, ``gamma2``, ``phi``, each a
    pandas Series indexed by component label, read through ``cls.component_values(family)``."""
    for family, doc in FAMILY_DOCS.items():
        setattr(cls, family, property(lambda self, f=family: self.component_values(f), doc=doc))
    return cls
