"""Location-scale meta-analysis of writing-to-learn interventions (Bangert-Drowns et al. 2004).

The shape of Viechtbauer's location-scale analysis (shared/seeds slides), on
the bundled data set ``bangertdrowns2004`` (metadat's dat.bangertdrowns2004):

1. the random-effects model and a meta-regression on treatment length (weeks);
2. a location-scale model: length moderates the mean effect *and* the
   heterogeneity, ``log tau_i^2 = alpha_0 + alpha_1 length_i``, with the three
   tests of alpha_1 (Wald, likelihood ratio, permutation);
3. a categorical moderator (grade level) added to both parts, fitted by REML and
   by NUTS, side by side;
4. a scale coefficient that drifts to -infinity under ML (BCG trials, scale
   ~ allocation: the randomised trials show no heterogeneity), flagged, and the
   Bayesian fit of the same model, which stays finite;
5. a figure of the fitted tau_i against treatment length with 95% intervals
   (REML and NUTS), saved to the path given on the command line
   (default ``location_scale.png`` in the current directory).

Run: python examples/location_scale.py [--quick] [figure.png]
"""

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from _example import figure_path, posterior_means, quick, sampling, show

import bayesmeta as bm

dat = bm.datasets.load("bangertdrowns2004").dropna(subset=["length"])  # 46 studies report the length

# 1. random-effects model and meta-regression ------------------------------------------
standard = bm.MetaModel("yi ~ 1", data=dat, vi="vi").fit()
metareg = bm.MetaModel("yi ~ length", data=dat, vi="vi").fit()
print(f"Random-effects model: mu = {standard.coef.iloc[0]:.4f}, tau^2 = {standard.tau2.iloc[0]:.4f}")
print(f"Meta-regression on length: slope = {metareg.coef['length']:.4f} (SE {metareg.se['length']:.4f}), "
      f"residual tau^2 = {metareg.tau2.iloc[0]:.4f}")

# 2. location-scale model with length in both parts --------------------------------------
model = bm.location_scale("yi ~ length", dat, vi="vi", scale="~ length")
reml = model.fit("REML")
print()
print(reml.summary())

wald = reml.wald_test(["length"], part="scale")
lrt = bm.lrt(reml, bm.location_scale("yi ~ length", dat, vi="vi", scale="~ 1").fit("REML"))
perm = reml.permutation_test(n=200 if quick() else 1000, random_seed=1, part="scale", progressbar=not quick())
show("Tests of alpha[length] (H0: the heterogeneity does not depend on length):",
     pd.DataFrame({"statistic": [wald.statistic, lrt.statistic, np.nan],
                   "p-value": [wald.pvalue, lrt.pvalue, perm.pval_alpha["length"]]},
                  index=["Wald (QS)", "likelihood ratio", f"permutation ({perm.n_scale})"]))
show("Likelihood-ratio test against the model with one tau^2:", lrt.table)

print("\nSampling the location-scale model with NUTS ...")
post = model.sample(**sampling())
show("REML beside NUTS (length):", bm.compare(reml, post))
posterior_means("length in both parts", post)

# 3. a continuous and a categorical moderator ---------------------------------------------
both = bm.location_scale("yi ~ length + C(grade)", dat, vi="vi", scale="~ length + C(grade)")
reml_both = both.fit("REML")
print("\nSampling the model with length and grade level with NUTS ...")
post_both = both.sample(**sampling())
show("Length and grade level (1 elementary, 2 middle, 3 high school, 4 college), REML beside NUTS:",
     bm.compare(reml_both, post_both))
posterior_means("length and grade level", post_both)

# 4. a drifting scale coefficient ----------------------------------------------------------
bcg = bm.MetaModel("logrr ~ ablat", data=bm.datasets.load("bcg"), vi="logrrvar", scale="~ alloc")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", bm.DriftWarning)
    ml_bcg = bcg.fit("ML")
print(f"\nBCG trials, ML with scale ~ allocation: {len(caught)} DriftWarning; drifting: {ml_bcg.drifting}")
print(f"Note: {ml_bcg.estimate.drift[0]}")
post_bcg = bcg.sample(**sampling())
show(f"The same model with NUTS ({post_bcg.diagnostics['divergences']} divergences): ML beside NUTS",
     bm.compare(ml_bcg, post_bcg))

# 5. figure: tau_i against length (bm.variance_plot) -----------------------------------------
ax = bm.variance_plot(reml, post, x="length", data=dat)
ax.set_xlabel("treatment length (weeks)")
ax.set_title("Writing-to-learn: heterogeneity against treatment length")
path = figure_path("location_scale.png")
ax.get_figure().savefig(path, dpi=120, bbox_inches="tight")
print(f"\nFigure saved to {path}")
