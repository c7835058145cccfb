"""The formula engine (formulaic, loaded on first use) and what a formula asks of the data."""

from __future__ import annotations

from ..errors import SpecificationError


def formula_engine():
    """formulaic, with bayesmeta's ``ns()`` registered among its transforms.

    Imported when the first formula is read, not with the package: formulaic takes
    about a third of a second to import.
    """
    import formulaic

    from . import splines  # noqa: F401  (registers the ns() transform with formulaic)

    return formulaic


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
        return set(formula_engine().Formula(formula).required_variables)
    except Exception as err:  # formulaic's parse errors
        raise SpecificationError(f"{where}: cannot parse {formula!r} ({err}).") from None
