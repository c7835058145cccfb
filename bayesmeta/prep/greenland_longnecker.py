"""Greenland-Longnecker covariances of log relative risks that share a reference group.

A dose-response study reports, for each non-reference exposure level j, an
(adjusted) log relative risk ``y_j`` against the same reference level 0, its
standard error, and the crude number of cases ``A_j`` and of subjects or
person-time ``N_j``. Because every ``y_j`` uses the reference group, they are
correlated. Greenland & Longnecker (1992) fit "effective" case counts
``A_j`` that keep the exposure totals ``N_j`` and the total number of cases
and reproduce the reported relative risks:

* ``"ir"`` (incidence rates, ``N`` = person-time): ``log(A_j/N_j) - log(A_0/N_0) = y_j``;
* ``"cc"`` (case-control, ``N`` = cases + controls) and ``"ci"`` (cumulative
  incidence, ``N`` = subjects): ``log(A_j/(N_j-A_j)) - log(A_0/(N_0-A_0)) = y_j``
  (odds form for both, as in dosresmeta's ``covar.logrr``).

With ``s_0 = w(A_0, N_0)`` and ``s_j = s_0 + w(A_j, N_j)``, where ``w = 1/A``
(ir), ``1/A - 1/N`` (ci) or ``1/A + 1/(N-A)`` (cc), the correlation of
``y_j`` and ``y_k`` is ``s_0 / sqrt(s_j s_k)`` (Orsini et al. 2006), and the
covariance scales it by the reported standard errors.

References: Greenland S, Longnecker MP (1992), Am J Epidemiol 135:1301-1309;
Orsini N, Bellocco R, Greenland S (2006), Stata Journal 6:40-57.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ..design.columns import column, numeric
from ..errors import SpecificationError, format_rows

TYPES = ("ci", "ir", "cc")
#: dosresmeta's stopping rule: sum of squared count updates below this.
_DOSRESMETA_TOL = 1e-5
_MAX_ITER = 200


@dataclass(frozen=True)
class _Study:
    """One study: the reference level (index 0) first, then the others in data order."""

    label: object
    type: str
    y: np.ndarray  # non-reference log RRs
    v: np.ndarray  # their variances
    cases: np.ndarray  # all levels, reference first
    n: np.ndarray


def _odds(kind: str) -> bool:
    return kind != "ir"


def _log_ratio(s: _Study, a: np.ndarray, a0: float) -> np.ndarray:
    """The model log RR of each non-reference level for fitted cases a (and a0 at the reference)."""
    if _odds(s.type):
        return np.log(a / (s.n[1:] - a)) - np.log(a0 / (s.n[0] - a0))
    return np.log(a / s.n[1:]) - np.log(a0 / s.n[0])


def _slope(s: _Study, a: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Derivative of the log odds (or log rate) in the fitted cases."""
    return 1 / a + 1 / (n - a) if _odds(s.type) else 1 / a


def _newton_step(s: _Study, a: np.ndarray, a0: float, slope0: float) -> np.ndarray:
    """Solve (diag(slope_j) + slope0 11') step = y - model (the Jacobian has this form as a0 = total - sum a)."""
    h = np.diag(_slope(s, a, s.n[1:])) + slope0
    return np.linalg.solve(h, s.y - _log_ratio(s, a, a0))


def _feasible(s: _Study, a: np.ndarray, a0: float) -> bool:
    counts = np.append(a, a0)
    upper = np.append(s.n[1:], s.n[0])
    return bool(np.all(counts > 0) and (not _odds(s.type) or np.all(counts < upper)))


