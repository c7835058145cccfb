"""Data sets and models shared by several test modules (simulated data, the paper's
examples in long format, within-study covariance blocks)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from reference_tools import FIXTURES

import bayesmeta as bm

#: Measurement times of the gliomas data (months).
TIMES = [6, 12, 18, 24]
GL_JSON = FIXTURES / "alcohol_gl_covariances.json"


def dense_sigma(model, theta):
    """V + Z Psi Z' with explicit random-effect design matrices (one column per group x effect)."""
    d = model.design
    sigma = d.V.to_dense()
    for enc, G in zip(d.encodings, model.param.covariances(theta)):
        n_groups = enc.codes.max() + 1
        zrow = np.ones((d.n, 1)) if enc.Z is None else enc.Z
        q = zrow.shape[1]
        Z = np.zeros((d.n, n_groups * q))
        for i in range(d.n):
            Z[i, enc.codes[i] * q:(enc.codes[i] + 1) * q] = zrow[i]
        sigma += Z @ np.kron(np.eye(n_groups), G) @ Z.T
    return sigma


def simulated(seed=0, n_clusters=12):
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_clusters):
        for s in range(rng.integers(1, 4)):
            for t in range(rng.integers(1, 4)):
                rows.append({"cluster": c, "sub": s, "time": t, "x": rng.normal(), "vi": rng.uniform(0.02, 0.2)})
    dat = pd.DataFrame(rows)
    dat["yi"] = rng.normal(0.3 + 0.2 * dat["x"], np.sqrt(dat["vi"] + 0.05))
    dat["row"] = np.arange(len(dat))
    return dat


def blocks_v(dat, rho=0.4):
    blocks = []
    for _, g in dat.groupby("cluster", sort=False):
        sd = np.sqrt(g["vi"].to_numpy())
        blocks.append(np.outer(sd, sd) * (rho + (1 - rho) * np.eye(len(g))))
    return blocks


MODELS = {
    "standard": dict(formula="yi ~ 1 + x", random=None),
    "three-level": dict(formula="yi ~ 1", random="~ 1 | cluster/sub"),
    "four-level": dict(formula="yi ~ x", random="~ 1 | cluster/sub/row"),
    "CS": dict(formula="yi ~ 1", random="~ time | cluster", struct="CS"),
    "HCS": dict(formula="yi ~ 1", random="~ time | cluster", struct="HCS"),
    "AR": dict(formula="yi ~ 1", random="~ time | cluster", struct="AR"),
    "HAR": dict(formula="yi ~ x", random="~ time | cluster", struct="HAR"),
    "UN": dict(formula="yi ~ 1", random="~ time | cluster", struct="UN"),
    "DIAG": dict(formula="yi ~ 1", random="~ time | cluster", struct="DIAG"),
    "ID": dict(formula="yi ~ 1", random="~ time | cluster", struct="ID"),
    "slopes UN": dict(formula="yi ~ x", random="~ 1 + x | cluster"),
    "slopes DIAG": dict(formula="yi ~ x", random="~ 1 + x | cluster", struct="DIAG"),
    "nested + UN": dict(formula="yi ~ 1", random=["~ 1 | cluster/sub", "~ time | cluster"], struct="UN"),
    "two structured": dict(formula="yi ~ 1", random=["~ time | cluster", "~ 1 + x | sub"], struct=["HAR", "DIAG"]),
    "V blocks": dict(formula="yi ~ x", random="~ 1 | cluster/sub", V=True),
    "CS fixed rho": dict(formula="yi ~ 1", random="~ time | cluster", struct="CS", fixed={"rho": 0.3}),
    "nested, one fixed": dict(formula="yi ~ 1", random="~ 1 | cluster/sub", fixed={"sigma2": [None, 0.02]}),
}


def model_case(spec, dat):
    spec = dict(spec)
    use_v = spec.pop("V", False)
    return bm.MetaModel(data=dat, **({"V": blocks_v(dat)} if use_v else {"vi": "vi"}), **spec)


def berkey_blocks(dat: pd.DataFrame) -> list[np.ndarray]:
    """Per trial, the 2 x 2 block formed by the v1i, v2i columns of its rows."""
    return [g[["v1i", "v2i"]].to_numpy() for _, g in dat.groupby("trial", sort=False)]


