"""Sampling variances and covariances matched to the rows of the data: by label, or checked.

Labelled inputs are aligned by their labels, never by position:

* ``vi`` as a pandas Series is taken by index label (in any order); labels that
  are not rows of the data, or rows without a label, are an error;
* ``V`` as a pandas DataFrame is taken by its index and columns, which must both
  be the data's index labels;
* ``V`` as :class:`~bayesmeta.ClusterBlocks` with row labels (``vcalc(..., data=)``)
  is placed by those labels, and the rows of each block must belong to its
  cluster when the cluster column is known. This is the safe form of a
  block-diagonal V.

Unlabelled inputs (a column name, arrays, a matrix, a list of blocks, blocks
without labels) are taken in the data's row order. A list of blocks (and
unlabelled ClusterBlocks) is checked against the model's independent clusters:
a block whose rows fall into several clusters of the outer grouping factor of
every random term is refused, naming the block's rows and the clusters, since it
most often means blocks given in another order than the data's rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import SpecificationError, format_rows
from ..spec.random_terms import NestedTerm
from .columns import numeric
from .sampling_covariance import (
    BlockDiagonal,
    ClusterBlocks,
    as_block_diagonal,
    from_variances,
)


def _label_mismatch(argument: str, given: pd.Index, index: pd.Index, what: str) -> SpecificationError:
    unknown = given.difference(index)
    absent = index.difference(given)
    parts = []
    if len(unknown):
        parts.append(f"label(s) {format_rows(unknown)} are not rows of the data")
    if len(absent):
        parts.append(f"data rows {format_rows(absent)} have no {what}")
    return SpecificationError(f"{argument}: {what} labelled by an index that does not match the data's: "
                              + "; ".join(parts) + ". Align it with the data (or pass plain values, taken by "
                              "position).")


def _reindexer(argument: str, given: pd.Index, index: pd.Index, what: str) -> np.ndarray:
    """Positions in ``given`` of the data's index labels, or an error naming the labels that do not match."""
    if given.equals(index):
        return np.arange(len(index))
    if given.has_duplicates:
        raise SpecificationError(f"{argument}: the index labels {format_rows(given[given.duplicated()].unique())} "
                                 "are repeated; cannot align by label.")
    if index.has_duplicates:
        raise SpecificationError(f"{argument}: the data's index has repeated labels "
                                 f"{format_rows(index[index.duplicated()].unique())}; cannot align {what} by label "
                                 "(reset the data's index, or pass plain values, taken by position).")
    positions = given.get_indexer(index)
    if (positions < 0).any() or len(given) != len(index):
        raise _label_mismatch(argument, given, index, what)
    return positions


def variances(data: pd.DataFrame, vi) -> np.ndarray:
    """The sampling variances of every row of ``data`` from the ``vi`` argument (NaN where missing).

    Examples
    --------
    >>> dat = pd.DataFrame({"y": [1.0, 2.0]}, index=["a", "b"])
    >>> variances(dat, pd.Series([0.2, 0.1], index=["b", "a"])).tolist()
    [0.1, 0.2]
    """
    if isinstance(vi, str):
        return numeric(data[vi], "vi", f"column {vi!r} is")
    if isinstance(vi, pd.DataFrame):
        raise SpecificationError("vi: expected a column name or one value per row, got a DataFrame "
                                 "(a sampling covariance matrix goes to V=).")
    if isinstance(vi, pd.Series):
        values = vi.iloc[_reindexer("vi", vi.index, data.index, "sampling variances")]
        return numeric(values.set_axis(data.index), "vi")
    values = np.asarray(vi)
    if values.ndim > 1 and sorted(values.shape)[:-1] != [1] * (values.ndim - 1):
        raise SpecificationError(f"vi: expected one sampling variance per row, got an array of shape {values.shape} "
                                 "(a sampling covariance matrix goes to V=).")
    values = values.ravel()
    if len(values) != len(data):
        raise SpecificationError(f"vi: expected {len(data)} sampling variances, got {len(values)}.")
    return numeric(pd.Series(values, index=data.index), "vi")


def _labelled_matrix(data: pd.DataFrame, V: pd.DataFrame) -> np.ndarray:
    rows = _reindexer("V", V.index, data.index, "rows of V")
    cols = _reindexer("V", V.columns, data.index, "columns of V")
    try:
        return V.to_numpy(dtype=float)[np.ix_(rows, cols)]
    except (TypeError, ValueError):
        raise SpecificationError("V: the DataFrame has entries that are not numbers.") from None


def _placed_blocks(data: pd.DataFrame, cb: ClusterBlocks) -> ClusterBlocks:
    """ClusterBlocks with row labels placed on the rows of ``data`` that carry those labels."""
    given = pd.Index(np.concatenate(cb.labels) if cb.labels else np.empty(0, object))
    positions = _reindexer("V", given, data.index, "sampling covariances (ClusterBlocks)")
    located = np.empty(len(given), dtype=np.intp)
    located[positions] = np.arange(len(given))  # row label number j sits at data position located[j]
    starts = np.cumsum([0] + [len(r) for r in cb.rows])
    rows = [located[starts[b]:starts[b + 1]] for b in range(len(cb))]
    return ClusterBlocks(len(data), cb.clusters, rows, cb.blocks, column=cb.column)


