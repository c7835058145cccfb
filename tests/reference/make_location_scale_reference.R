################################################################################
# Location-scale reference fixtures from R's metafor for the bayesmeta tests.
#
# Run from the repository root:
#     Rscript tests/reference/make_location_scale_reference.R
#
# Fits metafor's location-scale models, rma(yi, vi, mods = ~ x, scale = ~ z),
# on bundled data sets (bayesmeta/datasets/data: bangertdrowns2004 = metadat's
# dat.bangertdrowns2004, bcg, konstantopoulos2011) and writes
# tests/reference/fixtures/location_scale.json with, per model: location and
# scale coefficients with SEs, tests and intervals, their covariance matrices,
# the omnibus tests QM and QS, fit statistics, the fitted tau^2 of every row and
# predictions of log(tau^2) at new scale-moderator values; likelihood-ratio
# tests (anova) of nested pairs; and permutation tests (permutest): an exact
# one on a six-study subset (every distinct permutation, deterministic) and a
# random one (1000 permutations) on the full data.
################################################################################

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

out_dir <- file.path("tests", "reference", "fixtures")
data_dir <- file.path("bayesmeta", "datasets", "data")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
cat("metafor version:", as.character(packageVersion("metafor")), "\n")

arr <- function(x) if (is.null(x)) I(numeric(0)) else I(unname(as.numeric(x)))
strarr <- function(x) I(unname(as.character(x)))
mat <- function(m) { m <- as.matrix(m); dimnames(m) <- NULL; m }

# tight convergence of the optimizer (nlminb, metafor's default for rma.ls)
CTRL <- list(optimizer = "nlminb", rel.tol = 1e-10, iter.max = 10000, eval.max = 20000)

bd <- read.csv(file.path(data_dir, "bangertdrowns2004.csv"), stringsAsFactors = FALSE)
bcg <- read.csv(file.path(data_dir, "bcg.csv"), stringsAsFactors = FALSE)
kon <- read.csv(file.path(data_dir, "konstantopoulos2011.csv"), stringsAsFactors = FALSE)

extract <- function(fit, call, newscale = NULL) {
  fs <- fitstats(fit)
  out <- list(
    call = call, method = fit$method, test = fit$test, k = fit$k, p = fit$p, q = fit$q,
    coef_names = strarr(rownames(fit$beta)), coef = arr(fit$beta), se = arr(fit$se),
    zval = arr(fit$zval), pval = arr(fit$pval), ci_lb = arr(fit$ci.lb), ci_ub = arr(fit$ci.ub),
    vcov = mat(fit$vb),
    alpha_names = strarr(rownames(fit$alpha)), alpha = arr(fit$alpha), se_alpha = arr(fit$se.alpha),
    zval_alpha = arr(fit$zval.alpha), pval_alpha = arr(fit$pval.alpha),
    ci_lb_alpha = arr(fit$ci.lb.alpha), ci_ub_alpha = arr(fit$ci.ub.alpha), va = mat(fit$va),
    ddf_alpha = if (is.na(fit$ddf.alpha)) NULL else fit$ddf.alpha,
    QM = fit$QM, QMp = fit$QMp, QMdf = arr(fit$QMdf), QS = fit$QS, QSp = fit$QSp, QSdf = arr(fit$QSdf),
    QE = fit$QE, QEp = fit$QEp,
    loglik = unname(fs["logLik:", 1]), deviance = unname(fs["deviance:", 1]),
    aic = unname(fs["AIC:", 1]), bic = unname(fs["BIC:", 1]), aicc = unname(fs["AICc:", 1]),
    parms = fit$parms, tau2 = arr(fit$tau2), fitted = arr(fitted(fit)$location),
    fitted_scale = arr(fitted(fit)$scale)
  )
  if (!is.null(newscale)) {
    pr <- predict(fit, newscale = newscale)
    out$newscale <- mat(newscale)
    out$pred_log_tau2 <- arr(pr$pred)
    out$pred_se <- arr(pr$se)
    out$pred_ci_lb <- arr(pr$ci.lb)
    out$pred_ci_ub <- arr(pr$ci.ub)
  }
  out
}

models <- list()
fits <- list()
add <- function(name, call, data, newscale = NULL) {
  fit <- eval(parse(text = call), envir = list2env(list(dat = data, CTRL = CTRL), parent = globalenv()))
  fits[[name]] <<- fit
  models[[name]] <<- extract(fit, call, newscale)
  cat(name, ": logLik", round(as.numeric(logLik(fit)), 4), " alpha", round(fit$alpha, 4),
      " se", round(fit$se.alpha, 4), "\n")
}

