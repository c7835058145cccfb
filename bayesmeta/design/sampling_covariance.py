"""The known sampling covariance V, stored as independent blocks.

``V`` is never held as an n x n matrix: it is a set of dense blocks, each
covering some rows, with zero covariance between rows of different blocks.
Blocks of equal size are stacked (:class:`BlockStack`), so that checks and
conversions are vectorised even for 100,000 one-row blocks.
:func:`as_block_diagonal` turns every accepted user input (variances, a dense
or sparse matrix, a list of per-cluster blocks, a :class:`ClusterBlocks` as
returned by :func:`bayesmeta.vcalc`) into that form, and
:func:`check_block_diagonal` validates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SpecificationError, format_rows
from .components import component_labels

if TYPE_CHECKING:
    import scipy.sparse as sp

#: Relative tolerance for symmetry and for negative eigenvalues of V blocks.
_TOL = 1e-8
#: A block whose smallest eigenvalue is below this fraction of its largest variance is singular.
SINGULAR = 1e-10


@dataclass(frozen=True)
class BlockStack:
    """B blocks of m rows each: row positions (B, m) and matrices (B, m, m)."""

    rows: np.ndarray
    mats: np.ndarray

    @property
    def size(self) -> int:
        return self.rows.shape[1]


def _stack_by_size(rows: list[np.ndarray], mats: list[np.ndarray]) -> tuple[BlockStack, ...]:
    sizes = np.array([len(r) for r in rows])
    stacks = []
    for m in np.unique(sizes):
        idx = np.flatnonzero(sizes == m)
        stacks.append(BlockStack(np.stack([rows[i] for i in idx]), np.stack([mats[i] for i in idx]).astype(float)))
    return tuple(stacks)


@dataclass(frozen=True)
class BlockDiagonal:
    """A block-diagonal covariance matrix over ``n`` rows.

    Attributes
    ----------
    n : int
        Number of rows covered.
    stacks : tuple of BlockStack
        The blocks, stacked by size.
    """

    n: int
    stacks: tuple

    @property
    def n_blocks(self) -> int:
        return sum(len(s.rows) for s in self.stacks)

    def diagonal(self) -> np.ndarray:
        """The sampling variances (diagonal of V) in row order."""
        out = np.empty(self.n)
        for s in self.stacks:
            out[s.rows] = np.diagonal(s.mats, axis1=1, axis2=2)
        return out

    def subset(self, keep: np.ndarray) -> BlockDiagonal:
        """Restrict V to the rows at positions ``keep`` (renumbered 0..len(keep)-1)."""
        new_pos = np.full(self.n, -1)
        new_pos[keep] = np.arange(len(keep))
        stacks = []
        for s in self.stacks:
            inside = new_pos[s.rows] >= 0
            counts = inside.sum(axis=1)
            # stable sort puts the kept positions of each block first, in their order
            order = np.argsort(~inside, axis=1, kind="stable")
            for m in np.unique(counts[counts > 0]):
                b = np.flatnonzero(counts == m)
                idx = order[b, :m]
                rows = new_pos[np.take_along_axis(s.rows[b], idx, axis=1)]
                mats = s.mats[b[:, None, None], idx[:, :, None], idx[:, None, :]]
                stacks.append(BlockStack(rows, mats))
        return BlockDiagonal(len(keep), _merge(stacks))

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Pairs of rows linked by a block (a chain through each block's rows)."""
        heads = [s.rows[:, :-1].ravel() for s in self.stacks if s.size > 1]
        tails = [s.rows[:, 1:].ravel() for s in self.stacks if s.size > 1]
        if not heads:
            return np.empty(0, int), np.empty(0, int)
        return np.concatenate(heads), np.concatenate(tails)

    def logdet(self) -> float:
        """log|V|."""
        return float(sum(np.linalg.slogdet(s.mats)[1].sum() for s in self.stacks))

    def to_dense(self) -> np.ndarray:
        """The full n x n matrix (for small problems and tests only)."""
        out = np.zeros((self.n, self.n))
        for s in self.stacks:
            out[s.rows[:, :, None], s.rows[:, None, :]] = s.mats
        return out


