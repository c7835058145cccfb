"""The bad-input battery (issue 16, item 9): bad or awkward inputs over the whole public API.

Every case asserts the exception (or warning) type and that its message names
the argument, column or rows at fault (each listed text must occur in it). A case
is a function of no arguments that must raise (or warn); the data sets are small
and no case samples.
"""

from __future__ import annotations

import re
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import bayesmeta as bm
from bayesmeta import (
    BoundaryWarning,
    IdentificationWarning,
    MissingDataWarning,
    Prior,
    SpecificationError,
)


def school() -> pd.DataFrame:
    return bm.datasets.load("school")


def bcg() -> pd.DataFrame:
    return bm.datasets.load("bcg")


def arms() -> pd.DataFrame:
    return bm.datasets.load("hasselblad1998")


def berkey() -> pd.DataFrame:
    return bm.datasets.load("berkey1998")


def quiet(fn):
    """``fn()`` with the package's warnings silenced (for building the objects a case starts from)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


@cache
def school_fit():
    return bm.MetaModel("effect ~ year", data=school(), vi="var", random="~ 1 | district/study").fit()


@cache
def bcg_fit():
    return bm.MetaModel("logrr ~ ablat", data=bcg(), vi="logrrvar").fit()


def with_values(frame: pd.DataFrame, column: str, rows, value) -> pd.DataFrame:
    frame = frame.copy()
    if isinstance(value, str):
        frame[column] = frame[column].astype(object)
    frame.loc[rows, column] = value
    return frame


def model(data=None, formula="effect ~ 1", **kwargs):
    kwargs.setdefault("vi", "var")
    return bm.MetaModel(formula, data=school() if data is None else data, **kwargs)


def multilevel_model(**kwargs):
    return model(random="~ 1 | district/study", **kwargs)


def school_blocks(order=None):
    """Per-district blocks of V (a correlation of 0.5 within district), in data order or ``order``."""
    dat = school()
    blocks = []
    for rows in dat.groupby("district", sort=False).groups.values():
        v = dat.loc[rows, "var"].to_numpy()
        block = 0.5 * np.sqrt(np.outer(v, v))
        np.fill_diagonal(block, v)
        blocks.append(block)
    return blocks if order is None else [blocks[i] for i in order]


def dense_v(n=4, **changes) -> np.ndarray:
    V = np.eye(n) * 0.1
    for (i, j), value in changes.get("cells", {}).items():
        V[i, j] = value
    return V


def two_by_two(**cells) -> pd.DataFrame:
    base = {"ai": [5, 3, 8], "bi": [45, 47, 42], "ci": [9, 6, 4], "di": [41, 44, 46]}
    base.update(cells)
    return pd.DataFrame(base)


def means(**cols) -> pd.DataFrame:
    base = {"m1i": [1.0, 2.0, 3.0], "sd1i": [1.0, 1.1, 0.9], "n1i": [20, 30, 25],
            "m2i": [0.5, 1.5, 2.0], "sd2i": [1.0, 1.2, 1.0], "n2i": [20, 28, 22]}
    base.update(cols)
    return pd.DataFrame(base)


def escalc_means(measure, **cols):
    return bm.escalc(measure, means(**cols), m1i="m1i", sd1i="sd1i", n1i="n1i", m2i="m2i", sd2i="sd2i", n2i="n2i")


def escalc_table(measure="OR", **kwargs):
    cells = {k: kwargs.pop(k) for k in ("ai", "bi", "ci", "di") if k in kwargs}
    return bm.escalc(measure, two_by_two(**cells), ai="ai", bi="bi", ci="ci", di="di", **kwargs)


def correlations(measure, ri, ni):
    return bm.escalc(measure, pd.DataFrame({"ri": ri, "ni": ni}), ri="ri", ni="ni")


def network(data=None, **kwargs):
    kwargs = {"study": "study", "treatment": "trt", "events": "xi", "total": "ni", **kwargs}
    return bm.network(arms() if data is None else data, **kwargs)


def arm_based(data=None, **kwargs):
    kwargs = {"study": "study", "arm": "trt", "events": "xi", "total": "ni", **kwargs}
    return bm.arm_based(arms() if data is None else data, **kwargs)


def disconnected() -> pd.DataFrame:
    return pd.DataFrame({"study": [1, 1, 2, 2, 3, 3], "trt": ["A", "B", "A", "B", "C", "D"],
                         "xi": [3, 5, 4, 6, 2, 7], "ni": [30, 30, 40, 40, 25, 25]})


def multivariate(data=None, **kwargs):
    kwargs = {"yi": "yi", "outcome": "outcome", "id": "trial", "vi": "vi", **kwargs}
    return bm.multivariate(berkey() if data is None else data, **kwargs)


def never_together() -> pd.DataFrame:
    """Three outcomes; A and C never occur in the same study."""
    rng = np.random.default_rng(3)
    rows = [(s, o) for s in range(12) for o in (("A", "B") if s % 2 else ("B", "C"))]
    dat = pd.DataFrame(rows, columns=["trial", "outcome"])
    return dat.assign(yi=rng.normal(size=len(dat)), vi=0.05 + 0.05 * rng.random(len(dat)))


def single_cluster() -> pd.DataFrame:
    return school().assign(everyone=1)


def duplicated_level() -> pd.DataFrame:
    return school().assign(copy=lambda d: "d" + d["district"].astype(str))


def longitudinal(**kwargs):
    dat = bm.datasets.load("dbs")
    long = pd.DataFrame({"id": np.repeat(np.arange(len(dat)), 2), "time": np.tile([3, 6], len(dat)),
                         "y": dat[["eff_month3", "eff_month6"]].to_numpy().ravel(),
                         "v": dat[["var_month3", "var_month6"]].to_numpy().ravel()})
    return bm.longitudinal(long, **{"yi": "y", "id": "id", "time": "time", "vi": "v", **kwargs})


def dose_response(**kwargs):
    return bm.dose_response(bm.datasets.load("alcohol"), **{"id": "id", "dose": "dose", "logrr": "logrr", "se": "se",
                                                            "cases": "cases", "n": "peryears", "type": "type",
                                                            **kwargs})


def flat_outcome() -> pd.DataFrame:
    return pd.DataFrame({"y": [0.10, 0.12, 0.09, 0.11, 0.10, 0.10], "v": [0.04, 0.05, 0.03, 0.06, 0.04, 0.05]})


E = SpecificationError
CASES = [
    # --- MetaModel: formula, data, columns --------------------------------------------------------------
    ("formula-not-str", lambda: bm.MetaModel(1, data=school(), vi="var"), E, ["formula"]),
    ("formula-list", lambda: bm.MetaModel(["effect ~ 1"], data=school(), vi="var"), E, ["formula"]),
    ("data-list", lambda: bm.MetaModel("effect ~ 1", data=[1, 2], vi="var"), E, ["data"]),
    ("data-dict", lambda: bm.MetaModel("effect ~ 1", data={"effect": [1.0]}, vi="var"), E, ["data"]),
    ("unknown-outcome", lambda: model(formula="effectx ~ 1"), E, ["effectx"]),
    ("unknown-moderator", lambda: model(formula="effect ~ yr"), E, ["yr"]),
    ("unknown-vi-column", lambda: model(vi="varx"), E, ["varx"]),
    ("unknown-random-column", lambda: model(random="~ 1 | distr"), E, ["distr"]),
    ("unknown-random-inner", lambda: model(random="~ 1 | district/stud"), E, ["stud"]),
    ("injection-call", lambda: model(formula="effect ~ __import__('os').getcwd()"), E, ["formula"]),
    ("injection-attribute", lambda: model(formula="effect ~ year.real"), E, ["formula"]),
    ("injection-dunder", lambda: model(formula="effect ~ I(year.__class__)"), E, ["formula"]),
    ("injection-unknown-function", lambda: model(formula="effect ~ eval('year')"), E, ["formula", "eval"]),
    ("injection-random", lambda: model(random="~ 1 | __import__('os').getcwd()"), E, ["random"]),
    ("injection-scale", lambda: bm.location_scale("effect ~ 1", school(), vi="var", scale="~ exec('1')"),
     E, ["scale"]),
    ("injection-mods", lambda: multivariate(mods="~ open('x')"), E, ["open"]),
    ("outcome-text", lambda: model(data=with_values(school(), "effect", [2], "n/a")), E, ["effect", "not numeric",
                                                                                           "rows 2"]),
    ("outcome-all-text", lambda: model(data=school().assign(effect="a")), E, ["effect", "not numeric"]),
    ("outcome-bool", lambda: model(data=school().assign(effect=True)), E, ["effect", "not numeric"]),
    ("moderator-decimal-comma", lambda: model(data=with_values(school(), "year", [4], "3,5"),
                                              formula="effect ~ year"), E, ["year", "4", "'3,5'"]),
    ("moderator-stray-strings", lambda: model(data=with_values(school(), "year", [1, 7], "x"),
                                              formula="effect ~ year"), E, ["year", "1 ('x')", "7 ('x')"]),
    ("duplicated-columns", lambda: model(data=pd.concat([school(), school()[["effect"]]], axis=1)), E,
     ["'effect'", "more than once"]),
    ("outcome-inf", lambda: model(data=with_values(school(), "effect", [4], np.inf)), E, ["rows 4"]),
    ("rank-deficient", lambda: model(data=school().assign(year2=lambda d: 2 * d["year"]),
                                     formula="effect ~ year + year2"), E, ["year2"]),
    ("more-parameters-than-data", lambda: model(data=pd.DataFrame({"effect": [0.1, 0.3, 0.2], "var": 0.01,
                                                                   "year": [1, 2, 4], "g": [1, 1, 2]}),
                                                formula="effect ~ year", random="~ 1 | g/year"), E, ["parameters"]),
    ("missing-raise", lambda: model(data=with_values(school(), "effect", [5, 9], np.nan), na_action="raise"), E,
     ["'effect'", "rows 5, 9", "na_action"]),
    ("na-action-unknown", lambda: model(na_action="omit"), E, ["na_action"]),
    ("no-complete-rows", lambda: model(data=school().assign(effect=np.nan)), E, ["data"]),
    # --- MetaModel: vi ----------------------------------------------------------------------------------
    ("vi-and-V", lambda: model(V=np.eye(56)), E, ["vi", "V"]),
    ("neither-vi-nor-V", lambda: model(vi=None), E, ["vi", "V"]),
    ("vi-wrong-length", lambda: model(vi=[0.1, 0.2]), E, ["vi", "56", "2"]),
    ("vi-negative", lambda: model(data=with_values(school(), "var", [3, 8], -0.1)), E, ["vi", "rows 3, 8"]),
    ("vi-zero", lambda: model(data=with_values(school(), "var", [11], 0.0)), E, ["vi", "rows 11"]),
    ("vi-inf", lambda: model(data=with_values(school(), "var", [12], np.inf)), E, ["vi", "rows 12"]),
    ("vi-text", lambda: model(data=with_values(school(), "var", [6], "n/a")), E, ["vi", "'var'", "rows 6",
                                                                                   "not numeric"]),
    ("vi-frame", lambda: model(vi=school()[["var"]]), E, ["vi", "DataFrame"]),
    ("vi-matrix", lambda: model(vi=np.eye(56)), E, ["vi", "shape"]),
    ("vi-series-unknown-labels", lambda: model(vi=school()["var"].set_axis(range(100, 156))), E,
     ["vi", "100", "not rows of the data"]),
    ("vi-series-missing-labels", lambda: model(vi=school()["var"].iloc[:-2]), E, ["vi", "54, 55"]),
    ("vi-series-duplicated-labels", lambda: model(vi=school()["var"].set_axis([0] * 56)), E, ["vi", "repeated"]),
    ("vi-series-text", lambda: model(vi=school()["var"].astype(object).where(lambda s: s.index != 3, "x")),
     E, ["vi", "3"]),
    ("vi-list-text", lambda: model(vi=["a"] * 56), E, ["vi"]),
    # --- MetaModel: V -----------------------------------------------------------------------------------
    ("V-wrong-size", lambda: model(vi=None, V=np.eye(5) * 0.1), E, ["V", "56"]),
    ("V-asymmetric", lambda: model(data=school().head(4), vi=None, V=dense_v(cells={(0, 1): 0.05})), E,
     ["V", "symmetric"]),
    ("V-not-psd", lambda: model(data=school().head(4), vi=None, V=dense_v(cells={(0, 1): 0.5, (1, 0): 0.5})), E,
     ["V", "positive semi-definite", "rows 0, 1"]),
    ("V-singular", lambda: model(data=school().head(4), vi=None, V=dense_v(cells={(0, 1): 0.1, (1, 0): 0.1})), E,
     ["V", "singular", "rows 0, 1"]),
    ("V-nan", lambda: model(data=school().head(4), vi=None, V=dense_v(cells={(0, 2): np.nan, (2, 0): np.nan})),
     MissingDataWarning, ["rows of V", "rows 0, 2"]),
    ("V-inf", lambda: model(data=school().head(4), vi=None, V=dense_v(cells={(0, 2): np.inf, (2, 0): np.inf})), E,
     ["V", "non-finite", "rows 0, 2"]),
    ("V-nan-variance", lambda: model(data=school().head(4), vi=None, V=dense_v(cells={(2, 2): np.nan})),
     MissingDataWarning, ["rows 2"]),
    ("V-negative-variance", lambda: model(data=school().head(4), vi=None, V=dense_v(cells={(3, 3): -0.1})), E,
     ["V", "rows 3"]),
    ("V-series", lambda: model(vi=None, V=school()["var"]), E, ["V", "Series"]),
    ("V-frame-unknown-labels", lambda: model(data=school().head(3), vi=None,
                                             V=pd.DataFrame(np.eye(3) * 0.1, index=[0, 1, 7], columns=[0, 1, 7])),
     E, ["V", "7"]),
    ("V-frame-columns", lambda: model(data=school().head(3), vi=None,
                                      V=pd.DataFrame(np.eye(3) * 0.1, columns=["a", "b", "c"])), E, ["V", "a, b, c"]),
    ("V-frame-text", lambda: model(data=school().head(2), vi=None, V=pd.DataFrame([["x", 0.0], [0.0, 0.1]])), E,
     ["V", "not numbers"]),
    ("V-blocks-straddle", lambda: model(vi=None, V=[np.diag(school()["var"].to_numpy()[:6]) + 0.001]
                                        + [np.atleast_2d(v) for v in school()["var"].to_numpy()[6:]],
                                        random="~ 1 | district/study"), E, ["V", "rows 0, 1, 2, 3, 4, 5",
                                                                           "'district'"]),
    ("V-blocks-other-order", lambda: model(vi=None, V=school_blocks(order=list(range(10, -1, -1))),
                                           random="~ 1 | district/study"), E, ["V", "district"]),
    ("V-blocks-too-few", lambda: model(vi=None, V=school_blocks()[:-1], random="~ 1 | district/study"), E, ["V"]),
    ("V-clusterblocks-wrong-n", lambda: model(data=school().head(4), vi=None,
                                              V=bm.ClusterBlocks(3, ["a", "b"], [[0, 1], [2]],
                                                                 [np.eye(2) * .1, [[0.1]]])), E, ["V", "3", "4"]),
    ("clusterblocks-not-covering", lambda: bm.ClusterBlocks(3, ["a"], [[0, 1]], [np.eye(2)]), E,
     ["ClusterBlocks", "3 rows"]),
    ("clusterblocks-labels-length", lambda: bm.ClusterBlocks(2, ["a"], [[0, 1]], [np.eye(2)], labels=[[5]]), E,
     ["ClusterBlocks", "labels"]),
    ("V-clusterblocks-labels", lambda: model(data=school().head(4), vi=None,
                                             V=bm.ClusterBlocks(4, ["a", "b"], [[0, 1], [2, 3]], [np.eye(2) * .1] * 2,
                                                                labels=[[0, 1], [2, 99]])), E, ["V", "99"]),
    ("V-clusterblocks-column", lambda: model(data=school().head(4).assign(g=["a", "a", "b", "b"]), vi=None,
                                             random="~ 1 | g",
                                             V=bm.ClusterBlocks(4, ["a", "b"], [[0, 2], [1, 3]],
                                                                [np.eye(2) * .1] * 2, labels=[[0, 2], [1, 3]],
                                                                column="g")), E, ["V", "'a'", "'g'", "0, 2"]),
    # --- MetaModel: random, struct, fixed --------------------------------------------------------------
    ("random-int", lambda: model(random=5), E, ["random"]),
    ("random-dict", lambda: model(random={"~ 1": "study"}), E, ["random"]),
    ("random-list-int", lambda: model(random=["~ 1 | district", 3]), E, ["random"]),
    ("random-no-bar", lambda: model(random="~ 1"), E, ["random"]),
    ("random-bad-syntax", lambda: model(random="1 | district"), E, ["random"]),
    ("struct-without-random", lambda: model(struct="UN"), E, ["struct"]),
    ("struct-int", lambda: model(random="~ factor | district", struct=5,
                                 data=school().assign(factor=lambda d: d["year"] > 1990)), E, ["struct"]),
    ("struct-unknown", lambda: model(random="~ inner | district", struct="XYZ",
                                     data=school().assign(inner=lambda d: (d["year"] > 1990).astype(int))), E,
     ["struct", "XYZ"]),
    ("struct-count", lambda: model(random="~ inner | district", struct=["CS", "UN"],
                                   data=school().assign(inner=lambda d: (d["year"] > 1990).astype(int))), E,
     ["struct"]),
    ("fixed-list", lambda: multilevel_model(fixed=[0.0]), E, ["fixed", "dict"]),
    ("fixed-unknown-key", lambda: multilevel_model(fixed={"sigma": [0.1, None]}), E, ["fixed", "sigma"]),
    ("fixed-nan", lambda: multilevel_model(fixed={"sigma2": [np.nan, None]}), E, ["fixed", "finite"]),
    ("fixed-inf", lambda: multilevel_model(fixed={"sigma2": [np.inf, None]}), E, ["fixed", "finite"]),
    ("fixed-string", lambda: multilevel_model(fixed={"sigma2": "0.1"}), E, ["fixed", "sigma2"]),
    ("fixed-bool", lambda: multilevel_model(fixed={"sigma2": [True, None]}), E, ["fixed", "sigma2"]),
    ("fixed-wrong-length", lambda: multilevel_model(fixed={"sigma2": [0.1, None, None]}), E,
     ["fixed", "'sigma2'", "2 values"]),
    ("fixed-negative-variance", lambda: multilevel_model(fixed={"sigma2": [-0.1, None]}), E, ["fixed", "sigma2", "-0.1"]),
    ("fixed-rho-out-of-range", lambda: multivariate(fixed={"rho": 1.5}) if False else
     bm.MetaModel("yi ~ 0 + outcome", data=berkey(), vi="vi", random="~ outcome | trial", struct="UN",
                  fixed={"rho": 1.5}), E, ["fixed", "rho"]),
    ("scale-int", lambda: bm.location_scale("effect ~ 1", school(), vi="var", scale=3), E, ["scale"]),
    ("scale-unknown-column", lambda: bm.location_scale("effect ~ 1", school(), vi="var", scale="~ yr"), E,
     ["yr"]),
    # --- non-identified components (warnings) ----------------------------------------------------------
    ("single-cluster", lambda: model(data=single_cluster(), random="~ 1 | everyone/district"),
     IdentificationWarning, ["sigma2[everyone]", "single cluster", "fixed at 0"]),
    ("single-cluster-only-term", lambda: model(data=single_cluster(), random="~ 1 | everyone"),
     IdentificationWarning, ["sigma2[everyone]"]),
    ("nested-level-same-clusters", lambda: model(data=duplicated_level(), random="~ 1 | district/copy"),
     IdentificationWarning, ["district/copy", "only the sum"]),
    ("same-term-twice", lambda: model(random=["~ 1 | district", "~ 1 | district"]), IdentificationWarning,
     ["only the sum"]),
    ("un-never-together", lambda: bm.MetaModel("yi ~ 0 + outcome", data=never_together(), vi="vi",
                                               random="~ outcome | trial", struct="UN"), IdentificationWarning,
     ["rho", "A", "C", "never occur in the same cluster"]),
    ("cs-single-inner", lambda: bm.MetaModel("yi ~ 0 + outcome", data=never_together().drop_duplicates("trial"),
                                             vi="vi", random="~ outcome | trial", struct="CS"),
     IdentificationWarning, ["rho", "'outcome'"]),
    ("missing-dropped", lambda: model(data=with_values(school(), "effect", [3, 10], np.nan)), MissingDataWarning,
     ["'effect'", "rows 3, 10"]),
    ("boundary", lambda: bm.MetaModel("y ~ 1", data=flat_outcome(), vi="v").fit(), BoundaryWarning,
     ["tau2", "boundary"]),
    ("boundary-ML", lambda: bm.MetaModel("y ~ 1", data=flat_outcome(), vi="v").fit("ML"), BoundaryWarning,
     ["ML", "tau2"]),
    # --- fit() -----------------------------------------------------------------------------------------
    ("method-unknown", lambda: model().fit("OLS"), E, ["method", "OLS"]),
    ("method-lower", lambda: model().fit(3), E, ["method"]),
    ("moment-multilevel", lambda: multilevel_model().fit("DL"), E, ["method", "DL"]),
    ("level-zero", lambda: model().fit(level=0), E, ["level"]),
    ("level-one", lambda: model().fit(level=1.0), E, ["level"]),
    ("level-percent", lambda: model().fit(level=95), E, ["level"]),
    ("level-string", lambda: model().fit(level="0.95"), E, ["level"]),
    ("level-nan", lambda: model().fit(level=np.nan), E, ["level"]),
    ("test-unknown", lambda: model().fit(test="f"), E, ["test"]),
    ("test-knha-multilevel", lambda: multilevel_model().fit(test="knha"), E, ["test"]),
    ("control-unknown", lambda: model().fit(control={"maxiters": 3}), E, ["control", "maxiters"]),
    ("laplace-draws-zero", lambda: model().fit("LAPLACE", draws=0), E, ["draws"]),
    ("laplace-draws-float", lambda: model().fit("LAPLACE", draws=10.5), E, ["draws"]),
    ("laplace-draws-bool", lambda: model().fit("LAPLACE", draws=True), E, ["draws"]),
    ("laplace-level", lambda: model().fit("LAPLACE", level=2), E, ["level"]),
    ("map-priors-list", lambda: model().fit("MAP", priors=[Prior("Normal")]), E, ["priors", "list"]),
    ("map-priors-unknown-key", lambda: model().fit("MAP", priors={"betta": Prior("Normal")}), E,
     ["priors", "betta"]),
    ("map-priors-not-prior", lambda: model().fit("MAP", priors={"beta": 1.0}), E, ["priors", "'beta'"]),
    ("map-priors-key-int", lambda: model().fit("MAP", priors={1: Prior("Normal")}), E, ["priors", "1"]),
    ("map-priors-string", lambda: model().fit("MAP", priors="weak"), E, ["priors", "weak"]),
    ("prior-negative-sigma", lambda: model().fit("MAP", priors={"sd": Prior("HalfNormal", sigma=-1.0)}), E,
     ["priors", "'sd'", "sigma"]),
    ("prior-zero-sigma", lambda: model().fit("MAP", priors={"beta": Prior("Normal", mu=0, sigma=0)}), E,
     ["priors", "'beta'", "sigma"]),
    ("prior-inf-mu", lambda: model().fit("MAP", priors={"beta": Prior("Normal", mu=np.inf, sigma=1)}), E,
     ["priors", "'beta'", "mu"]),
    ("prior-sd-negative-support", lambda: model().fit("MAP", priors={"sd": Prior("Normal", mu=0, sigma=1)}), E,
     ["priors", "'sd'", "negative"]),
    ("prior-uniform-bounds", lambda: model().fit("MAP", priors={"beta": Prior("Uniform", lower=1, upper=0)}), E,
     ["priors", "'beta'", "lower"]),
    ("prior-lkj-negative", lambda: bm.MetaModel("yi ~ 0 + outcome", data=berkey(), vi="vi",
                                                random="~ outcome | trial", struct="UN")
     .fit("MAP", priors={"lkj_eta": -1}), E, ["lkj_eta"]),
    ("prior-lkj-string", lambda: bm.MetaModel("yi ~ 0 + outcome", data=berkey(), vi="vi",
                                              random="~ outcome | trial", struct="UN")
     .fit("MAP", priors={"lkj_eta": "2"}), E, ["lkj_eta"]),
    # --- sample(): checked before sampling -------------------------------------------------------------
    ("sample-draws-zero", lambda: model().sample(draws=0), E, ["draws"]),
    ("sample-draws-float", lambda: model().sample(draws=100.0), E, ["draws"]),
    ("sample-draws-bool", lambda: model().sample(draws=True), E, ["draws"]),
    ("sample-tune-negative", lambda: model().sample(tune=-1), E, ["tune"]),
    ("sample-chains-zero", lambda: model().sample(chains=0), E, ["chains"]),
    ("sample-cores-zero", lambda: model().sample(cores=0), E, ["cores"]),
    ("sample-sampler", lambda: model().sample(sampler="stan"), E, ["sampler", "stan"]),
    ("sample-level", lambda: model().sample(level=1.5), E, ["level"]),
    ("sample-unknown-kwarg", lambda: model().sample(target_acept=0.95), E, ["target_acept", "target_accept"]),
    ("sample-unknown-kwarg-nutpie", lambda: model().sample(sampler="nutpie", target_acept=0.9), E,
     ["target_acept"]),
    ("sample-priors-list", lambda: model().sample(priors=[1]), E, ["priors"]),
    ("sample-prior-bad", lambda: model().sample(priors={"sd": Prior("HalfNormal", sigma=0)}), E,
     ["priors", "sigma"]),
    # --- results ----------------------------------------------------------------------------------------
    ("confint-level", lambda: school_fit().confint(level=2), E, ["level"]),
    ("confint-method", lambda: school_fit().confint(method="bootstrap"), E, ["method"]),
    ("predict-level", lambda: school_fit().predict(level=0), E, ["level"]),
    ("predict-newdata-column", lambda: school_fit().predict(newdata=pd.DataFrame({"yr": [1990]})), E, ["year"]),
    ("predict-newdata-list", lambda: school_fit().predict(newdata=[1990]), E, ["newdata"]),
    ("predict-newdata-text", lambda: school_fit().predict(newdata=pd.DataFrame({"year": ["x"]})), E, ["year"]),
    ("profile-unknown", lambda: school_fit().profile("sigma2[nope]"), E, ["sigma2[nope]"]),
    ("profile-points", lambda: school_fit().profile("sigma2[district]", points=0), E, ["points"]),
    ("ranef-level", lambda: school_fit().ranef(level=5), E, ["level"]),
    ("blup-level", lambda: school_fit().blup(level=-0.5), E, ["level"]),
    ("robust-cluster", lambda: school_fit().robust(cluster="nope"), E, ["cluster", "nope"]),
    ("robust-adjust", lambda: school_fit().robust(cluster="district", adjust="CR9"), E, ["adjust", "CR9"]),
    ("robust-level", lambda: school_fit().robust(cluster="district", level=3), E, ["level"]),
    ("wald-terms-unknown", lambda: school_fit().wald_test(terms=["nope"]), E, ["terms", "nope"]),
    ("wald-terms-repeated", lambda: school_fit().wald_test(terms=["year", "year"]), E, ["terms", "year"]),
    ("wald-terms-and-L", lambda: school_fit().wald_test(terms=["year"], L=[[0, 1]]), E, ["terms", "L"]),
    ("wald-terms-int", lambda: school_fit().wald_test(terms=3), E, ["terms"]),
    ("wald-L-redundant", lambda: school_fit().wald_test(L=[[0, 1], [0, 2]]), E, ["L", "rows 1", "rank 1"]),
    ("wald-L-zero-row", lambda: school_fit().wald_test(L=[[0, 1], [0, 0]]), E, ["L", "rows 1"]),
    ("wald-L-shape", lambda: school_fit().wald_test(L=[[0, 1, 0]]), E, ["L", "2 columns"]),
    ("wald-L-nan", lambda: school_fit().wald_test(L=[[np.nan, 1]]), E, ["L", "rows 0"]),
    ("wald-L-text", lambda: school_fit().wald_test(L=[["a", 1]]), E, ["L"]),
    ("wald-part", lambda: school_fit().wald_test(part="scale"), E, ["part"]),
    ("lincom-nan-dict", lambda: bm.lincom(school_fit(), {"c": {"Intercept": 1.0, "year": np.nan}}), E,
     ["L", "'c'", "year"]),
    ("lincom-nan-frame", lambda: bm.lincom(school_fit(), pd.DataFrame({"Intercept": [1.0], "year": [np.nan]},
                                                                      index=["c"])), E, ["L", "'c'", "'year'"]),
    ("lincom-text-weight", lambda: bm.lincom(school_fit(), {"c": {"year": "1"}}), E, ["L", "year"]),
    ("lincom-unknown-coef", lambda: bm.lincom(school_fit(), {"c": {"yr": 1.0}}), E, ["L", "yr"]),
    ("lincom-not-frame", lambda: bm.lincom(school_fit(), [[0, 1]]), E, ["L"]),
    ("lincom-inner-not-dict", lambda: bm.lincom(school_fit(), {"c": [0, 1]}), E, ["L", "'c'"]),
    ("lincom-empty", lambda: bm.lincom(school_fit(), pd.DataFrame(columns=["year"])), E, ["L"]),
    ("lincom-level", lambda: bm.lincom(school_fit(), {"c": {"year": 1.0}}, level=1), E, ["level"]),
    ("lincom-transform", lambda: bm.lincom(school_fit(), {"c": {"year": 1.0}}, transform="exp"), E,
     ["transform"]),
    ("lrt-different-data", lambda: bm.lrt(bcg_fit(), school_fit()), E, ["data"]),
    ("lrt-not-results", lambda: bm.lrt(school_fit(), 3), E, ["reduced"]),
    ("anova-one-fit-not-result", lambda: bm.anova(school_fit(), "x"), E, []),
    ("permutation-n", lambda: bcg_fit().permutation_test(n=0), E, ["n"]),
    ("permutation-part", lambda: bcg_fit().permutation_test(n=10, part="all"), E, ["permutation_test"]),
    ("regtest-model", lambda: bcg_fit().regtest(model="ols"), E, ["model"]),
    ("regtest-predictor", lambda: bcg_fit().regtest(predictor="x"), E, ["predictor"]),
    ("trimfill-side", lambda: bm.MetaModel("logrr ~ 1", data=bcg(), vi="logrrvar").fit().trimfill(side="up"), E,
     ["side"]),
    ("trimfill-estimator", lambda: bm.MetaModel("logrr ~ 1", data=bcg(), vi="logrrvar").fit()
     .trimfill(estimator="X0"), E, ["estimator"]),
    # --- escalc ------------------------------------------------------------------------------------------
    ("escalc-measure", lambda: escalc_table("XX"), E, ["measure", "XX"]),
    ("escalc-measure-int", lambda: bm.escalc(3, two_by_two()), E, ["measure"]),
    ("escalc-data", lambda: bm.escalc("OR", [1, 2], ai="ai"), E, ["data"]),
    ("escalc-unknown-argument", lambda: escalc_table(xi="ai"), E, ["xi"]),
    ("escalc-unknown-column", lambda: bm.escalc("OR", two_by_two(), ai="a", bi="bi", ci="ci", di="di"), E,
     ["'a'"]),
    ("escalc-missing-argument", lambda: bm.escalc("OR", two_by_two(), ai="ai", bi="bi", ci="ci"), E, ["di"]),
    ("escalc-add-negative", lambda: escalc_table(add=-0.5), E, ["add"]),
    ("escalc-add-text", lambda: escalc_table(add="0.5"), E, ["add"]),
    ("escalc-add-nan", lambda: escalc_table(add=np.nan), E, ["add"]),
    ("escalc-to", lambda: escalc_table(to="some"), E, ["to", "some"]),
    ("escalc-drop00", lambda: escalc_table(drop00="yes"), E, ["drop00"]),
    ("escalc-var-names-same", lambda: escalc_table(var_names=("y", "y")), E, ["var_names", "'y'"]),
    ("escalc-var-names-length", lambda: escalc_table(var_names=("y",)), E, ["var_names"]),
    ("escalc-var-names-str", lambda: escalc_table(var_names="yv"), E, ["var_names"]),
    ("escalc-negative-count", lambda: escalc_table(ai=[5, -1, 8]), E, ["ai", "1"]),
    ("escalc-text-count", lambda: escalc_table(ai=[5, "x", 8]), E, ["ai"]),
    ("escalc-r-above-one", lambda: correlations("ZCOR", [0.2, 1.5, 0.3], [20, 30, 40]), E, ["ri", "1"]),
    ("escalc-zero-cells-none", lambda: escalc_table(ai=[0, 3, 8], to="none"), UserWarning, ["rows 0", "to='none'"]),
    ("escalc-smd-groups-of-one", lambda: escalc_means("SMD", n1i=[1, 30, 25], n2i=[1, 28, 22]), UserWarning,
     ["rows 0", "degrees of freedom"]),
    ("escalc-rom-negative-mean", lambda: escalc_means("ROM", m1i=[1.0, -2.0, 3.0]), UserWarning,
     ["rows 1", "positive means"]),
    ("escalc-zcor-small-n", lambda: correlations("ZCOR", [0.2, 0.4, 0.3], [20, 3, 40]), UserWarning,
     ["rows 1", "ni > 3"]),
    ("escalc-cor-one", lambda: correlations("COR", [0.2, 1.0, 0.3], [20, 30, 40]), UserWarning,
     ["rows 1", "+-1"]),
    ("escalc-zcor-minus-one", lambda: correlations("ZCOR", [-1.0, 0.4, 0.3], [20, 30, 40]), UserWarning,
     ["rows 0"]),
    ("escalc-proportion-n-zero", lambda: bm.escalc("PLO", pd.DataFrame({"xi": [0, 3], "ni": [0, 30]}), xi="xi",
                                                   ni="ni"), UserWarning, ["rows 0", "ni is 0"]),
    ("escalc-proportion-events-above-n", lambda: bm.escalc("PR", pd.DataFrame({"xi": [5, 40], "ni": [30, 30]}),
                                                           xi="xi", ni="ni"), E, ["xi", "1"]),
    # --- vcalc, wide_to_long, gl_covariance --------------------------------------------------------------
    ("vcalc-unknown-column", lambda: bm.vcalc("var", "distr", rho=0.5, data=school()), E, ["distr"]),
    ("vcalc-rho-range", lambda: bm.vcalc("var", "district", rho=1.5, data=school()), E, ["rho"]),
    ("vcalc-negative-vi", lambda: bm.vcalc(with_values(school(), "var", [2], -1.0)["var"],
                                           school()["district"], rho=0.5), E, ["vi", "2"]),
    ("vcalc-length", lambda: bm.vcalc([0.1, 0.2, 0.3], [1, 1], rho=0.5), E, ["vi", "3", "2"]),
    ("vcalc-phi-range", lambda: bm.vcalc("var", "district", time="year", phi=2.0, data=school()), E, ["phi"]),
    ("wide-unknown-outcome", lambda: bm.wide_to_long(bm.datasets.load("berkey98"), ["PD", "XX"],
                                                     var=["var_PD", "var_AL"]), E, ["XX"]),
    ("wide-var-length", lambda: bm.wide_to_long(bm.datasets.load("berkey98"), ["PD", "AL"], var=["var_PD"]), E,
     ["var"]),
    ("gl-unknown-column", lambda: bm.gl_covariance(bm.datasets.load("alcohol"), id="id", logrr="logrr", se="se",
                                                   cases="cases", n="peryrs", type="type"), E, ["peryrs"]),
    ("gl-solver", lambda: bm.gl_covariance(bm.datasets.load("alcohol"), id="id", logrr="logrr", se="se",
                                           cases="cases", n="peryears", type="type", solver="fast"), E,
     ["solver"]),
    # --- builders ---------------------------------------------------------------------------------------
    ("multilevel-levels-unknown", lambda: bm.multilevel("effect ~ 1", school(), levels=["district", "stud"],
                                                        vi="var"), E, ["stud"]),
    ("multilevel-levels-int", lambda: bm.multilevel("effect ~ 1", school(), levels=3, vi="var"), E, ["levels"]),
    ("multivariate-unknown-yi", lambda: multivariate(yi="y"), E, ["'y'"]),
    ("multivariate-unknown-id", lambda: multivariate(id="study"), E, ["study"]),
    ("multivariate-struct", lambda: multivariate(struct="XYZ"), E, ["struct", "XYZ"]),
    ("multivariate-mods-unknown", lambda: multivariate(mods="~ yr"), E, ["yr"]),
    ("longitudinal-time-as", lambda: longitudinal(time_as="number"), E, ["time_as"]),
    ("longitudinal-unknown-id", lambda: longitudinal(id="ident"), E, ["ident"]),
    ("longitudinal-struct", lambda: longitudinal(struct="XYZ"), E, ["struct"]),
    ("arm-events-above-total", lambda: arm_based(data=with_values(arms(), "xi", [3], 10_000)), E,
     ["events", "'xi'", "total", "3"]),
    ("arm-negative-total", lambda: arm_based(data=with_values(arms(), "ni", [4], -5)), E, ["total", "'ni'", "4"]),
    ("arm-events-text", lambda: arm_based(data=with_values(arms(), "xi", [2], "many")), E, ["events", "'xi'"]),
    ("arm-unknown-arm", lambda: arm_based(arm="treatment"), E, ["arm", "treatment"]),
    ("arm-measure", lambda: arm_based(measure="XX"), E, ["measure", "XX"]),
    ("arm-study-effects", lambda: arm_based(study_effects="mixed"), E, ["study_effects"]),
    ("arm-no-outcome", lambda: bm.arm_based(arms(), study="study", arm="trt"), E, ["events"]),
    ("network-disconnected", lambda: network(data=disconnected()), E, ["trt", "disconnected", "'A', 'B'",
                                                                       "'C', 'D'"]),
    ("network-events-text", lambda: network(data=with_values(arms(), "xi", [2], "many")), E, ["events", "'xi'"]),
    ("network-events-above-total", lambda: network(data=with_values(arms(), "xi", [5], 10_000)), E,
     ["events", "total", "5"]),
    ("network-model", lambda: network(model="both"), E, ["model", "both"]),
    ("network-reference", lambda: network(reference="placebo"), E, ["reference", "placebo"]),
    ("network-duplicate-arm", lambda: network(data=pd.concat([arms(), arms().head(1)], ignore_index=True)), E,
     ["trt"]),
    ("network-unknown-study", lambda: network(study="trial"), E, ["trial"]),
    ("location-scale-levels", lambda: bm.location_scale("effect ~ 1", school(), vi="var", scale="~ year",
                                                        levels=["distr"]), E, ["distr"]),
    ("dose-response-covariance", lambda: dose_response(covariance="exact"), E, ["covariance"]),
    ("dose-response-unknown-dose", lambda: dose_response(dose="dosage"), E, ["dosage"]),
    ("dose-response-random", lambda: dose_response(random="other"), E, ["random"]),
]

IDS = [c[0] for c in CASES]


def test_battery_size_and_unique_ids():
    assert len(CASES) >= 150
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize(("case", "action", "expected", "names"), CASES, ids=IDS)
def test_bad_input(case, action, expected, names):
    if issubclass(expected, Warning):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            action()
        messages = [str(w.message) for w in caught if issubclass(w.category, expected)]
        assert messages, f"{case}: no {expected.__name__}; got {[str(w.message) for w in caught]}"
        message = " | ".join(messages)
    else:
        with pytest.raises(expected) as info, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            action()
        message = str(info.value)
    for name in names:
        assert re.search(re.escape(name), message), f"{case}: {name!r} not in {message!r}"


def test_no_runtime_warning_for_a_single_study():
    dat = pd.DataFrame({"y": [0.3], "v": [0.04]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", RuntimeWarning)
        fit = bm.MetaModel("y ~ 1", data=dat, vi="v").fit("FE")
        fit.summary()
        fit.check()
    assert [w.category for w in caught] == [IdentificationWarning]
    assert re.search(r"tau2\[row\].*single cluster", str(caught[0].message))
    assert fit.coef.iloc[0] == pytest.approx(0.3)
    assert fit.se.iloc[0] == pytest.approx(0.2)


def test_not_identified_component_is_fixed_and_flagged():
    with pytest.warns(IdentificationWarning):
        m = model(data=single_cluster(), random="~ 1 | everyone/district")
    fit = quiet(m.fit)
    assert fit.sigma2["everyone"] == 0.0
    components = fit.components.set_index("name")
    assert not components.loc["everyone", "identified"] and components.loc["everyone/district", "identified"]
    assert "not identified" in fit.summary()
    assert fit.check().table.loc["identification", "status"] == "note"
    # the split of the sum of two identical levels: the later one is fixed, the sum is that of one level
    one = quiet(lambda: model(random="~ 1 | district").fit())
    two = quiet(lambda: model(data=duplicated_level(), random="~ 1 | district/copy").fit())
    assert two.sigma2.sum() == pytest.approx(one.sigma2.iloc[0], rel=1e-6)
    assert two.loglik == pytest.approx(one.loglik, abs=1e-8)


def test_unused_categorical_levels_are_dropped_before_the_rank_check():
    dat = school().assign(era=lambda d: pd.Categorical(np.where(d["year"] > 1985, "late", "early"),
                                                       categories=["early", "late", "never"]))
    fit = quiet(lambda: model(data=dat, formula="effect ~ era").fit())
    plain = quiet(lambda: model(data=dat.assign(era=dat["era"].astype(str)), formula="effect ~ era").fit())
    assert list(fit.coef.index) == list(plain.coef.index) == ["Intercept", "era[T.late]"]
    np.testing.assert_allclose(fit.coef.to_numpy(), plain.coef.to_numpy(), rtol=1e-12)
