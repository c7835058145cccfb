"""Published empirical priors for the between-study heterogeneity tau^2.

Each function returns a :class:`pymc_extras.prior.Prior` on the **variance**
tau^2, for the ``"tau2"`` key of the ``priors`` argument of
:meth:`~bayesmeta.MetaModel.sample`:

* :func:`turner2015`: log odds ratios; tau^2 ~ LogNormal(meanlog, sdlog)
  (Turner, Jackson, Wei, Thompson and Higgins 2015, Statistics in Medicine
  34(6):984-998, Table IV);
* :func:`rhodes2015`: standardised mean differences; log tau^2 ~ location +
  scale * t_5, a log-t distribution with 5 degrees of freedom (Rhodes, Turner and
  Higgins 2015, Journal of Clinical Epidemiology 68(1):52-60, Table 3 and
  appendix tables A.3.1-A.3.2).

Called without a setting, each returns the paper's marginal distribution (any
outcome, any comparison). The tables themselves are :func:`turner2015_table`
and :func:`rhodes2015_table`; sources in ``data/README.md`` in this package.

Outcome, comparison and area are matched case-insensitively, either exactly or
by an unambiguous part of the name (``"mortality"`` is ambiguous: all-cause and
cause-specific; ``"all-cause"`` is not). A comparison ``"A vs. B"`` also matches
``"B vs. A"``.

Examples
--------
>>> from bayesmeta import priors
>>> priors.turner2015()
Prior("LogNormal", mu=-2.56, sigma=1.74)
>>> priors.turner2015("all-cause mortality", "pharmacological vs. placebo / control")
Prior("LogNormal", mu=-3.95, sigma=1.34)
>>> priors.rhodes2015("mental health", "placebo / control vs. pharmacological", area="other")
Prior("StudentT", nu=5, mu=-2.99, sigma=2.16, transform="exp")
"""

from __future__ import annotations

import re
from importlib import resources

import pandas as pd

from ..errors import SpecificationError

__all__ = ["turner2015", "rhodes2015", "turner2015_table", "rhodes2015_table"]

#: Marginal settings (any outcome, any comparison): Turner et al. (2015) p. 993; Rhodes et al. (2015).
TURNER2015_MARGINAL = (-2.56, 1.74)
RHODES2015_MARGINAL = (-3.44, 2.59)
#: Degrees of freedom of Rhodes et al.'s log-t distributions.
RHODES2015_DF = 5


def _read(name: str) -> pd.DataFrame:
    with resources.files(__package__).joinpath("data", name).open("r") as fh:
        return pd.read_csv(fh)


def turner2015_table() -> pd.DataFrame:
    """Turner et al. (2015), Table IV: ``outcome, comparison, meanlog_tau2, sdlog_tau2`` (80 rows).

    Examples
    --------
    >>> from bayesmeta import priors
    >>> priors.turner2015_table().shape
    (80, 4)
    """
    return _read("turner2015_lognormal_tau2.csv")


def rhodes2015_table() -> pd.DataFrame:
    """Rhodes et al. (2015): ``outcome, comparison, area, location_log_tau2, scale_log_tau2, df`` (72 rows).

    Examples
    --------
    >>> from bayesmeta import priors
    >>> sorted(priors.rhodes2015_table().area.unique())
    ['cancer', 'other', 'respiratory']
    """
    return _read("rhodes2015_logt5_tau2.csv")


def _normal(text: str) -> str:
    text = re.sub(r"\s+", " ", str(text).strip().lower())
    return re.sub(r"\bvs\b\.?", "vs.", text)


def _swapped(comparison: str) -> str:
    parts = comparison.split(" vs. ")
    return " vs. ".join(reversed(parts)) if len(parts) == 2 else comparison


