"""Printed and HTML reports of fitted models, laid out like metafor's printed output.

Numbers are shown with ``digits`` decimals (metafor's ``digits``, default 4);
a nonzero value that would show fewer than two significant digits that way is
shown with ``digits - 1`` significant digits in scientific notation, so that a
variance of 5.58e-05 never prints as 0.0000 (:func:`format_number`). The same tables feed
the text summaries (``summary()``, ``print``) and the notebook views
(``_repr_html_``).
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

_TITLES = {"ML": "ML", "REML": "REML", "FE": "FE"}
#: Default decimals of printed numbers (metafor's ``digits``).
DIGITS = 4
SIGNIF_CODES = "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"


def format_number(x, digits: int = DIGITS) -> str:
    """A number with ``digits`` decimals, or in scientific notation with ``digits - 1`` significant
    digits when the decimals would show fewer than two (``abs(x) < 10^(1 - digits)``).

    Examples
    --------
    >>> format_number(0.18472), format_number(5.58e-05), format_number(0.0), format_number(float("nan"))
    ('0.1847', '5.58e-05', '0.0000', 'NA')
    >>> format_number(-1234.5678, digits=2), format_number(0.00049, digits=2)
    ('-1234.57', '4.9e-04')
    """
    if x is None:
        return "NA"
    x = float(x)
    if np.isnan(x):
        return "NA"
    if np.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x == 0 or abs(x) >= 10.0 ** (1 - digits):
        return f"{x:.{digits}f}"
    return f"{x:.{max(digits - 2, 1)}e}"


def _pval(p: float, digits: int = DIGITS) -> str:
    """metafor's p-value: ``< .0001`` below 10^-digits, else the value with ``digits`` decimals."""
    if np.isnan(p):
        return "NA"
    return f"<.{'0' * (digits - 1)}1" if p < 10.0 ** -digits else f"{p:.{digits}f}"


def _stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "." if p < 0.1 else ""


def _numbers(values, digits: int) -> list[str]:
    return [format_number(v, digits) for v in values]


# the tables of a summary ---------------------------------------------------------------------

def kind_of(fit) -> str:
    """metafor's name of the model: random-effects, multivariate, fixed-effects or location-scale."""
    if fit.param.v_scale is not None and not len(fit.param.terms):
        return "Multiplicative-Heterogeneity Model"  # V_scale= without random effects (UWLS)
    if fit.is_location_scale:
        return "Location-Scale Model" if fit.is_standard else "Multilevel Location-Scale Model"
    if fit.method == "FE" or not len(fit.param.terms):
        return "Fixed-Effects Model"
    return "Random-Effects Model" if fit.is_standard else "Multivariate Meta-Analysis Model"


def fit_statistics(fit, digits: int = DIGITS) -> pd.DataFrame:
    """logLik, deviance, AIC, BIC and AICc as one formatted row."""
    values = {"logLik": fit.loglik, "Deviance": fit.deviance, "AIC": fit.aic, "BIC": fit.bic, "AICc": fit.aicc}
    return pd.DataFrame({k: [format_number(v, digits)] for k, v in values.items()})


def components_table(fit, digits: int = DIGITS) -> pd.DataFrame:
    """The variance components, formatted (a component on its boundary shows as 0, as metafor)."""
    c = fit.components
    estimate = np.where(c["boundary"] & (c["sqrt"].notna()), 0.0, c["estimate"])
    sqrt = np.where(c["boundary"] & (c["sqrt"].notna()), 0.0, c["sqrt"])
    show = pd.DataFrame({
        "estim": _numbers(estimate, digits), "sqrt": _numbers(sqrt, digits), "nlvls": c["n_levels"].to_numpy(),
        "fixed": np.where(c["fixed"], "yes", "no"), "boundary": np.where(c["boundary"], "yes", ""),
    }, index=[f"{f}[{n}]" for f, n in zip(c["family"], c["name"])])
    return show


def coefficient_table(estimate, se, zval, pval, ci, stat: str, digits: int = DIGITS) -> pd.DataFrame:
    """Estimates, SEs, test statistics, p-values, intervals and significance stars, formatted."""
    return pd.DataFrame({
        "estimate": _numbers(estimate, digits), "se": _numbers(se, digits), stat: _numbers(zval, digits),
        "pval": [_pval(p, digits) for p in pval], "ci.lb": _numbers(ci["ci_lb"], digits),
        "ci.ub": _numbers(ci["ci_ub"], digits), "": ["" if np.isnan(p) else _stars(p) for p in pval],
    }, index=estimate.index)


def _omnibus(test, what: str) -> str:
    return str(test).replace("Test of", f"Test of {what},", 1)