for (m in c("ML", "REML")) {
  # continuous location and scale moderator (rows with missing length dropped)
  add(paste0("bd_length_", m),
      sprintf("rma(yi, vi, mods = ~ length, scale = ~ length, data = dat, method = '%s', control = CTRL)", m),
      bd, newscale = cbind(c(1, 5, 10, 20)))
  # categorical (4-level) location and scale moderator
  add(paste0("bd_grade_", m),
      sprintf("rma(yi, vi, mods = ~ factor(grade), scale = ~ factor(grade), data = dat, method = '%s', control = CTRL)", m),
      bd, newscale = rbind(c(0, 0, 0), c(1, 0, 0), c(0, 0, 1)))
  # categorical (3-level) scale moderator on the BCG trials; under ML the 'random'
  # coefficient drifts to -infinity (heterogeneity of the randomised trials -> 0)
  add(paste0("bcg_alloc_", m),
      sprintf("rma(logrr, logrrvar, mods = ~ ablat, scale = ~ alloc, data = dat, method = '%s', control = CTRL)", m),
      bcg)
  # an uncentred continuous scale moderator (publication year)
  add(paste0("kon_year_", m),
      sprintf("rma(yi, vi, scale = ~ year, data = dat, method = '%s', control = CTRL)", m),
      kon, newscale = cbind(c(1975, 1990, 2000)))
}
# two location and two scale moderators, t-tests
add("bd_length_meta_REML_t",
    "rma(yi, vi, mods = ~ length + meta, scale = ~ length + meta, data = dat, test = 't', control = CTRL)", bd)
# a large but finite SE (ML; the heterogeneity of the wic = 0 studies is small, not zero)
add("bd_wic_ML",
    "rma(yi, vi, mods = ~ wic, scale = ~ wic, data = dat, method = 'ML', control = CTRL)", bd)
# scale model without intercept (one log-variance per group)
add("bd_meta_noint_REML",
    "rma(yi, vi, mods = ~ meta, scale = ~ 0 + factor(meta), data = dat, control = CTRL)", bd)
# the reduced models of the likelihood-ratio tests
add("bd_length_scale1_REML",
    "rma(yi, vi, mods = ~ length, scale = ~ 1, data = dat, control = CTRL)", bd)
add("bd_null_ML",
    "rma(yi, vi, mods = ~ 1, scale = ~ 1, data = dat, method = 'ML', subset = !is.na(length), control = CTRL)", bd)
add("bd_grade_scale1_REML",
    "rma(yi, vi, mods = ~ factor(grade), scale = ~ 1, data = dat, control = CTRL)", bd)

lrt <- function(full, reduced) {
  a <- anova(fits[[full]], fits[[reduced]])
  list(full = full, reduced = reduced, LRT = a$LRT, pval = a$pval, parms_full = a$parms.f,
       parms_reduced = a$parms.r, df = a$parms.f - a$parms.r)
}
lrts <- list(
  lrt("bd_length_REML", "bd_length_scale1_REML"),
  lrt("bd_length_ML", "bd_null_ML"),
  lrt("bd_grade_REML", "bd_grade_scale1_REML")
)

# permutation tests ------------------------------------------------------------
# exact: six studies, intercept-only location (2^6 sign flips) and a continuous
# scale moderator with six distinct values (6! = 720 permutations), all enumerated
tiny_ids <- c(9, 10, 13, 18, 33, 36)
tiny <- bd[bd$id %in% tiny_ids, ]
stopifnot(nrow(tiny) == 6, length(unique(tiny$length)) == 6)
tiny_fit <- rma(yi, vi, scale = ~ length, data = tiny, control = CTRL)
models[["tiny_length_REML"]] <- extract(tiny_fit, "rma(yi, vi, scale = ~ length, data = tiny)")
pt_exact <- permutest(tiny_fit, iter = 1000, progbar = FALSE, retpermdist = TRUE)
perm_exact <- list(
  model = "tiny_length_REML", ids = arr(tiny_ids), iter = 1000, exact = TRUE,
  n_scale = nrow(pt_exact$zval.alpha.perm), n_location = nrow(pt_exact$zval.perm),
  pval = arr(pt_exact$pval), QMp = pt_exact$QMp,
  pval_alpha = arr(pt_exact$pval.alpha), QSp = pt_exact$QSp,
  failed_scale = sum(is.na(pt_exact$zval.alpha.perm[, 2])),
  zval_alpha_perm = mat(as.matrix(pt_exact$zval.alpha.perm)),
  zval_perm = arr(pt_exact$zval.perm[[1]])
)
cat("exact permutest: pval", pt_exact$pval, " pval.alpha", pt_exact$pval.alpha, "\n")

# random permutations on the full data (p-values are Monte Carlo estimates)
set.seed(20260415)
pt_random <- permutest(fits[["bd_length_REML"]], iter = 1000, progbar = FALSE)
perm_random <- list(model = "bd_length_REML", iter = 1000, exact = FALSE,
                    pval = arr(pt_random$pval), QMp = pt_random$QMp,
                    pval_alpha = arr(pt_random$pval.alpha), QSp = pt_random$QSp)
cat("random permutest: pval", pt_random$pval, " pval.alpha", pt_random$pval.alpha, "\n")

out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  note = paste("Location-scale models rma(yi, vi, mods, scale) of metafor; coefficient order as in R",
               "(factor levels sorted); alpha on the log(tau^2) scale; va is the inverse Hessian of",
               "the (restricted) log-likelihood in alpha with beta profiled out."),
  models = models, lrt = lrts, permutest_exact = perm_exact, permutest_random = perm_random
)
path <- file.path(out_dir, "location_scale.json")
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null"), path)
cat("wrote", path, "\n")
