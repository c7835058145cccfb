"""Assumption sensitivity: every row is the fit it names, at the value it names."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from engine_tools import counted_compiles

import bayesmeta as bm
from bayesmeta.errors import SpecificationError

DAT = bm.datasets.load("berkey1998")


def make(rho):
    V = bm.vcalc("vi", cluster="trial", type="outcome", rho=rho, data=DAT)
    return bm.MetaModel("yi ~ 0 + outcome", DAT, V=V, random="~ outcome | trial", struct="UN")


@pytest.fixture(scope="module")
def sensitivity():
    return bm.assumption_sensitivity(make, {"rho": [0.0, 0.6]}, methods=("REML", "CR2"), cluster="trial",
                                     progressbar=False)


def test_rows_are_the_fits_at_each_value(sensitivity):
    for rho in (0.0, 0.6):
        reml = make(rho).fit()
        rows = sensitivity.table.query("rho == @rho and method == 'REML'").set_index("parameter")
        expected = reml.table()
        pd.testing.assert_frame_equal(rows[["estimate", "se", "ci_lb", "ci_ub"]], expected,
                                      check_names=False, rtol=1e-8)
        robust = sensitivity.table.query("rho == @rho and method == 'CR2'").set_index("parameter")
        np.testing.assert_allclose(robust[["se", "ci_lb", "ci_ub"]],
                                   reml.robust("trial").table()[["se", "ci_lb", "ci_ub"]], rtol=1e-8)
    assert sensitivity.results[("rho=0.6", "REML")].tau2.shape == (2,)


def test_the_assumption_matters(sensitivity):
    """The outcomes' within-study correlation changes the fixed effects (Berkey: through the AL/PD pairs)."""
    pd_rows = sensitivity.table.query("parameter == 'beta[outcome[PD]]' and method == 'REML'")
    assert abs(pd_rows.estimate.iloc[1] - pd_rows.estimate.iloc[0]) > 0.005


def test_plot_one_panel_per_parameter(sensitivity):
    axes = sensitivity.plot(["beta[outcome[AL]]", "beta[outcome[PD]]"])
    assert len(axes) == 2 and axes[0].get_title() == "beta[outcome[AL]]"
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["0.0", "0.6"]
    assert len(axes[0].get_legend().get_texts()) == 2  # REML and CR2
    with pytest.raises(KeyError, match="not in the table"):
        sensitivity.plot("beta[x]")


@pytest.mark.parametrize("values, kwargs, message", [
    ({}, {}, "values: expected a dict"),
    ({"rho": 0.5}, {}, "needs a list of values"),
    ({"rho": [0.5]}, {"methods": ("CR2",)}, "cluster: robust methods"),
])
def test_bad_arguments(values, kwargs, message):
    with pytest.raises(SpecificationError, match=message):
        bm.assumption_sensitivity(make, values, **kwargs)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayesmeta.ConvergenceWarning")  # short chains on purpose
def test_nuts_settings_share_one_compiled_model():
    """With nutpie, every value of rho samples the one compiled model with that value's V as data: one
    DataSampler for both settings, and each setting's stored log-likelihood is that of its own V (the
    row log-likelihood of the first draws, recomputed on the setting's model)."""
    pytest.importorskip("nutpie")
    from bayesmeta.engines.bayes.draws import parameter_draws
    from bayesmeta.engines.bayes.pointwise import row_log_likelihood

    with counted_compiles() as built:
        sens = bm.assumption_sensitivity(make, {"rho": [0.0, 0.6]}, methods=("NUTS",), draws=100, tune=100,
                                         chains=2, random_seed=4, progressbar=False)
    assert built == [1, 1]
    for rho in (0.0, 0.6):
        post, model = sens.results[(f"rho={rho}", "NUTS")], make(rho)
        assert post.sampler == "nutpie"
        beta, G = parameter_draws(model.param, post.idata.posterior.isel(draw=slice(0, 2)))
        expected = row_log_likelihood(model.design, beta, G)
        stored = post.idata.log_likelihood["y"].isel(draw=slice(0, 2)).values.reshape(len(beta), -1)
        np.testing.assert_allclose(stored, expected, rtol=1e-10)
    means = sens.table.query("parameter == 'beta[outcome[PD]]'").estimate
    assert means.iloc[0] != means.iloc[1]
