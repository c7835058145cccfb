"""REML fit times of bayesmeta beside metafor's rma.mv, printed as a table.

Models: the three-level school model (56 rows), and simulated three-level data
(clusters of 3-7 rows, about 5 on average, one study per row) with 500 to
1,000,000 rows. bayesmeta's time covers building the model from the DataFrame
and fitting it (warm: after one untimed run; median of repeated runs; also
split into building and fitting, with the number of warnings of the fit); peak
memory is the largest allocation traced during one build-and-fit. When R with
metafor is installed, the same fits are timed with rma.mv (dense default and
sparse=TRUE) in the same run, skipping sizes where metafor would take minutes.

A second table times two structured models (:data:`STRUCTURED`), with metafor's
sparse rma.mv in the same run at the smallest size:

* ``bivariate UN``: two outcomes per study, 10% of them missing, sampling
  correlation 0.4 (the simulation behind the ``habitat`` data set,
  ``tests/coscale_cases.py``), ``random="~ outcome | study", struct="UN"``;
* ``HAR``: five yearly time points per study, each reported with probability
  0.8, sampling errors AR(1) over time (phi 0.5, ``vcalc(vi, study, time=...)``),
  ``random="~ time | study", struct="HAR"``.

Run: ``python benchmarks/bench_reml.py`` (or ``make bench``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesmeta as bm

#: (name, rows, bayesmeta repetitions, run metafor dense?, run metafor sparse?)
CASES = [
    ("school", 56, 50, True, True),
    ("sim-500", 500, 10, True, True),
    ("sim-1000", 1_000, 10, False, True),
    ("sim-10000", 10_000, 5, False, False),
    ("sim-100000", 100_000, 3, False, False),
    ("sim-1000000", 1_000_000, 3, False, False),
]
R_REPS = {"school": 20, "sim-500": 1, "sim-1000": 1}

#: (model, studies, bayesmeta repetitions, run metafor?)
STRUCTURED = [("bivariate UN", 100, 10, True), ("bivariate UN", 5_000, 3, False),
              ("HAR", 100, 10, True), ("HAR", 2_000, 3, False)]

R_STRUCTURED = r"""
suppressMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
dat <- read.csv(args[1]); reps <- as.integer(args[2]); model <- args[3]
if (model == "HAR") {
  V <- vcalc(vi, cluster = study, time1 = time, phi = 0.5, data = dat, sparse = TRUE)
  dat$time <- factor(dat$time)
  fit <- function() rma.mv(yi, V, mods = ~ 0 + time, random = ~ time | study, struct = "HAR", data = dat,
                           method = "REML", sparse = TRUE)
} else {
  V <- vcalc(vi, cluster = study, obs = outcome, rho = 0.4, data = dat, sparse = TRUE)
  fit <- function() rma.mv(yi, V, mods = ~ 0 + outcome, random = ~ outcome | study, struct = "UN", data = dat,
                           method = "REML", sparse = TRUE)
}
f <- fit()
times <- replicate(reps, system.time(fit())[["elapsed"]])
cat(sprintf('{"seconds": %.6f, "loglik": %.10f}\n', median(times), as.numeric(logLik(f))))
"""

R_SCRIPT = r"""
suppressMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
dat <- read.csv(args[1]); reps <- as.integer(args[2]); sparse <- as.logical(args[3])
fit <- function() rma.mv(yi, vi, random = ~ 1 | district/study, data = dat, method = "REML", sparse = sparse)
f <- fit()
times <- replicate(reps, system.time(fit())[["elapsed"]])
cat(sprintf('{"seconds": %.6f, "coef": %.10f, "sigma2": [%.10f, %.10f]}\n', median(times), coef(f)[1], f$sigma2[1], f$sigma2[2]))
"""


def simulate(n: int, seed: int = 1) -> pd.DataFrame:
    """Three-level data: clusters of 3-7 rows, district and study variances 0.06 and 0.03."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 8, size=n // 3)
    district = np.repeat(np.arange(len(sizes)), sizes)[:n]
    vi = rng.uniform(0.01, 0.2, n)
    y = (0.2 + rng.normal(0, np.sqrt(0.06), len(sizes))[district] + rng.normal(0, np.sqrt(0.03), n)
         + rng.normal(0, np.sqrt(vi)))
    return pd.DataFrame({"district": district, "study": np.arange(n), "yi": y, "vi": vi})


