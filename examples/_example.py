"""Shared settings of the example scripts: full or quick chains, and table printing.

Every example runs full chains (4 x 1000 after 1000 tuning steps) by default and
short ones with ``--quick`` (or ``BAYESMETA_QUICK=1``), as the test-suite does.
"""

from __future__ import annotations

import os
import sys

import pandas as pd


def quick() -> bool:
    """True for a quick run (``--quick`` on the command line or ``BAYESMETA_QUICK=1``)."""
    return "--quick" in sys.argv[1:] or os.environ.get("BAYESMETA_QUICK") == "1"


def sampling() -> dict:
    """Arguments of ``MetaModel.sample`` for this run."""
    if quick():
        return dict(draws=300, tune=300, chains=2, random_seed=1, progressbar=False)
    return dict(draws=1000, tune=1000, chains=4, random_seed=1)


def show(title: str, table, digits: int = 4) -> None:
    """Print a titled table with fixed decimals."""
    print(f"\n{title}\n")
    with pd.option_context("display.float_format", f"{{:.{digits}f}}".format, "display.width", 160,
                           "display.max_columns", 20):
        print(table)


def figure_path(name: str) -> str:
    """Where a figure goes: the first command-line argument that is not an option, or ``name``."""
    paths = [a for a in sys.argv[1:] if not a.startswith("--")]
    return paths[0] if paths else name
