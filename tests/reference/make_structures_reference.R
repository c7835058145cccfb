################################################################################
# Reference fixtures from R's metafor for random-effects structures whose
# parameters all lie strictly inside the parameter space:
#   * a random intercept and slope (metafor struct "GEN"): both SDs and their
#     correlation free and off the boundary, REML and ML;
#   * two structured terms, random = list(~ inner | outer, ~ inner | outer2),
#     so that metafor reports tau2/rho and gamma2/phi, all off the boundary,
#     REML and ML.
#
# Run from the repository root:
#     Rscript tests/reference/make_structures_reference.R
#
# Reads only the bundled data (bayesmeta/datasets/data: ishak2007.csv and
# bcg.csv) and writes tests/reference/fixtures/structures.json.
# Every rma.mv fit is cross-checked with a second optimizer (convergence_check).
#
# Bundled data whose fits put a correlation on the boundary (+-1) were passed over:
# intercept + slope on thrombolytic, school, gliomas, alcohol and ishak with its
# sampling variances only; the design-by-treatment term of the smoking network
# (gamma2 = 0).  berkey1998 with a slope on the AL indicator is inside (REML
# rho = 0.012) but its likelihood is so flat in rho that nlminb stops at
# 0.011775 (rel.tol 1e-10, tighter tolerances fail), while metafor's own UN fit
# of the same model (berkey fixture) implies 0.011781: not a 1e-4 reference.
################################################################################

source(file.path("tests", "reference", "metafor_helpers.R"))

show <- function(name, m) {
  cat(sprintf("  %-22s coef=%s  tau2=%s rho=%s gamma2=%s phi=%s  ll=%.4f parms=%d\n",
              name, paste(signif(m$coef, 5), collapse = ","),
              paste(signif(m$tau2, 4), collapse = ","), paste(signif(m$rho, 4), collapse = ","),
              paste(signif(m$gamma2, 4), collapse = ","), paste(signif(m$phi, 4), collapse = ","),
              m$loglik, as.integer(m$parms)))
}

# every variance strictly positive and every correlation strictly inside (-1, 1)
check_interior <- function(m) {
  v <- c(m$tau2, m$gamma2)
  r <- c(m$rho, m$phi)
  if (any(v < 1e-3 * max(v)) || any(abs(r) > 0.99))
    stop("fit not inside the parameter space: ", m$call)
}

models <- list()

################################################################################
# ISHAK (dat.ishak2007): random intercept and slope over time (1..4) per study,
# struct GEN, with the AR(1) sampling covariance of the ishak fixture
# (make_reference.R): cov = 0.97^|t_i - t_j| sqrt(v_i v_j) within study.
# Long rows ordered by study (byte order: method = "radix") and time.
################################################################################
cat("ishak slopes\n")
dat_i <- rd("ishak2007.csv")  # == metadat::dat.ishak2007
dat_i <- reshape(dat_i, direction = "long", idvar = "study", v.names = c("yi", "vi"),
                 varying = list(c(2, 4, 6, 8), c(3, 5, 7, 9)))
dat_i <- dat_i[order(dat_i$study, dat_i$time, method = "radix"), ]
dat_i <- dat_i[!is.na(dat_i$yi), ]
rownames(dat_i) <- NULL
Vi <- vcalc(vi, cluster = study, time1 = time, phi = 0.97, data = dat_i)
for (meth in c("REML", "ML")) {
  r <- fit_str(sprintf('rma.mv(yi, Vi, mods = ~ time, random = ~ time | study, struct = "GEN", data = dat_i, method = "%s")', meth))
  models[[paste0("ishak_slope_", meth)]] <- extract(r, NULL,
    c("Random intercept and slope on time (1..4) per study; tau2 = (intercept, slope) variances, rho their correlation.",
      "Long data: reshape of dat.ishak2007, ordered by study (byte order) and time, missing dropped (long_data)."),
    long_data = list(study = strarr(dat_i$study), time = arr(dat_i$time), yi = arr(dat_i$yi), vi = arr(dat_i$vi)))
}

################################################################################
# BCG (dat.bcg) arm-level log odds: two structured terms.
# Rows per trial: control arm, then vaccine arm; yi = log(x / (n - x)),
# vi = 1/x + 1/(n - x) (escalc "PLO"; no zero cells).  Trials are grouped in
# three absolute-latitude bands, (0, 30], (30, 40], (40, 90] degrees (5, 2, 6
# trials): the first term gives each trial correlated arm effects, the second
# each band.  A test model with an interior optimum, not a substantive analysis.
################################################################################
cat("bcg two terms\n")
bcg <- rd("bcg.csv")  # == metadat::dat.bcg
arms <- data.frame(trial = rep(bcg$trial, each = 2),
                   arm = rep(c("control", "vaccine"), nrow(bcg)),
                   events = c(rbind(bcg$cpos, bcg$tpos)),
                   total = c(rbind(bcg$cpos + bcg$cneg, bcg$tpos + bcg$tneg)),
                   ablat = rep(bcg$ablat, each = 2))
arms <- escalc(measure = "PLO", xi = events, ni = total, data = arms)
arms$band <- as.character(cut(arms$ablat, c(0, 30, 40, 90), labels = c("low", "mid", "high")))
for (st in list(c("CS", "CS"), c("HCS", "CS"))) for (meth in c("REML", "ML")) {
  r <- fit_str(sprintf('rma.mv(yi, vi, mods = ~ arm, random = list(~ arm | trial, ~ arm | band), struct = c("%s", "%s"), data = arms, method = "%s")',
                       st[1], st[2], meth))
  fit <- r$fit
  models[[paste0("bcg_", tolower(st[1]), "_", tolower(st[2]), "_", meth)]] <- extract(r, NULL,
    c("tau2/rho: the ~ arm | trial term (levels g_levels_f); gamma2/phi: the ~ arm | band term (levels h_levels_f).",
      "band: absolute latitude in (0, 30] low, (30, 40] mid, (40, 90] high."),
    h_names = strarr(fit$h.names),
    h_levels_f = lapply(fit$h.levels.f, strarr),
    data = list(trial = arr(arms$trial), arm = strarr(arms$arm), band = strarr(arms$band),
                yi = arr(arms$yi), vi = arr(arms$vi)))
}

for (nm in names(models)) {
  show(nm, models[[nm]])
  check_interior(models[[nm]])
}
write_group("structures", models, list(data_files = strarr(c("ishak2007.csv", "bcg.csv"))))