def simulate_har(n_studies: int, seed: int = 1) -> pd.DataFrame:
    """Longitudinal data: five time points per study, each reported with probability 0.8 (at least one);
    random effects with SDs 0.3-0.5 over time and AR(1) correlation 0.6, sampling errors AR(1) with phi 0.5."""
    rng = np.random.default_rng(seed)
    times = np.arange(5)
    tau = np.linspace(0.3, 0.5, 5)
    lags = np.abs(np.subtract.outer(times, times))
    u = rng.multivariate_normal(np.zeros(5), np.outer(tau, tau) * 0.6 ** lags, size=n_studies)
    vi = rng.uniform(0.01, 0.1, (n_studies, 5))
    e = rng.multivariate_normal(np.zeros(5), 0.5 ** lags, size=n_studies) * np.sqrt(vi)
    present = rng.random((n_studies, 5)) < 0.8
    present[~present.any(axis=1), 0] = True
    study, time = np.nonzero(present)
    return pd.DataFrame({"study": study, "time": time, "yi": (0.1 * times + u + e)[study, time],
                         "vi": vi[study, time]})


def structured_fit(model: str, dat: pd.DataFrame):
    """Build and fit a structured model (see :data:`STRUCTURED`) by REML."""
    if model == "HAR":
        V = bm.vcalc("vi", "study", time="time", phi=0.5, data=dat)
        return bm.MetaModel("yi ~ 0 + C(time)", data=dat, V=V, random="~ time | study", struct="HAR").fit("REML")
    V = bm.vcalc("vi", "study", obs="outcome", rho=0.4, data=dat)
    return bm.MetaModel("yi ~ 0 + outcome", data=dat, V=V, random="~ outcome | study", struct="UN").fit("REML")


def structured_rows(workdir: Path, with_r: bool) -> list[dict]:
    """The second table: structured models by REML, with metafor's sparse rma.mv at the smallest size."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from coscale_cases import simulate as simulate_bivariate

    rows = []
    for model, studies, reps, run_r in STRUCTURED:
        dat = simulate_har(studies) if model == "HAR" else simulate_bivariate(1, n_studies=studies, missing=0.1)[0]
        structured_fit(model, dat)  # warm-up
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            result = structured_fit(model, dat)
            times.append(time.perf_counter() - start)
        seconds = float(np.median(times))
        row = {"model": model, "studies": studies, "rows": len(dat), "bayesmeta_s": seconds,
               "converged": result.converged, "metafor_sparse_s": np.nan, "metafor_sparse_ratio": np.nan}
        if with_r and run_r:
            ref = run_r_script(R_STRUCTURED, dat, ["1" if studies > 100 else "3", model], workdir)
            add_metafor(row, "metafor_sparse", ref, result, f"{model}, {studies} studies")
        rows.append(row)
        print(f"done: {model}, {studies} studies", file=sys.stderr, flush=True)
    return rows


def add_metafor(row: dict, label: str, ref: dict, result, case: str) -> None:
    """Put metafor's time (``ref``, from an R script printing ``seconds`` and ``loglik``) and the ratio
    to ``row["bayesmeta_s"]`` into ``row`` as ``<label>_s`` and ``<label>_ratio``, and warn when the
    log-likelihoods differ."""
    row[f"{label}_s"], row[f"{label}_ratio"] = ref["seconds"], ref["seconds"] / row["bayesmeta_s"]
    if abs(ref["loglik"] - result.loglik) > 1e-4:
        print(f"warning: {case}: log-likelihood differs from metafor's ({result.loglik:.6f} against "
              f"{ref['loglik']:.6f})", file=sys.stderr)


def data_for(name: str) -> pd.DataFrame:
    if name == "school":
        return bm.datasets.load("school").rename(columns={"effect": "yi", "var": "vi"})
    return simulate(int(name.split("-")[1]))


def fit(dat: pd.DataFrame, times: list | None = None):
    """Build and fit by REML; ``times`` gets (build seconds, fit seconds)."""
    start = time.perf_counter()
    model = bm.MetaModel("yi ~ 1", data=dat, vi="vi", random="~ 1 | district/study")
    built = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit("REML")
    if times is not None:
        times.append((built - start, time.perf_counter() - built))
    return result, len(caught)


def time_bayesmeta(dat: pd.DataFrame, reps: int) -> tuple[tuple[float, float, float], float, object, int]:
    """Median (total, build, fit) seconds, peak MB, the result and its number of warnings."""
    result, n_warnings = fit(dat)  # warm-up
    times = []
    for _ in range(reps):
        fit(dat, times)
    tracemalloc.start()
    fit(dat)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    build, fitting = np.array(times).T
    return (float(np.median(build + fitting)), float(np.median(build)), float(np.median(fitting))), \
        peak / 2**20, result, n_warnings


def print_table(rows: list[dict]) -> None:
    """The benchmark's rows as one table, four significant digits."""
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        print(pd.DataFrame(rows).to_string(index=False))


