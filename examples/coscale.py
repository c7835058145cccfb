"""Bivariate location-coscale meta-analysis: heterogeneity SDs and correlation that depend on habitat.

In the spirit of drmTMB's bivariate vignette (``sigma1 ~ habitat``, ``sigma2 ~ habitat``,
``rho12 ~ habitat``), on the bundled simulated data set ``habitat``: 150 studies of two
outcomes (A, B), each missing with probability 0.1, sampling correlation 0.4 within
studies. bayesmeta fits it with the block-sparse V and the incomplete studies as they are.

1. the plain bivariate random-effects model (one SD per outcome, one correlation);
2. the coscale model: each outcome's SD and the between-outcome correlation depend on
   habitat, ``log tau_jl^2 = w_jl' alpha`` and ``atanh(rho_j) = u_j' zeta``, by REML,
   with the likelihood-ratio test against the plain model and the Wald test of the
   correlation's habitat coefficient;
3. the same model by NUTS (default priors), side by side with REML;
4. the fitted SDs and correlations per habitat from both engines, beside the simulation's
   true values;
5. a figure of the SDs and the correlation against habitat with 95% intervals (REML and
   NUTS), saved to the path given on the command line (default ``coscale.png``).

Run: python examples/coscale.py [--quick] [figure.png]
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from _example import figure_path, posterior_means, sampling, show

import bayesmeta as bm

dat = bm.datasets.load("habitat")
V = bm.vcalc("vi", "study", obs="outcome", rho=0.4, data=dat)
complete = int((dat.groupby("study").size() == 2).sum())
print(f"{dat['study'].nunique()} studies, {len(dat)} rows ({complete} studies report both outcomes)")

# 1. the plain bivariate model ------------------------------------------------------------
plain = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=V, random="~ outcome | study", struct="UN").fit("REML")
show("Plain bivariate model (REML):", plain.table())

# 2. SDs and correlation depending on habitat ----------------------------------------------
scale = {"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat", "rho": "~ habitat"}}
model = bm.MetaModel("yi ~ 0 + outcome", data=dat, V=V, random="~ outcome | study", struct="UN", scale=scale)
reml = model.fit("REML")
print()
print(reml.summary())
lrt = bm.lrt(reml, plain)
show("Likelihood-ratio test against the plain model:", lrt.table)
wald = reml.wald_test(part="correlation")
print(f"\nDoes the correlation depend on habitat? {wald}")

# 3. the same model by NUTS -----------------------------------------------------------------
print("\nSampling the coscale model with NUTS ...")
post = model.sample(**sampling())
show("REML beside NUTS:", bm.compare(reml, post))
posterior_means("bivariate coscale model", post, names=("beta", "alpha", "zeta"))

# 4. fitted SDs and correlations per habitat -----------------------------------------------
habitats = pd.DataFrame({"habitat": ["marine", "terrestrial"]}, index=["marine", "terrestrial"])
truth = {"SD of A": np.exp(np.array([-3.0, -2.0]) / 2), "SD of B": np.exp(np.array([-2.5, -3.5]) / 2),
         "correlation": np.tanh([0.2, 1.2])}


def fitted(result, centre: str) -> pd.DataFrame:
    """SDs of both outcomes and the correlation per habitat: estimate (or posterior median) and interval."""
    rows = {}
    for outcome in ("A", "B"):
        v = result.predict_variance(habitats.assign(outcome=outcome))[[centre, "ci_lb", "ci_ub"]]
        rows[f"SD of {outcome}"] = np.sqrt(v).set_axis(["estimate", "lower", "upper"], axis=1)
    r = result.predict_correlation(habitats)
    rows["correlation"] = r[[centre, "ci_lb", "ci_ub"]].set_axis(["estimate", "lower", "upper"], axis=1)
    return pd.concat(rows)


table = pd.concat({"REML": fitted(reml, "pred"), "NUTS": fitted(post, "median")}, axis=1)
table[("true", "")] = np.concatenate([truth[k] for k in ("SD of A", "SD of B", "correlation")])
show("Fitted SDs and correlations (REML estimates with 95% CIs; NUTS posterior medians with 95% intervals) "
     "beside the simulation's values:", table)

# 5. figure ----------------------------------------------------------------------------------
axes = bm.coscale_plot(reml, post, x="habitat", newdata=habitats, names=["REML", "NUTS"])
axes[0].get_figure().suptitle("Bivariate meta-analysis: heterogeneity by habitat")
path = figure_path("coscale.png")
axes[0].get_figure().savefig(path, dpi=120, bbox_inches="tight")
print(f"\nFigure saved to {path}")
