"""What a formula asks of the data: the columns it needs."""

from __future__ import annotations

from formulaic import Formula

from ..errors import SpecificationError
from . import splines  # noqa: F401  (registers the ns() transform with formulaic)


def required_columns(formula: str, where: str) -> set[str]:
    """Data columns a formula (one- or two-sided) needs.

    Raises
    ------
    SpecificationError
        Naming ``where`` when the formula cannot be parsed.

    Examples
    --------
    >>> sorted(required_columns("yi ~ x + C(g)", "formula"))
    ['g', 'x', 'yi']
    """
    if not isinstance(formula, str):
        raise SpecificationError(f"{where}: expected a formula string, got {type(formula).__name__}.")
    try:
        return set(Formula(formula).required_variables)
    except Exception as err:  # formulaic's parse errors
        raise SpecificationError(f"{where}: cannot parse {formula!r} ({err}).") from None
