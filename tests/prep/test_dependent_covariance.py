"""bm.vcalc against metafor's vcalc (fixtures from tests/reference/make_vcalc_reference.R), and
MetaModel fits with V = vcalc(...) against rma.mv."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from reference_tools import ABS_IC, FIXTURES, assert_close

import bayesmeta as bm
from bayesmeta.design.sampling_covariance import as_block_diagonal

FIXTURE = json.loads((FIXTURES / "vcalc.json").read_text())
CASES = FIXTURE["cases"]
MODELS = {m["name"]: m for m in FIXTURE["models"]}


def _rho(value):
    """A fixture rho: a number, a labelled matrix, or a pair of those."""
    if isinstance(value, dict):
        return pd.DataFrame(value["values"], index=value["labels"], columns=value["labels"])
    if isinstance(value, list):
        return tuple(_rho(v) for v in value)
    return value


def _call(case: dict) -> tuple[pd.DataFrame, bm.ClusterBlocks]:
    data = pd.DataFrame(case["data"])
    args = {k: (_rho(v) if k == "rho" else v) for k, v in case["args"].items()}
    return data, bm.vcalc(data=data, **args)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_metafor(case):
    data, V = _call(case)
    assert len(V) == len(case["blocks"]) and V.n == len(data)
    for ours, rows, theirs in zip(V.blocks, V.rows, case["blocks"]):
        np.testing.assert_array_equal(rows + 1, np.atleast_1d(theirs["rows"]))
        np.testing.assert_allclose(ours, np.array(theirs["block"]), rtol=1e-10, atol=1e-14)
    assert [str(c) for c in V.clusters] == [str(b["cluster"]) for b in case["blocks"]]


def test_dense_and_sparse_agree():
    data, V = _call(next(c for c in CASES if c["name"] == "synthetic all"))
    dense = V.to_dense()
    np.testing.assert_array_equal(V.to_sparse().toarray(), dense)
    np.testing.assert_array_equal(as_block_diagonal(V, len(data)).to_dense(), dense)
    s1 = (data["cl"] == "s1").to_numpy()
    assert np.all(dense[np.ix_(s1, ~s1)] == 0)
    assert np.allclose(dense, dense.T)


def _fit(model: dict, data: pd.DataFrame, formula: str, method: str):
    V = bm.vcalc(data=data, **{k: v for k, v in model["args"].items()})
    return bm.MetaModel(formula, data=data, V=V, random=model["random"]).fit(method)


def _assert_fit(fit, ref):
    assert_close(fit.coef.to_numpy(), ref["coef"], "coef")
    assert_close(fit.se.to_numpy(), ref["se"], "se")
    assert_close(fit.sigma2.to_numpy(), ref["sigma2"], "sigma2")
    assert abs(fit.loglik - ref["loglik"]) < ABS_IC


def test_three_level_fit_with_vcalc_matches_rma_mv():
    ref = MODELS["assink three-level"]
    data = pd.DataFrame(ref["data"])
    _assert_fit(_fit(ref, data, "yi ~ 1", "REML"), ref)


def test_fit_with_vcalc_does_not_depend_on_row_order():
    """Clusters interleaved and then shuffled: V covers non-contiguous rows."""
    ref = MODELS["synthetic ML"]
    data = pd.DataFrame(ref["data"])
    _assert_fit(_fit(ref, data, "yi ~ type", "ML"), ref)
    shuffled = data.sample(frac=1.0, random_state=3)
    _assert_fit(_fit(ref, shuffled, "yi ~ type", "ML"), ref)


def test_arrays_without_data_and_constant_variance():
    V = bm.vcalc(0.1, [1, 1, 2], obs=[1, 2, 1], rho=0.5)
    np.testing.assert_allclose(V.to_dense(), [[0.1, 0.05, 0], [0.05, 0.1, 0], [0, 0, 0.1]])


def test_shared_control_group_formula():
    """Two treatments against one control: cor = 1 / sqrt((1 + n_c/n_1)(1 + n_c/n_2))."""
    V = bm.vcalc([1.0, 1.0], [1, 1], grp1=["A", "B"], grp2=["C", "C"], w1=[10, 30], w2=[20, 20])
    expected = 1 / np.sqrt((1 + 20 / 10) * (1 + 20 / 30))
    assert V.blocks[0][0, 1] == pytest.approx(expected, rel=1e-12)
    equal = bm.vcalc([1.0, 1.0], [1, 1], grp1=["A", "B"], grp2=["C", "C"])
    assert equal.blocks[0][0, 1] == pytest.approx(0.5, rel=1e-12)


def test_model_accepts_cluster_blocks_of_wrong_size():
    V = bm.vcalc([0.1, 0.2], [1, 2])
    data = pd.DataFrame({"y": [0.1, 0.2, 0.3], "vi": 0.1})
    with pytest.raises(bm.SpecificationError, match="cover 2 rows but the data have 3 rows"):
        bm.MetaModel("y ~ 1", data=data, V=V)


BAD = pd.DataFrame({"s": [1, 1, 2, 2], "vi": [0.1, 0.2, 0.1, 0.1], "t": ["a", "b", "a", "b"],
                    "time": [0, 1, 0, 1], "g1": ["T", "U", "T", "T"], "g2": ["C", "C", "C", "C"],
                    "n": [10, 10, 10, 10]})


@pytest.mark.parametrize("kwargs, message", [
    (dict(vi="vi", cluster="nope"), "cluster: column 'nope' not found"),
    (dict(vi=[0.1, np.nan, 0.1, 0.1], cluster="s"), r"vi: missing values in rows 1\."),
    (dict(vi=[0.1, -0.2, 0.1, 0.1], cluster="s"), r"vi: must be positive and finite; rows 1 are not"),
    (dict(vi=[0.1, 0.2], cluster="s"), r"vi: has length 2, expected 4 \(one value per row\)"),
    (dict(vi="vi", cluster="s", type=["a", "b", "a"], rho=0.3), r"type: has length 3, expected 4"),
    (dict(vi="vi", cluster="s", type="t"), "rho: required when type is given"),
    (dict(vi="vi", cluster="s", rho=0.5), "rho: given without type or obs"),
    (dict(vi="vi", cluster="s", type="t", rho=1.5), r"rho: the between-type correlation must lie in \[-1, 1\]"),
    (dict(vi="vi", cluster="s", type="t", rho=np.eye(2)), "rho: with only type given, rho must be a number or a labelled DataFrame"),
    (dict(vi="vi", cluster="s", type="t", obs="g1", rho=0.5), r"rho: with both type and obs, give a pair"),
    (dict(vi="vi", cluster="s", type="t", obs="g1", rho=(np.eye(2), 0.5)), r"rho: give the within-type \(obs\) correlations"),
    (dict(vi="vi", cluster="s", type="t", rho=pd.DataFrame([[1.0]], index=["a"], columns=["a"])),
     "no row/column of the between-type correlation matrix for 'b'"),
    (dict(vi="vi", cluster="s", time="time", phi=1.0), r"phi: the autocorrelation must be a number in \[0, 1\)"),
    (dict(vi="vi", cluster="s", time="time", phi=-0.2), r"phi: .* in \[0, 1\)"),
    (dict(vi="vi", cluster="s", time="time"), "phi: required when time is given"),
    (dict(vi="vi", cluster="s", phi=0.5), "phi: given without time"),
    (dict(vi="vi", cluster="s", grp1="g1", grp2="g2", w1=[10, np.nan, 10, 10], w2="n"),
     r"w1: missing values in rows 1\."),
    (dict(vi="vi", cluster="s", grp1="g1", grp2="g2", w1="n", w2=[10, 0, 10, 10]),
     r"w2: must be positive and finite; rows 1"),
    (dict(vi="vi", cluster="s", w1="n"), "w1, w2: group weights need grp1"),
    (dict(vi="vi", cluster="s", grp2="g2"), "grp2: given without grp1"),
    (dict(vi="vi", cluster="s", grp1="g1", grp2="g1"), "contrast a group with itself"),
])
def test_errors_name_the_problem(kwargs, message):
    with pytest.raises(bm.SpecificationError, match=message):
        bm.vcalc(data=BAD, **kwargs)


def test_block_not_positive_semi_definite_names_the_cluster():
    with pytest.raises(bm.SpecificationError, match=r"not positive semi-definite in clusters 'b'|clusters b;"):
        bm.vcalc([1.0] * 4, ["a", "b", "b", "b"], obs=[1, 1, 2, 3], rho=-0.9)
