"""Formulas and column names cannot run code: injection attempts at every entry point.

Each payload would create a canary file if any part of it ran; after every
attempt the canary must be absent, and the attempt must end in a
SpecificationError naming the argument (or, for quoted column names, in a
model that treats the name as a plain column).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesmeta as bm
from bayesmeta.spec.formulas import check_formula, quote


@pytest.fixture
def canary(tmp_path):
    path = tmp_path / "canary"
    yield path
    assert not path.exists(), "an injected payload ran"


def _payloads(canary) -> list[str]:
    p = str(canary)
    return [f"__import__('pathlib').Path({p!r}).touch()",
            f"open({p!r}, 'w').close()",
            f"exec(\"open({p!r}, 'w').close()\")",
            f"(lambda: open({p!r}, 'w'))()",
            f"[open({p!r}, 'w') for _ in [0]]",
            f"np.log(1).__class__.__bases__[0].__subclasses__() or open({p!r}, 'w')",
            f"globals()['__builtins__']['open']({p!r}, 'w')"]


def _data(n=12) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"y": rng.normal(size=n), "x": rng.uniform(1, 2, n), "v": rng.uniform(0.1, 0.2, n),
                         "g": np.repeat(["a", "b", "c"], n // 3), "s": np.arange(n)})


def _formula_attacks(payload: str) -> list[str]:
    return [f"y ~ I({payload})", f"y ~ {{{payload}}}", f"y ~ ns(x, knots=[{payload}])",
            f"y ~ C(g, levels=[{payload}])", f"y ~ x + log({payload})", f"I({payload}) ~ x",
            f"y ~ x:I({payload})", f"y ~ np.exp({payload})", f"y ~ ({payload})"]


def test_fixed_effect_formulas(canary):
    for payload in _payloads(canary):
        for formula in _formula_attacks(payload):
            with pytest.raises(bm.SpecificationError, match="formula: .* contains"):
                bm.MetaModel(formula, data=_data(), vi="v")


def test_random_terms(canary):
    for payload in _payloads(canary):
        with pytest.raises(bm.SpecificationError, match="random"):
            bm.MetaModel("y ~ 1", data=_data(), vi="v", random=f"~ I({payload}) | g")
        with pytest.raises(bm.SpecificationError, match="random"):
            bm.MetaModel("y ~ 1", data=_data(), vi="v", random=f"~ 1 | g/{payload}")
        with pytest.raises(bm.SpecificationError, match="random"):
            bm.MetaModel("y ~ 1", data=_data(), vi="v", random=f"~ {payload} | g")


def test_scale_formulas(canary):
    for payload in _payloads(canary):
        with pytest.raises(bm.SpecificationError, match=r"scale: .* contains"):
            bm.MetaModel("y ~ 1", data=_data(), vi="v", scale=f"~ I({payload})")
        with pytest.raises(bm.SpecificationError, match=r"scale\['row'\]: .* contains"):
            bm.MetaModel("y ~ 1", data=_data(), vi="v", scale={"row": f"~ x + {{{payload}}}"})


def test_builder_formulas_and_moderators(canary):
    school = bm.datasets.load("school")
    berkey = bm.datasets.load("berkey1998")
    for payload in _payloads(canary):
        with pytest.raises(bm.SpecificationError, match="formula"):
            bm.multilevel(f"effect ~ I({payload})", school, levels="district/study", vi="var")
        with pytest.raises(bm.SpecificationError, match="contains"):
            bm.multivariate(berkey, yi="yi", outcome="outcome", id="trial", vi="vi", mods=f"~ I({payload})")
        with pytest.raises(bm.SpecificationError, match="contains"):
            bm.location_scale("effect ~ 1", school, vi="var", scale=f"~ I({payload})")
        with pytest.raises(bm.SpecificationError, match="contains"):
            bm.arm_based(_arms(), study="trial", arm="arm", events="events", total="total", mods=f"~ I({payload})")


def _arms() -> pd.DataFrame:
    bcg = bm.datasets.load("bcg")
    treated = pd.DataFrame({"trial": bcg["trial"], "arm": "BCG", "events": bcg["tpos"],
                            "total": bcg["tpos"] + bcg["tneg"], "ablat": bcg["ablat"]})
    control = pd.DataFrame({"trial": bcg["trial"], "arm": "control", "events": bcg["cpos"],
                            "total": bcg["cpos"] + bcg["cneg"], "ablat": bcg["ablat"]})
    return pd.concat([treated, control], ignore_index=True)


def test_column_names_from_a_data_file_are_quoted_or_refused(canary):
    """A CSV header holding code: builders quote it, so it is only ever a column name
    (or refused when it cannot be quoted), and nothing runs."""
    payload = _payloads(canary)[1]  # no double underscores: quoted, it is a legal (odd) column name
    arms = _arms().rename(columns={"arm": payload, "trial": f"trial {payload}"})
    model = bm.arm_based(arms, study=f"trial {payload}", arm=payload, events="events", total="total")
    assert model.fit().coef.index.tolist() == [f"{payload}[BCG]", f"{payload}[control]"]
    berkey = bm.datasets.load("berkey1998").rename(columns={"yi": payload, "outcome": f"{payload} outcome"})
    fit = bm.multivariate(berkey, yi=payload, outcome=f"{payload} outcome", id="trial", vi="vi").fit()
    assert len(fit.coef) == 2
    school = bm.datasets.load("school").rename(columns={"district": payload})
    assert bm.multilevel("effect ~ 1", school, levels=[payload, "study"], vi="var").fit().sigma2.size == 2
    # names with double underscores: a grouping column is only looked up (fine), a formula refuses them
    dunder = _payloads(canary)[0]
    school = bm.datasets.load("school").rename(columns={"district": dunder, "effect": f"{dunder} effect"})
    assert bm.multilevel("effect ~ 1", school.assign(effect=school[f"{dunder} effect"]), levels=[dunder, "study"],
                         vi="var").fit().sigma2.size == 2
    with pytest.raises(bm.SpecificationError, match="double underscores"):
        bm.multilevel(f"{quote(dunder + ' effect')} ~ 1", school, levels=[dunder, "study"], vi="var")
    with pytest.raises(bm.SpecificationError, match="backtick"):
        quote("a`b")


def test_allowed_formulas_still_work():
    dat = _data(30)
    formulas = ["y ~ x", "y ~ log(x) + I(x ** 2)", "y ~ np.log(x) + C(g)", "y ~ ns(x, knots=[1.5])",
                "y ~ center(x)", "y ~ scale(x)", "y ~ `x` * g - 1", "y ~ {x > 1.5}", "y ~ C(g, levels=['b', 'a', 'c'])",
                "y ~ poly(x, 2)", "y ~ I((x - 1) / 2)"]
    for formula in formulas:
        check_formula(formula, "formula", set(dat.columns))
        bm.MetaModel(formula, data=dat, vi="v").fit()
    odd = dat.rename(columns={"x": "dose (mg)"})
    assert bm.MetaModel("y ~ `dose (mg)`", data=odd, vi="v").fit().coef.index.tolist() == ["Intercept", "dose (mg)"]


def test_names_must_be_columns_and_trusted_lifts_the_check():
    dat = _data()
    with pytest.raises(bm.SpecificationError, match="'z', which is not a column"):
        bm.MetaModel("y ~ I(x + z)", data=dat, vi="v")
    with pytest.raises(bm.SpecificationError, match="the call getattr"):
        bm.MetaModel("y ~ I(getattr(x, 'clip')(0))", data=dat, vi="v")
    with pytest.raises(bm.SpecificationError, match="the call x.clip"):
        bm.MetaModel("y ~ I(x.clip(0))", data=dat, vi="v")
    with pytest.raises(bm.SpecificationError, match="attribute expressions are not allowed"):
        bm.MetaModel("y ~ I(x.real)", data=dat, vi="v")
    with pytest.raises(bm.SpecificationError, match="the power"):
        bm.MetaModel("y ~ I(x ** 10 ** 10)", data=dat, vi="v")
    fit = bm.MetaModel("y ~ I(x.clip(0))", data=dat, vi="v", trusted=True).fit()
    assert fit.coef.size == 2
