"""bm.gl_covariance: dosresmeta's covar.logrr on the alcohol data (fixture
alcohol_gl_covariances.json), the exact Greenland-Longnecker solution, and crude tables
whose covariances are known in closed form."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from reference_tools import FIXTURES, assert_close

import bayesmeta as bm
from bayesmeta.prep.greenland_longnecker import _fit_exact, _log_ratio, _study

FIXTURE = json.loads((FIXTURES / "alcohol_gl_covariances.json").read_text())
ARGS = dict(id="id", logrr="logrr", se="se", cases="cases", n="peryears", type="type")


def _alcohol() -> pd.DataFrame:
    return bm.datasets.load("alcohol")


def _expected() -> list[np.ndarray]:
    return [np.array(FIXTURE["S"][i]) for i in dict.fromkeys(_alcohol()["id"])]


def test_dosresmeta_solver_matches_covar_logrr():
    ours = bm.gl_covariance(_alcohol(), **ARGS, solver="dosresmeta")
    for a, b in zip(ours, _expected(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=0)


def test_exact_solver_solves_the_constraints_and_is_close_to_dosresmeta():
    dat = _alcohol()
    ours = bm.gl_covariance(dat, **ARGS)
    for a, b in zip(ours, _expected(), strict=True):
        assert_close(a, b, "GL covariance")  # dosresmeta stops early: differences up to ~6e-5
        np.testing.assert_allclose(np.diag(a), np.diag(b), rtol=1e-12)
    cols = {"type": dat["type"].to_numpy(object), "logrr": dat["logrr"].to_numpy(float),
            "se": dat["se"].to_numpy(float), "cases": dat["cases"].to_numpy(float),
            "n": dat["peryears"].to_numpy(float)}
    for label in dict.fromkeys(dat["id"]):
        study = _study(label, np.flatnonzero(dat["id"] == label), dat.index, cols)
        a, a0 = _fit_exact(study)
        np.testing.assert_allclose(_log_ratio(study, a, a0), study.y, rtol=0, atol=1e-10)
        assert a.sum() + a0 == pytest.approx(study.cases.sum(), rel=1e-12)


def _crude(kind: str) -> pd.DataFrame:
    """A table whose reported log RRs are the crude ones: the fitted counts are the observed counts."""
    cases = np.array([50.0, 30.0, 20.0, 12.0])
    n = np.array([1000.0, 400.0, 150.0, 60.0])
    if kind == "ir":
        y = np.log(cases / n) - np.log(cases[0] / n[0])
        v = 1 / cases + 1 / cases[0]
    else:
        odds = cases / (n - cases)
        y = np.log(odds / odds[0])
        w = 1 / cases - 1 / n if kind == "ci" else 1 / cases + 1 / (n - cases)
        v = w + w[0]
    se = np.sqrt(v)
    se[0] = np.nan
    return pd.DataFrame({"id": "s", "logrr": y, "se": se, "cases": cases, "n": n, "type": kind})


@pytest.mark.parametrize("kind, reference_variance", [
    ("ir", lambda a, n: 1 / a),
    ("cc", lambda a, n: 1 / a + 1 / (n - a)),
    ("ci", lambda a, n: 1 / a - 1 / n),
])
@pytest.mark.parametrize("solver", ["exact", "dosresmeta"])
def test_crude_tables_give_the_closed_form(kind, reference_variance, solver):
    dat = _crude(kind)
    (S,) = bm.gl_covariance(dat, id="id", logrr="logrr", se="se", cases="cases", n="n", type=kind, solver=solver)
    expected = np.full((3, 3), reference_variance(dat["cases"][0], dat["n"][0]))
    np.fill_diagonal(expected, dat["se"][1:] ** 2)
    np.testing.assert_allclose(S, expected, rtol=1e-10)


def test_type_column_row_order_and_study_order():
    """Studies of different types in one frame, the reference row anywhere within its study."""
    alcohol = _alcohol()
    cc = _crude("cc").assign(id="cc study", peryears=lambda d: d["n"]).drop(columns="n")
    mixed = pd.concat([cc.iloc[[2, 0, 3, 1]], alcohol[alcohol["id"] == "io"]], ignore_index=True)
    blocks = bm.gl_covariance(mixed, **ARGS)
    (alone,) = bm.gl_covariance(cc, **{**ARGS, "type": "cc"})
    order = [1, 2, 0]  # data rows 2, 3, 1 of the crude table, reference excluded
    np.testing.assert_allclose(blocks[0], alone[np.ix_(order, order)], rtol=1e-12)
    np.testing.assert_allclose(blocks[1], bm.gl_covariance(alcohol[alcohol["id"] == "io"], **ARGS)[0], rtol=1e-12)


def test_fit_with_gl_covariance_matches_the_paper_model_l2():
    """Table 4, model L2 (ML, AIC -6.13) with our covariances in place of the fixture's."""
    dat = _alcohol()
    sub = dat[dat["se"].notna()].reset_index(drop=True)
    V = bm.gl_covariance(dat, **ARGS, solver="dosresmeta")
    fit = bm.MetaModel("logrr ~ 0 + dose", data=sub, V=V, random="~ 0 + dose | id").fit("ML")
    assert round(fit.aic, 2) == -6.13


def _broken(row: int, column: str, value) -> pd.DataFrame:
    dat = _alcohol()
    dat.loc[row, column] = value
    return dat


@pytest.mark.parametrize("data, kwargs, message", [
    (_broken(0, "se", 0.2), {}, r"study atm: needs exactly one reference row \(se missing\), found 0\."),
    (_broken(7, "se", np.nan), {}, r"study hpm: needs exactly one reference row .* found 2 \(rows 6, 7\)"),
    (_broken(3, "cases", 0), {}, r"study atm: cases must be positive; rows 3 are not"),
    (_broken(0, "peryears", -1.0), {}, r"study atm: n must be positive; rows 0 are not"),
    (_broken(8, "cases", 200000), {"type": "cc"}, r"study hpm: n must exceed cases for type 'cc'; rows 8"),
    (_broken(0, "logrr", 0.3), {}, r"study atm: the reference row 0 has logrr 0.3, expected 0"),
    (_broken(2, "type", "cc"), {}, r"study atm: mixes types \['cc', 'ir'\]"),
    (_broken(2, "type", "xx"), {}, r"type: column 'type' has values other than ci, ir, cc in rows 2"),
    (_alcohol(), {"type": "rates"}, r"type: unknown type 'rates'"),
    (_alcohol(), {"cases": "events"}, r"cases: column 'events' not found"),
    (_alcohol(), {"solver": "fast"}, r"solver: expected 'exact' or 'dosresmeta'"),
    (_alcohol().rename(columns={"type": "ci"}), {"type": "ci"}, r"type: 'ci' is both a column of data and a study type"),
])
def test_errors_name_the_study(data, kwargs, message):
    with pytest.raises(bm.SpecificationError, match=message):
        bm.gl_covariance(data, **{**ARGS, **kwargs})
