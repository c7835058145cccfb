"""Wald tests of linear hypotheses ``L b = 0`` about estimated coefficients."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..design.rows import redundant_columns
from ..errors import SpecificationError, format_rows
from .intervals import chi2_sf, f_sf


@dataclass(frozen=True)
class WaldTest:
    """A Wald test of linear hypotheses ``L b = 0``.

    Attributes
    ----------
    statistic : float
        Chi-square statistic (z-tests) or F statistic (``test="t"``).
    df : int
        Number of hypotheses (rows of L).
    df_resid : float
        Denominator degrees of freedom of the F-test (inf for the chi-square test).
    pvalue : float
    terms : list of str
        Coefficients involved.
    part : str
        ``"location"`` (fixed effects) or ``"scale"`` (scale coefficients).
    """

    statistic: float
    df: int
    df_resid: float
    pvalue: float
    terms: list
    part: str = "location"

    def __str__(self) -> str:
        name = ("QS" if self.part == "scale" else "QM") if np.isinf(self.df_resid) else "F"
        dfs = f"df = {self.df}" if np.isinf(self.df_resid) else f"df1 = {self.df}, df2 = {self.df_resid:g}"
        p = "< .0001" if self.pvalue < 1e-4 else f"= {self.pvalue:.4f}"
        return f"Test of {', '.join(self.terms)}: {name}({dfs}) = {self.statistic:.4f}, p-val {p}"


def hypothesis_matrix(names: list[str], terms=None, L=None, default=None) -> tuple[np.ndarray, list[str]]:
    """The matrix L of the hypotheses and the coefficients it involves.

    Parameters
    ----------
    names : list of str
        The coefficients' names.
    terms : list of str, optional
        Coefficients tested jointly (rows of the identity).
    L : array_like, optional
        One row per hypothesis, one column per coefficient (instead of ``terms``).
    default : list of str, optional
        The coefficients tested when neither is given.
    """
    if L is not None and terms is not None:
        raise SpecificationError("terms, L: give the coefficients to test (terms=) or the hypotheses (L=), not both.")
    if L is None:
        if terms is not None and not isinstance(terms, (str, list, tuple, np.ndarray)):
            raise SpecificationError(f"terms: expected coefficient names, got {type(terms).__name__}.")
        terms = default if terms is None else [terms] if isinstance(terms, str) else list(terms)
        repeated = sorted({t for t in terms if terms.count(t) > 1})
        if repeated:
            raise SpecificationError(f"terms: coefficient(s) {repeated} given more than once.")
        unknown = [t for t in terms if t not in names]
        if unknown:
            raise SpecificationError(f"terms: unknown coefficient(s) {unknown}; available: {names}.")
        if not terms:
            raise SpecificationError("terms: nothing to test (the model has only an intercept).")
        return np.eye(len(names))[[names.index(t) for t in terms]], list(terms)
    try:
        L = np.atleast_2d(np.asarray(L, dtype=float))
    except (TypeError, ValueError):
        raise SpecificationError("L: expected a matrix of numbers (one row per hypothesis).") from None
    if L.ndim != 2 or L.shape[1] != len(names):
        raise SpecificationError(f"L: expected {len(names)} columns (one per coefficient), got shape {L.shape}.")
    if not np.isfinite(L).all():
        raise SpecificationError(f"L: rows {format_rows(np.flatnonzero(~np.isfinite(L).all(axis=1)))} have weights "
                                 "that are not finite numbers.")
    redundant = redundant_columns(L.T, list(range(L.shape[0])))
    if redundant:
        raise SpecificationError(f"L: the {L.shape[0]} hypotheses are linearly dependent: rows {format_rows(redundant)} "
                                 "(counting from 0) are zero or linear combinations of the rows before them (rank "
                                 f"{L.shape[0] - len(redundant)}), and the test's degrees of freedom would be wrong. "
                                 "Remove those rows.")
    return L, [names[j] for j in np.flatnonzero(np.abs(L).sum(axis=0) > 0)]


def wald_test(estimate: np.ndarray, vcov: np.ndarray, L: np.ndarray, terms: list[str], df_resid: float = np.inf,
              part: str = "location") -> WaldTest:
    """Wald test of ``L b = 0``: chi-square on m degrees of freedom, or, with finite
    ``df_resid``, F on (m, df_resid) (the statistic divided by m)."""
    Lb = L @ estimate
    covariance = L @ vcov @ L.T
    stat = float(Lb @ np.linalg.solve(covariance, Lb)) if np.all(np.isfinite(covariance)) else np.nan
    m = L.shape[0]
    if np.isfinite(df_resid):
        return WaldTest(stat / m, m, df_resid, float(f_sf(stat / m, m, df_resid)), list(terms), part)
    return WaldTest(stat, m, np.inf, float(chi2_sf(stat, m)), list(terms), part)
