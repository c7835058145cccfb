"""Likelihood-ratio tests of nested models and information-criteria tables, as metafor's ``anova``.

``LRT = 2 (logLik_full - logLik_reduced)`` is referred to a chi-square
distribution with as many degrees of freedom as the full model has extra free
parameters. The test needs two fits of the same data by the same method, the
reduced model nested in the full one:

* its fixed effects span a subspace of the full model's (REML likelihoods of
  models with different fixed effects are not comparable, so REML needs the same
  fixed effects);
* every random term it has is in the full model, with a covariance structure the
  full model's contains (UN > HCS > CS > ID, UN > DIAG > ID, HAR > AR > ID,
  HCS > DIAG, HAR > DIAG; see :meth:`bayesmeta.spec.structures.Structure.contains`)
  and no component the full model fixes at another value;
* a variance without scale model is the intercept of a scale model, and a term
  (or component) the reduced model leaves out or fixes at 0 is on the boundary of
  the full model's space.

As metafor, the p-value is the naive chi-square one. When the reduced model sits
on the boundary (a variance fixed at 0, a term left out), the correct reference
is a mixture of chi-square distributions and the naive p-value is conservative;
the result says so in its ``note``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.coscale import structure_designs
from ..errors import SpecificationError
from .intervals import chi2_sf

#: Columns of the information-criteria tables.
CRITERIA = ["df", "logLik", "deviance", "AIC", "BIC", "AICc"]


@dataclass(frozen=True)
class LRTResult:
    """A likelihood-ratio test of a reduced model against a full model.

    Attributes
    ----------
    statistic : float
        ``2 (logLik_full - logLik_reduced)``.
    df : int
        Difference in the number of free parameters.
    pvalue : float
        Naive chi-square p-value (as metafor's ``anova``).
    table : pandas.DataFrame
        Rows ``Full`` and ``Reduced``: df (free parameters), logLik, deviance, AIC, BIC,
        AICc, LRT, pval (as metafor's ``anova`` prints them).
    note : str
        Which parameters make up the difference in df, and whether the reduced model
        lies on the boundary of the full model's space.
    """

    statistic: float
    df: int
    pvalue: float
    table: pd.DataFrame
    note: str = ""

    def __str__(self) -> str:
        shown = self.table.copy()
        for c in CRITERIA[1:] + ["LRT", "pval"]:
            shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
        return shown.to_string() + (f"\n\n{self.note}" if self.note else "")


def _in_span(A: np.ndarray, B: np.ndarray) -> bool:
    """Whether every column of A is a linear combination of the columns of B."""
    if A.shape[1] == 0:
        return True
    if B.shape[1] == 0:
        return False
    coef, *_ = np.linalg.lstsq(B, A, rcond=None)
    return bool(np.all(np.linalg.norm(A - B @ coef, axis=0) <= 1e-8 * np.maximum(np.linalg.norm(A, axis=0), 1.0)))


def _variance_design(fit, k: int) -> np.ndarray:
    """Per group, the moderators of term k's log variance (a column of ones without scale model)."""
    sc = fit.param.scale_of(k)
    return sc.W if sc is not None else np.ones((fit.param.terms[k].n_groups, 1))


def _free_counts(fit, k: int) -> tuple[int, int, int]:
    """Free variances, free correlations and scale coefficients of term k."""
    sc = fit.param.scale_of(k) or fit.param.coscale_of(k)
    return (int(np.isnan(fit.param.fixed_sd[k]).sum()), int(np.isnan(fit.param.fixed_rho[k]).sum()),
            0 if sc is None else sc.r)


def _check_coscale_term(full, reduced, j: int, k: int) -> bool:
    """Nesting of a structured term when either model has a scale model of it (see
    :func:`~bayesmeta.design.coscale.structure_designs`); the reduced model is never on a boundary here."""
    label = reduced.param.terms[k].label
    if any(not np.isnan(_fixed_values(fit, i)).all() for fit, i in ((full, j), (reduced, k))):
        raise SpecificationError(f"lrt: {label!r} has fixed components beside a scale model in one of the models.")
    tau_full, rho_full = structure_designs(full.design.encodings[j], full.param.coscale_of(j))
    tau_red, rho_red = structure_designs(reduced.design.encodings[k], reduced.param.coscale_of(k))
    pairs = [np.asarray(s.pair(0.5, np.arange(3))) for s in (full.param.terms[j].structure.correlation,
                                                              reduced.param.terms[k].structure.correlation)]
    same_family = rho_red.shape[1] == 0 or np.allclose(*pairs)
    if not (_in_span(tau_red, tau_full) and _in_span(rho_red, rho_full) and same_family):
        raise SpecificationError(f"lrt: the SD and correlation models of {label!r} in the reduced model are not "
                                 "nested in the full model's.")
    return False


def _describe(fit, k: int) -> str:
    t = fit.param.terms[k]
    n_var, n_rho, n_alpha = _free_counts(fit, k)
    if n_alpha:
        return f"{n_alpha} scale coefficient(s)"
    parts = [f"{n_var} variance(s)"] + ([f"{n_rho} correlation(s)"] if t.n_rho else [])
    fixed = (len(fit.param.fixed_sd[k]) - n_var) + (len(fit.param.fixed_rho[k]) - n_rho)
    return f"{t.structure.name if t.q > 1 else 'one level'}: " + ", ".join(parts) + (f", {fixed} fixed" if fixed else "")


def _same_data(full, reduced) -> bool:
    d_full, d_red = full.design, reduced.design
    return (d_full.n == d_red.n and np.array_equal(d_full.row_labels, d_red.row_labels)
            and np.array_equal(d_full.y, d_red.y) and np.allclose(d_full.V.diagonal(), d_red.V.diagonal())
            and abs(d_full.V.logdet() - d_red.V.logdet()) < 1e-8)


def _fixed_values(fit, k: int) -> np.ndarray:
    return np.r_[fit.param.fixed_sd[k], fit.param.fixed_rho[k]]


def _check_term(full, reduced, j: int, k: int) -> bool:
    """Check that term k of the reduced model is nested in term j of the full model; return
    whether the reduced model fixes a free component of the full one at its boundary."""
    t, other = reduced.param.terms[k], full.param.terms[j]
    if t.levels != other.levels:
        raise SpecificationError(f"lrt: the term {t.label!r} has different levels in the two models.")
    if full.param.coscale_of(j) is not None or reduced.param.coscale_of(k) is not None:
        return _check_coscale_term(full, reduced, j, k)
    if not other.structure.contains(t.structure):
        raise SpecificationError(f"lrt: the reduced model's {t.structure.name} structure of {t.label!r} is not "
                                 f"nested in the full model's {other.structure.name}.")
    fixed_full, fixed_red = _fixed_values(full, j), _fixed_values(reduced, k)
    if not np.isnan(fixed_full).all():
        if t.structure.name != other.structure.name or np.any(
                ~np.isnan(fixed_full) & (np.isnan(fixed_red) | (fixed_full != fixed_red))):
            raise SpecificationError(f"lrt: the full model fixes components of {t.label!r} that the reduced "
                                     "model estimates or fixes elsewhere.")
    if full.param.scale_of(j) is None and reduced.param.scale_of(k) is None and t.q == 1:
        return bool(np.any(fixed_red[:1] == 0) and np.isnan(fixed_full[0]))
    if not _in_span(_variance_design(reduced, k), _variance_design(full, j)):
        raise SpecificationError(f"lrt: the variance model of {t.label!r} in the reduced model is not nested in "
                                 "the full model's (scale moderators).")
    if t.structure.name == other.structure.name:
        free_full, free_red = np.isnan(fixed_full), np.isnan(fixed_red)
        return bool(np.any(free_full & ~free_red & (fixed_red == 0)))
    return False


def _same_groups(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two group codings partition the rows in the same way."""
    pairs = np.unique(np.column_stack([a, b]), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def _matching_term(full, reduced, k: int) -> int:
    """The term of the full model with the same groups (and effects) as term k of the reduced model."""
    mine = reduced.design.encodings[k]
    for j, enc in enumerate(full.design.encodings):
        same_effects = (enc.Z is None) == (mine.Z is None) and (enc.Z is None or np.array_equal(enc.Z, mine.Z))
        if same_effects and _same_groups(enc.codes, mine.codes):
            return j
    raise SpecificationError(f"lrt: the reduced model's random term {mine.term.label!r} is not in the full model "
                             "(no term of the full model has the same groups and effects).")


def _check_nested(full, reduced) -> list[str]:
    """Raise unless ``reduced`` is nested in ``full``; return notes on the difference."""
    if full.method != reduced.method or full.method not in ("ML", "REML"):
        raise SpecificationError(f"lrt: both models must be fitted by ML or both by REML; got {full.method!r} "
                                 f"(full) and {reduced.method!r} (reduced).")
    if not _same_data(full, reduced):
        raise SpecificationError("lrt: the models were not fitted to the same data (rows, outcome and sampling "
                                 "covariance must agree; check rows dropped for missing values).")
    if full.parms <= reduced.parms:
        raise SpecificationError(f"lrt: the full model has {full.parms} parameters and the reduced one "
                                 f"{reduced.parms}; give the larger model first.")
    if not _in_span(reduced.design.X, full.design.X):
        raise SpecificationError("lrt: the reduced model's fixed effects are not nested in the full model's.")
    if full.method == "REML" and not _in_span(full.design.X, reduced.design.X):
        raise SpecificationError("lrt: REML likelihoods of models with different fixed effects are not comparable; "
                                 "fit both models with method='ML', or keep the fixed effects the same.")
    labels = [t.label for t in full.param.terms]
    notes, boundary, matched = [], False, set()
    for k, t in enumerate(reduced.param.terms):
        j = _matching_term(full, reduced, k)
        matched.add(j)
        boundary |= _check_term(full, reduced, j, k)
        if _free_counts(full, j) != _free_counts(reduced, k) or t.structure != full.param.terms[j].structure:
            notes.append(f"{t.label!r}: {_describe(full, j)} (full) against {_describe(reduced, k)} (reduced)")
    for j in sorted(set(range(len(labels))) - matched):
        boundary = True
        notes.append(f"{labels[j]!r}: {_describe(full, j)} (full), left out of the reduced model")
    if full.p != reduced.p:
        notes.append(f"fixed effects: {full.p} (full) against {reduced.p} (reduced)")
    if boundary:
        notes.append("the reduced model lies on the boundary of the full model's parameter space (a variance "
                     "of 0): the chi-square p-value, as metafor reports it, is conservative")
    return notes


def _criteria(fit) -> list[float]:
    return [fit.parms, fit.loglik, fit.deviance, fit.aic, fit.bic, fit.aicc]


def _require_fit(fit, name: str) -> None:
    if not hasattr(fit, "loglik") or not hasattr(fit, "estimate"):
        raise SpecificationError(f"{name}: must be an ML or REML fit (ModeResult), got {type(fit).__name__}.")


def lrt(full, reduced) -> LRTResult:
    """Likelihood-ratio test of a reduced model against a full model.

    Parameters
    ----------
    full, reduced : ModeResult
        ML or REML fits of the same data; ``reduced`` nested in ``full`` (fewer fixed
        effects, a contained covariance structure, a component fixed, a term left out,
        or fewer scale moderators).

    Returns
    -------
    LRTResult

    Raises
    ------
    SpecificationError
        When the fits differ in method or data, are not nested, or (REML) differ in
        their fixed effects.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    >>> full = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length").fit()
    >>> reduced = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ 1").fit()
    >>> test = bm.lrt(full, reduced)
    >>> round(test.statistic, 4), test.df, round(test.pvalue, 4)
    (0.4308, 1, 0.5116)

    Nested covariance structures: an unstructured against a compound-symmetric
    covariance of two correlated outcomes.

    >>> berkey = bm.datasets.load("berkey98")
    >>> def berkey_model(struct):
    ...     return bm.multivariate(berkey, outcomes=["PD", "AL"], id="pubyear",
    ...                            vech=["var_PD", "cov_PD_AL", "var_AL"], struct=struct)
    >>> test = bm.lrt(berkey_model("UN").fit(), berkey_model("CS").fit())
    >>> test.df, round(test.statistic, 4)
    (1, 0.7624)
    """
    _require_fit(full, "lrt: full")
    _require_fit(reduced, "lrt: reduced")
    notes = _check_nested(full, reduced)
    statistic = 2.0 * (full.loglik - reduced.loglik)
    df = full.parms - reduced.parms
    pvalue = float(chi2_sf(max(statistic, 0.0), df))
    table = pd.DataFrame([_criteria(full), _criteria(reduced)], columns=CRITERIA, index=["Full", "Reduced"])
    table["LRT"] = [np.nan, statistic]
    table["pval"] = [np.nan, pvalue]
    note = f"df = {df}: " + "; ".join(notes) if notes else ""
    return LRTResult(float(statistic), int(df), pvalue, table, note)


def anova(*fits, names: list[str] | None = None) -> pd.DataFrame:
    """Information criteria of several fits, with likelihood-ratio tests between consecutive nested ones.

    Parameters
    ----------
    *fits : ModeResult
        ML or REML fits of the same data, e.g. from the richest model to the simplest.
    names : list of str, optional
        Row labels (default ``"model 1"``, ``"model 2"``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per fit: ``df`` (free parameters), ``logLik``, ``deviance``, ``AIC``,
        ``BIC``, ``AICc``; and, where a fit is nested in the one before it (or the one
        before in it), ``LRT``, ``LRT_df`` and ``pval`` of the test of the smaller against
        the larger (empty when the two are not nested, with the reason in ``note``).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> school = bm.datasets.load("school")
    >>> fits = [bm.MetaModel("effect ~ 1", data=school, vi="var", random=random).fit("ML")
    ...         for random in ("~ 1 | district/study", "~ 1 | study")]
    >>> bm.anova(*fits, names=["three-level", "two-level"])[["df", "AIC", "LRT", "pval"]].round(4)
                 df      AIC     LRT  pval
    three-level   3  22.7899     NaN   NaN
    two-level     2  37.2919  16.502   0.0
    """
    if len(fits) < 2:
        raise SpecificationError("anova: give at least two fits.")
    for i, fit in enumerate(fits):
        _require_fit(fit, f"anova: fit {i + 1}")
    names = names or [f"model {i + 1}" for i in range(len(fits))]
    if len(names) != len(fits):
        raise SpecificationError(f"names: {len(names)} names for {len(fits)} fits.")
    rows = []
    for i, fit in enumerate(fits):
        row = dict(zip(CRITERIA, _criteria(fit)), LRT=np.nan, LRT_df=np.nan, pval=np.nan, note="")
        if i and fit.parms == fits[i - 1].parms:
            row["note"] = f"as many free parameters as {names[i - 1]!r}: no likelihood-ratio test"
        elif i:
            larger, smaller = (fits[i - 1], fit) if fits[i - 1].parms > fit.parms else (fit, fits[i - 1])
            try:
                test = lrt(larger, smaller)
            except SpecificationError as err:
                row["note"] = f"not nested in {names[i - 1]!r}: {str(err).removeprefix('lrt: ')}"
            else:
                row.update(LRT=test.statistic, LRT_df=test.df, pval=test.pvalue, note=test.note)
        rows.append(row)
    return pd.DataFrame(rows, index=names)
