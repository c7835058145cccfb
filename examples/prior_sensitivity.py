"""Prior sensitivity of the three-level school model, and a published prior on BCG's tau^2.

1. A grid of half-normal priors on the random-effect SDs (``bm.prior_grid``,
   ``model.sensitivity``): each variance component's posterior under every prior,
   beside REML, as a table and a plot.
2. Power-scaling of the default prior (no refits): the prior and likelihood
   sensitivity of every parameter, with a diagnosis.
3. The BCG trials (log odds ratios) with Turner et al.'s (2015) predictive prior for
   tau^2 (infection outcomes, vaccine against no vaccine), beside REML.

Run inside the venv: ``python examples/prior_sensitivity.py [figure.png]``; add
``--quick`` (or set ``BAYESMETA_QUICK=1``) for short chains.
"""

import matplotlib

matplotlib.use("Agg")

from _example import figure_path, posterior_means, quick, sampling, show  # noqa: E402

import bayesmeta as bm  # noqa: E402

school = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
grid = bm.prior_grid(sd={f"HalfNormal({s:g})": bm.Prior("HalfNormal", sigma=s) for s in (0.05, 0.2, 0.5, 2.0)})
print(f"Sampling the school model under {len(grid)} priors ...")
sens = school.sensitivity(grid, **sampling())
print(sens.summary(["sigma2[district]", "sigma2[district/study]"]))
axes = sens.plot()
axes[0].figure.tight_layout()
axes[0].figure.savefig(figure_path("prior_sensitivity.png"), dpi=120)
print(f"\nFigure saved to {figure_path('prior_sensitivity.png')}")

post = school.sample(**sampling())
show("Power-scaling sensitivity of the default prior (school):",
     post.power_scaling()[["prior", "likelihood", "diagnosis", "mean", "mean_prior_0.8", "mean_prior_1.25"]])

bcg = bm.MetaModel("logor ~ 1", data=bm.datasets.load("bcg"), vi="logorvar")
turner = bm.priors.turner2015("infection / onset of new disease", "pharmacological vs. placebo / control")
print(f"\nTurner et al. (2015) prior on tau^2: {turner}")
post_turner = bcg.sample(priors={"tau2": turner}, **sampling())
show("BCG, REML beside the posterior under Turner's prior:",
     bm.compare(bcg.fit("REML"), post_turner, names=["REML", "Turner"]))
posterior_means("BCG, Turner prior", post_turner)
if quick():
    print("\n(--quick: short chains; run without it for 4 x 1000 draws)")