def _heterogeneity_lines(fit) -> list[str]:
    """Q with metafor's I^2 and H^2 where metafor prints them (``rma()`` without a scale model),
    the Q-based I^2 of Sera et al. (2019, eq. 4) for the other models, for which metafor prints none."""
    q = f"Q(df = {fit.q_df}) = {fit.q:.4f}, p-val {'< .0001' if fit.q_pvalue < 1e-4 else f'= {fit.q_pvalue:.4f}'}"
    if not ((fit.is_standard and not fit.is_location_scale) or not len(fit.param.terms)):
        return [f"{q}; I^2 (Q-based, Sera et al. 2019) = {fit.i2_q:.1f}%"]
    total = "total" if fit.p == 1 and "Intercept" in fit.coef.index else "unaccounted"
    heterogeneity = "total" if total == "total" else "residual"
    return [q, f"I^2 ({heterogeneity} heterogeneity / {total} variability):  {fit.i2:.2f}%",
            f"H^2 ({total} variability / sampling variability): {fit.h2:.2f}"]


def _sections(fit, digits: int) -> list[tuple[str, object]]:
    """A summary of an ML/REML fit as (title, DataFrame or list of text lines) pairs, in order."""
    scale = fit.param.has_scale
    head = [f"{kind_of(fit)} (k = {fit.k}; method: {_TITLES.get(fit.method, fit.method)})"]
    if len(fit.rows_dropped):
        head.append(f"({len(fit.rows_dropped)} row(s) with missing values dropped)")
    out = [("", head), ("", fit_statistics(fit, digits))]
    if not fit.components.empty and fit.method != "FE":
        out.append(("Variance Components:", components_table(fit, digits)))
    out.append(("Test for Heterogeneity:", _heterogeneity_lines(fit)))
    if fit.p > 1 or "Intercept" not in fit.coef.index:
        out.append(("", [_omnibus(fit.wald_test(), "Location Coefficients" if scale else "Moderators")]))
    stat = "tval" if fit.test != "z" else "zval"
    out.append(("Model Results (Location):" if scale else "Model Results:",
                coefficient_table(fit.coef, fit.se, fit.zval, fit.pval, fit.ci, stat, digits)))
    if scale:
        blocks = fit.param.coefficient_blocks("alpha")
        if any(name != "Intercept" for _, sc, _ in blocks for name in sc.names):
            out.append(("", [_omnibus(fit.wald_test(part="scale"), "Scale Coefficients")]))
        levels = ", ".join(f"{sc.label}: log variance {sc.formula}" for _, sc, _ in blocks)
        out.append((f"Model Results (Scale; {levels}):",
                    coefficient_table(fit.alpha, fit.alpha_se, fit.alpha_zval, fit.alpha_pval, fit.alpha_ci, stat,
                                      digits)))
    if fit.param.n_zeta:
        levels = ", ".join(f"{sc.label}: atanh(rho) {sc.formula}" for _, sc, _ in fit.param.coefficient_blocks("zeta"))
        out.append((f"Model Results (Correlation; {levels}):",
                    coefficient_table(fit.zeta, fit.zeta_se, fit.zeta_zval, fit.zeta_pval, fit.zeta_ci, stat,
                                      digits)))
    if fit.param.v_scale is not None:
        out.append((f"Sampling-Variance Factor (V_scale; log factor {fit.param.v_scale.formula}):",
                    coefficient_table(fit.delta, fit.delta_se, fit.delta_zval, fit.delta_pval, fit.delta_ci, stat,
                                      digits)))
    notes = []
    if fit.boundary:
        notes.append("estimated on the boundary: " + ", ".join(fit.boundary))
    notes += [f"drifting {'scale' if d.part == 'alpha' else 'correlation'} coefficients: {d}"
              for d in fit.estimate.drift]
    notes += fit.param.identification_notes()
    if not fit.converged:
        notes.append(f"the optimizer may not have converged ({fit.estimate.message})")
    out.append(("", ["Note: " + n for n in notes]))
    return out


def format_mode_summary(fit, digits: int = DIGITS) -> str:
    """Summary of a :class:`~bayesmeta.results.mode.ModeResult` as text, metafor's layout."""
    lines = []
    sections = _sections(fit, digits)
    for i, (title, body) in enumerate(sections):
        if title:
            lines += [title, ""] if isinstance(body, pd.DataFrame) else [title]
        if isinstance(body, pd.DataFrame):
            lines += [body.to_string(index=_labelled(body)), ""]
        elif body and title == "" and body[0].startswith("Note: "):
            lines += ["", *body]
        elif body:
            lines += [*body, ""]
        if title.startswith("Model Results") and not any(t.startswith("Model Results") for t, _ in sections[i + 1:]):
            lines.append("---\n" + SIGNIF_CODES)
    return "\n".join(lines).rstrip("\n")


# notebook views --------------------------------------------------------------------------------

def _labelled(frame: pd.DataFrame) -> bool:
    """Whether a table's rows are labelled (its index is shown) or only numbered."""
    return not frame.index.equals(pd.RangeIndex(len(frame)))


