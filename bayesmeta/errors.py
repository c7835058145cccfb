"""Exceptions and warnings raised by bayesmeta.

Every error about user input is a :class:`SpecificationError` (a ``ValueError``)
whose message names the argument, column or rows at fault.
"""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


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


class RobustTestWarning(UserWarning):
    """A cluster-robust test has no valid reference distribution (non-positive degrees of freedom)."""


class IdentificationWarning(UserWarning):
    """A variance component the data cannot identify was fixed (or flagged); see
    :mod:`bayesmeta.design.identifiability`."""


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


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Issue a warning at the user's line: the first caller outside the package.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("something to know", MissingDataWarning)
    >>> caught[0].filename.startswith(_PACKAGE)
    False
    """
    def inside(f) -> bool:
        return os.path.abspath(f.f_code.co_filename).startswith(_PACKAGE)

    depth = 1
    frame = sys._getframe(1)
    # generated code called by the package (a dataclass's __init__, filename "<string>") counts as the package
    while frame is not None and (inside(frame) or (frame.f_code.co_filename == "<string>" and frame.f_back is not None
                                                   and inside(frame.f_back))):
        frame = frame.f_back
        depth += 1
    warnings.warn(message, category, stacklevel=depth + 1)