def _fit_exact(s: _Study) -> tuple[np.ndarray, float]:
    """Fitted cases solving the constraints to machine precision (damped Newton from the crude cases)."""
    total = s.cases.sum()
    a = s.cases[1:].astype(float)
    for _ in range(_MAX_ITER):
        a0 = total - a.sum()
        step = _newton_step(s, a, a0, _slope(s, np.array([a0]), s.n[:1])[0])
        t = 1.0
        while not _feasible(s, a + t * step, total - (a + t * step).sum()):
            t /= 2
            if t < 1e-10:
                raise SpecificationError(f"gl_covariance: study {s.label}: no fitted counts reproduce the log relative "
                                         "risks; check logrr, cases and n.")
        a = a + t * step
        if np.max(np.abs(t * step)) <= 1e-12 * max(np.max(a), 1.0):
            return a, total - a.sum()
    raise SpecificationError(f"gl_covariance: study {s.label}: the fitted counts did not converge.")


def _fit_dosresmeta(s: _Study) -> tuple[np.ndarray, float]:
    """dosresmeta's iteration: the reference term of the Jacobian lags one step (the crude reference
    cases first), it stops once the squared updates sum below 1e-5, and keeps the reference count from
    before the last update."""
    total = s.cases.sum()
    a, lagged = s.cases[1:].astype(float), float(s.cases[0])
    for _ in range(_MAX_ITER):
        a0 = total - a.sum()
        if not _feasible(s, a, a0):
            break
        step = _newton_step(s, a, a0, _slope(s, np.array([lagged]), s.n[:1])[0])
        a, lagged = a + step, a0
        if np.sum(step ** 2) < _DOSRESMETA_TOL:
            return a, a0
    raise SpecificationError(f"gl_covariance: study {s.label}: the fitted counts did not converge.")


def _weight(kind: str, a: np.ndarray, n: np.ndarray) -> np.ndarray:
    return {"ir": 1 / a, "ci": 1 / a - 1 / n, "cc": 1 / a + 1 / (n - a)}[kind]


def _covariance(s: _Study, a: np.ndarray, a0: float) -> np.ndarray:
    s0 = _weight(s.type, np.array([a0]), s.n[:1])[0]
    sj = s0 + _weight(s.type, a, s.n[1:])
    cor = s0 / np.sqrt(np.outer(sj, sj))
    np.fill_diagonal(cor, 1.0)
    sd = np.sqrt(s.v)
    return sd[:, None] * cor * sd[None, :]


def _numeric(data: pd.DataFrame, name: str, argument: str) -> np.ndarray:
    return numeric(column(data, name, argument), argument, f"column {name!r} is")


def _types(data: pd.DataFrame, type: str) -> np.ndarray:
    in_data = isinstance(type, str) and type in data.columns
    if in_data and type in TYPES:
        raise SpecificationError(f"type: {type!r} is both a column of data and a study type; rename the column.")
    if not in_data:
        if type not in TYPES:
            raise SpecificationError(f"type: unknown type {type!r}; expected a column name or one of {', '.join(TYPES)}.")
        return np.full(len(data), type, dtype=object)
    values = data[type].astype(object).to_numpy()
    bad = [i for i, t in enumerate(values) if t not in TYPES]
    if bad:
        raise SpecificationError(f"type: column {type!r} has values other than {', '.join(TYPES)} in rows "
                                 f"{format_rows(data.index[bad])}.")
    return values


