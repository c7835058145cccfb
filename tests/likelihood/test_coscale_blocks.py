"""Issue 17, items 2 and 4 (ML/REML): the likelihood of scale models with block V and of the proportional
sampling-variance model (``V_scale=``) against a dense multivariate-normal likelihood written here, its
gradient against finite differences, and the errors (fits: tests/engines/mode/test_coscale_fits.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import block_diag

import bayesmeta as bm
from bayesmeta.engines.mode.objective import Objective
from tests.cases import berkey_blocks

LOG_2PI = np.log(2 * np.pi)


def dense_loglik(y: np.ndarray, X: np.ndarray, Sigma: np.ndarray, reml: bool) -> float:
    """Profiled (restricted) normal log-likelihood from the full n x n Sigma."""
    n, p = X.shape
    Si = np.linalg.inv(Sigma)
    A = X.T @ Si @ X
    beta = np.linalg.solve(A, X.T @ Si @ y)
    r = y - X @ beta
    quad = r @ Si @ r
    logdet = np.linalg.slogdet(Sigma)[1]
    if reml:
        return -0.5 * ((n - p) * LOG_2PI - np.linalg.slogdet(X.T @ X)[1] + np.linalg.slogdet(A)[1] + logdet + quad)
    return -0.5 * (n * LOG_2PI + logdet + quad)


def clustered_data(seed: int = 3) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Clusters of 1-3 rows with random positive-definite sampling covariance blocks."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 4, 14)
    blocks = []
    for m in sizes:
        A = rng.normal(size=(m, m)) * 0.1
        blocks.append(A @ A.T + np.diag(rng.uniform(0.02, 0.1, m)))
    cluster = np.repeat(np.arange(len(sizes)), sizes)
    n = len(cluster)
    dat = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n), "z": rng.normal(size=n),
                        "w": rng.uniform(0, 1, n), "cluster": cluster,
                        "c": rng.normal(size=len(sizes))[cluster]})
    dat["vi"] = np.concatenate([np.diag(b) for b in blocks])
    return dat, blocks


def berkey() -> tuple[pd.DataFrame, list[np.ndarray]]:
    dat = bm.datasets.load("berkey1998")
    rng = np.random.default_rng(11)
    dat["z"] = rng.normal(size=len(dat))
    dat["w"] = rng.uniform(0, 1, len(dat))
    return dat, berkey_blocks(dat)


def dense_V(blocks: list[np.ndarray]) -> np.ndarray:
    """The n x n matrix of the blocks on its diagonal."""
    return block_diag(*blocks)


def _columns(dat: pd.DataFrame, names: list[str]) -> np.ndarray:
    return np.column_stack([np.ones(len(dat)) if c == "1" else dat[c].to_numpy(float) for c in names])


CASES = [
    # (data, V kind, MetaModel keywords)
    ("berkey", "blocks", {"formula": "yi ~ 0 + outcome", "scale": "~ z"}),
    ("berkey", "blocks", {"formula": "yi ~ 0 + outcome", "V_scale": "~ w"}),
    ("berkey", "blocks", {"formula": "yi ~ 0 + outcome", "scale": "~ z", "V_scale": "~ 1"}),
    ("clustered", "blocks", {"formula": "y ~ x", "scale": "~ z", "V_scale": "~ w"}),
    ("clustered", "blocks", {"formula": "y ~ x", "random": "~ 1 | cluster", "scale": "~ c"}),
    ("clustered", "blocks", {"formula": "y ~ x", "random": "~ 1 | cluster", "scale": "~ c", "V_scale": "~ w"}),
    ("clustered", "diagonal", {"formula": "y ~ x", "scale": "~ z", "V_scale": "~ w"}),
    ("clustered", "diagonal", {"formula": "y ~ x", "random": [], "V_scale": "~ 1 + w"}),
]


def _model(data_name: str, v_kind: str, kw: dict) -> tuple[bm.MetaModel, pd.DataFrame, list[np.ndarray]]:
    dat, blocks = berkey() if data_name == "berkey" else clustered_data()
    kw = dict(kw)
    formula = kw.pop("formula")
    if v_kind == "blocks":
        model = bm.MetaModel(formula, data=dat, V=blocks, **kw)
    else:
        model = bm.MetaModel(formula, data=dat, vi="vi", **kw)
        blocks = [np.array([[v]]) for v in dat["vi"]]
    return model, dat, blocks


def _sigma(model: bm.MetaModel, dat: pd.DataFrame, blocks: list[np.ndarray], theta: np.ndarray) -> np.ndarray:
    """Sigma built here from the reported coefficients alpha, delta and the data's columns."""
    param = model.param
    V = dense_V(blocks)
    if model.V_scale is not None:
        names = ["1" if c == "Intercept" else c for c in param.delta_names()]
        d = np.exp(_columns(dat, names) @ param.delta(theta))
        V = np.sqrt(np.outer(d, d)) * V
    Sigma = V.copy()
    if not param.terms:
        return Sigma
    if model.random is None:
        same = np.eye(len(dat))
    else:
        same = (dat["cluster"].to_numpy()[:, None] == dat["cluster"].to_numpy()[None, :]).astype(float)
    sc = param.scale_models[0] if param.scale_models else None
    if sc is None:
        variance = np.full(len(dat), param.natural(theta)[0][0][0] ** 2)  # tau^2 or sigma^2: sd_unit exp(theta)
    else:
        names = ["1" if c == "Intercept" else c for c in sc.names]
        variance = np.exp(_columns(dat, names) @ param.alpha(theta))  # per row (constant within clusters)
    return Sigma + same * variance[:, None]


