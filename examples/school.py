"""Three-level meta-analysis of the school calendar data (Konstantopoulos 2011).

Studies are nested in school districts; the model has a random effect for each
district and for each study within its district (Sera et al. 2019, Table 2).
The model is fitted by REML and by NUTS (weakly informative default priors),
and the two are compared side by side: every row with its interval on both sides
(profile-likelihood intervals for the REML variance components).

Run with ``make demo`` (or ``python examples/school.py`` inside the venv); add
``--quick`` (or set ``BAYESMETA_QUICK=1``) for short chains.
"""

from _example import posterior_means, quick, sampling, show

import bayesmeta as bm

dat = bm.datasets.load("school")
model = bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | district/study")

reml = model.fit(method="REML")
print(reml.summary())
show("Variance components with profile-likelihood intervals (REML):", reml.confint())

print("\nSampling the posterior with NUTS ...")
post = model.sample(**sampling())
print()
print(post.summary())

show("REML beside NUTS:", bm.compare(reml, post))
posterior_means("three-level model", post)
show("Mean effect and prediction interval for a new study in a new district, REML:", reml.predict())
show("... and from the posterior:", post.predict(random_seed=1))
if quick():
    print("\n(--quick: short chains; run without it for 4 x 1000 draws)")
