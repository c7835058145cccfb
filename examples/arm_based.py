"""Arm-based meta-analysis of the BCG vaccine trials (van Houwelingen et al. 1993).

Each of the 13 trials contributes the log risk of tuberculosis in its vaccinated
and its control arm. A bivariate random effect per trial (unstructured) links
the two arms; the log risk ratio is the difference of the arm means
(-0.71, as the contrast-based model) and the correlation between the arms' true
log risks is 0.94. With fixed trial effects and a random treatment effect the
model is exactly the contrast-based random-effects model.

Run: python examples/arm_based.py [--quick]
"""

import numpy as np
import pandas as pd

import bayesmeta as bm
from _example import posterior_means, sampling, show

bcg = bm.datasets.load("bcg")
arms = pd.concat([
    pd.DataFrame({"trial": bcg["trial"], "arm": "vaccine", "events": bcg["tpos"], "total": bcg["tpos"] + bcg["tneg"]}),
    pd.DataFrame({"trial": bcg["trial"], "arm": "control", "events": bcg["cpos"], "total": bcg["cpos"] + bcg["cneg"]}),
], ignore_index=True)

model = bm.arm_based(arms, study="trial", arm="arm", events="events", total="total", measure="PLN")
reml = model.fit("REML")
print(reml.summary())
show("Log risk ratio (REML):", model.contrasts(reml))
print(f"Between-arm correlation of the true log risks: {reml.rho.iloc[0]:.2f}")

fixed = bm.arm_based(arms, study="trial", arm="arm", events="events", total="total", study_effects="fixed")
contrast_based = bm.MetaModel("yi ~ 1", data=bm.escalc("RR", bcg, ai="tpos", bi="tneg", ci="cpos", di="cneg"),
                              vi="vi").fit("REML")
show("Fixed trial effects = the contrast-based model:",
     pd.DataFrame({"arm-based, fixed trials": fixed.contrasts(fixed.fit("REML")).iloc[0],
                   "contrast-based rma": [contrast_based.coef.iloc[0], contrast_based.se.iloc[0],
                                          *contrast_based.ci.iloc[0]]}))

print("\nSampling the arm-based model with NUTS ...")
post = model.sample(**sampling())
show("REML beside NUTS:", bm.compare(reml, post))
posterior_means("arm-based model", post)
show("Risk ratio, vaccine vs control:", pd.concat({"REML": model.contrasts(reml, transform=np.exp),
                                                  "NUTS": model.contrasts(post, transform=np.exp)}, axis=1), 3)
