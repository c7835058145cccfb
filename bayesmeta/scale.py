"""Scale models: log-linear models for the variance of a random-effect level.

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

Levels without a scale model keep one variance. This module parses that
argument and encodes each formula into a :class:`ScaleDesign`: one row of
moderators per group. The likelihood stays the O(n) closed form of
:mod:`bayesmeta.nested`, with one variance per group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix

from .errors import SpecificationError, format_rows

#: Name under which the standard model's row-level heterogeneity is addressed.
ROW_LEVEL = "row"


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
        from .design import encode_new

        return encode_new(self.model_spec, newdata, f"newdata (scale model of {self.label!r})")


def scale_columns(formula: str, where: str) -> set[str]:
    """Data columns a scale formula needs (raising for malformed formulas)."""
    if not isinstance(formula, str) or not formula.strip().startswith("~"):
        raise SpecificationError(f"{where}: expected a one-sided formula such as '~ z', got {formula!r}.")
    try:
        return set(Formula(formula).required_variables)
    except Exception as err:  # formulaic's parse errors
        raise SpecificationError(f"{where}: cannot parse {formula!r} ({err}).") from None


def requested(scale) -> list[tuple[object, str]]:
    """The (level key, formula) pairs of the ``scale`` argument, unresolved."""
    if scale is None:
        return []
    if isinstance(scale, str):
        return [(None, scale)]
    if not isinstance(scale, dict) or not scale:
        raise SpecificationError(
            f"scale: expected a formula such as '~ z' or a dict naming levels, e.g. {{'study': '~ z'}}; got {scale!r}.")
    return list(scale.items())


def _level_names(label: str) -> set[str]:
    return {label, label.split("/")[-1]}


def resolve_levels(scale, encodings) -> dict[int, str]:
    """Map every scale formula to the index of the covariance term whose variance it models.

    Raises
    ------
    SpecificationError
        For a level that does not exist, is named ambiguously or twice, or is not
        a random intercept.
    """
    pairs = requested(scale)
    if not pairs:
        return {}
    labels = [enc.term.label for enc in encodings]
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
            matches = [k for k, lab in enumerate(labels) if key in _level_names(lab)]
            if not matches:
                raise SpecificationError(f"scale: no random level {key!r}; levels: {', '.join(map(repr, labels))}.")
            if len(matches) > 1:
                raise SpecificationError(f"scale: {key!r} names several levels; use one of "
                                         f"{', '.join(repr(labels[k]) for k in matches)}.")
            k = matches[0]
        enc = encodings[k]
        if enc.Z is not None:
            raise SpecificationError(
                f"scale: level {labels[k]!r} is not a random intercept; scale models are available for the standard "
                "model's heterogeneity and for nested random intercepts ('~ 1 | a/b').")
        if k in out:
            raise SpecificationError(f"scale: level {labels[k]!r} is given two scale formulas.")
        out[k] = formula
    return out


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
    matches = [k for k in modelled if key in _level_names(scales[k].label)]
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


def _check_rank(W: np.ndarray, names: list[str], where: str) -> None:
    if np.linalg.matrix_rank(W) == W.shape[1]:
        return
    redundant, kept = [], []
    for j in range(W.shape[1]):
        if np.linalg.matrix_rank(W[:, kept + [j]]) == len(kept) + 1:
            kept.append(j)
        else:
            redundant.append(names[j])
    raise SpecificationError(f"{where}: the scale moderators are rank deficient (over the groups of the level); "
                             f"redundant column(s): {', '.join(map(repr, redundant))}.")


def encode_scale(formula: str, data: pd.DataFrame, codes: np.ndarray, groups: tuple, label: str) -> ScaleDesign:
    """Encode one scale formula as one row of moderators per group of a level.

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

    Raises
    ------
    SpecificationError
        If a moderator is not constant within some groups (naming them) or the
        moderators are rank deficient.
    """
    where = f"scale ({label!r})"
    scale_columns(formula, where)
    mm = model_matrix(formula, data, na_action="raise")
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
    _check_rank(W, names, where)
    return ScaleDesign(label, formula, tuple(names), W, standardising_transform(W), mm.model_spec, tuple(groups))
