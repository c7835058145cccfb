"""Funnel plot: effects against their standard errors, contour-enhanced, with trim-and-fill studies."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from ..errors import SpecificationError
from ..inference.intervals import check_level, critical_value
from .canvas import new_axes, text_color
from .rows import check_results, has_moderators, is_posterior

#: What the vertical axis shows: label, and the value of a standard error on it.
YAXES = {"sei": ("Standard error", lambda se: se), "vi": ("Sampling variance", lambda se: se ** 2),
         "seinv": ("Inverse standard error", lambda se: 1 / se), "vinv": ("Inverse sampling variance",
                                                                         lambda se: 1 / se ** 2)}


def funnel(result, *, contours: Sequence[float] | None = None, trimfill=False, yaxis: str = "sei",
           level: float | None = None, refline: float | None = None, xlabel: str | None = None, ax=None):
    """Funnel plot of a fit: every estimate against its standard error.

    The observed effects ``y_i`` (the residuals ``y_i - x_i' b`` of a model with
    moderators, as metafor's ``funnel``) are plotted against their sampling SEs
    (largest at the bottom), with the pooled estimate as a vertical line and the
    pseudo-confidence region ``estimate -+ z se`` around it. With ``contours`` the
    plot is contour-enhanced (Peters et al. 2008): shaded bands where a study's
    own two-sided test against ``refline`` (default 0) is significant at those
    levels, and no pseudo-confidence region.

    Parameters
    ----------
    result : ModeResult or BayesResult
        The pooled estimate is the fit's estimate or the posterior mean.
    contours : sequence of float, optional
        Confidence levels of the significance contours, e.g. ``(0.90, 0.95, 0.99)``.
    trimfill : bool or TrimFill
        Add the studies filled in by trim-and-fill (``result.trimfill()`` for
        ``True``, an ML/REML fit of the standard model without moderators; or a
        TrimFill object) as open circles, and the filled data's estimate.
    yaxis : {"sei", "vi", "seinv", "vinv"}
        Vertical axis: standard error (default), sampling variance, or their inverses.
    level : float, optional
        Level of the pseudo-confidence region (default: the fit's).
    refline : float, optional
        Centre of the significance contours (default 0) or of the funnel (default:
        the pooled estimate).
    xlabel : str, optional
    ax : matplotlib.axes.Axes, optional
        Draw here (default: a new 6 x 4.8 inch figure).

    Returns
    -------
    matplotlib.axes.Axes
        The legend sits right of the plot.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit()
    >>> ax = bm.funnel(fit, contours=(0.90, 0.95, 0.99), trimfill=True)
    >>> ax.get_ylabel(), len(ax.collections[-1].get_offsets())  # one study filled in
    ('Standard error', 1)
    """
    design = check_results([result], "result")
    if yaxis not in YAXES:
        raise SpecificationError(f"yaxis: expected one of {', '.join(YAXES)}, got {yaxis!r}.")
    ylabel, on_axis = YAXES[yaxis]
    level = check_level(result.level if level is None else level)
    moderators = has_moderators(design)
    se = np.sqrt(design.V.diagonal())
    if moderators:
        x = design.y - design.X @ np.asarray(result.coef, dtype=float)
        centre = 0.0
    else:
        x = design.y
        centre = float(np.asarray(result.coef, dtype=float)[0])
    filled = _filled(result, trimfill, moderators)
    ax = new_axes(ax, 6.0, 4.8)
    ink = text_color()
    all_se = se if filled is None else np.concatenate([se, filled[0][1]])
    se_max = float(all_se.max()) * 1.05
    se_grid = np.linspace(se_max / 2000 if yaxis in ("seinv", "vinv") else 0.0, se_max, 200)
    if contours is not None:
        _contours(ax, contours, se_grid, on_axis, 0.0 if refline is None else refline, x)
    else:
        middle = centre if refline is None else refline
        crit = critical_value(level)
        ax.fill_betweenx(on_axis(se_grid), middle - crit * se_grid, middle + crit * se_grid, color=ink, alpha=0.06,
                         linewidth=0, gid="pseudo-confidence region")
        for sign in (-1, 1):
            ax.plot(middle + sign * crit * se_grid, on_axis(se_grid), color=ink, linewidth=0.8, linestyle="--")
    name = "posterior mean" if is_posterior(result) else f"{result.method} estimate"
    ax.axvline(centre, color=ink, linewidth=1.0, label=name, gid="estimate")
    ax.scatter(x, on_axis(se), s=22, color=ink, zorder=3, label="studies", gid="studies")
    if filled is not None:
        (y_fill, se_fill), tf_estimate = filled
        ax.axvline(tf_estimate, color="C1", linewidth=1.0, linestyle="-.", label="trim-and-fill estimate")
        ax.scatter(y_fill, on_axis(se_fill), s=22, facecolor="none", edgecolor=ink, zorder=3,
                   label="filled studies", gid="filled")
    if yaxis in ("sei", "vi"):
        ax.set_ylim(on_axis(se_max), 0)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel or ("Residual value" if moderators else "Observed outcome"))
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def _filled(result, trimfill, moderators: bool):
    """((filled effects, their SEs), the filled data's estimate), or None."""
    if trimfill is False or trimfill is None:
        return None
    if trimfill is True:
        if is_posterior(result) or moderators or not hasattr(result, "trimfill"):
            raise SpecificationError("trimfill: needs an ML/REML fit of the standard model without moderators; "
                                     "or pass a TrimFill object (fit.trimfill()).")
        trimfill = result.trimfill()
    if not hasattr(trimfill, "data") or not hasattr(trimfill, "k0"):
        raise SpecificationError(f"trimfill: expected True or a TrimFill object, got {type(trimfill).__name__}.")
    data = trimfill.data[trimfill.data["fill"]]
    return (data["yi"].to_numpy(), np.sqrt(data["vi"].to_numpy())), trimfill.estimate


def _contours(ax, levels, se_grid, on_axis, middle: float, x) -> None:
    """Shaded bands of significance at each level (darker for stronger evidence)."""
    levels = sorted(check_level(v, "contours") for v in np.atleast_1d(levels))
    crits = [critical_value(v) for v in levels]
    reach = max(np.max(np.abs(x - middle)), crits[-1] * se_grid[-1]) * 1.1
    shades = np.linspace(0.15, 0.45, len(levels))
    edges = crits + [None]
    for i, (inner, outer) in enumerate(pairwise(edges)):
        p = 1 - levels[i]
        label = f"{p:g} > p > {1 - levels[i + 1]:g}" if outer is not None else f"p < {p:g}"
        for sign in (-1, 1):
            lo = middle + sign * inner * se_grid
            hi = middle + sign * (outer * se_grid if outer is not None else np.full_like(se_grid, reach))
            ax.fill_betweenx(on_axis(se_grid), lo, hi, color="0.5", alpha=float(shades[i]), linewidth=0,
                             label=label if sign == 1 else None, gid="contour")
    ax.axvline(middle, color="0.4", linewidth=0.6, linestyle=":")
