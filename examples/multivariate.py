"""Multivariate meta-analysis of periodontal surgery (Berkey et al. 1998).

Five trials report two correlated outcomes, probing depth (PD) and attachment
level (AL), with their within-trial covariance. A bivariate random-effects model
with an unstructured between-trial covariance is fitted by REML and NUTS, and a
meta-regression on publication year (a slope per outcome) by ML.

Run: python examples/multivariate.py [--quick]
"""

import bayesmeta as bm
from _example import posterior_means, sampling, show

berkey = bm.datasets.load("berkey98")
covariance = dict(id="pubyear", vech=["var_PD", "cov_PD_AL", "var_AL"])
model = bm.multivariate(berkey, outcomes=["PD", "AL"], **covariance, struct="UN")
reml = model.fit("REML")
print(reml.summary())

regression = bm.multivariate(berkey, outcomes=["PD", "AL"], **covariance, mods="~ I(pubyear - 1983)").fit("ML")
show("Meta-regression on publication year (ML):", regression.table())

print("\nSampling the bivariate model with NUTS ...")
post = model.sample(**sampling())
show("REML beside NUTS:", bm.compare(reml, post))
posterior_means("bivariate model", post)
