"""Shared settings of the example scripts: full or quick chains, and table printing.

Every example runs full chains (4 x 1000 after 1000 tuning steps) by default and
short ones (2 x 1000 after 500) with ``--quick`` (or ``BAYESMETA_QUICK=1``), as the test-suite does.
``BAYESMETA_REFERENCE=1`` runs long chains with nutpie (4 x 2500, another seed): the
reference posterior means of ``tests/reference/make_example_posteriors.py``.
"""

from __future__ import annotations

import os
import sys
import warnings

import arviz as az
import numpy as np
import pandas as pd


def quick() -> bool:
    """True for a quick run (``--quick`` on the command line or ``BAYESMETA_QUICK=1``)."""
    return "--quick" in sys.argv[1:] or os.environ.get("BAYESMETA_QUICK") == "1"


def sampling() -> dict:
    """Arguments of ``MetaModel.sample`` for this run."""
    if os.environ.get("BAYESMETA_REFERENCE") == "1":
        return dict(draws=2500, tune=1000, chains=4, random_seed=2, sampler="nutpie", target_accept=0.95,
                    progressbar=False)
    if quick():
        return dict(draws=1000, tune=500, chains=2, random_seed=1, progressbar=False)
    return dict(draws=1000, tune=1000, chains=4, random_seed=1)


def show(title: str, table, digits: int = 4) -> None:
    """Print a titled table with fixed decimals."""
    print(f"\n{title}\n")
    with pd.option_context("display.float_format", f"{{:.{digits}f}}".format, "display.width", 160,
                           "display.max_columns", 20):
        print(table)


def posterior_means(tag: str, post, names=("beta", "alpha", "sigma2", "tau2", "gamma2", "rho")) -> None:
    """Print each free parameter's posterior mean with its Monte Carlo standard error (MCSE).

    A header line (``tag``, divergences, largest R-hat), then one row per parameter with
    the mean and, in parentheses, the MCSE, to at least two significant digits of the
    MCSE; ``tests/test_examples.py`` reads these lines and checks the means against long runs.
    """
    names = [v for v in names if v in post.idata.posterior]
    with warnings.catch_warnings():  # fixed components are constant: no MCSE (left out)
        warnings.simplefilter("ignore", RuntimeWarning)
        table = az.summary(post.idata, var_names=names, kind="stats", stat_focus="mean", round_to="none",
                           extend=False, stat_funcs={"mean": np.mean, "mcse": lambda x: az.mcse(x, method="mean")})
    table = table[np.isfinite(table["mcse"]) & (table["mcse"] > 0)]
    d = post.diagnostics
    print(f"\nPosterior means (MCSE), {tag}: {d['divergences']} divergences, max R-hat {d['max_rhat']:.4f}")
    width = max(map(len, table.index))
    for name, row in table.iterrows():
        digits = max(4, 1 - int(np.floor(np.log10(row["mcse"]))))
        print(f"  {name:<{width}}  {row['mean']:.{digits}f} ({row['mcse']:.{digits}f})")


def figure_path(name: str) -> str:
    """Where a figure goes: the first command-line argument that is not an option, or ``name``."""
    paths = [a for a in sys.argv[1:] if not a.startswith("--")]
    return paths[0] if paths else name
