"""REML fit times of bivariate location-coscale models (scale models of a structured term), printed as a table.

Data: the simulation behind the bundled ``habitat`` data set (``tests/coscale_cases.py``): two outcomes
per study, each missing with probability 0.1, SDs and correlation depending on the study's habitat,
sampling correlation 0.4 within studies. Models, fitted by REML from the DataFrame (building the model
included; warm: after one untimed run; median of repeated runs):

* ``coscale``: ``scale={"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat", "rho": "~ habitat"}}``
  (no other program fits it with a block V and missing outcomes; goal at 5,000 studies: under 2 s);
* ``UN``: the plain bivariate model, also timed with metafor's ``rma.mv(..., struct = "UN")`` (sparse) in
  the same run where R with metafor is installed, at 100 studies only: at 500 studies (about 900 rows)
  rma.mv had not finished after 14 minutes on the 2-core benchmark machine.

``--nuts`` adds NUTS (the default sampler, 4 chains of 1000 draws after 1000 tuning steps) on 500
studies in a fresh Python process with a warm compile cache (after one run that fills it): wall time
(imports, model building, compilation, sampling, and the row log-likelihoods, random effects and
posterior predictive), sampling time, divergences and the smallest bulk ESS.

Run: ``python benchmarks/bench_coscale.py [--nuts]`` from the repository root.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from bench_nuts import run_child
from bench_reml import add_metafor, metafor_available, print_table, run_r_script

import bayesmeta as bm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from coscale_cases import simulate

#: (studies, bayesmeta repetitions, run metafor?)
CASES = [(100, 10, True), (500, 5, False), (5_000, 3, False)]
#: metafor runs longer than this (seconds) are abandoned.
R_TIMEOUT = 600
SCALE = {"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat", "rho": "~ habitat"}}

R_SCRIPT = r"""
suppressMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
dat <- read.csv(args[1]); reps <- as.integer(args[2])
V <- vcalc(vi, cluster = study, obs = outcome, rho = 0.4, data = dat, sparse = TRUE)
fit <- function() rma.mv(yi, V, mods = ~ 0 + outcome, random = ~ outcome | study, struct = "UN",
                         data = dat, method = "REML", sparse = TRUE)
f <- fit()
times <- replicate(reps, system.time(fit())[["elapsed"]])
cat(sprintf('{"seconds": %.6f, "loglik": %.10f}\n', median(times), as.numeric(logLik(f))))
"""


def fit(dat: pd.DataFrame, scale=None):
    V = bm.vcalc("vi", "study", obs="outcome", rho=0.4, data=dat)
    return bm.MetaModel("yi ~ 0 + outcome", data=dat, V=V, random="~ outcome | study", struct="UN",
                        scale=scale).fit("REML")


def time_fit(dat: pd.DataFrame, reps: int, scale=None) -> tuple[float, object, int]:
    """Median seconds of building and fitting, the last fit and its number of warnings."""
    fit(dat, scale)
    times = []
    for _ in range(reps):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            result = fit(dat, scale)
            times.append(time.perf_counter() - start)
    return float(np.median(times)), result, len(caught)


def main() -> None:
    with_r = metafor_available()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for studies, reps, run_r in CASES:
            dat, _ = simulate(1, n_studies=studies, missing=0.1)
            for model, scale in (("coscale", SCALE), ("UN", None)):
                seconds, result, n_warnings = time_fit(dat, reps, scale)
                row = {"model": model, "studies": studies, "rows": len(dat), "bayesmeta_s": seconds,
                       "warnings": n_warnings, "converged": result.converged, "metafor_s": np.nan,
                       "metafor_ratio": np.nan}
                if model == "UN" and with_r and run_r:
                    ref = run_r_script(R_SCRIPT, dat, ["1"], Path(tmp), R_TIMEOUT)
                    add_metafor(row, "metafor", ref, result, f"{studies} studies")
                rows.append(row)
                print(f"done: {model}, {studies} studies", file=sys.stderr, flush=True)
    print_table(rows)
    print("\nmetafor_ratio = metafor time / bayesmeta time (higher is better for bayesmeta); metafor cannot fit the "
          "coscale model.")
    if "--nuts" in sys.argv:
        run_child(1000, 1000, "coscale", dict(os.environ), "nutpie")  # fill the compile cache
        result = run_child(1000, 1000, "coscale", dict(os.environ), "nutpie")
        print(f"\nNUTS (nutpie), 500 studies, 4 x 1000 after 1000, fresh process, warm cache: wall "
              f"{result['wall_s']:.1f} s, sampling {result['sampling_s']:.1f} s, {result['divergences']} divergences, "
              f"min bulk ESS {min(result['ess_bulk'].values()):.0f}")


if __name__ == "__main__":
    main()
