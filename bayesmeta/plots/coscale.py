"""The coscale plot: the fitted SD of every level of a structured term and its correlation against a
moderator, with intervals, for ML/REML fits and posteriors of a multivariate location-coscale model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..design.scale_models import select_level
from ..errors import SpecificationError
from .canvas import new_panels
from .rows import check_results, is_posterior, names_of


def _coscale_term(result, term: str | None) -> int:
    """Index of the structured term with a scale model that ``term`` names (the only one when None)."""
    param = result.param
    if param is None or not getattr(param, "has_coscale", False):
        raise SpecificationError("results: not a fit of a scale model of a structured term "
                                 "(scale={'outcome | study': {'tau': ..., 'rho': ...}}).")
    return select_level(tuple(None if cs is None else cs.tau for cs in param.coscale_models), term)


def _draw(ax, position: np.ndarray, table: pd.DataFrame, transform, r: int, name: str, result,
          categorical: bool, width: float) -> None:
    """One fit's estimates (posterior medians) and intervals at the grid's positions."""
    centre = transform(table["median" if is_posterior(result) else "pred"].to_numpy())
    low, high = transform(table["ci_lb"].to_numpy()), transform(table["ci_ub"].to_numpy())
    what = "posterior median" if is_posterior(result) else "estimate"
    interval = "posterior interval" if is_posterior(result) else "CI"
    label = f"{name} ({what}, {100 * result.level:g}% {interval})"
    if categorical:
        x = position + (r - 0.5 * (width - 1)) * 0.15
        ax.errorbar(x, centre, yerr=[centre - low, high - centre], fmt="o", color=f"C{r}", capsize=3,
                    label=label, gid=f"estimates {name}")
    else:
        ax.fill_between(position, low, high, color=f"C{r}", alpha=0.15, linewidth=0)
        ax.plot(position, centre, color=f"C{r}", linestyle="-" if r == 0 else "--", label=label,
                gid=f"estimates {name}")


def coscale_plot(*results, x: str, newdata: pd.DataFrame, term: str | None = None,
                 names: Sequence[str] | None = None, axes=None):
    """The SD of every level and the correlation of a structured term's scale model against a moderator.

    One panel per level of the term's ``inner`` factor (its SD, ``sqrt(exp(w' alpha))``)
    and one for the correlation ``tanh(u' zeta)``, each over the rows of ``newdata``:
    Wald intervals of ML/REML fits (carried by exp and tanh), posterior medians
    with equal-tailed intervals. A categorical ``x`` gives points with error bars,
    a numeric one curves with bands.

    Parameters
    ----------
    *results : ModeResult or BayesResult
        Fits of one model with ``scale={"<inner> | <outer>": {"tau": ..., "rho": ...}}``.
    x : str
        The moderator on the horizontal axis (a column of ``newdata``).
    newdata : pandas.DataFrame
        Values of every moderator of the SD and correlation models (the inner factor
        is filled in per panel), e.g. ``pd.DataFrame({"habitat": ["marine", "terrestrial"]})``.
    term : str, optional
        The structured term, when several have a scale model.
    names : sequence of str, optional
        Legend names of the fits (default: their methods).
    axes : sequence of matplotlib.axes.Axes, optional
        One per panel (default: a new figure).

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
        The panels: the levels' SDs, then the correlation.

    Examples
    --------
    >>> import pandas as pd
    >>> import bayesmeta as bm
    >>> dat = bm.datasets.load("habitat")
    >>> V = bm.vcalc("vi", "study", obs="outcome", rho=0.4, data=dat)
    >>> fit = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=V, random="~ outcome | study", struct="UN",
    ...                    scale={"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat",
    ...                                               "rho": "~ habitat"}}).fit()
    >>> axes = bm.coscale_plot(fit, x="habitat", newdata=pd.DataFrame({"habitat": ["marine", "terrestrial"]}))
    >>> [ax.get_title() for ax in axes]
    ['SD of outcome A', 'SD of outcome B', 'correlation']
    """
    check_results(results)
    ks = [_coscale_term(r, term) for r in results]
    if not isinstance(newdata, pd.DataFrame) or x not in newdata.columns:
        raise SpecificationError(f"x: {x!r} is not a column of newdata.")
    first = results[0]
    enc = first.design.encodings[ks[0]]
    coscale = first.param.coscale_of(ks[0])
    levels = list(enc.term.levels)
    count = len(levels) + (coscale.zeta is not None)
    if axes is None:  # side by side
        import matplotlib.pyplot as plt

        axes = plt.subplots(1, count, figsize=(3.6 * count, 3.6), squeeze=False, layout="constrained")[1][0]
    panels = new_panels(axes, count, 3.6, 3.6)
    labels = names_of(results, names)
    values = newdata[x]
    categorical = not pd.api.types.is_numeric_dtype(values)
    position = np.arange(len(values)) if categorical else values.to_numpy(dtype=float)
    for r, (result, name) in enumerate(zip(results, labels)):
        for ax, level in zip(panels, levels):
            rows = newdata.assign(**{enc.inner: level})
            _draw(ax, position, result.predict_variance(rows, term=term), np.sqrt, r, name, result, categorical,
                  len(results))
        if coscale.zeta is not None:
            _draw(panels[-1], position, result.predict_correlation(newdata, term=term), lambda v: v, r, name,
                  result, categorical, len(results))
    for ax, level in zip(panels, levels):
        ax.set_title(f"SD of {enc.inner} {level}")
        ax.set_ylim(bottom=0)
    if coscale.zeta is not None:
        panels[-1].set_title("correlation")
        panels[-1].axhline(0.0, color="0.6", linewidth=0.8)
        panels[-1].set_ylim(-1.0, 1.0)
    for ax in panels:
        ax.set_xlabel(x)
        if categorical:
            ax.set_xticks(position, [str(v) for v in values])
            ax.set_xlim(-0.5, len(values) - 0.5)
    panels[0].legend(frameon=False, fontsize=7)
    return panels
