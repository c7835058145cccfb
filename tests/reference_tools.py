"""Test helpers: metafor reference fixtures and the guide's tolerances."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent / "reference" / "fixtures"

#: Relative tolerance for estimates, SEs and variance components (GUIDE section 4).
REL = 1e-4
#: Absolute tolerance near zero.
ABS_ZERO = 1e-6
#: Absolute tolerance for logLik and information criteria.
ABS_IC = 1e-3


def load_fixture(group: str) -> dict:
    """The models of one fixture file, keyed by model name."""
    with open(FIXTURES / f"{group}.json") as fh:
        return json.load(fh)["models"]


def close(actual, expected, rel: float = REL, abs_zero: float = ABS_ZERO) -> bool:
    """Elementwise: relative tolerance, or absolute tolerance near zero."""
    a = np.atleast_1d(np.asarray(actual, dtype=float))
    e = np.atleast_1d(np.asarray(expected, dtype=float))
    if a.shape != e.shape:
        return False
    return bool(np.all(np.abs(a - e) <= np.maximum(rel * np.abs(e), abs_zero)))


def assert_close(actual, expected, what: str, rel: float = REL, abs_zero: float = ABS_ZERO) -> None:
    assert close(actual, expected, rel, abs_zero), f"{what}: got {np.asarray(actual)}, expected {np.asarray(expected)}"


def assert_matches_metafor(fit, ref: dict, *, parms_offset: int = 0, check_components=("sigma2", "tau2", "rho")) -> None:
    """Compare a ModeResult with one metafor fixture entry at the guide's tolerances.

    ``parms_offset`` is metafor's parameter count minus ours (metafor counts
    one parameter too many for a random slope without intercept, struct GEN).
    """
    assert fit.k == ref["k"], f"k: {fit.k} vs {ref['k']}"
    assert_close(fit.coef.to_numpy(), ref["coef"], "coef")
    assert_close(fit.se.to_numpy(), ref["se"], "se")
    assert_close(fit.pval.to_numpy(), ref["pval"], "pval", abs_zero=1e-6)
    assert_close(fit.ci.to_numpy(), np.column_stack([ref["ci_lb"], ref["ci_ub"]]), "ci")
    for name in check_components:
        expected = ref.get(name) or []
        actual = getattr(fit, name).to_numpy()
        assert_close(actual, expected, name)
    assert abs(fit.loglik - ref["loglik"]) < ABS_IC, f"loglik {fit.loglik} vs {ref['loglik']}"
    assert fit.parms == ref["parms"] - parms_offset, f"parms {fit.parms} vs {ref['parms']} - {parms_offset}"
    if parms_offset == 0:
        for ic in ("deviance", "aic", "bic", "aicc"):
            assert abs(getattr(fit, ic) - ref[ic]) < ABS_IC, f"{ic}: {getattr(fit, ic)} vs {ref[ic]}"
    assert_close(fit.q, ref["QE"], "Q")
    if "QM" in ref:
        assert_close(fit.wald_test().statistic, ref["QM"], "QM")
        assert_close(fit.wald_test().pvalue, ref["QMp"], "QM p-value", abs_zero=1e-8)
    assert_close(fit.fitted.to_numpy(), ref["fitted"], "fitted")
