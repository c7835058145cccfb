################################################################################
# Reference fixtures for the model builders (bm.multilevel, bm.arm_based, ...)
# from R's metafor.
#
# Run from the repository root:
#     Rscript tests/reference/make_builders_reference.R
#
# Writes tests/reference/fixtures/builders.json.  The multivariate, network,
# longitudinal and dose-response builders are tested against the fixtures of
# make_reference.R (the paper's models), which these builders must reproduce.
################################################################################

source(file.path("tests", "reference", "metafor_helpers.R"))

models <- list()

# --- multilevel: four levels (country / lab / study / estimate) --------------
# A synthetic hierarchy (fixed seed, stored with the fixture): 4 countries,
# 2-3 labs each, 1-3 studies per lab, 1-3 estimates per study, one moderator.
set.seed(20261123)
rows <- list()
for (country in 1:4) for (lab in seq_len(sample(2:3, 1))) for (study in seq_len(sample(1:3, 1))) {
  m <- sample(1:3, 1)
  rows[[length(rows) + 1]] <- data.frame(country = paste0("C", country), lab = paste0("L", lab),
                                         study = paste0("S", study), x = round(runif(m, 0, 1), 3),
                                         vi = round(runif(m, 0.01, 0.05), 4))
}
ml <- do.call(rbind, rows)
ml$yi <- round(0.3 + 0.2 * ml$x + rnorm(nrow(ml), sd = sqrt(ml$vi + 0.04)) +
               rep(rnorm(4, sd = 0.2), table(ml$country))[seq_len(nrow(ml))], 4)
models$multilevel_depth3 <- extract(
  fit_str("rma.mv(yi, vi, mods = ~ x, random = ~ 1 | country/lab/study, data = ml)"),
  data = list(country = strarr(ml$country), lab = strarr(ml$lab), study = strarr(ml$study),
              x = arr(ml$x), vi = arr(ml$vi), yi = arr(ml$yi)))

# --- arm-based: BCG, log risk per arm (van Houwelingen et al. 1993) ----------
# long format: per trial the vaccinated arm, then the control arm
bcg <- dat.bcg
arms <- data.frame(trial = rep(bcg$trial, each = 2),
                   arm = rep(c("vaccine", "control"), nrow(bcg)),
                   events = c(rbind(bcg$tpos, bcg$cpos)),
                   total = c(rbind(bcg$tpos + bcg$tneg, bcg$cpos + bcg$cneg)))
arms <- escalc(measure = "PLN", xi = events, ni = total, data = arms)
arms$arm <- factor(arms$arm, levels = c("control", "vaccine"))
arms$trt <- as.numeric(arms$arm == "vaccine")
models$arm_un <- extract(
  fit_str("rma.mv(yi, vi, mods = ~ 0 + arm, random = ~ arm | trial, struct = 'UN', data = arms)"),
  yi = arr(arms$yi), vi = arr(arms$vi))
models$arm_un_contrast <- extract(
  fit_str("rma.mv(yi, vi, mods = ~ trt, random = ~ arm | trial, struct = 'UN', data = arms)"))
# fixed study effects and a random treatment effect: the contrast-based model
models$arm_fixed_study <- extract(
  fit_str("rma.mv(yi, vi, mods = ~ 0 + factor(trial) + trt, random = ~ 0 + trt | trial, struct = 'GEN', data = arms)"))
models$contrast_rr <- extract(
  fit_str("rma(measure = 'RR', ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)"))

write_group("builders", models)