def _html_sections(sections) -> str:
    parts = []
    for title, body in sections:
        if title:
            parts.append(f"<p><strong>{html.escape(title.rstrip(':'))}</strong></p>")
        if isinstance(body, pd.DataFrame):
            parts.append(body.to_html(index=_labelled(body), border=0, classes="bayesmeta-table"))
        elif body:
            parts.append("<p>" + "<br>".join(html.escape(line) for line in body) + "</p>")
    return '<div class="bayesmeta-result">' + "\n".join(parts) + "</div>"


def mode_html(fit, digits: int = DIGITS) -> str:
    """The summary of an ML/REML fit as HTML tables (a notebook's view of a ModeResult)."""
    return _html_sections(_sections(fit, digits))


def mode_repr(fit) -> str:
    """One line: method, size, logLik, the coefficients and the variance components."""
    parts = [f"method={fit.method!r}", f"k={fit.k}", f"p={fit.p}", f"loglik={format_number(fit.loglik)}"]
    return f"ModeResult({', '.join(parts + _estimates(fit))})"


def _estimates(result, limit: int = 6) -> list[str]:
    """``coef={...}`` and one entry per family of components, each value formatted."""
    def short(series):
        items = [f"{name!r}: {format_number(v)}" for name, v in list(series.items())[:limit]]
        return "{" + ", ".join(items) + (", ..." if len(series) > limit else "") + "}"

    out = [f"coef={short(result.coef)}"]
    for family in ("alpha", "sigma2", "tau2", "rho", "gamma2", "phi"):
        values = getattr(result, family)
        if len(values):
            out.append(f"{family}={short(values)}")
    return out


def bayes_sections(result, digits: int = DIGITS) -> list[tuple[str, object]]:
    """A summary of a posterior as (title, DataFrame or text lines) pairs: diagnostics (MCMC only),
    the posterior table and the priors; a Laplace approximation's independent draws need no diagnostics."""
    laplace = result.sampler == "laplace"
    posterior = result.idata.posterior
    how = "Laplace approximation at the posterior mode" if laplace else f"{result.sampler} NUTS"
    out = [("", [(f"Bayesian meta-analysis ({how}: {posterior.sizes['chain']} chain(s) x "
                  f"{posterior.sizes['draw']} draws)")])]
    table = result.table()
    shown = pd.DataFrame({c: _numbers(table[c], digits) for c in ("estimate", "se", "ci_lb", "ci_ub")},
                         index=table.index)
    if not laplace:
        d = result.diagnostics
        out.append(("", [(f"divergences: {d['divergences']}   max R-hat: {d['max_rhat']:.3f}   "
                          f"min ESS bulk/tail: {d['min_ess_bulk']:.0f}/{d['min_ess_tail']:.0f}   "
                          f"min E-BFMI: {d['min_bfmi']:.2f}")]))
        for c in ("ess_bulk", "ess_tail"):
            shown[c] = table[c].map(lambda v: "NA" if np.isnan(v) else f"{v:.0f}")
        shown["r_hat"] = table["r_hat"].map(lambda v: "NA" if np.isnan(v) else f"{v:.3f}")
    level = result.level
    shown = shown.rename(columns={"estimate": "mean", "se": "sd", "ci_lb": f"{100 * (1 - level) / 2:g}%",
                                  "ci_ub": f"{100 * (1 + level) / 2:g}%"})
    out.append(("", shown))
    out.append(("Priors:", result.priors.table()))
    # components the data cannot identify (issue 16): fixed, as in the ML/REML summary
    out.append(("", [f"Note: {n}." for n in (result.param.identification_notes() if result.param else [])]))
    out.append(("", [f"Warning: {p}" for p in result.problems]))
    return out


def format_bayes_summary(result, digits: int = DIGITS) -> str:
    """Summary of a :class:`~bayesmeta.results.posterior.BayesResult` as text."""
    lines = []
    for title, body in bayes_sections(result, digits):
        if title:
            lines.append(title)
        if isinstance(body, pd.DataFrame):
            lines += [body.to_string(index=_labelled(body)), ""]
        elif body:
            lines += [*body, ""]
    return "\n".join(lines).rstrip("\n")


def bayes_html(result, digits: int = DIGITS) -> str:
    """The summary of a posterior as HTML tables (a notebook's view of a BayesResult)."""
    return _html_sections(bayes_sections(result, digits))


def bayes_repr(result) -> str:
    """One line: sampler, chains x draws, the posterior means and (MCMC) the diagnostics."""
    post = result.idata.posterior
    parts = [f"method={result.method!r}", f"chains={post.sizes['chain']}", f"draws={post.sizes['draw']}"]
    parts += _estimates(result)
    if result.sampler != "laplace":
        d = result.diagnostics
        parts += [f"divergences={d['divergences']}", f"max_rhat={d['max_rhat']:.3f}"]
    return f"BayesResult({', '.join(parts)})"
