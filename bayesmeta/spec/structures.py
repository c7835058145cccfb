"""Covariance structures of random effects, each defined once.

A structure maps standard deviations ``sd`` and correlations ``rho`` to a
q x q covariance matrix ``G = D R D`` with ``D = diag(sd)``. Everything the rest
of the package needs to know about a structure is declared here: how many
SDs and correlations it has for q levels, the correlation matrix and its
derivatives (NumPy, for the likelihood's analytic gradient) and as a PyTensor
expression (for the Bayesian graph), the map from unconstrained parameters to
its correlations, and the kind of prior its correlations get by default.

| name | SDs | correlation matrix R   | slopes | correlation prior     |
|------|-----|------------------------|--------|-----------------------|
| ID   | 1   | identity               |        |                       |
| DIAG | q   | identity               | yes    |                       |
| CS   | 1   | exchangeable rho       |        | Uniform(-1/(q-1), 1)  |
| HCS  | q   | exchangeable rho       |        | Uniform(-1/(q-1), 1)  |
| AR   | 1   | rho ** abs(i - j)      |        | Uniform(-1, 1)        |
| HAR  | q   | rho ** abs(i - j)      |        | Uniform(-1, 1)        |
| UN   | q   | free, q(q-1)/2         | yes    | LKJ                   |

Correlations of a UN matrix are ordered as metafor orders them: the lower
triangle column by column, (2,1), (3,1), ..., (q,1), (3,2), ...

To add a structure, add a :class:`Structure` to :data:`STRUCTURES` (and, for a
new kind of correlation matrix, a :class:`Correlation` subclass): nothing else
in the package names structures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def lower_pairs(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices (i > j) of the lower triangle, column by column (metafor's order).

    Examples
    --------
    >>> [tuple(map(int, ij)) for ij in zip(*lower_pairs(4))]
    [(1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2)]
    """
    j, i = np.triu_indices(q, 1)
    return i, j


class Correlation:
    """A family of correlation matrices with ``n_rho(q)`` parameters.

    Subclasses define the matrix, its derivatives, the PyTensor expression and
    the unconstrained parameterisation. ``prior`` is the kind of default prior
    of the Bayesian engine: ``"none"`` (no correlation), ``"uniform"`` (each
    correlation uniform on its admissible range) or ``"lkj"`` (the whole matrix).
    """

    prior = "none"

    def n_rho(self, q: int) -> int:
        return 0

    def contains(self, other: "Correlation") -> bool:
        """Whether every correlation matrix of ``other`` is one of this family's (no
        correlation, the identity, is in every family)."""
        return type(other) is Correlation or type(other) is type(self)

    def matrix(self, rho: np.ndarray, q: int) -> np.ndarray:
        return np.eye(q)

    def jacobian(self, rho: np.ndarray, q: int) -> np.ndarray:
        """dR/drho, (n_rho, q, q)."""
        return np.zeros((0, q, q))

    def matrix_pt(self, rho, q: int):
        import pytensor.tensor as pt

        return pt.eye(q)

    def lower_bound(self, q: int) -> float:
        """Smallest admissible value of a single correlation."""
        return -1.0

    # one correlation per cluster (scale models of correlations) ----------

    def pair(self, rho: np.ndarray, lag: np.ndarray) -> np.ndarray:
        """R[i, j] of pairs of levels ``lag = |i - j|`` apart, elementwise in ``rho`` and ``lag``
        (families with one correlation; here none: the identity)."""
        return np.where(lag == 0, 1.0, 0.0) + 0.0 * rho

    def pair_derivative(self, rho: np.ndarray, lag: np.ndarray) -> np.ndarray:
        """d R[i, j] / d rho of :meth:`pair`."""
        return np.zeros(np.broadcast(rho, lag).shape)

    def pair_pt(self, rho, lag: np.ndarray):
        """:meth:`pair` as a PyTensor expression: ``rho`` a tensor, ``lag`` an integer array or tensor."""
        import pytensor.tensor as pt

        return pt.switch(pt.eq(lag, 0), 1.0, 0.0) + 0.0 * rho

    # unconstrained parameters: theta in R^n -> rho ------------------------

    def from_theta(self, theta: np.ndarray, q: int) -> np.ndarray:
        return np.zeros(0)

    def to_theta(self, rho: np.ndarray, q: int) -> np.ndarray:
        return np.zeros(0)

    def theta_jacobian(self, theta: np.ndarray, q: int) -> np.ndarray:
        """d rho / d theta, (n, n)."""
        return np.zeros((0, 0))

    def interior(self, theta: np.ndarray, q: int, limit: float) -> np.ndarray:
        """Mask of the correlations away from the boundary of their space."""
        return np.zeros(0, bool)


