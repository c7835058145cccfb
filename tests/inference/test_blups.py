"""fit.ranef() and fit.blup(): BLUPs of the random effects and of every row's true effect.

Against metafor (tests/reference/fixtures/inference.json: A_bcg.blup_ranef,
B_school.ranef and fitted_plus_ranef, C_multivariate.ranef and
fitted_plus_ranef) and, for every kind of random term (nested intercepts,
``inner | outer`` structures, random slopes, two structured terms, V with
covariances, location-scale models with per-group variances), against the mixed
model written out with dense n x n matrices in :class:`Dense`: the BLUPs
``G Z' W (y - X b)`` and Henderson's prediction-error covariance of (b, u).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from cases import MODELS, berkey_blocks, model_case, simulated
from inference_cases import BCG, REF, Dense, location_scale_fit
from reference_tools import assert_close
from scipy import stats

import bayesmeta as bm

COLUMNS = ["pred", "se", "pi_lb", "pi_ub"]


def _quiet(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (bm.ConvergenceWarning, bm.BoundaryWarning))
        return make()


def _row_scale():
    dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])
    return bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length").fit()


DENSE_CASES = {name: (lambda spec=MODELS[name]: model_case(spec, simulated(1)).fit())
               for name in ("slopes UN", "slopes DIAG", "four-level", "HAR", "nested + UN", "two structured",
                            "V blocks", "nested, one fixed")}
DENSE_CASES["location-scale, two levels"] = location_scale_fit
DENSE_CASES["location-scale, standard model"] = _row_scale


def _metafor_order(frame: pd.DataFrame, labels, convert=str) -> pd.DataFrame:
    return frame.set_axis(frame.index.map(convert)).loc[list(labels)]


@pytest.mark.parametrize("case", ["blup_REML", "ranef_REML", "blup_mods_REML", "ranef_mods_REML"])
def test_standard_model_matches_metafor(case):
    ref = REF["A_bcg"]["blup_ranef"][case]
    fit = bm.MetaModel("yi ~ ablat" if "mods" in case else "yi ~ 1", data=BCG, vi="vi").fit()
    out = fit.blup() if case.startswith("blup") else fit.ranef()["row"]
    assert list(fit.ranef()) == ["row"]
    for c in COLUMNS:
        assert_close(out[c].to_numpy(), ref[c], f"{case} {c}")


def test_three_level_model_matches_metafor():
    fit = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
                       random="~ 1 | district/study").fit()
    ref = REF["B_school"]["ranef"]
    out = fit.ranef()
    assert list(out) == ref["components"] == ["district", "district/study"]
    for label, key in (("district", "district"), ("district/study", "district_study")):
        mine = _metafor_order(out[label], ref[key]["rownames"])
        assert_close(mine["pred"].to_numpy(), ref[key]["estimate"], f"{label} pred")
        for c in ("se", "pi_lb", "pi_ub"):
            assert_close(mine[c].to_numpy(), ref[key][c], f"{label} {c}")
    both = REF["B_school"]["fitted_plus_ranef"]
    assert_close(fit.blup()["pred"].to_numpy(), both["sum"], "fitted + ranef")
    district_mean = fit.predict(pd.DataFrame({"district": [int(g) for g in both["district_mean"]["rownames"]]}),
                                existing="district")
    assert_close(district_mean["pred"].to_numpy(), both["district_mean"]["pred"], "district means")


def test_multivariate_model_matches_metafor():
    dat = bm.datasets.load("berkey1998")
    fit = bm.MetaModel("yi ~ 0 + outcome + outcome:I(year - 1983)", data=dat, V=berkey_blocks(dat),
                       random="~ outcome | trial", struct="UN").fit()
    ref = REF["C_multivariate"]["ranef"]
    out = fit.ranef()["outcome | trial"]
    assert out.index.names == ["trial", "outcome"]
    assert [f"{level} | {trial}" for trial, level in out.index] == ref["rownames"]  # metafor's order too
    assert_close(out["pred"].to_numpy(), ref["estimate"], "pred")
    for c in ("se", "pi_lb", "pi_ub"):
        assert_close(out[c].to_numpy(), ref[c], c)
    assert_close(fit.blup()["pred"].to_numpy(), REF["C_multivariate"]["fitted_plus_ranef"]["sum"], "fitted + ranef")


@pytest.mark.parametrize("case", list(DENSE_CASES))
def test_every_kind_of_term_against_dense_matrices(case):
    fit = _quiet(DENSE_CASES[case])
    dense = Dense(fit)
    design = fit.design
    for k, (enc, (label, frame)) in enumerate(zip(design.encodings, fit.ranef().items())):
        assert label == enc.term.label
        assert len(frame) == enc.term.n_groups * enc.term.q
        pred, se = dense.effects(k)
        assert_close(frame["pred"].to_numpy(), pred, f"{label} pred", rel=1e-7, abs_zero=1e-10)
        assert_close(frame["se"].to_numpy(), se, f"{label} se", rel=1e-7, abs_zero=1e-10)
    rows = fit.blup()
    pred, se = dense.predict(design.X, dense.Z)
    assert_close(rows["pred"].to_numpy(), pred, "blup pred", rel=1e-7)
    assert_close(rows["se"].to_numpy(), se, "blup se", rel=1e-7)
    assert_close(rows["pi_ub"] - rows["pred"], 1.959963984540054 * se, "blup pi", rel=1e-7)


def test_slope_effects_are_indexed_by_cluster_and_coefficient():
    fit = model_case(MODELS["slopes UN"], simulated(1)).fit()
    frame = fit.ranef()["1 + x | cluster"]
    assert frame.index.names == ["cluster", "coefficient"]
    assert frame.index[:2].tolist() == [(0, "Intercept"), (0, "x")]


def test_t_tests_use_t_quantiles_and_level_is_respected():
    fit = bm.MetaModel("yi ~ ablat", data=BCG, vi="vi").fit(test="t")
    crit = stats.t(fit.k - fit.p).ppf(0.95)
    for frame in (fit.blup(level=0.9), fit.ranef(level=0.9)["row"]):
        assert_close(frame["pi_ub"] - frame["pred"], crit * frame["se"], "half width", rel=1e-10)
    with pytest.raises(bm.SpecificationError, match="level"):
        fit.blup(level=95)


def test_transf_gives_transformed_sorted_limits_and_no_se():
    fit = bm.MetaModel("yi ~ 1", data=BCG, vi="vi").fit()
    plain, flipped = fit.blup(), fit.blup(transf=lambda v: -v)
    assert flipped["se"].isna().all()
    assert_close(flipped["pred"], -plain["pred"], "pred")
    assert_close(flipped["pi_lb"], -plain["pi_ub"], "lower limit")
    ratio = fit.ranef(transf=np.exp)["row"]
    assert_close(ratio["pi_lb"], np.exp(fit.ranef()["row"]["pi_lb"]), "exp limits")
    with pytest.raises(bm.SpecificationError, match="transf"):
        fit.blup(transf="exp")


def test_fixed_effects_fit_has_zero_random_effects():
    fit = bm.MetaModel("yi ~ ablat", data=BCG, vi="vi").fit("FE")
    assert (fit.ranef()["row"][["pred", "se"]].to_numpy() == 0).all()
    rows = fit.blup()
    assert_close(rows["pred"], fit.fitted, "pred")
    assert_close(rows["se"], fit.predict()["se"].to_numpy(), "se")


def test_blups_of_a_structured_term_with_a_scale_model():
    """E[u_jl | y] and its prediction-error SD against the dense computation (G_j per study), with a quarter of
    the outcomes missing: the effects of absent (study, outcome) cells are NaN."""
    from coscale_cases import dense_sigma, log_variance, simulate

    dat, blocks = simulate(9, n_studies=25, missing=0.25)
    model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=blocks, random="~ outcome | study", struct="UN",
                         scale={"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat", "rho": "~ habitat"}})
    fit = model.fit("REML")
    alpha, zeta = fit.alpha.to_numpy(), fit.zeta.to_numpy()
    X, y = model.design.X, model.design.y
    W = np.linalg.inv(dense_sigma(dat, blocks, alpha, zeta))
    P = W - W @ X @ np.linalg.solve(X.T @ W @ X, X.T @ W)
    table = fit.ranef()["outcome | study"]
    terrestrial = (dat["habitat"] == "terrestrial").to_numpy(int)
    tau = np.exp(0.5 * log_variance(dat["outcome"].to_numpy(), terrestrial, alpha))
    for (study, outcome), row in table.iterrows():
        mine = np.flatnonzero(dat["study"].to_numpy() == study)
        here = mine[dat["outcome"].to_numpy()[mine] == outcome]
        if not len(here):
            assert row.isna().all()
            continue
        rho = np.tanh(zeta[0] + zeta[1] * terrestrial[here[0]])
        c = np.zeros(len(y))  # Cov(u_jl, y)
        c[mine] = tau[here[0]] * tau[mine] * np.where(dat["outcome"].to_numpy()[mine] == outcome, 1.0, rho)
        assert row["pred"] == pytest.approx(c @ P @ y, abs=1e-8)
        assert row["se"] == pytest.approx(np.sqrt(tau[here[0]] ** 2 - c @ P @ c), rel=1e-7)
    assert table["pred"].isna().sum() == 2 * dat["study"].nunique() - len(dat)


def test_default_formulas_give_the_plain_structure_blups():
    dat = bm.datasets.load("habitat")
    V = bm.vcalc("vi", "study", obs="outcome", rho=0.4, data=dat)
    plain = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=V, random="~ outcome | study", struct="UN").fit()
    coscale = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=V, random="~ outcome | study", struct="UN",
                           scale={"outcome | study": {"rho": "~ 1"}}).fit()
    a, b = plain.ranef()["outcome | study"], coscale.ranef()["outcome | study"]
    present = b["pred"].notna()
    assert (~present).sum() == 2 * dat["study"].nunique() - len(dat)
    np.testing.assert_allclose(b[present].to_numpy(), a[present].to_numpy(), atol=1e-8)
    np.testing.assert_allclose(coscale.blup().to_numpy(), plain.blup().to_numpy(), atol=1e-8)
