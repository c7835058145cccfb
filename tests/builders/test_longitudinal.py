"""bm.longitudinal: time as a factor (Table 5 models 1-6, Ishak's HAR) and as a line (model 7)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from engine_tools import assert_graph_mode_is_reml
from reference_tools import assert_close, assert_matches_metafor, load_fixture

import bayesmeta as bm

GLIOMAS = load_fixture("gliomas")
ISHAK = load_fixture("ishak")

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def gliomas(**kwargs):
    dat = bm.datasets.load("gliomas")
    dat = dat[dat["logOR"].notna()]
    return bm.longitudinal(dat, yi="logOR", vi="logORvar", id="study", time="time", **kwargs)


@pytest.mark.parametrize("name, kwargs", [
    ("model1", dict(struct="DIAG")),
    ("model4", dict(struct="DIAG", phi=0.61)),
    ("model5_ar", dict(struct="AR", phi=0.61)),
    ("model4_ML", dict(struct="DIAG", phi=0.61)),
])
def test_time_as_factor_matches_metafor(name, kwargs):
    fit = gliomas(**kwargs).fit(GLIOMAS[name]["method"])
    # metafor reports rho = 0 for DIAG, which has no correlation; under AR with tau2 = 0
    # (model5_ar) the correlation is not identified
    components = ("tau2",) if kwargs["struct"] == "DIAG" or name == "model5_ar" else ("tau2", "rho")
    assert_matches_metafor(fit, GLIOMAS[name], check_components=components)


def test_within_study_covariance_is_the_papers():
    model = gliomas(struct="DIAG", phi=0.61)
    ours = [model.design.V.to_dense()[np.ix_(r, r)] for r in _study_rows(model)]
    for a, b in zip(ours, GLIOMAS["model4"]["V_blocks"]):
        assert_close(a, np.atleast_2d(b), "V block", rel=1e-10)


def _study_rows(model):
    codes = model.design.encodings[0].codes
    return [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]


def test_time_as_line_is_table5_model7():
    fit = gliomas(time_as="continuous", struct="DIAG", phi=0.61, center=15).fit("ML")
    ref = GLIOMAS["model7_ML"]
    assert abs(fit.loglik - ref["loglik"]) < 1e-3
    # metafor's fixed part is 1 + time (uncentred): same slope; our intercept is its value at 15
    assert_close(fit.coef["time_c"], ref["coef"][1], "slope")
    assert_close(fit.se["time_c"], ref["se"][1], "slope se")
    at15 = np.array([1.0, 15.0])
    assert_close(fit.coef["Intercept"], at15 @ ref["coef"], "intercept at 15")
    assert_close(fit.se["Intercept"], np.sqrt(at15 @ np.array(ref["vcov"]) @ at15), "intercept se")
    assert round(fit.aic, 1) == 101.4


def test_ishak_heterogeneous_ar():
    wide = bm.datasets.load("ishak2007")
    long = pd.concat([pd.DataFrame({"study": wide["study"], "time": t, "yi": wide[f"y{t}i"], "vi": wide[f"v{t}i"]})
                      for t in range(1, 5)])
    long = long.sort_values(["study", "time"], kind="stable").reset_index(drop=True)  # metafor's row order
    with pytest.warns(bm.MissingDataWarning):
        model = bm.longitudinal(long, yi="yi", vi="vi", id="study", time="time", phi=0.97, struct="HAR")
    assert_matches_metafor(model.fit(), ISHAK["har"])


def test_graph_mode_is_reml():
    assert_graph_mode_is_reml(gliomas(struct="DIAG", phi=0.61))


def test_bad_input_is_named():
    dat = bm.datasets.load("gliomas").dropna(subset=["logOR"])
    with pytest.raises(bm.SpecificationError, match=r"rows .* not in times"):
        bm.longitudinal(dat, yi="logOR", vi="logORvar", id="study", time="time", times=[6, 12, 18])
    with pytest.raises(bm.SpecificationError, match="repeat a time point"):
        bm.longitudinal(pd.concat([dat, dat.iloc[:1]]), yi="logOR", vi="logORvar", id="study", time="time")
    with pytest.raises(bm.SpecificationError, match="struct"):
        bm.longitudinal(dat, yi="logOR", vi="logORvar", id="study", time="time", time_as="continuous", struct="AR")
    with pytest.raises(bm.SpecificationError, match="phi"):
        bm.longitudinal(dat, yi="logOR", vi="logORvar", id="study", time="time", phi=1.2)
    with pytest.raises(bm.SpecificationError, match="nope"):
        bm.longitudinal(dat, yi="logOR", vi="nope", id="study", time="time")
