"""Longitudinal meta-analysis of survival in glioma trials (Sera et al. 2019, Table 5).

Log odds ratios of survival at 6, 12, 18 and 24 months from 17 trials. Models
1-6 take time as a factor with different between-study structures, with
independent (1-3) or autocorrelated (4-6, phi = 0.61) sampling errors; model 7
is a line in time with random intercepts and slopes (eq. 11). The AIC table is
compared with the paper's, and model 4 is also sampled with NUTS.

Run: python examples/longitudinal.py [--quick]
"""

import pandas as pd

import bayesmeta as bm
from _example import posterior_means, sampling, show

gliomas = bm.datasets.load("gliomas").dropna(subset=["logOR"])
columns = dict(yi="logOR", vi="logORvar", id="study", time="time")
specs = {  # name: (builder arguments, method, the paper's AIC)
    "1: DIAG": (dict(struct="DIAG"), "REML", 121.6),
    "3: HAR": (dict(struct="HAR"), "REML", 120.9),
    "4: DIAG, AR errors": (dict(struct="DIAG", phi=0.61), "REML", 107.5),
    "5: HAR, AR errors": (dict(struct="HAR", phi=0.61), "REML", 107.7),
    "6: UN, AR errors": (dict(struct="UN", phi=0.61), "REML", 117.3),
    "4: DIAG, AR errors (ML)": (dict(struct="DIAG", phi=0.61), "ML", 107.5),
    "7: line in time (ML)": (dict(time_as="continuous", struct="DIAG", phi=0.61, center=15), "ML", 101.4),
}
rows, models, fits = [], {}, {}
for name, (kwargs, method, paper_aic) in specs.items():
    models[name] = bm.longitudinal(gliomas, **columns, **kwargs)
    fits[name] = models[name].fit(method)
    rows.append({"model": name, "method": method, "logLik": fits[name].loglik, "AIC": fits[name].aic,
                 "AIC (paper)": paper_aic})
# model 2: one random intercept per study (the same effect at every time point)
model2 = bm.MetaModel("logOR ~ 0 + C(time)", data=gliomas, vi="logORvar", random="~ 1 | study").fit("REML")
rows.insert(1, {"model": "2: random intercept", "method": "REML", "logLik": model2.loglik, "AIC": model2.aic,
                "AIC (paper)": 117.0})
show("Table 5:", pd.DataFrame(rows).set_index("model"), digits=1)
print("Model 2: metafor gives the same logLik (AIC 118.0); the paper's 117.0 matches no variant of the model.")

print("\nSampling model 4 with NUTS ...")
name = "4: DIAG, AR errors"
post = models[name].sample(**sampling())
show("REML beside NUTS (model 4):", bm.compare(fits[name], post))
posterior_means("model 4", post)