class _Single(Correlation):
    """One correlation, mapped from theta by a scaled tanh onto (lower bound, 1)."""

    prior = "uniform"

    def n_rho(self, q: int) -> int:
        return 1 if q >= 2 else 0

    def from_theta(self, theta, q):
        lo = self.lower_bound(q)
        return lo + (1.0 - lo) * (np.tanh(theta) + 1) / 2

    def to_theta(self, rho, q):
        lo = self.lower_bound(q)
        u = np.clip(2 * (np.asarray(rho, float) - lo) / (1.0 - lo) - 1, -1 + 1e-12, 1 - 1e-12)
        return np.arctanh(u)

    def theta_jacobian(self, theta, q):
        lo = self.lower_bound(q)
        return np.diag((1.0 - lo) / 2 / np.cosh(theta) ** 2)

    def interior(self, theta, q, limit):
        return np.abs(theta) < limit


class Exchangeable(_Single):
    """R = (1 - rho) I + rho 11' (positive definite for -1/(q-1) < rho < 1)."""

    def matrix(self, rho, q):
        return (1 - rho[0]) * np.eye(q) + rho[0]

    def jacobian(self, rho, q):
        return (np.ones((q, q)) - np.eye(q))[None]

    def matrix_pt(self, rho, q):
        import pytensor.tensor as pt

        return (1 - rho[0]) * pt.eye(q) + rho[0] * pt.ones((q, q))

    def lower_bound(self, q):
        return -1.0 / (q - 1) if q > 2 else -1.0

    def pair(self, rho, lag):
        return np.where(lag == 0, 1.0, rho)

    def pair_derivative(self, rho, lag):
        return np.where(lag == 0, 0.0, 1.0) + 0.0 * rho

    def pair_pt(self, rho, lag):
        import pytensor.tensor as pt

        return pt.switch(pt.eq(lag, 0), 1.0, rho)


def _lags(q: int) -> np.ndarray:
    return np.abs(np.subtract.outer(np.arange(q), np.arange(q)))


class Autoregressive(_Single):
    """R_ij = rho ** |i - j| (AR(1) over ordered levels)."""

    def matrix(self, rho, q):
        return rho[0] ** _lags(q)

    def jacobian(self, rho, q):
        lag = _lags(q)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(lag > 0, lag * rho[0] ** np.maximum(lag - 1, 0), 0.0)
        return d[None]

    def matrix_pt(self, rho, q):
        import pytensor.tensor as pt

        lag = _lags(q)
        return pt.switch(lag == 0, 1.0, pt.power(rho[0], lag))

    def pair(self, rho, lag):
        return np.where(lag == 0, 1.0, rho ** np.maximum(lag, 1))

    def pair_derivative(self, rho, lag):
        return np.where(lag == 0, 0.0, lag * rho ** np.maximum(lag - 1, 0))

    def pair_pt(self, rho, lag):
        import pytensor.tensor as pt

        return pt.switch(pt.eq(lag, 0), 1.0, pt.power(rho, pt.maximum(lag, 1)))


def cpc_to_correlation(z, q: int) -> np.ndarray:
    """Correlation matrix from canonical partial correlations ``z`` (metafor's pair order).

    The C-vine (onion) construction: ``z`` holds the partial correlation of each
    pair (i, j), i > j, given the levels before j. Works for complex input (used
    for complex-step derivatives).
    """
    i_idx, j_idx = lower_pairs(q)
    Z = np.zeros((q, q), dtype=np.result_type(z, float))
    Z[i_idx, j_idx] = z
    L = np.zeros((q, q), dtype=Z.dtype)
    L[0, 0] = 1.0
    for i in range(1, q):
        remaining = 1.0
        for j in range(i):
            L[i, j] = Z[i, j] * np.sqrt(remaining)
            remaining = remaining - L[i, j] ** 2
        L[i, i] = np.sqrt(remaining)
    return L @ L.T


def correlation_to_cpc(R: np.ndarray) -> np.ndarray:
    """Canonical partial correlations of a positive definite correlation matrix (metafor's pair order)."""
    L = np.linalg.cholesky(R)
    q = R.shape[0]
    Z = np.zeros((q, q))
    for i in range(1, q):
        remaining = 1.0
        for j in range(i):
            Z[i, j] = L[i, j] / np.sqrt(remaining)
            remaining -= L[i, j] ** 2
    return Z[lower_pairs(q)]


