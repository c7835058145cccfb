"""nutpie sampling without Python in the loop: numba-compiled log-density as a C callback.

A log-density compiled by PyTensor's numba backend is wrapped in a numba ``cfunc``
(a C function pointer) that nutpie's Rust sampler calls directly, without the GIL, so
chains run in parallel threads and a leapfrog step costs only the evaluation itself
(about a sixth of the Python-callback path's cost on the school model).

The wrapper reads the shared variables' current values through a small table of
pointers and shapes (built when sampling starts, so a prior grid's changed
hyperparameters are seen), and it is generated as source registered with PyTensor's
numba disk cache under a key derived from the wrapped graph's own key: its compiled
code (the whole graph linked into it, which is what costs 10-20 s) is built once per
model form and loaded from disk by later processes.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

#: Version of the generated wrapper's source; part of its cache key.
_WRAPPER_VERSION = "2"
#: Entries per tuple display in the generated callbacks (see :func:`_wrapper_source`).
_GROUP = 20


@functools.cache
def _pointer_intrinsic():
    """A numba intrinsic turning an integer address into a ``void*``."""
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def as_pointer(typingctx, address):
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], cgutils.voidptr_t)

        return types.voidptr(address), codegen

    return as_pointer


def table_layout(logp_fn, expand_fn) -> tuple[list, dict, int]:
    """The shared variables of both functions, in the pointer table's order, where each one's
    entry (its address, then its shape) starts, and the table's length."""
    variables = list(dict.fromkeys(logp_fn.get_shared() + expand_fn.get_shared()))
    positions, position = {}, 0
    for variable in variables:
        positions[variable] = position
        position += 1 + variable.type.ndim
    return variables, positions, position


def _wrapper_source(name: str, kind: str, inputs: list, positions: dict) -> str:
    """The source of the C callback ``name``: ``kind`` "logp" (value and gradient) or
    "expand" (the per-draw outputs as one flat vector, the first output of ``inner``), whose
    shared ``inputs`` are read from the pointer table at ``positions``."""
    unpack = []
    for i, variable in enumerate(inputs):
        p, ndim = positions[variable], variable.type.ndim
        shape = "".join(f"int(table[{p + 1 + d}]), " for d in range(ndim))
        unpack.append(f"    s{i} = carray(as_pointer(table[{p}]), ({shape}), np.{np.dtype(variable.type.dtype).name})")
    # the arguments as one tuple, concatenated from displays of fewer than 30 entries: Python compiles
    # longer calls and displays through a list (LIST_TO_TUPLE), which numba cannot compile
    names = ["x"] + [f"s{i}" for i in range(len(inputs))]
    groups = ["(" + ", ".join(names[i:i + _GROUP]) + ",)" for i in range(0, len(names), _GROUP)]
    unpack.append(f"    arguments = {' + '.join(groups)}")
    if kind == "logp":
        head = f"def {name}(dim, x_, out_, logp_, table_):"
        body = ["        value, gradient = inner(*arguments)",
                "        carray(out_, (N_DIM,))[:] = gradient",
                "        carray(logp_, (1,))[0] = value",
                "        if not np.isfinite(value):",
                "            return 4",
                "        if not np.all(np.isfinite(gradient)):",
                "            return 3"]
        failure = "1"
    else:
        head = f"def {name}(dim, n_out, x_, out_, table_):"
        body = ["        if n_out != N_OUT:",
                "            return -1",
                "        carray(out_, (N_OUT,))[:] = inner(*arguments)[0]"]
        failure = "-2"
    table = ["    table = carray(table_, (N_TABLE,), np.uint64)"] if inputs else []
    lines = [head,
             "    if dim != N_DIM:",
             "        return -1",
             "    x = carray(x_, (N_DIM,))",
             *table, *unpack,
             "    try:",
             *body,
             "    except Exception:",
             f"        return {failure}",
             "    return 0"]
    return "\n".join(lines) + "\n"


def _signature(kind: str):
    from numba import types

    double = types.CPointer(types.double)
    if kind == "logp":
        return types.int64(types.uint64, double, double, double, types.voidptr)
    return types.int64(types.uint64, types.uint64, double, double, types.voidptr)


