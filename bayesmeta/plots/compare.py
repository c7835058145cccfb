"""Interval plot of several fits of one model: each parameter's ML/REML interval beside its
posterior interval, one panel per family of parameters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import SpecificationError
from ..inference.comparison import compare
from .canvas import label_size, new_axes, new_panels, rows_height, text_color
from .rows import names_of

#: Panel titles of the parameter families, in the order of the panels.
FAMILIES = {"beta": "fixed effects", "alpha": "scale coefficients (log variance)", "sigma2": "variances sigma2",
            "tau2": "variances tau2", "rho": "correlations rho", "gamma2": "variances gamma2",
            "phi": "correlations phi"}


def compare_plot(*results, names: Sequence[str] | None = None, params: Sequence[str] | None = None,
                 ax=None, axes=None) -> np.ndarray:
    """Each parameter's estimate and interval under every fit, side by side.

    The table of :func:`bayesmeta.compare` drawn: for every parameter (fixed
    effects, scale coefficients, variance components, correlations) one row
    with a point and an interval per fit (Wald intervals of ML/REML fixed
    effects, profile-likelihood intervals of their variance components,
    equal-tailed posterior intervals), one panel per family so that each has
    its own scale.

    Parameters
    ----------
    *results : ModeResult or BayesResult
        Fits of the same model (e.g. REML and NUTS).
    names : sequence of str, optional
        Legend names (default: the methods).
    params : sequence of str, optional
        Table labels to show (default: all), e.g. ``["beta[Intercept]", "sigma2[district]"]``.
    ax : matplotlib.axes.Axes, optional
        Draw every parameter on this one Axes (one common scale) instead of panels.
    axes : sequence of matplotlib Axes, optional
        One per family shown.

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
        One per panel (a single element with ``ax``).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
    ...                      random="~ 1 | district/study")
    >>> axes = bm.compare_plot(model.fit("REML"), model.fit("ML"))
    >>> [ax.get_title(loc="left") for ax in axes]
    ['fixed effects', 'variances sigma2']
    """
    labels = names_of(results, names)
    table = compare(*results, names=labels)
    if params is not None:
        unknown = [p for p in params if p not in table.index]
        if unknown:
            raise SpecificationError(f"params: {unknown} not among the parameters {list(table.index)}.")
        table = table.loc[list(params)]
    families = list(dict.fromkeys(i.split("[")[0] for i in table.index))
    families.sort(key=lambda f: list(FAMILIES).index(f) if f in FAMILIES else len(FAMILIES))
    groups = [table[[i.split("[")[0] == f for i in table.index]] for f in families]
    if ax is not None:
        panels = np.array([new_axes(ax, 0, 0)], dtype=object)
        groups, titles = [table], [""]
    else:
        heights = [max(1.6, rows_height(len(g)) * 0.6) for g in groups]
        created = axes is None
        panels = new_panels(axes, len(groups), 6.5, max(heights))
        titles = [FAMILIES.get(f, f) for f in families]
    ink = text_color()
    n = len(results)
    for panel, group, title in zip(panels, groups, titles):
        ys = np.arange(len(group))[::-1].astype(float)
        for r, label in enumerate(labels):
            part = group[label]
            dy = 0.3 * ((n - 1) / 2 - r) / max(n - 1, 1) if n > 1 else 0.0
            panel.hlines(ys + dy, part["ci_lb"], part["ci_ub"], color=f"C{r}", linewidth=2.0, gid=f"interval {label}")
            panel.plot(part["estimate"], ys + dy, "o", color=f"C{r}", markersize=5, label=label, gid=label)
        panel.set_yticks(ys)
        panel.set_yticklabels([i.split("[", 1)[1].rstrip("]") if "[" in i and title else i for i in group.index],
                              fontsize=label_size(panel, len(group) + 1))
        panel.set_ylim(-0.7, len(group) - 0.3)
        panel.set_title(title, fontsize="medium", loc="left")
        if title.startswith(("correlations", "fixed")):
            panel.axvline(0.0, color=ink, linewidth=0.6, linestyle=":")
        panel.tick_params(axis="y", length=0)
    panels[0].legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if ax is None and created:
        panels[0].get_figure().tight_layout()
    return panels
