"""nutpie's NUTS (Rust) on the model's log-density compiled by PyTensor.

nutpie's own PyMC path compiles the model with numba, which takes 10-15 s on
every run even for a small model. Here the log-density and its gradient are
compiled by PyTensor (its C backend, or numba for the fused nested likelihood;
both disk caches make later runs start fast, see :func:`choose_mode`). nutpie
runs the sampler loop, adaptation and bookkeeping in Rust and calls the
log-density either as a C callback (numba-compiled graphs, see
:mod:`~bayesmeta.engines.bayes.nutpie_native`: no Python and no GIL, so chains
run in parallel) or as a Python callable (the C backend), where each leapfrog
step costs little more than one call of the compiled function.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.pytensorf import join_nonshared_inputs
from pytensor.compile.mode import get_mode

from . import nutpie_native
from .options import available_cores

#: PyTensor backend of the log-density of graphs without a fused likelihood Op, and of small
#: batched designs. The C backend's compiled code is cached on disk and loads in well under a
#: second, and compiling a new graph takes a few seconds.
DEFAULT_MODE = "FAST_RUN"
#: Backend of graphs with a fused likelihood Op (:class:`~bayesmeta.likelihood.nested_op.NestedLoglik`,
#: and :class:`~bayesmeta.likelihood.block_gaussian.BlockGaussianLoglik` on designs of
#: :data:`NUMBA_MIN_BLOCKS` blocks or more). Compiled with the data as inputs
#: (:func:`lift_constants`), numba evaluates them two to three times as fast as the C backend,
#: without Python between the nodes, and nutpie calls them as C callbacks, so chains run in
#: parallel. Its disk cache serves every data set of the same model form: after the first run
#: of a form, compiling takes a few seconds; the first run compiles for 5-8 s (nested models)
#: to a minute or more (structured blocks with scale models).
NUMBA_MODE = "NUMBA"
#: Batched designs with at least this many independent blocks are compiled by numba. At 200
#: blocks (the bivariate location-coscale model, 4 x 1000 draws after 1000) a fit takes 11 s
#: with numba's cache warm against 31 s on the C backend, so the first run's compilation
#: (about 90 s, once per model form and machine) is repaid within a few fits; smaller
#: designs sample in seconds on the C backend, which compiles a new form in seconds.
NUMBA_MIN_BLOCKS = 200


def choose_mode(logp, n_blocks: int = 0) -> str:
    """The PyTensor backend for the log-density graph ``logp`` of a design with ``n_blocks``
    independent blocks: :data:`NUMBA_MODE` when it holds the fused nested Op, or the fused
    block Op and ``n_blocks >= NUMBA_MIN_BLOCKS``; else :data:`DEFAULT_MODE`."""
    from pytensor.graph.traversal import ancestors

    from ...likelihood.block_gaussian import BlockGaussianLoglik
    from ...likelihood.nested_op import NestedLoglik

    ops = {type(v.owner.op) for v in ancestors([logp]) if v.owner is not None}
    if NestedLoglik in ops or (BlockGaussianLoglik in ops and n_blocks >= NUMBA_MIN_BLOCKS):
        return NUMBA_MODE
    return DEFAULT_MODE


def single_mode(mode: str):
    """The mode of functions compiled beside a log-density of ``mode``: one backend per process
    where possible (the C backend's first use loads its whole disk cache)."""
    return None if mode == DEFAULT_MODE else mode


def _compile_mode(mode: str):
    """The PyTensor mode; the C backend keeps intermediate results between calls (no
    garbage collection of them), which saves about a sixth of each small call."""
    if mode == "FAST_RUN":
        return get_mode("FAST_RUN").clone(link_kwargs={"allow_gc": False})
    return mode


def _binder(function, lock: threading.Lock):
    """A function that returns a caller ``x -> outputs`` of a compiled function, made when nutpie
    asks for it (as sampling starts), bypassing Function.__call__, whose input and output
    handling costs as much as evaluating a small graph.

    A numba-compiled graph is called through its jitted function, bound to the shared
    variables' values as they are then (about half the cost of its storage); other backends
    through the virtual machine and the function's storage, which chains share, under ``lock``
    (the calls hold the GIL anyway).
    """
    jitted = getattr(function.vm, "jit_fn", None)
    if jitted is not None and len(function.input_storage) == len(function.maker.fgraph.inputs):
        def bind():
            shared = [container.storage[0] for container in function.input_storage[1:]]
            return lambda x: jitted(np.array(x), *shared)  # a writable copy of x: numba types it once

        return bind
    x_storage, outputs, run = function.input_storage[0], function.output_storage, function.vm

    def call(x):
        with lock:
            x_storage.storage[0] = np.array(x)
            run()
            return tuple(np.array(output.storage[0]) for output in outputs)

    return lambda: call


def lift_constants(outputs: list) -> list:
    """``outputs`` with their data constants as shared variables: float and boolean arrays,
    integer arrays of two or more dimensions, and integer vectors used as indices (advanced
    indexing). A function compiled by numba then takes the data as inputs, so its code, and
    numba's disk cache of it, serve every data set of the same model form. Dimensions of length
    1 stay static (they broadcast); scalars and other integer vectors (shapes) stay constants."""
    from pytensor.graph.replace import clone_replace
    from pytensor.graph.traversal import ancestors, applys_between
    from pytensor.tensor.subtensor import (
        AdvancedIncSubtensor,
        AdvancedIncSubtensor1,
        AdvancedSubtensor,
        AdvancedSubtensor1,
    )
    from pytensor.tensor.variable import TensorConstant

    indexing = (AdvancedSubtensor, AdvancedSubtensor1, AdvancedIncSubtensor, AdvancedIncSubtensor1)
    constants = [v for v in ancestors(outputs) if isinstance(v, TensorConstant) and v.ndim > 0]
    indices = {v for node in applys_between(constants, outputs) if isinstance(node.op, indexing)
               for v in node.inputs[1:]}

    def data(v) -> bool:
        kind = np.dtype(v.dtype).kind
        return kind in "fb" or (kind in "iu" and (v.ndim > 1 or v in indices))

    replace = {v: pytensor.shared(np.array(v.data), shape=tuple(1 if d == 1 else None for d in v.type.shape))
               for v in dict.fromkeys(constants) if data(v)}
    return clone_replace(outputs, replace=replace, rebuild_strict=False) if replace else list(outputs)


def _require_nutpie():
    try:
        import nutpie
    except ImportError:
        raise ImportError("sampler='nutpie' needs the nutpie package: pip install nutpie") from None
    return nutpie


def compile_model(model: pm.Model, mode: str | None = None, start: dict | None = None):
    """A nutpie model whose log-density, gradient and outputs are compiled PyTensor functions.

    ``mode`` is the PyTensor backend of the log-density and gradient; by default
    :func:`choose_mode` picks it (see :data:`DEFAULT_MODE` and :data:`NUMBA_MODE`).
    ``start`` replaces values of the model's initial point (by value-variable name), around
    which each chain starts with PyMC's jitter.
    """
    _require_nutpie()
    from nutpie.compiled_pyfunc import from_pyfunc

    point = {**model.initial_point(), **(start or {})}
    value_vars = model.value_vars
    logp = model.logp(jacobian=True)
    mode = mode or choose_mode(logp)
    grad = pt.concatenate([g.ravel() for g in pt.grad(logp, value_vars)])
    outputs = model.free_RVs + model.deterministics
    names = [v.name for v in outputs]
    values = model.replace_rvs_by_values(outputs)
    if mode == NUMBA_MODE:
        logp, grad, *values = lift_constants([logp, grad, *values])
    (logp_x, grad_x), x = join_nonshared_inputs(point, [logp, grad], value_vars)
    logp_fn = pytensor.function([x], [logp_x, grad_x], trust_input=True, mode=_compile_mode(mode))
    expanded, x_expand = join_nonshared_inputs(point, values, value_vars)
    # the per-draw outputs as one flat vector, then the shape of each
    flat = pt.concatenate([pt.cast(e, "float64").ravel() for e in expanded])
    expand_fn = pytensor.function([x_expand], [flat, *[e.shape for e in expanded]], trust_input=True,
                                  mode=_compile_mode(mode))
    start = np.concatenate([np.ravel(point[v.name]) for v in value_vars]).astype(float)
    shapes = [tuple(int(d) for d in shape) for shape in expand_fn(start)[1:]]
    logp_fn(start)  # a just-in-time backend compiles on the first call: do it before sampling

    def initial_point(seed):
        # PyMC's "jitter+adapt_diag" start: the model's initial point plus U(-1, 1) jitter
        return start + np.random.default_rng(seed).uniform(-1, 1, size=start.shape)

    dims = {name: tuple(model.named_vars_to_dims.get(name, ())) for name in names}
    dims = {k: v for k, v in dims.items() if v}
    coords = {name: [str(v) for v in values] for name, values in model.coords.items()}  # nutpie takes strings
    if mode == NUMBA_MODE:
        native = nutpie_native.native_model(logp_fn, expand_fn, names, shapes, start, initial_point, dims, coords)
        if native is not None:
            return native

    lock = threading.Lock()  # nutpie runs chains in threads
    bind_logp, bind_expand = _binder(logp_fn, lock), _binder(expand_fn, lock)
    slices = nutpie_native.output_slices(shapes)

    def make_logp():
        call = bind_logp()

        def logp_and_grad(x):
            value, gradient = call(x)
            return float(value), gradient

        return logp_and_grad

    def make_expand(seed1, seed2, chain):
        call = bind_expand()

        def expand(x):
            values = call(x)[0]
            return {name: values[part].reshape(shape) for name, part, shape in zip(names, slices, shapes)}

        return expand

    return from_pyfunc(len(start), make_logp, make_expand, [np.dtype("float64")] * len(names), shapes, names,
                       dims=dims, coords=coords, make_initial_point_fn=initial_point)


def sample_compiled(compiled, model: pm.Model, *, draws: int, tune: int, chains: int, cores: int | None,
                    random_seed, progressbar: bool, **kwargs):
    """Sample a model compiled by :func:`compile_model` (its shared variables as they are now).

    ``cores`` None runs chains in parallel threads when the log-density is a C callback
    (:mod:`~bayesmeta.engines.bayes.nutpie_native`), else in one thread.
    """
    nutpie = _require_nutpie()
    seed = random_seed if isinstance(random_seed, (int, np.integer)) else None
    native = isinstance(compiled, nutpie_native.native_model_type())
    if native:
        compiled = nutpie_native.with_current_values(compiled)
    if cores is None:
        # C callbacks run chains in parallel; Python callbacks serialise them on the GIL (one thread is fastest)
        cores = min(chains, available_cores()) if native else 1
    start = time.perf_counter()
    trace = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
                          progress_bar=progressbar, save_warmup=False, return_raw_trace=True, **kwargs)
    sampling_time = time.perf_counter() - start
    idata = trace_to_idata(*trace.get_arrow_trace(), compiled.dims, model.coords)
    idata.posterior.attrs["sampling_time"] = sampling_time  # as PyMC reports it
    return idata


