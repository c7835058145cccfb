"""Natural cubic splines matching R's ``splines::ns``.

:func:`ns_basis` is a pure function returning the basis matrix; :func:`ns` is
the same basis as a `formulaic <https://matthewwardrop.github.io/formulaic/>`_
stateful transform, so ``model_matrix("y ~ ns(dose, knots=[10, 25])", data)``
works and a ``ModelSpec`` re-encodes new data with the stored knots (like
``predict.ns`` in R). Importing this module registers ``ns`` in formulaic's
default transforms (unless that name is already taken), so formulas find it
without an explicit ``context``, also when a ``ModelSpec`` is re-used.

The construction follows R: a cubic B-spline basis on the knot sequence with
the boundary knots repeated four times, evaluated by de Boor recursion
(:class:`scipy.interpolate.BSpline`); the columns are then projected onto the
null space of the constraints "second derivative is zero at both boundary
knots", using the Householder QR convention of R's ``qr()`` (LINPACK
``dqrdc2``) so that the resulting columns are identical, not merely spanning
the same space.  Outside the boundary knots the basis continues linearly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
from formulaic.materializers.types import FactorValues
from formulaic.transforms import TRANSFORMS
from formulaic.utils.stateful_transforms import stateful_transform

__all__ = ["ns_basis", "ns"]

_ORDER = 4  # cubic


def _quantile7(x: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """R's type-7 quantiles, using R's interpolation formula."""
    xs = np.sort(x)
    index = (len(xs) - 1) * probs  # 0-based
    lo = np.floor(index).astype(int)
    hi = np.ceil(index).astype(int)
    h = index - lo
    return np.where(h > 0, (1 - h) * xs[lo] + h * xs[hi], xs[lo])


def _bspline_design(t: np.ndarray, x: np.ndarray, deriv: int = 0) -> np.ndarray:
    """All cubic B-splines on knots ``t`` (or a derivative) at ``x``: (len(x), n)."""
    # scipy.interpolate takes half a second to import: only when a spline is built
    from scipy.interpolate import BSpline

    n_basis = len(t) - _ORDER
    spl = BSpline(t, np.eye(n_basis), _ORDER - 1, extrapolate=True)
    return spl(x, nu=deriv) if deriv else spl(x)


def _householder_q(a: np.ndarray) -> np.ndarray:
    """Full orthogonal ``Q`` of ``a = QR`` (``a`` is m x p, full column rank).

    Uses the reflection convention of LINPACK ``dqrdc2`` (R's default ``qr``):
    column ``j`` is reflected onto ``-sign(a_jj) * ||a_j|| e_j`` (plus sign if
    ``a_jj == 0``), always applying a reflection, which fixes the columns of
    ``Q`` spanning the orthogonal complement of ``a``.
    """
    a = np.array(a, dtype=float)
    m, p = a.shape
    q = np.eye(m)
    for j in range(p):
        col = a[j:, j]
        norm = np.linalg.norm(col)
        if norm == 0.0:
            continue
        if col[0] != 0.0:
            norm = np.copysign(norm, col[0])
        v = col / norm
        v[0] += 1.0
        # H = I - v v^T / v[0]; apply to remaining columns of a and to Q
        a[j:, j:] -= np.outer(v, v @ a[j:, j:]) / v[0]
        q[:, j:] -= np.outer(q[:, j:] @ v, v) / v[0]
    return q


def _default_knots(
    x: np.ndarray,
    df: Optional[int],
    knots: Optional[Sequence[float]],
    boundary_knots: Optional[Sequence[float]],
    intercept: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve (interior knots, boundary knots) as ``splines::ns`` does."""
    x = x[~np.isnan(x)]
    if boundary_knots is None:
        if x.size == 0:
            raise ValueError("cannot determine boundary knots: no non-missing x")
        bk = np.array([x.min(), x.max()]) if x.size > 1 else x[0] * np.array([7, 9]) / 8
        inside = np.ones(x.shape, dtype=bool)
    else:
        bk = np.sort(np.asarray(boundary_knots, dtype=float))
        if bk.shape != (2,):
            raise ValueError("boundary_knots must have length 2")
        inside = (x >= bk[0]) & (x <= bk[1])
    if knots is not None:
        ik = np.sort(np.atleast_1d(np.asarray(knots, dtype=float)))
    elif df is not None:
        n_interior = max(int(df) - 1 - int(intercept), 0)
        probs = np.linspace(0.0, 1.0, n_interior + 2)[1:-1]
        ik = _quantile7(x[inside], probs) if n_interior else np.empty(0)
    else:
        ik = np.empty(0)
    return ik, bk


def ns_basis(
    x: Any,
    *,
    df: Optional[int] = None,
    knots: Optional[Sequence[float]] = None,
    boundary_knots: Optional[Sequence[float]] = None,
    intercept: bool = False,
) -> np.ndarray:
    """Natural cubic spline basis, identical to R's ``splines::ns``.

    Parameters
    ----------
    x : array_like
        1-D predictor values; NaN gives a row of NaN.
    df : int, optional
        Degrees of freedom (number of columns). Used only when ``knots`` is
        None: ``df - 1 - intercept`` interior knots are placed at equally
        spaced type-7 quantiles of the ``x`` within the boundary knots.
    knots : sequence of float, optional
        Interior knots.
    boundary_knots : (float, float), optional
        Boundary knots; default is the range of the non-missing ``x``. Beyond
        them the basis is extrapolated linearly.
    intercept : bool, default False
        If True, include the column otherwise dropped (R's ``intercept=TRUE``).

    Returns
    -------
    numpy.ndarray
        Array of shape ``(len(x), len(knots) + 1 + intercept)``.

    Examples
    --------
    >>> import numpy as np
    >>> ns_basis(np.array([0.0, 5.0, 10.0, 30.0, 60.0]), knots=[10, 25]).shape
    (5, 3)
    """
    x = np.asarray(x, dtype=float).ravel()
    ik, bk = _default_knots(x, df, knots, boundary_knots, intercept)
    t = np.sort(np.concatenate([np.repeat(bk, _ORDER), ik]))

    ok = ~np.isnan(x)
    xo = x[ok]
    basis = _bspline_design(t, np.clip(xo, bk[0], bk[1]))
    for side, bound in ((xo < bk[0], bk[0]), (xo > bk[1], bk[1])):
        if side.any():  # linear continuation: B(b) + (x - b) B'(b)
            value = _bspline_design(t, np.array([bound]))
            slope = _bspline_design(t, np.array([bound]), deriv=1)
            basis[side] = value + np.outer(xo[side] - bound, slope)
    const = _bspline_design(t, bk, deriv=2)  # 2 x n_basis
    if not intercept:
        basis, const = basis[:, 1:], const[:, 1:]
    null_space = _householder_q(const.T)[:, 2:]

    out = np.full((x.size, null_space.shape[1]), np.nan)
    out[ok] = basis @ null_space
    return out


@stateful_transform
def ns(
    x: Any,
    df: Optional[int] = None,
    knots: Optional[Sequence[float]] = None,
    intercept: bool = False,
    boundary_knots: Optional[Sequence[float]] = None,
    _state: Optional[dict] = None,
) -> FactorValues[dict]:
    """Natural cubic spline basis as a formulaic stateful transform.

    Same arguments as :func:`ns_basis`. On first evaluation the interior and
    boundary knots are stored in the transform state, so data encoded later
    through the same ``ModelSpec`` use the original knots (as R's
    ``predict.ns``). Columns are named ``<expr>[1]``, ``<expr>[2]``, ... like
    R's 1-based column labels. With ``intercept=True`` the basis spans the
    intercept but no column is dropped (as in R's ``model.matrix``).

    Examples
    --------
    >>> import pandas as pd
    >>> from formulaic import model_matrix
    >>> d = pd.DataFrame({"y": [1.0, 2, 3, 4, 5], "dose": [0.0, 5, 10, 30, 60]})
    >>> list(model_matrix("y ~ ns(dose, knots=[10, 25])", d).rhs.columns)
    ['Intercept', 'ns(dose, knots=[10, 25])[1]', 'ns(dose, knots=[10, 25])[2]', 'ns(dose, knots=[10, 25])[3]']
    """
    state = {} if _state is None else _state
    if "boundary_knots" not in state:
        ik, bk = _default_knots(
            np.asarray(x, dtype=float).ravel(), df, knots, boundary_knots, intercept
        )
        state["knots"] = ik.tolist()
        state["boundary_knots"] = bk.tolist()
    basis = ns_basis(
        x,
        knots=state["knots"],
        boundary_knots=state["boundary_knots"],
        intercept=intercept,
    )
    return FactorValues(
        {j + 1: basis[:, j] for j in range(basis.shape[1])},
        kind="numerical",
        spans_intercept=False,
        format="{name}[{field}]",
        encoded=False,
    )


TRANSFORMS.setdefault("ns", ns)
