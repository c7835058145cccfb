"""Parsing of metafor-style random-effect terms into small frozen objects.

Three kinds of term are understood:

``"~ 1 | a/b/c"``
    nested random intercepts (:class:`NestedTerm`), one variance per level;
``"~ inner | outer"``
    correlated effects for the levels of the factor ``inner`` within each
    ``outer`` group, with a covariance structure (:class:`GroupedTerm`);
``"~ 1 + x | g"`` or ``"~ 0 + x | g"``
    random intercepts and/or slopes (:class:`SlopeTerm`); the left-hand side is
    a formulaic formula, so spline terms such as ``ns(x, df=2)`` work too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import SpecificationError
from .structures import ALIASES, GROUPED, SLOPES

#: Label of the standard model's row-level random effect (and of its scale model).
ROW_TERM = "row"
_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class NestedTerm:
    """Nested random intercepts ``~ 1 | levels[0]/levels[1]/...`` (outer to inner)."""

    levels: tuple[str, ...]

    @property
    def outer(self) -> str:
        return self.levels[0]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.levels


@dataclass(frozen=True)
class GroupedTerm:
    """Correlated effects of the levels of ``inner`` within groups of ``outer``."""

    inner: str
    outer: str
    struct: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.inner, self.outer)


@dataclass(frozen=True)
class SlopeTerm:
    """Random coefficients ``~ lhs | group`` with a UN or DIAG covariance."""

    lhs: str
    outer: str
    struct: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.outer,)


RandomTerm = NestedTerm | GroupedTerm | SlopeTerm


def _column_name(name: str) -> str | None:
    """The column a term names: a plain name, or any name in backticks; None otherwise."""
    if len(name) > 2 and name[0] == name[-1] == "`" and "`" not in name[1:-1]:
        return name[1:-1]
    return name if _NAME.match(name) and "__" not in name else None


def _check_name(name: str, text: str) -> str:
    column = _column_name(name)
    if column is None:
        raise SpecificationError(
            f"random: {name!r} in {text!r} is not a column name; grouping factors must be column names, "
            "plain or in backticks (`my column`)."
        )
    return column


def _split_outside_backticks(text: str, separator: str) -> list[str]:
    """``text.split(separator)``, except inside backtick-quoted names."""
    parts, current, quoted = [], [], False
    for char in text:
        if char == "`":
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    return parts + ["".join(current)]


def _split(text: str) -> tuple[str, str]:
    body = text.strip()
    if not body.startswith("~"):
        raise SpecificationError(f"random: {text!r} must start with '~', as in '~ 1 | study'.")
    parts = _split_outside_backticks(body[1:], "|")
    if len(parts) != 2:
        raise SpecificationError(
            f"random: {text!r} must contain exactly one '|' separating the effects from the grouping factor."
        )
    return parts[0].strip(), parts[1].strip()


def is_nested(text: str) -> bool:
    """Whether a random-term string is a nested-intercept term (``~ 1 | a/b``)."""
    lhs, _ = _split(text)
    return lhs == "1"


def parse_random_term(text: str, struct: str | None = None) -> RandomTerm:
    """Parse one metafor-style random term.

    Parameters
    ----------
    text : str
        The term, e.g. ``"~ 1 | district/study"`` or ``"~ outcome | trial"``.
    struct : str, optional
        Covariance structure for ``inner | outer`` terms (default ``"CS"``, as in
        metafor) and random slopes (default ``"UN"``). Must be None for nested
        intercepts.

    Returns
    -------
    NestedTerm, GroupedTerm or SlopeTerm

    Examples
    --------
    >>> parse_random_term("~ 1 | district/study")
    NestedTerm(levels=('district', 'study'))
    >>> parse_random_term("~ 1 | `school district`/study")
    NestedTerm(levels=('school district', 'study'))
    >>> parse_random_term("~ time | study", struct="HAR")
    GroupedTerm(inner='time', outer='study', struct='HAR')
    """
    lhs, rhs = _split(text)
    if not lhs or not rhs:
        raise SpecificationError(f"random: {text!r} has an empty side around '|'.")
    if lhs == "1":
        if struct is not None:
            raise SpecificationError(
                f"struct: nested intercept term {text!r} takes no structure (got {struct!r})."
            )
        return NestedTerm(tuple(_check_name(p.strip(), text) for p in _split_outside_backticks(rhs, "/")))
    outer = _check_name(rhs, text)
    if _column_name(lhs) is not None:
        chosen = (struct or "CS").upper()
        if chosen not in GROUPED:
            raise SpecificationError(
                f"struct: {struct!r} does not fit {text!r}; choose one of {', '.join(GROUPED)}."
            )
        return GroupedTerm(_column_name(lhs), outer, chosen)
    chosen = (struct or "UN").upper()
    chosen = ALIASES.get(chosen, chosen)
    if chosen not in SLOPES:
        raise SpecificationError(
            f"struct: {struct!r} does not fit the random-slope term {text!r}; choose one of {', '.join(SLOPES)}."
        )
    return SlopeTerm(lhs, outer, chosen)


def parse_random(random, struct=None) -> tuple[RandomTerm, ...]:
    """Parse the ``random`` argument of :class:`~bayesmeta.MetaModel`.

    Parameters
    ----------
    random : str or list of str
        One term or several.
    struct : str or list of str, optional
        One structure for every non-nested term, or one entry per non-nested term.

    Returns
    -------
    tuple of terms, in the order given.
    """
    if not isinstance(random, (str, list, tuple)):
        raise SpecificationError(f"random: expected a formula string such as '~ 1 | study' (or a list of them), "
                                 f"got {type(random).__name__}.")
    if struct is not None and not isinstance(struct, (str, list, tuple)):
        raise SpecificationError(f"struct: expected a structure name such as 'UN' (or a list of them), got "
                                 f"{type(struct).__name__}.")
    texts = [random] if isinstance(random, str) else list(random)
    for t in texts:
        if not isinstance(t, str):
            raise SpecificationError(f"random: expected formula strings, got {t!r}.")
    n_structured = sum(not is_nested(t) for t in texts)
    if struct is None or isinstance(struct, str):
        structs = [struct] * n_structured
    else:
        structs = list(struct)
        if not all(isinstance(x, str) for x in structs):
            raise SpecificationError(f"struct: expected structure names such as 'UN', got {structs!r}.")
        if len(structs) != n_structured:
            raise SpecificationError(
                f"struct: got {len(structs)} structures for {n_structured} non-nested random terms."
            )
    if struct is not None and n_structured == 0:
        raise SpecificationError("struct: given, but all random terms are nested intercepts (~ 1 | ...).")
    terms, it = [], iter(structs)
    for t in texts:
        terms.append(parse_random_term(t, None if is_nested(t) else next(it)))
    if sum(not isinstance(t, NestedTerm) for t in terms) > 2:
        raise SpecificationError("random: at most two '~ inner | outer' or random-slope terms are supported.")
    return tuple(terms)