def _warmup_rows(stats) -> int:
    import pyarrow

    return int(pyarrow.array(stats.column("tuning")).to_numpy(zero_copy_only=False).sum())


def _column_values(column, n_rows: int) -> np.ndarray:
    """An arrow column as an array (rows, *shape), its shape read from the field's metadata."""
    import pyarrow

    shape = (column.field.metadata or {}).get(b"shape", b"")
    shape = tuple(int(v) for v in shape.decode().split(",")) if shape else ()
    values = pyarrow.array(column)
    if hasattr(values, "flatten"):
        values = values.flatten()
    return np.asarray(values.to_numpy(zero_copy_only=False)).reshape((n_rows,) + shape)


def trace_to_idata(draw_batches, stat_batches, dims: dict, coords: dict):
    """InferenceData (``posterior`` and ``sample_stats``, draws after warm-up) from nutpie's
    arrow trace: one batch of draws and one of sampler statistics per chain.

    nutpie's own conversion also converts the warm-up and the vector statistics
    (mass matrices, divergence locations), which costs as much as a short run of a
    small model; the statistics kept are the scalar ones (``diverging``, ``n_steps``,
    ``step_size``, ``energy``...).
    """
    import arviz as az
    import pyarrow
    import xarray as xr

    warmup = [_warmup_rows(s) for s in stat_batches]
    draws = [d.slice(w, d.num_rows - w) for d, w in zip(draw_batches, warmup)]
    stats = [s.slice(w, s.num_rows - w) for s, w in zip(stat_batches, warmup)]
    n = draws[0].num_rows
    if any(d.num_rows != n for d in draws):
        raise ValueError("nutpie: the chains hold different numbers of draws (an interrupted run?).")
    chain_draw = {"chain": np.arange(len(draws)), "draw": np.arange(n)}

    def dataset(batches, names):
        variables = {}
        for name in names:
            values = np.stack([_column_values(b.column(name), n) for b in batches])
            extra = tuple(dims.get(name, ())) or tuple(f"{name}_dim_{i}" for i in range(values.ndim - 2))
            variables[name] = (("chain", "draw") + extra, values)
        used = {dim for _, (dimensions, _) in variables.items() for dim in dimensions}
        return xr.Dataset(variables, coords={**chain_draw, **{k: list(v) for k, v in coords.items() if k in used}})

    schema = pyarrow.schema(stats[0].schema)
    scalar = [f.name for f in schema if not pyarrow.types.is_list(f.type)
              and not pyarrow.types.is_large_list(f.type) and f.name not in ("tuning", "chain", "draw")]
    return az.InferenceData(posterior=dataset(draws, pyarrow.schema(draws[0].schema).names),
                            sample_stats=dataset(stats, scalar))
