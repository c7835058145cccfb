"""fit.check() (issue 16, item 8): every line computed from the fit, checked against an exact value."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmeta as bm

CHECKS = ["convergence", "finite_objective", "gradient", "hessian", "standard_errors", "boundary", "dropped_rows",
          "sampling_covariance", "fixed_effects", "parameters", "identification"]


def quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def school_fit(**kwargs):
    return quiet(lambda: bm.MetaModel("effect ~ 1", data=kwargs.pop("data", bm.datasets.load("school")), vi="var",
                                      random="~ 1 | district/study", **kwargs).fit())


def test_a_good_fit_passes_every_check():
    report = school_fit().check()
    table = report.table
    assert list(table.index) == CHECKS
    assert (table["status"] == "ok").all() and report.ok and report.problems == []
    assert list(table.columns) == ["status", "value", "message"]
    text = str(report)
    assert text.startswith("11 checks: ok: 11; note: 0; problem: 0")
    assert all(name in text for name in CHECKS)
    frame = report.to_frame()
    frame.loc["hessian", "status"] = "changed"
    assert report.table.loc["hessian", "status"] == "ok"  # a copy


def test_sampling_covariance_line_is_exact():
    dat = bm.datasets.load("school")
    value = school_fit().check().table.loc["sampling_covariance", "value"]
    v = dat["var"].to_numpy()
    assert value == (f"n=56; storage=diagonal; min eigenvalue={v.min():.4g}; condition=1")
    blocks = [np.array([[0.1, 0.09], [0.09, 0.1]]), np.array([[0.2]]), np.array([[0.05]])]
    small = pd.DataFrame({"y": [0.1, 0.3, 0.2, 0.5], "g": [1, 1, 2, 3]})
    fit = quiet(lambda: bm.MetaModel("y ~ 1", data=small, V=blocks, random="~ 1 | g").fit())
    line = fit.check().table.loc["sampling_covariance"]
    eig = np.linalg.eigvalsh(blocks[0])
    assert line["value"] == f"n=4; storage=3 blocks (largest 2 x 2); min eigenvalue={0.01:.4g}; " \
                            f"condition={eig[1] / eig[0]:.3g}"
    assert line["status"] == "ok"
    dense = quiet(lambda: bm.MetaModel("y ~ 1", data=small.head(2), V=blocks[0]).fit("FE"))
    assert dense.check().table.loc["sampling_covariance", "status"] == "note"


def test_hessian_condition_is_that_of_the_curvature():
    """The condition number reported against second differences of the objective's values."""
    from bayesmeta.engines.mode.objective import Objective

    fit = school_fit()
    objective = Objective(fit.design, fit.param, reml=True)
    theta, h = fit.estimate.theta, 1e-4
    H = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            H[i, j] = (objective(theta + ei + ej)[0] - objective(theta + ei - ej)[0]
                       - objective(theta - ei + ej)[0] + objective(theta - ei - ej)[0]) / (4 * h * h)
    eig = np.linalg.eigvalsh(H)
    value = fit.check().table.loc["hessian", "value"]
    assert value == f"condition={eig[1] / eig[0]:.3g}"  # printed to 3 significant digits


