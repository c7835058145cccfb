"""Builder for location-scale meta-analysis: moderators of the mean and of the heterogeneity."""

from __future__ import annotations

import pandas as pd

from ..model import MetaModel
from .multilevel import nested_term


def location_scale(formula: str, data: pd.DataFrame, *, scale, vi=None, V=None, levels=None,
                   na_action: str = "drop") -> MetaModel:
    """A location-scale model: the heterogeneity depends on moderators.

    Without ``levels``, the standard random-effects model with
    ``log tau_i^2 = z_i' alpha`` (metafor's ``rma(yi, vi, mods = ~ x, scale = ~ z)``).
    With ``levels`` (nested clusters, outermost first), the variance of every
    level named in ``scale`` is log-linear in that level's moderators, which must
    be constant within its clusters; the other levels keep one variance.

    Parameters
    ----------
    formula : str
        Location part, e.g. ``"yi ~ length"``.
    data : pandas.DataFrame
    scale : str or dict
        ``"~ z"`` (the only level) or ``{"study": "~ z", "district": "~ w"}``; see
        :mod:`bayesmeta.spec.scale_argument`.
    vi, V : sampling variances (a diagonal V)
    levels : list of str or str, optional
        Nested cluster columns, outermost first (``["district", "study"]`` or
        ``"district/study"``).
    na_action : {"drop", "raise"}

    Returns
    -------
    MetaModel
        With ``fit.alpha`` (ML/REML) and ``alpha`` in the posterior (``sample``).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    >>> fit = location_scale("yi ~ length", dat, vi="vi", scale="~ length").fit()
    >>> fit.alpha.round(4).tolist()
    [-3.6011, 0.0472]
    """
    random = None if levels is None else nested_term(levels)
    return MetaModel(formula, data, vi=vi, V=V, random=random, scale=scale, na_action=na_action)
