"""NUTS on the three-level school model (and a 10,000-row three-level data set),
timed from fresh Python processes, beside brms when R and brms are installed.

Each fit runs in a new process (``python -c ...``), so the wall time includes
imports, graph construction and compilation: once with an empty PyTensor
compile cache (cold) and once with the cache the first run filled (warm).
Every sampler is timed: PyMC's NUTS, and nutpie's (when installed) on the
log-density compiled as bayesmeta chooses (numba for these nested models) and by
PyTensor's C backend (``nutpie-c``, ``mode="FAST_RUN"``). A bivariate model with
unstructured (UN) random effects on 500 simulated studies (1,000 rows, a block V)
runs 2 chains. BCG with an uncentred
moderator (``logrr ~ year``) and with it centred shows that the fixed effects are
sampled through standardised coefficients: the two need the same number of
leapfrog steps per draw (``leapfrog_steps``).
Reported: wall time, sampling time (tuning + draws, as the sampler reports it),
divergences, and bulk ESS per sampling second for every parameter; the same for
brms (``effect | se(sqrt(var)) ~ 1 + (1 | district/study)``), whose sampling
time is Stan's own (warmup + sampling summed over chains, divided by the 2 chains
run at a time), so that R's overhead around the sampler is not counted against it.

Run: ``python benchmarks/bench_nuts.py [--quick]`` (``--quick``: 200 + 200 draws, school only).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

import pandas as pd

CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import arviz as az
import numpy as np
import bayesmeta as bm
draws, tune, data, sampler, chains = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
if data == "school":
    dat = bm.datasets.load("school")
    model = bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | district/study")
elif data.startswith("bcg"):  # a moderator far from zero (year), as given or centred
    dat = bm.datasets.load("bcg")
    dat["year_centred"] = dat["year"] - dat["year"].mean()
    model = bm.MetaModel("logrr ~ year" if data == "bcg-year" else "logrr ~ year_centred", data=dat, vi="logrrvar")
elif data == "bivariate":  # 500 studies with two correlated outcomes: bivariate UN random effects
    import pandas as pd
    rng = np.random.default_rng(2)
    k = 500
    u = rng.multivariate_normal([0, 0], [[0.09, 0.045], [0.045, 0.16]], size=k)
    vi = rng.uniform(0.01, 0.1, (k, 2))
    e = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=k) * np.sqrt(vi)
    dat = pd.DataFrame({"study": np.repeat(np.arange(k), 2), "outcome": np.tile(["a", "b"], k),
                        "y": (np.array([0.3, -0.2]) + u + e).ravel(), "vi": vi.ravel()})
    V = bm.vcalc("vi", "study", type="outcome", rho=0.5, data=dat)
    model = bm.MetaModel("y ~ 0 + outcome", data=dat, V=V, random="~ outcome | study", struct="UN")
elif data == "coscale":  # 500 studies, SDs and correlation depending on habitat (benchmarks/bench_coscale.py)
    sys.path.insert(0, "tests")
    from coscale_cases import simulate
    dat, blocks = simulate(1, n_studies=500, missing=0.1)
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, random="~ outcome | study", struct="UN",
                         scale={"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat", "rho": "~ habitat"}})
else:
    rng = np.random.default_rng(1)
    sizes = rng.integers(3, 8, size=4000)
    district = np.repeat(np.arange(len(sizes)), sizes)[:10000]
    vi = rng.uniform(0.01, 0.2, 10000)
    y = 0.2 + rng.normal(0, 0.25, len(sizes))[district] + rng.normal(0, 0.17, 10000) + rng.normal(0, np.sqrt(vi))
    import pandas as pd
    dat = pd.DataFrame({"district": district, "study": np.arange(10000), "effect": y, "var": vi})
    model = bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | district/study")
options = {"sampler": "nutpie", "mode": "FAST_RUN"} if sampler == "nutpie-c" else {"sampler": sampler}
post = model.sample(draws=draws, tune=tune, chains=chains, random_seed=1, progressbar=False, **options)
idata = post.idata
ess = az.ess(idata, var_names=[v for v in ("beta", "sigma", "tau", "alpha", "zeta") if v in idata.posterior],
             method="bulk")
values = {f"{v}[{i}]": float(x) for v in ess.data_vars
          for i, x in zip(ess[v].coords[ess[v].dims[0]].values, np.ravel(ess[v].values))}
print("RESULT " + json.dumps({"sampling_s": float(idata.posterior.attrs["sampling_time"]),
                             "divergences": post.diagnostics["divergences"], "ess_bulk": values,
                             "steps": float(idata.sample_stats["n_steps"].mean())}))
"""

BRMS = r"""
suppressPackageStartupMessages(library(brms))
args <- commandArgs(trailingOnly = TRUE)
draws <- as.integer(args[1]); tune <- as.integer(args[2])
dat <- read.csv(args[3])
t0 <- proc.time()[["elapsed"]]
f <- brm(effect | se(sqrt(var)) ~ 1 + (1 | district/study), data = dat, chains = 0, refresh = 0, silent = 2)
t1 <- proc.time()[["elapsed"]]
fit <- update(f, chains = 4, cores = 2, iter = draws + tune, warmup = tune, seed = 1, refresh = 0, silent = 2,
              recompile = FALSE)
t2 <- proc.time()[["elapsed"]]
# Stan's own warmup + sampling time per chain; the chains ran two at a time
stan_s <- sum(rstan::get_elapsed_time(fit$fit)) / 2
s <- posterior::summarise_draws(as_draws_df(fit, variable = c("b_Intercept", "sd_district__Intercept",
                                                         "sd_district:study__Intercept")), "ess_bulk")
np <- nuts_params(fit)
div <- sum(np$Value[np$Parameter == "divergent__"])
cat("RESULT ", jsonlite::toJSON(list(compile_s = t1 - t0, sampling_s = stan_s, update_s = t2 - t1,
    divergences = div,
    ess_bulk = as.list(setNames(s$ess_bulk, s$variable))), auto_unbox = TRUE, digits = NA), "\n", sep = "")
"""


