"""nutpie's NUTS on the PyTensor-compiled log-density (optional dependency)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from cases import berkey_model

import bayesmeta as bm

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def _school():
    return bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")


def test_missing_nutpie_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "nutpie", None)
    with pytest.raises(ImportError, match="sampler='nutpie' needs the nutpie package: pip install nutpie"):
        _school().sample(draws=10, tune=10, chains=1, sampler="nutpie", progressbar=False)


@pytest.mark.parametrize("make", [_school, berkey_model], ids=["school", "berkey-UN"])
def test_nutpie_result_matches_the_pymc_layout(make):
    pytest.importorskip("nutpie")
    model = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)
        post = model.sample(draws=300, tune=300, chains=2, random_seed=4, sampler="nutpie", progressbar=False)
    idata = post.idata
    assert post.sampler == "nutpie"
    assert idata.posterior["beta"].dims == ("chain", "draw", "term")
    assert list(idata.posterior["beta"].coords["term"].values) == model.design.coef_names
    assert idata.posterior.sizes["draw"] == 300 and idata.posterior.sizes["chain"] == 2
    assert idata.log_likelihood["y"].sizes["obs"] == model.design.n
    assert set(idata.log_prior.data_vars) >= {"beta"}
    assert any(name.startswith("u_") for name in idata.posterior.data_vars)
    assert idata.posterior_predictive["y"].sizes["obs"] == model.design.n
    assert post.diagnostics["divergences"] == 0
    # the posterior centres near REML (weak default priors)
    reml = model.fit()
    beta = idata.posterior["beta"]
    centre, spread = beta.median(("chain", "draw")).values, beta.std(("chain", "draw")).values
    assert np.all(np.abs(centre - reml.coef.to_numpy()) < 0.3 * spread)


def _log_density_functions(model, modes, shared: bool = False):
    """The compiled log-density and gradient of ``model``'s default PyMC graph in each PyTensor mode
    (with ``shared``, the priors' hyperparameters in shared variables, as for a prior grid)."""
    import pytensor
    import pytensor.tensor as pt
    from pymc.pytensorf import join_nonshared_inputs

    from bayesmeta.engines.bayes.priors import resolve_priors
    from bayesmeta.engines.bayes.pymc_model import SharedHyperparameters, build_model

    pm_model = build_model(model.design, model.param, resolve_priors(model.design, model.param),
                           shared=SharedHyperparameters() if shared else None)
    point = pm_model.initial_point()
    logp = pm_model.logp(jacobian=True)
    grad = pt.concatenate([g.ravel() for g in pt.grad(logp, pm_model.value_vars)])
    (logp_x, grad_x), x = join_nonshared_inputs(point, [logp, grad], pm_model.value_vars)
    return logp, [pytensor.function([x], [logp_x, grad_x], mode=mode) for mode in modes]


def test_nested_likelihood_compiled_by_numba_equals_the_c_backend():
    """The fused nested Op in a numba-compiled graph (chosen for nutpie) gives the C backend's
    log-density and gradient; the design is data (shared variables), not constants."""
    from pytensor.graph.basic import Constant

    from bayesmeta.engines.bayes import nutpie_backend

    logp, (c_backend, numba_backend) = _log_density_functions(_school(), ["FAST_RUN", "NUMBA"])
    assert nutpie_backend.choose_mode(logp) == "NUMBA"
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = rng.normal(scale=0.7, size=3)
        (v_c, g_c), (v_n, g_n) = c_backend(x), numba_backend(x)
        np.testing.assert_allclose(v_n, v_c, rtol=1e-12)
        np.testing.assert_allclose(g_n, g_c, rtol=1e-10, atol=1e-12)
    large = [v for v in numba_backend.maker.fgraph.variables if isinstance(v, Constant) and v.data.size > 2]
    assert not large, f"data compiled in as constants: {large}"


def test_direct_calls_equal_the_compiled_function_with_current_shared_values():
    """nutpie calls the numba-compiled graph's jitted function (or the C backend's virtual machine)
    directly; both equal the compiled function, with shared variables (a prior grid's
    hyperparameters) as they are when nutpie asks for the function."""
    import threading

    from bayesmeta.engines.bayes import nutpie_backend

    model = _school()
    for mode in ("NUMBA", "FAST_RUN"):
        _, (function,) = _log_density_functions(model, [mode], shared=True)
        bind = nutpie_backend._binder(function, threading.Lock())
        shared = next(v for v in function.get_shared() if v.name == "beta_sigma")
        x = np.array([0.1, -1.0, -2.0])
        for sigma in (1.0, 3.0):
            shared.set_value(np.array([sigma]))
            value, gradient = bind()(x)
            expected_value, expected_gradient = function(x)
            assert value == pytest.approx(float(expected_value), rel=1e-14)
            np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-14)
        # the numba path is bound when nutpie asks for the function; the virtual machine reads the storage
        call = bind()
        shared.set_value(np.array([1.0]))
        bound_value = float(call(x)[0])
        assert (bound_value == pytest.approx(float(function(x)[0]), rel=1e-14)) == (mode == "FAST_RUN")


