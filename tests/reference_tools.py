"""Test helpers: metafor reference fixtures and the guide's tolerances.

Tolerances (GUIDE section 4): estimates, SEs, variance components and the
statistics derived from them agree to ``REL`` (1e-4) relative. The absolute
floor ``BOUNDARY`` (1e-8) only lets a reference that is itself on the boundary
(a variance metafor stops at 1e-10 instead of 0, a p-value below 1e-8) be met
by 0: it is far below every real quantity of the fixtures (the smallest,
thrombolytic's trial variance, is 1.5e-6), so small numbers are checked
relatively too. Log-likelihoods and information criteria agree to ``ABS_IC``
(1e-3) absolute.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).parent / "reference" / "fixtures"

#: Relative tolerance for estimates, SEs and variance components (GUIDE section 4).
REL = 1e-4
#: Absolute floor: a reference below it is on the boundary (0 in exact arithmetic).
BOUNDARY = 1e-8
#: Kept for older call sites: the floor is the boundary, not a looser tolerance.
ABS_ZERO = BOUNDARY
#: Absolute tolerance for logLik and information criteria.
ABS_IC = 1e-3


def load_fixture(group: str) -> dict:
    """The models of one fixture file, keyed by model name."""
    with open(FIXTURES / f"{group}.json") as fh:
        return json.load(fh)["models"]


def close(actual, expected, rel: float = REL, abs_zero: float = BOUNDARY) -> bool:
    """Elementwise: relative tolerance, or the absolute floor for references at the boundary.

    Examples
    --------
    >>> close(5.58e-5 * (1 + 5e-5), 5.58e-5), close(5.58e-5 * 1.02, 5.58e-5)
    (True, False)
    >>> close(0.0, 3.5e-12), close([1.0, np.nan], [1.0, np.nan]), close([1.0], [1.0, 2.0])
    (True, True, False)
    """
    a = np.atleast_1d(np.asarray(actual, dtype=float))
    e = np.atleast_1d(np.asarray(expected, dtype=float))
    if a.shape != e.shape or not np.array_equal(np.isnan(a), np.isnan(e)):
        return False
    a, e = a[~np.isnan(e)], e[~np.isnan(e)]
    return bool(np.all(np.abs(a - e) <= np.maximum(rel * np.abs(e), abs_zero)))


def assert_close(actual, expected, what: str, rel: float = REL, abs_zero: float = BOUNDARY) -> None:
    assert close(actual, expected, rel, abs_zero), f"{what}: got {np.asarray(actual)}, expected {np.asarray(expected)}"


def assert_interval(actual, lower, upper, what: str, rel: float = REL) -> None:
    """Interval bounds ``estimate -+ c se`` to ``rel`` of their size ``|estimate| + c se``: a bound
    near 0 is a difference and cannot agree relatively better than the estimate and SE do.

    Examples
    --------
    >>> assert_interval([[-0.01720, 0.38332]], [-0.01721], [0.38332], "ci")
    >>> assert_interval([[-0.0175, 0.38332]], [-0.01721], [0.38332], "ci")
    Traceback (most recent call last):
    ...
    AssertionError: ci: got [[-0.0175   0.38332]], expected [[-0.01721  0.38332]]
    """
    expected = np.column_stack([np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)])
    actual = np.asarray(actual, dtype=float)
    size = np.abs(expected).max(axis=1, keepdims=True)
    ok = actual.shape == expected.shape and np.all(np.abs(actual - expected) <= np.maximum(rel * size, BOUNDARY))
    if not ok:
        raise AssertionError(f"{what}: got {actual}, expected {expected}")


def metafor_labels(ref: dict) -> dict[str, list[str]]:
    """The level part of bayesmeta's labels of the ``tau2`` and ``rho`` values of an
    ``~ inner | outer`` fit, in metafor's order: levels as ``g_levels_f``, correlations column by
    column (12, 13, ..., 1q, 23, ...), each labelled ``level_j, level_i`` (bayesmeta prefixes the
    term, ``term: level_j, level_i``, named after the user's columns, which builders may rename).
    Empty for fits without such a term, for single values, and for metafor's GEN/GDIAG (random
    slopes), whose values are compared by position.

    Examples
    --------
    >>> ref = {"fun": "rma.mv", "tau2": [1, 2, 3], "rho": [0.1, 0.2, 0.3], "g_levels_f": [["a", "b", "c"]]}
    >>> metafor_labels(ref)
    {'tau2': ['a', 'b', 'c'], 'rho': ['a, b', 'a, c', 'b, c']}
    """
    if not ref.get("tau2") or ref.get("fun") != "rma.mv" or "g_levels_f" not in ref:
        return {}
    levels = [str(v) for v in ref["g_levels_f"][0]]
    q = len(levels)
    labels = {"tau2": levels, "rho": [f"{levels[j]}, {levels[i]}" for j in range(q) for i in range(j + 1, q)]}
    return {name: value for name, value in labels.items() if len(ref.get(name) or []) > 1}


def assert_components(fit, ref: dict, names=("sigma2", "tau2", "rho"), rel: float = REL) -> None:
    """Variance components and correlations, signed, matched by label where metafor's fixture
    names the levels (``metafor_labels``), by position otherwise."""
    labels = metafor_labels(ref)
    for name in names:
        expected = np.asarray(ref.get(name) or [], dtype=float)
        actual = getattr(fit, name)
        actual = pd.Series(dtype=float) if actual is None else actual
        if name in labels and len(labels[name]) == len(expected):
            ours = [str(label).split(": ", 1)[-1] for label in actual.index]
            assert ours == labels[name], f"{name} labels: {list(actual.index)} vs {labels[name]}"
        assert_close(actual.to_numpy(), expected, name, rel=rel)


def aic_like(ref: dict, parms_offset: int) -> dict[str, float]:
    """metafor's AIC, BIC and AICc, or with the paper's parameter count when the counts differ."""
    if parms_offset == 0:
        return {ic: ref[ic] for ic in ("aic", "bic", "aicc")}
    return {"aic": ref["aic_paper_count"], "bic": ref["bic_paper_count"], "aicc": ref["aicc_paper_count"]}


def assert_matches_metafor(fit, ref: dict, *, parms_offset: int = 0, check_components=("sigma2", "tau2", "rho")) -> None:
    """Compare every number a ModeResult reports with one metafor fixture entry at the guide's
    tolerances: coefficients, SEs, z, p, intervals at 95% and 90%, the whole covariance
    matrix, the variance components (``check_components``), logLik, deviance, AIC, BIC,
    AICc, the parameter count, Q with its df and p-value, the omnibus test, fitted values
    and residuals.

    ``parms_offset`` is metafor's parameter count minus ours (metafor counts one
    parameter too many for a random slope without intercept, struct GEN): AIC, BIC and
    AICc are then compared with the fixture's values for the paper's count.
    """
    assert fit.k == ref["k"], f"k: {fit.k} vs {ref['k']}"
    assert_close(fit.coef.to_numpy(), ref["coef"], "coef")
    assert_close(fit.se.to_numpy(), ref["se"], "se")
    assert_close(fit.vcov.to_numpy(), ref["vcov"], "vcov")
    assert_close(fit.zval.to_numpy(), ref["zval"], "zval")
    assert_close(fit.pval.to_numpy(), ref["pval"], "pval")
    assert_interval(fit.ci.to_numpy(), ref["ci_lb"], ref["ci_ub"], "ci")
    if "ci90_lb" in ref:
        assert_interval(replace(fit, level=0.9).ci.to_numpy(), ref["ci90_lb"], ref["ci90_ub"], "ci at level 0.9")
    assert_components(fit, ref, check_components)
    assert abs(fit.loglik - ref["loglik"]) < ABS_IC, f"loglik {fit.loglik} vs {ref['loglik']}"
    assert abs(fit.deviance - ref["deviance"]) < ABS_IC, f"deviance {fit.deviance} vs {ref['deviance']}"
    assert fit.parms == ref["parms"] - parms_offset, f"parms {fit.parms} vs {ref['parms']} - {parms_offset}"
    for ic, value in aic_like(ref, parms_offset).items():
        assert abs(getattr(fit, ic) - value) < ABS_IC, f"{ic}: {getattr(fit, ic)} vs {value}"
    assert_close(fit.q, ref["QE"], "Q")
    assert fit.q_df == ref["QE_df"], f"Q df {fit.q_df} vs {ref['QE_df']}"
    assert_close(fit.q_pvalue, ref["QEp"], "Q p-value")
    if ref.get("QM") is not None:
        wald = fit.wald_test()
        assert_close(wald.statistic, ref["QM"], "QM")
        assert_close(wald.pvalue, ref["QMp"], "QM p-value")
    assert_close(fit.fitted.to_numpy(), ref["fitted"], "fitted")
    if "residuals" in ref:
        # a residual is a difference of two numbers of the size of the fitted values: held to REL of
        # that size (a residual near 0 cannot agree relatively better than the fitted value does)
        scale = REL * np.max(np.abs(ref["fitted"]))
        assert_close(fit.residuals.to_numpy(), ref["residuals"], "residuals", abs_zero=scale)
