"""Reference distributions of Wald tests and intervals: normal, t, chi-square and F.

Thin wrappers of :mod:`scipy.special` (scipy.stats takes a second to import,
more than a whole REML fit), with the checks every entry point shares.
scipy.special itself (a tenth of a second) is imported by the first call, not
with the package.
"""

from __future__ import annotations

import numpy as np

from ..errors import SpecificationError


def check_level(level, argument: str = "level") -> float:
    """``level`` as a float, or an error naming the argument when it is not in (0, 1)."""
    if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)) \
            or not 0 < level < 1:
        raise SpecificationError(f"{argument}: expected a number between 0 and 1, got {level!r}.")
    return float(level)


def critical_value(level: float, df: float = np.inf) -> float:
    """The two-sided critical value of a ``level`` interval: normal (df = inf) or t(df).

    Examples
    --------
    >>> round(critical_value(0.95), 4), round(critical_value(0.95, df=10), 4)
    (1.96, 2.2281)
    """
    from scipy import special

    p = 0.5 + level / 2
    return float(special.ndtri(p) if np.isinf(df) else special.stdtrit(df, p))


def quantile(p, df: float = np.inf):
    """Quantiles of the normal (df = inf) or t(df) distribution."""
    from scipy import special

    return special.ndtri(p) if np.isinf(df) else special.stdtrit(df, p)


def two_sided_p(statistic, df: float = np.inf):
    """Two-sided p-values of z (df = inf) or t(df) statistics."""
    from scipy import special

    tail = -np.abs(np.asarray(statistic, dtype=float))
    return 2 * (special.ndtr(tail) if np.isinf(df) else special.stdtr(df, tail))


def chi2_sf(x, df):
    """Upper tail of the chi-square distribution."""
    from scipy import special

    return special.chdtrc(df, x)


def chi2_quantile(p, df):
    """Quantiles (lower tail ``p``) of the chi-square distribution.

    Examples
    --------
    >>> round(float(chi2_quantile(0.95, 1)), 4), round(float(chi2_quantile(0.025, 12)), 4)
    (3.8415, 4.4038)
    """
    from scipy import special

    return special.chdtri(df, 1 - np.asarray(p, dtype=float))


def f_sf(x, df1, df2):
    """Upper tail of the F distribution."""
    from scipy import special

    return special.fdtrc(df1, df2, x)


def wald_interval(estimate, se, level: float, df: float = np.inf) -> tuple:
    """Lower and upper limits ``estimate -+ critical value * se``."""
    crit = critical_value(level, df)
    return estimate - crit * se, estimate + crit * se
