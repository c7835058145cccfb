"""Effect sizes and their sampling variances, with metafor's names and formulas.

:func:`escalc` returns a copy of the data with columns ``yi`` and ``vi`` for

===========  ==========================================  ===============================
measure      input columns                               effect size
===========  ==========================================  ===============================
``RR``       ``ai, bi, ci, di`` (or ``ai, n1i, ci, n2i``)  log risk ratio
``OR``       same                                        log odds ratio
``PETO``     same                                        log odds ratio, Peto's one-step
``RD``       same                                        risk difference
``AS``       same                                        arcsine square-root risk difference
``IRR``      ``x1i, t1i, x2i, t2i``                      log incidence rate ratio
``IRD``      same                                        incidence rate difference
``PR``       ``xi, ni``                                  raw proportion
``PLN``      ``xi, ni``                                  log proportion
``PLO``      ``xi, ni``                                  logit proportion
``PAS``      ``xi, ni``                                  arcsine square-root proportion
``PFT``      ``xi, ni``                                  Freeman-Tukey double arcsine proportion
``IRLN``     ``xi, ti``                                  log incidence rate
``MN``       ``mi, sdi, ni``                             raw mean
``MD``       ``m1i, sd1i, n1i, m2i, sd2i, n2i``          raw mean difference
``SMD``      same                                        Hedges' g (exact correction)
``ROM``      same                                        log ratio of means
``SMCC``     ``m1i, m2i, sd1i, sd2i, ni, ri``            standardised mean change, change-score SD
``SMCR``     ``m1i, m2i, sd1i, ni, ri``                  standardised mean change, raw-score SD
``COR``      ``ri, ni``                                  raw correlation
``ZCOR``     ``ri, ni``                                  Fisher's z
===========  ==========================================  ===============================

The variances are metafor's defaults (``vtype="LS"``, large-sample):

* ``PETO``: ``yi = (ai - E) / V`` and ``vi = 1 / V`` with ``E = (ai + ci) n1 / N`` and
  ``V = (ai + ci) (bi + di) n1 n2 / (N^2 (N - 1))``;
* ``AS``: ``asin(sqrt(p1)) - asin(sqrt(p2))``, ``vi = 1/(4 n1) + 1/(4 n2)`` (two groups;
  ``PAS`` is the same transformation of a single proportion, ``vi = 1/(4 ni)``);
* ``PFT``: ``(asin(sqrt(xi / (ni + 1))) + asin(sqrt((xi + 1) / (ni + 1)))) / 2``,
  ``vi = 1 / (4 ni + 2)``;
* ``IRD``: ``x1i/t1i - x2i/t2i``, ``vi = x1i/t1i^2 + x2i/t2i^2``; ``IRLN``: ``log(xi/ti)``, ``vi = 1/xi``;
* ``SMCC``: ``c(ni - 1) (m1i - m2i) / sd_d`` with ``sd_d = sqrt(sd1i^2 + sd2i^2 - 2 ri sd1i sd2i)``,
  ``vi = 1/ni + yi^2 / (2 ni)``; ``SMCR``: ``c(ni - 1) (m1i - m2i) / sd1i``,
  ``vi = 2 (1 - ri) / ni + yi^2 / (2 ni)``; ``c(m)`` is Hedges' exact correction, as for ``SMD``.

Counts with a zero cell get ``add`` (default 1/2) added to every cell of that
table (``to="only0"``, metafor's default); ``to="all"`` adds to every table,
``to="if0all"`` to every table when any has a zero, ``to="none"`` never. As in
metafor, the arcsine measures ``AS``, ``PAS`` and ``PFT`` need no correction and
get none unless ``add`` is given; ``PETO``, ``IRD`` and ``IRLN`` are corrected
like the others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..design.columns import numeric, resolve
from ..errors import SpecificationError, format_rows, warn

#: Input columns of every measure (alternatives separated by "|").
MEASURES = {
    "RR": ("ai", "bi|n1i", "ci", "di|n2i"), "OR": ("ai", "bi|n1i", "ci", "di|n2i"),
    "RD": ("ai", "bi|n1i", "ci", "di|n2i"), "IRR": ("x1i", "t1i", "x2i", "t2i"),
    "PR": ("xi", "ni"), "PLN": ("xi", "ni"), "PLO": ("xi", "ni"),
    "MN": ("mi", "sdi", "ni"), "MD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"), "SMD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "ROM": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"), "COR": ("ri", "ni"), "ZCOR": ("ri", "ni"),
    "PETO": ("ai", "bi|n1i", "ci", "di|n2i"), "AS": ("ai", "bi|n1i", "ci", "di|n2i"),
    "IRD": ("x1i", "t1i", "x2i", "t2i"), "PAS": ("xi", "ni"), "PFT": ("xi", "ni"), "IRLN": ("xi", "ti"),
    "SMCC": ("m1i", "m2i", "sd1i", "sd2i", "ni", "ri"), "SMCR": ("m1i", "m2i", "sd1i", "ni", "ri"),
}
TO_OPTIONS = ("only0", "all", "if0all", "none")
#: Measures that metafor does not correct for zero cells unless ``add`` is given.
UNCORRECTED = ("AS", "PAS", "PFT")
#: Inputs that are not counts, sizes or SDs (may be negative).
SIGNED = ("m1i", "m2i", "mi", "ri")
#: Positive inputs (person-times).
POSITIVE = ("ti", "t1i", "t2i")


def _column(data, value, name: str) -> np.ndarray:
    values, _ = resolve(value, name, data)
    return numeric(values, name, f"column {value!r} is" if isinstance(value, str) else None)


def _inputs(measure: str, data, given: dict) -> dict:
    out = {}
    for spec in MEASURES[measure]:
        options = spec.split("|")
        present = [o for o in options if given.get(o) is not None]
        if not present:
            raise SpecificationError(f"escalc: measure {measure!r} needs {' or '.join(map(repr, options))}.")
        out[present[0]] = _column(data, given[present[0]], present[0])
    lengths = {k: len(v) for k, v in out.items()}
    if len(set(lengths.values())) > 1:
        raise SpecificationError(f"escalc: the inputs have different lengths: {lengths}.")
    return out


def _corrected(cells: list[np.ndarray], add: float, to: str) -> list[np.ndarray]:
    """Add ``add`` to every cell of the tables chosen by ``to``."""
    zero = np.any(np.column_stack(cells) == 0, axis=1)
    which = {"only0": zero, "all": np.ones_like(zero), "if0all": np.full_like(zero, zero.any()),
             "none": np.zeros_like(zero)}[to]
    return [c + add * which for c in cells]


def _check_counts(values: dict, measure: str, index: pd.Index) -> None:
    """Counts, sizes and SDs must not be negative, person-times must be positive."""
    for name, v in values.items():
        if name in SIGNED:
            continue
        strict = name in POSITIVE
        bad = np.flatnonzero(np.isfinite(v) & ((v <= 0) if strict else (v < 0)))
        if len(bad):
            what = "not positive" if strict else "negative"
            raise SpecificationError(f"escalc: {name} is {what} in rows {format_rows(index[bad])} "
                                     f"(measure {measure!r}).")


def _check_correlations(r: np.ndarray, index: pd.Index) -> None:
    outside = np.isfinite(r) & (np.abs(r) > 1)
    if outside.any():
        raise SpecificationError(f"ri: correlations outside [-1, 1] in rows {format_rows(index[outside])}.")


def _hedges_correction(m: np.ndarray) -> np.ndarray:
    """Hedges' exact small-sample correction c(m) (metafor's ``.cmicalc``; NaN for m <= 1)."""
    from scipy.special import gammaln  # a tenth of a second: with the first use, not the package

    m = np.asarray(m, dtype=float)
    with np.errstate(invalid="ignore"):
        c = np.exp(gammaln(m / 2) - np.log(np.sqrt(m / 2)) - gammaln((m - 1) / 2))
    return np.where(m > 1, c, np.nan)


def _two_by_two(measure, v, add, to, index, drop00):
    ai, ci = v["ai"], v["ci"]
    bi = v["bi"] if "bi" in v else v["n1i"] - ai
    di = v["di"] if "di" in v else v["n2i"] - ci
    dropped = ((ai == 0) & (ci == 0)) | ((bi == 0) & (di == 0)) if drop00 else np.zeros(len(ai), bool)
    for name, cell in (("bi", bi), ("di", di)):
        if np.any(cell < 0):
            raise SpecificationError(f"escalc: n1i/n2i smaller than the events ({name} < 0) in rows "
                                     f"{format_rows(index[cell < 0])}.")
    ai, bi, ci, di = _corrected([ai, bi, ci, di], add, to)
    n1, n2 = ai + bi, ci + di
    p1, p2 = ai / n1, ci / n2
    if measure == "RR":
        yi, vi = np.log(p1 / p2), 1 / ai - 1 / n1 + 1 / ci - 1 / n2
    elif measure == "OR":
        yi, vi = np.log(ai * di / (bi * ci)), 1 / ai + 1 / bi + 1 / ci + 1 / di
    elif measure == "PETO":
        n, events = n1 + n2, ai + ci
        information = events * (bi + di) * n1 * n2 / (n ** 2 * (n - 1))
        yi, vi = (ai - events * n1 / n) / information, 1 / information
    elif measure == "AS":
        yi, vi = np.arcsin(np.sqrt(p1)) - np.arcsin(np.sqrt(p2)), 1 / (4 * n1) + 1 / (4 * n2)
    else:
        yi, vi = p1 - p2, p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    return np.where(dropped, np.nan, yi), np.where(dropped, np.nan, vi)


def _proportion(measure, v, add, to, index):
    xi, ni = v["xi"], v["ni"]
    if np.any(xi > ni):
        raise SpecificationError(f"escalc: xi > ni in rows {format_rows(index[xi > ni])}.")
    xi, other = _corrected([xi, ni - xi], add, to)
    ni = xi + other
    p = xi / ni
    if measure == "PR":
        return p, p * (1 - p) / ni
    if measure == "PLN":
        return np.log(p), 1 / xi - 1 / ni
    if measure == "PAS":
        return np.arcsin(np.sqrt(p)), 1 / (4 * ni)
    if measure == "PFT":
        return (np.arcsin(np.sqrt(xi / (ni + 1))) + np.arcsin(np.sqrt((xi + 1) / (ni + 1)))) / 2, 1 / (4 * ni + 2)
    return np.log(xi / other), 1 / xi + 1 / other


def _rates(measure, v, add, to, drop00):
    if measure == "IRLN":
        (xi,) = _corrected([v["xi"]], add, to)
        return np.log(xi / v["ti"]), 1 / xi
    dropped = drop00 & (v["x1i"] == 0) & (v["x2i"] == 0)
    x1, x2 = _corrected([v["x1i"], v["x2i"]], add, to)
    rate1, rate2 = x1 / v["t1i"], x2 / v["t2i"]
    if measure == "IRR":
        yi, vi = np.log(rate1 / rate2), 1 / x1 + 1 / x2
    else:
        yi, vi = rate1 - rate2, rate1 / v["t1i"] + rate2 / v["t2i"]
    return np.where(dropped, np.nan, yi), np.where(dropped, np.nan, vi)


def _means(measure, v):
    m1, s1, n1, m2, s2, n2 = (v[k] for k in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"))
    if measure == "MD":
        return m1 - m2, s1 ** 2 / n1 + s2 ** 2 / n2
    if measure == "ROM":
        return np.log(m1 / m2), s1 ** 2 / (n1 * m1 ** 2) + s2 ** 2 / (n2 * m2 ** 2)
    df = n1 + n2 - 2
    pooled = np.sqrt(((n1 - 1) * s1 ** 2 + (n2 - 1) * s2 ** 2) / df)
    g = _hedges_correction(df) * (m1 - m2) / pooled
    return g, 1 / n1 + 1 / n2 + g ** 2 / (2 * (n1 + n2))


def _mean_change(measure, v, index):
    """Standardised mean change of one group measured twice (change-score or raw-score SD)."""
    m1, m2, s1, n, r = (v[k] for k in ("m1i", "m2i", "sd1i", "ni", "ri"))
    _check_correlations(r, index)
    sd = s1 if measure == "SMCR" else np.sqrt(s1 ** 2 + v["sd2i"] ** 2 - 2 * r * s1 * v["sd2i"])
    yi = _hedges_correction(n - 1) * (m1 - m2) / sd
    return yi, (2 * (1 - r) if measure == "SMCR" else 1) / n + yi ** 2 / (2 * n)


#: Inputs that are group or sample sizes (a size of 0 describes no study).
SIZES = ("ni", "n1i", "n2i")


def _sizes(v: dict) -> dict:
    """Every group size of the inputs (given, or the sum of the cells of a 2x2 table)."""
    sizes = {name: v[name] for name in SIZES if name in v}
    if "bi" in v:
        sizes["n1i"] = v["ai"] + v["bi"]
    if "di" in v:
        sizes["n2i"] = v["ci"] + v["di"]
    return sizes


def _unusable(measure: str, v: dict) -> list[tuple[np.ndarray, str]]:
    """Rows whose inputs define no effect size or sampling variance, with the reason (before computing)."""
    with np.errstate(invalid="ignore"):
        out = [(size == 0, f"{name} is 0") for name, size in _sizes(v).items()]
        if measure == "SMD":
            out.append((v["n1i"] + v["n2i"] <= 2, "n1i + n2i <= 2 leaves no degrees of freedom for the SD"))
        if measure == "ROM":
            out.append(((v["m1i"] <= 0) | (v["m2i"] <= 0), "a ratio of means needs positive means"))
        if measure == "ZCOR":
            out.append((v["ni"] <= 3, "ZCOR needs ni > 3 (vi = 1 / (ni - 3))"))
        if measure == "COR":
            out.append((v["ni"] <= 1, "COR needs ni > 1"))
        if measure in ("COR", "ZCOR"):
            out.append((np.abs(v["ri"]) == 1, "a correlation of +-1 has no sampling variance"))
        if measure in ("SMCC", "SMCR"):
            out.append((v["ni"] <= 2, f"{measure} needs ni > 2"))
    return out


def _double_zero(measure: str, v: dict) -> np.ndarray:
    """Two-group tables without events (or without non-events) in both groups (``drop00``)."""
    if "x1i" in v:
        return (v["x1i"] == 0) & (v["x2i"] == 0)
    if "ai" not in v:
        return np.zeros(len(next(iter(v.values()))), bool)
    bi = v["bi"] if "bi" in v else v["n1i"] - v["ai"]
    di = v["di"] if "di" in v else v["n2i"] - v["ci"]
    return ((v["ai"] == 0) & (v["ci"] == 0)) | ((bi == 0) & (di == 0))


def _set_unusable(measure: str, v: dict, yi: np.ndarray, vi: np.ndarray, index: pd.Index, to: str,
                  drop00: bool):
    """NaN (with a warning naming the rows and why) where the inputs define no effect size, or where it
    came out infinite or the variance not positive; never inf or a silent value. Rows dropped on
    request (``drop00``) and rows with missing inputs stay NaN without a warning."""
    complete = np.all([np.isfinite(x) for x in v.values()], axis=0)
    if drop00:
        complete &= ~_double_zero(measure, v)
    reasons = [(mask & complete, why) for mask, why in _unusable(measure, v)]
    taken = np.any([m for m, _ in reasons], axis=0) if reasons else np.zeros(len(yi), bool)
    with np.errstate(invalid="ignore"):
        broken = complete & ~taken & ~(np.isfinite(yi) & np.isfinite(vi) & (vi > 0))
    zero_cells = " (zero counts with to='none' or add=0?)" if to == "none" or measure in UNCORRECTED else ""
    reasons.append((broken, f"the effect size or its variance is not a positive finite number{zero_cells}"))
    parts = []
    for mask, why in reasons:
        if mask.any():
            parts.append(f"rows {format_rows(index[mask])} ({why})")
    bad = np.any([m for m, _ in reasons], axis=0)
    if bad.any():
        warn(f"escalc: measure {measure!r} gives no effect size for " + "; ".join(parts) + ": yi and vi are NaN "
             "there (rows with NaN are dropped from a model, with a warning).", UserWarning)
    return np.where(bad, np.nan, yi), np.where(bad, np.nan, vi)


def _check_options(add, drop00, var_names) -> None:
    if add is not None and (isinstance(add, bool) or not isinstance(add, (int, float, np.integer, np.floating))
                            or not np.isfinite(add) or add < 0):
        raise SpecificationError(f"add: expected a non-negative number (added to zero cells), got {add!r}.")
    if not isinstance(drop00, (bool, np.bool_)):
        raise SpecificationError(f"drop00: expected True or False, got {drop00!r}.")
    if (not isinstance(var_names, (tuple, list)) or len(var_names) != 2
            or not all(isinstance(n, str) and n for n in var_names)):
        raise SpecificationError(f"var_names: expected two column names, e.g. ('yi', 'vi'), got {var_names!r}.")
    if var_names[0] == var_names[1]:
        raise SpecificationError(f"var_names: the effect sizes and the variances need different columns, got "
                                 f"{var_names[0]!r} twice.")


def escalc(measure: str, data: pd.DataFrame | None = None, *, add: float | None = None, to: str = "only0",
           drop00: bool = False, var_names: tuple[str, str] = ("yi", "vi"), **columns) -> pd.DataFrame:
    """Effect sizes ``yi`` and sampling variances ``vi`` as metafor's ``escalc`` computes them.

    Parameters
    ----------
    measure : str
        One of ``RR, OR, PETO, RD, AS, IRR, IRD, PR, PLN, PLO, PAS, PFT, IRLN, MN, MD, SMD, ROM,
        SMCC, SMCR, COR, ZCOR`` (see the module docs).
    data : pandas.DataFrame, optional
        Where column names are looked up; the result is a copy with ``yi`` and ``vi`` added.
    add : float, optional
        Added to the counts of tables with a zero cell (2x2 tables, proportions, rates);
        default 1/2, and 0 for the arcsine measures AS, PAS and PFT (metafor's defaults).
    to : {"only0", "all", "if0all", "none"}
        Which tables get ``add`` (metafor's default ``"only0"``: those with a zero cell).
    drop00 : bool
        For two-group counts (RR, OR, PETO, RD, AS, IRR, IRD): give ``NaN`` for studies without events
        (or without non-events) in both groups, as metafor does.
    var_names : (str, str)
        Names of the two new columns.
    **columns
        The inputs of the measure, each a column name of ``data`` or an array:
        ``ai, bi, ci, di`` (or ``n1i``, ``n2i`` instead of ``bi``, ``di``), ``xi, ni``,
        ``x1i, t1i, x2i, t2i``, ``xi, ti``, ``mi, sdi, ni``, ``m1i, sd1i, n1i, m2i, sd2i, n2i``,
        ``m1i, m2i, sd1i, sd2i, ni, ri``, ``ri, ni``.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> import bayesmeta as bm
    >>> dat = escalc("RR", data=bm.datasets.load("bcg"), ai="tpos", bi="tneg", ci="cpos", di="cneg")
    >>> round(float(dat["yi"].iloc[0]), 4), round(float(dat["vi"].iloc[0]), 4)
    (-0.8893, 0.3256)

    Peto's log odds ratio of a table with a zero cell (1/2 added to its four cells):

    >>> escalc("PETO", ai=[0], bi=[25], ci=[4], di=[21]).round(4)
           yi      vi
    0 -1.7362  0.8681
    """
    key = str(measure).upper()
    if key not in MEASURES:
        raise SpecificationError(f"measure: unknown measure {measure!r}; expected one of {', '.join(MEASURES)}.")
    if to not in TO_OPTIONS:
        raise SpecificationError(f"to: expected one of {TO_OPTIONS}, got {to!r}.")
    if data is not None and not isinstance(data, pd.DataFrame):
        raise SpecificationError(f"data: expected a pandas DataFrame, got {type(data).__name__}.")
    _check_options(add, drop00, var_names)
    known = {name for spec in MEASURES[key] for name in spec.split("|")}
    unknown = sorted(set(columns) - known)
    if unknown:
        raise SpecificationError(f"escalc: argument(s) {unknown} do not belong to measure {key!r} "
                                 f"(expected {sorted(known)}).")
    v = _inputs(key, data, columns)
    n = len(next(iter(v.values())))
    if data is not None and len(data) != n:
        raise SpecificationError(f"escalc: data has {len(data)} rows but the inputs have {n}.")
    index = data.index if data is not None else pd.RangeIndex(n)
    _check_counts(v, key, index)
    add = (0.0 if key in UNCORRECTED else 0.5) if add is None else add
    with np.errstate(divide="ignore", invalid="ignore"):
        if key in ("RR", "OR", "RD", "PETO", "AS"):
            yi, vi = _two_by_two(key, v, add, to, index, drop00)
        elif key in ("IRR", "IRD", "IRLN"):
            yi, vi = _rates(key, v, add, to, drop00)
        elif key in ("PR", "PLN", "PLO", "PAS", "PFT"):
            yi, vi = _proportion(key, v, add, to, index)
        elif key == "MN":
            yi, vi = v["mi"], v["sdi"] ** 2 / v["ni"]
        elif key in ("MD", "SMD", "ROM"):
            yi, vi = _means(key, v)
        elif key in ("SMCC", "SMCR"):
            yi, vi = _mean_change(key, v, index)
        else:
            r, n = v["ri"], v["ni"]
            _check_correlations(r, index)
            yi, vi = (r, (1 - r ** 2) ** 2 / (n - 1)) if key == "COR" else (np.arctanh(r), 1 / (n - 3))
    yi, vi = _set_unusable(key, v, np.asarray(yi, float), np.asarray(vi, float), index, to, drop00)
    out = data.copy() if data is not None else pd.DataFrame(index=index)
    out[var_names[0]] = yi
    out[var_names[1]] = vi
    return out
