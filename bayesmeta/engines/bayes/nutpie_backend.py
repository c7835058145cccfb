"""nutpie's NUTS (Rust) on the model's log-density compiled by PyTensor.

nutpie's own PyMC path compiles the model with numba, which takes 10-15 s on
every run even for a small model. Here the log-density and its gradient are
compiled by PyTensor (by default its C backend, whose disk cache makes later
runs start fast) and handed to nutpie as Python callables: nutpie runs the
sampler loop, adaptation and bookkeeping in Rust, so each leapfrog step costs
little more than one call of the compiled function.
"""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.pytensorf import join_nonshared_inputs
from pytensor.compile.mode import get_mode

#: PyTensor backend of the log-density. The C backend's compiled code is cached on
#: disk and loads in well under a second. ``mode="NUMBA"`` evaluates small graphs
#: about 3x faster, but loading its cache takes seconds in every new process, and
#: graphs holding large constant arrays (the block designs) are compiled anew each time.
DEFAULT_MODE = "FAST_RUN"


def _compile_mode(mode: str):
    """The PyTensor mode; the C backend keeps intermediate results between calls (no
    garbage collection of them), which saves about a sixth of each small call."""
    if mode == "FAST_RUN":
        return get_mode("FAST_RUN").clone(link_kwargs={"allow_gc": False})
    return mode


def _require_nutpie():
    try:
        import nutpie
    except ImportError:
        raise ImportError("sampler='nutpie' needs the nutpie package: pip install nutpie") from None
    return nutpie


def compile_model(model: pm.Model, mode: str = DEFAULT_MODE):
    """A nutpie model whose log-density, gradient and outputs are compiled PyTensor functions.

    ``mode`` is the PyTensor backend of the log-density and gradient (see :data:`DEFAULT_MODE`).
    """
    _require_nutpie()
    from nutpie.compiled_pyfunc import from_pyfunc

    point = model.initial_point()
    value_vars = model.value_vars
    logp = model.logp(jacobian=True)
    grad = pt.concatenate([g.ravel() for g in pt.grad(logp, value_vars)])
    (logp_x, grad_x), x = join_nonshared_inputs(point, [logp, grad], value_vars)
    logp_fn = pytensor.function([x], [logp_x, grad_x], trust_input=True, mode=_compile_mode(mode))
    outputs = model.free_RVs + model.deterministics
    names = [v.name for v in outputs]
    expanded, x_expand = join_nonshared_inputs(point, model.replace_rvs_by_values(outputs), value_vars)
    expand_fn = pytensor.function([x_expand], expanded, trust_input=True)  # once per draw: C is fine
    start = np.concatenate([np.ravel(point[v.name]) for v in value_vars]).astype(float)
    shapes = [tuple(np.shape(value)) for value in expand_fn(start)]
    logp_fn(start)  # a just-in-time backend compiles on the first call: do it before sampling

    # nutpie runs chains in threads; a compiled function keeps its inputs and outputs
    # in shared storage, so calls are serialised (they hold the GIL anyway)
    lock = threading.Lock()

    # call the compiled graph's virtual machine directly: Function.__call__'s input and
    # output handling costs as much as evaluating a small graph
    x_storage = logp_fn.input_storage[0]
    value_storage, gradient_storage = logp_fn.output_storage
    run = logp_fn.vm

    def make_logp():
        def logp_and_grad(x):
            with lock:  # a writable copy of x: numba compiles once per array type
                x_storage.storage[0] = np.array(x)
                run()
                return float(value_storage.storage[0]), np.array(gradient_storage.storage[0])

        return logp_and_grad

    def make_expand(seed1, seed2, chain):
        def expand(x):
            with lock:
                return {name: np.array(value, dtype="float64") for name, value in zip(names, expand_fn(np.array(x)))}

        return expand

    def initial_point(seed):
        # PyMC's "jitter+adapt_diag" start: the model's initial point plus U(-1, 1) jitter
        return start + np.random.default_rng(seed).uniform(-1, 1, size=start.shape)

    dims = {name: tuple(model.named_vars_to_dims.get(name, ())) for name in names}
    coords = {name: [str(v) for v in values] for name, values in model.coords.items()}  # nutpie takes strings
    return from_pyfunc(len(start), make_logp, make_expand, [np.dtype("float64")] * len(names), shapes, names,
                       dims={k: v for k, v in dims.items() if v}, coords=coords,
                       make_initial_point_fn=initial_point)


def sample(model: pm.Model, *, draws: int, tune: int, chains: int, cores: int, random_seed, progressbar: bool,
           **kwargs):
    """Sample with nutpie; returns InferenceData (posterior and sample_stats).

    ``kwargs`` go to :func:`nutpie.sample`, except ``mode`` (the PyTensor backend of the
    log-density, default :data:`DEFAULT_MODE`; ``"NUMBA"`` samples faster once compiled).
    """
    compiled = compile_quietly(model, kwargs.pop("mode", DEFAULT_MODE))
    return sample_compiled(compiled, model, draws=draws, tune=tune, chains=chains, cores=cores,
                           random_seed=random_seed, progressbar=progressbar, **kwargs)


def compile_quietly(model: pm.Model, mode: str = DEFAULT_MODE):
    """:func:`compile_model`, without numba's note on the nested likelihood's Python entry point."""
    with warnings.catch_warnings():
        # numba runs the fused nested likelihood (its own numba kernel) through its Python
        # entry point; that is intended, and as fast as inlining it
        warnings.filterwarnings("ignore", message="Numba will use object mode to run NestedLoglik")
        return compile_model(model, mode)


def sample_compiled(compiled, model: pm.Model, *, draws: int, tune: int, chains: int, cores: int, random_seed,
                    progressbar: bool, **kwargs):
    """Sample a model compiled by :func:`compile_model` (its shared variables as they are now)."""
    nutpie = _require_nutpie()
    seed = random_seed if isinstance(random_seed, (int, np.integer)) else None
    start = time.perf_counter()
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
                          progress_bar=progressbar, save_warmup=False, **kwargs)
    idata.posterior.attrs.setdefault("sampling_time", time.perf_counter() - start)  # as PyMC reports it
    original = {name: list(values) for name, values in model.coords.items() if name in idata.posterior.dims}
    idata.posterior = idata.posterior.assign_coords(original)
    return idata