class Unstructured(Correlation):
    """A free correlation matrix: q(q-1)/2 correlations, through canonical partial correlations.

    theta maps to the canonical partial correlations by tanh and from them to a
    positive definite matrix (the onion construction), so every theta gives a
    valid matrix; the Bayesian engine gives the CPCs Beta priors that make R
    exactly LKJ-distributed.
    """

    prior = "lkj"

    def n_rho(self, q):
        return q * (q - 1) // 2

    def contains(self, other: Correlation) -> bool:
        return True

    def matrix(self, rho, q):
        R = np.eye(q)
        i, j = lower_pairs(q)
        R[i, j] = rho
        R[j, i] = rho
        return R

    def pair(self, rho, lag):  # two levels: one correlation, as an exchangeable matrix
        return Exchangeable.pair(self, rho, lag)

    def pair_derivative(self, rho, lag):
        return Exchangeable.pair_derivative(self, rho, lag)

    def pair_pt(self, rho, lag):
        return Exchangeable.pair_pt(self, rho, lag)

    def jacobian(self, rho, q):
        n = self.n_rho(q)
        out = np.zeros((n, q, q))
        i, j = lower_pairs(q)
        out[np.arange(n), i, j] = 1.0
        out[np.arange(n), j, i] = 1.0
        return out

    def matrix_pt(self, rho, q):
        import pytensor.tensor as pt

        i, j = lower_pairs(q)
        R = pt.set_subtensor(pt.eye(q)[i, j], rho)
        return pt.set_subtensor(R[j, i], rho)

    def from_theta(self, theta, q):
        return cpc_to_correlation(np.tanh(theta), q)[lower_pairs(q)]

    def to_theta(self, rho, q):
        z = correlation_to_cpc(self.matrix(np.asarray(rho, float), q))
        return np.arctanh(np.clip(z, -1 + 1e-12, 1 - 1e-12))

    def theta_jacobian(self, theta, q):
        """By complex-step differentiation (exact to rounding)."""
        n = len(theta)
        out = np.empty((n, n))
        h = 1e-30
        for k in range(n):
            step = np.asarray(theta, dtype=complex)
            step[k] += 1j * h
            out[:, k] = self.from_theta(step, q).imag / h
        return out

    def interior(self, theta, q, limit):
        # a singular correlation matrix puts all its correlations on the boundary
        inside = np.abs(theta) < limit
        if len(theta):
            inside &= np.linalg.eigvalsh(self.matrix(self.from_theta(theta, q), q)).min() > 1e-6
        return inside

    @staticmethod
    def correlations_pt(z, q: int):
        """The correlations (metafor's pair order) of the matrix with canonical partial
        correlations ``z`` (a PyTensor vector), as a PyTensor vector."""
        import pytensor.tensor as pt

        i_idx, j_idx = lower_pairs(q)
        position = {(int(i), int(j)): k for k, (i, j) in enumerate(zip(i_idx, j_idx))}
        L = [[pt.constant(0.0)] * q for _ in range(q)]
        L[0][0] = pt.constant(1.0)
        for i in range(1, q):
            remaining = pt.constant(1.0)
            for j in range(i):
                L[i][j] = z[position[i, j]] * pt.sqrt(remaining)
                remaining = remaining - L[i][j] ** 2
            L[i][i] = pt.sqrt(remaining)
        Lm = pt.stack([pt.stack(row) for row in L])
        return (Lm @ Lm.T)[i_idx, j_idx]


