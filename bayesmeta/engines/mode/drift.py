"""Detection of scale coefficients drifting to +-infinity.

In a location-scale model a variance ``exp(w' alpha)`` can only approach a
limit of the likelihood as ``alpha`` runs off to infinity along a direction d
with ``W d <= 0``: the variances of some groups S shrink to zero, the others
stay put (a variance growing without bound sends the likelihood to -infinity).
This happens when the groups in S show no heterogeneity at all, typically a
category of a categorical scale moderator (Viechtbauer's slides: an estimate of
-20.09 with an SE of 9917). The optimizer then stops at some arbitrary large
negative value.

:func:`find_drift` recognises this at an estimate: groups whose variance is
negligible next to the sampling variances form S; a direction d with
``W_S d = -1`` and ``W_notS d = 0`` is sought; if it exists and the
log-likelihood does not drop when moving further along it, the coefficients
that move are drifting. Their estimates and SEs mean nothing: the heterogeneity
of S is estimated as zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: A group variance below this fraction of the median sampling variance counts as zero.
NEGLIGIBLE = 1e-4
#: Further step along the drift direction (the variances of S shrink by exp(-STEP)).
STEP = 10.0
#: Largest drop of the log-likelihood along that step that still counts as flat.
FLAT = 1e-3


@dataclass(frozen=True)
class Drift:
    """Scale coefficients of one level that drift to +-infinity.

    Their estimates and SEs are not meaningful; ``str()`` says so in words.

    Attributes
    ----------
    level : str
        Label of the level.
    coefficients : tuple of str
        Names of the drifting coefficients (as in ``fit.alpha``).
    signs : tuple of int
        Direction of the drift of each (-1: towards -infinity).
    groups : tuple of str
        Groups (rows, for the row level) whose variance is estimated as zero.
    direction : tuple of float
        The drift direction over all scale coefficients of the model (as ``fit.alpha``).
    """

    level: str
    coefficients: tuple
    signs: tuple
    groups: tuple
    direction: tuple = ()

    def __str__(self) -> str:
        coefs = ", ".join(f"alpha[{c}] -> {'-' if s < 0 else '+'}inf" for c, s in zip(self.coefficients, self.signs))
        shown = ", ".join(self.groups[:8]) + (f", ... ({len(self.groups)} in all)" if len(self.groups) > 8 else "")
        return (f"{coefs}: the {self.level!r} variance of {len(self.groups)} group(s) ({shown}) is estimated as "
                "zero; these estimates and their SEs are not meaningful")


def _direction(W: np.ndarray, small: np.ndarray) -> np.ndarray | None:
    """d with W[small] d = -1 and W[~small] d = 0, if such a d exists."""
    target = np.where(small, -1.0, 0.0)
    d, *_ = np.linalg.lstsq(W, target, rcond=None)
    if np.max(np.abs(W @ d - target)) > 1e-6:
        return None
    return d


def find_drift(param, theta: np.ndarray, loglik: Callable[[np.ndarray], float], reference: float) -> tuple:
    """Drifting scale coefficients at an estimate.

    Parameters
    ----------
    param : Parameterization
    theta : numpy.ndarray
        The estimate (unconstrained parameters).
    loglik : callable
        theta -> log-likelihood (the one that was maximised).
    reference : float
        Typical sampling variance (the median of V's diagonal).

    Returns
    -------
    tuple of Drift
    """
    names = param.alpha_names()
    found, row, ll0 = [], 0, loglik(theta)
    for k, sc, where in param.coefficient_blocks("alpha"):
        cols = np.arange(where.start, where.stop)
        coef_names = names[row:row + sc.r]
        row += sc.r
        small = np.exp(sc.W_std @ theta[cols]) < NEGLIGIBLE * reference
        if not small.any():
            continue
        d = _direction(sc.W_std, small)
        if d is None:
            continue
        moved = theta.copy()
        moved[cols] += STEP * d
        if loglik(moved) < ll0 - FLAT:
            continue
        in_alpha = sc.transform @ d
        moving = np.abs(in_alpha) > 1e-8 * np.max(np.abs(in_alpha))
        groups = tuple(str(sc.groups[g]) for g in np.flatnonzero(small))
        direction = np.zeros(param.n_alpha)
        direction[param.alpha_slice(k)] = np.where(moving, in_alpha, 0.0)
        found.append(Drift(sc.label, tuple(n for n, m in zip(coef_names, moving) if m),
                           tuple(int(np.sign(v)) for v, m in zip(in_alpha, moving) if m), groups,
                           tuple(float(v) for v in direction / np.linalg.norm(direction))))
    return tuple(found)


#: A sampling-variance factor exp(w_i' delta) below this counts as drifting to zero.
NEGLIGIBLE_FACTOR = 1e-6


def delta_drift(param, theta: np.ndarray) -> str | None:
    """A message when the sampling-variance factors of ``V_scale=`` head for zero (delta -> -infinity), else None.

    This happens when a random effect beside the factor takes all the heterogeneity
    and more (the data want less than the known sampling variance): the estimates
    and SEs of delta then mean nothing.
    """
    factors = param.v_multipliers(theta)
    if factors is None or factors.min() >= NEGLIGIBLE_FACTOR:
        return None
    small = int(np.sum(factors < NEGLIGIBLE_FACTOR))
    return (f"delta ({', '.join(param.delta_names())}): the sampling-variance factor exp(w' delta) of {small} row(s) "
            f"is below {NEGLIGIBLE_FACTOR:g} (drifting to zero); these estimates and their SEs are not meaningful")
