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

The correlation model of a structured term (``atanh(rho_j) = u_j' zeta``) drifts
the same way when the correlations of some clusters S head for +-1: a direction
d with ``U_S d = sign(U_S zeta)`` and ``U_notS d = 0`` along which the
likelihood stays flat.
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
#: A correlation whose Fisher z exceeds this in absolute value (|rho| > 0.99999) counts as +-1.
EXTREME_Z = 6.0


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
        The drift direction over all coefficients of its part of the model (as
        ``fit.alpha`` or ``fit.zeta``).
    part : str
        ``"alpha"`` (a variance heading for zero) or ``"zeta"`` (a correlation
        heading for +-1).
    """

    level: str
    coefficients: tuple
    signs: tuple
    groups: tuple
    direction: tuple = ()
    part: str = "alpha"

    def __str__(self) -> str:
        coefs = ", ".join(f"{self.part}[{c}] -> {'-' if s < 0 else '+'}inf"
                          for c, s in zip(self.coefficients, self.signs))
        shown = ", ".join(self.groups[:8]) + (f", ... ({len(self.groups)} in all)" if len(self.groups) > 8 else "")
        what = "variance" if self.part == "alpha" else "correlation"
        limit = "zero" if self.part == "alpha" else "+-1"
        return (f"{coefs}: the {self.level!r} {what} of {len(self.groups)} group(s) ({shown}) is estimated as "
                f"{limit}; these estimates and their SEs are not meaningful")


def _direction(W: np.ndarray, small: np.ndarray, signs: np.ndarray | None = None) -> np.ndarray | None:
    """d with W[small] d = -1 (or ``signs[small]``) and W[~small] d = 0, if such a d exists."""
    target = np.where(small, -1.0 if signs is None else signs, 0.0)
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
        Scale coefficients first, then correlation coefficients.
    """
    found, ll0 = [], loglik(theta)
    for part in ("alpha", "zeta"):
        names, row = param.coefficient_names(part), 0
        n_part = len(names)
        for k, sc, where in param.coefficient_blocks(part):
            cols = np.arange(where.start, where.stop)
            coef_names = names[row:row + sc.r]
            row += sc.r
            eta = sc.W_std @ theta[cols]
            if part == "alpha":
                extreme, signs = np.exp(eta) < NEGLIGIBLE * reference, None
            else:
                extreme, signs = np.abs(eta) > EXTREME_Z, np.sign(eta)
            if not extreme.any():
                continue
            d = _direction(sc.W_std, extreme, signs)
            if d is None:
                continue
            moved = theta.copy()
            moved[cols] += STEP * d
            if loglik(moved) < ll0 - FLAT:
                continue
            in_part = sc.transform @ d
            moving = np.abs(in_part) > 1e-8 * np.max(np.abs(in_part))
            groups = tuple(str(sc.groups[g]) for g in np.flatnonzero(extreme))
            direction = np.zeros(n_part)
            direction[param.coefficient_slice(k, part)] = np.where(moving, in_part, 0.0)
            found.append(Drift(sc.label, tuple(n for n, m in zip(coef_names, moving) if m),
                               tuple(int(np.sign(v)) for v, m in zip(in_part, moving) if m), groups,
                               tuple(float(v) for v in direction / np.linalg.norm(direction)), part))
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
