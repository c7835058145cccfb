"""Connected components of an undirected graph on rows, in NumPy.

Rows are linked when they share a block of V or a group of a random term;
the independent blocks of a model are the connected components of those
links. The components are found by hooking and pointer jumping over the edge
list (every row points to a smaller row it is known to be connected to, until each
points to the smallest row of its component),
which needs a handful of vectorised rounds even for long chains, so a small
model's REML fit does not import scipy.sparse for it (a fifth of a second at
start-up). From :data:`SCIPY_ROWS` rows on, scipy's compiled graph search is
faster than the import costs, and is used instead.
"""

from __future__ import annotations

import numpy as np

#: From this many rows on, scipy.sparse.csgraph finds the components (same labels).
SCIPY_ROWS = 50_000


def component_labels(n: int, heads: np.ndarray, tails: np.ndarray) -> np.ndarray:
    """Label each of ``n`` rows by its connected component.

    Parameters
    ----------
    n : int
        Number of rows (vertices).
    heads, tails : numpy.ndarray
        Integer arrays of equal length: row ``heads[k]`` is linked to row ``tails[k]``.

    Returns
    -------
    numpy.ndarray
        For every row, the smallest row index of its component (so rows of one
        component share a label and labels increase with first appearance).

    Examples
    --------
    >>> component_labels(5, np.array([0, 3]), np.array([2, 4]))
    array([0, 1, 0, 3, 3])
    """
    heads, tails = np.asarray(heads, dtype=np.intp), np.asarray(tails, dtype=np.intp)
    if n >= SCIPY_ROWS:
        return _scipy_labels(n, heads, tails)
    root = np.arange(n)
    while True:
        a, b = root[heads], root[tails]
        linked = a != b
        if not linked.any():
            return root
        low, high = np.minimum(a[linked], b[linked]), np.maximum(a[linked], b[linked])
        # hook each larger root under a smaller root it is linked to (any one: all are connected);
        # roots only decrease, so this ends
        root[high] = low
        while True:  # pointer jumping: every row points to its root again
            jumped = root[root]
            if np.array_equal(jumped, root):
                break
            root = jumped


def _scipy_labels(n: int, heads: np.ndarray, tails: np.ndarray) -> np.ndarray:
    """The labels of :func:`component_labels` from scipy's breadth-first search."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    graph = sp.coo_matrix((np.ones(len(heads)), (heads, tails)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first = np.unique(labels, return_index=True)  # a component's smallest row
    return first[labels]
