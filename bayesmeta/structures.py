"""Covariance structures of random effects, each defined once.

A structure maps standard deviations ``sd`` and correlations ``rho`` to a
q x q covariance matrix ``G = D R D`` with ``D = diag(sd)``. It knows how many
of each parameter it has for q levels, and gives the derivatives of G with
respect to them (used by the likelihood's analytic gradient).

| name | SDs | correlation matrix R |
|------|-----|----------------------|
| ID   | 1   | identity             |
| DIAG | q   | identity             |
| CS   | 1   | exchangeable rho     |
| HCS  | q   | exchangeable rho     |
| AR   | 1   | rho ** abs(i - j)    |
| HAR  | q   | rho ** abs(i - j)    |
| UN   | q   | free, q(q-1)/2       |
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Structure:
    """A covariance structure for q random effects.

    Attributes
    ----------
    name : str
        ``"ID"``, ``"DIAG"``, ``"CS"``, ``"HCS"``, ``"AR"``, ``"HAR"`` or ``"UN"``.
    heterogeneous : bool
        One SD per level (True) or one shared SD (False).
    correlation : str
        ``"none"``, ``"exchangeable"``, ``"ar"`` or ``"unstructured"``.
    """

    name: str
    heterogeneous: bool
    correlation: str

    def n_sd(self, q: int) -> int:
        return q if self.heterogeneous else 1

    def n_rho(self, q: int) -> int:
        if self.correlation == "none" or q < 2:
            return 0
        if self.correlation == "unstructured":
            return q * (q - 1) // 2
        return 1

    def correlation_matrix(self, rho: np.ndarray, q: int) -> np.ndarray:
        """R for the given correlation parameters."""
        if self.n_rho(q) == 0:
            return np.eye(q)
        if self.correlation == "exchangeable":
            return (1 - rho[0]) * np.eye(q) + rho[0]
        if self.correlation == "ar":
            lag = np.abs(np.subtract.outer(np.arange(q), np.arange(q)))
            return rho[0] ** lag
        R = np.eye(q)
        R[np.tril_indices(q, -1)] = rho
        return np.tril(R) + np.tril(R, -1).T

    def correlation_jacobian(self, rho: np.ndarray, q: int) -> np.ndarray:
        """dR/drho as an array of shape (n_rho, q, q)."""
        n = self.n_rho(q)
        if n == 0:
            return np.zeros((0, q, q))
        if self.correlation == "exchangeable":
            return (np.ones((q, q)) - np.eye(q))[None]
        if self.correlation == "ar":
            lag = np.abs(np.subtract.outer(np.arange(q), np.arange(q)))
            with np.errstate(divide="ignore", invalid="ignore"):
                d = np.where(lag > 0, lag * rho[0] ** np.maximum(lag - 1, 0), 0.0)
            return d[None]
        out = np.zeros((n, q, q))
        i, j = np.tril_indices(q, -1)
        out[np.arange(n), i, j] = 1.0
        out[np.arange(n), j, i] = 1.0
        return out

    def sd_vector(self, sd: np.ndarray, q: int) -> np.ndarray:
        """The q SDs (a shared SD repeated)."""
        return np.asarray(sd, float) if self.heterogeneous else np.repeat(float(sd[0]), q)

    def covariance(self, sd: np.ndarray, rho: np.ndarray, q: int) -> np.ndarray:
        """G = D R D."""
        d = self.sd_vector(sd, q)
        return d[:, None] * self.correlation_matrix(rho, q) * d[None, :]

    def jacobian(self, sd: np.ndarray, rho: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
        """(dG/dsd, dG/drho), of shapes (n_sd, q, q) and (n_rho, q, q)."""
        d = self.sd_vector(sd, q)
        R = self.correlation_matrix(rho, q)
        per_level = np.zeros((q, q, q))
        for j in range(q):
            per_level[j, j, :] += R[j, :] * d
            per_level[j, :, j] += R[:, j] * d
        d_sd = per_level if self.heterogeneous else per_level.sum(axis=0, keepdims=True)
        d_rho = d[None, :, None] * self.correlation_jacobian(rho, q) * d[None, None, :]
        return d_sd, d_rho

    def covariance_pt(self, sd, rho, q: int):
        """G = D R D as a PyTensor expression (sd and rho are PyTensor vectors, rho in
        the order of :meth:`correlation_matrix`: lower triangle, row by row)."""
        import pytensor.tensor as pt

        d = sd if self.heterogeneous else pt.repeat(sd[:1], q)
        if self.n_rho(q) == 0:
            R = pt.eye(q)
        elif self.correlation == "exchangeable":
            R = (1 - rho[0]) * pt.eye(q) + rho[0] * pt.ones((q, q))
        elif self.correlation == "ar":
            lag = np.abs(np.subtract.outer(np.arange(q), np.arange(q)))
            R = pt.switch(lag == 0, 1.0, pt.power(rho[0], lag))
        else:
            i, j = np.tril_indices(q, -1)
            R = pt.set_subtensor(pt.eye(q)[i, j], rho)
            R = pt.set_subtensor(R[j, i], rho)
        return d[:, None] * R * d[None, :]

    def rho_lower_bound(self, q: int) -> float:
        """Smallest correlation keeping R positive definite (exchangeable: -1/(q-1))."""
        if self.correlation == "exchangeable" and q > 2:
            return -1.0 / (q - 1)
        return -1.0


STRUCTURES = {
    "ID": Structure("ID", False, "none"),
    "DIAG": Structure("DIAG", True, "none"),
    "CS": Structure("CS", False, "exchangeable"),
    "HCS": Structure("HCS", True, "exchangeable"),
    "AR": Structure("AR", False, "ar"),
    "HAR": Structure("HAR", True, "ar"),
    "UN": Structure("UN", True, "unstructured"),
}


def get_structure(name: str) -> Structure:
    """Look up a structure by name (case-insensitive)."""
    return STRUCTURES[name.upper()]
