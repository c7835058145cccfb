"""bm.network: the paper's Table 1 (reference augmentation) and the exact contrast layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from engine_tools import assert_graph_mode_is_reml
from reference_tools import assert_close, assert_matches_metafor, load_fixture

import bayesmeta as bm

SMOKING = load_fixture("smoking")
REF = load_fixture("builders")

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def smoking_arms() -> pd.DataFrame:
    """The smoking network's observed arms (the data set's augmented arms A removed)."""
    wide = bm.datasets.load("smoking")
    rows = [{"study": r["study"], "trt": t, "events": r[f"d{t}"], "total": r[f"n{t}"]}
            for _, r in wide.iterrows() for t in "ABCD" if r[f"n{t}"] > 0.02]
    return pd.DataFrame(rows)


def hasselblad(**kwargs):
    return bm.network(bm.datasets.load("hasselblad1998"), study="study", treatment="trt", events="xi",
                      total="ni", reference="no_contact", **kwargs)


def test_table1_consistency_model_with_augmentation():
    net = bm.network(smoking_arms(), study="study", treatment="trt", events="events", total="total",
                     augment=(0.001, 0.01))
    ref = SMOKING["consistency"]
    assert net.contrast_data[["study", "trt"]].astype({"study": int}).values.tolist() == \
        [[int(s), o] for s, o in ref["long_rows"]]
    # the data set stores its log odds ratios and covariances in single precision (rel. error ~1e-6)
    assert_close(net.design.y, ref["long_data"]["y"], "log odds ratios", rel=2e-6)
    for ours, theirs in zip(_blocks(net), ref["V_blocks"]):
        assert_close(ours, np.array(theirs), "V block", rel=2e-6)
    fit = net.fit("REML")
    # so the fit is compared with metafor's on the stored values at the guide's tolerances for
    # estimates, SEs, tau2 and logLik (p-values amplify the input rounding: the exact-input
    # comparison is tests/test_reference_multivariate.py)
    assert_close(fit.coef.to_numpy(), ref["coef"], "coef")
    assert_close(fit.se.to_numpy(), ref["se"], "se")
    assert_close(fit.tau2.to_numpy(), ref["tau2"], "tau2")
    assert abs(fit.loglik - ref["loglik"]) < 1e-3
    assert np.round(fit.coef.to_numpy(), 3).tolist() == [0.398, 0.702, 0.866]
    assert round(fit.i2_q, 1) == 86.3  # Table 1: the paper's Q-based I^2 (eq. 4)


def test_table1_inconsistency_test():
    net = bm.network(smoking_arms(), study="study", treatment="trt", events="events", total="total",
                     augment=(0.001, 0.01), model="inconsistency")
    fit = net.fit("REML")
    ref = SMOKING["inconsistency"]
    assert abs(fit.loglik - ref["loglik"]) < 1e-3
    wald = net.inconsistency_test(fit)
    assert wald.df == 7 and len(net.interactions) == 7
    assert_close(wald.statistic, ref["wald"]["QM"], "QM")
    assert round(wald.pvalue, 3) == 0.646


def _blocks(model):
    V = model.design.V.to_dense()
    codes = model.design.encodings[0].codes
    return [V[np.ix_(codes == c, codes == c)] for c in range(codes.max() + 1)]


def test_exact_layout_matches_metafor():
    net = hasselblad()
    ref = REF["network_exact"]
    assert_close(net.design.y, ref["yi"], "contrasts", rel=1e-10)
    for ours, theirs in zip(_blocks(net), ref["V_blocks"]):
        assert_close(ours, np.atleast_2d(theirs), "V block", rel=1e-10)
    assert_matches_metafor(net.fit(), ref)


def test_exact_layout_inconsistency_matches_the_design_level_test():
    net = hasselblad(model="inconsistency")
    ref = REF["network_exact_inconsistency"]
    fit = net.fit()
    assert abs(fit.loglik - ref["loglik"]) < 1e-3
    assert_close(fit.tau2.to_numpy(), ref["tau2"], "tau2")
    wald = net.inconsistency_test(fit)
    assert wald.df == ref["df"]
    assert_close(wald.statistic, ref["QM"], "QM")
    assert_close(wald.pvalue, ref["pval"], "p")


def test_all_pairwise_contrasts():
    net = hasselblad()
    fit = net.fit()
    table = net.contrasts(fit)
    assert len(table) == 6 and table.index[0] == "grp_counseling vs no_contact"
    b, V = fit.coef, fit.vcov
    diff = b["d_self_help"] - b["d_ind_counseling"]
    se = np.sqrt(V.loc["d_self_help", "d_self_help"] + V.loc["d_ind_counseling", "d_ind_counseling"]
                 - 2 * V.loc["d_self_help", "d_ind_counseling"])
    row = table.loc["self_help vs ind_counseling"]
    np.testing.assert_allclose([row["estimate"], row["se"]], [diff, se], rtol=1e-12)
    odds = net.contrasts(fit, transform=np.exp)
    np.testing.assert_allclose(odds["estimate"], np.exp(table["estimate"]), rtol=1e-12)
    with pytest.raises(bm.SpecificationError, match="consistency model"):
        hasselblad(model="inconsistency").contrasts(fit)


def test_graph_mode_is_reml():
    assert_graph_mode_is_reml(hasselblad())


def test_bad_input_is_named():
    arms = smoking_arms()
    with pytest.raises(bm.SpecificationError, match="study 3.* single arm"):
        bm.network(arms.drop(index=arms.index[arms["study"] == 3][:1]), study="study", treatment="trt", events="events",
                   total="total")
    with pytest.raises(bm.SpecificationError, match="total: column 'nope'"):
        bm.network(arms, study="study", treatment="trt", events="events", total="nope")
    with pytest.raises(bm.SpecificationError, match="measure"):
        bm.network(arms, study="study", treatment="trt", events="events", total="total", measure="SMD")
    with pytest.raises(bm.SpecificationError, match="does not fit"):
        bm.network(arms, study="study", treatment="trt", events="events", total="total", measure="MD")
    with pytest.raises(bm.SpecificationError, match="augment"):
        bm.network(arms, study="study", treatment="trt", events="events", total="total", augment=(1, 0.5))
    with pytest.raises(bm.SpecificationError, match="model"):
        bm.network(arms, study="study", treatment="trt", events="events", total="total", model="full")
    with pytest.raises(bm.SpecificationError, match="repeat a treatment"):
        bm.network(pd.concat([arms, arms.iloc[:1]]), study="study", treatment="trt", events="events",
                   total="total")
