"""Exceptions and warnings raised by bayesmeta.

Every error about user input is a :class:`SpecificationError` (a ``ValueError``)
whose message names the argument, column or rows at fault.
"""

from __future__ import annotations


class SpecificationError(ValueError):
    """The model specification or its data cannot define a valid model."""


class MissingDataWarning(UserWarning):
    """Rows with missing values were dropped before fitting."""


class ConvergenceWarning(UserWarning):
    """The optimizer or sampler reported a problem."""


class DenseBlockWarning(UserWarning):
    """Crossed random effects (or V) join many rows into one block, evaluated with dense matrices."""


class BoundaryWarning(UserWarning):
    """A variance component or correlation was estimated on its boundary."""


class DriftWarning(BoundaryWarning):
    """Scale coefficients of a location-scale model drift to +-infinity (a variance estimated as zero)."""


def format_rows(rows, limit: int = 10) -> str:
    """Format row labels for an error message, shortening long lists.

    Examples
    --------
    >>> format_rows([3, 5, 9])
    '3, 5, 9'
    """
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    if len(rows) > limit:
        shown += f", ... ({len(rows)} in all)"
    return shown
