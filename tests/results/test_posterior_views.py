"""Printed and notebook views of posteriors (NUTS and Laplace), reproducible predictions,
PyMC's log lines behind ``progressbar``, and no RuntimeWarning from fixed correlations."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from results.views_tools import Tables

import bayesmeta as bm

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")


@pytest.fixture(scope="module")
def nuts(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.ConvergenceWarning)  # short chains
        return model.sample(draws=150, tune=150, chains=2, random_seed=3, progressbar=False)


@pytest.fixture(scope="module")
def laplace(model):
    return model.fit("laplace", draws=300, random_seed=3)


def test_nuts_summary_and_views_show_the_diagnostics(nuts):
    d = nuts.diagnostics
    text = nuts.summary()
    assert f"divergences: {d['divergences']}   max R-hat: {d['max_rhat']:.3f}" in text
    table = nuts.table()
    row = next(line for line in text.splitlines() if line.startswith("sigma2[district/study]"))
    assert row.split()[1:3] == [f"{table.loc['sigma2[district/study]', 'estimate']:.4f}",
                                f"{table.loc['sigma2[district/study]', 'se']:.4f}"]
    assert row.split()[-1] == f"{table.loc['sigma2[district/study]', 'r_hat']:.3f}"
    view = Tables(nuts._repr_html_())
    assert view.titles == ["Priors"]
    posterior, priors = view.tables
    assert posterior[:8] == ["", "mean", "sd", "2.5%", "97.5%", "ess_bulk", "ess_tail", "r_hat"]
    assert priors[:2] == ["parameter", "prior"] and "beta[Intercept]" in priors
    text = repr(nuts)
    assert "\n" not in text and text.startswith("BayesResult(method='NUTS', chains=2, draws=150, ")
    assert f"coef={{'Intercept': {nuts.coef.iloc[0]:.4f}}}" in text and f"max_rhat={d['max_rhat']:.3f}" in text


def test_laplace_views_leave_out_mcmc_diagnostics(laplace):
    text = laplace.summary()
    for word in ("R-hat", "r_hat", "ess", "divergences", "E-BFMI", "nan"):
        assert word not in text
    assert text.startswith("Bayesian meta-analysis (Laplace approximation at the posterior mode: 1 chain(s) x 300")
    posterior, _ = Tables(laplace._repr_html_()).tables
    assert posterior[:5] == ["", "mean", "sd", "2.5%", "97.5%"] and "r_hat" not in posterior
    assert "max_rhat" not in repr(laplace) and "divergences" not in repr(laplace)


def test_predict_is_reproducible_by_default(nuts):
    first, again = nuts.predict(), nuts.predict()
    assert first.equals(again)
    assert first.equals(nuts.predict(random_seed=0))
    other = nuts.predict(random_seed=1)
    assert other["pred"].equals(first["pred"])  # the mean needs no new draws
    assert not np.isclose(other["pi_lb"].iloc[0], first["pi_lb"].iloc[0], rtol=0, atol=1e-12)


def test_pymc_log_lines_follow_the_progressbar(model, caplog):
    def pymc_info(progressbar: bool) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.INFO), warnings.catch_warnings():
            warnings.simplefilter("ignore", bm.ConvergenceWarning)
            model.sample(draws=20, tune=20, chains=1, random_seed=1, progressbar=progressbar, sampler="pymc")
        return [r.getMessage() for r in caplog.records if r.name.startswith("pymc") and r.levelno == logging.INFO]

    before = logging.getLogger("pymc").level
    assert pymc_info(False) == []
    assert logging.getLogger("pymc").level == before  # restored
    shown = pymc_info(True)
    assert any("NUTS" in line for line in shown) and any("Sampling" in line for line in shown)


def test_fixed_correlations_leak_no_runtime_warning():
    from cases import berkey_blocks

    dat = bm.datasets.load("berkey1998")
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=berkey_blocks(dat), random="~ outcome | trial",
                         struct="UN", fixed={"rho": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", bm.ConvergenceWarning)
        post = model.sample(draws=60, tune=60, chains=2, random_seed=1, progressbar=False)
        text = post.summary()
        post._repr_html_(), repr(post), post.predict(), post.table()
    assert post.rho.iloc[0] == pytest.approx(0.5)
    assert "rho[" in text


def test_table_equals_arviz_summary(nuts):
    """The table's means, SDs, equal-tailed intervals, ESS and R-hat (computed once with the
    diagnostics) are ArviZ's summary of the same draws."""
    import arviz as az

    names = [v for v in ("beta", "sigma2") if v in nuts.idata.posterior]
    expected = az.summary(nuts.idata, var_names=names, kind="all", stat_focus="mean", round_to="none",
                          stat_funcs={"ci_lb": lambda x: np.quantile(x, 0.025), "ci_ub": lambda x: np.quantile(x, 0.975)})
    expected = expected.rename(columns={"mean": "estimate", "sd": "se"})
    table = nuts.table()
    assert list(table.index) == list(expected.index)
    for column in ("estimate", "se", "ci_lb", "ci_ub", "ess_bulk", "ess_tail", "r_hat"):
        np.testing.assert_allclose(table[column], expected[column], rtol=1e-10, err_msg=column)
