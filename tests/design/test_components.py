"""Connected components of rows: against a breadth-first search written here."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from bayesmeta.design.components import component_labels


def _bfs_labels(n: int, heads, tails) -> np.ndarray:
    """Smallest row of each row's component, by breadth-first search over adjacency lists."""
    neighbours = [[] for _ in range(n)]
    for a, b in zip(heads, tails):
        neighbours[a].append(b)
        neighbours[b].append(a)
    label = np.full(n, -1)
    for start in range(n):
        if label[start] >= 0:
            continue
        label[start] = start
        queue = deque([start])
        while queue:
            for nxt in neighbours[queue.popleft()]:
                if label[nxt] < 0:
                    label[nxt] = start
                    queue.append(nxt)
    return label


@pytest.mark.parametrize("seed", range(20))
def test_random_graphs_match_breadth_first_search(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    m = int(rng.integers(0, 2 * n))
    heads, tails = rng.integers(0, n, m), rng.integers(0, n, m)
    np.testing.assert_array_equal(component_labels(n, heads, tails), _bfs_labels(n, heads, tails))


def test_long_chains_and_no_edges():
    n = 10_000
    order = np.random.default_rng(1).permutation(n)  # one chain through every row, in random order
    np.testing.assert_array_equal(component_labels(n, order[:-1], order[1:]), np.zeros(n, int))
    np.testing.assert_array_equal(component_labels(4, np.empty(0, int), np.empty(0, int)), np.arange(4))


def test_scipy_path_gives_the_same_labels(monkeypatch):
    from bayesmeta.design import components

    rng = np.random.default_rng(3)
    n = 2_000
    heads, tails = rng.integers(0, n, 1_500), rng.integers(0, n, 1_500)
    numpy_labels = component_labels(n, heads, tails)
    monkeypatch.setattr(components, "SCIPY_ROWS", 1)
    np.testing.assert_array_equal(component_labels(n, heads, tails), numpy_labels)
    np.testing.assert_array_equal(numpy_labels, _bfs_labels(n, heads, tails))
