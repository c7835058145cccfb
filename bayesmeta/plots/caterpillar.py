"""Caterpillar plot: the random effects of one level, sorted, with their intervals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .canvas import label_size, new_axes, rows_height, text_color
from .rows import check_results, names_of, random_effects


def caterpillar(*results, term: str | None = None, sort: bool = True, names: Sequence[str] | None = None,
                xlabel: str | None = None, ax=None):
    """The random effects of one level with their intervals, sorted by size.

    ML/REML fits show the BLUPs with prediction intervals (metafor's ``ranef``),
    posteriors the posterior means of ``u`` with equal-tailed intervals; several
    fits of one model are drawn side by side on each row.

    Parameters
    ----------
    *results : ModeResult or BayesResult
        Fits of the same model.
    term : str, optional
        The level: a term's label (``"district"``, ``"district/study"``,
        ``"outcome | trial"``) or its grouping column (``"study"``). Default: the first term.
    sort : bool
        Sort the clusters by the first fit's estimate (otherwise: data order).
    names : sequence of str, optional
        Legend names (default: the methods).
    xlabel : str, optional
    ax : matplotlib.axes.Axes, optional
        Draw here (default: a new figure, one row per cluster).

    Returns
    -------
    matplotlib.axes.Axes
        One row per cluster, labelled by the cluster, from the smallest effect up.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
    ...                    random="~ 1 | district/study").fit()
    >>> ax = bm.caterpillar(fit, term="district")
    >>> len(ax.get_yticks()), ax.get_xlabel()
    (11, 'random effect: district')
    """
    check_results(results)
    labels = names_of(results, names)
    effects = [random_effects(r, term) for r in results]
    label, first = effects[0]
    order = np.argsort(first["pred"].to_numpy(), kind="stable") if sort else np.arange(len(first))
    n_rows = len(first)
    ax = new_axes(ax, 6.0, rows_height(n_rows))
    ys = np.arange(n_rows, dtype=float)
    n = len(results)
    for r, ((_, frame), name) in enumerate(zip(effects, labels)):
        part = frame.iloc[order]
        dy = 0.3 * ((n - 1) / 2 - r) / max(n - 1, 1) if n > 1 else 0.0
        ax.hlines(ys + dy, part["lb"], part["ub"], color=f"C{r}", linewidth=1.2, gid=f"interval {name}")
        ax.plot(part["pred"], ys + dy, "o", color=f"C{r}", markersize=3.5, label=name, gid=name)
    ax.axvline(0.0, color=text_color(), linewidth=0.7, linestyle=":")
    ax.set_yticks(ys)
    ax.set_yticklabels(first.index[order], fontsize=label_size(ax, n_rows + 1))
    ax.set_ylim(-0.8, n_rows - 0.2)
    ax.tick_params(axis="y", length=0)
    ax.set_ylabel(label)
    ax.set_xlabel(xlabel or f"random effect: {label}")
    if n > 1:
        ax.legend(frameon=False, fontsize="small", loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=n)
    return ax
