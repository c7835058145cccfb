"""Profile-likelihood confidence intervals of both variance components of a three-level model:
bayesmeta's ``fit.confint()`` beside metafor's ``confint(rma.mv(...))``, printed as a table.

Models: ``yi ~ 1, random = ~ 1 | district/study`` (REML) on the school data (56 rows)
and on simulated three-level data (``bench_reml.simulate``, seed 1: clusters of 3-7
rows, district and study variances 0.06 and 0.03) with 500 and 5,000 rows.
bayesmeta's ``confint_s`` is the median over fresh results (nothing cached) of
``fit.confint()`` on a fitted model: the profiles of both components, warm-started
on the block likelihood; ``fit_s`` is the fit itself. metafor is timed in the same
run when R is installed: ``rma.mv`` (``sparse = TRUE`` from 500 rows, where it is the
faster) and ``confint()`` with its default settings, counting the refits confint
makes (``refits``).

At 5,000 rows every rma.mv refit takes about a minute (sparse; dense is slower), so
metafor's confint takes most of an hour: by default the 5,000-row row times one
rma.mv fit and reports ``refits x fit time`` with the refit count of the 500-row
run, marked ``estimated``; ``--metafor-5000`` times metafor's confint there in full.
``max_rel_diff`` compares the four bounds with metafor's (whose default root
tolerance, 1.2e-4, limits the agreement).

Run: ``python benchmarks/bench_confint.py [--metafor-5000]``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_reml import r_available, simulate

import bayesmeta as bm

#: (name, rows, bayesmeta repetitions, metafor: "full" / "estimate", metafor's sparse= (the faster at that size))
CASES = [("school", 56, 5, "full", False), ("sim-500", 500, 3, "full", True),
         ("sim-5000", 5_000, 3, "estimate", True)]

R_SCRIPT = r"""
suppressMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
dat <- read.csv(args[1]); full <- as.logical(args[2]); sparse <- as.logical(args[3])
t0 <- proc.time()[["elapsed"]]
f <- rma.mv(yi, vi, random = ~ 1 | district/study, data = dat, sparse = sparse)
fit_s <- proc.time()[["elapsed"]] - t0
n <- 0
suppressMessages(trace(metafor:::.profile.rma.mv, quote(n <<- n + 1), print = FALSE,
                       where = asNamespace("metafor")))
bounds <- rep(NA_real_, 4); ci_s <- NA_real_
if (full) {
  t1 <- proc.time()[["elapsed"]]
  ci <- confint(f)
  ci_s <- proc.time()[["elapsed"]] - t1
  bounds <- c(ci[[1]]$random[1, 2:3], ci[[2]]$random[1, 2:3])
}
cat("RESULT ", jsonlite::toJSON(list(fit_s = fit_s, confint_s = ci_s, refits = n, bounds = unname(bounds)),
                                auto_unbox = TRUE, digits = NA), "\n", sep = "")
"""


def data_for(name: str) -> pd.DataFrame:
    if name == "school":
        return bm.datasets.load("school").rename(columns={"effect": "yi", "var": "vi"})
    return simulate(int(name.split("-")[1]))


def time_bayesmeta(dat: pd.DataFrame, reps: int) -> tuple[float, float, np.ndarray]:
    model = bm.MetaModel("yi ~ 1", data=dat, vi="vi", random="~ 1 | district/study")
    model.fit().confint(progressbar=False)  # warm-up (imports)
    fits, cis = [], []
    for _ in range(reps):
        start = time.perf_counter()
        fit = model.fit()
        middle = time.perf_counter()
        ci = fit.confint(progressbar=False)
        fits.append(middle - start)
        cis.append(time.perf_counter() - middle)
    return statistics.median(fits), statistics.median(cis), ci[["ci_lb", "ci_ub"]].to_numpy().ravel()


def time_metafor(dat: pd.DataFrame, full: bool, sparse: bool, workdir: Path) -> dict:
    csv, script = workdir / "data.csv", workdir / "confint.R"
    dat.to_csv(csv, index=False)
    script.write_text(R_SCRIPT)
    flags = ["TRUE" if full else "FALSE", "TRUE" if sparse else "FALSE"]
    out = subprocess.run(["Rscript", str(script), str(csv), *flags], capture_output=True, text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def main() -> None:
    full_5000 = "--metafor-5000" in sys.argv[1:]
    with_r = r_available()
    if not with_r:
        print("R with metafor not found: timing bayesmeta only.\n")
    rows, refits = [], np.nan
    with tempfile.TemporaryDirectory() as tmp:
        for name, n, reps, r_mode, sparse in CASES:
            dat = data_for(name)
            fit_s, ci_s, bounds = time_bayesmeta(dat, reps)
            row = {"model": name, "rows": len(dat), "fit_s": fit_s, "confint_s": ci_s, "metafor_fit_s": np.nan,
                   "metafor_confint_s": np.nan, "refits": np.nan, "metafor": "", "sparse": sparse, "ratio": np.nan,
                   "max_rel_diff": np.nan}
            if with_r:
                full = r_mode == "full" or full_5000
                ref = time_metafor(dat, full, sparse, Path(tmp))
                row["metafor_fit_s"] = ref["fit_s"]
                if full:
                    refits = ref["refits"]
                    row.update(metafor_confint_s=ref["confint_s"], refits=refits, metafor="timed")
                    row["max_rel_diff"] = float(np.max(np.abs(np.array(ref["bounds"], float) / bounds - 1)))
                else:
                    row.update(metafor_confint_s=refits * ref["fit_s"], refits=refits, metafor="estimated")
                row["ratio"] = row["metafor_confint_s"] / ci_s
            rows.append(row)
            print(f"done: {name}", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))
    print("\nconfint_s: bayesmeta's fit.confint() (both components) on a fitted model; ratio = metafor confint time / "
          "bayesmeta confint time.")
    if with_r and not full_5000:
        print("sim-5000: metafor's confint time estimated as refits (counted at 500 rows) x one rma.mv fit; "
              "run with --metafor-5000 to time it (most of an hour).")


if __name__ == "__main__":
    main()
