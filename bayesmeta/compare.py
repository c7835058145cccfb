"""Side-by-side tables of fits of the same model by different engines."""

from __future__ import annotations

import pandas as pd

from .bayes_results import BayesResult
from .errors import SpecificationError
from .results import ModeResult


def _label(result, i: int) -> str:
    if isinstance(result, ModeResult):
        return result.method
    if isinstance(result, BayesResult):
        return {"pymc": "NUTS", "laplace": "Laplace"}.get(result.sampler, result.sampler)
    raise SpecificationError(f"compare: argument {i + 1} is a {type(result).__name__}, not a fit result.")


def compare(*results, names: list[str] | None = None) -> pd.DataFrame:
    """One table with every parameter of several fits side by side.

    Parameters
    ----------
    *results : ModeResult or BayesResult
        Fits of the same model (for example REML and NUTS).
    names : list of str, optional
        Column labels (default: the method, e.g. ``"REML"`` and ``"NUTS"``).

    Returns
    -------
    pandas.DataFrame
        Rows ``beta[term]``, ``sigma2[level]``, ...; for each fit, columns
        ``estimate``/``se``/``lower``/``upper`` (ML/REML: Wald intervals) or
        ``mean``/``sd``/``lower``/``upper`` (posterior, equal-tailed intervals).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
    ...                      random="~ 1 | district/study")
    >>> table = compare(model.fit("REML"), model.fit("ML"))
    >>> list(table.columns.get_level_values(0).unique())
    ['REML', 'ML']
    """
    if not results:
        raise SpecificationError("compare: give at least one result.")
    labels = names or [_label(r, i) for i, r in enumerate(results)]
    if len(labels) != len(results):
        raise SpecificationError(f"compare: {len(labels)} names for {len(results)} results.")
    if len(set(labels)) != len(labels):
        labels = [f"{lab} ({i + 1})" for i, lab in enumerate(labels)]
    tables = []
    for result, label in zip(results, labels):
        if isinstance(result, BayesResult):
            t = result.table()[["mean", "post_sd", "lower", "upper"]].rename(columns={"post_sd": "sd"})
        else:
            t = result.table()
        t.columns = pd.MultiIndex.from_product([[label], t.columns])
        tables.append(t)
    order = list(dict.fromkeys(i for t in tables for i in t.index))
    return pd.concat(tables, axis=1).reindex(order)
