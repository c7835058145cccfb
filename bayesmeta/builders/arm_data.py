"""Arm-level data: one row per study arm, turned into arm-level outcomes.

Shared by the arm-based and the network builders.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..design.columns import check_arguments, numeric
from ..errors import SpecificationError, format_rows
from ..prep.effect_sizes import escalc

#: Arm-level measures of counts (escalc's names) and of means.
COUNT_MEASURES = ("PLN", "PLO", "PR")
MEAN_MEASURES = ("MN",)


def arm_inputs(data: pd.DataFrame, events, total, mean, sd, n) -> str:
    """Which kind of arm data was given, ``"counts"`` or ``"means"``; its columns must be in ``data``."""
    counts = events is not None or total is not None
    means = mean is not None or sd is not None or n is not None
    if counts == means:
        raise SpecificationError("Give arm data either as events= and total= (counts) or as mean=, sd= and n= (means).")
    if counts and (events is None or total is None):
        raise SpecificationError("Counts need both events= and total=.")
    if means and None in (mean, sd, n):
        raise SpecificationError("Means need mean=, sd= and n=.")
    check_arguments(data, events=events, total=total, mean=mean, sd=sd, n=n)
    check_arm_values(data, events=events, total=total, mean=mean, sd=sd, n=n)
    return "counts" if counts else "means"


def check_arm_values(data: pd.DataFrame, **columns) -> None:
    """Errors naming the builder's argument (``events``, ``total``, ``sd``, ``n``), its column and the rows
    whose arm data are not numbers, are negative, or have more events than the arm has participants.

    Examples
    --------
    >>> arms = pd.DataFrame({"x": [4, 12], "total": [40, 10]})
    >>> check_arm_values(arms, events="x", total="total")
    Traceback (most recent call last):
    ...
    bayesmeta.errors.SpecificationError: events: column 'x' exceeds total (column 'total') in rows 1.
    """
    values = {arg: numeric(data[col], arg, f"column {col!r} is") for arg, col in columns.items() if col is not None}
    with np.errstate(invalid="ignore"):
        # totals may be fractional (the reference-arm augmentation of network(augment=) adds 0.01)
        for arg, positive, what in (("events", False, "negative"), ("total", True, "not positive"),
                                    ("sd", False, "negative"), ("n", True, "not positive")):
            if arg in values:
                bad = values[arg] <= 0 if positive else values[arg] < 0
                if bad.any():
                    raise SpecificationError(f"{arg}: column {columns[arg]!r} is {what} in rows "
                                             f"{format_rows(data.index[bad])}.")
        if "events" in values and "total" in values:
            bad = values["events"] > values["total"]
            if bad.any():
                raise SpecificationError(f"events: column {columns['events']!r} exceeds total (column "
                                         f"{columns['total']!r}) in rows {format_rows(data.index[bad])}.")


def arm_outcomes(data: pd.DataFrame, measure: str, *, events=None, total=None, mean=None, sd=None, n=None,
                 add: float = 0.5, to: str = "only0") -> tuple[np.ndarray, np.ndarray]:
    """Arm-level outcomes ``y`` and sampling variances ``v`` (escalc's formulas).

    Parameters
    ----------
    data : pandas.DataFrame
    measure : {"PLN", "PLO", "PR", "MN"}
        Log risk, logit risk, risk (from ``events``/``total``) or mean (from
        ``mean``/``sd``/``n``).
    events, total, mean, sd, n : str, optional
        Column names.
    add, to
        Zero-cell handling of the counts (see :func:`bayesmeta.escalc`).

    Examples
    --------
    >>> arms = pd.DataFrame({"x": [4, 10], "total": [40, 50]})
    >>> y, v = arm_outcomes(arms, "PLO", events="x", total="total")
    >>> np.round(v, 4)
    array([0.2778, 0.125 ])
    """
    kind = arm_inputs(data, events, total, mean, sd, n)
    allowed = COUNT_MEASURES if kind == "counts" else MEAN_MEASURES
    if measure not in allowed:
        raise SpecificationError(f"measure: for {kind} expected one of {', '.join(allowed)}, got {measure!r}.")
    if kind == "counts":
        out = escalc(measure, data, xi=events, ni=total, add=add, to=to)
    else:
        out = escalc("MN", data, mi=mean, sdi=sd, ni=n)
    return out["yi"].to_numpy(float), out["vi"].to_numpy(float)


def arm_levels(values: pd.Series, reference) -> list:
    """The treatments, the reference first (default: the first category, or the first sorted value)."""
    levels = list(values.cat.categories) if isinstance(values.dtype, pd.CategoricalDtype) else sorted(pd.unique(values))
    if reference is None:
        reference = levels[0]
    if reference not in levels:
        raise SpecificationError(f"reference: {reference!r} is not a treatment; found {levels}.")
    return [reference] + [lv for lv in levels if lv != reference]


def check_one_row_per_arm(data: pd.DataFrame, study: str, arm: str) -> None:
    """Raise naming the rows that repeat a treatment within a study."""
    repeated = data.duplicated([study, arm], keep=False)
    if repeated.any():
        raise SpecificationError(f"{arm}: rows {format_rows(data.index[repeated])} repeat a treatment within a study.")
