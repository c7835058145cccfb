"""The package's layering rule, checked on the source.

The folders are the flow of a fit, and imports go one way, down this list:

    builders -> model -> studies -> results -> plots -> inference -> engines -> likelihood -> design -> spec -> errors

with ``prep`` (effect sizes, sampling covariances) beside ``likelihood`` (it may
use ``design``, ``spec`` and ``errors``; the builders use it), ``priors``
(published heterogeneity priors) beside ``spec`` and ``datasets`` on its own.
The studies (simulation, simulation-based calibration, sensitivity) take models
duck-typed and call their ``fit``/``sample``, so ``model`` may offer them as methods. Within one folder modules may import each other, without cycles.
Results sit above inference because the results are where users call inference
(``fit.permutation_test()``, ``fit.wald_test()``); inference works on any result
that fulfils the contract and never imports the result classes. The plots sit between
them: results may call plots, and plots take results duck-typed, as inference does.

Imports inside functions are allowed only for modules that load a heavy library
(PyMC, PyTensor, ArviZ, numba, matplotlib, formulaic) when imported, so that
``import bayesmeta`` and ML/REML stay light; and no module imports another
module's private (underscore) names.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bayesmeta"
RANKS = {"errors": 0, "datasets": 0, "spec": 1, "priors": 1, "design": 2, "likelihood": 3, "prep": 3, "engines": 4,
         "inference": 5, "plots": 5.5, "results": 6, "studies": 6.5, "model": 7, "builders": 8, "": 9}
#: Libraries loaded only when needed: the Bayesian engine's, plotting, and formulaic (a third of a second).
HEAVY = {"pymc", "pytensor", "arviz", "numba", "matplotlib", "pymc_extras", "xarray", "nutpie", "formulaic"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports(path: Path) -> list[tuple[str, list[str], bool, int]]:
    """(target module, imported names, inside a function, line) of every import."""
    tree = ast.parse(path.read_text())
    own = _module_name(path)
    base = own.split(".") if _is_package(path) else own.split(".")[:-1]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, [], in_function, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    root = base[:len(base) - child.level + 1]
                    target = ".".join(root + ([child.module] if child.module else []))
                else:
                    target = child.module
                names = [a.name for a in child.names]
                # "from . import x" imports the submodule x
                if child.module is None:
                    found.extend((f"{target}.{n}", [], in_function, child.lineno) for n in names)
                else:
                    found.append((target, names, in_function, child.lineno))
            elif isinstance(child, ast.If) and _is_type_checking(child):
                continue
            else:
                visit(child, nested)

    visit(tree, False)
    return found


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _internal(target: str, modules: dict) -> str | None:
    """The bayesmeta module an import refers to (a submodule imported from a package
    counts as that submodule)."""
    if target.split(".")[0] != "bayesmeta":
        return None
    while target not in modules:
        target = target.rsplit(".", 1)[0]
    return target


def _top_level_edges(modules: dict) -> dict[str, set[str]]:
    """Module -> the bayesmeta modules it imports when it is imported."""
    edges = {}
    for name, path in modules.items():
        edges[name] = set()
        for target, names, inside, _ in _imports(path):
            resolved = _internal(target, modules)
            if inside or resolved in (None, name):
                continue
            edges[name].add(resolved)
            edges[name] |= {f"{resolved}.{n}" for n in names if f"{resolved}.{n}" in modules}
    return edges


def _heavy_modules(modules: dict) -> set[str]:
    """Modules that load a heavy library at import, directly or through other modules."""
    top_level = _top_level_edges(modules)
    heavy = {name for name, path in modules.items()
             if any(t.split(".")[0] in HEAVY for t, _, inside, _ in _imports(path) if not inside)}
    changed = True
    while changed:
        changed = False
        for name, targets in top_level.items():
            if name not in heavy and targets & heavy:
                heavy.add(name)
                changed = True
    return heavy


def test_imports_go_down_the_layers():
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        for target, _, _, line in _imports(path):
            resolved = _internal(target, modules)
            if resolved is None or _layer(resolved) == _layer(name):
                continue
            if RANKS[_layer(resolved)] >= RANKS[_layer(name)]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {resolved}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_import_cycles():
    modules = _modules()
    edges = {name: set() for name in modules}
    for name, path in modules.items():
        for target, names, _, _ in _imports(path):
            resolved = _internal(target, modules)
            if resolved and resolved != name and not _is_package(modules[resolved]):
                edges[name].add(resolved)
    # Tarjan's strongly connected components
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in edges:
        if v not in index:
            connect(v)
    assert not cycles, f"import cycles: {cycles}"


def test_imports_inside_functions_only_defer_heavy_modules():
    modules = _modules()
    heavy = _heavy_modules(modules)
    wrong = []
    for name, path in modules.items():
        for target, names, inside, line in _imports(path):
            resolved = _internal(target, modules)
            if not inside or resolved is None:
                continue
            targets = {resolved} | {f"{resolved}.{n}" for n in names if f"{resolved}.{n}" in modules}
            if not targets & heavy:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {resolved} inside a function")
    assert not wrong, "\n".join(wrong)


def test_no_private_names_across_modules():
    modules = _modules()
    wrong = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {n} from {target}"
             for name, path in modules.items() for target, names, _, line in _imports(path)
             if _internal(target, modules) not in (None, name) for n in names if n.startswith("_")]
    assert not wrong, "\n".join(wrong)


def test_subpackage_inits_are_empty():
    """Subpackages re-export nothing (datasets and priors are the exceptions: their __init__ is the public module)."""
    filled = [p.relative_to(PACKAGE.parent) for p in PACKAGE.rglob("__init__.py")
              if p.parent != PACKAGE and p.parent.name not in ("datasets", "priors") and p.read_text().strip()]
    assert not filled, f"non-empty subpackage __init__ files: {filled}"


def test_heavy_libraries_are_found_by_the_check():
    """The checks above are not vacuous: the Bayesian engine's modules count as heavy."""
    heavy = _heavy_modules(_modules())
    assert {"bayesmeta.engines.bayes.sampling", "bayesmeta.likelihood.graph",
            "bayesmeta.engines.bayes.priors"} <= heavy
    assert "bayesmeta.model" not in heavy and "bayesmeta.results.posterior" not in heavy
