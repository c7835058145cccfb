"""Simple formulas are tokenized without formulaic: exactly as formulaic's tokenizer does."""

from __future__ import annotations

import numpy as np
import pytest
from formulaic.parser.algos.tokenize import tokenize

from bayesmeta.spec.formulas import simple_tokens

SIMPLE = ["effect ~ 1", "yi~1", "y ~ 0 + x + z1", "y ~ x*z", "y ~ 1 + x:z - 1", "  y_2 ~ a_b - 1 ", "y ~ x10 + 10",
          "_y ~ 1"]
OTHER = ["y ~ log(x)", "y ~ C(g)", "y ~ `a b`", "y ~ x.z", "y ~ 1x", "y ~ x | g", "y ~ I(x ** 2)", "y ~ {x}",
         "y ~ x / g", "y ~ x ^ 2", "y ~ é", "y ~ 1.5", "y ~ -1 + x", "y ~ x x", "~ x", "y ~"]


def _formulaic(formula: str) -> list[tuple[str, str]]:
    return [(t.kind.value, t.token) for t in tokenize(formula)]


@pytest.mark.parametrize("formula", SIMPLE)
def test_simple_formulas_tokenize_as_formulaic(formula):
    assert simple_tokens(formula) == _formulaic(formula)


@pytest.mark.parametrize("formula", OTHER)
def test_other_formulas_are_left_to_formulaic(formula):
    assert simple_tokens(formula) is None


def test_random_simple_formulas_tokenize_as_formulaic():
    rng = np.random.default_rng(0)
    operands, operators = ["y", "x1", "dose", "_a", "B2c", "0", "1", "12"], ["~", "+", "-", "*", ":"]
    for _ in range(300):
        parts = [rng.choice(operators if i % 2 else operands) for i in range(2 * int(rng.integers(0, 5)) + 1)]
        formula = "".join(str(p) + " " * int(rng.integers(0, 3)) for p in parts)
        tokens = simple_tokens(formula)
        assert tokens is not None, formula
        assert tokens == _formulaic(formula), formula
