"""Figures and Axes for the plots: created on demand, sized to their rows, styled by the rcParams.

matplotlib is imported by the functions here, when a plot is drawn, never with
the package. Colours come from the active style's colour cycle (``"C0"``,
``"C1"``, ...) and text colours from the rcParams, so ``arviz.style.use(...)``
or ``matplotlib.pyplot.style.use(...)`` restyles every plot.
"""

from __future__ import annotations

import numpy as np

from ..errors import SpecificationError

#: Height of one row of a forest-type plot, in inches.
ROW_HEIGHT = 0.24
#: Room above and below the rows (title, axis label), in inches.
MARGIN_HEIGHT = 1.1
#: Largest share of a row's height that a label's font may fill.
FONT_FILL = 0.72
#: Smallest font of row labels (points); rows too short for it are labelled every few rows.
MIN_FONT = 5.0


def new_axes(ax, width: float, height: float):
    """``ax`` itself, or the Axes of a new figure of ``width`` x ``height`` inches."""
    if ax is not None:
        if not hasattr(ax, "get_figure"):
            raise SpecificationError(f"ax: expected a matplotlib Axes, got {type(ax).__name__}.")
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(width, height))
    return ax


def new_panels(axes, count: int, width: float, height: float, argument: str = "axes") -> np.ndarray:
    """``count`` Axes: the ones given (a sequence of ``count`` Axes) or a new figure of stacked panels."""
    if axes is not None:
        axes = np.ravel(np.asarray(axes, dtype=object))
        if len(axes) != count or not all(hasattr(a, "get_figure") for a in axes):
            raise SpecificationError(f"{argument}: expected {count} matplotlib Axes, got {len(axes)} object(s).")
        return axes
    import matplotlib.pyplot as plt

    _, panels = plt.subplots(count, 1, figsize=(width, height * count), squeeze=False)
    return panels[:, 0]


def rows_height(n_rows: int) -> float:
    """Figure height (inches) that gives every row of a forest-type plot room for its label."""
    return MARGIN_HEIGHT + ROW_HEIGHT * max(n_rows, 4)


def label_size(ax, n_rows: int) -> float:
    """Font size (points) of row labels: the style's, or smaller when the Axes is too short for it."""
    import matplotlib as mpl

    from_style = mpl.rcParams["ytick.labelsize"]
    base = mpl.font_manager.FontProperties(size=from_style).get_size_in_points()
    height_points = ax.get_position().height * ax.get_figure().get_figheight() * 72
    return float(min(base, FONT_FILL * height_points / max(n_rows, 1)))


def thinned(size: float) -> tuple[float, int]:
    """A readable font size and the step between labelled rows (1: every row) for a fitted ``size``."""
    if size >= MIN_FONT:
        return size, 1
    return MIN_FONT, int(np.ceil(MIN_FONT / max(size, 1e-3)))


def text_color() -> str:
    """The style's text colour (observed data and reference marks are drawn in it)."""
    import matplotlib as mpl

    return mpl.rcParams["text.color"]