def test_notes_boundary_dropped_rows_and_not_identified():
    flat = pd.DataFrame({"y": [0.10, 0.12, 0.09, 0.11, 0.10, np.nan], "v": [0.04, 0.05, 0.03, 0.06, 0.04, 0.05]})
    table = quiet(lambda: bm.MetaModel("y ~ 1", data=flat, vi="v").fit()).check().table
    assert table.loc["boundary", "status"] == "note" and "tau2[row]" in table.loc["boundary", "message"]
    assert table.loc["dropped_rows", "status"] == "note"
    assert table.loc["dropped_rows", "value"] == "used=5; dropped=1"
    assert "rows 5" in table.loc["dropped_rows", "message"]
    assert table.loc["hessian", "message"].startswith("no interior")  # tau2 at 0: nothing interior
    dat = bm.datasets.load("school").assign(everyone=1)
    fit = quiet(lambda: bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | everyone/district").fit())
    line = fit.check().table.loc["identification"]
    assert line["status"] == "note" and "sigma2[everyone]" in line["message"]
    post = quiet(lambda: bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | everyone/district")
                 .fit("LAPLACE", draws=100, random_seed=2))
    assert "Note: sigma2[everyone] not identified (a single cluster of 'everyone'): fixed at 0." in post.summary()
    assert float(abs(post.idata.posterior["sigma2"].sel(sigma2_component="everyone")).max()) == 0.0


def test_problems_non_convergence_and_flat_directions():
    fit = quiet(lambda: bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
                                     random="~ 1 | district/study").fit(control={"maxiter": 1, "polish": False}))
    assert not fit.converged  # one L-BFGS iteration from the moment start
    report = fit.check()
    assert report.table.loc["convergence", "status"] == "problem" and not report.ok
    assert "ITERATIONS REACHED LIMIT" in report.table.loc["convergence", "message"]
    assert report.table.loc["gradient", "status"] == "problem"
    assert report.table.loc["gradient", "value"] == f"max={fit.estimate.gradient_norm:.3g}"
    # UN correlations of outcomes that never occur together: flagged, free, and a problem for the check
    rng = np.random.default_rng(3)
    rows = [(s, o) for s in range(12) for o in (("A", "B") if s % 2 else ("B", "C"))]
    dat = pd.DataFrame(rows, columns=["trial", "outcome"])
    dat = dat.assign(yi=rng.normal(size=len(dat)), vi=0.05 + 0.05 * rng.random(len(dat)))
    fit = quiet(lambda: bm.MetaModel("yi ~ 0 + outcome", data=dat, vi="vi", random="~ outcome | trial",
                                     struct="UN").fit())
    table = fit.check().table
    assert table.loc["identification", "status"] == "problem"
    assert "A/C" in table.loc["identification", "message"]


def test_drifting_scale_coefficient_is_a_problem():
    model = bm.MetaModel("logrr ~ ablat", data=bm.datasets.load("bcg"), vi="logrrvar", scale="~ alloc")
    table = quiet(lambda: model.fit("ML")).check().table
    assert table.loc["scale_drift", "status"] == "problem"
    assert quiet(lambda: model.fit("REML")).check().table.loc["scale_drift", "status"] == "ok"


def test_laplace_posterior_check():
    post = quiet(lambda: bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar")
                 .fit("LAPLACE", draws=200, random_seed=1))
    table = post.check().table
    assert table.loc["sampler", "status"] == "ok"
    assert {"dropped_rows", "sampling_covariance", "fixed_effects", "identification"} <= set(table.index)
    assert "divergences" not in table.index


@pytest.mark.slow
def test_mcmc_posterior_check_reports_the_diagnostics():
    post = quiet(lambda: bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar")
                 .sample(draws=100, tune=100, chains=2, random_seed=3, progressbar=False))
    table = post.check().table
    d = post.diagnostics
    assert table.loc["divergences", "value"] == str(d["divergences"])
    assert table.loc["r_hat", "value"] == f"max={d['max_rhat']:.4f}"
    assert table.loc["ess", "value"] == f"bulk={d['min_ess_bulk']:.0f}; tail={d['min_ess_tail']:.0f}"
    # 200 draws cannot reach an ESS of 400: the check says so, as the result's own problems do
    assert table.loc["ess", "status"] == "problem" and not post.check().ok
    assert any("effective sample size" in p for p in post.problems)


@pytest.mark.parametrize(("method", "message"), [("FE", "no variance parameters estimated (FE)"),
                                                 ("DL", "DL is a moment estimator: no likelihood Hessian to check")])
def test_fits_without_a_likelihood_hessian(method, message):
    fit = bm.MetaModel("logrr ~ 1", data=bm.datasets.load("bcg"), vi="logrrvar").fit(method)
    line = fit.check().table.loc["hessian"]
    assert line["status"] == "ok" and line["message"] == message