def test_block_designs_use_numba_from_the_threshold_on():
    """Small batched designs keep the C backend (a new form compiles in seconds, not a minute); from
    NUMBA_MIN_BLOCKS blocks on, numba (chains in parallel through C callbacks)."""
    from bayesmeta.engines.bayes import nutpie_backend

    logp, _ = _log_density_functions(berkey_model(), [])
    assert nutpie_backend.choose_mode(logp) == "FAST_RUN"
    assert nutpie_backend.choose_mode(logp, nutpie_backend.NUMBA_MIN_BLOCKS - 1) == "FAST_RUN"
    assert nutpie_backend.choose_mode(logp, nutpie_backend.NUMBA_MIN_BLOCKS) == "NUMBA"


def _coscale_model(seed: int):
    from coscale_cases import simulate

    dat, blocks = simulate(seed, n_studies=40, missing=0.2)
    return bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, random="~ outcome | study", struct="UN",
                        scale={"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat", "rho": "~ habitat"}})


def _coscale_log_density(seed: int):
    import pytensor.tensor as pt

    from bayesmeta.engines.bayes.priors import resolve_priors
    from bayesmeta.engines.bayes.pymc_model import SharedHyperparameters, build_model

    model = _coscale_model(seed)
    pm_model = build_model(model.design, model.param, resolve_priors(model.design, model.param),
                           shared=SharedHyperparameters())
    logp = pm_model.logp(jacobian=True)
    return pm_model, [logp, pt.concatenate([g.ravel() for g in pt.grad(logp, pm_model.value_vars)])]


def test_lifted_constants_leave_the_log_density_and_no_data_in_the_code():
    """lift_constants turns the data into shared variables: the log-density and gradient are unchanged,
    and two data sets of one form (different sizes, designs and outcomes) leave the same constants, so
    numba's compiled code of one serves the other."""
    import pytensor
    from pymc.pytensorf import join_nonshared_inputs
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import ancestors

    from bayesmeta.engines.bayes.nutpie_backend import lift_constants

    remaining = []
    for seed in (1, 2):
        pm_model, outputs = _coscale_log_density(seed)
        lifted = lift_constants(outputs)
        constants = [v for v in ancestors(lifted) if isinstance(v, Constant)]
        remaining.append(sorted(f"{c.type}{np.asarray(c.data).tolist()}" for c in constants))
        point = pm_model.initial_point()
        functions = [pytensor.function([x], out, mode="FAST_COMPILE") for out, x in
                     (join_nonshared_inputs(point, o, pm_model.value_vars) for o in (outputs, lifted))]
        x = np.random.default_rng(seed).normal(scale=0.3, size=sum(np.size(v) for v in point.values()))
        for original, new in zip(*(f(x) for f in functions)):
            np.testing.assert_allclose(new, original, rtol=1e-12)
    assert remaining[0] == remaining[1]
    assert all(np.asarray(c.data).size < 16 for c in constants)


def test_callbacks_with_many_shared_inputs_compile():
    """A C callback whose graph reads more shared variables than Python passes to a call directly (30):
    the generated source concatenates tuples of fewer, which numba compiles."""
    import numba
    from pytensor.link.numba.cache import compile_numba_function_src

    from bayesmeta.engines.bayes import nutpie_native

    class Variable:
        class type:
            ndim, dtype = 1, "float64"

    inputs = [Variable() for _ in range(45)]
    positions = {v: 2 * i for i, v in enumerate(inputs)}
    source = nutpie_native._wrapper_source("callback", "logp", inputs, positions)
    assert source.count("(x, s0, ") == 1 and "inner(*arguments)" in source

    @numba.njit
    def inner(x, *shared):
        total = 0.0
        for s in shared:
            total += s.sum()
        return total + x.sum(), x * 2.0

    arrays = [np.full(3, float(i)) for i in range(45)]
    table = np.array([v for a in arrays for v in (a.ctypes.data, a.size)], dtype=np.uint64)
    env = {"np": np, "carray": numba.carray, "as_pointer": nutpie_native._pointer_intrinsic(), "inner": inner,
           "N_DIM": 2, "N_OUT": 0, "N_TABLE": len(table)}
    callback = numba.cfunc(nutpie_native._signature("logp"))(compile_numba_function_src(source, "callback", env))
    import ctypes

    pointer = ctypes.POINTER(ctypes.c_double)
    x, gradient, value = np.array([1.0, 2.0]), np.zeros(2), np.zeros(1)
    status = callback.ctypes(2, x.ctypes.data_as(pointer), gradient.ctypes.data_as(pointer),
                             value.ctypes.data_as(pointer), table.ctypes.data)
    assert status == 0
    assert value[0] == 3.0 * sum(range(45)) + 3.0
    np.testing.assert_array_equal(gradient, [2.0, 4.0])


