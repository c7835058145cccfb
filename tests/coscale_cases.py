"""Bivariate meta-analyses whose SDs and correlation depend on a study-level moderator (scale models of
structured terms, issue 17 item 1): a seeded simulation with missing outcomes, and the dense marginal
covariance written out pair by pair, independently of the package's encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: log tau^2 of (outcome, habitat): columns of "~ 0 + outcome + outcome:habitat" are
#: [A, B, A:terrestrial, B:terrestrial].
ALPHA = np.array([-3.0, -2.5, 1.0, -1.0])
#: atanh(rho) = zeta0 + zeta1 * terrestrial
ZETA = np.array([0.2, 1.0])
BETA = {"A": 0.3, "B": -0.1}
SAMPLING_CORRELATION = 0.4


def log_variance(outcome: np.ndarray, terrestrial: np.ndarray, alpha=ALPHA) -> np.ndarray:
    """log tau^2 of rows with these outcomes ("A"/"B") and habitats (1: terrestrial)."""
    b = outcome == "B"
    return np.where(b, alpha[1], alpha[0]) + terrestrial * np.where(b, alpha[3], alpha[2])


def simulate(seed: int, n_studies: int = 60, missing: float = 0.1) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Two outcomes per study, each missing with probability ``missing``; per study a habitat
    (``marine``/``terrestrial``), sampling variances and the sampling covariance blocks (row order)."""
    rng = np.random.default_rng(seed)
    rows, blocks = [], []
    for j in range(n_studies):
        terrestrial = int(rng.random() < 0.5)
        tau = np.exp(0.5 * log_variance(np.array(["A", "B"]), terrestrial))
        rho = np.tanh(ZETA[0] + ZETA[1] * terrestrial)
        G = np.outer(tau, tau) * np.array([[1, rho], [rho, 1]])
        v = rng.uniform(0.01, 0.05, 2)
        V = np.outer(np.sqrt(v), np.sqrt(v)) * np.array([[1, SAMPLING_CORRELATION], [SAMPLING_CORRELATION, 1]])
        y = np.array([BETA["A"], BETA["B"]]) + rng.multivariate_normal(np.zeros(2), G + V)
        keep = rng.random(2) >= missing
        if not keep.any():
            continue
        for i in np.flatnonzero(keep):
            rows.append({"study": f"s{j + 1}", "outcome": "AB"[i], "habitat": ("marine", "terrestrial")[terrestrial],
                         "yi": y[i], "vi": v[i]})
        blocks.append(V[np.ix_(keep, keep)])
    return pd.DataFrame(rows), blocks


def dense_sigma(dat: pd.DataFrame, blocks: list[np.ndarray], alpha: np.ndarray, zeta: np.ndarray,
                correlation: str = "exchangeable") -> np.ndarray:
    """V + the random part, pair by pair: tau_i tau_k R(rho_study)[l(i), l(k)] for rows of one study."""
    from scipy.linalg import block_diag

    terrestrial = (dat["habitat"] == "terrestrial").to_numpy(int)
    outcome = dat["outcome"].to_numpy()
    tau = np.exp(0.5 * log_variance(outcome, terrestrial, alpha))
    rho = np.tanh(zeta[0] + zeta[1] * terrestrial)
    S = block_diag(*blocks)
    study = dat["study"].to_numpy()
    for i in range(len(dat)):
        for k in range(len(dat)):
            if study[i] != study[k]:
                continue
            lag = abs(int(outcome[i] == "B") - int(outcome[k] == "B"))
            r = 1.0 if lag == 0 else (rho[i] if correlation == "exchangeable" else rho[i] ** lag)
            S[i, k] += tau[i] * tau[k] * r
    return S
