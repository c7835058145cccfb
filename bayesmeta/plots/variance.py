"""The variance plot of a location-scale model: the heterogeneity SD (or variance) against a
scale moderator, with intervals, for ML/REML fits and posteriors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import SpecificationError
from .canvas import new_axes
from .rows import check_results, is_posterior, names_of


def variance_plot(*results, x: str, data: pd.DataFrame, newdata: pd.DataFrame | None = None, term: str | None = None,
                  sd: bool = True, points: int = 60, names: Sequence[str] | None = None, show_groups: bool = True,
                  ax=None):
    """Fitted heterogeneity of a location-scale model against one scale moderator.

    For every fit, the curve ``exp(w' alpha)`` over a grid of the moderator with
    its interval (Wald intervals of ML/REML fits, exponentiated as metafor's
    ``predict(..., transf = exp)``; posterior medians with equal-tailed intervals),
    as SDs (``tau_i``, the default) or variances, and the fitted value of every
    group of the first fit as points.

    Parameters
    ----------
    *results : ModeResult or BayesResult
        Fits of one location-scale model.
    x : str
        The scale moderator on the horizontal axis (a column of ``data``).
    data : pandas.DataFrame
        The data the model was fitted on (the moderator's range and the groups' values).
    newdata : pandas.DataFrame, optional
        The grid (must hold ``x`` and every other scale moderator). Default:
        ``points`` values over the observed range of ``x`` (enough when ``x`` is the
        only scale moderator).
    term : str, optional
        The level whose scale model is shown, when several have one.
    sd : bool
        Plot SDs (square roots) rather than variances.
    points : int
    names : sequence of str, optional
    show_groups : bool
        Plot the first fit's fitted value of every group (row-level models: every row).
    ax : matplotlib.axes.Axes, optional
        Draw here, e.g. beside a funnel plot (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        Curves labelled ``curve <name>`` (their gid), one per fit.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    >>> fit = bm.location_scale("yi ~ length", dat, vi="vi", scale="~ length").fit()
    >>> ax = bm.variance_plot(fit, x="length", data=dat)
    >>> ax.get_ylabel()
    'heterogeneity SD'
    """
    check_results(results)
    for i, r in enumerate(results):
        if not getattr(r.param, "has_scale", False):
            raise SpecificationError(f"results: argument {i + 1} is not a location-scale fit (no scale= model).")
    if not isinstance(data, pd.DataFrame) or x not in data.columns:
        raise SpecificationError(f"x: {x!r} is not a column of data.")
    labels = names_of(results, names)
    if newdata is None:
        values = pd.to_numeric(data[x], errors="coerce").dropna()
        newdata = pd.DataFrame({x: np.linspace(values.min(), values.max(), points)})
    elif x not in newdata.columns:
        raise SpecificationError(f"newdata: needs the column {x!r}.")
    scale = np.sqrt if sd else (lambda v: v)
    ax = new_axes(ax, 7.0, 4.5)
    grid = newdata[x].to_numpy(dtype=float)
    for r, (result, name) in enumerate(zip(results, labels)):
        curve = result.predict_variance(newdata, term=term)
        centre = curve["median"] if is_posterior(result) else curve["pred"]
        interval = "posterior interval" if is_posterior(result) else "CI"
        what = "posterior median" if is_posterior(result) else "estimate"
        ax.fill_between(grid, scale(curve["ci_lb"]), scale(curve["ci_ub"]), color=f"C{r}", alpha=0.15,
                        linewidth=0, label=f"{name} {100 * result.level:g}% {interval}")
        ax.plot(grid, scale(centre), color=f"C{r}", linestyle="-" if r == 0 else "--", label=f"{name} ({what})",
                gid=f"curve {name}")
    if show_groups:
        first = results[0]
        rows = data.loc[first.rows_used]
        groups = first.predict_variance(rows, term=term)
        ax.plot(rows[x].to_numpy(dtype=float), scale(groups["median" if is_posterior(first) else "pred"]), "o",
                color="C0", markersize=4, label=f"fitted ({labels[0]})", gid="groups")
    ax.set_xlabel(x)
    ax.set_ylabel("heterogeneity SD" if sd else "heterogeneity variance")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=8)
    return ax
