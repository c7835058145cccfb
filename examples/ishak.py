"""Longitudinal meta-analysis of deep-brain stimulation (Ishak et al. 2007).

46 studies report the change in motor scores at up to four time points. The
within-study errors are autocorrelated (phi = 0.97); between studies, the true
effects follow a heterogeneous AR(1) structure over time (HAR). Fitted by REML
(as metafor's rma.mv) and NUTS.

Run: python examples/ishak.py [--quick]
"""

import pandas as pd

import bayesmeta as bm
from _example import posterior_means, sampling, show

wide = bm.datasets.load("ishak2007")
long = pd.concat([pd.DataFrame({"study": wide["study"], "time": t, "yi": wide[f"y{t}i"], "vi": wide[f"v{t}i"]})
                  for t in range(1, 5)]).dropna(subset=["yi"]).reset_index(drop=True)
model = bm.longitudinal(long, yi="yi", vi="vi", id="study", time="time", phi=0.97, struct="HAR")
reml = model.fit("REML")
print(reml.summary())

print("\nSampling with NUTS ...")
post = model.sample(**sampling())
show("REML beside NUTS:", bm.compare(reml, post))
posterior_means("HAR model", post)
