"""Scale models encoded on the data: one row of moderators per group of a level.

The ``scale`` argument (:mod:`bayesmeta.spec.scale_argument`) names, for some
levels of random intercepts, a formula whose linear predictor is the log of the
level's variance. :func:`encode_scale_models` turns each formula into a
:class:`ScaleDesign` holding the moderators of every group of its level; the
likelihood stays the O(n) closed form of nested random intercepts
(:mod:`bayesmeta.likelihood.nested`), with one variance per group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import SpecificationError, format_rows
from ..spec.scale_argument import names_level, resolve_levels
from .encode import encode, encode_new
from .rows import check_rank


@dataclass(frozen=True)
class ScaleDesign:
    """Moderators of the variance of one random-effect level.

    Attributes
    ----------
    label : str
        Label of the level's covariance term (``"row"``, ``"district"``, ``"district/study"``).
    formula : str
        The scale formula, e.g. ``"~ length"``.
    names : tuple of str
        Names of the scale coefficients (columns of W).
    W : numpy.ndarray (n_groups, r)
        Moderators of every group, indexed by group code.
    transform : numpy.ndarray (r, r)
        ``alpha = transform @ theta``: the optimiser and the likelihood work on
        coefficients ``theta`` of standardised moderators ``W @ transform``
        (non-constant columns centred, when the model has a constant column, and
        scaled to unit SD), which keeps the problem well conditioned.
    model_spec : formulaic.ModelSpec
        Re-encodes new data.
    groups : tuple of str
        Names of the groups, indexed by code (row labels for the row level).
    """

    label: str
    formula: str
    names: tuple
    W: np.ndarray
    transform: np.ndarray
    model_spec: object
    groups: tuple = ()

    @property
    def r(self) -> int:
        """Number of scale coefficients."""
        return len(self.names)

    @property
    def W_std(self) -> np.ndarray:
        """The standardised moderators, ``W @ transform``."""
        return self.W @ self.transform

    def new_W(self, newdata: pd.DataFrame) -> np.ndarray:
        """Moderators of new rows, (n, r), encoded as for the data the model was built on."""
        return encode_new(self.model_spec, newdata, f"newdata (scale model of {self.label!r})")


def select_level(scales: tuple, key: str | None) -> int:
    """Index of the term whose scale model ``key`` names (the only one when ``key`` is None)."""
    modelled = [k for k, sc in enumerate(scales) if sc is not None]
    if not modelled:
        raise SpecificationError("The model has no scale model (MetaModel(..., scale=...)).")
    labels = [scales[k].label for k in modelled]
    if key is None:
        if len(modelled) > 1:
            raise SpecificationError(f"term: the model has scale models for {', '.join(map(repr, labels))}; "
                                     "name one.")
        return modelled[0]
    matches = [k for k in modelled if names_level(key, scales[k].label)]
    if len(matches) != 1:
        raise SpecificationError(f"term: {key!r} matches {'no' if not matches else 'several'} scale model(s); "
                                 f"levels with one: {', '.join(map(repr, labels))}.")
    return matches[0]


def standardising_transform(W: np.ndarray) -> np.ndarray:
    """T with ``W @ T`` = W with its non-constant columns scaled to unit SD (and centred if a
    constant column exists)."""
    r = W.shape[1]
    T = np.eye(r)
    spread = W.std(axis=0)
    constant = [j for j in range(r) if spread[j] == 0 and W[0, j] != 0]
    c = constant[0] if constant else None
    for j in range(r):
        if spread[j] > 0:
            T[j, j] = 1.0 / spread[j]
            if c is not None:
                T[c, j] = -W[:, j].mean() / spread[j] / W[0, c]
    return T


def encode_scale(formula: str, data: pd.DataFrame, codes: np.ndarray, groups: tuple, label: str,
                 where: str | None = None) -> ScaleDesign:
    """Encode one scale formula (already checked, see :func:`bayesmeta.spec.scale_argument.scale_columns`)
    as one row of moderators per group of a level.

    Parameters
    ----------
    formula : str
        One-sided formula, e.g. ``"~ w"``.
    data : pandas.DataFrame
        The rows used by the model.
    codes : numpy.ndarray (n,)
        Group of every row in the level.
    groups : tuple of str
        Names of the groups, indexed by code.
    label : str
        The level's label, for messages.
    where : str, optional
        The argument named in messages (default ``scale ('<label>')``).

    Raises
    ------
    SpecificationError
        If a moderator is not constant within some groups (naming them) or the
        moderators are rank deficient.
    """
    where = where or f"scale ({label!r})"
    mm = encode(formula, data)
    rows = np.asarray(mm, dtype=float)
    names = list(mm.columns)
    if rows.shape[1] == 0:
        raise SpecificationError(f"{where}: {formula!r} has no columns.")
    if not np.all(np.isfinite(rows)):
        bad = data.index[~np.isfinite(rows).all(axis=1)]
        raise SpecificationError(f"{where}: the scale moderators are not finite in rows {format_rows(bad)}.")
    n_groups = len(groups)
    first = np.full(n_groups, -1)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    W = rows[first]
    varies = ~np.isclose(rows, W[codes], rtol=1e-10, atol=1e-12)
    if varies.any():
        bad_groups = np.unique(codes[varies.any(axis=1)])
        bad_cols = [names[j] for j in np.flatnonzero(varies.any(axis=0))]
        raise SpecificationError(
            f"{where}: moderator column(s) {', '.join(map(repr, bad_cols))} of {formula!r} vary within "
            f"{len(bad_groups)} cluster(s) of {label!r}: {format_rows([groups[g] for g in bad_groups])}; "
            "the variance of a cluster-level effect can depend only on moderators constant within clusters.")
    check_rank(W, names, where, "the scale moderators (over the groups of the level) are")
    return ScaleDesign(label, formula, tuple(names), W, standardising_transform(W), mm.model_spec, tuple(groups))


def term_kind(enc) -> str:
    """``"intercept"``, ``"structured"`` (an ``inner | outer`` term) or ``"slopes"``: which scale model a term takes."""
    if enc.Z is None:
        return "intercept"
    return "structured" if enc.inner is not None else "slopes"


def encode_scale_models(scale, encodings, data: pd.DataFrame) -> tuple[tuple, dict]:
    """Per covariance term, the ScaleDesign of its variance or None (an empty tuple without scale models),
    and the scale formulas of structured terms (term index -> ``{"tau": ..., "rho": ...}``, encoded by
    :func:`bayesmeta.design.coscale.encode_coscale_models`).

    Parameters
    ----------
    scale : str or dict or None
        The ``scale`` argument.
    encodings : tuple of TermEncoding
    data : pandas.DataFrame
        The rows the model uses.
    """
    labels = [enc.term.label for enc in encodings]
    levels = resolve_levels(scale, labels, [term_kind(enc) for enc in encodings])
    structured = {k: parts for k, parts in levels.items() if isinstance(parts, dict)}
    intercepts = {k: f for k, f in levels.items() if k not in structured}
    if not intercepts:
        return (), structured
    return tuple(encode_scale(intercepts[k], data, enc.codes, enc.groups, enc.term.label) if k in intercepts
                 else None for k, enc in enumerate(encodings)), structured


def encode_v_scale(formula: str | None, data: pd.DataFrame) -> ScaleDesign | None:
    """The proportional sampling-variance model (``V_scale=``): one row of moderators per row, or None.

    Parameters
    ----------
    formula : str or None
        One-sided formula (already checked, see :func:`bayesmeta.spec.scale_argument.scale_columns`).
    data : pandas.DataFrame
        The rows the model uses.
    """
    if formula is None:
        return None
    return encode_scale(formula, data, np.arange(len(data)), tuple(map(str, data.index)), "V_scale",
                        "V_scale")


def check_v_scale_identified(V, encodings) -> None:
    """Refuse a proportional sampling-variance model that a row-level random effect makes unidentifiable.

    With a row-level random intercept (the standard model's heterogeneity, or a term
    with one group per row) of variance tau_i^2, row i has marginal variance
    ``tau_i^2 + exp(w_i' delta) v_i``. If V is diagonal with one common variance v,
    the two components differ only through the functional form of their moderators
    (with ``V_scale="~ 1"`` and a constant tau^2, not at all), so the model is refused.
    Sampling variances that differ between rows, or covariances in V (scaled by the
    factor but untouched by the random effect), identify it.

    Parameters
    ----------
    V : BlockDiagonal
        Sampling covariance of the rows used.
    encodings : tuple of TermEncoding

    Raises
    ------
    SpecificationError
        Naming ``V_scale``.
    """
    n = V.n
    row_level = [enc.term.label for enc in encodings if enc.Z is None and enc.term.n_groups == n]
    if not row_level or n == 0:
        return
    covariances = any(np.any(s.mats[:, ~np.eye(s.size, dtype=bool)] != 0) for s in V.stacks if s.size > 1)
    v = V.diagonal()
    if covariances or np.ptp(v) > 1e-10 * np.max(np.abs(v)):
        return
    raise SpecificationError(
        f"V_scale: every row has the same sampling variance ({v[0]:.6g}) and V has no covariances, so a factor "
        f"exp(w_i' delta) on V cannot be told apart from the row-level heterogeneity {row_level[0]!r}; the model is "
        "identified only when the sampling variances differ between rows. Drop V_scale, or the row-level random "
        "effect (random=[] for unrestricted weighted least squares).")