@pytest.mark.filterwarnings("ignore::bayesmeta.ConvergenceWarning")  # few draws on purpose
@pytest.mark.parametrize("callbacks", ["C", "Python"])
def test_nutpie_trace_is_converted_draws_after_warmup_only(callbacks, monkeypatch):
    """The posterior holds the draws after warm-up, in nutpie's order, and the sampler statistics
    the scalar ones, with the model's own coordinates; with C callbacks and with Python ones
    (what a numba graph falls back to when it cannot be wrapped)."""
    pytest.importorskip("nutpie")
    from bayesmeta.engines.bayes import nutpie_native

    if callbacks == "Python":
        monkeypatch.setattr(nutpie_native, "c_callback", lambda *args: None)
    post = _school().sample(draws=40, tune=30, chains=2, random_seed=2, sampler="nutpie", progressbar=False)
    idata = post.idata
    assert idata.posterior.sizes == {"chain": 2, "draw": 40, "term": 1, "sigma2_component": 2,
                                     "district": 11, "study": 56}
    assert idata.sample_stats["diverging"].dtype == bool and idata.sample_stats["n_steps"].shape == (2, 40)
    assert not any(v.startswith(("mass_matrix", "divergence_", "gradient")) for v in idata.sample_stats.data_vars)
    assert list(idata.posterior.district.values) == sorted(bm.datasets.load("school").district.unique())
    # sigma2 is sigma squared draw by draw: the two variables were aligned from one trace
    np.testing.assert_allclose(idata.posterior["sigma2"], idata.posterior["sigma"] ** 2, rtol=1e-12)
    assert idata.posterior.attrs["sampling_time"] > 0


@pytest.mark.slow
def test_nutpie_with_the_c_backend():
    pytest.importorskip("nutpie")
    model = _school()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)  # a short run: low ESS is expected
        post = model.sample(draws=300, tune=300, chains=2, random_seed=4, sampler="nutpie", mode="FAST_RUN",
                            progressbar=False)
    reml = model.fit()
    beta = post.idata.posterior["beta"]
    assert abs(float(beta.median()) - reml.coef.iloc[0]) < 0.3 * float(beta.std())
    assert post.diagnostics["divergences"] == 0


def _call_callbacks(compiled, x):
    """The log-density, gradient and per-draw outputs at ``x`` through a native model's C callbacks."""
    import ctypes

    from bayesmeta.engines.bayes import nutpie_native

    bound = nutpie_native.with_current_values(compiled)
    pointer = ctypes.POINTER(ctypes.c_double)
    x = np.ascontiguousarray(x, dtype=float)
    gradient, value, expanded = np.zeros(len(x)), np.zeros(1), np.zeros(compiled.n_expanded)
    table = bound.user_data.ctypes.data
    status = compiled.compiled_logp_func.ctypes(len(x), x.ctypes.data_as(pointer), gradient.ctypes.data_as(pointer),
                                               value.ctypes.data_as(pointer), table)
    assert status == 0
    status = compiled.compiled_expand_func.ctypes(len(x), len(expanded), x.ctypes.data_as(pointer),
                                                 expanded.ctypes.data_as(pointer), table)
    assert status == 0
    return value[0], gradient, expanded


