"""The known sampling covariance V, stored as independent blocks.

``V`` is never held as an n x n matrix: it is a list of dense blocks, each
covering a set of rows, with zero covariance between rows of different blocks.
:func:`as_block_diagonal` turns every accepted user input (variances, a dense or
sparse matrix, a list of per-cluster blocks) into that form and checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .errors import SpecificationError, format_rows

#: Relative tolerance for symmetry and for negative eigenvalues of V blocks.
_TOL = 1e-8


@dataclass(frozen=True)
class BlockDiagonal:
    """A block-diagonal covariance matrix over ``n`` rows.

    Attributes
    ----------
    n : int
        Number of rows covered.
    rows : tuple of numpy.ndarray
        For each block, the (sorted) row positions it covers.
    blocks : tuple of numpy.ndarray
        For each block, its dense covariance matrix.
    """

    n: int
    rows: tuple
    blocks: tuple

    def diagonal(self) -> np.ndarray:
        """The sampling variances (diagonal of V) in row order."""
        out = np.empty(self.n)
        for r, b in zip(self.rows, self.blocks):
            out[r] = np.diag(b)
        return out

    def subset(self, keep: np.ndarray) -> "BlockDiagonal":
        """Restrict V to the rows at positions ``keep`` (renumbered 0..len(keep)-1)."""
        new_pos = np.full(self.n, -1)
        new_pos[keep] = np.arange(len(keep))
        rows, blocks = [], []
        for r, b in zip(self.rows, self.blocks):
            inside = new_pos[r] >= 0
            if inside.any():
                rows.append(new_pos[r][inside])
                blocks.append(b[np.ix_(inside, inside)])
        return BlockDiagonal(len(keep), tuple(rows), tuple(blocks))

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Pairs of rows linked by a block (a chain through each block's rows)."""
        heads = [r[:-1] for r in self.rows if len(r) > 1]
        tails = [r[1:] for r in self.rows if len(r) > 1]
        if not heads:
            return np.empty(0, int), np.empty(0, int)
        return np.concatenate(heads), np.concatenate(tails)

    def to_dense(self) -> np.ndarray:
        """The full n x n matrix (for small problems and tests only)."""
        out = np.zeros((self.n, self.n))
        for r, b in zip(self.rows, self.blocks):
            out[np.ix_(r, r)] = b
        return out


def from_variances(vi, name: str = "vi") -> BlockDiagonal:
    """V = diag(vi), one 1 x 1 block per row."""
    vi = np.asarray(vi, dtype=float).ravel()
    return BlockDiagonal(
        len(vi), tuple(np.array([i]) for i in range(len(vi))), tuple(v.reshape(1, 1) for v in vi)
    )


def _split_by_pattern(matrix) -> BlockDiagonal:
    """Split a dense or sparse matrix into the connected components of its non-zero pattern."""
    pattern = sp.csr_matrix(matrix != 0) if not sp.issparse(matrix) else (matrix != 0).tocsr()
    n = pattern.shape[0]
    n_comp, labels = connected_components(pattern, directed=False)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_comp + 1))
    dense = matrix.tocsr() if sp.issparse(matrix) else matrix
    rows, blocks = [], []
    for c in range(n_comp):
        r = order[bounds[c]:bounds[c + 1]]
        sub = dense[r][:, r]
        rows.append(r)
        blocks.append(sub.toarray() if sp.issparse(sub) else np.array(sub, dtype=float))
    return BlockDiagonal(n, tuple(rows), tuple(blocks))


def as_block_diagonal(V, n: int) -> BlockDiagonal:
    """Convert a user-supplied ``V`` to a :class:`BlockDiagonal` over ``n`` rows.

    Parameters
    ----------
    V : array_like, scipy.sparse matrix or list of array_like
        An n x n matrix (dense or sparse), or a list of square blocks whose
        sizes add up to n, taken in row order.
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
    if isinstance(V, (list, tuple)):
        rows, blocks, start = [], [], 0
        for i, block in enumerate(V):
            b = np.atleast_2d(np.asarray(block, dtype=float))
            if b.ndim != 2 or b.shape[0] != b.shape[1]:
                raise SpecificationError(f"V: block {i} is not a square matrix (shape {b.shape}).")
            rows.append(np.arange(start, start + b.shape[0]))
            blocks.append(b)
            start += b.shape[0]
        if start != n:
            raise SpecificationError(
                f"V: the blocks cover {start} rows but the data have {n} rows."
            )
        return BlockDiagonal(n, tuple(rows), tuple(blocks))
    if sp.issparse(V):
        if V.shape != (n, n):
            raise SpecificationError(f"V: expected a {n} x {n} matrix, got shape {V.shape}.")
        return _split_by_pattern(V.astype(float))
    V = np.asarray(V, dtype=float)
    if V.shape != (n, n):
        raise SpecificationError(f"V: expected a {n} x {n} matrix, got shape {V.shape}.")
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
        Require positive definiteness (for models without random effects).
    """
    labels = np.asarray(labels)
    bad_finite, bad_var, bad_sym, bad_psd = [], [], [], []
    for r, b in zip(vb.rows, vb.blocks):
        if not np.all(np.isfinite(b)):
            bad_finite.extend(labels[r])
            continue
        d = np.diag(b)
        if np.any(d <= 0):
            bad_var.extend(labels[r[d <= 0]])
            continue
        scale = np.max(np.abs(d))
        if np.max(np.abs(b - b.T)) > _TOL * scale:
            bad_sym.extend(labels[r])
            continue
        if len(r) > 1:
            eig = np.linalg.eigvalsh(b)
            limit = _TOL * scale if not require_pd else 0.0
            if eig.min() < -limit or (require_pd and eig.min() <= 0):
                bad_psd.extend(labels[r])
    if bad_finite:
        raise SpecificationError(f"{argument}: non-finite sampling (co)variances in rows {format_rows(bad_finite)}.")
    if bad_var:
        raise SpecificationError(
            f"{argument}: sampling variances must be positive; rows {format_rows(bad_var)} are not."
        )
    if bad_sym:
        raise SpecificationError(f"{argument}: the block covering rows {format_rows(bad_sym)} is not symmetric.")
    if bad_psd:
        what = "positive definite" if require_pd else "positive semi-definite"
        raise SpecificationError(f"{argument}: the block covering rows {format_rows(bad_psd)} is not {what}.")
