"""Contrast-based network meta-analysis from arm-level data.

Every study contributes the contrasts of its arms against a baseline arm, with
the multi-arm covariance (the baseline arm's variance is shared by all contrasts
of a study). The mean of a contrast "t vs b" is ``d_t - d_b`` in the basic
parameters ``d_t`` (every treatment against the network reference, ``d_ref = 0``).
Random effects per contrast have a common variance and correlation 1/2 within
a study (the consistency model of Sera et al. 2019, Table 1). The design-by-
treatment inconsistency model (Higgins et al. 2012) adds an interaction per
design and contrast, and its global Wald test asks whether they are all zero.

Two layouts of the contrasts:

* ``augment=None`` (default): each study's baseline is its first treatment in
  the network's order, and only observed arms are used;
* ``augment=(events, total)``: studies without the reference get a reference arm
  with these (tiny) counts, and every contrast is against the reference: the
  data augmentation of White et al. (2012) used by the paper (0.001, 0.01).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..design.columns import check_arguments
from ..errors import SpecificationError
from ..inference.combinations import lincom
from ..model import MetaModel
from ..spec.formulas import quote
from .arm_data import arm_inputs, arm_levels, arm_outcomes, check_one_row_per_arm
from .inputs import by_first_appearance, complete, identifier

#: Contrast measure -> arm-level measure.
ARM_MEASURE = {"OR": "PLO", "RR": "PLN", "RD": "PR", "MD": "MN"}
MODELS = ("consistency", "inconsistency")


class NetworkModel(MetaModel):
    """A :class:`~bayesmeta.MetaModel` of network contrasts that knows its treatments.

    Attributes
    ----------
    treatments : list
        Reference first.
    basic : dict
        Treatment -> coefficient name of its basic parameter (``d_<treatment>``).
    interactions : list of str
        Coefficient names of the inconsistency terms (empty for the consistency model).
    contrast_data : pandas.DataFrame
        One row per contrast: study, design, treatment, baseline, ``yi``.
    """

    treatments: list
    basic: dict
    interactions: list
    contrast_data: pd.DataFrame

    def contrasts(self, result, *, level: float | None = None, transform=None) -> pd.DataFrame:
        """Every pair of treatments, ``"t2 vs t1"`` (t1 before t2 in the network's order).

        Parameters
        ----------
        result : ModeResult or BayesResult
            A fit or posterior of this model.
        level : float, optional
        transform : callable, optional
            E.g. ``numpy.exp`` for odds ratios.

        Returns
        -------
        pandas.DataFrame
            ``estimate``, ``se``, ``ci_lb``, ``ci_ub`` (see :func:`bayesmeta.lincom`).
        """
        if self.interactions:
            raise SpecificationError("contrasts: the inconsistency model has no single contrast per pair; "
                                     "use the consistency model.")
        combos = {}
        for i, first in enumerate(self.treatments):
            for second in self.treatments[i + 1:]:
                weights = {self.basic[second]: 1.0}
                if first in self.basic:
                    weights[self.basic[first]] = -1.0
                combos[f"{second} vs {first}"] = weights
        return lincom(result, combos, level=level, transform=transform)

    def inconsistency_test(self, fit):
        """Global Wald test that all design-by-treatment interactions are zero.

        Parameters
        ----------
        fit : ModeResult
            A likelihood fit of the inconsistency model.

        Returns
        -------
        WaldTest
        """
        if not self.interactions:
            raise SpecificationError("inconsistency_test: fit the model with model='inconsistency'.")
        return fit.wald_test(self.interactions)


def _zero_corrected(dat: pd.DataFrame, study: str, events: str, total: str) -> pd.DataFrame:
    """Add 1/2 to the events and non-events of every arm of a study with a zero cell."""
    ev, tot = dat[events].astype(float), dat[total].astype(float)
    zero = (ev == 0) | (ev == tot)
    hit = dat[study].isin(dat.loc[zero, study])
    return dat.assign(**{events: ev + 0.5 * hit, total: tot + 1.0 * hit})


def _augmented(dat: pd.DataFrame, study: str, treatment: str, events: str, total: str, reference,
               augment) -> pd.DataFrame:
    if len(augment) != 2 or not 0 < augment[0] < augment[1]:
        raise SpecificationError(f"augment: expected (events, total) with 0 < events < total, got {augment!r}.")
    lacking = [s for s, g in dat.groupby(study, sort=False) if reference not in set(g[treatment])]
    extra = pd.DataFrame({study: lacking, treatment: reference, events: augment[0], total: augment[1]})
    out = pd.concat([dat[[study, treatment, events, total]], extra], ignore_index=True)
    return by_first_appearance(out, study).reset_index(drop=True)


def _designs(dat: pd.DataFrame, study: str, treatment: str, treatments: list) -> dict:
    """Study -> its design: the tuple of its observed treatments in the network's order."""
    rank = {t: i for i, t in enumerate(treatments)}
    return {s: tuple(sorted(g[treatment], key=rank.get)) for s, g in dat.groupby(study, sort=False)}


def check_connected(dat: pd.DataFrame, study: str, treatment: str, treatments: list) -> None:
    """Refuse a network whose treatments fall into parts that no chain of studies links, naming them."""
    part = {t: {t} for t in treatments}
    for _, arms in dat.groupby(study, sort=False)[treatment]:
        merged = set().union(*(part[t] for t in arms))
        for t in merged:
            part[t] = merged
    parts = list({id(p): p for p in part.values()}.values())
    if len(parts) > 1:
        order = {t: i for i, t in enumerate(treatments)}
        shown = "; ".join("{" + ", ".join(map(repr, sorted(p, key=order.get))) + "}"
                          for p in sorted(parts, key=lambda p: min(map(order.get, p))))
        raise SpecificationError(f"{treatment}: the network is disconnected: no chain of studies links the "
                                 f"treatments of these {len(parts)} parts: {shown}. Analyse each part on its own, "
                                 "or add studies that connect them.")


def design_label(design: tuple) -> str:
    """E.g. ``('A', 'C', 'D')`` -> ``'A-C-D'``."""
    return "-".join(map(str, design))


def _contrast_rows(dat: pd.DataFrame, y: np.ndarray, v: np.ndarray, study: str, treatment: str,
                   treatments: list, designs: dict) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """One row per non-baseline arm and the per-study covariance blocks."""
    rank = {t: i for i, t in enumerate(treatments)}
    rows, blocks = [], []
    for s, g in dat.assign(_y=y, _v=v).groupby(study, sort=False):
        g = g.sort_values(treatment, key=lambda c: c.map(rank), kind="stable")
        if len(g) < 2:
            raise SpecificationError(f"{study}: study {s!r} has a single arm; a network needs two or more per study.")
        base = g.iloc[0]
        others = g.iloc[1:]
        rows += [{study: s, "design": design_label(designs[s]), "_design": designs[s], treatment: t,
                  "baseline": base[treatment], "yi": yt - base["_y"]}
                 for t, yt in zip(others[treatment], others["_y"])]
        blocks.append(np.full((len(others), len(others)), base["_v"]) + np.diag(others["_v"].to_numpy()))
    return pd.DataFrame(rows), blocks


def _interactions(contrasts: pd.DataFrame, treatment: str, treatments: list) -> list[tuple[tuple, object]]:
    """(design, treatment) pairs with an inconsistency term.

    Every treatment of a design except the design's first gets a term, except in one
    design per treatment, which defines its basic parameter: the design with the
    fewest arms, preferring designs with the reference (the direct comparison with the
    reference, where there is one).
    """
    pairs = [(d, t) for d, t in dict.fromkeys(zip(contrasts["_design"], contrasts[treatment])) if t != d[0]]
    pairs.sort(key=lambda pair: (len(pair[0]), pair[0][0] != treatments[0], design_label(pair[0])))
    defining = set(dict((t, (d, t)) for d, t in reversed(pairs)).values())
    kept = [pair for pair in pairs if pair not in defining]
    expected = sum(len(d) - 1 for d in {d for d, _ in pairs}) - (len(treatments) - 1)
    if len(kept) != expected:
        raise SpecificationError(
            f"model: the design-by-treatment model needs {expected} inconsistency terms, but the designs give "
            f"{len(kept)}; some treatment is never compared with an earlier one.")
    return sorted(kept, key=lambda pair: (treatments.index(pair[1]), pair[0]))


def network(data: pd.DataFrame, *, study: str, treatment: str, events: str | None = None,
            total: str | None = None, mean: str | None = None, sd: str | None = None, n: str | None = None,
            measure: str = "OR", reference=None, model: str = "consistency", augment=None,
            na_action: str = "drop") -> NetworkModel:
    """A contrast-based network meta-analysis from arm-level data (one row per arm).

    Parameters
    ----------
    data : pandas.DataFrame
    study, treatment : str
        Columns of the study and of each arm's treatment.
    events, total : str, optional
        Counts per arm (measures ``"OR"``, ``"RR"``, ``"RD"``); studies with a zero cell
        get 1/2 added to the events and non-events of all their arms.
    mean, sd, n : str, optional
        Means per arm (measure ``"MD"``).
    measure : {"OR", "RR", "RD", "MD"}
        Log odds ratio (default), log risk ratio, risk difference or mean difference.
    reference : optional
        Network reference (default: first category or first sorted treatment).
    model : {"consistency", "inconsistency"}
        The consistency model, or the design-by-treatment inconsistency model.
    augment : (float, float), optional
        Reference-arm augmentation (events, total) for studies without the reference
        (counts only); the paper uses ``(0.001, 0.01)``.
    na_action : {"drop", "raise"}

    Returns
    -------
    NetworkModel
        Coefficients ``d_<treatment>`` (each against the reference) and, for the
        inconsistency model, ``w_<treatment>_<design>``; random effects
        ``~ treatment | study`` with compound symmetry and correlation fixed at 1/2.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> arms = bm.datasets.load("hasselblad1998")
    >>> net = bm.network(arms, study="study", treatment="trt", events="xi", total="ni", reference="no_contact")
    >>> fit = net.fit()
    >>> odds_ratios = net.contrasts(fit, transform=np.exp)
    >>> round(float(odds_ratios.loc["ind_counseling vs no_contact", "estimate"]), 2)
    2.03
    """
    check_arguments(data, study=study, treatment=treatment)
    if measure not in ARM_MEASURE:
        raise SpecificationError(f"measure: expected one of {', '.join(ARM_MEASURE)}, got {measure!r}.")
    if model not in MODELS:
        raise SpecificationError(f"model: expected 'consistency' or 'inconsistency', got {model!r}.")
    kind = arm_inputs(data, events, total, mean, sd, n)
    if (kind == "means") != (measure == "MD"):
        raise SpecificationError(f"measure: {measure!r} does not fit arm data given as {kind}.")
    dat = complete(data, [study, treatment, events, total, mean, sd, n], na_action)
    check_one_row_per_arm(dat, study, treatment)
    treatments = arm_levels(dat[treatment], reference)
    check_connected(dat, study, treatment, treatments)
    designs = _designs(dat, study, treatment, treatments)
    if kind == "counts":
        dat = _zero_corrected(dat, study, events, total)
        if augment is not None:
            dat = _augmented(dat, study, treatment, events, total, treatments[0], augment)
    elif augment is not None:
        raise SpecificationError("augment: reference augmentation is for counts only.")
    y, v = arm_outcomes(dat, ARM_MEASURE[measure], events=events, total=total, mean=mean, sd=sd, n=n, to="none")
    contrasts, blocks = _contrast_rows(dat, y, v, study, treatment, treatments, designs)
    basic = {t: identifier("d", t) for t in treatments[1:]}
    columns = {name: (contrasts[treatment] == t).astype(float) - (contrasts["baseline"] == t).astype(float)
               for t, name in basic.items()}
    interactions = []
    if model == "inconsistency":
        for design, t in _interactions(contrasts, treatment, treatments):
            name = identifier("w", t, design_label(design))
            columns[name] = ((contrasts["_design"] == design) & (contrasts[treatment] == t)).astype(float)
            interactions.append(name)
    frame = contrasts.drop(columns="_design").assign(**columns)
    frame[treatment] = pd.Categorical(frame[treatment], categories=treatments)
    formula = "yi ~ 0 + " + " + ".join(columns)
    net = NetworkModel(formula, frame, V=blocks, random=f"~ {quote(treatment)} | {quote(study)}", struct="CS",
                       fixed={"rho": 0.5}, na_action=na_action)
    net.treatments, net.basic, net.interactions = treatments, basic, interactions
    net.contrast_data = contrasts.drop(columns="_design")
    return net
