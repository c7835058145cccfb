"""Text reports of fitted models, laid out like metafor's printed output."""

from __future__ import annotations

import numpy as np
import pandas as pd

_TITLES = {"ML": "ML", "REML": "REML", "FE": "FE"}


def _fmt(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "NA"
    return f"{x:.{digits}f}"


def _pval(p: float) -> str:
    return "< .0001" if p < 1e-4 else f"= {p:.4f}"


def _stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "." if p < 0.1 else ""


def _table(frame: pd.DataFrame) -> str:
    return frame.to_string()


def format_components(fit) -> str:
    """The variance-component block of a summary."""
    c = fit.components
    if c.empty:
        return ""
    show = pd.DataFrame({
        "estim": c["estimate"].map(_fmt),
        "sqrt": c["sqrt"].map(_fmt),
        "nlvls": c["n_levels"],
        "fixed": np.where(c["fixed"], "yes", "no"),
        "boundary": np.where(c["boundary"], "yes", ""),
    })
    names = [f"{f}[{n}]" for f, n in zip(c["family"], c["name"])]
    show.index = names
    return "Variance Components:\n\n" + _table(show) + "\n"


def format_mode_summary(fit) -> str:
    """Summary of a :class:`~bayesmeta.results.ModeResult`."""
    kind = "Random-Effects Model" if fit.is_standard else "Multivariate Meta-Analysis Model"
    if fit.method == "FE" or not len(fit.param.terms):
        kind = "Fixed-Effects Model"
    lines = [f"{kind} (k = {fit.k}; method: {_TITLES[fit.method]})"]
    if len(fit.rows_dropped):
        lines.append(f"({len(fit.rows_dropped)} row(s) with missing values dropped)")
    lines.append("")
    stats = pd.DataFrame({"logLik": [fit.loglik], "Deviance": [fit.deviance], "AIC": [fit.aic],
                          "BIC": [fit.bic], "AICc": [fit.aicc]}).map(_fmt)
    lines.append(stats.to_string(index=False))
    lines.append("")
    comp = format_components(fit)
    if comp and fit.method != "FE":
        lines.append(comp)
    lines.append("Test for Heterogeneity:")
    lines.append(f"Q(df = {fit.q_df}) = {fit.q:.4f}, p-val {_pval(fit.q_pvalue)}; I^2 = {100 * fit.i2:.1f}%")
    lines.append("")
    if fit.p > 1 or "Intercept" not in fit.coef.index:
        lines.append(str(fit.wald_test()).replace("Test of", "Test of Moderators,", 1))
        lines.append("")
    lines.append("Model Results:")
    lines.append("")
    stat = "tval" if fit.test == "t" else "zval"
    table = pd.DataFrame({
        "estimate": fit.coef.map(_fmt), "se": fit.se.map(_fmt), stat: fit.zval.map(_fmt),
        "pval": fit.pval.map(lambda p: "<.0001" if p < 1e-4 else f"{p:.4f}"),
        "ci.lb": fit.ci["lower"].map(_fmt), "ci.ub": fit.ci["upper"].map(_fmt),
        "": fit.pval.map(_stars),
    })
    lines.append(table.to_string())
    lines.append("")
    lines.append("---\nSignif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1")
    notes = []
    if fit.boundary:
        notes.append("estimated on the boundary: " + ", ".join(fit.boundary))
    if not fit.converged:
        notes.append(f"the optimizer may not have converged ({fit.estimate.message})")
    if notes:
        lines.append("")
        lines += ["Note: " + n for n in notes]
    return "\n".join(lines)