def _match(argument: str, value: str, choices: list[str], symmetric: bool = False) -> str:
    """The one choice that ``value`` names: exactly, or by an unambiguous part (both orders if symmetric)."""
    if not isinstance(value, str):
        raise SpecificationError(f"{argument}: expected a string, got {type(value).__name__}.")
    wanted = {_normal(value)}
    if symmetric:
        wanted.add(_swapped(_normal(value)))
    normal = {_normal(c): c for c in choices}
    exact = [normal[w] for w in wanted if w in normal]
    if exact:
        return exact[0]
    partial = sorted({c for n, c in normal.items() if any(w in n for w in wanted)})
    if len(partial) == 1:
        return partial[0]
    listed = "; ".join(f"'{c}'" for c in (partial or sorted(set(choices))))
    problem = "is ambiguous" if partial else "matches none of the published settings"
    raise SpecificationError(f"{argument}={value!r} {problem}; choose one of: {listed}.")


def _setting(table: pd.DataFrame, **wanted) -> pd.Series:
    """The row of ``table`` whose columns match every ``wanted`` value (comparisons in either order)."""
    keep = pd.Series(True, index=table.index)
    for column, value in wanted.items():
        choice = _match(column, value, table[column].tolist(), symmetric=column == "comparison")
        keep &= table[column] == choice
    return table[keep].iloc[0]


def _marginal_or_both(function: str, outcome, comparison) -> bool:
    if (outcome is None) != (comparison is None):
        raise SpecificationError(f"{function}: give both outcome and comparison, or neither for the marginal "
                                 "setting (any outcome, any comparison); the paper has no partly marginal settings.")
    return outcome is None


def turner2015(outcome: str | None = None, comparison: str | None = None):
    """Turner et al. (2015) predictive distribution of tau^2 for a meta-analysis of log odds ratios.

    Parameters
    ----------
    outcome : str, optional
        Outcome type, one of the 16 in :func:`turner2015_table` (or an unambiguous part of it).
    comparison : str, optional
        Type of comparison, one of 5 (``"pharmacological vs. placebo / control"``, ...).
        Omit both for the marginal setting: LogNormal(-2.56, 1.74).

    Returns
    -------
    pymc_extras.prior.Prior
        ``Prior("LogNormal", mu=meanlog, sigma=sdlog)`` on tau^2.

    Examples
    --------
    >>> from bayesmeta import priors
    >>> priors.turner2015("withdrawals", "non-pharmacological vs. placebo / control")
    Prior("LogNormal", mu=-3.21, sigma=1.91)
    """
    from pymc_extras.prior import Prior

    if _marginal_or_both("turner2015", outcome, comparison):
        meanlog, sdlog = TURNER2015_MARGINAL
    else:
        row = _setting(turner2015_table(), outcome=outcome, comparison=comparison)
        meanlog, sdlog = float(row.meanlog_tau2), float(row.sdlog_tau2)
    return Prior("LogNormal", mu=meanlog, sigma=sdlog)


def rhodes2015(outcome: str | None = None, comparison: str | None = None, area: str = "other"):
    """Rhodes et al. (2015) predictive distribution of tau^2 for standardised mean differences.

    Parameters
    ----------
    outcome : str, optional
        Outcome type, one of the 8 in :func:`rhodes2015_table` (or an unambiguous part of it).
    comparison : str, optional
        ``"pharmacological vs. placebo / control"``, ``"pharmacological vs. pharmacological"`` or
        ``"non-pharmacological (any)"``. Omit outcome and comparison for the marginal setting:
        log tau^2 ~ -3.44 + 2.59 t_5.
    area : str, default "other"
        Medical area: ``"other"``, ``"respiratory"`` or ``"cancer"`` (ignored for the marginal setting).

    Returns
    -------
    pymc_extras.prior.Prior
        ``Prior("StudentT", nu=5, mu=location, sigma=scale, transform="exp")`` on tau^2
        (a Student t on log tau^2, exponentiated).

    Examples
    --------
    >>> from bayesmeta import priors
    >>> priors.rhodes2015()
    Prior("StudentT", nu=5, mu=-3.44, sigma=2.59, transform="exp")
    """
    from pymc_extras.prior import Prior

    if _marginal_or_both("rhodes2015", outcome, comparison):
        location, scale = RHODES2015_MARGINAL
    else:
        row = _setting(rhodes2015_table(), outcome=outcome, comparison=comparison, area=area)
        location, scale = float(row.location_log_tau2), float(row.scale_log_tau2)
    return Prior("StudentT", nu=RHODES2015_DF, mu=location, sigma=scale, transform="exp")
