"""Invariance properties (issue 16, items 2, 5 and 9), with hypothesis.

Permuting the rows, relabelling the clusters, an affine change of the outcome
(``y -> a y + c``, ``V -> a^2 V``) and the form in which V is given (dense,
blocks, ClusterBlocks, a labelled DataFrame) must not change the estimates.
The references are exact: the fit of the unchanged data, mapped through the
change.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.linalg import block_diag

import bayesmeta as bm

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RANDOM = "~ 1 | district/study"


def school() -> pd.DataFrame:
    return bm.datasets.load("school")


def fit(data, formula="effect ~ year", method="REML", **kwargs):
    kwargs.setdefault("vi", "var")
    kwargs.setdefault("random", RANDOM)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numpy warning may leak
        return bm.MetaModel(formula, data=data, **kwargs).fit(method)


@pytest.fixture(scope="module")
def reference():
    return fit(school())


def assert_same(result, ref, *, coef=None, sigma2_factor=1.0, loglik_shift=0.0):
    coef = ref.coef if coef is None else coef
    np.testing.assert_allclose(result.coef.to_numpy(), coef.to_numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(result.sigma2.to_numpy(), ref.sigma2.to_numpy() * sigma2_factor, rtol=1e-5,
                               atol=1e-10 * sigma2_factor)
    assert result.loglik == pytest.approx(ref.loglik + loglik_shift, abs=1e-6)


@SETTINGS
@given(st.permutations(range(56)))
def test_row_order_does_not_matter(reference, order):
    assert_same(fit(school().iloc[list(order)]), reference)


@SETTINGS
@given(st.lists(st.text(min_size=1, max_size=6), min_size=11, max_size=11, unique=True),
       st.permutations(range(56)))
def test_cluster_labels_do_not_matter(reference, names, order):
    dat = school()
    codes = pd.factorize(dat["district"])[0]
    relabelled = dat.assign(district=np.asarray(names, dtype=object)[codes]).iloc[list(order)]
    assert_same(fit(relabelled), reference)


@SETTINGS
@given(st.sampled_from([1e-3, 0.1, 2.0, 1e3, -1.0, -50.0]), st.sampled_from([0.0, -3.0, 1e4, 1e8, -1e8]))
def test_affine_change_of_the_outcome(a, c):
    # beyond |c| / |a| = 1e8 the signal a y keeps fewer than ~7 of its digits next to c (ulp(1e8) = 1.5e-8):
    # the residuals y - X b themselves then carry that rounding, whatever the algorithm
    assume(abs(c) / abs(a) <= 1e8)
    dat = school().assign(effect=lambda d: a * d["effect"] + c, var=lambda d: a ** 2 * d["var"])
    # a y + c is rounded to the precision of c: the reference is the fit of the data it then represents
    # ((a y + c) - c is exact), so that what is tested is the fit, not the rounding of its input
    reference = fit(school().assign(effect=(dat["effect"] - c) / a))
    expected = reference.coef * a
    expected.iloc[0] += c
    # the density of a y + c is that of y over |a|, for each of the n - p restricted observations
    shift = -(reference.k - reference.p) * np.log(abs(a))
    assert_same(fit(dat), reference, coef=expected, sigma2_factor=a ** 2, loglik_shift=shift)


@pytest.mark.parametrize("method", ["REML", "ML", "DL", "PM", "EB", "SJ", "HS", "HE"])
def test_bcg_shifted_far_from_zero(method):
    """The example of issue 16: the BCG log risk ratios plus 1e8 gave tau^2 0.0037 instead of 0.338."""
    dat = bm.datasets.load("bcg")
    ref = fit(dat, "logrr ~ 1", method, vi="logrrvar", random=None)
    shifted = fit(dat.assign(logrr=dat["logrr"] + 1e8), "logrr ~ 1", method, vi="logrrvar", random=None)
    assert shifted.tau2.iloc[0] == pytest.approx(ref.tau2.iloc[0], rel=1e-6)
    assert shifted.coef.iloc[0] - 1e8 == pytest.approx(ref.coef.iloc[0], abs=1e-7)
    assert shifted.se.iloc[0] == pytest.approx(ref.se.iloc[0], rel=1e-6)


def test_bcg_shifted_with_moderator():
    dat = bm.datasets.load("bcg")
    ref = fit(dat, "logrr ~ ablat", vi="logrrvar", random=None)
    shifted = fit(dat.assign(logrr=dat["logrr"] + 1e8), "logrr ~ ablat", vi="logrrvar", random=None)
    assert shifted.tau2.iloc[0] == pytest.approx(ref.tau2.iloc[0], rel=1e-6)
    assert shifted.coef["ablat"] == pytest.approx(ref.coef["ablat"], rel=1e-6)
    assert shifted.confint().loc["tau2"].to_numpy() == pytest.approx(ref.confint().loc["tau2"].to_numpy(), rel=1e-5)


def district_blocks(dat: pd.DataFrame, rho: float = 0.4) -> list[np.ndarray]:
    """Per-district blocks (correlation ``rho``) of the rows of ``dat``, which must be grouped by district."""
    out = []
    for _, v in dat.groupby("district", sort=False)["var"]:
        v = v.to_numpy()
        block = rho * np.sqrt(np.outer(v, v))
        np.fill_diagonal(block, v)
        out.append(block)
    return out


def dense(blocks: list[np.ndarray]) -> np.ndarray:
    """The n x n matrix of the blocks on its diagonal."""
    return block_diag(*blocks)


@pytest.fixture(scope="module")
def correlated():
    dat = school()
    return dat, fit(dat, vi=None, V=district_blocks(dat))


@pytest.mark.parametrize("form", ["dense", "sparse", "clusterblocks", "frame"])
def test_forms_of_V_agree(correlated, form):
    import scipy.sparse as sp

    dat, ref = correlated
    blocks = district_blocks(dat)
    V = {"dense": lambda: dense(blocks), "sparse": lambda: sp.csr_matrix(dense(blocks)),
         "clusterblocks": lambda: bm.vcalc("var", "district", obs="study", rho=0.4, data=dat),
         "frame": lambda: pd.DataFrame(dense(blocks), index=dat.index, columns=dat.index)}[form]()
    assert_same(fit(dat, vi=None, V=V), ref)


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(st.permutations(range(56)))
def test_labelled_V_follows_its_rows(correlated, order):
    """ClusterBlocks from vcalc(data=) and a labelled DataFrame are placed by label on shuffled data."""
    dat, ref = correlated
    shuffled = dat.iloc[list(order)]
    keyed = bm.vcalc("var", "district", obs="study", rho=0.4, data=dat)
    frame = pd.DataFrame(dense(district_blocks(dat)), index=dat.index, columns=dat.index)
    assert_same(fit(shuffled, vi=None, V=keyed), ref)
    assert_same(fit(shuffled, vi=None, V=frame.iloc[::-1, ::-1]), ref)


@SETTINGS
@given(st.permutations(range(56)))
def test_labelled_vi_follows_its_rows(reference, order):
    dat = school()
    shuffled = dat.iloc[list(order)]
    assert_same(fit(shuffled, vi=dat["var"]), reference)
    assert_same(fit(dat, vi=dat["var"].iloc[list(order)]), reference)


def test_posterior_mode_of_a_shifted_outcome():
    """MAP with flat priors is ML, shifted or not (the optimiser starts at the weighted least-squares fit)."""
    dat = bm.datasets.load("bcg")
    ml = fit(dat, "logrr ~ ablat", "ML", vi="logrrvar", random=None)
    model = bm.MetaModel("logrr ~ ablat", data=dat.assign(logrr=dat["logrr"] + 1e8), vi="logrrvar")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mode = model.fit("MAP", priors="flat")
    assert mode.tau2.iloc[0] == pytest.approx(ml.tau2.iloc[0], rel=1e-5)
    assert mode.coef["ablat"] == pytest.approx(ml.coef["ablat"], rel=1e-6)
    assert mode.coef["Intercept"] - 1e8 == pytest.approx(ml.coef["Intercept"], abs=1e-6)


@pytest.mark.slow
def test_nuts_on_a_shifted_outcome():
    """NUTS starts beta at the weighted least-squares fit: the BCG log risk ratios plus 1e8 give the posterior
    of the unshifted data (within 4 Monte Carlo standard errors), with converged chains."""
    import arviz as az

    dat = bm.datasets.load("bcg")
    posts = []
    for shift in (0.0, 1e8):
        model = bm.MetaModel("logrr ~ 1", data=dat.assign(logrr=dat["logrr"] + shift), vi="logrrvar")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            post = model.sample(draws=1000, tune=500, chains=2, random_seed=5, progressbar=False)
        assert post.diagnostics["max_rhat"] < 1.01 and post.diagnostics["divergences"] == 0
        tau2 = post.idata.posterior["tau2"]
        beta = post.idata.posterior["beta"] - shift
        posts.append((float(tau2.mean()), float(az.mcse(tau2.to_dataset())["tau2"].max()),
                      float(beta.mean()), float(az.mcse(beta.to_dataset(name="beta"))["beta"].max())))
    (t0, m0, b0, s0), (t1, m1, b1, s1) = posts
    assert abs(t1 - t0) < 4 * np.hypot(m0, m1)
    assert abs(b1 - b0) < 4 * np.hypot(s0, s1)
