"""Effect sizes and their sampling variances, with metafor's names and formulas.

:func:`escalc` returns a copy of the data with columns ``yi`` and ``vi`` for

===========  ==========================================  ===============================
measure      input columns                               effect size
===========  ==========================================  ===============================
``RR``       ``ai, bi, ci, di`` (or ``ai, n1i, ci, n2i``)  log risk ratio
``OR``       same                                        log odds ratio
``RD``       same                                        risk difference
``IRR``      ``x1i, t1i, x2i, t2i``                      log incidence rate ratio
``PR``       ``xi, ni``                                  raw proportion
``PLN``      ``xi, ni``                                  log proportion
``PLO``      ``xi, ni``                                  logit proportion
``MN``       ``mi, sdi, ni``                             raw mean
``MD``       ``m1i, sd1i, n1i, m2i, sd2i, n2i``          raw mean difference
``SMD``      same                                        Hedges' g (exact correction)
``ROM``      same                                        log ratio of means
``COR``      ``ri, ni``                                  raw correlation
``ZCOR``     ``ri, ni``                                  Fisher's z
===========  ==========================================  ===============================

Counts with a zero cell get ``add`` (default 1/2) added to every cell of that
table (``to="only0"``, metafor's default); ``to="all"`` adds to every table,
``to="if0all"`` to every table when any has a zero, ``to="none"`` never.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import gammaln

from ..design.columns import numeric, resolve
from ..errors import SpecificationError, format_rows

#: Input columns of every measure (alternatives separated by "|").
MEASURES = {
    "RR": ("ai", "bi|n1i", "ci", "di|n2i"), "OR": ("ai", "bi|n1i", "ci", "di|n2i"),
    "RD": ("ai", "bi|n1i", "ci", "di|n2i"), "IRR": ("x1i", "t1i", "x2i", "t2i"),
    "PR": ("xi", "ni"), "PLN": ("xi", "ni"), "PLO": ("xi", "ni"),
    "MN": ("mi", "sdi", "ni"), "MD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"), "SMD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "ROM": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"), "COR": ("ri", "ni"), "ZCOR": ("ri", "ni"),
}
TO_OPTIONS = ("only0", "all", "if0all", "none")


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


def _check_counts(values: dict, names, measure: str, index: pd.Index) -> None:
    for name in names:
        v = values[name]
        bad = np.flatnonzero(np.isfinite(v) & (v < 0))
        if len(bad):
            raise SpecificationError(f"escalc: {name} is negative in rows {format_rows(index[bad])} (measure {measure!r}).")


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
    return np.log(xi / other), 1 / xi + 1 / other


def _means(measure, v):
    m1, s1, n1, m2, s2, n2 = (v[k] for k in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"))
    if measure == "MD":
        return m1 - m2, s1 ** 2 / n1 + s2 ** 2 / n2
    if measure == "ROM":
        return np.log(m1 / m2), s1 ** 2 / (n1 * m1 ** 2) + s2 ** 2 / (n2 * m2 ** 2)
    df = n1 + n2 - 2
    pooled = np.sqrt(((n1 - 1) * s1 ** 2 + (n2 - 1) * s2 ** 2) / df)
    correction = np.exp(gammaln(df / 2) - np.log(np.sqrt(df / 2)) - gammaln((df - 1) / 2))
    g = correction * (m1 - m2) / pooled
    return g, 1 / n1 + 1 / n2 + g ** 2 / (2 * (n1 + n2))


def escalc(measure: str, data: pd.DataFrame | None = None, *, add: float = 0.5, to: str = "only0",
           drop00: bool = False, var_names: tuple[str, str] = ("yi", "vi"), **columns) -> pd.DataFrame:
    """Effect sizes ``yi`` and sampling variances ``vi`` as metafor's ``escalc`` computes them.

    Parameters
    ----------
    measure : str
        One of ``RR, OR, RD, IRR, PR, PLN, PLO, MN, MD, SMD, ROM, COR, ZCOR`` (see the module docs).
    data : pandas.DataFrame, optional
        Where column names are looked up; the result is a copy with ``yi`` and ``vi`` added.
    add : float
        Added to the counts of tables with a zero cell (2x2 tables, proportions, rates).
    to : {"only0", "all", "if0all", "none"}
        Which tables get ``add`` (metafor's default ``"only0"``: those with a zero cell).
    drop00 : bool
        For two-group counts (RR, OR, RD, IRR): give ``NaN`` for studies without events
        (or without non-events) in both groups, as metafor does.
    var_names : (str, str)
        Names of the two new columns.
    **columns
        The inputs of the measure, each a column name of ``data`` or an array:
        ``ai, bi, ci, di`` (or ``n1i``, ``n2i`` instead of ``bi``, ``di``), ``xi, ni``,
        ``x1i, t1i, x2i, t2i``, ``mi, sdi, ni``, ``m1i, sd1i, n1i, m2i, sd2i, n2i``, ``ri, ni``.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> import bayesmeta as bm
    >>> dat = escalc("RR", data=bm.datasets.load("bcg"), ai="tpos", bi="tneg", ci="cpos", di="cneg")
    >>> round(float(dat["yi"].iloc[0]), 4), round(float(dat["vi"].iloc[0]), 4)
    (-0.8893, 0.3256)
    """
    key = str(measure).upper()
    if key not in MEASURES:
        raise SpecificationError(f"measure: unknown measure {measure!r}; expected one of {', '.join(MEASURES)}.")
    if to not in TO_OPTIONS:
        raise SpecificationError(f"to: expected one of {TO_OPTIONS}, got {to!r}.")
    if data is not None and not isinstance(data, pd.DataFrame):
        raise SpecificationError(f"data: expected a pandas DataFrame, got {type(data).__name__}.")
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
    _check_counts(v, [k for k in v if k not in ("m1i", "m2i", "mi", "ri")], key, index)
    with np.errstate(divide="ignore", invalid="ignore"):
        if key in ("RR", "OR", "RD"):
            yi, vi = _two_by_two(key, v, add, to, index, drop00)
        elif key == "IRR":
            dropped = drop00 & (v["x1i"] == 0) & (v["x2i"] == 0)
            x1, x2 = _corrected([v["x1i"], v["x2i"]], add, to)
            yi, vi = np.log((x1 / v["t1i"]) / (x2 / v["t2i"])), 1 / x1 + 1 / x2
            yi, vi = np.where(dropped, np.nan, yi), np.where(dropped, np.nan, vi)
        elif key in ("PR", "PLN", "PLO"):
            yi, vi = _proportion(key, v, add, to, index)
        elif key == "MN":
            yi, vi = v["mi"], v["sdi"] ** 2 / v["ni"]
        elif key in ("MD", "SMD", "ROM"):
            yi, vi = _means(key, v)
        else:
            r, n = v["ri"], v["ni"]
            if np.any(np.abs(r[np.isfinite(r)]) > 1):
                raise SpecificationError(f"escalc: correlations outside [-1, 1] in rows "
                                         f"{format_rows(index[np.abs(r) > 1])}.")
            yi, vi = (r, (1 - r ** 2) ** 2 / (n - 1)) if key == "COR" else (np.arctanh(r), 1 / (n - 3))
    out = data.copy() if data is not None else pd.DataFrame(index=index)
    out[var_names[0]] = yi
    out[var_names[1]] = vi
    return out
