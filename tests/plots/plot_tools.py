"""Reading a drawn plot back: artists by gid, tick labels, overlaps of text."""

from __future__ import annotations

import io
from itertools import pairwise

import numpy as np


def render(ax) -> bytes:
    """The figure of ``ax`` (or of the first of several Axes) as PNG bytes, saved as a user would."""
    axes = [ax] if hasattr(ax, "get_figure") else list(ax)
    buffer = io.BytesIO()
    axes[0].get_figure().savefig(buffer, format="png", dpi=60, bbox_inches="tight")
    data = buffer.getvalue()
    assert data.startswith(b"\x89PNG")
    return data


def by_gid(ax, gid: str) -> list:
    """Every artist (line, collection, patch) of ``ax`` with this gid."""
    return [a for a in ax.get_children() if a.get_gid() == gid]


def diamond(patch) -> tuple[float, float, float, float]:
    """(lower, centre, upper, y) of a diamond polygon."""
    xy = patch.get_xy()
    return float(xy[0, 0]), float(xy[1, 0]), float(xy[2, 0]), float(xy[0, 1])


def tick_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def overlapping_labels(ax) -> int:
    """How many pairs of neighbouring y tick labels overlap on the drawn figure."""
    fig = ax.get_figure()
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    boxes = sorted((t.get_window_extent(renderer) for t in ax.get_yticklabels() if t.get_text()),
                   key=lambda b: b.y0)
    return int(sum(a.y1 > b.y0 + 0.5 for a, b in pairwise(boxes)))


def segments(collection) -> np.ndarray:
    """The (x0, x1, y) of every horizontal segment of a LineCollection."""
    return np.array([[s[0, 0], s[1, 0], s[0, 1]] for s in collection.get_segments()])


def span(patch) -> tuple[float, float]:
    """The horizontal extent (data units) of an ``axvspan``: a Rectangle (matplotlib >= 3.9) or a Polygon."""
    if hasattr(patch, "get_width"):
        return float(patch.get_x()), float(patch.get_x() + patch.get_width())
    xs = np.asarray(patch.get_xy())[:, 0]
    return float(xs.min()), float(xs.max())
