"""Three-level meta-analysis of the school calendar data (Konstantopoulos 2011).

Studies are nested in school districts; the model has a random effect for each
district and for each study within its district (Sera et al. 2019, Table 2).
The model is fitted by REML and by NUTS (weakly informative default priors),
and the two are compared side by side.

Run with ``make demo`` (or ``python examples/school.py`` inside the venv).
Set ``BAYESMETA_QUICK=1`` for short chains.
"""

import os

import pandas as pd

import bayesmeta as bm

quick = os.environ.get("BAYESMETA_QUICK") == "1"

dat = bm.datasets.load("school")
model = bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | district/study")

reml = model.fit(method="REML")
print(reml.summary())

print("\nSampling the posterior with NUTS ...")
post = model.sample(draws=200 if quick else 1000, tune=200 if quick else 1000, chains=4, random_seed=1,
                    progressbar=not quick)
print()
print(post.summary())

print("\nREML beside NUTS:\n")
with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 160, "display.max_columns", 20):
    print(bm.compare(reml, post))

print("\nMean effect and prediction interval for a new study in a new district (posterior):\n")
with pd.option_context("display.float_format", "{:.4f}".format):
    print(post.predict(random_seed=1))