@dataclass(frozen=True)
class Structure:
    """A covariance structure for q random effects.

    Attributes
    ----------
    name : str
        ``"ID"``, ``"DIAG"``, ``"CS"``, ``"HCS"``, ``"AR"``, ``"HAR"`` or ``"UN"``.
    heterogeneous : bool
        One SD per level (True) or one shared SD (False).
    correlation : Correlation
        The family of correlation matrices.
    slopes : bool
        Whether the structure may be used for random intercepts and slopes.
    """

    name: str
    heterogeneous: bool
    correlation: Correlation
    slopes: bool = False

    @property
    def ordered(self) -> bool:
        """Whether the structure assumes ordered levels (time points), as AR and HAR do."""
        return isinstance(self.correlation, Autoregressive)

    def n_sd(self, q: int) -> int:
        return q if self.heterogeneous else 1

    def n_rho(self, q: int) -> int:
        return self.correlation.n_rho(q)

    def correlation_matrix(self, rho: np.ndarray, q: int) -> np.ndarray:
        """R for the given correlation parameters."""
        return self.correlation.matrix(rho, q) if self.n_rho(q) else np.eye(q)

    def sd_vector(self, sd: np.ndarray, q: int) -> np.ndarray:
        """The q SDs (a shared SD repeated)."""
        return np.asarray(sd, float) if self.heterogeneous else np.repeat(float(sd[0]), q)

    def covariance(self, sd: np.ndarray, rho: np.ndarray, q: int) -> np.ndarray:
        """G = D R D."""
        d = self.sd_vector(sd, q)
        return d[:, None] * self.correlation_matrix(rho, q) * d[None, :]

    def covariances(self, sd: np.ndarray, rho: np.ndarray, q: int) -> np.ndarray:
        """G of many parameter sets at once: ``sd`` (S, n_sd) and ``rho`` (S, n_rho) give (S, q, q);
        equal to :meth:`covariance` row by row."""
        sd = np.asarray(sd, float)
        d = sd if self.heterogeneous else np.repeat(sd[:, :1], q, axis=1)
        if self.n_rho(q):
            R = np.stack([self.correlation.matrix(r, q) for r in np.asarray(rho, float)])
        else:
            R = np.broadcast_to(np.eye(q), (len(sd), q, q))
        return d[:, :, None] * R * d[:, None, :]

    def jacobian(self, sd: np.ndarray, rho: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
        """(dG/dsd, dG/drho), of shapes (n_sd, q, q) and (n_rho, q, q)."""
        d = self.sd_vector(sd, q)
        R = self.correlation_matrix(rho, q)
        per_level = np.zeros((q, q, q))
        for j in range(q):
            per_level[j, j, :] += R[j, :] * d
            per_level[j, :, j] += R[:, j] * d
        d_sd = per_level if self.heterogeneous else per_level.sum(axis=0, keepdims=True)
        d_rho = self.correlation.jacobian(rho, q) if self.n_rho(q) else np.zeros((0, q, q))
        return d_sd, d[None, :, None] * d_rho * d[None, None, :]

    def covariance_pt(self, sd, rho, q: int):
        """G = D R D as a PyTensor expression (``sd`` and ``rho`` PyTensor vectors)."""
        import pytensor.tensor as pt

        d = pt.specify_shape(sd, (q,)) if self.heterogeneous else pt.alloc(sd[0], q)
        R = self.correlation.matrix_pt(rho, q) if self.n_rho(q) else pt.eye(q)
        return d[:, None] * R * d[None, :]

    def rho_lower_bound(self, q: int) -> float:
        """Smallest admissible single correlation (exchangeable: -1/(q-1))."""
        return self.correlation.lower_bound(q)

    def contains(self, other: "Structure") -> bool:
        """Whether every covariance matrix of ``other`` is one of this structure's, so that a
        model with ``other`` is nested in one with this structure (UN > HCS > CS > ID,
        UN > DIAG > ID, HAR > AR > ID, ...).

        Examples
        --------
        >>> [get_structure("UN").contains(get_structure(s)) for s in ("CS", "HAR", "DIAG")]
        [True, True, True]
        >>> get_structure("HCS").contains(get_structure("CS")), get_structure("CS").contains(get_structure("DIAG"))
        (True, False)
        """
        return (self.heterogeneous or not other.heterogeneous) and self.correlation.contains(other.correlation)


STRUCTURES = {s.name: s for s in (
    Structure("ID", False, Correlation()),
    Structure("DIAG", True, Correlation(), slopes=True),
    Structure("CS", False, Exchangeable()),
    Structure("HCS", True, Exchangeable()),
    Structure("AR", False, Autoregressive()),
    Structure("HAR", True, Autoregressive()),
    Structure("UN", True, Unstructured(), slopes=True),
)}

#: metafor's names of the slope structures.
ALIASES = {"GEN": "UN", "GDIAG": "DIAG"}
#: Structures of the effects of unordered levels (outcomes), of ordered levels (times) and of slopes.
UNORDERED = tuple(name for name, s in STRUCTURES.items() if not s.ordered)
GROUPED = tuple(STRUCTURES)
SLOPES = tuple(name for name, s in STRUCTURES.items() if s.slopes)


def get_structure(name: str) -> Structure:
    """Look up a structure by name (case-insensitive; metafor's GEN and GDIAG are aliases).

    Examples
    --------
    >>> get_structure("hcs").n_rho(3), get_structure("GEN").name
    (1, 'UN')
    """
    key = name.upper()
    return STRUCTURES[ALIASES.get(key, key)]
