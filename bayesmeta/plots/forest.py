"""Forest plot: observed effects with their intervals, shrunken estimates and pooled estimates
of one or several fits of the same model (an ML/REML fit beside a posterior)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import SpecificationError
from ..inference.blups import apply_transf, check_transf
from .canvas import label_size, new_axes, rows_height, text_color, thinned
from .rows import (
    check_results,
    grouping,
    has_moderators,
    is_posterior,
    names_of,
    observed,
    per_row,
    pooled,
    row_weights,
    study_labels,
)
from .rows import shrunken as shrunken_rows

#: How ``sort=`` orders the rows within each group.
SORTS = ("estimate", "precision", "label")
#: Half-height of the pooled diamond, in rows.
DIAMOND = 0.4


def forest(*results, slab=None, group=None, sort: str | Sequence | None = None, shrunken: bool = False,
           transf: Callable | None = None, refline: float | None = 0.0, names: Sequence[str] | None = None,
           annotate: bool = True, weights: bool = True, digits: int = 2, xlim: tuple[float, float] | None = None,
           xlabel: str = "Observed outcome", ax=None):
    """Forest plot of a meta-analysis: one row per estimate, the pooled estimates below.

    Each row shows the observed effect ``y_i`` with its ``level`` normal-theory
    interval (a square sized by the row's weight), optionally the shrunken
    estimate of every result (BLUPs of an ML/REML fit, posterior means of
    ``x_i' b + z_i' u``), and at the bottom one row per result: its pooled
    estimate as a diamond spanning the confidence (or credible) interval and a
    line spanning the prediction interval for a new study (``result.predict()``).
    A model with moderators has no single pooled estimate: each row then shows
    every result's fitted value as a small diamond instead. Rows are grouped by
    the outermost cluster of the random terms (the districts of
    ``~ 1 | district/study``) with a header per cluster.

    Parameters
    ----------
    *results : ModeResult or BayesResult
        One or more fits of the same model and data (e.g. REML and NUTS).
    slab : pandas.Series or sequence, optional
        Study labels: a Series indexed like the data (e.g. ``dat["author"]``) or one
        label per row. Default: the data's index labels.
    group : pandas.Series, sequence or False, optional
        Group of every row (default: the outermost cluster; ``False``: no groups).
    sort : {"estimate", "precision", "label"} or sequence, optional
        Order of the rows within each group: by observed effect, by standard error
        (most precise first), by label, or by one sort key per row (as ``slab``).
        Default: the order of the data.
    shrunken : bool
        Add every result's shrunken estimate with its interval below each row.
    transf : callable, optional
        Applied to every plotted value and limit (``transf=np.exp`` for log odds or
        risk ratios); the reference line is transformed too.
    refline : float or None
        Vertical reference line (on the untransformed scale; None for none).
    names : sequence of str, optional
        Names of the results in the legend and on the pooled rows (default: their
        methods, ``"REML"``, ``"NUTS"``).
    annotate : bool
        Print ``estimate [lower, upper]`` (and the weight) right of each row.
    digits : int
        Decimals of the printed estimates and limits (metafor's ``digits``).
    weights : bool
        Size the squares by, and print, the rows' percent weights in the first
        result (ML/REML fits without a scale model; metafor's ``weights``).
    xlim : (float, float), optional
        Horizontal limits (default: every interval drawn, with a margin).
    xlabel : str
    ax : matplotlib.axes.Axes, optional
        Draw here (default: a new figure whose height grows with the number of rows).

    Returns
    -------
    matplotlib.axes.Axes
        Row labels are its y tick labels (group headers and pooled rows in bold).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
    ...                      random="~ 1 | district/study")
    >>> ax = bm.forest(model.fit(), slab=bm.datasets.load("school")["study"])
    >>> len(ax.get_yticks())  # 56 studies and 11 district headers; pooled row
    68
    """
    design = check_results(results)
    check_transf(transf)
    level = results[0].level
    obs = observed(design, level)
    labels = study_labels(design, slab)
    blocks = _blocks(*_row_order(design, obs, labels, group, sort))
    moderators = has_moderators(design)
    summary_rows = 0 if moderators else len(results)
    n_rows = sum(len(rows) + (h is not None) for h, rows in blocks) + (summary_rows + 1 if summary_rows else 0)
    ax = new_axes(ax, 8.0, rows_height(n_rows))
    size, step = thinned(label_size(ax, n_rows + 1))  # a short Axes given by the user: label every step-th row
    ys, ticks = _layout(blocks, labels, n_rows, step)
    def tf(v):
        return apply_transf(transf, np.asarray(v, dtype=float))

    ink = text_color()
    w = row_weights(results[0]) if weights else None
    _draw_observed(ax, ys, tf(obs["yi"]), tf(obs["ci_lb"]), tf(obs["ci_ub"]), w, ink)
    extent = [tf(obs["ci_lb"]), tf(obs["ci_ub"])]
    style = {"digits": digits, "size": size, "ink": ink}
    n = len(results)
    for r, (result, name) in enumerate(zip(results, names_of(results, names))):
        offset = 0.5 * (r + 1) / (n + 1)
        if shrunken:
            extent += _draw_shrunken(ax, result, ys - offset, f"C{r}", name, tf)
        p = pooled(result)
        if moderators:
            extent += _draw_fitted(ax, p, ys - (offset if shrunken else 0.0), f"C{r}", name, tf)
        else:
            kind = "posterior" if is_posterior(result) else "RE model" if result.param.terms else "FE model"
            ticks.append((summary_rows - r, f"{name} ({kind})", True))
            extent += _draw_pooled(ax, p, summary_rows - r, f"C{r}", name, tf, style if annotate else None)
    if annotate:
        for i in [i for _, rows in blocks for i in rows][::step]:
            _annotate(ax, ys[i], (tf(obs["yi"])[i], tf(obs["ci_lb"])[i], tf(obs["ci_ub"])[i]),
                      None if w is None else w[i], **style)
        header = f"Estimate [{100 * level:g}% CI]" + ("   Weight" if w is not None else "")
        ax.annotate(header, xy=(1.02, 1.0), xycoords="axes fraction", ha="left", va="bottom",
                    fontsize=size, fontweight="bold", color=ink, annotation_clip=False)
    if refline is not None:
        ax.axvline(float(tf(refline)), color=ink, linewidth=0.8, linestyle=":", zorder=0, gid="refline")
    if summary_rows:
        ax.axhline(summary_rows + 0.5, color=ink, linewidth=0.6)
    values = np.concatenate([np.ravel(e) for e in extent])
    lo, hi = np.nanmin(values), np.nanmax(values)
    pad = 0.04 * (hi - lo or 1.0)
    ax.set_xlim(xlim if xlim is not None else (lo - pad, hi + pad))
    ax.set_ylim(0.3, n_rows + 1.4)
    ax.set_yticks([t[0] for t in ticks])
    ax.set_yticklabels([t[1] for t in ticks], fontsize=size)
    for tick, (_, _, bold) in zip(ax.get_yticklabels(), ticks):
        tick.set_fontweight("bold" if bold else "normal")
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel(xlabel)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.grid(False, axis="y")
    if shrunken or moderators:
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=max(n, 2), frameon=False, fontsize=size,
                  borderaxespad=0.2)
    return ax


def _layout(blocks, labels: np.ndarray, n_rows: int, step: int) -> tuple[np.ndarray, list]:
    """The y position of every row (from the top: group headers and rows) and the tick marks
    ``(y, label, bold)`` of the headers and of every ``step``-th row."""
    ys, ticks, y, count = np.zeros(len(labels)), [], n_rows, 0
    for header, rows in blocks:
        if header is not None:
            ticks.append((y, header, True))
            y -= 1
        for i in rows:
            ys[i] = y
            if count % step == 0:
                ticks.append((y, labels[i], False))
            y, count = y - 1, count + 1
    return ys, ticks


def _draw_shrunken(ax, result, ys, colour, name, tf) -> list:
    s = shrunken_rows(result)
    lo, hi = np.fmin(tf(s["lb"]), tf(s["ub"])), np.fmax(tf(s["lb"]), tf(s["ub"]))
    ax.hlines(ys, lo, hi, color=colour, linewidth=0.9, gid=f"shrunken {name}")
    ax.plot(tf(s["pred"]), ys, "o", color=colour, markersize=3.5, markerfacecolor="none",
            label=f"shrunken ({name})", gid=f"shrunken {name}")
    return [lo, hi]


def _draw_fitted(ax, p, ys, colour, name, tf) -> list:
    """Every row's fitted value and its confidence interval as a small diamond (models with moderators)."""
    lo, hi = np.fmin(tf(p["ci_lb"]), tf(p["ci_ub"])), np.fmax(tf(p["ci_lb"]), tf(p["ci_ub"]))
    for j, (y, a, m, b) in enumerate(zip(ys, lo, tf(p["pred"]), hi)):
        _diamond(ax, y, a, m, b, 0.18, colour, gid=f"fitted {name}", alpha=0.55,
                 label=f"fitted value ({name})" if j == 0 else None)
    return [lo, hi]


def _draw_pooled(ax, p, y, colour, name, tf, style) -> list:
    """The pooled estimate's diamond (its interval) and a dashed line (the prediction interval)."""
    lo, hi = sorted(tf([p["ci_lb"].iloc[0], p["ci_ub"].iloc[0]]))
    pi_lo, pi_hi = sorted(tf([p["pi_lb"].iloc[0], p["pi_ub"].iloc[0]]))
    centre = float(tf(p["pred"].iloc[0]))
    ax.hlines(y, pi_lo, pi_hi, color=colour, linewidth=1.2, linestyle=(0, (2, 1.5)), gid=f"prediction {name}")
    ax.plot([pi_lo, pi_hi], [y, y], "|", color=colour, markersize=6, gid=f"prediction {name}")
    _diamond(ax, y, lo, centre, hi, DIAMOND, colour, gid="pooled")
    if style is not None:
        _annotate(ax, y, (centre, lo, hi), None, bold=True, **style)
    return [np.array([lo, hi, pi_lo, pi_hi])]


def _row_order(design, obs: pd.DataFrame, labels: np.ndarray, group, sort) -> tuple[list[int], list]:
    """Rows in plotting order and, per row, the header of its group (None without groups)."""
    if sort is None:
        key = np.arange(design.n)
    elif isinstance(sort, str):
        if sort not in SORTS:
            raise SpecificationError(f"sort: expected one of {', '.join(SORTS)} or one key per row, got {sort!r}.")
        key = {"estimate": obs["yi"].to_numpy(), "precision": obs["se"].to_numpy(), "label": labels}[sort]
    else:
        key = per_row(design, sort, "sort")
    within = np.argsort(key, kind="stable")
    found = grouping(design, group)
    if found is None:
        return list(within), [None] * design.n
    codes, headers = found
    order = sorted(within, key=lambda i: codes[i])  # stable: groups by first appearance, sorted inside
    return order, [headers[codes[i]] for i in order]


def _blocks(order: list[int], headers: list):
    """(header, rows) pairs of consecutive rows sharing a header."""
    out = []
    for i, h in zip(order, headers):
        if out and out[-1][0] == h:
            out[-1][1].append(i)
        else:
            out.append((h, [i]))
    return out


def _draw_observed(ax, ys, yi, lo, hi, w, ink) -> None:
    ax.hlines(ys, np.fmin(lo, hi), np.fmax(lo, hi), color=ink, linewidth=0.9, gid="observed")
    sizes = 14.0 if w is None else 6.0 + 120.0 * np.sqrt(w / 100.0)
    ax.scatter(yi, ys, s=sizes, marker="s", color=ink, zorder=3, label="observed", gid="observed")


def _diamond(ax, y, lower, centre, upper, half, colour, gid, alpha: float = 1.0, label=None) -> None:
    from matplotlib.patches import Polygon

    ax.add_patch(Polygon([(lower, y), (centre, y + half), (upper, y), (centre, y - half)], closed=True,
                         facecolor=colour, edgecolor=colour, alpha=alpha, zorder=4 if alpha == 1 else 2, gid=gid,
                         label=label))


def _annotate(ax, y, values, weight, *, digits: int, size: float, ink, bold: bool = False) -> None:
    """``estimate [lower, upper]`` (and ``weight%``) right of the Axes, in a fixed-width font."""
    est, lo, hi = (f"{v:{digits + 4}.{digits}f}" for v in values)
    text = f"{est} [{lo}, {hi}]" + (f"  {weight:5.1f}%" if weight is not None else "")
    ax.annotate(text, xy=(1.02, y), xycoords=ax.get_yaxis_transform(), ha="left", va="center", family="monospace",
                fontsize=size, fontweight="bold" if bold else "normal", color=ink, annotation_clip=False)