def _study(label, rows: np.ndarray, labels: pd.Index, cols: dict) -> _Study:
    """Check one study's rows and put its reference level first."""
    where = f"gl_covariance: study {label}"
    kinds = set(cols["type"][rows])
    if len(kinds) > 1:
        raise SpecificationError(f"{where}: mixes types {sorted(kinds)}.")
    ref = rows[np.isnan(cols["se"][rows])]
    if len(ref) != 1:
        raise SpecificationError(f"{where}: needs exactly one reference row (se missing), found {len(ref)}"
                                 + (f" (rows {format_rows(labels[ref])})." if len(ref) else "."))
    if not (np.isnan(cols["logrr"][ref[0]]) or cols["logrr"][ref[0]] == 0):
        raise SpecificationError(f"{where}: the reference row {labels[ref[0]]} has logrr "
                                 f"{cols['logrr'][ref[0]]}, expected 0.")
    others = rows[rows != ref[0]]
    if not len(others):
        raise SpecificationError(f"{where}: has only the reference row.")
    ordered = np.concatenate([ref, others])
    kind = kinds.pop()
    for name in ("cases", "n"):
        bad = ordered[~(cols[name][ordered] > 0)]
        if len(bad):
            raise SpecificationError(f"{where}: {name} must be positive; rows {format_rows(labels[bad])} are not.")
    if _odds(kind):
        bad = ordered[~(cols["n"][ordered] > cols["cases"][ordered])]
        if len(bad):
            raise SpecificationError(f"{where}: n must exceed cases for type {kind!r}; rows {format_rows(labels[bad])}.")
    bad = others[~(np.isfinite(cols["logrr"][others]) & (cols["se"][others] > 0) & np.isfinite(cols["se"][others]))]
    if len(bad):
        raise SpecificationError(f"{where}: logrr must be finite and se positive in rows {format_rows(labels[bad])}.")
    return _Study(label, kind, cols["logrr"][others], cols["se"][others] ** 2,
                  cols["cases"][ordered], cols["n"][ordered])


def gl_covariance(data: pd.DataFrame, *, id: str, logrr: str, se: str, cases: str, n: str, type: str,
                  solver: Literal["exact", "dosresmeta"] = "exact") -> list[np.ndarray]:
    """Greenland-Longnecker covariance blocks of the non-reference log relative risks of each study.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per exposure level, including one reference row per study
        (``se`` missing, ``logrr`` 0).
    id, logrr, se, cases, n : str
        Columns: study id, log relative risk, its standard error, number of
        cases, and number of subjects (``"ci"``, ``"cc"``: cases plus
        non-cases or controls) or person-time (``"ir"``).
    type : str
        A column holding each study's type, or one type for all studies:
        ``"ci"`` (cumulative incidence), ``"ir"`` (incidence rate) or
        ``"cc"`` (case-control).
    solver : {"exact", "dosresmeta"}
        ``"exact"`` solves for the fitted counts to machine precision.
        ``"dosresmeta"`` reproduces dosresmeta's ``covar.logrr``, whose
        iteration stops early (correlations differ from the exact ones by up
        to about 1e-4 relative).

    Returns
    -------
    list of numpy.ndarray
        One block per study, in order of first appearance, over the study's
        non-reference rows in data order; its diagonal is ``se**2``.

    Raises
    ------
    SpecificationError
        For unknown columns or types, a study without exactly one reference
        row, non-positive cases or n, or counts that cannot reproduce the
        reported log relative risks.

    Examples
    --------
    >>> import pandas as pd
    >>> dat = pd.DataFrame({"id": 1, "logrr": [0.0, 0.2, 0.5], "se": [None, 0.2, 0.25],
    ...                     "cases": [30, 40, 25], "py": [10000.0, 11000.0, 6000.0]})
    >>> S = gl_covariance(dat, id="id", logrr="logrr", se="se", cases="cases", n="py", type="ir")
    >>> S[0].round(4)
    array([[0.04  , 0.0267],
           [0.0267, 0.0625]])
    """
    if solver not in ("exact", "dosresmeta"):
        raise SpecificationError(f"solver: expected 'exact' or 'dosresmeta', got {solver!r}.")
    cols = {"type": _types(data, type)}
    for argument, name in (("logrr", logrr), ("se", se), ("cases", cases), ("n", n)):
        cols[argument] = _numeric(data, name, argument)
    ids = column(data, id, "id")
    if ids.isna().any():
        raise SpecificationError(f"id: column {id!r} is missing in rows {format_rows(data.index[ids.isna()])}.")
    codes, labels = pd.factorize(ids, sort=False)
    fit = _fit_exact if solver == "exact" else _fit_dosresmeta
    blocks = []
    for c, label in enumerate(labels):
        study = _study(label, np.flatnonzero(codes == c), data.index, cols)
        blocks.append(_covariance(study, *fit(study)))
    return blocks