#: brms' names of the school model's parameters, in the order the R script reports them.
BRMS_PARAMETERS = ["b_Intercept", "sd_district__Intercept", "sd_district:study__Intercept"]


def run_child(draws: int, tune: int, data: str, env: dict, sampler: str = "pymc", chains: int = 4) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(draws), str(tune), data, sampler, str(chains)],
                         capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return {"wall_s": wall, **json.loads(line[7:])}


def run_brms(draws: int, tune: int, workdir: Path) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    probe = subprocess.run(["Rscript", "-e", "library(brms)"], capture_output=True)
    if probe.returncode != 0:
        return None
    import bayesmeta as bm

    csv = workdir / "school.csv"
    bm.datasets.load("school").to_csv(csv, index=False)
    script = workdir / "bench.R"
    script.write_text(BRMS)
    start = time.perf_counter()
    out = subprocess.run(["Rscript", str(script), str(draws), str(tune), str(csv)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        print("brms failed:\n" + out.stderr[-2000:], file=sys.stderr)
        return None
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return {"wall_s": wall, **json.loads(line[7:])}


def rows_for(label: str, result: dict) -> list[dict]:
    rows = []
    ess_values = result["ess_bulk"]
    if isinstance(ess_values, list) and len(ess_values) == 1 and isinstance(ess_values[0], dict):
        ess_values = ess_values[0]  # jsonlite may wrap a named list in a one-element array
    elif isinstance(ess_values, list):  # or drop the names: they are in BRMS_PARAMETERS' order
        ess_values = dict(zip(BRMS_PARAMETERS, ess_values))
    for name, ess in ess_values.items():
        rows.append({"run": label, "parameter": name, "wall_s": result["wall_s"],
                     "sampling_s": result["sampling_s"], "divergences": result["divergences"],
                     "leapfrog_steps": result.get("steps", float("nan")),
                     "ess_bulk": ess, "ess_per_s": ess / result["sampling_s"]})
    return rows


def main() -> None:
    quick = "--quick" in sys.argv
    draws = tune = 200 if quick else 1000
    samplers = ["pymc"] + (["nutpie", "nutpie-c"] if find_spec("nutpie") else [])
    rows, warm = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for sampler in samplers:
            cold_env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={tmp}/pytensor-{sampler}")  # numba's cache too
            rows += rows_for(f"bayesmeta {sampler} school (cold cache)", run_child(draws, tune, "school", cold_env,
                                                                               sampler))
            run_child(draws, tune, "school", dict(os.environ), sampler)  # fill the default cache
            warm[sampler] = run_child(draws, tune, "school", dict(os.environ), sampler)
            rows += rows_for(f"bayesmeta {sampler} school (warm cache)", warm[sampler])
        brms = run_brms(draws, tune, Path(tmp))
        if brms is not None:
            rows += rows_for("brms school", brms)
        else:
            print("R with brms not found: brms skipped.", file=sys.stderr)
        if not quick:
            for sampler in samplers:
                rows += rows_for(f"bayesmeta {sampler} 10,000 rows (warm)",
                                 run_child(draws, tune, "sim", dict(os.environ), sampler))
            for sampler in samplers[:2]:
                run_child(draws, tune, "bivariate", dict(os.environ), sampler, chains=2)  # fill the cache
                rows += rows_for(f"bayesmeta {sampler} bivariate UN, 500 studies, 2 chains (warm)",
                                 run_child(draws, tune, "bivariate", dict(os.environ), sampler, chains=2))
                for data in ("bcg-year", "bcg-year-centred"):
                    run_child(draws, tune, data, dict(os.environ), sampler)  # fill the cache
                    rows += rows_for(f"bayesmeta {sampler} {data} (warm)",
                                     run_child(draws, tune, data, dict(os.environ), sampler))
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))
    if brms is not None:
        theirs = table[table["run"] == "brms school"]["ess_per_s"].to_numpy()
        print(f"\nbrms: compile {brms['compile_s']:.1f} s, Stan sampling {brms['sampling_s']:.2f} s "
              f"(update() call {brms['update_s']:.1f} s), wall {brms['wall_s']:.1f} s")
        for sampler in samplers:
            ours = table[table["run"] == f"bayesmeta {sampler} school (warm cache)"]["ess_per_s"].to_numpy()
            print(f"bayesmeta ({sampler}) / brms, bulk ESS per sampling second "
                  f"(beta, sd[district], sd[district/study]): " + ", ".join(f"{a / b:.1f}x" for a, b in zip(ours, theirs))
                  + f"; wall time brms / bayesmeta (warm): {brms['wall_s'] / warm[sampler]['wall_s']:.1f}x")


if __name__ == "__main__":
    main()
