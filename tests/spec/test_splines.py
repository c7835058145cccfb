"""Tests for bayesmeta.splines against R's splines::ns reference values."""

import json

import numpy as np
import pandas as pd
import pytest
from formulaic import model_matrix
from reference_tools import FIXTURES

import bayesmeta as bm
from bayesmeta.spec.splines import ns, ns_basis  # noqa: F401  (ns used by formulas)

FIXTURE = FIXTURES / "ns_basis.json"
CASES = {c["name"]: c for c in json.loads(FIXTURE.read_text())["cases"]}


def _kwargs(args: dict) -> dict:
    return {k: (np.atleast_1d(v).tolist() if k.endswith("knots") else v)
            for k, v in args.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_r(name):
    case = CASES[name]
    got = ns_basis(np.array(case["x"]), **_kwargs(case["args"]))
    expected = np.array(case["basis"], dtype=float)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


def test_df_quantile_knots_match_r():
    case = CASES["c_df4"]
    from bayesmeta.spec.splines import _default_knots

    ik, bk = _default_knots(np.array(case["x"]), 4, None, None, False)
    np.testing.assert_allclose(ik, case["knots"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(bk, case["boundary_knots"], rtol=0, atol=1e-12)


def _dose_frame():
    case = CASES["a_knots"]
    x = np.array(case["x"])
    return pd.DataFrame({"y": np.sin(x / 10), "dose": x}), case


def test_formulaic_model_matrix_and_prediction():
    df, case = _dose_frame()
    mm = model_matrix("y ~ ns(dose, knots=[10, 25])", df)
    X = mm.rhs
    names = [f"ns(dose, knots=[10, 25])[{j}]" for j in (1, 2, 3)]
    assert list(X.columns) == ["Intercept", *names]
    np.testing.assert_allclose(X[names].to_numpy(), case["basis"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(X["Intercept"], 1.0)

    state = next(iter(mm.rhs.model_spec.transform_state.values()))
    np.testing.assert_allclose(state["boundary_knots"], case["boundary_knots"])

    # New data must be encoded with the stored knots (R's predict.ns).
    pred = CASES["f_predict"]
    new = pd.DataFrame({"dose": pred["x"]})
    Xnew = mm.rhs.model_spec.get_model_matrix(new)
    assert list(Xnew.columns) == list(X.columns)
    np.testing.assert_allclose(Xnew[names].to_numpy(), pred["basis"], rtol=0, atol=1e-10)


def test_formulaic_df_stores_knots():
    df, _ = _dose_frame()
    mm = model_matrix("y ~ ns(dose, df=3)", df)
    state = next(iter(mm.rhs.model_spec.transform_state.values()))
    expected = ns_basis(df["dose"], df=3)
    np.testing.assert_allclose(
        mm.rhs.drop(columns="Intercept").to_numpy(), expected, atol=1e-12)
    # two interior knots at the 1/3 and 2/3 quantiles, kept for new data
    assert len(state["knots"]) == 2
    new = pd.DataFrame({"dose": [0.0, 50.0, 100.0]})
    Xnew = mm.rhs.model_spec.get_model_matrix(new).drop(columns="Intercept")
    np.testing.assert_allclose(
        Xnew.to_numpy(),
        ns_basis(new["dose"], knots=state["knots"],
                 boundary_knots=state["boundary_knots"]),
        atol=1e-12)


def test_alcohol_csv_dose_matches_fixture():
    dose = bm.datasets.load("alcohol")["dose"].to_numpy()
    np.testing.assert_allclose(
        ns_basis(dose, knots=[10, 25]), CASES["a_knots"]["basis"], rtol=0, atol=1e-10)


def test_nan_rows():
    case = CASES["a_knots"]
    x = np.array(case["x"])
    x_nan = np.insert(x, [0, 5], np.nan)
    got = ns_basis(x_nan, knots=[10, 25])
    assert got.shape == (len(x) + 2, 3)
    assert np.isnan(got[0]).all() and np.isnan(got[6]).all()
    np.testing.assert_allclose(
        np.delete(got, [0, 6], axis=0), case["basis"], rtol=0, atol=1e-10)
    # NaN is ignored when placing df-based knots and boundary knots
    np.testing.assert_allclose(
        ns_basis(x_nan, df=4)[~np.isnan(x_nan)], ns_basis(x, df=4), atol=1e-14)


def test_nan_in_formula_drops_rows():
    df, case = _dose_frame()
    df.loc[3, "dose"] = np.nan
    X = model_matrix("y ~ ns(dose, knots=[10, 25])", df).rhs
    assert len(X) == len(df) - 1
    expected = ns_basis(df["dose"], knots=[10, 25])
    np.testing.assert_allclose(X.iloc[:, 1:].to_numpy(),
                               expected[~df["dose"].isna()], atol=1e-12)


def test_columns_and_linearity_outside_boundary():
    b = ns_basis(np.array([-20.0, -10.0, 0.0, 50.0, 60.0, 70.0]),
                 knots=[10, 25], boundary_knots=[0, 60])
    assert b.shape == (6, 3)
    # linear beyond the boundary: equal second differences are zero
    np.testing.assert_allclose(b[0] - 2 * b[1] + b[2], 0, atol=1e-12)
    assert ns_basis(np.linspace(0, 1, 7), df=5, intercept=True).shape == (7, 5)
