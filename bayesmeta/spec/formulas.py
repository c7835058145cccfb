"""Formulas: checked before anything reads them, the formula engine, and the columns they need.

formulaic evaluates the Python parts of a formula (function calls, ``{...}``
blocks, arithmetic inside ``I()``) with ``eval``, and even asking it for the
variables a formula needs runs them. Formulas and column names come from users
and from data files, so :func:`check_formula` reads every formula first, with
formulaic's tokenizer (which runs nothing) and Python's parser, and allows only

* data columns, as plain names or quoted in backticks (`` `my column` ``);
* numbers and strings;
* the formula operators (``+ - * / : ** ^ | ~ %in%``, parentheses);
* arithmetic and comparisons (``+ - * / // % **`` with a small constant power,
  ``== != < <= > >=``, ``and``, ``or``, ``not``) inside calls and ``{...}``;
* calls of the transforms in :data:`TRANSFORMS` (``C``, ``I``, ``ns``, ``bs``,
  ``log``, ``exp``, ``sqrt``, ``center``, ``scale``, ``poly``, ...) and of
  ``np.<function>`` for the NumPy functions in :data:`NUMPY_FUNCTIONS`, with
  arguments and keyword arguments made of the above and lists of them
  (``ns(dose, knots=[10, 25])``, ``C(group, levels=["a", "b"])``).

Everything else (attribute access, subscripts, other calls, names with double
underscores, lambdas, comprehensions, f-strings) is refused with an error naming
the formula and the offending part. ``MetaModel(..., trusted=True)`` skips the
check for formulas the user wrote and trusts.
"""

from __future__ import annotations

import ast
import re

from ..errors import SpecificationError

#: Functions a formula may call (formulaic's transforms and contrasts, and bayesmeta's ns).
TRANSFORMS = frozenset({"C", "I", "Q", "ns", "bs", "cr", "cs", "cc", "poly", "center", "scale", "standardize",
                        "log", "log2", "log10", "exp", "exp2", "exp10", "sqrt", "abs", "lag", "contr",
                        "Treatment", "Sum", "Helmert", "Diff", "Poly"})
#: NumPy functions a formula may call as ``np.<name>(...)``.
NUMPY_FUNCTIONS = frozenset({"log", "log1p", "log2", "log10", "exp", "expm1", "sqrt", "abs", "square", "sin", "cos",
                             "tan", "arcsin", "arccos", "arctan", "arctanh", "tanh", "floor", "ceil", "round",
                             "minimum", "maximum", "clip", "where"})
#: Largest constant power allowed inside Python parts (larger ones could take forever).
MAX_POWER = 100
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_UNARY = (ast.UAdd, ast.USub, ast.Not)
_COMPARISONS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_PLAIN_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")
_BACKTICKS = re.compile(r"`([^`]*)`")
#: Formulas made only of plain names, whole numbers and the operators ``~ + - * :`` are tokenized
#: here, without loading formulaic (a third of a second at start-up); anything else goes to formulaic.
_SIMPLE_FORMULA = re.compile(r"(?:\s*(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?![A-Za-z0-9_])|[~+*:-]))*\s*", re.ASCII)
_SIMPLE_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|([0-9]+)|([~+*:-])", re.ASCII)


def formula_engine():
    """formulaic, with bayesmeta's ``ns()`` registered among its transforms.

    Imported when the first formula is read, not with the package: formulaic takes
    about a third of a second to import.
    """
    import formulaic

    from . import splines  # noqa: F401  (registers the ns() transform with formulaic)

    return formulaic


def quote(name: str) -> str:
    """A column name ready to be pasted into a formula: as it is when it is a plain name,
    else in backticks.

    Examples
    --------
    >>> quote("year"), quote("dose (g/day)")
    ('year', '`dose (g/day)`')
    """
    if not isinstance(name, str) or not name:
        raise SpecificationError(f"column names must be non-empty strings to be used in a formula; got {name!r}.")
    if "`" in name:
        raise SpecificationError(f"column {name!r} contains a backtick and cannot be used in a formula; rename it.")
    return name if _PLAIN_NAME.match(name) and "__" not in name else f"`{name}`"


class _Refusal(Exception):
    """A part of a formula that is not allowed (its message says which)."""


