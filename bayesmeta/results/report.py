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


def _coefficient_table(estimate, se, zval, pval, ci, stat: str) -> str:
    table = pd.DataFrame({
        "estimate": estimate.map(_fmt), "se": se.map(_fmt), stat: zval.map(_fmt),
        "pval": pval.map(lambda p: "NA" if np.isnan(p) else "<.0001" if p < 1e-4 else f"{p:.4f}"),
        "ci.lb": ci["ci_lb"].map(_fmt), "ci.ub": ci["ci_ub"].map(_fmt),
        "": pval.map(lambda p: "" if np.isnan(p) else _stars(p)),
    })
    return table.to_string()


def _omnibus(test, what: str) -> str:
    return str(test).replace("Test of", f"Test of {what},", 1)


def _heterogeneity_lines(fit) -> list[str]:
    """Q with metafor's I^2 and H^2 where metafor prints them (``rma()`` without a scale model),
    the Q-based I^2 of Sera et al. (2019, eq. 4) for the other models, for which metafor prints none."""
    q = f"Q(df = {fit.q_df}) = {fit.q:.4f}, p-val {_pval(fit.q_pvalue)}"
    if not ((fit.is_standard and not fit.is_location_scale) or not len(fit.param.terms)):
        return [f"{q}; I^2 (Q-based, Sera et al. 2019) = {fit.i2_q:.1f}%"]
    total = "total" if fit.p == 1 and "Intercept" in fit.coef.index else "unaccounted"
    heterogeneity = "total" if total == "total" else "residual"
    return [q, f"I^2 ({heterogeneity} heterogeneity / {total} variability):  {fit.i2:.2f}%",
            f"H^2 ({total} variability / sampling variability): {fit.h2:.2f}"]


def format_mode_summary(fit) -> str:
    """Summary of a :class:`~bayesmeta.results.mode.ModeResult`."""
    kind = "Random-Effects Model" if fit.is_standard else "Multivariate Meta-Analysis Model"
    if fit.method == "FE" or not len(fit.param.terms):
        kind = "Fixed-Effects Model"
    scale = fit.is_location_scale
    if scale:
        kind = "Location-Scale Model" if fit.is_standard else "Multilevel Location-Scale Model"
    lines = [f"{kind} (k = {fit.k}; method: {_TITLES.get(fit.method, fit.method)})"]
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
    lines += _heterogeneity_lines(fit)
    lines.append("")
    if fit.p > 1 or "Intercept" not in fit.coef.index:
        lines.append(_omnibus(fit.wald_test(), "Location Coefficients" if scale else "Moderators"))
        lines.append("")
    stat = "tval" if fit.test != "z" else "zval"
    lines.append("Model Results (Location):" if scale else "Model Results:")
    lines.append("")
    lines.append(_coefficient_table(fit.coef, fit.se, fit.zval, fit.pval, fit.ci, stat))
    lines.append("")
    if scale:
        if any(name != "Intercept" for sc in fit.param.scale_models if sc is not None for name in sc.names):
            lines.append(_omnibus(fit.wald_test(part="scale"), "Scale Coefficients"))
            lines.append("")
        levels = ", ".join(f"{sc.label}: log variance {sc.formula}" for sc in fit.param.scale_models if sc is not None)
        lines.append(f"Model Results (Scale; {levels}):")
        lines.append("")
        lines.append(_coefficient_table(fit.alpha, fit.alpha_se, fit.alpha_zval, fit.alpha_pval, fit.alpha_ci, stat))
        lines.append("")
    lines.append("---\nSignif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1")
    notes = []
    if fit.boundary:
        notes.append("estimated on the boundary: " + ", ".join(fit.boundary))
    notes += [f"drifting scale coefficients: {d}" for d in fit.estimate.drift]
    if not fit.converged:
        notes.append(f"the optimizer may not have converged ({fit.estimate.message})")
    if notes:
        lines.append("")
        lines += ["Note: " + n for n in notes]
    return "\n".join(lines)
