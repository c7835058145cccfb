"""Independent blocks of rows, stacked into batches of equal (padded) size.

Rows fall into independent blocks: connected components of the sampling
covariance V and of every random term's groups (rows sharing a group share a
random effect). Blocks of similar size are padded to a common size and
stacked into a :class:`Batch`, so that every likelihood evaluation is a
handful of batched small-matrix operations and no n x n matrix is formed. A
padded row has ``y = 0``, ``X = 0``, ``Z = 0``, sampling variance 1 and no
random effect, so it adds exactly nothing to the likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec.random_terms import ROW_TERM
from .components import component_labels
from .sampling_covariance import BlockDiagonal


@dataclass(frozen=True)
class Batch:
    """Blocks of one padded size ``m``, stacked.

    Attributes
    ----------
    rows : numpy.ndarray, shape (B, m)
        Row position of each entry, -1 for padding.
    y : (B, m)
    X : (B, m, p)
    V : (B, m, m)
    Z : tuple
        Per covariance term, (B, m, q) design of the random effects, or None when
        the term is a random intercept (Z = 1).
    M : tuple
        Per covariance term, (B, m, m) 0/1 mask of row pairs sharing a group.
    """

    rows: np.ndarray
    y: np.ndarray
    X: np.ndarray
    V: np.ndarray
    Z: tuple
    M: tuple


def find_blocks(V: BlockDiagonal, encodings, n: int, standard: bool) -> np.ndarray:
    """Label rows by independent block: connected components of V and of each term's groups."""
    heads, tails = [V.edges()[0]], [V.edges()[1]]
    for enc in encodings:
        if standard and enc.term.label == ROW_TERM:
            continue
        order = np.argsort(enc.codes, kind="stable")
        same = enc.codes[order][1:] == enc.codes[order][:-1]
        heads.append(order[:-1][same])
        tails.append(order[1:][same])
    h, t = np.concatenate(heads), np.concatenate(tails)
    # a component's label is its first row, so block order follows the data
    _, block = np.unique(component_labels(n, h, t), return_inverse=True)
    return block


def padded_size(m: int) -> int:
    """Common size to which a block of m rows is padded (wasting at most ~25%)."""
    if m <= 8:
        return m
    step = 2 ** (int(np.floor(np.log2(m))) - 2)
    return int(np.ceil(m / step) * step)


def build_batches(y, X, V: BlockDiagonal, encodings, block_of_row) -> tuple[Batch, ...]:
    n = len(y)
    order = np.argsort(block_of_row, kind="stable")
    sizes = np.bincount(block_of_row)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    pos_in_block = np.empty(n, int)
    pos_in_block[order] = np.arange(n) - starts[block_of_row[order]]
    padded = np.array([padded_size(m) for m in sizes])
    batches = []
    for m in np.unique(padded):
        blocks = np.flatnonzero(padded == m)
        B = len(blocks)
        slot = np.full(len(sizes), -1)
        slot[blocks] = np.arange(B)
        rows = np.full((B, m), -1)
        in_batch = np.flatnonzero(slot[block_of_row] >= 0)
        b_idx, p_idx = slot[block_of_row[in_batch]], pos_in_block[in_batch]
        rows[b_idx, p_idx] = in_batch
        real = rows >= 0
        safe = np.where(real, rows, 0)
        yb = np.where(real, y[safe], 0.0)
        Xb = np.where(real[:, :, None], X[safe], 0.0)
        Vb = np.zeros((B, m, m))
        Vb[:, np.arange(m), np.arange(m)] = 1.0  # padding rows keep variance 1
        for stack in V.stacks:
            b = slot[block_of_row[stack.rows[:, 0]]]
            mine = b >= 0
            pr = pos_in_block[stack.rows[mine]]
            Vb[b[mine][:, None, None], pr[:, :, None], pr[:, None, :]] = stack.mats[mine]
        Zs, Ms = [], []
        for enc in encodings:
            codes = np.where(real, enc.codes[safe], -1)
            M = (codes[:, :, None] == codes[:, None, :]) & real[:, :, None] & real[:, None, :]
            Ms.append(M.astype(float))
            Zs.append(None if enc.Z is None else np.where(real[:, :, None], enc.Z[safe], 0.0))
        batches.append(Batch(rows, yb, Xb, Vb, tuple(Zs), tuple(Ms)))
    return tuple(batches)
