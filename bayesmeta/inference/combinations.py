"""Linear combinations of the fixed effects, from either engine.

The builders report derived quantities (treatment contrasts of a network,
relative risks over a dose grid, the contrast of an arm-based model) as linear
combinations ``L b`` of the fixed effects. :func:`lincom` computes them from a
likelihood fit (estimate, Wald SE and interval) or from posterior draws (mean,
SD and equal-tailed interval of ``L b``), in one table layout.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from ..errors import SpecificationError
from .intervals import check_level, wald_interval


def _finite_number(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating)) \
        and bool(np.isfinite(value))


def combination_matrix(L, names: list[str]) -> pd.DataFrame:
    """Normalise the combinations to a DataFrame with one column per coefficient.

    Parameters
    ----------
    L : pandas.DataFrame or dict
        Rows are combinations, columns coefficient names (columns left out count
        as 0); or a dict ``{label: {coefficient: weight}}`` (coefficients left out
        count as 0). Every weight given must be a finite number: a NaN weight is
        an error, not a 0.
    names : list of str
        The model's coefficient names.

    Examples
    --------
    >>> combination_matrix({"B - C": {"b": 1, "c": -1}}, ["a", "b", "c"]).to_numpy()
    array([[ 0.,  1., -1.]])
    """
    if isinstance(L, dict):
        for label, weights in L.items():
            if not isinstance(weights, dict):
                raise SpecificationError(f"L: the combination {label!r} must be a dict {{coefficient: weight}}, got "
                                         f"{type(weights).__name__}.")
            bad = [c for c, w in weights.items() if not _finite_number(w)]
            if bad:
                raise SpecificationError(f"L: the combination {label!r} has weights that are not finite numbers "
                                         f"for {bad}; leave out (or give 0 for) coefficients not involved.")
        L = pd.DataFrame.from_dict(L, orient="index", dtype=float)
    elif isinstance(L, pd.DataFrame):
        try:
            values = L.to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise SpecificationError("L: the weights must be numbers.") from None
        rows, cols = np.nonzero(~np.isfinite(values))
        if len(rows):
            cells = ", ".join(f"{L.index[r]!r}/{L.columns[c]!r}" for r, c in zip(rows[:5], cols[:5]))
            raise SpecificationError(f"L: weights that are not finite numbers (NaN is not read as 0) in row/column "
                                     f"{cells}{' ...' if len(rows) > 5 else ''}.")
    else:
        raise SpecificationError("L: expected a DataFrame (columns = coefficients) or a dict of dicts.")
    unknown = [c for c in L.columns if c not in names]
    if unknown:
        raise SpecificationError(f"L: unknown coefficient(s) {unknown}; available: {names}.")
    if L.empty:
        raise SpecificationError("L: no combinations given.")
    return L.reindex(columns=names).fillna(0.0).astype(float)


def lincom(result, L, *, level: float | None = None, transform: Callable | None = None) -> pd.DataFrame:
    """Estimates of linear combinations ``L b`` of the fixed effects.

    Parameters
    ----------
    result : ModeResult or BayesResult
        A likelihood fit (``MetaModel.fit``) or a posterior (``MetaModel.sample``).
    L : pandas.DataFrame or dict
        See :func:`combination_matrix`.
    level : float, optional
        Interval probability (default: the result's level).
    transform : callable, optional
        Applied to the estimate and the interval limits of a likelihood fit, and
        to every draw of a posterior (e.g. ``numpy.exp`` for ratios); the ``se``
        column then stays on the linear scale for a likelihood fit.

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (ML/REML estimate or posterior mean), ``se`` (Wald SE or
        posterior SD), ``ci_lb`` and ``ci_ub`` (Wald or equal-tailed interval).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("logor ~ ablat", data=bm.datasets.load("bcg"), vi="logorvar").fit()
    >>> table = lincom(fit, {"at 40 degrees": {"Intercept": 1, "ablat": 40}})
    >>> round(float(table.loc["at 40 degrees", "estimate"]), 4)
    -0.9603
    """
    level = check_level(result.level if level is None else level)
    if transform is not None and not callable(transform):
        raise SpecificationError(f"transform: expected a function such as numpy.exp, got {transform!r}.")
    transform = transform or (lambda x: x)
    if hasattr(result, "idata"):
        beta = result.idata.posterior["beta"]
        names = [str(t) for t in beta.coords["term"].values]
        Lm = combination_matrix(L, names)
        draws = transform(beta.to_numpy().reshape(-1, len(names)) @ Lm.to_numpy().T)
        lo, hi = (1 - level) / 2, (1 + level) / 2
        return pd.DataFrame({"estimate": draws.mean(axis=0), "se": draws.std(axis=0, ddof=1),
                             "ci_lb": np.quantile(draws, lo, axis=0), "ci_ub": np.quantile(draws, hi, axis=0)},
                            index=Lm.index)
    names = list(result.coef.index)
    frame = combination_matrix(L, names)
    Lm = frame.to_numpy()
    estimate = Lm @ result.coef.to_numpy()
    se = np.sqrt(np.einsum("ij,jk,ik->i", Lm, result.vcov.to_numpy(), Lm))
    lower, upper = wald_interval(estimate, se, level, result.df)
    return pd.DataFrame({"estimate": transform(estimate), "se": se, "ci_lb": transform(lower),
                         "ci_ub": transform(upper)}, index=frame.index)
