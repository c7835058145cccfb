"""Multilevel (nested) meta-analysis: random intercepts at every level of a hierarchy."""

from __future__ import annotations

import pandas as pd

from ..errors import SpecificationError
from ..model import MetaModel
from ..spec.formulas import quote


def nested_term(levels) -> str:
    """The random term of nested intercepts, outer level first.

    Examples
    --------
    >>> nested_term(["district", "study"])
    '~ 1 | district/study'
    >>> nested_term("district/study")
    '~ 1 | district/study'
    """
    if isinstance(levels, str):
        levels = [lv.strip() for lv in levels.split("/")]
    if not isinstance(levels, (list, tuple)):
        raise SpecificationError(f"levels: expected column names, outer level first, e.g. ['district', 'study'], "
                                 f"got {levels!r}.")
    levels = list(levels)
    if not levels or not all(isinstance(lv, str) and lv for lv in levels):
        raise SpecificationError("levels: expected column names, outer level first, e.g. ['district', 'study'].")
    if len(set(levels)) != len(levels):
        raise SpecificationError(f"levels: a column appears twice in {levels}.")
    return "~ 1 | " + "/".join(quote(level) for level in levels)


def multilevel(formula: str, data: pd.DataFrame, *, levels, vi=None, V=None, na_action: str = "drop") -> MetaModel:
    """A multilevel model: random intercepts for every level of nested clusters.

    ``levels=["district", "study"]`` gives ``y_ij = X b + u_i + u_ij + e_ij`` with a
    variance per level (metafor's ``random = ~ 1 | district/study``); any depth
    works (``["country", "lab", "study", "es_id"]``). An inner label is a new
    group within each outer group, so labels may repeat across outer groups.

    Parameters
    ----------
    formula : str
        Fixed effects, e.g. ``"effect ~ 1"`` or ``"effect ~ year"``.
    data : pandas.DataFrame
    levels : list of str or str
        Cluster columns from the outermost to the innermost level, or ``"a/b/c"``.
    vi, V, na_action
        As for :class:`~bayesmeta.MetaModel`.

    Returns
    -------
    MetaModel

    Examples
    --------
    >>> import bayesmeta as bm
    >>> model = bm.multilevel("effect ~ 1", bm.datasets.load("school"), levels=["district", "study"], vi="var")
    >>> fit = model.fit("ML")
    >>> [round(v, 4) for v in fit.sigma2]
    [0.0577, 0.0329]
    """
    return MetaModel(formula, data, vi=vi, V=V, random=nested_term(levels), na_action=na_action)
