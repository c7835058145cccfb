"""The ``scale`` argument of location-scale models: which level's variance each formula models.

A location-scale model lets the heterogeneity depend on moderators. For the
row-level heterogeneity of the standard model (metafor's
``rma(yi, vi, mods = ~ x, scale = ~ z)``)

    log tau_i^2 = z_i' alpha,

and, for a level of nested random intercepts (``random="~ 1 | district/study"``),
the variance of the effect of group g of that level is

    log s_g = w_g' alpha,

with cluster-level moderators ``w_g`` (constant within each group). The
``scale`` argument of :class:`~bayesmeta.MetaModel` names the levels:

* ``scale="~ z"``: the model's only random level (the standard model's row
  level, or the level of ``random="~ 1 | study"``);
* ``scale={"study": "~ z", "district": "~ w"}``: per level, named by its
  innermost grouping column (``"study"`` for the level ``district/study``), by
  its full label (``"district/study"``) or, for the standard model, ``"row"``.

Levels without a scale model keep one variance. The formulas are encoded on
the data by :mod:`bayesmeta.design.scale_models`.

A structured term ``inner | outer`` (``random="~ outcome | study"``) takes a
dict of two formulas, named by the term's label (multivariate location-coscale):

* ``"tau"``: the log variance of each (cluster, level) cell,
  ``log tau_jl^2 = w_jl' alpha`` (moderators constant within cells; default
  ``"~ 0 + C(inner)"`` for structures with one SD per level, ``"~ 1"`` otherwise);
* ``"rho"``: for structures with one correlation (CS, HCS, AR, HAR, UN with two
  levels), Fisher's z of the correlation of each cluster, ``atanh(rho_j) = u_j' zeta``
  (cluster-level moderators; default ``"~ 1"``).

``scale={"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat", "rho": "~ habitat"}}``;
a single string is the ``"tau"`` formula. They are encoded by
:mod:`bayesmeta.design.coscale`.
"""

from __future__ import annotations

from ..errors import SpecificationError
from .formulas import required_columns


def requested(scale) -> list[tuple[object, str]]:
    """The (level key, formula) pairs of the ``scale`` argument, unresolved (key None: the only level)."""
    if scale is None:
        return []
    if isinstance(scale, str):
        return [(None, scale)]
    if not isinstance(scale, dict) or not scale:
        raise SpecificationError(
            f"scale: expected a formula such as '~ z' or a dict naming levels, e.g. {{'study': '~ z'}}; got {scale!r}.")
    return list(scale.items())


def cite(key) -> str:
    """How a scale formula is cited in messages."""
    return "scale" if key is None else f"scale[{key!r}]"


#: The formulas of a structured term's scale model.
COSCALE_PARTS = ("tau", "rho")


def formulas(place: str, value) -> list[tuple[str, str]]:
    """The (place, formula) pairs of one level's value: a formula, or a dict of ``"tau"``/``"rho"`` formulas."""
    if not isinstance(value, dict):
        return [(place, value)]
    unknown = sorted(map(repr, set(value) - set(COSCALE_PARTS)))
    if unknown or not value:
        raise SpecificationError(f"{place}: expected a dict with keys 'tau' and/or 'rho' (formulas), got "
                                 f"{', '.join(unknown) or 'an empty dict'}.")
    return [(f"{place}[{part!r}]", value[part]) for part in COSCALE_PARTS if part in value]


def scale_columns(formula: str, place: str, columns=None, trusted: bool = False) -> set[str]:
    """Data columns a scale formula needs, after checking it (see :func:`bayesmeta.spec.formulas.check_formula`)."""
    if not isinstance(formula, str) or not formula.strip().startswith("~"):
        raise SpecificationError(f"{place}: expected a one-sided formula such as '~ z', got {formula!r}.")
    return required_columns(formula, place, columns, trusted)


def names_level(key: str, label: str) -> bool:
    """Whether ``key`` names the level ``label`` (its full label or its innermost column)."""
    return key in (label, label.split("/")[-1])


def resolve_levels(scale, labels: list[str], kinds: list[str]) -> dict[int, object]:
    """Map every scale formula to the index of the covariance term whose variance it models.

    Parameters
    ----------
    scale : str or dict
    labels : list of str
        Labels of the model's covariance terms.
    kinds : list of str
        Per term, ``"intercept"`` (a random intercept: one formula), ``"structured"``
        (an ``inner | outer`` term: a dict of ``"tau"``/``"rho"`` formulas, see
        :data:`COSCALE_PARTS`) or ``"slopes"`` (random slopes: no scale model).

    Returns
    -------
    dict
        Term index -> its formula (random intercepts) or ``{"tau": ..., "rho": ...}``
        (structured terms; a missing part is None).

    Raises
    ------
    SpecificationError
        For a level that does not exist, is named ambiguously or twice, or is not
        a random intercept.
    """
    pairs = requested(scale)
    if not pairs:
        return {}
    if not labels:
        raise SpecificationError("scale: the model has no random effects (random=[]), so no variance to model.")
    out: dict[int, str] = {}
    for key, formula in pairs:
        if key is None:
            if len(labels) != 1:
                raise SpecificationError(
                    f"scale: the model has {len(labels)} random levels ({', '.join(map(repr, labels))}); "
                    f"name the level(s) with a dict, e.g. scale={{{labels[-1].split('/')[-1]!r}: {formula!r}}}.")
            k = 0
        else:
            matches = [k for k, lab in enumerate(labels) if names_level(key, lab)]
            if not matches:
                raise SpecificationError(f"scale: no random level {key!r}; levels: {', '.join(map(repr, labels))}.")
            if len(matches) > 1:
                raise SpecificationError(f"scale: {key!r} names several levels; use one of "
                                         f"{', '.join(repr(labels[k]) for k in matches)}.")
            k = matches[0]
        if kinds[k] == "slopes":
            raise SpecificationError(
                f"scale: {labels[k]!r} has random slopes; scale models are available for the standard model's "
                "heterogeneity, random intercepts ('~ 1 | a/b') and 'inner | outer' terms ('~ outcome | study').")
        if kinds[k] == "intercept" and isinstance(formula, dict):
            raise SpecificationError(f"{cite(key)}: {labels[k]!r} is a random intercept, whose scale model is one "
                                     f"formula such as '~ z' (a dict of 'tau' and 'rho' formulas is for "
                                     "'inner | outer' terms).")
        if k in out:
            raise SpecificationError(f"scale: level {labels[k]!r} is given two scale formulas.")
        if kinds[k] == "structured":
            parts = formula if isinstance(formula, dict) else {"tau": formula}
            formulas(cite(key), parts)  # checks the keys
            formula = {part: parts.get(part) for part in COSCALE_PARTS}
        out[k] = formula
    return out
