"""bm.dose_response: the paper's Table 4 (alcohol and colorectal cancer) and pooled curves."""

from __future__ import annotations

import numpy as np
import pytest
from engine_tools import assert_graph_mode_is_reml
from reference_tools import assert_close, assert_matches_metafor, load_fixture

import bayesmeta as bm

ALCOHOL = load_fixture("alcohol")
REF = load_fixture("builders")
COLUMNS = dict(id="id", dose="dose", logrr="logrr", se="se", cases="cases", n="peryears", type="type")

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")

# Table 4: name -> (builder arguments, method); the fixtures use dosresmeta's GL covariances
SPECS = {
    "L1": (dict(covariance="diagonal"), "ML"),
    "L2": (dict(solver="dosresmeta"), "ML"),
    "NL2": (dict(knots=[10, 25], random="linear", solver="dosresmeta"), "ML"),
    "NL3": (dict(knots=[10, 25], random="none", solver="dosresmeta"), "FE"),
}


def alcohol(**kwargs):
    return bm.dose_response(bm.datasets.load("alcohol"), **COLUMNS, **kwargs)


@pytest.mark.parametrize("name", list(SPECS))
def test_table4_matches_metafor(name):
    kwargs, method = SPECS[name]
    fit = alcohol(**kwargs).fit(method)
    ref = ALCOHOL[name]
    assert_matches_metafor(fit, ref, parms_offset=ref["parms"] - ref["parms_paper"])
    assert round(fit.aic, 2) == ref["paper"]["aic"]


def test_table4_nl1_random_spline():
    fit = alcohol(knots=[10, 25], solver="dosresmeta").fit("ML")
    assert_matches_metafor(fit, ALCOHOL["NL1"])
    assert round(fit.aic, 2) == 1.28


def test_exact_gl_solution_gives_the_same_fit():
    """The exact GL counts differ from dosresmeta's early-stopped ones by < 1e-4 relative."""
    exact, approx = alcohol().fit("ML"), alcohol(solver="dosresmeta").fit("ML")
    assert_close(exact.coef.to_numpy(), approx.coef.to_numpy(), "coef", rel=1e-4)
    assert abs(exact.loglik - approx.loglik) < 1e-3


def test_relative_risks():
    model = alcohol(solver="dosresmeta")
    rr = model.relative_risks(model.fit("ML"), [12])
    ref = ALCOHOL["L2"]["pred_dose12"]
    assert_close(rr.loc[12.0, ["estimate", "ci_lb", "ci_ub"]].to_numpy(float), [ref["RR"], *ref["RR_ci"]], "RR")
    assert_close(rr.loc[12.0, "se"], ref["se"], "se of log RR")
    curve = REF["alcohol_nl2_curve"]
    spline = alcohol(knots=[10, 25], random="linear", solver="dosresmeta")
    rr = spline.relative_risks(spline.fit("ML"), curve["dose"])
    assert_close(rr["estimate"].to_numpy(), curve["RR"], "RR curve")
    assert_close(rr["ci_lb"].to_numpy(), curve["RR_lb"], "RR lower")
    assert_close(rr["ci_ub"].to_numpy(), curve["RR_ub"], "RR upper")


def test_plot_curve(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    model = alcohol(knots=[10, 25], random="linear")
    fit = model.fit("ML")
    ax = model.plot_curve({"ML": fit}, np.linspace(0, 60, 31))
    assert len(ax.lines) == 2 and ax.get_xlabel() == "dose"
    # the curve drawn is the pooled relative risk (tested against metafor in test_relative_risks)
    rr = model.relative_risks(fit, np.linspace(0, 60, 31))
    np.testing.assert_allclose(ax.lines[0].get_xydata(), np.column_stack([rr.index, rr["estimate"]]), rtol=1e-12)
    ax.figure.savefig(tmp_path / "curve.png")


def test_graph_mode_is_reml():
    assert_graph_mode_is_reml(alcohol())


def test_bad_input_is_named():
    dat = bm.datasets.load("alcohol")
    with pytest.raises(bm.SpecificationError, match="cases="):
        bm.dose_response(dat, id="id", dose="dose", logrr="logrr", se="se")
    with pytest.raises(bm.SpecificationError, match="covariance"):
        alcohol(covariance="full")
    with pytest.raises(bm.SpecificationError, match="random"):
        alcohol(random="spline")
    no_reference = dat.drop(index=dat.index[(dat["id"] == "atm") & dat["se"].isna()])
    with pytest.raises(bm.SpecificationError, match="atm"):
        bm.dose_response(no_reference, **COLUMNS)
    with pytest.raises(bm.SpecificationError, match="dose: missing in rows"):
        bm.dose_response(dat.assign(dose=dat["dose"].where(dat.index != 3)), **COLUMNS)