def _check_cluster_column(data: pd.DataFrame, cb: ClusterBlocks) -> None:
    """The rows of each block must hold the block's cluster in the cluster column (when known)."""
    if cb.column is None or cb.column not in data.columns:
        return
    values = data[cb.column].to_numpy()
    wrong = [(label, rows) for label, rows in zip(cb.clusters, cb.rows)
             if not all(v == label or pd.isna(v) for v in values[rows])]
    if wrong:
        label, rows = wrong[0]
        raise SpecificationError(
            f"V: the block of cluster {label!r} covers rows {format_rows(data.index[rows])}, whose {cb.column!r} is "
            f"{format_rows(pd.unique(values[rows]))} ({len(wrong)} block(s) do not match their cluster).")


def outer_columns(terms) -> list[str]:
    """The outer grouping column of every random term (rows of different groups are independent
    in that term)."""
    return list(dict.fromkeys(t.levels[0] if isinstance(t, NestedTerm) else t.outer for t in terms or ()))


def check_blocks_in_clusters(vb: BlockDiagonal, data: pd.DataFrame, terms, argument: str = "V") -> None:
    """Refuse a block of V whose rows fall into several clusters of every term's outer grouping factor.

    Parameters
    ----------
    vb : BlockDiagonal
        V over all rows of ``data``.
    data : pandas.DataFrame
    terms : tuple of random terms, or None (the standard model: nothing to check)
    argument : str
        The argument to cite.

    Examples
    --------
    >>> from bayesmeta.spec.random_terms import parse_random
    >>> from bayesmeta.design.sampling_covariance import as_block_diagonal
    >>> dat = pd.DataFrame({"study": [1, 1, 2, 2]})
    >>> vb = as_block_diagonal([[[1, .5, 0], [.5, 1, 0], [0, 0, 1]], [[1.0]]], 4)
    >>> check_blocks_in_clusters(vb, dat, parse_random("~ 1 | study"))
    Traceback (most recent call last):
    ...
    bayesmeta.errors.SpecificationError: V: the block covering rows 0, 1, 2 spans clusters 1, 2 of 'study' ...
    """
    columns = [c for c in outer_columns(terms) if c in data.columns]
    if not columns:
        return
    codes = {c: pd.factorize(data[c])[0] for c in columns}  # missing values: -1 (their rows are dropped)
    for stack in vb.stacks:
        if stack.size < 2:
            continue
        spans = np.ones(len(stack.rows), bool)
        for c in columns:
            block_codes = codes[c][stack.rows]
            largest = block_codes.max(axis=1)
            smallest = np.where(block_codes >= 0, block_codes, largest[:, None]).min(axis=1)
            spans &= largest > smallest
        if spans.any():
            rows = stack.rows[np.flatnonzero(spans)[0]]
            c = columns[0]
            clusters = pd.unique(data[c].to_numpy()[rows])
            raise SpecificationError(
                f"{argument}: the block covering rows {format_rows(data.index[rows])} spans clusters "
                f"{format_rows([x for x in clusters if not pd.isna(x)])} of {c!r} ({int(spans.sum())} block(s) "
                "in this size alone). Blocks given as a list are taken in the data's row order, and rows of "
                "different clusters are independent; give V as bm.ClusterBlocks keyed by cluster "
                "(bm.vcalc(..., data=)) or as a DataFrame labelled by the data's index.")


def sampling_covariance(data: pd.DataFrame, vi, V, terms) -> tuple[BlockDiagonal, str]:
    """V over all rows of the data from the ``vi=`` or ``V=`` argument, and the argument it came from.

    Parameters
    ----------
    data : pandas.DataFrame
    vi : str, pandas.Series or array_like, optional
    V : pandas.DataFrame, ClusterBlocks, list of blocks, array_like or scipy.sparse matrix, optional
    terms : tuple of random terms, or None

    Returns
    -------
    BlockDiagonal, str

    Examples
    --------
    >>> dat = pd.DataFrame({"s": ["a", "a", "b"]}, index=[10, 11, 12])
    >>> V = pd.DataFrame([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 2.0]], index=[11, 10, 12],
    ...                  columns=[11, 10, 12])
    >>> vb, argument = sampling_covariance(dat, None, V, None)
    >>> vb.diagonal().tolist(), argument
    ([1.0, 1.0, 2.0], 'V')
    """
    n = len(data)
    if vi is not None:
        return from_variances(variances(data, vi)), "vi"
    if isinstance(V, pd.Series):
        raise SpecificationError("V: expected a matrix, blocks or ClusterBlocks, got a Series "
                                 "(sampling variances go to vi=).")
    if isinstance(V, pd.DataFrame):
        return as_block_diagonal(_labelled_matrix(data, V), n), "V"
    if isinstance(V, ClusterBlocks):
        if V.labels is not None:
            V = _placed_blocks(data, V)
        elif V.n != n:
            raise SpecificationError(f"V: the ClusterBlocks cover {V.n} rows but the data have {n} rows.")
        _check_cluster_column(data, V)
        vb = as_block_diagonal(V, n)
        check_blocks_in_clusters(vb, data, terms)
        return vb, "V"
    vb = as_block_diagonal(V, n)
    if isinstance(V, (list, tuple)):
        check_blocks_in_clusters(vb, data, terms)
    return vb, "V"
