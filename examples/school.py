"""Three-level meta-analysis of the school calendar data (Konstantopoulos 2011).

Studies are nested in school districts; the model has a random effect for each
district and for each study within its district (Sera et al. 2019, Table 2).

Run with ``make demo`` (or ``python examples/school.py`` inside the venv).
"""

import bayesmeta as bm

dat = bm.datasets.load("school")
model = bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | district/study")

fit = model.fit(method="REML")
print(fit.summary())

print("\nThe same model by ML, beside the one-level models of the paper's Table 2:\n")
for label, random in [("standard (study)", None), ("district only", "~ 1 | district"),
                      ("study within district", "~ 1 | district/study")]:
    ml = bm.MetaModel("effect ~ 1", data=dat, vi="var", random=random).fit(method="ML")
    variances = ", ".join(f"{v:.3f}" for v in list(ml.sigma2) + list(ml.tau2))
    print(f"  {label:24s} b0 = {ml.coef.iloc[0]:.3f} ({ml.se.iloc[0]:.3f})  variances: {variances:14s} AIC = {ml.aic:.3f}")
