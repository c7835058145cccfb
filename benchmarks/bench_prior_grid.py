"""Prior-sensitivity grid: wall time and number of compiled PyTensor functions.

The school model (three levels) under 12 priors: 6 half-normal SD priors x 2 normal
priors on the intercept, 2 chains x 500 draws after 500 tuning steps, in one process.
Every compiled function is counted (a PyTensor FunctionMaker each). With nutpie the
nested log-density is compiled by numba and called by nutpie as a C callback (chains in
parallel); numba's disk cache (in PyTensor's compile directory) serves every later run
of the same model form: run the benchmark twice to see both the first run (compiling)
and the usual one. For a first run on an
empty cache, point PyTensor at a new directory:
``PYTENSOR_FLAGS=base_compiledir=/tmp/empty python benchmarks/bench_prior_grid.py nutpie``.

    python benchmarks/bench_prior_grid.py [sampler]    # sampler: nutpie (the default) or pymc
"""

from __future__ import annotations

import sys
import time
import warnings

import pytensor.compile.function.types as function_types

import bayesmeta as bm


def main(sampler: str | None = None) -> None:
    from bayesmeta.engines.bayes.options import default_sampler

    sampler = sampler or default_sampler()
    compiled = {"n": 0}
    original = function_types.FunctionMaker.__init__

    def counting(self, *args, **kwargs):
        compiled["n"] += 1
        original(self, *args, **kwargs)

    function_types.FunctionMaker.__init__ = counting
    model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    grid = bm.prior_grid(sd=[bm.Prior("HalfNormal", sigma=s) for s in (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)],
                         beta=[bm.Prior("Normal", mu=0, sigma=1), bm.Prior("Normal", mu=0, sigma=10)])
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)
        sens = model.sensitivity(grid, draws=500, tune=500, chains=2, random_seed=1, sampler=sampler,
                                 progressbar=False)
    wall = time.perf_counter() - start
    print(f"{'priors':>8} {'sampler':>8} {'wall (s)':>9} {'s/prior':>8} {'compiled functions':>19}")
    print(f"{len(grid):>8} {sampler:>8} {wall:>9.1f} {wall / len(grid):>8.2f} {compiled['n']:>19}")
    print(f"\nmax R-hat {sens.table.r_hat.max():.3f}, divergences {int(sens.table.groupby('prior').divergences.first().sum())}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
