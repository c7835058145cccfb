"""Random effects drawn from their conditional distribution, against the dense formula.

For each design the draws, whitened with the exact conditional mean and
covariance computed densely in the test (G Z' Sigma^-1 r and
G - G Z' Sigma^-1 Z G), must be standard normal: mean 0 and identity
covariance. Parameters change from draw to draw, so a draw paired with the
wrong parameters fails too.
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import berkey_model, dense_Z, whitened

import bayesmeta as bm
from bayesmeta.engines.random_effects import (
    draw_random_effects,
    draw_sampling_errors,
    psd_sqrt,
    random_part,
)

N_DRAWS = 6000


def _school(V=False):
    """The three-level school model; with ``V=True`` the studies of a district share
    correlated sampling errors, so the closed form does not apply."""
    dat = bm.datasets.load("school")
    if not V:
        return bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | district/study")
    sd = np.sqrt(dat["var"].to_numpy())
    same = dat["district"].to_numpy()[:, None] == dat["district"].to_numpy()[None, :]
    cov = np.where(same, 0.2, 0.0) * np.outer(sd, sd)
    np.fill_diagonal(cov, sd ** 2)
    return bm.MetaModel("effect ~ 1", data=dat, V=cov, random="~ 1 | district/study")




def _slopes():
    dat = bm.datasets.load("bcg")
    dat = dat.assign(yi=np.log((dat.tpos / dat.tneg) / (dat.cpos / dat.cneg)),
                     vi=1 / dat.tpos + 1 / dat.tneg + 1 / dat.cpos + 1 / dat.cneg,
                     region=np.where(dat.ablat > 33, "north", "south"), x=(dat.ablat - 33) / 10)
    return bm.MetaModel("yi ~ x", data=dat, vi="vi", random="~ 1 + x | region", struct="UN")




def _parameters(design, rng):
    """Per-draw beta and G: a random base, scaled by a random factor per draw."""
    p = design.p
    beta = rng.normal(size=p)[None] + 0.3 * rng.normal(size=(N_DRAWS, p))
    G = []
    for enc in design.encodings:
        q = enc.term.q
        A = rng.normal(size=(q, q))
        base = 0.05 * (A @ A.T + q * np.eye(q))
        G.append(base[None] * rng.uniform(0.2, 3.0, size=(N_DRAWS, 1, 1)))
    return beta, G




@pytest.mark.parametrize("make, path", [(_school, "nested"), (_school, "blocks"), (berkey_model, "blocks"),
                                        (_slopes, "blocks")], ids=["school-nested", "school-blocks",
                                                                   "berkey-UN", "slopes-UN"])
def test_draws_follow_the_exact_conditional_distribution(make, path):
    model = make(V=True) if path == "blocks" and make is _school else make()
    design = model.design
    assert (design.nested is not None) == (path == "nested")
    rng = np.random.default_rng(11)
    beta, G = _parameters(design, rng)
    effects = draw_random_effects(design, beta, G, rng)
    assert [e.shape for e in effects] == [(N_DRAWS, enc.term.n_groups, enc.term.q) for enc in design.encodings]
    z = whitened(design, beta, G, effects)
    k = z.shape[1]
    # every coordinate has mean 0 (SE 1/sqrt(S)) and the whitened covariance is the identity
    assert np.max(np.abs(z.mean(axis=0))) < 4.5 / np.sqrt(N_DRAWS)
    np.testing.assert_allclose(np.cov(z.T), np.eye(k), atol=6.0 / np.sqrt(N_DRAWS))


def test_random_part_and_sampling_errors():
    design = berkey_model().design
    rng = np.random.default_rng(2)
    effects = [rng.normal(size=(3, enc.term.n_groups, enc.term.q)) for enc in design.encodings]
    Zu = dense_Z(design) @ np.concatenate([e.reshape(3, -1) for e in effects], axis=1).T
    np.testing.assert_allclose(random_part(design, effects), Zu.T, atol=1e-12)
    e = draw_sampling_errors(design.V, 20000, rng)
    np.testing.assert_allclose(np.cov(e.T), design.V.to_dense(), atol=0.02 * design.V.diagonal().max())


def test_psd_sqrt_of_a_singular_matrix():
    G = np.array([[1.0, 1.0], [1.0, 1.0]])
    R = psd_sqrt(G)
    np.testing.assert_allclose(R @ R.T, G, atol=1e-12)


def test_zero_variance_gives_zero_effects():
    design = _school().design
    rng = np.random.default_rng(0)
    beta = np.zeros((5, 1))
    G = [np.zeros((5, 1, 1)), np.full((5, 1, 1), 0.03)]
    effects = draw_random_effects(design, beta, G, rng)
    assert np.all(effects[0] == 0)
    assert np.all(np.isfinite(effects[1])) and np.any(effects[1] != 0)