def metafor_available() -> bool:
    """Whether R with metafor can be run (saying so when it cannot)."""
    if not r_available():
        print("R with metafor not found: timing bayesmeta only.\n")
        return False
    return True


def r_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(["Rscript", "-e", "library(metafor)"], capture_output=True, check=False)
    return probe.returncode == 0


def run_r_script(source: str, dat: pd.DataFrame, args: list[str], workdir: Path, timeout: float | None = None) -> dict:
    """Run an R script on ``dat`` (written as a CSV, its path the first argument) and read the JSON it
    prints last."""
    csv, script = workdir / "data.csv", workdir / "bench.R"
    dat.to_csv(csv, index=False)
    script.write_text(source)
    out = subprocess.run(["Rscript", str(script), str(csv), *args], capture_output=True, text=True, check=True,
                         timeout=timeout)
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_metafor(dat: pd.DataFrame, reps: int, sparse: bool, workdir: Path) -> dict:
    return run_r_script(R_SCRIPT, dat, [str(reps), "TRUE" if sparse else "FALSE"], workdir)


def main() -> None:
    with_r = metafor_available()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, n, reps, r_dense, r_sparse in CASES:
            dat = data_for(name)
            (seconds, build, fitting), peak_mb, result, n_warnings = time_bayesmeta(dat, reps)
            row = {"model": name, "rows": len(dat), "clusters": dat["district"].nunique(),
                   "bayesmeta_s": seconds, "build_s": build, "fit_s": fitting, "warnings": n_warnings,
                   "peak_MB": peak_mb, "KB_per_row": 1000 * peak_mb / len(dat)}
            for label, wanted, sparse in [("metafor", r_dense, False), ("metafor_sparse", r_sparse, True)]:
                row[f"{label}_s"] = row[f"{label}_ratio"] = np.nan
                if with_r and wanted:
                    ref = time_metafor(dat, R_REPS[name], sparse, Path(tmp))
                    row[f"{label}_s"] = ref["seconds"]
                    row[f"{label}_ratio"] = ref["seconds"] / seconds
                    if abs(ref["coef"] - result.coef.iloc[0]) > 1e-4:
                        print(f"warning: {name}: estimates differ from metafor's", file=sys.stderr)
            rows.append(row)
            print(f"done: {name}", file=sys.stderr, flush=True)
        structured = structured_rows(Path(tmp), with_r)
    print_table(rows)
    print("\nratio = metafor time / bayesmeta time (higher is better for bayesmeta).")
    if with_r:
        print("metafor skipped (NaN) where it would take minutes: dense rma.mv beyond 500 rows "
              "(about 10 s at 514 rows, cubic in n), sparse beyond 1,000 rows (about 77 s at 5,109 rows).")
    print("\nStructured models (REML, building included):")
    print_table(structured)


if __name__ == "__main__":
    main()