def test_nested_models_sample_through_c_callbacks_reading_current_shared_values():
    """For nested designs nutpie calls C callbacks of the numba-compiled graph (no Python, no GIL);
    they equal the compiled functions, with a prior grid's hyperparameters as they are when
    sampling starts."""
    pytest.importorskip("nutpie")
    from bayesmeta.engines.bayes import nutpie_backend, nutpie_native
    from bayesmeta.engines.bayes.priors import resolve_priors
    from bayesmeta.engines.bayes.pymc_model import SharedHyperparameters, build_model

    model = _school()
    pm_model = build_model(model.design, model.param, resolve_priors(model.design, model.param),
                           shared=SharedHyperparameters())
    compiled = nutpie_backend.compile_model(pm_model)
    assert isinstance(compiled, nutpie_native.native_model_type())
    sigma = next(v for v in compiled.logp_func.get_shared() if v.name == "beta_sigma")
    x = np.array([0.1, -1.0, -2.0])
    values = []
    for hyperparameter in (1.0, 3.0):
        sigma.set_value(np.array([hyperparameter]))
        value, gradient, expanded = _call_callbacks(compiled, x)
        expected_value, expected_gradient = compiled.logp_func(x)
        assert value == pytest.approx(float(expected_value), rel=1e-14)
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-14)
        np.testing.assert_array_equal(expanded, compiled.expand_func(x)[0])
        values.append(value)
    assert values[0] != values[1]
    # the outputs are laid out as named: sigma (the two SDs) is exp of the log-SD coordinates
    names, slices, _ = compiled.shape_info
    np.testing.assert_allclose(expanded[slices[names.index("sigma")]], np.exp(x[1:]), rtol=1e-14)


def test_c_callbacks_are_loaded_from_the_disk_cache():
    """The callbacks (the whole graph linked into them, 5-15 s to compile) are compiled once per model
    form: wrapping the same compiled graph again loads them from numba's disk cache."""
    pytest.importorskip("nutpie")
    from bayesmeta.engines.bayes import nutpie_backend, nutpie_native
    from bayesmeta.engines.bayes.priors import resolve_priors
    from bayesmeta.engines.bayes.pymc_model import build_model

    model = _school()
    pm_model = build_model(model.design, model.param, resolve_priors(model.design, model.param))
    compiled = nutpie_backend.compile_model(pm_model)
    _, positions, n_table = nutpie_native.table_layout(compiled.logp_func, compiled.expand_func)
    again = nutpie_native.c_callback(compiled.logp_func, "logp", compiled.n_dim, 0, positions, n_table)
    assert again._cache_hits == 1


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayesmeta.ConvergenceWarning")  # few draws on purpose
def test_batched_models_compiled_by_numba_sample_through_c_callbacks():
    """A structured-block model compiled by numba (as for NUMBA_MIN_BLOCKS blocks or more): the fused block
    Op with the data lifted to shared variables gives the C backend's log-density and gradient, through C
    callbacks too (more than 30 shared variables), and another data set of the form samples with them."""
    pytest.importorskip("nutpie")
    from bayesmeta.engines.bayes import nutpie_backend, nutpie_native

    pm_model, _ = _coscale_log_density(3)
    compiled = nutpie_backend.compile_model(pm_model, "NUMBA")
    assert isinstance(compiled, nutpie_native.native_model_type())
    c_backend = nutpie_backend.compile_model(pm_model, "FAST_RUN")
    logp_and_grad = c_backend._make_logp_func()
    rng = np.random.default_rng(8)
    for _ in range(3):
        x = rng.normal(scale=0.3, size=compiled.n_dim)
        value, gradient, _ = _call_callbacks(compiled, x)
        expected_value, expected_gradient = compiled.logp_func(x)
        assert value == pytest.approx(float(expected_value), rel=1e-12)
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-12)
        c_value, c_gradient = logp_and_grad(x)
        assert value == pytest.approx(c_value, rel=1e-10)
        np.testing.assert_allclose(gradient, c_gradient, rtol=1e-8, atol=1e-10)
    post = _coscale_model(4).sample(draws=50, tune=50, chains=2, random_seed=1, mode="NUMBA", progressbar=False)
    assert post.idata.posterior.sizes["draw"] == 50 and post.diagnostics["divergences"] == 0


@pytest.mark.parametrize("studies,expected", [(40, "FAST_RUN"), (210, "NUMBA")])
def test_sample_compiles_large_batched_designs_with_numba(studies, expected, monkeypatch):
    """model.sample() passes the design's number of blocks to choose_mode: a bivariate model of 210 studies
    (NUMBA_MIN_BLOCKS or more blocks) is compiled by numba, one of 40 by the C backend."""
    pytest.importorskip("nutpie")
    from coscale_cases import simulate

    from bayesmeta.engines.bayes import nutpie_backend

    class Chosen(Exception):
        pass

    def compile_model(model, mode=None, start=None):
        raise Chosen(mode)

    monkeypatch.setattr(nutpie_backend, "compile_model", compile_model)
    dat, blocks = simulate(2, n_studies=studies, missing=0.0)
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, random="~ outcome | study", struct="UN")
    assert (model.design.n_blocks >= nutpie_backend.NUMBA_MIN_BLOCKS) == (expected == "NUMBA")
    with pytest.raises(Chosen) as chosen:
        model.sample(draws=10, tune=10, chains=1, progressbar=False)
    assert chosen.value.args == (expected,)
