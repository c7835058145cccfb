"""``import bayesmeta`` and the whole ML/REML path load none of the heavy libraries.

Each check runs in a fresh interpreter, so that nothing imported by other tests
hides an import.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pymc", "pytensor", "arviz", "pymc_extras", "numba", "matplotlib", "xarray", "nutpie")


def _loaded_after(code: str, libraries=HEAVY) -> list[str]:
    script = code + (
        "\nimport sys, json\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({tuple(libraries)!r}))))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_loads_no_heavy_library():
    assert _loaded_after("import bayesmeta") == []
    # formulaic (a third of a second), scipy.sparse and scipy.special (a fifth) load with their first use
    deferred = ("formulaic", "scipy.sparse", "scipy.special", "scipy.optimize", "scipy.stats")
    code = "import bayesmeta, sys, json\nprint(json.dumps(sorted(set(sys.modules) & set(%r))))" % (deferred,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert "formulaic" in _loaded_after("import bayesmeta\nbayesmeta.spec.formulas.formula_engine()", ("formulaic",))


def test_ml_reml_path_loads_no_heavy_library():
    code = """
import warnings
import pandas as pd
import bayesmeta as bm
school = bm.datasets.load("school")
fit = bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study").fit()
fit.summary(); fit.table(); fit.wald_test(); bm.compare(fit, fit.__class__.refit(fit))
repr(fit); fit._repr_html_()  # the console and notebook views
berkey = bm.datasets.load("berkey98")
bm.multivariate(berkey, outcomes=["PD", "AL"], id="pubyear", vech=["var_PD", "cov_PD_AL", "var_AL"]).fit().summary()
dat = bm.datasets.load("bangertdrowns2004")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    ls = bm.location_scale("yi ~ length", dat, vi="vi", scale="~ length")
    full, reduced = ls.fit("ML"), bm.MetaModel("yi ~ length", data=dat, vi="vi").fit("ML")
ls.fit().predict_variance(pd.DataFrame({"length": [1, 10]}))
bm.lincom(full, {"ten": {"Intercept": 1, "length": 10}})
bm.escalc("RR", data=bm.datasets.load("bcg"), ai="tpos", bi="tneg", ci="cpos", di="cneg")
"""
    assert _loaded_after(code) == []


def test_prior_is_loaded_on_first_use():
    assert "pymc_extras" in _loaded_after("import bayesmeta as bm\nbm.Prior('Normal', mu=0, sigma=1)")