@pytest.mark.parametrize("case", CASES, ids=[f"{d}-{v}-{'/'.join(f'{a}={b}' for a, b in kw.items() if a != 'formula')}"
                                             for d, v, kw in CASES])
def test_likelihood_and_gradient_equal_dense(case):
    model, dat, blocks = _model(*case)
    assert model.design.nested is None  # the batched path
    rng = np.random.default_rng(5)
    X = model.design.X
    y = model.design.y
    for reml in (False, True):
        objective = Objective(model.design, model.param, reml)
        for _ in range(3):
            theta = rng.normal(scale=0.7, size=model.param.n_free)
            expected = dense_loglik(y, X, _sigma(model, dat, blocks, theta), reml)
            assert objective.loglik(theta) == pytest.approx(expected, rel=1e-8, abs=1e-8)
            grad = -objective.gradient(theta)
            h = 1e-5
            fd = np.array([(objective.loglik(theta + h * e) - objective.loglik(theta - h * e)) / (2 * h)
                           for e in np.eye(len(theta))])
            np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(fd).max()))


def test_equal_sampling_variances_with_row_heterogeneity_refused():
    dat = bm.datasets.load("bcg").assign(v=0.1)
    with pytest.raises(bm.SpecificationError, match="V_scale: every row has the same sampling variance"):
        bm.MetaModel("logrr ~ 1", data=dat, vi="v", V_scale="~ 1")
    # without the row-level effect (UWLS) it is identified
    fit = bm.MetaModel("logrr ~ 1", data=dat, vi="v", random=[], V_scale="~ 1").fit("REML")
    assert np.isfinite(fit.delta_se["Intercept"])


def test_v_scale_argument_errors(tmp_path):
    dat = bm.datasets.load("bcg")
    canary = tmp_path / "canary"
    for payload in (f"__import__('pathlib').Path({str(canary)!r}).touch()", f"open({str(canary)!r}, 'w').close()"):
        with pytest.raises(bm.SpecificationError, match="V_scale"):
            bm.MetaModel("logrr ~ 1", data=dat, vi="logrrvar", V_scale=f"~ I({payload})")
        assert not canary.exists()
    with pytest.raises(bm.SpecificationError, match="V_scale: expected a one-sided formula"):
        bm.MetaModel("logrr ~ 1", data=dat, vi="logrrvar", V_scale="logrr ~ 1")
    with pytest.raises(bm.SpecificationError, match="V_scale"):
        bm.MetaModel("logrr ~ 1", data=dat, vi="logrrvar", V_scale="~ nonexistent")
    model = bm.MetaModel("logrr ~ 1", data=dat, vi="logrrvar", random=[], V_scale="~ 1")
    with pytest.raises(bm.SpecificationError, match="method: 'FE'"):
        model.fit("FE")


@pytest.mark.parametrize("case", [c for c in CASES if "V_scale" not in c[2]],
                         ids=[f"{d}-{v}-{kw.get('random')}" for d, v, kw in CASES if "V_scale" not in kw])
def test_pytensor_graph_equals_dense(case):
    """The Bayesian engine's graph (batched path, group variances exp(W alpha)) against the dense
    density at arbitrary beta (ML) and, with the restricted term, REML at the GLS beta (1e-8)."""
    pytensor = pytest.importorskip("pytensor")
    import pytensor.tensor as pt

    from bayesmeta.likelihood.graph import block_loglik

    model, dat, blocks = _model(*case)
    param, design = model.param, model.design
    beta_v, alpha_v = pt.vector("beta"), pt.vector("alpha")
    G = [None if sc is not None else pt.matrix(f"G{k}") for k, sc in enumerate(param.scale_models)]
    variances = [None if sc is None else pt.exp(pt.dot(sc.W, alpha_v[param.alpha_slice(k)]))
                 for k, sc in enumerate(param.scale_models)]
    inputs = [beta_v, alpha_v] + [g for g in G if g is not None]
    logp, term = block_loglik(design, beta_v, G, restricted=True, variances=variances)
    f = pytensor.function(inputs, [logp.sum(), term], mode="FAST_COMPILE", on_unused_input="ignore")
    rng = np.random.default_rng(8)
    for _ in range(2):
        theta = rng.normal(scale=0.7, size=param.n_free)
        Sigma = _sigma(model, dat, blocks, theta)
        others = [g for g in param.covariances(theta) if g is not None]
        beta = rng.normal(0, 0.3, design.p)
        full, _ = f(beta, param.alpha(theta), *others)
        r = design.y - design.X @ beta
        expected = -0.5 * (len(r) * LOG_2PI + np.linalg.slogdet(Sigma)[1] + r @ np.linalg.solve(Sigma, r))
        assert full == pytest.approx(expected, rel=1e-8, abs=1e-8)
        ev = Objective(design, param, True).evaluate(theta)
        full, restricted = f(ev.beta, param.alpha(theta), *others)
        assert full + restricted == pytest.approx(dense_loglik(design.y, design.X, Sigma, True), rel=1e-8, abs=1e-8)