def _merge(stacks: list[BlockStack]) -> tuple[BlockStack, ...]:
    """Merge stacks of equal block size."""
    by_size: dict[int, list[BlockStack]] = {}
    for s in stacks:
        by_size.setdefault(s.size, []).append(s)
    return tuple(BlockStack(np.concatenate([s.rows for s in group]), np.concatenate([s.mats for s in group]))
                 for _, group in sorted(by_size.items()))


@dataclass(frozen=True, eq=False)
class ClusterBlocks:
    """A sampling covariance matrix given as one dense block per cluster.

    Rows of a cluster need not be contiguous: each block carries the row
    positions (0-based, in data order) it covers. Every row of the data
    belongs to exactly one block. :func:`bayesmeta.vcalc` returns this, and
    ``MetaModel(..., V=...)`` accepts it.

    Blocks that also carry the index ``labels`` of their rows (as
    ``vcalc(..., data=)`` records them) are the safe form of a block-diagonal V:
    ``MetaModel`` places each block on the rows of its data with those labels,
    whatever their order there, refuses labels it cannot find, and, when the
    cluster ``column`` is known, checks that the rows of a block belong to its
    cluster (:mod:`bayesmeta.design.alignment`). Without labels, the row positions
    are taken as positions in the model's data.

    Parameters
    ----------
    n : int
        Number of rows of the data.
    clusters : sequence
        Cluster labels, one per block (in order of first appearance).
    rows : sequence of array_like of int
        Row positions of each block.
    blocks : sequence of array_like
        The square blocks, matching ``rows``.
    labels : sequence of array_like, optional
        Index labels of the rows of each block (matching ``rows``).
    column : str, optional
        The data column holding the clusters.

    Examples
    --------
    >>> cb = ClusterBlocks(3, ["a", "b"], [[0, 2], [1]], [[[1.0, 0.5], [0.5, 1.0]], [[2.0]]])
    >>> len(cb), cb.n
    (2, 3)
    >>> cb.to_dense()
    array([[1. , 0. , 0.5],
           [0. , 2. , 0. ],
           [0.5, 0. , 1. ]])
    """

    n: int
    clusters: tuple
    _rows: tuple
    _blocks: tuple
    labels: tuple | None = None
    column: str | None = None

    def __init__(self, n: int, clusters, rows, blocks, *, labels=None, column: str | None = None) -> None:
        rows = tuple(_frozen(np.asarray(r, dtype=np.intp).ravel()) for r in rows)
        blocks = tuple(_frozen(np.atleast_2d(np.asarray(b, dtype=float))) for b in blocks)
        clusters = tuple(clusters)
        if not len(clusters) == len(rows) == len(blocks):
            raise SpecificationError(
                f"ClusterBlocks: {len(clusters)} clusters, {len(rows)} row sets and {len(blocks)} blocks.")
        for label, r, b in zip(clusters, rows, blocks):
            if b.shape != (len(r), len(r)):
                raise SpecificationError(
                    f"ClusterBlocks: the block of cluster {label!r} has shape {b.shape} for {len(r)} rows.")
        covered = np.concatenate(rows) if rows else np.empty(0, np.intp)
        if len(covered) != n or not np.array_equal(np.sort(covered), np.arange(n)):
            raise SpecificationError(f"ClusterBlocks: the blocks must cover each of the {n} rows exactly once.")
        if labels is not None:
            labels = tuple(_frozen(np.asarray(lab, dtype=object).ravel()) for lab in labels)
            if [len(lab) for lab in labels] != [len(r) for r in rows]:
                raise SpecificationError("ClusterBlocks: labels must give one index label per row of every block.")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "column", column)
        object.__setattr__(self, "n", int(n))
        object.__setattr__(self, "clusters", clusters)
        object.__setattr__(self, "_rows", rows)
        object.__setattr__(self, "_blocks", blocks)

    @property
    def rows(self) -> list[np.ndarray]:
        """Row positions of each block (read-only arrays)."""
        return list(self._rows)

    @property
    def blocks(self) -> list[np.ndarray]:
        """The blocks (read-only arrays), in cluster order."""
        return list(self._blocks)

    def __len__(self) -> int:
        return len(self._blocks)

    def __repr__(self) -> str:
        return f"ClusterBlocks(n={self.n}, clusters={len(self)}, largest block={max(map(len, self._rows), default=0)})"

    def to_dense(self) -> np.ndarray:
        """The full n x n matrix."""
        out = np.zeros((self.n, self.n))
        for r, b in zip(self._rows, self._blocks):
            out[np.ix_(r, r)] = b
        return out

    def to_sparse(self) -> sp.csr_matrix:
        """The n x n matrix as a scipy.sparse CSR matrix."""
        import scipy.sparse as sp

        if not self._rows:
            return sp.csr_matrix((self.n, self.n))
        i = np.concatenate([np.repeat(r, len(r)) for r in self._rows])
        j = np.concatenate([np.tile(r, len(r)) for r in self._rows])
        values = np.concatenate([b.ravel() for b in self._blocks])
        return sp.csr_matrix((values, (i, j)), shape=(self.n, self.n))