def _check_name(name: str, columns) -> None:
    if "__" in name:
        raise _Refusal(f"the name {name!r} (names with double underscores are not allowed)")
    if columns is not None and name not in columns:
        raise _Refusal(f"{name!r}, which is not a column of the data (nor a transform called as a function)")


def _check_call(node: ast.Call, columns) -> None:
    func = node.func
    if isinstance(func, ast.Name) and func.id in TRANSFORMS:
        pass
    elif (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "np"
          and func.attr in NUMPY_FUNCTIONS):
        pass
    else:
        raise _Refusal(f"the call {ast.unparse(func)}(...), which is not an allowed transform "
                       "(bayesmeta.spec.formulas.TRANSFORMS and NUMPY_FUNCTIONS list them)")
    for argument in node.args:
        _check_python(argument, columns)
    for keyword in node.keywords:
        if keyword.arg is None:
            raise _Refusal("**keyword unpacking")
        _check_python(keyword.value, columns)


def _check_python(node: ast.AST, columns) -> None:
    """Allow only the expressions listed in the module docstring."""
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, complex, str, bool, type(None))):
            raise _Refusal(f"the constant {ast.unparse(node)}")
    elif isinstance(node, ast.Name):
        if node.id not in ("True", "False", "None"):
            _check_name(node.id, columns)
    elif isinstance(node, ast.Call):
        _check_call(node, columns)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, _OPERATORS):
        if isinstance(node.op, ast.Pow) and not (
                isinstance(node.right, ast.Name)
                or (isinstance(node.right, ast.Constant) and isinstance(node.right.value, (int, float))
                    and abs(node.right.value) <= MAX_POWER)):
            raise _Refusal(f"the power {ast.unparse(node)} (the exponent must be a column or a number up to "
                           f"{MAX_POWER})")
        _check_python(node.left, columns)
        _check_python(node.right, columns)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, _UNARY):
        _check_python(node.operand, columns)
    elif isinstance(node, ast.Compare) and all(isinstance(op, _COMPARISONS) for op in node.ops):
        for part in [node.left, *node.comparators]:
            _check_python(part, columns)
    elif isinstance(node, ast.BoolOp):
        for part in node.values:
            _check_python(part, columns)
    elif isinstance(node, (ast.List, ast.Tuple)):
        for part in node.elts:
            _check_python(part, columns)
    else:
        raise _Refusal(f"{ast.unparse(node)!r} ({type(node).__name__.lower()} expressions are not allowed)")


def _parse_python(token: str) -> tuple[ast.AST, dict[str, str]]:
    """The Python part of a formula as an expression tree, with its backtick-quoted names
    replaced by placeholders (placeholder -> column)."""
    quoted = {f"quoted_column_{i}": name for i, name in enumerate(_BACKTICKS.findall(token))}
    placeholders = iter(quoted)
    expression = _BACKTICKS.sub(lambda _: next(placeholders), token.strip())
    try:
        return ast.parse(expression, mode="eval").body, quoted
    except SyntaxError:
        raise _Refusal(f"{token!r}, which is not a valid expression") from None


def _check_token(kind: str, token: str, columns) -> None:
    if kind == "name":
        if "__" in token:
            raise _Refusal(f"the name {token!r} (names with double underscores are not allowed)")
    elif kind == "python":
        tree, quoted = _parse_python(token)
        for name in quoted.values():
            _check_name(name, columns)
        _check_python(tree, None if columns is None else set(columns) | set(quoted))
    elif kind == "value" and token != ".":
        try:
            ast.literal_eval(token)
        except (ValueError, SyntaxError):
            raise _Refusal(f"the value {token!r}") from None


def _variables(tree: ast.AST, quoted: dict[str, str]) -> set[str]:
    """Names a Python part reads as data (not the functions it calls)."""
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in called
             and node.id not in ("True", "False", "None", "np")}
    return {quoted.get(name, name) for name in names}


