"""Shared pieces of the inference tests: the inference fixture, the BCG data it was
made from, and the fitted mixed model written out with dense n x n matrices."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from cases import dense_Z
from location_scale_cases import simulate
from reference_tools import FIXTURES, assert_close
from scipy.linalg import block_diag

import bayesmeta as bm

with open(FIXTURES / "inference.json") as fh:
    REF = json.load(fh)
BCG = pd.DataFrame({k: REF["datasets"]["bcg"][k] for k in ("trial", "ablat", "yi", "vi")})


class Dense:
    """The fitted mixed model with explicit n x n matrices (for tests only)."""

    def __init__(self, fit):
        d, param, theta = fit.design, fit.param, fit.estimate.theta
        self.Z = dense_Z(d)
        variances, _ = param.group_variances(theta)
        blocks = [np.diag(v) if param.scale_of(k) is not None else np.kron(np.eye(enc.term.n_groups), g)
                  for k, (enc, g, v) in enumerate(zip(d.encodings, param.covariances(theta), variances))]
        self.G = block_diag(*blocks)
        self.starts = np.cumsum([0] + [b.shape[0] for b in blocks])
        W = np.linalg.inv(d.V.to_dense() + self.Z @ self.G @ self.Z.T)
        self.X = d.X
        self.vb = np.linalg.inv(d.X.T @ W @ d.X)
        self.b = self.vb @ d.X.T @ W @ d.y
        assert_close(self.b, fit.coef.to_numpy(), "dense GLS estimate", rel=1e-7)
        GZtW = self.G @ self.Z.T @ W
        self.u = GZtW @ (d.y - d.X @ self.b)
        P = W - W @ d.X @ self.vb @ d.X.T @ W
        self.pev = self.G - self.G @ self.Z.T @ P @ self.Z @ self.G
        self.cov_bu = -self.vb @ d.X.T @ GZtW.T

    def predict(self, x0: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prediction ``x0' b + a' u`` and the SD of its prediction error, for rows of x0 and a."""
        pred = x0 @ self.b + a @ self.u
        var = (np.einsum("ji,ik,jk->j", x0, self.vb, x0) + np.einsum("ji,ik,jk->j", a, self.pev, a)
               + 2 * np.einsum("ji,ik,jk->j", x0, self.cov_bu, a))
        return pred, np.sqrt(var)

    def effects(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """BLUPs and prediction-error SDs of term k's effects (cluster-major order)."""
        part = slice(self.starts[k], self.starts[k + 1])
        return self.u[part], np.sqrt(np.diag(self.pev)[part])


def location_scale_fit():
    dat = simulate(3, n_districts=10)
    return bm.MetaModel("yi ~ x", data=dat, vi="vi", random="~ 1 | district/study",
                        scale={"district": "~ w", "study": "~ z"}).fit()
