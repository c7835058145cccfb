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
bcg <- rd("bcg.csv")  # the bundled data (same counts as metadat::dat.bcg)
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

# --- network: smoking cessation (dat.hasselblad1998), exact contrast layout --
# Each study's arms against its baseline (its first treatment in the order
# no_contact, then the others sorted), log odds from arm counts with 1/2 added
# to every arm of a study with a zero cell, the multi-arm covariance (the
# baseline arm's variance shared), basic parameters d_t against no_contact,
# random contrast effects with compound symmetry and rho = 1/2.
h <- rd("hasselblad1998.csv")  # == metadat::dat.hasselblad1998
trts <- c("no_contact", sort(setdiff(unique(h$trt), "no_contact")))
zero <- h$study %in% h$study[h$xi == 0 | h$xi == h$ni]
h$x <- h$xi + 0.5 * zero
h$n <- h$ni + 1.0 * zero
h$y <- log(h$x / (h$n - h$x))
h$v <- 1 / h$x + 1 / (h$n - h$x)
con <- NULL
blocks <- list()
for (s in unique(h$study)) {
  g <- h[h$study == s, ]
  g <- g[order(match(g$trt, trts)), ]
  b <- g[1, ]
  o <- g[-1, ]
  design <- paste(g$trt, collapse = "-")
  con <- rbind(con, data.frame(study = s, design = design, trt = o$trt, base = b$trt, yi = o$y - b$y))
  blocks[[length(blocks) + 1]] <- matrix(b$v, nrow(o), nrow(o)) + diag(o$v, nrow(o))
}
V <- bldiag(blocks)
Xc <- sapply(trts[-1], function(t) (con$trt == t) - (con$base == t))
colnames(Xc) <- paste0("d_", trts[-1])
models$network_exact <- extract(
  fit_str("rma.mv(yi, V, mods = Xc, intercept = FALSE, random = ~ trt | study, struct = 'CS', rho = 0.5, data = con)"),
  yi = arr(con$yi), V_blocks = lapply(blocks, mat))
# design-by-treatment model: a free mean per design and contrast; the global test
# asks whether these means lie in the span of the consistency columns
cell <- interaction(con$design, con$trt, drop = TRUE, lex.order = TRUE)
full <- fit_str("rma.mv(yi, V, mods = ~ 0 + cell, random = ~ trt | study, struct = 'CS', rho = 0.5, data = con)")$fit
Xd <- t(sapply(levels(cell), function(l) Xc[which(cell == l)[1], ]))
A <- t(MASS::Null(Xd))
theta <- coef(full)
stat <- as.numeric(t(A %*% theta) %*% solve(A %*% vcov(full) %*% t(A)) %*% (A %*% theta))
models$network_exact_inconsistency <- list(loglik = as.numeric(logLik(full)), QM = stat, df = nrow(A),
                                           pval = pchisq(stat, nrow(A), lower.tail = FALSE),
                                           tau2 = full$tau2)

# --- multivariate: hyp (SEs and a within-study correlation), p53 (missing) ---
mv_data <- rd
hyp <- mv_data("hyp.csv")
hyp_long <- data.frame(study = rep(hyp$study, each = 2), outcome = rep(c("SBP", "DBP"), nrow(hyp)),
                       y = c(rbind(hyp$sbp, hyp$dbp)), ish = rep(hyp$ish, each = 2))
hyp_long$outcome <- factor(hyp_long$outcome, levels = c("SBP", "DBP"))
hyp_V <- lapply(seq_len(nrow(hyp)), function(i) {
  s <- c(hyp$sbp_se[i], hyp$dbp_se[i])
  outer(s, s) * matrix(c(1, hyp$rho[i], hyp$rho[i], 1), 2)
})
HV <- bldiag(hyp_V)
models$hyp_un <- extract(fit_str("rma.mv(y, HV, mods = ~ 0 + outcome, random = ~ outcome | study, struct = 'UN', data = hyp_long)"))
models$hyp_un_ish <- extract(fit_str("rma.mv(y, HV, mods = ~ 0 + outcome + outcome:ish, random = ~ outcome | study, struct = 'UN', data = hyp_long)"))
p53 <- mv_data("p53.csv")
p53_long <- data.frame(study = rep(p53$study, each = 2), outcome = rep(c("y1", "y2"), nrow(p53)),
                       y = c(rbind(p53$y1, p53$y2)), v = c(rbind(p53$V1, p53$V2)))
p53_long <- p53_long[!is.na(p53_long$y), ]
models$p53_diag <- extract(fit_str("rma.mv(y, v, mods = ~ 0 + outcome, random = ~ outcome | study, struct = 'DIAG', data = p53_long)"))

# --- dose-response: alcohol NL2 (Table 4), pooled relative risks on a grid ---
# Greenland-Longnecker V from dosresmeta (the input fixture GL_FILE); the spline curve's
# log RR at dose d against dose 0 is (ns(d) - ns(0))' b.
suppressPackageStartupMessages(library(splines))
alcohol <- mv_data("alcohol.csv")
sub <- alcohol[!is.na(alcohol$se), ]
gl <- jsonlite::fromJSON(GL_FILE, simplifyVector = TRUE)$S
Vgl <- bldiag(lapply(unique(sub$id), function(s) as.matrix(gl[[s]])))
nl2 <- fit_str('rma.mv(logrr, Vgl, mods = ~ 0 + ns(dose, knots = c(10, 25)), random = ~ 0 + dose | id, struct = "GEN", data = sub, method = "ML")')$fit
grid <- c(0, 5, 12, 20, 30, 45, 60)
basis <- ns(sub$dose, knots = c(10, 25))
centred <- predict(basis, grid) - predict(basis, rep(0, length(grid)))
pr <- predict(nl2, newmods = unname(as.matrix(centred)))
models$alcohol_nl2_curve <- list(dose = arr(grid), logrr = arr(pr$pred), se = arr(pr$se),
                                 RR = arr(exp(pr$pred)), RR_lb = arr(exp(pr$ci.lb)), RR_ub = arr(exp(pr$ci.ub)))

write_group("builders", models)
