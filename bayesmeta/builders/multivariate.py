"""Multivariate meta-analysis: several correlated outcomes per study with a known
within-study covariance, and random outcome effects with a chosen structure."""

from __future__ import annotations

import pandas as pd

from ..design.columns import check_arguments
from ..errors import SpecificationError
from ..model import MetaModel
from ..prep.wide_format import wide_to_long
from ..spec.formulas import quote
from ..spec.structures import UNORDERED
from .inputs import moderator_terms


def per_outcome(outcome: str, mods: str | None) -> str:
    """Fixed-effect terms: a mean per outcome and, per outcome, a slope on every moderator.

    Examples
    --------
    >>> per_outcome("outcome", "~ year + dose")
    '0 + outcome + outcome:(year + dose)'
    """
    terms = f"0 + {quote(outcome)}"
    if mods is not None:
        terms += f" + {quote(outcome)}:({moderator_terms(mods)})"
    return terms


def multivariate(data: pd.DataFrame, *, outcomes=None, id: str | None = None, vech=None, var=None, se=None,
                 cor=None, yi: str | None = None, outcome: str | None = None, V=None, vi=None,
                 struct: str = "UN", mods: str | None = None, na_action: str = "drop") -> MetaModel:
    """A multivariate model from wide (one row per study) or long (one row per outcome) data.

    Each outcome has its own mean (and its own slope on every moderator); the
    random outcome effects of a study have the covariance ``struct``, and the
    sampling errors of a study the known within-study covariance.

    Parameters
    ----------
    data : pandas.DataFrame
    outcomes : list of str or dict, optional
        Wide input: the effect columns (see :func:`bayesmeta.wide_to_long`), with
        ``vech=`` or ``var=``/``se=`` and ``cor=`` for the within-study covariance.
        Missing outcomes are dropped per study.
    id : str, optional
        The study column (wide input: default, the row labels; long input: required).
    vech, var, se, cor
        Wide input's covariance layout (see :func:`bayesmeta.wide_to_long`).
    yi, outcome : str, optional
        Long input: the effect column and the outcome column.
    V, vi : optional
        Long input's sampling covariance: blocks, a matrix, :class:`~bayesmeta.ClusterBlocks`
        (e.g. from :func:`bayesmeta.vcalc`), or variances (independent outcomes).
    struct : {"UN", "CS", "HCS", "DIAG", "ID"}
        Covariance of the random outcome effects (default unstructured).
    mods : str, optional
        Moderators with a slope per outcome, e.g. ``"~ I(year - 1983)"``.
    na_action : {"drop", "raise"}

    Returns
    -------
    MetaModel
        Coefficients ``outcome[<label>]`` and ``outcome[<label>]:<moderator>``;
        ``fit.tau2`` per outcome and ``fit.rho``.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> berkey = bm.datasets.load("berkey98")
    >>> model = bm.multivariate(berkey, outcomes=["PD", "AL"], id="pubyear",
    ...                         vech=["var_PD", "cov_PD_AL", "var_AL"])
    >>> [round(b, 4) for b in model.fit().coef]
    [0.3534, -0.3392]
    """
    if struct not in UNORDERED:
        raise SpecificationError(f"struct: expected one of {', '.join(UNORDERED)} (outcomes are not ordered), "
                                 f"got {struct!r}.")
    wide = outcomes is not None
    long_args = {"yi": yi, "outcome": outcome, "V": V, "vi": vi}
    wide_args = {"vech": vech, "var": var, "se": se, "cor": cor}
    if wide:
        given = [k for k, v in long_args.items() if v is not None]
        if given:
            raise SpecificationError(f"{', '.join(given)}: for long data; with outcomes= (wide data) give the "
                                     "covariance as vech= or var=/se= and cor=.")
        long, blocks = wide_to_long(data, outcomes, id=id, vech=vech, var=var, se=se, cor=cor)
        id = id or "study"
        return MetaModel(f"y ~ {per_outcome('outcome', mods)}", long, V=blocks, random=f"~ outcome | {quote(id)}",
                         struct=struct, na_action=na_action)
    given = [k for k, v in wide_args.items() if v is not None]
    if given:
        raise SpecificationError(f"{', '.join(given)}: for wide data (with outcomes=); long data take V= or vi=.")
    if yi is None or outcome is None or id is None:
        raise SpecificationError("Give outcomes= (wide data), or yi=, outcome= and id= (long data).")
    check_arguments(data, yi=yi, outcome=outcome, id=id)
    return MetaModel(f"{quote(yi)} ~ {per_outcome(outcome, mods)}", data, V=V, vi=vi,
                     random=f"~ {quote(outcome)} | {quote(id)}",
                     struct=struct, na_action=na_action)