def simple_tokens(formula: str) -> list[tuple[str, str]] | None:
    """The (kind, token) pairs formulaic's tokenizer gives a formula of plain names and whole numbers
    joined by single operators ``~ + - * :``, or None for any other formula.

    formulaic merges neighbouring operators (``~ -1``) and reads neighbouring
    operands in its own way: such formulas are left to it.

    Examples
    --------
    >>> simple_tokens("effect ~ 1")
    [('name', 'effect'), ('operator', '~'), ('value', '1')]
    >>> simple_tokens("yi ~ log(x)") is None
    True
    """
    if not _SIMPLE_FORMULA.fullmatch(formula):
        return None
    kinds = ("name", "value", "operator")
    tokens = [next((kind, token) for kind, token in zip(kinds, match.groups()) if token)
              for match in _SIMPLE_TOKEN.finditer(formula)]
    alternating = all((kind == "operator") == (i % 2 == 1) for i, (kind, _) in enumerate(tokens))
    return tokens if tokens and alternating and len(tokens) % 2 == 1 else None


def _tokens(formula: str, where: str) -> list[tuple[str, str]]:
    if not isinstance(formula, str):
        raise SpecificationError(f"{where}: expected a formula string, got {type(formula).__name__}.")
    simple = simple_tokens(formula)
    if simple is not None:
        return simple
    from formulaic.parser.algos.tokenize import (
        tokenize,  # runs no code; formulaic loads on first use
    )

    try:
        return [(t.kind.value, t.token) for t in tokenize(formula)]
    except Exception as err:  # formulaic's tokenizer errors
        raise SpecificationError(f"{where}: cannot parse {formula!r} ({err}).") from None


def check_formula(formula: str, where: str, columns=None) -> None:
    """Refuse a formula that could run code (see the module docstring for what is allowed).

    Parameters
    ----------
    formula : str
        A one- or two-sided formula.
    where : str
        How to cite the formula in the error (the argument's name).
    columns : collection of str, optional
        The data's columns; names inside Python parts of the formula (function
        arguments, ``{...}``) must be among them.

    Raises
    ------
    SpecificationError
        Naming ``where``, the formula and the part that is not allowed.

    Examples
    --------
    >>> check_formula("yi ~ ns(dose, knots=[10, 25]) + C(group)", "formula", {"yi", "dose", "group"})
    >>> try:
    ...     check_formula("yi ~ I(__import__('os').getcwd())", "formula")
    ... except SpecificationError as err:
    ...     print(str(err)[:91])
    formula: "yi ~ I(__import__('os').getcwd())" contains the call __import__('os').getcwd(...)
    """
    tokens = _tokens(formula, where)
    columns = None if columns is None else set(columns)
    try:
        for kind, token in tokens:
            _check_token(kind, token, columns)
    except _Refusal as refusal:
        raise SpecificationError(f"{where}: {formula!r} contains {refusal}. Formulas may contain data columns, "
                                 "numbers, arithmetic and transforms; trusted=True skips this check for formulas "
                                 "you wrote yourself.") from None


def required_columns(formula: str, where: str, columns=None, trusted: bool = False) -> set[str]:
    """Data columns a formula (one- or two-sided) needs, after :func:`check_formula` (unless ``trusted``).

    The columns are read off the formula's tokens without evaluating anything
    (formulaic's own ``required_variables`` would run the formula's Python parts).

    Raises
    ------
    SpecificationError
        Naming ``where`` when the formula is not allowed or cannot be parsed.

    Examples
    --------
    >>> sorted(required_columns("log(yi) ~ x + C(g) + `dose (mg)` + ns(t, knots=[1, 2])", "formula"))
    ['dose (mg)', 'g', 't', 'x', 'yi']
    """
    if not trusted:
        check_formula(formula, where, columns)
    needed = set()
    for kind, token in _tokens(formula, where):
        if kind == "name":
            needed.add(token)
        elif kind == "python":
            try:
                needed |= _variables(*_parse_python(token))
            except _Refusal:  # a trusted formula that Python cannot parse: formulaic will say what is wrong
                continue
    return needed


def bare_names(formula: str, where: str) -> tuple[set[str], set[str]]:
    """Columns a formula uses as they are (not inside a transform such as ``C()`` or ``log()``),
    on the left and on the right of ``~``.

    Examples
    --------
    >>> [sorted(side) for side in bare_names("y ~ x + C(g) + `a b` + log(z)", "formula")]
    [['y'], ['a b', 'x']]
    """
    sides: tuple[set[str], set[str]] = (set(), set())
    side = 0 if any(kind == "operator" and token == "~" for kind, token in _tokens(formula, where)) else 1
    for kind, token in _tokens(formula, where):
        if kind == "operator" and token == "~":
            side = 1
        elif kind == "name":
            sides[side].add(token)
    return sides
