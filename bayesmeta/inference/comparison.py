"""Side-by-side tables of fits of the same model by different engines."""

from __future__ import annotations

import pandas as pd

from ..errors import SpecificationError

#: The columns every result's ``table()`` shares.
SHARED = ["estimate", "se", "ci_lb", "ci_ub"]


def _label(result, i: int) -> str:
    if not (hasattr(result, "table") and hasattr(result, "method")):
        raise SpecificationError(f"compare: argument {i + 1} is a {type(result).__name__}, not a fit result.")
    return result.method


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
        Rows ``beta[term]``, ``sigma2[level]``, ...; for each fit, the columns
        ``estimate``, ``se``, ``ci_lb``, ``ci_ub`` of its ``table()`` (ML/REML:
        estimate, Wald SE and interval; posterior: mean, SD and equal-tailed interval).

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
        t = result.table()[SHARED]
        t.columns = pd.MultiIndex.from_product([[label], t.columns])
        tables.append(t)
    order = list(dict.fromkeys(i for t in tables for i in t.index))
    return pd.concat(tables, axis=1).reindex(order)