def gliomas_data() -> pd.DataFrame:
    dat = bm.datasets.load("gliomas")
    dat = dat[dat["logOR"].notna()].reset_index(drop=True)
    dat["tf"] = pd.Categorical(dat["time"], categories=TIMES)
    dat["tc"] = dat["time"] - 15
    return dat


def har_within(dat: pd.DataFrame, phi: float = 0.61) -> list[np.ndarray]:
    """Within-study V: heterogeneous AR(1) over the time index with correlation phi."""
    blocks = []
    for _, g in dat.groupby("study", sort=False):
        sd = np.sqrt(g["logORvar"].to_numpy())
        idx = np.array([TIMES.index(t) for t in g["time"]])
        blocks.append(np.outer(sd, sd) * phi ** np.abs(np.subtract.outer(idx, idx)))
    return blocks


def smoking_long() -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Long format over outcomes B, C, D (missing dropped) with the vech covariance blocks."""
    wide = bm.datasets.load("smoking")
    vech = {("B", "B"): "SBB", ("B", "C"): "SBC", ("B", "D"): "SBD", ("C", "C"): "SCC", ("C", "D"): "SCD",
            ("D", "D"): "SDD"}
    rows, blocks = [], []
    for _, r in wide.iterrows():
        present = [o for o in "BCD" if not np.isnan(r[f"y{o}"])]
        rows += [{"study": r["study"], "outcome": o, "y": r[f"y{o}"]} for o in present]
        blocks.append(np.array([[r[vech[tuple(sorted((a, b)))]] for b in present] for a in present]))
    return pd.DataFrame(rows), blocks


def alcohol_model(V_kind: str):
    dat = bm.datasets.load("alcohol")
    sub = dat[dat["se"].notna()].reset_index(drop=True)
    if V_kind == "diag":
        return sub, {"vi": sub["se"] ** 2}
    with open(GL_JSON) as fh:
        S = json.load(fh)["S"]
    ids = list(dict.fromkeys(sub["id"]))
    return sub, {"V": [np.array(S[i]) for i in ids]}


def berkey_model():
    dat = bm.datasets.load("berkey1998")
    return bm.MetaModel("yi ~ 0 + outcome", data=dat, V=berkey_blocks(dat), random="~ outcome | trial",
                        struct="UN")


def whitened(design, beta, G, effects):
    Z = dense_Z(design)
    V = design.V.to_dense()
    out = []
    for s in range(len(beta)):
        Gfull = np.zeros((Z.shape[1], Z.shape[1]))
        offset = 0
        for enc, g in zip(design.encodings, G):
            size = enc.term.n_groups * enc.term.q
            Gfull[offset:offset + size, offset:offset + size] = np.kron(np.eye(enc.term.n_groups), g[s])
            offset += size
        Sigma = V + Z @ Gfull @ Z.T
        GZt = Gfull @ Z.T
        mean = GZt @ np.linalg.solve(Sigma, design.y - design.X @ beta[s])
        cov = Gfull - GZt @ np.linalg.solve(Sigma, GZt.T)
        u = np.concatenate([e[s].ravel() for e in effects])
        out.append(np.linalg.solve(np.linalg.cholesky(cov), u - mean))
    return np.array(out)


def dense_Z(design) -> np.ndarray:
    blocks = []
    for enc in design.encodings:
        q = enc.term.q
        Z = np.zeros((design.n, enc.term.n_groups * q))
        rows = np.arange(design.n)
        for j in range(q):
            Z[rows, enc.codes * q + j] = 1.0 if enc.Z is None else enc.Z[:, j]
        blocks.append(Z)
    return np.hstack(blocks)


def ishak_long() -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Long format (time 1..4, missing dropped, ordered by study then time) and the
    within-study V with AR correlation phi = 0.97 over time."""
    wide = bm.datasets.load("ishak2007")
    parts = [pd.DataFrame({"study": wide["study"], "time": t, "yi": wide[f"y{t}i"], "vi": wide[f"v{t}i"]})
             for t in range(1, 5)]
    long = pd.concat(parts).dropna(subset=["yi"])
    long = long.sort_values(["study", "time"], kind="stable").reset_index(drop=True)
    blocks = []
    for _, g in long.groupby("study", sort=False):
        sd = np.sqrt(g["vi"].to_numpy())
        t = g["time"].to_numpy()
        blocks.append(np.outer(sd, sd) * 0.97 ** np.abs(np.subtract.outer(t, t)))
    return long, blocks
