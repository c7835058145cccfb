"""Network meta-analysis of smoking cessation (Hasselblad 1998; Sera et al. 2019, Table 1).

Four interventions (A: no contact, B: self-help, C: individual counselling,
D: group counselling) compared in 24 trials, two of them with three arms.
Log odds ratios against A come from the arm-level counts; trials without arm A
get a reference arm with 0.001 events among 0.01 participants, as in the paper.
The consistency model is fitted by REML and by NUTS; the design-by-treatment
inconsistency model gives the global Wald test (paper: p = 0.646).

Run: python examples/network.py [--quick]
"""

import numpy as np
import pandas as pd

import bayesmeta as bm
from _example import posterior_means, sampling, show

wide = bm.datasets.load("smoking")
arms = pd.DataFrame([{"study": r["study"], "treatment": t, "events": r[f"d{t}"], "total": r[f"n{t}"]}
                     for _, r in wide.iterrows() for t in "ABCD" if r[f"n{t}"] > 0.02])  # observed arms only

network = bm.network(arms, study="study", treatment="treatment", events="events", total="total",
                     augment=(0.001, 0.01))
reml = network.fit("REML")
print(reml.summary())
print("\nPaper, Table 1: log-OR 0.398 (0.330), 0.702 (0.196), 0.866 (0.373); tau2 0.454; I2 86.3%")

inconsistency = bm.network(arms, study="study", treatment="treatment", events="events", total="total",
                           augment=(0.001, 0.01), model="inconsistency")
print("\nDesign-by-treatment inconsistency:", inconsistency.inconsistency_test(inconsistency.fit("REML")),
      "(paper: p = 0.646)")

print("\nSampling the consistency model with NUTS ...")
post = network.sample(**sampling())
show("REML beside NUTS:", bm.compare(reml, post))
posterior_means("consistency model", post)
odds_ratios = pd.concat({"REML": network.contrasts(reml, transform=np.exp),
                         "NUTS": network.contrasts(post, transform=np.exp)}, axis=1)
show("Odds ratios between all pairs of treatments:", odds_ratios, digits=3)
