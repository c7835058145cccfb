"""Profile-likelihood plot: the profile (restricted) log-likelihood of each variance component,
with its estimate and its profile-likelihood confidence interval marked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import SpecificationError
from ..inference.intervals import check_level, chi2_quantile
from ..inference.profile import free_components
from .canvas import new_panels, text_color
from .rows import is_posterior


def profile_plot(fit, components: str | Sequence[str] | None = None, *, points: int = 20,
                 level: float | None = None, progressbar: bool = False, axes=None) -> np.ndarray:
    """The profile log-likelihood of variance components, one panel each, as metafor's ``profile``.

    Each panel shows the profile (restricted, for REML) log-likelihood of one
    component on a grid (``fit.profile``), the estimate (dashed), the horizontal
    line ``max - chi2_{1, level} / 2`` and the profile-likelihood confidence
    interval where the curve crosses it (dotted, shaded; ``fit.confint(method="profile")``).

    Parameters
    ----------
    fit : ModeResult
        An ML or REML fit with free variance components.
    components : str or sequence of str, optional
        Table labels (``"sigma2[district]"``) or family names with one free
        component (``"tau2"``). Default: every free component.
    points : int
        Grid points per profile.
    level : float, optional
        Level of the interval (default: the fit's).
    progressbar : bool
    axes : sequence of matplotlib Axes, optional
        One per component (default: a new figure of stacked panels).

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes

    Examples
    --------
    >>> import bayesmeta as bm
    >>> fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
    ...                    random="~ 1 | district/study").fit()
    >>> axes = bm.profile_plot(fit, points=8)
    >>> [ax.get_xlabel() for ax in axes]
    ['sigma2[district]', 'sigma2[district/study]']
    """
    if is_posterior(fit) or not hasattr(fit, "profile"):
        raise SpecificationError("fit: the profile likelihood needs an ML or REML fit (MetaModel.fit), "
                                 f"got a {type(fit).__name__}.")
    level = check_level(fit.level if level is None else level)
    labels = [c.label for c in free_components(fit)] if fit.method in ("ML", "REML") else []
    if not labels:
        raise SpecificationError(f"fit: a {fit.method} fit with free variance components is needed for a profile.")
    if components is None:
        components = labels
    elif isinstance(components, str):
        components = [components]
    profiles = [fit.profile(c, points=points, progressbar=progressbar) for c in components]
    ci = fit.confint(level=level, method="profile", progressbar=progressbar)
    created = axes is None
    panels = new_panels(axes, len(profiles), 6.0, 2.8)
    ink = text_color()
    drop = chi2_quantile(level, 1) / 2
    for ax, prof in zip(panels, profiles):
        label = prof.attrs["component"]
        row = "tau2" if fit.is_standard and not fit.is_location_scale else label
        estimate, peak = prof.attrs["estimate"], prof.attrs["loglik"]
        lower, upper = float(ci.loc[row, "ci_lb"]), float(ci.loc[row, "ci_ub"])
        ax.plot(prof["value"], prof["loglik"], "o-", color="C0", markersize=3, linewidth=1.2, gid="profile")
        ax.axhline(peak - drop, color=ink, linewidth=0.8, linestyle=":", gid="cutoff")
        ax.axvline(estimate, color=ink, linewidth=0.9, linestyle="--", gid="estimate")
        ax.axvspan(lower, upper, color="C0", alpha=0.12, linewidth=0, gid="interval")
        for bound in (lower, upper):
            ax.axvline(bound, color="C0", linewidth=0.8, linestyle=":")
        ax.set_xlabel(label)
        ax.set_ylabel("restricted log-likelihood" if fit.method == "REML" else "log-likelihood")
        ax.set_title(f"{label}: {estimate:.4g}, {100 * level:g}% CI [{lower:.4g}, {upper:.4g}]", fontsize="medium")
        values = np.concatenate([prof["value"].to_numpy(), [lower, upper]])
        ax.set_xlim(np.nanmin(values), np.nanmax(values))
    if created:
        panels[0].get_figure().tight_layout()
    return panels
