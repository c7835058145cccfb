"""Start-up cost: ``import bayesmeta`` and a REML fit from a fresh process, beside metafor.

Every figure is a whole fresh process, run several times (after one warm-up run)
and reported as min / median / max:

* ``import bayesmeta``: wall time of the process, and the import time Python itself
  reports (``python -X importtime``, the cumulative time of the ``bayesmeta`` line);
* REML of the three-level school model: import, load the data, fit, print the
  summary (what a user's first script does);
* the same fit with R's metafor (``Rscript``: load metafor, read the CSV, ``rma.mv``,
  print), when R and metafor are installed, and the ratio of the medians.

Run from the repository root::

    python benchmarks/bench_startup.py [runs]
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bayesmeta as bm

FIT = """
import bayesmeta as bm
dat = bm.datasets.load("school")
fit = bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | district/study").fit("REML")
print(fit.summary())
"""

METAFOR = """
suppressPackageStartupMessages(library(metafor))
dat <- read.csv(commandArgs(trailingOnly = TRUE)[1])
fit <- rma.mv(effect, var, random = ~ 1 | district/study, data = dat)
print(fit)
"""


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def import_time() -> float:
    """Seconds Python reports for importing bayesmeta (cumulative, -X importtime)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import bayesmeta"], check=True,
                         capture_output=True, text=True).stderr
    line = [row for row in out.splitlines() if re.search(r"\|\s*bayesmeta$", row)][-1]
    return int(line.split("|")[1]) / 1e6


def repeat(measure, runs: int) -> list[float]:
    measure()  # warm-up: file caches, compiled caches
    return [measure() for _ in range(runs)]


def row(name: str, values: list[float]) -> str:
    return f"{name:<44} {min(values):8.3f} {statistics.median(values):8.3f} {max(values):8.3f}"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    print(f"{'fresh process, seconds (' + str(runs) + ' runs)':<44} {'min':>8} {'median':>8} {'max':>8}")
    results = {
        "import bayesmeta: -X importtime": repeat(import_time, runs),
        "import bayesmeta: wall": repeat(lambda: wall([sys.executable, "-c", "import bayesmeta"]), runs),
        "REML school, bayesmeta: wall": repeat(lambda: wall([sys.executable, "-c", FIT]), runs),
    }
    rscript = shutil.which("Rscript")
    has_metafor = rscript and subprocess.run([rscript, "-e", "library(metafor)"], capture_output=True).returncode == 0
    if has_metafor:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "school.csv"
            bm.datasets.load("school").to_csv(csv, index=False)
            script = Path(tmp) / "fit.R"
            script.write_text(METAFOR)
            results["REML school, metafor (Rscript): wall"] = repeat(lambda: wall([rscript, str(script), str(csv)]),
                                                                      runs)
    for name, values in results.items():
        print(row(name, values))
    if has_metafor:
        ratio = (statistics.median(results["REML school, metafor (Rscript): wall"])
                 / statistics.median(results["REML school, bayesmeta: wall"]))
        print(f"\nmetafor / bayesmeta, median wall time of the whole script: {ratio:.2f}")
    else:
        print("\nR with metafor not found: bayesmeta only.")


if __name__ == "__main__":
    main()
