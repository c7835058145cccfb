"""Bundled data sets: ``load(name)`` returns a pandas DataFrame.

>>> from bayesmeta import datasets
>>> "school" in datasets.names()
True
>>> datasets.load("school").shape
(56, 5)

Every data set also has its own loader, e.g. ``datasets.school()``, whose
docstring describes the columns. Sources and citations: ``data/README.md`` in this package.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from ._catalog import CATALOG

__all__ = ["load", "names", "describe"]


def names() -> list[str]:
    """Names of the bundled data sets, sorted."""
    return sorted(CATALOG)


def describe(name: str) -> str:
    """Source and column description of a data set."""
    _check(name)
    return CATALOG[name]


def _check(name: str) -> None:
    if name not in CATALOG:
        raise KeyError(f"Unknown data set {name!r}; available: {', '.join(names())}.")


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set.

    Parameters
    ----------
    name : str
        One of :func:`names`.

    Returns
    -------
    pandas.DataFrame
        Missing values (``NA`` in the files) are NaN.
    """
    _check(name)
    with resources.files(__package__).joinpath("data", f"{name}.csv").open("r") as fh:
        return pd.read_csv(fh)


def _make_loader(name: str):
    def loader() -> pd.DataFrame:
        return load(name)

    loader.__name__ = name
    loader.__doc__ = f"Load the ``{name}`` data set.\n\n{CATALOG[name]}\n"
    return loader


for _name in CATALOG:
    globals()[_name] = _make_loader(_name)
    __all__.append(_name)
