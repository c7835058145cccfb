"""Structures: the covariance of many draws at once equals the covariance of each draw."""

import numpy as np
import pytest

from bayesmeta.spec.structures import STRUCTURES


@pytest.mark.parametrize("name", sorted(STRUCTURES))
@pytest.mark.parametrize("q", [1, 3])
def test_covariances_equal_covariance_draw_by_draw(name, q):
    structure = STRUCTURES[name]
    rng = np.random.default_rng(7)
    sd = rng.uniform(0.1, 2.0, size=(5, structure.n_sd(q)))
    rho = rng.uniform(-0.3, 0.6, size=(5, structure.n_rho(q)))
    batched = structure.covariances(sd, rho, q)
    assert batched.shape == (5, q, q)
    for s in range(5):
        np.testing.assert_allclose(batched[s], structure.covariance(sd[s], rho[s], q), rtol=1e-14, atol=0)