def c_callback(function, kind: str, n_dim: int, n_out: int, positions: dict, n_table: int):
    """A numba ``cfunc`` calling the numba-compiled PyTensor ``function`` (first input the
    flat parameter vector, then its shared variables, read from the pointer table at
    ``positions``), cached on disk; None when the function has no numba disk-cache key (it
    could not be cached, and compiling the callback in every process costs more than it saves).
    """
    import warnings

    import numba
    from pytensor.link.numba.cache import (
        CACHED_SRC_FUNCTIONS,
        compile_numba_function_src,
    )

    jitted = getattr(function.vm, "jit_fn", None)
    inner_key = CACHED_SRC_FUNCTIONS.get(getattr(jitted, "py_func", None)) if jitted is not None else None
    if inner_key is None:
        return None
    name = f"bayesmeta_{kind}_callback"
    source = _wrapper_source(name, kind, function.get_shared(), positions)
    key = hashlib.sha256(f"{_WRAPPER_VERSION}\n{inner_key}\n{n_dim}\n{n_out}\n{n_table}\n{source}".encode())
    # __name__: numba's cache rebuilds the callback's environment from an importable module
    env = {"__name__": __name__, "np": np, "carray": numba.carray, "as_pointer": _pointer_intrinsic(),
           "inner": jitted, "N_DIM": n_dim, "N_OUT": n_out, "N_TABLE": n_table}
    python_function = compile_numba_function_src(source, name, env, cache_key=key.hexdigest())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", numba.NumbaWarning)
        return numba.cfunc(_signature(kind), cache=True)(python_function)


def pointer_table(variables) -> tuple[np.ndarray, list]:
    """The table the callbacks read the shared ``variables`` from (the address, then the shape,
    of each one's current value) and the arrays it points into (keep them alive while sampling)."""
    entries, arrays = [], []
    for variable in variables:
        value = np.asarray(variable.container.storage[0], order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        arrays.append(value)
        entries += [value.ctypes.data, *value.shape]
    return np.array(entries, dtype=np.uint64), arrays


def native_model(logp_fn, expand_fn, names: list, shapes: list, start: np.ndarray, initial_point, dims: dict,
                 coords: dict):
    """A nutpie model calling C callbacks of the numba-compiled ``logp_fn`` (value and gradient)
    and ``expand_fn`` (the per-draw outputs ``names`` of ``shapes``, flattened into its first
    output), or None when either cannot be cached (then the caller keeps Python callbacks).

    Sample it through :func:`with_current_values`.
    """
    variables, positions, n_table = table_layout(logp_fn, expand_fn)
    n_dim, slices = len(start), output_slices(shapes)
    n_out = slices[-1].stop if slices else 0
    logp_callback = c_callback(logp_fn, "logp", n_dim, 0, positions, n_table)
    expand_callback = (c_callback(expand_fn, "expand", n_dim, n_out, positions, n_table)
                       if logp_callback is not None else None)
    if expand_callback is None:
        return None
    try:  # nutpie's class for numba-compiled PyMC models; shared_data holds the table's variables
        return native_model_type()(_n_dim=n_dim, dims=dims, _coords=coords, _shapes=dict(zip(names, shapes)),
                                   compiled_logp_func=logp_callback, compiled_expand_func=expand_callback,
                                   initial_point_func=initial_point, shared_data={"variables": variables},
                                   user_data=np.zeros(0, np.uint64), n_expanded=n_out,
                                   shape_info=(names, slices, shapes), logp_func=logp_fn, expand_func=expand_fn)
    except TypeError:  # another nutpie version's fields: the caller keeps Python callbacks
        return None


def output_slices(shapes: list) -> list[slice]:
    """Where each output of ``shapes`` lies in the flat vector of per-draw outputs."""
    sizes = [int(np.prod(shape, dtype=int)) for shape in shapes]
    ends = np.cumsum(sizes, dtype=int)
    return [slice(int(end) - size, int(end)) for end, size in zip(ends, sizes)]


def native_model_type() -> type:
    """The class of the models :func:`native_model` returns."""
    from nutpie.compile_pymc import CompiledPyMCModel

    return CompiledPyMCModel


def with_current_values(compiled):
    """``compiled`` (from :func:`native_model`) reading its shared variables' current values."""
    import dataclasses

    variables = compiled.shared_data["variables"]
    table, arrays = pointer_table(variables)
    return dataclasses.replace(compiled, user_data=table, shared_data={"variables": variables, "values": arrays})