def _frozen(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


def from_variances(vi) -> BlockDiagonal:
    """V = diag(vi), one 1 x 1 block per row."""
    vi = np.asarray(vi, dtype=float).ravel()
    n = len(vi)
    return BlockDiagonal(n, (BlockStack(np.arange(n)[:, None], vi.reshape(n, 1, 1)),))


def _is_sparse(V) -> bool:
    """Whether V is a scipy.sparse matrix or array (without importing scipy.sparse)."""
    return type(V).__module__.startswith("scipy.sparse")


def _split_by_pattern(matrix) -> BlockDiagonal:
    """Split a dense or sparse matrix into the connected components of its non-zero pattern."""
    if _is_sparse(matrix):
        coo = matrix.tocoo()
        nonzero = coo.data != 0
        heads, tails = coo.row[nonzero], coo.col[nonzero]
        block_of = matrix.tocsr()
    else:
        heads, tails = np.nonzero(matrix)
        block_of = matrix
    n = matrix.shape[0]
    labels = component_labels(n, heads, tails)
    order = np.argsort(labels, kind="stable")
    starts = np.flatnonzero(np.r_[True, labels[order][1:] != labels[order][:-1]])
    rows = np.split(order, starts[1:])
    mats = [_dense(block_of[r][:, r]) for r in rows]
    return BlockDiagonal(n, _stack_by_size(rows, mats))


def _dense(block) -> np.ndarray:
    return np.asarray(block.toarray() if _is_sparse(block) else block, dtype=float)


def as_block_diagonal(V, n: int) -> BlockDiagonal:
    """Convert a user-supplied ``V`` to a :class:`BlockDiagonal` over ``n`` rows.

    Parameters
    ----------
    V : array_like, scipy.sparse matrix, list of array_like or ClusterBlocks
        An n x n matrix (dense or sparse), a list of square blocks whose
        sizes add up to n, taken in row order, or a :class:`ClusterBlocks`
        (blocks over any rows) covering n rows.
    n : int
        The number of rows of the data.

    Raises
    ------
    SpecificationError
        If V has the wrong size, or its blocks are not square.

    Examples
    --------
    >>> vb = as_block_diagonal([[[1.0, 0.5], [0.5, 1.0]], [[2.0]]], n=3)
    >>> vb.diagonal()
    array([1., 1., 2.])
    """
    if isinstance(V, ClusterBlocks):
        if V.n != n:
            raise SpecificationError(f"V: the ClusterBlocks cover {V.n} rows but the data have {n} rows.")
        return BlockDiagonal(n, _stack_by_size(V.rows, V.blocks))
    if isinstance(V, (list, tuple)):
        rows, mats, start = [], [], 0
        for i, block in enumerate(V):
            b = np.atleast_2d(np.asarray(block, dtype=float))
            if b.ndim != 2 or b.shape[0] != b.shape[1]:
                raise SpecificationError(f"V: block {i} is not a square matrix (shape {b.shape}).")
            rows.append(np.arange(start, start + b.shape[0]))
            mats.append(b)
            start += b.shape[0]
        if start != n:
            raise SpecificationError(f"V: the blocks cover {start} rows but the data have {n} rows.")
        return BlockDiagonal(n, _stack_by_size(rows, mats))
    shape = V.shape if _is_sparse(V) else np.shape(V)
    if tuple(shape) != (n, n):
        raise SpecificationError(f"V: expected a {n} x {n} matrix, got shape {tuple(shape)}.")
    if not _is_sparse(V):
        V = np.asarray(V, dtype=float)
        nan_rows = np.isnan(V).any(axis=1)
        if nan_rows.any():
            # keep missing entries visible (as NaN diagonals) so that they are handled as missing rows
            V = np.where(np.isnan(V), 0.0, V)
            V[nan_rows, nan_rows] = np.nan
    return _split_by_pattern(V)


def check_block_diagonal(vb: BlockDiagonal, labels, argument: str, require_pd: bool) -> None:
    """Check that every block is finite, symmetric and positive (semi-)definite.

    Parameters
    ----------
    vb : BlockDiagonal
    labels : sequence
        Row labels (as the user knows them) to name rows in messages.
    argument : str
        The argument name to cite (``"vi"`` or ``"V"``).
    require_pd : bool
        Kept for callers; every block must be positive definite: a singular block (smallest
        eigenvalue below :data:`SINGULAR` times its largest variance) gets its own error.
    """
    labels = np.asarray(labels)
    problems = {"finite": [], "variance": [], "symmetric": [], "psd": [], "singular": []}
    for s in vb.stacks:
        finite = np.isfinite(s.mats).all(axis=(1, 2))
        problems["finite"].extend(labels[s.rows[~finite]].ravel())
        d = np.diagonal(s.mats, axis1=1, axis2=2)
        positive = finite & (np.where(finite[:, None], d, 1.0) > 0).all(axis=1)
        problems["variance"].extend(labels[s.rows[finite & ~positive]][d[finite & ~positive] <= 0])
        ok = positive
        if s.size > 1 and ok.any():
            mats = s.mats[ok]
            scale = np.abs(np.diagonal(mats, axis1=1, axis2=2)).max(axis=1)
            asym = np.abs(mats - np.swapaxes(mats, 1, 2)).max(axis=(1, 2)) > _TOL * scale
            problems["symmetric"].extend(labels[s.rows[ok][asym]].ravel())
            eig = np.linalg.eigvalsh(mats[~asym]).min(axis=1)
            bad = eig < -_TOL * scale[~asym]
            problems["psd"].extend(labels[s.rows[ok][~asym][bad]].ravel())
            singular = ~bad & (eig <= SINGULAR * scale[~asym])
            problems["singular"].extend(labels[s.rows[ok][~asym][singular]].ravel())
    if problems["finite"]:
        raise SpecificationError(
            f"{argument}: non-finite sampling (co)variances in rows {format_rows(problems['finite'])}.")
    if problems["variance"]:
        raise SpecificationError(
            f"{argument}: sampling variances must be positive; rows {format_rows(problems['variance'])} are not.")
    if problems["symmetric"]:
        raise SpecificationError(
            f"{argument}: the block covering rows {format_rows(problems['symmetric'])} is not symmetric.")
    if problems["psd"]:
        what = "positive definite" if require_pd else "positive semi-definite"
        raise SpecificationError(
            f"{argument}: the block covering rows {format_rows(problems['psd'])} is not {what}.")
    if problems["singular"]:
        raise SpecificationError(
            f"{argument}: the block covering rows {format_rows(problems['singular'])} is singular (positive "
            "semi-definite but not positive definite): some combination of these rows would have no sampling "
            "error. V must be positive definite (Cochran's Q and the fixed-effects fit use its inverse); look "
            "for duplicated rows or correlations of 1.")
