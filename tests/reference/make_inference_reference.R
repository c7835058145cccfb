################################################################################
# Reference numbers for the frequentist "inference toolkit" (confidence
# intervals, predictions, BLUPs, influence, small-sample and cluster-robust
# tests, likelihood-ratio tests, escalc measures) from R's metafor and
# clubSandwich.
#
# Run from the repository root (reads only bayesmeta/datasets/data/*.csv):
#     Rscript tests/reference/make_inference_reference.R
# Writes tests/reference/fixtures/inference.json.
# Needs: metafor (3.8-1), clubSandwich (0.5.8), jsonlite, and minqa (bobyqa)
# and dfoptim (hjk), both pulled in by Debian's r-cran-metafor.  Runs in about
# a minute; the output is byte-identical between runs (the only random numbers,
# drawn by the hjk cross-check refits, come after set.seed(1)).
#
# Cases (JSON key: what it reproduces; every entry stores its exact R 'call'):
#
# datasets     the data as used: bcg (escalc RR), berkey (+ V), ishak_long
#              (wide -> long), konstantopoulos (derived 'period'), bangertdrowns
# A_bcg        BCG trials, dat <- escalc("RR", ai = tpos, bi = tneg, ci = cpos,
#              di = cneg, data = bcg); rma(yi, vi, data = dat) and
#              mods = ~ ablat
#   fits         rma(): REML, ML, with/without ablat, test = "knha", and two
#                subsets whose Q-profile CI touches tau^2 = 0
#   confint      confint.rma.uni (Q-profile): tau^2, tau, I^2(%), H^2 at level
#                0.95 / 0.90, REML / ML, edge cases; fixed = TRUE under knha
#   predict      predict.rma: pred, se, ci.lb/ub, pi.lb/ub; transf = exp;
#                newmods = c(10, 30, 50); under knha
#   blup_ranef   blup.rma.uni and ranef.rma.uni (pred, se, pi.lb, pi.ub)
#   tau2_methods rma(method = DL, HE, HS, SJ, EB, PM, ML, REML), without and
#                with ablat: tau2, se_tau2, coef, se, I2, H2, QE (+ all else)
#   influence    influence.rma.uni: rstudent, dffits, cook.d, cov.r, tau2.del,
#                QE.del, hat, weight, dfbs
#   leave1out    leave1out.rma.uni (model without moderators)
#   regtest      regtest(fit_reml) with its defaults (model = "rma",
#                predictor = "sei"): z, p, limit estimate and CI, internal fit
#   trimfill     trimfill(fit_reml) (estimator L0): k0, side, filled yi/vi, fit
#   robust       robust.rma.uni: CR1 (adjust = TRUE), CR0 (adjust = FALSE),
#                clubSandwich = TRUE (CR2); cluster = trial (one row each)
#   clubSandwich vcovCR CR2, coef_test CR2 (Satterthwaite), conf_int,
#                Wald_test HTZ of ablat
# B_school     rma.mv(effect, var, random = ~ 1 | district/study, data = school)
#   fits         REML, ML and the reduced models sigma2 = c(0, NA) / c(NA, 0)
#   confint      confint.rma.mv profile-likelihood CIs of sigma2.1, sigma2.2
#   predict      predict.rma.mv (new study in a new district)
#   ranef        ranef.rma.mv for 'district' and 'district/study';
#                fitted_plus_ranef: per row fitted + both BLUPs (computed here)
#   I2_multilevel  metafor FAQ multilevel I^2 (total and per component)
#   cooks_distance cooks.distance.rma.mv, per district and per row
#   robust / clubSandwich  CR2 (and metafor's CR1), district clusters
#   profile      profile.rma.mv(sigma2 = 1 / 2, steps = 20): grid, logLik,
#                beta and its CI at each grid point
#   lrt          anova(full, reduced) for each component, REML and ML
# C_multivariate
#   Berkey: rma.mv(yi, V_berkey, mods = ~ outcome + outcome:I(year - 1983) - 1,
#   random = ~ outcome | trial, struct = "UN", data = berkey): confint of
#   tau^2 (AL, PD) and rho; predict with tau2.levels in 1983 and 1990; ranef
#   and fitted + ranef; robust CR2, coef_test, Wald_test HTZ (slopes, all);
#   lrt: structures UN, CS, HCS, DIAG, ID with mods = ~ outcome - 1 (REML):
#   UN vs CS, UN vs DIAG, HCS vs CS, CS vs ID, DIAG vs ID
#   ishak: rma.mv(yi, V_ishak, mods = ~ factor(time) - 1, random = ~ time |
#   study, struct = "HAR" / "AR"); anova(HAR, AR)
# D_categorical  konstantopoulos2011 with a 3-level factor 'period' (from
#   year): rma.mv(yi, vi, mods = ~ period (and ~ period - 1), random = ~ 1 |
#   district/school); clubSandwich vcovCR / coef_test / conf_int CR2 and
#   Wald_test HTZ (contrasts; all zero; all equal); robust CR2 and CR1;
#   multilevel I^2
# E_location_scale  rma(yi, vi, mods = ~ length, scale = ~ length, data =
#   bd_len), REML and ML: alpha table and confint.rma.ls for alpha 1 and 2
# F_escalc     escalc PFT, PAS, AS, SMCR, SMCC, IRLN, IRD, PETO on inline data
#
# CONVENTIONS-BEGIN (copied into the JSON as meta.conventions)
# - Accuracy: rma.uni fits converge to ~1e-14; confint() bounds are found by
#   uniroot with tol 1e-12 (rma.uni, rma.ls) / 1e-10 (rma.mv).  metafor's
#   default confint tol is .Machine$double.eps^0.25 = 1.2e-4: on the BCG REML
#   model the default-tol bounds differ by up to 2.3e-5 in tau^2 (2.9e-3 in
#   I^2(%); stored as A_bcg.confint_default_tol_max_abs_diff).
#   rma.mv variance components are accurate to about 1e-7 relative (see each
#   fit's convergence_check against a second optimizer; the flat likelihoods
#   of Berkey and Ishak limit this), coefficients to about 1e-9.
# - I^2 and H^2 of rma.uni use the 'typical' within-study variance
#   vt = (k - p) / tr(P), P = W - W X (X'W X)^-1 X'W with W = diag(1/vi)
#   (moderators included): I2 = 100 tau2 / (tau2 + vt), H2 = tau2 / vt + 1
#   (stored as 'vt').  The multilevel I^2 of rma.mv (metafor FAQ) uses the
#   same vt: I2_j = 100 sigma2_j / (sum(sigma2) + vt).
# - confint.rma.uni (Q-profile): bounds solve Q(tau2) = qchisq(0.975 / 0.025,
#   k - p), Q with weights 1/(vi + tau2) and the model's X; searched in
#   [0, max(100, 10 tau2)].  The CI does not depend on the estimator (REML and
#   ML give identical bounds).  tau bounds = sqrt, I^2/H^2 bounds = the
#   transforms above with vt.  Edge: if Q(0) < upper quantile, ci.lb = 0 and
#   lb_sign = "" (subset 1:3); if Q(0) < lower quantile the CI is the null set:
#   ci.lb = ci.ub = 0, lb_sign = ub_sign = "<", ci_null = true (subset
#   c(2, 3, 4, 10), Q = 0.192 < qchisq(0.025, 3) = 0.216).
# - confint.rma.mv / confint.rma.ls (profile likelihood): bounds solve
#   2 (ll_max - ll_profile) = qchisq(level, 1) with the other parameters
#   re-optimised, using the fit's likelihood (restricted under REML).  Search
#   interval: sigma2/tau2 [0, max(10, 100 vc)], rho [-1, 1] (UN/CS/HCS),
#   alpha vc +- 10 |vc|.  A bound that reaches the end of the search interval
#   is returned as that value with an empty sign when the end is the parameter
#   space edge: Berkey rho CI upper bound = 1 exactly (lb_sign/ub_sign "").
# - The profile likelihood of the location-scale model is bimodal in the scale
#   coefficients: with nlminb the refits for alpha1 >= -2.1 land on a local
#   optimum and confint(fit_ls_reml, alpha = 1) reports ci.ub = -2.1687 (a
#   jump, not a root); the global profile (bobyqa, multi-start checked) gives
#   -1.9956.  A Python profile CI must maximise globally over the free
#   parameters.
# - profile.rma.mv: default xlim = c(max(0, vc/4), max(0.1, 4 vc)) for
#   variance components, grid = seq(xlim[1], xlim[2], length.out = steps);
#   'll' is the logLik of the refit with the component fixed (restricted under
#   REML, same constants as logLik(fit)); beta/ci at each grid point.
# - predict: PI = pred +- crit sqrt(se^2 + tau2) (rma.uni); crit = qnorm
#   under test "z", qt(df = k - p) under "knha" (both CI and PI).  With
#   transf, se is NA (null) and pred/bounds are transformed.  rma.mv: PI
#   variance se^2 + sum(sigma2) (new study in a new district); with a
#   '~ inner | outer' term the tau2 of tau2.levels is added.  metafor 3.8 has
#   no option for a new study in an existing district (B_school.predict).
# - blup.rma.uni / ranef: pi = pred +- qnorm(0.975) se.  rma.mv has no blup();
#   fitted_plus_ranef sums fitted() and the ranef() BLUPs per row (here).
#   ranef rownames: 'district' levels as "11", nested as "11/1"; the
#   '~ outcome | trial' BLUPs as "AL | 1" (inner | outer, inner levels sorted).
# - tau2 estimators: EB and PM solve the same equation (generalised Q = k - p)
#   and agree to 1e-15 here; PM uses uniroot (control tol).  SJ starts from
#   tau2_0 = sum((yi - mean(yi))^2) / k (unweighted, even with moderators) and
#   takes one step tau2 = tau2_0 RSS / (k - p).  se_tau2: ML sqrt(2/sum(w^2)),
#   REML sqrt(2/sum(P*P)), EB/PM sqrt(2 k^2 / (k - p) / sum(w)^2), DL/HE/HS/SJ
#   moment formulas.
# - influence.rma.uni: 'weight' is in percent (100 w_i / sum w), 'hat' is the
#   hat value (not percent); dfbs has one column per coefficient.
# - regtest defaults: model "rma" (same method as the fit), predictor "sei"
#   (sqrt(vi)); zval/pval are for the sei slope; the limit estimate is the
#   intercept (as sei -> 0) with its z-based CI; dfs is NA (null) under z.
# - trimfill: estimator L0, side chosen from the sign of the Egger slope
#   (here "right", k0 = 1); the filled model is refitted with the same method;
#   p_k0 is NA (null) for L0.
# - robust() without clubSandwich: CR0 meat sum_c X_c'W e_c e_c'W X_c with the
#   model's weights; adjust = TRUE (CR1) multiplies by n/(n - p) (n =
#   clusters); t tests with df = n - p, QM = Wald/m ~ F(m, n - p).
# - clubSandwich (metafor's robust(clubSandwich = TRUE) and direct calls): CR2
#   with target = the model's marginal covariance (rma.uni: diag(vi + tau2);
#   rma.mv: fit$M = V + random-effects covariance) and inverse_var = TRUE (no
#   custom weights); coef_test/conf_int use Satterthwaite df; metafor's
#   QM/QMdf/QMp are Wald_test HTZ of the non-intercept coefficients (all
#   coefficients if there is no intercept).  Berkey (4 coefficients, 5 trials):
#   HTZ df_denom = -0.549, clubSandwich returns Fstat = 0, p = NA (null); metafor
#   reports QM = 0, QMp = NA.
# - With 2 outcomes HCS and UN are the same model (3 parameters): equal
#   logLik, and LRT HCS vs CS = UN vs CS.  rma.mv 'parms' counts only free
#   (not fixed) variance components.
# - Deviance: under ML it is -2 (ll - ll_saturated) (BCG ML: 37.116 vs
#   -2 ll = 25.330); under REML it is -2 ll.  QMdf is [m, null] under z tests.
# - LRT p-values are naive chi^2(df) (no boundary mixture).
# - escalc defaults: vtype "LS", add = 1/2, to = "only0", drop00 = FALSE.  The
#   1/2 is added to all cells of a row with a zero for IRLN (xi), IRD (x1i and
#   x2i) and PETO (ai..di): PETO row 1 (0/25 vs 4/25) gives -1.736, not the
#   uncorrected -2.130.  PFT, PAS and AS are not corrected.  'AS' is the
#   two-group arcsine risk difference (2x2 table); single proportions use
#   'PAS'.  SMCR: (m1i - m2i) / sd1i times c(ni - 1), sd2i unused; SMCC:
#   standardised by sqrt(sd1i^2 + sd2i^2 - 2 ri sd1i sd2i).
# - Non-finite / missing values are null: QMdf[2] under z, se after transf,
#   regtest dfs, trimfill p_k0, Berkey CR2 QMp and HTZ p_val.
# CONVENTIONS-END
################################################################################

suppressPackageStartupMessages({
  library(metafor)
  library(clubSandwich)
  library(jsonlite)
})
t_start <- proc.time()[["elapsed"]]

data_dir <- file.path("bayesmeta", "datasets", "data")
out_dir <- file.path("tests", "reference", "fixtures")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
# the conventions listed in the header of this script (between the markers),
# one string per "- " item
read_conventions <- function(path = file.path("tests", "reference", "make_inference_reference.R")) {
  l <- readLines(path)
  l <- l[(grep("^# CONVENTIONS-BEGIN", l) + 1):(grep("^# CONVENTIONS-END", l) - 1)]
  l <- sub("^# ?", "", l)
  items <- split(l, cumsum(grepl("^- ", l)))
  unname(vapply(items, function(x) sub("^- ", "", paste(trimws(x), collapse = " ")), ""))
}
CONVENTIONS <- I(read_conventions())
rd <- function(name) read.csv(file.path(data_dir, paste0(name, ".csv")),
                              stringsAsFactors = FALSE)

################################################################################
# tight convergence controls (all refits made by confint / profile / influence
# / leave1out / trimfill / cooks.distance reuse the control of the fit)
################################################################################
# rma.uni: Fisher scoring to 1e-14; 'tol' is the uniroot tolerance of the
# Paule-Mandel (PM) estimator (metafor's default is .Machine$double.eps^0.25)
CTRL_UNI <- list(threshold = 1e-14, maxiter = 10000, tol = 1e-12)
# rma.mv: bobyqa (minqa) with rhoend = 1e-12 (nlminb with rel.tol = 1e-12
# stops with "false convergence" in many of the refits made by profile() and
# cooks.distance(), and nlminb with rel.tol = 1e-10 leaves the variance
# components of the flat Berkey/Ishak likelihoods off by up to 1e-5 relative).
# Every rma.mv and rma.ls fit is refitted with the Hooke-Jeeves optimizer
# (hjk, tol = 1e-14) and the differences are stored in 'convergence_check'.
CTRL_MV <- list(optimizer = "bobyqa", rhoend = 1e-12, maxfun = 100000)
CTRL_MV_CHECK <- list(optimizer = "hjk", tol = 1e-14)
# rma.ls (location-scale): bobyqa too.  With nlminb (metafor's default) the
# profile refits of confint(fit_ls_reml, alpha = 1) jump to a local optimum
# (alpha2 ~ -3.1, logLik -23.07 instead of -15.96) for alpha1 >= -2.1 and the
# upper bound comes out as -2.1687 instead of -1.9956; E_location_scale
# re-checks every bound with several starting values.
CTRL_LS <- list(optimizer = "bobyqa", rhoend = 1e-12, maxfun = 100000)
# uniroot tolerances of confint() (metafor's default: .Machine$double.eps^0.25
# = 1.2e-4, i.e. the printed bounds are only good to about 1e-4)
CI_UNI <- list(tol = 1e-12)
CI_MV <- list(tol = 1e-10)

################################################################################
# JSON helpers
################################################################################
arr <- function(x) if (is.null(x)) I(numeric(0)) else I(unname(as.numeric(x)))
strarr <- function(x) if (is.null(x)) I(character(0)) else I(unname(as.character(x)))
mat <- function(m) { m <- as.matrix(m); dimnames(m) <- NULL; m }
key <- function(x) gsub(".", "_", x, fixed = TRUE)  # R names -> JSON keys
# a table: "rownames" plus one array per column (keys: R's column names with
# '.' replaced by '_')
tab <- function(cols, rownames) {
  out <- list(rownames = strarr(rownames))
  for (nm in names(cols)) out[[key(nm)]] <- arr(cols[[nm]])
  out
}
mtab <- function(m) tab(as.data.frame(m, check.names = FALSE), rownames(m))
# a matrix with its dimnames
mout <- function(m) list(rownames = strarr(rownames(m)), colnames = strarr(colnames(m)),
                         values = mat(m))
# evaluate an R call given as a string (in the global environment); warnings
# are printed with the call and collected in WARNINGS (stored in the JSON)
WARNINGS <- list()
ev <- function(call) {
  withCallingHandlers(eval(parse(text = call)[[1]], envir = globalenv()),
    warning = function(w) {
      WARNINGS[[length(WARNINGS) + 1]] <<- list(call = call, warning = conditionMessage(w))
      say("  warning in %s: %s", call, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
}
say <- function(...) cat(sprintf(...), "\n", sep = "")

################################################################################
# extractors of metafor / clubSandwich objects
################################################################################
# coefficient table of a fit (statistic named zval or tval after the test)
coef_tab <- function(fit) {
  cols <- list(estimate = fit$beta, se = fit$se)
  cols[[if (fit$test == "z") "zval" else "tval"]] <- fit$zval
  if (fit$test != "z") cols$df <- rep_len(fit$ddf, length(fit$beta))
  cols <- c(cols, list(pval = fit$pval, ci.lb = fit$ci.lb, ci.ub = fit$ci.ub))
  tab(cols, rownames(fit$beta))
}
fit_stats <- function(fit) {
  fs <- fitstats(fit)
  list(loglik = unname(fs["logLik:", 1]), deviance = unname(fs["deviance:", 1]),
       AIC = unname(fs["AIC:", 1]), BIC = unname(fs["BIC:", 1]),
       AICc = unname(fs["AICc:", 1]), parms = unname(attr(logLik(fit), "df")))
}
tests_of <- function(fit) list(QE = fit$QE, QEp = fit$QEp, QM = fit$QM,
                               QMdf = arr(fit$QMdf), QMp = fit$QMp)
uni_fit <- function(fit, call) {
  c(list(call = call, method = fit$method, test = fit$test, k = fit$k, p = fit$p,
         coef = coef_tab(fit), vcov = mout(vcov(fit)),
         tau2 = fit$tau2, se_tau2 = fit$se.tau2, I2 = fit$I2, H2 = fit$H2,
         vt = fit$vt),
    tests_of(fit), fit_stats(fit))
}
# refit with a second optimizer (CTRL_MV_CHECK) and report the differences in
# logLik, in the variance parameters params(fit) and in the coefficients
conv_check <- function(fit, params) {
  set.seed(1)  # the hjk path of rma.mv / rma.ls draws random numbers (bobyqa does not)
  alt <- update(fit, control = CTRL_MV_CHECK)
  d <- abs(params(alt) - params(fit))
  list(control = "CTRL_MV_CHECK",
       loglik_diff = as.numeric(logLik(alt) - logLik(fit)),
       max_abs_vc_diff = max(d),
       max_rel_vc_diff = max(d / pmax(abs(params(fit)), 1e-300)),
       max_abs_coef_diff = max(abs(alt$beta - fit$beta)))
}
# rma.mv fit
mv_fit <- function(fit, call) {
  out <- c(list(call = call, method = fit$method, test = fit$test, k = fit$k,
                p = fit$p, coef = coef_tab(fit), vcov = mout(vcov(fit))),
           tests_of(fit), fit_stats(fit))
  if (fit$withS) out$sigma2 <- tab(list(sigma2 = fit$sigma2, nlvls = fit$s.nlevels),
                                   fit$s.names)
  if (fit$withG) {
    out$struct <- fit$struct[1]
    out$tau2 <- tab(list(tau2 = fit$tau2), if (length(fit$tau2) > 1)
      fit$g.levels.f[[1]] else "tau^2")
    out$rho <- arr(fit$rho)
  }
  out$convergence_check <- conv_check(fit, function(f) c(f$sigma2, f$tau2, f$rho))
  out
}
# confint() of rma.uni (random part: tau^2, tau, I^2(%), H^2) and of one
# component of rma.mv / rma.ls
ci_out <- function(ci, call, level) {
  list(call = call, level = level, random = mtab(ci$random),
       lb_sign = ci$lb.sign, ub_sign = ci$ub.sign, ci_null = ci$ci.null)
}
# predict() output (columns present in the object)
pred_out <- function(p, call) {
  cols <- intersect(c("pred", "se", "ci.lb", "ci.ub", "pi.lb", "pi.ub"), names(p))
  out <- c(list(call = call), tab(unclass(p)[cols], seq_along(p$pred)))
  if (!is.null(p$tau2.level)) out$tau2_level <- strarr(p$tau2.level)
  out
}
# metafor's robust() output
rob_out <- function(r, call) {
  c(list(call = call, vbest = r$vbest, method = r$robumethod, n_clusters = r$n,
         coef = coef_tab(r), vcov = mout(r$vb)),
    list(QM = r$QM, QMdf = arr(r$QMdf), QMp = r$QMp))
}
# clubSandwich output
cs_coef <- function(ct, call) c(list(call = call, vcov_type = attr(ct, "type")),
                                tab(as.list(ct)[-1], ct$Coef))
cs_conf <- function(ci, call) c(list(call = call), tab(as.list(ci)[-1], ci$Coef))
cs_wald <- function(wt, call) list(call = call, test = wt$test, Fstat = wt$Fstat,
                                   delta = wt$delta, df_num = wt$df_num,
                                   df_denom = wt$df_denom, p_val = wt$p_val)
# anova(full, reduced): fit statistics of both models and the LRT
lrt_out <- function(full, reduced, call) {
  a <- ev(call)
  fs <- function(f) fit_stats(ev(f))
  list(call = call, full = full, reduced = reduced,
       full_stats = fs(full), reduced_stats = fs(reduced),
       LRT = a$LRT, df = a$parms.f - a$parms.r, pval = a$pval)
}
# multilevel I^2 of the metafor FAQ (rma.mv with sigma2 components):
#   W = diag(1/vi), P = W - W X (X'WX)^-1 X'W, typical v = (k-p)/tr(P)
#   I2_total = 100 sum(sigma2) / (sum(sigma2) + v), per component
#   100 sigma2_j / (sum(sigma2) + v)
i2_multilevel <- function(fit) {
  W <- diag(1 / fit$vi)
  X <- model.matrix(fit)
  P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  v <- (fit$k - fit$p) / sum(diag(P))
  list(typical_v = v,
       I2_total = 100 * sum(fit$sigma2) / (sum(fit$sigma2) + v),
       I2_components = tab(list(I2 = 100 * fit$sigma2 / (sum(fit$sigma2) + v)),
                           fit$s.names))
}

################################################################################
# data
################################################################################
bcg <- rd("bcg")
dat <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
school <- rd("school")
berkey <- rd("berkey1998")
V_berkey <- bldiag(lapply(split(berkey[, c("v1i", "v2i")], berkey$trial), as.matrix))
kon <- rd("konstantopoulos2011")
bd <- rd("bangertdrowns2004")
ishak <- rd("ishak2007")

out <- list()

################################################################################
# A. BCG vaccine trials (13 trials): random-effects model and meta-regression
#    on absolute latitude; dat <- escalc("RR", ...) (log risk ratios)
################################################################################
say("A: BCG")
A <- list(data = "dat <- escalc('RR', ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg); bcg = bcg.csv (13 rows); see datasets.bcg")

# A1-A4: the fits (REML/ML, without/with ablat, Knapp-Hartung, two small
# subsets whose Q-profile CI reaches the boundary tau^2 = 0)
calls_A <- c(
  REML = "fit_reml <- rma(yi, vi, data = dat, control = CTRL_UNI)",
  ML = "fit_ml <- rma(yi, vi, data = dat, method = 'ML', control = CTRL_UNI)",
  mods_REML = "fit_mods <- rma(yi, vi, mods = ~ ablat, data = dat, control = CTRL_UNI)",
  mods_ML = "fit_mods_ml <- rma(yi, vi, mods = ~ ablat, data = dat, method = 'ML', control = CTRL_UNI)",
  knha_REML = "fit_knha <- rma(yi, vi, data = dat, test = 'knha', control = CTRL_UNI)",
  mods_knha_REML = "fit_mods_knha <- rma(yi, vi, mods = ~ ablat, data = dat, test = 'knha', control = CTRL_UNI)",
  subset_1to3_REML = "fit_sub3 <- rma(yi, vi, data = dat, subset = 1:3, control = CTRL_UNI)",
  subset_2_3_4_10_REML = "fit_subnull <- rma(yi, vi, data = dat, subset = c(2, 3, 4, 10), control = CTRL_UNI)")
A$fits <- lapply(calls_A, function(cl) uni_fit(ev(cl), cl))

# A1: Q-profile confidence intervals of tau^2, tau, I^2 and H^2
ci_A <- list(
  REML_95 = list("confint(fit_reml, control = CI_UNI)", 0.95),
  REML_90 = list("confint(fit_reml, level = 0.90, control = CI_UNI)", 0.90),
  ML_95 = list("confint(fit_ml, control = CI_UNI)", 0.95),
  ML_90 = list("confint(fit_ml, level = 0.90, control = CI_UNI)", 0.90),
  mods_REML_95 = list("confint(fit_mods, control = CI_UNI)", 0.95),
  mods_ML_95 = list("confint(fit_mods_ml, control = CI_UNI)", 0.95),
  subset_1to3_REML_95 = list("confint(fit_sub3, control = CI_UNI)", 0.95),
  subset_2_3_4_10_REML_95 = list("confint(fit_subnull, control = CI_UNI)", 0.95),
  knha_REML_95_fixed = list("confint(fit_knha, fixed = TRUE, control = CI_UNI)", 0.95))
A$confint <- lapply(ci_A, function(x) {
  ci <- ev(x[[1]])
  o <- ci_out(ci, x[[1]], x[[2]])
  if (!is.null(ci$fixed)) o$fixed <- mtab(ci$fixed)
  o
})
A$confint_default_tol_max_abs_diff <- max(abs(confint(fit_reml)$random -
                                              confint(fit_reml, control = CI_UNI)$random))

# A2/A3: predictions (k rows without newmods), BLUPs, random effects
pr_A <- c(
  REML = "predict(fit_reml)",
  REML_exp = "predict(fit_reml, transf = exp)",
  mods_REML_fitted = "predict(fit_mods)",
  mods_REML_new = "predict(fit_mods, newmods = c(10, 30, 50))",
  mods_REML_new_exp = "predict(fit_mods, newmods = c(10, 30, 50), transf = exp)",
  knha_REML = "predict(fit_knha)",
  mods_knha_REML_new = "predict(fit_mods_knha, newmods = c(10, 30, 50))")
A$predict <- lapply(pr_A, function(cl) pred_out(ev(cl), cl))
lr_A <- c(blup_REML = "blup(fit_reml)", ranef_REML = "ranef(fit_reml)",
          blup_mods_REML = "blup(fit_mods)", ranef_mods_REML = "ranef(fit_mods)")
A$blup_ranef <- lapply(lr_A, function(cl) {
  b <- ev(cl)
  c(list(call = cl), tab(unclass(b)[c("pred", "se", "pi.lb", "pi.ub")], b$slab))
})

# A4: tau^2 estimators (intercept-only and with ablat)
A$tau2_methods <- list()
for (m in c("DL", "HE", "HS", "SJ", "EB", "PM", "ML", "REML")) {
  for (mods in c("intercept", "ablat")) {
    cl <- sprintf("rma(yi, vi, %sdata = dat, method = '%s', control = CTRL_UNI)",
                  if (mods == "ablat") "mods = ~ ablat, " else "", m)
    A$tau2_methods[[mods]][[m]] <- uni_fit(ev(cl), cl)
  }
}

# A5: influence diagnostics and leave-one-out
inf_out <- function(cl) {
  x <- ev(cl)
  cols <- c("rstudent", "dffits", "cook.d", "cov.r", "tau2.del", "QE.del", "hat", "weight")
  list(call = cl, inf = tab(unclass(x$inf)[cols], x$inf$slab),
       inf_flag = strarr(x$inf$inf), is_infl = I(unname(x$is.infl)),
       dfbs = tab(unclass(x$dfbs)[setdiff(names(x$dfbs), c("slab", "digits"))], x$dfbs$slab))
}
A$influence <- list(REML = inf_out("influence(fit_reml)"),
                    mods_REML = inf_out("influence(fit_mods)"))
l1 <- leave1out(fit_reml)
A$leave1out <- c(list(call = "leave1out(fit_reml)"),
                 tab(unclass(l1)[c("estimate", "se", "zval", "pval", "ci.lb", "ci.ub",
                                   "Q", "Qp", "tau2", "I2", "H2")], l1$slab))

# A6: Egger's regression test and trim-and-fill
rt <- regtest(fit_reml)
A$regtest <- list(call = "regtest(fit_reml)", model = rt$model, predictor = rt$predictor,
                  zval = rt$zval, pval = rt$pval, dfs = rt$dfs,
                  limit_estimate = unname(rt$est), limit_ci_lb = rt$ci.lb, limit_ci_ub = rt$ci.ub,
                  fit = uni_fit(rt$fit, "regtest's internal model: rma(yi, vi, mods = ~ sei, data = dat, method = 'REML') with sei = sqrt(vi) (coefficients intrcpt = limit estimate, sei = Egger slope)"))
tf <- trimfill(fit_reml)
A$trimfill <- c(list(call = "trimfill(fit_reml)", estimator = tf$k0.est, k0 = tf$k0,
                     side = tf$side, se_k0 = tf$se.k0, p_k0 = tf$p.k0,
                     yi = arr(tf$yi), vi = arr(tf$vi), fill = I(unname(tf$fill))),
                uni_fit(tf, "trimfill(fit_reml)")[-1])

# A7: cluster-robust inference (one trial per cluster)
rb_A <- c(
  CR1_mods = "robust(fit_mods, cluster = trial)",
  CR0_mods = "robust(fit_mods, cluster = trial, adjust = FALSE)",
  CR2_mods = "robust(fit_mods, cluster = trial, clubSandwich = TRUE)",
  CR1_intercept = "robust(fit_reml, cluster = trial)",
  CR2_intercept = "robust(fit_reml, cluster = trial, clubSandwich = TRUE)")
A$robust <- lapply(rb_A, function(cl) rob_out(ev(cl), cl))
A$clubSandwich <- list(
  vcovCR_CR2 = list(call = "vcovCR(fit_mods, cluster = dat$trial, type = 'CR2')",
                    vcov = mout(as.matrix(vcovCR(fit_mods, cluster = dat$trial, type = "CR2")))),
  coef_test_CR2 = cs_coef(coef_test(fit_mods, vcov = "CR2", cluster = dat$trial),
                          "coef_test(fit_mods, vcov = 'CR2', cluster = dat$trial)"),
  conf_int_CR2 = cs_conf(conf_int(fit_mods, vcov = "CR2", cluster = dat$trial),
                         "conf_int(fit_mods, vcov = 'CR2', cluster = dat$trial)"),
  Wald_test_HTZ = cs_wald(Wald_test(fit_mods, constraints = constrain_zero(2), vcov = "CR2",
                                    test = "HTZ", cluster = dat$trial),
                          "Wald_test(fit_mods, constraints = constrain_zero(2), vcov = 'CR2', test = 'HTZ', cluster = dat$trial)"))
out$A_bcg <- A

################################################################################
# B. Three-level model of the school calendar data (56 studies in 11 districts)
################################################################################
say("B: school")
B <- list(data = "school = school.csv as is (district, study, effect, var)")
calls_B <- c(
  REML = "fit_school <- rma.mv(effect, var, random = ~ 1 | district/study, data = school, control = CTRL_MV)",
  ML = "fit_school_ml <- rma.mv(effect, var, random = ~ 1 | district/study, data = school, method = 'ML', control = CTRL_MV)",
  REML_no_district = "fit_school_s1 <- rma.mv(effect, var, random = ~ 1 | district/study, data = school, sigma2 = c(0, NA), control = CTRL_MV)",
  REML_no_study = "fit_school_s2 <- rma.mv(effect, var, random = ~ 1 | district/study, data = school, sigma2 = c(NA, 0), control = CTRL_MV)",
  ML_no_district = "fit_school_ml_s1 <- rma.mv(effect, var, random = ~ 1 | district/study, data = school, sigma2 = c(0, NA), method = 'ML', control = CTRL_MV)",
  ML_no_study = "fit_school_ml_s2 <- rma.mv(effect, var, random = ~ 1 | district/study, data = school, sigma2 = c(NA, 0), method = 'ML', control = CTRL_MV)")
B$fits <- lapply(calls_B, function(cl) mv_fit(ev(cl), cl))

# B1: profile-likelihood CIs of sigma^2_1 (district) and sigma^2_2 (study)
ci_B <- list(
  REML_sigma2_1 = "confint(fit_school, sigma2 = 1, control = CI_MV)",
  REML_sigma2_2 = "confint(fit_school, sigma2 = 2, control = CI_MV)",
  ML_sigma2_1 = "confint(fit_school_ml, sigma2 = 1, control = CI_MV)",
  ML_sigma2_2 = "confint(fit_school_ml, sigma2 = 2, control = CI_MV)")
B$confint <- lapply(ci_B, function(cl) ci_out(ev(cl), cl, 0.95))

# B2: prediction for a new study in a new district
B$predict <- list(REML = pred_out(predict(fit_school), "predict(fit_school)"),
                  ML = pred_out(predict(fit_school_ml), "predict(fit_school_ml)"),
                  existing_district = "not offered by metafor 3.8: predict.rma.mv always adds sum(sigma2) to the PI variance (tau2.levels / gamma2.levels only select levels of '~ inner | outer' terms); see fitted_plus_ranef$district_mean for the BLUP of each district's mean (no SE)")

# B3: BLUPs of the random effects, and per row the sum fitted + u_district +
# u_district/study (computed here; rma.mv has no blup())
re_B <- ranef(fit_school)
re_tab <- function(r) tab(list(estimate = r[[1]], se = r$se, pi.lb = r$pi.lb, pi.ub = r$pi.ub),
                          rownames(r))
B$ranef <- list(call = "ranef(fit_school)", components = strarr(names(re_B)),
                district = re_tab(re_B[["district"]]),
                district_study = re_tab(re_B[["district/study"]]))
u_d <- re_B[["district"]][as.character(school$district), 1]
u_s <- re_B[["district/study"]][paste(school$district, school$study, sep = "/"), 1]
stopifnot(!anyNA(u_d), !anyNA(u_s))
B$fitted_plus_ranef <- list(
  computed_as = "fitted(fit_school) + ranef(fit_school)$district[as.character(district), 1] + ranef(fit_school)[['district/study']][paste(district, study, sep = '/'), 1]",
  fitted = arr(fitted(fit_school)), u_district = arr(u_d), u_study = arr(u_s),
  sum = arr(fitted(fit_school) + u_d + u_s),
  district_mean = tab(list(pred = coef(fit_school)[[1]] + re_B[["district"]][, 1]),
                      rownames(re_B[["district"]])))

# B4: multilevel I^2 (metafor FAQ formula)
B$I2_multilevel <- list(REML = i2_multilevel(fit_school), ML = i2_multilevel(fit_school_ml))

# B5: Cook's distances (per district, refitting without each district; per row)
cd1 <- cooks.distance(fit_school, cluster = school$district)
cd2 <- cooks.distance(fit_school)
B$cooks_distance <- list(
  cluster_district = c(list(call = "cooks.distance(fit_school, cluster = school$district)"),
                       tab(list(cook.d = cd1), names(cd1))),
  per_row = c(list(call = "cooks.distance(fit_school)"), tab(list(cook.d = cd2), names(cd2))))

# B6: cluster-robust inference (district clusters)
rb_B <- c(CR2 = "robust(fit_school, cluster = district, clubSandwich = TRUE)",
          CR1 = "robust(fit_school, cluster = district)")
B$robust <- lapply(rb_B, function(cl) rob_out(ev(cl), cl))
B$clubSandwich <- list(
  vcovCR_CR2 = list(call = "vcovCR(fit_school, cluster = school$district, type = 'CR2')",
                    vcov = mout(as.matrix(vcovCR(fit_school, cluster = school$district, type = "CR2")))),
  coef_test_CR2 = cs_coef(coef_test(fit_school, vcov = "CR2", cluster = school$district),
                          "coef_test(fit_school, vcov = 'CR2', cluster = school$district)"))

# B7: profile log-likelihood grids (default xlim = c(max(0, vc/4), max(0.1, 4*vc)))
prof_out <- function(cl, comp) {
  pr <- ev(cl)
  list(call = cl, comp = comp, estimate = pr$vc, maxll = as.numeric(pr$maxll),
       xlim_default = arr(c(max(0, pr$vc / 4), max(0.1, 4 * pr$vc))),
       grid = arr(pr[[comp]]), ll = arr(pr$ll), beta = arr(pr$beta[[1]]),
       ci_lb = arr(pr$ci.lb[[1]]), ci_ub = arr(pr$ci.ub[[1]]))
}
B$profile <- list(
  sigma2_1 = prof_out("profile(fit_school, sigma2 = 1, steps = 20, plot = FALSE, progbar = FALSE)", "sigma2"),
  sigma2_2 = prof_out("profile(fit_school, sigma2 = 2, steps = 20, plot = FALSE, progbar = FALSE)", "sigma2"))

# likelihood-ratio tests of each variance component (naive chi^2(1) p-values)
B$lrt <- list(
  REML_district = lrt_out("fit_school", "fit_school_s1", "anova(fit_school, fit_school_s1)"),
  REML_study = lrt_out("fit_school", "fit_school_s2", "anova(fit_school, fit_school_s2)"),
  ML_district = lrt_out("fit_school_ml", "fit_school_ml_s1", "anova(fit_school_ml, fit_school_ml_s1)"),
  ML_study = lrt_out("fit_school_ml", "fit_school_ml_s2", "anova(fit_school_ml, fit_school_ml_s2)"))
out$B_school <- B

################################################################################
# C. Multivariate models: Berkey et al. (1998) periodontal data (5 trials x 2
#    outcomes, known within-trial covariances) and Ishak et al. (2007)
#    (longitudinal, up to 4 time points)
################################################################################
say("C: berkey, ishak")
C <- list(data = "berkey = berkey1998.csv (long: PD row then AL row per trial); V_berkey <- bldiag(lapply(split(berkey[, c('v1i', 'v2i')], berkey$trial), as.matrix)); see datasets.berkey")
stopifnot(!is.unsorted(berkey$trial))
calls_C <- c(UN_mods = "fit_berkey <- rma.mv(yi, V_berkey, mods = ~ outcome + outcome:I(year - 1983) - 1, random = ~ outcome | trial, struct = 'UN', data = berkey, control = CTRL_MV)")
for (s in c("UN", "CS", "HCS", "DIAG", "ID"))
  calls_C[[s]] <- sprintf("fit_berkey_%s <- rma.mv(yi, V_berkey, mods = ~ outcome - 1, random = ~ outcome | trial, struct = '%s', data = berkey, control = CTRL_MV)", s, s)
C$fits <- lapply(calls_C, function(cl) mv_fit(ev(cl), cl))

# C1: profile-likelihood CIs of tau^2_AL, tau^2_PD and rho
ci_C <- c(tau2_1 = "confint(fit_berkey, tau2 = 1, control = CI_MV)",
          tau2_2 = "confint(fit_berkey, tau2 = 2, control = CI_MV)",
          rho = "confint(fit_berkey, rho = 1, control = CI_MV)")
C$confint <- lapply(ci_C, function(cl) ci_out(ev(cl), cl, 0.95))

# C2: predictions per outcome in 1983 and 1990 (the PI uses tau^2 of the level)
pr_C <- "predict(fit_berkey, newmods = rbind(c(1, 0, 0, 0), c(0, 1, 0, 0), c(1, 0, 7, 0), c(0, 1, 0, 7)), tau2.levels = c('AL', 'PD', 'AL', 'PD'))"
C$predict <- c(pred_out(ev(pr_C), pr_C),
               list(rows = strarr(c("AL 1983", "PD 1983", "AL 1990", "PD 1990"))))

# C3: BLUPs of the (outcome, trial) random effects; per row fitted + u
re_C <- ranef(fit_berkey)[[1]]
u_C <- re_C[sprintf("%s | %s", berkey$outcome, berkey$trial), 1]
stopifnot(!anyNA(u_C))
C$ranef <- c(list(call = "ranef(fit_berkey)", component = names(ranef(fit_berkey))),
             re_tab(re_C))
C$fitted_plus_ranef <- list(
  computed_as = "fitted(fit_berkey) + ranef(fit_berkey)[[1]][sprintf('%s | %s', outcome, trial), 1]",
  fitted = arr(fitted(fit_berkey)), u = arr(u_C), sum = arr(fitted(fit_berkey) + u_C))

# C4: cluster-robust inference (CR2, 5 trials)
C$robust <- list(CR2 = rob_out(robust(fit_berkey, cluster = trial, clubSandwich = TRUE),
                               "robust(fit_berkey, cluster = trial, clubSandwich = TRUE)"))
C$clubSandwich <- list(
  vcovCR_CR2 = list(call = "vcovCR(fit_berkey, cluster = berkey$trial, type = 'CR2')",
                    vcov = mout(as.matrix(vcovCR(fit_berkey, cluster = berkey$trial, type = "CR2")))),
  coef_test_CR2 = cs_coef(coef_test(fit_berkey, vcov = "CR2", cluster = berkey$trial),
                          "coef_test(fit_berkey, vcov = 'CR2', cluster = berkey$trial)"),
  Wald_test_HTZ_slopes = cs_wald(Wald_test(fit_berkey, constraints = constrain_zero(3:4), vcov = "CR2",
                                           test = "HTZ", cluster = berkey$trial),
                                 "Wald_test(fit_berkey, constraints = constrain_zero(3:4), vcov = 'CR2', test = 'HTZ', cluster = berkey$trial)"),
  # all four coefficients (what robust(..., clubSandwich = TRUE) tests): q = 4
  # constraints with 5 clusters give a negative HTZ denominator df
  Wald_test_HTZ_all = cs_wald(Wald_test(fit_berkey, constraints = constrain_zero(1:4), vcov = "CR2",
                                        test = "HTZ", cluster = berkey$trial),
                              "Wald_test(fit_berkey, constraints = constrain_zero(1:4), vcov = 'CR2', test = 'HTZ', cluster = berkey$trial)"))

# C5: likelihood-ratio tests between random-effects structures (REML, same
# fixed effects ~ outcome - 1)
pairs_C <- list(c("UN", "CS"), c("UN", "DIAG"), c("HCS", "CS"), c("CS", "ID"), c("DIAG", "ID"))
C$lrt <- list()
for (pp in pairs_C) {
  f <- paste0("fit_berkey_", pp)
  C$lrt[[paste(pp, collapse = "_vs_")]] <- lrt_out(f[1], f[2], sprintf("anova(%s, %s)", f[1], f[2]))
}

# Ishak et al. (2007): wide file -> long format (metadat's ?dat.ishak2007
# example); rows in file order of the studies, then by time point; V with an
# AR(1) within-study correlation 0.97^|t1 - t2| (as in that example)
ishak_long <- reshape(ishak, direction = "long", idvar = "study", v.names = c("yi", "vi"),
                      varying = list(c(2, 4, 6, 8), c(3, 5, 7, 9)))
ishak_long <- ishak_long[order(match(ishak_long$study, ishak$study), ishak_long$time), ]
ishak_long <- ishak_long[!is.na(ishak_long$yi), ]
rownames(ishak_long) <- NULL
V_ishak <- vcalc(vi, cluster = study, time1 = time, phi = 0.97, data = ishak_long)
same <- outer(ishak_long$study, ishak_long$study, "==")
stopifnot(max(abs(V_ishak - same * 0.97^abs(outer(ishak_long$time, ishak_long$time, "-")) *
                    sqrt(outer(ishak_long$vi, ishak_long$vi)))) < 1e-12)
calls_I <- c(
  HAR = "fit_ishak_har <- rma.mv(yi, V_ishak, mods = ~ factor(time) - 1, random = ~ time | study, struct = 'HAR', data = ishak_long, control = CTRL_MV)",
  AR = "fit_ishak_ar <- rma.mv(yi, V_ishak, mods = ~ factor(time) - 1, random = ~ time | study, struct = 'AR', data = ishak_long, control = CTRL_MV)")
C$ishak <- list(
  data = "ishak_long (see datasets.ishak_long); V_ishak <- vcalc(vi, cluster = study, time1 = time, phi = 0.97, data = ishak_long)",
  fits = lapply(calls_I, function(cl) mv_fit(ev(cl), cl)),
  lrt = list(HAR_vs_AR = lrt_out("fit_ishak_har", "fit_ishak_ar", "anova(fit_ishak_har, fit_ishak_ar)")))
out$C_multivariate <- C

################################################################################
# D. Categorical moderator in a three-level model with CR2 / HTZ tests:
#    dat.konstantopoulos2011 with a derived 3-level period factor (the year is
#    constant within district except district 644: 1994 and 1995, same period)
################################################################################
say("D: konstantopoulos")
kon$period <- factor(ifelse(kon$year <= 1976, "1976",
                            ifelse(kon$year <= 1995, "1989-1995", "1997-2000")))
D <- list(data = "kon = konstantopoulos2011.csv; kon$period <- factor(ifelse(kon$year <= 1976, '1976', ifelse(kon$year <= 1995, '1989-1995', '1997-2000'))) (levels 1976 [19 rows, 3 districts], 1989-1995 [11 rows, 3 districts], 1997-2000 [26 rows, 5 districts])")
calls_D <- c(
  treatment = "fit_kon <- rma.mv(yi, vi, mods = ~ period, random = ~ 1 | district/school, data = kon, control = CTRL_MV)",
  cell_means = "fit_kon_cm <- rma.mv(yi, vi, mods = ~ period - 1, random = ~ 1 | district/school, data = kon, control = CTRL_MV)")
D$fits <- lapply(calls_D, function(cl) mv_fit(ev(cl), cl))
D$I2_multilevel <- i2_multilevel(fit_kon)
cs_D <- function(obj, cons) {
  f <- get(obj)
  list(vcovCR_CR2 = list(call = sprintf("vcovCR(%s, cluster = kon$district, type = 'CR2')", obj),
                         vcov = mout(as.matrix(vcovCR(f, cluster = kon$district, type = "CR2")))),
       coef_test_CR2 = cs_coef(coef_test(f, vcov = "CR2", cluster = kon$district),
                               sprintf("coef_test(%s, vcov = 'CR2', cluster = kon$district)", obj)),
       conf_int_CR2 = cs_conf(conf_int(f, vcov = "CR2", cluster = kon$district),
                              sprintf("conf_int(%s, vcov = 'CR2', cluster = kon$district)", obj)),
       Wald_test_HTZ = lapply(cons, function(cn) {
         cl <- sprintf("Wald_test(%s, constraints = %s, vcov = 'CR2', test = 'HTZ', cluster = kon$district)", obj, cn)
         cs_wald(ev(cl), cl)
       }))
}
D$clubSandwich <- list(
  treatment = cs_D("fit_kon", list(contrasts = "constrain_zero(2:3)")),
  cell_means = cs_D("fit_kon_cm", list(all_zero = "constrain_zero(1:3)",
                                       all_equal = "constrain_equal(1:3)")))
rb_D <- c(treatment_CR2 = "robust(fit_kon, cluster = district, clubSandwich = TRUE)",
          cell_means_CR2 = "robust(fit_kon_cm, cluster = district, clubSandwich = TRUE)",
          treatment_CR1 = "robust(fit_kon, cluster = district)")
D$robust <- lapply(rb_D, function(cl) rob_out(ev(cl), cl))
out$D_categorical <- D

################################################################################
# E. Location-scale model (Bangert-Drowns et al. 2004, rows with missing
#    'length' dropped): profile-likelihood CIs of the scale coefficients
################################################################################
say("E: location-scale")
bd_len <- bd[!is.na(bd$length), ]
E <- list(data = "bd_len <- bd[!is.na(bd$length), ] (bd = bangertdrowns2004.csv; 46 of 48 rows)")
ls_fit <- function(fit, call) {
  c(list(call = call, method = fit$method, k = fit$k, coef = coef_tab(fit),
         alpha = tab(list(estimate = fit$alpha, se = fit$se.alpha, zval = fit$zval.alpha,
                          pval = fit$pval.alpha, ci.lb = fit$ci.lb.alpha,
                          ci.ub = fit$ci.ub.alpha), rownames(fit$alpha))),
    fit_stats(fit),
    list(convergence_check = conv_check(fit, function(f) f$alpha)))
}
# profile log-likelihood at a confint bound of alpha_j, maximised over several
# starting values of the other alpha, minus the cut-off logLik - qchisq(.95, 1)/2
# (0 if the bound is right)
ls_bound_check <- function(fit, j, bound) {
  fixed <- c(NA, NA)
  fixed[j] <- bound
  starts <- if (j == 1) c(-0.3, -0.1, 0, 0.1, 0.3) else c(-8, -6, -4, -2, 0)
  lls <- sapply(starts, function(st) {
    init <- numeric(2)
    init[j] <- bound
    init[3 - j] <- st
    g <- try(suppressWarnings(update(fit, alpha = fixed,
                                     control = c(CTRL_LS, list(alpha.init = init)))), silent = TRUE)
    if (inherits(g, "try-error")) NA else as.numeric(logLik(g))
  })
  max(lls, na.rm = TRUE) - (as.numeric(logLik(fit)) - qchisq(0.95, 1) / 2)
}
for (m in c("REML", "ML")) {
  obj <- paste0("fit_ls_", tolower(m))
  cl <- sprintf("%s <- rma(yi, vi, mods = ~ length, scale = ~ length, data = bd_len, method = '%s', control = CTRL_LS)", obj, m)
  E[[m]] <- list(fit = ls_fit(ev(cl), cl))
  for (j in 1:2) {
    ccl <- sprintf("confint(%s, alpha = %d, control = CI_UNI)", obj, j)
    ci <- ci_out(ev(ccl), ccl, 0.95)
    ci$check_profile_minus_cutoff_at_bounds <- arr(sapply(c(ci$random$ci_lb, ci$random$ci_ub),
                                                          ls_bound_check, fit = get(obj), j = j))
    stopifnot(all(abs(ci$check_profile_minus_cutoff_at_bounds) < 1e-6))
    E[[m]][[paste0("confint_alpha_", j)]] <- ci
  }
}
out$E_location_scale <- E

################################################################################
# F. escalc measures on small inline data sets (default vtype = "LS",
#    add = 1/2, to = "only0", drop00 = FALSE)
################################################################################
say("F: escalc")
esc_prop <- data.frame(xi = c(0, 3, 10, 25, 40, 7, 1), ni = c(20, 30, 50, 60, 40, 15, 100))
esc_smc <- data.frame(m1i = c(10.2, 25.1, 3.4, 50.0, 12.5, 7.7),
                      m2i = c(12.0, 22.3, 4.1, 55.2, 12.5, 9.9),
                      sd1i = c(2.1, 5.5, 0.9, 10.3, 3.3, 2.0),
                      sd2i = c(2.5, 5.0, 1.1, 12.0, 3.0, 2.8),
                      ni = c(12, 30, 8, 45, 20, 15),
                      ri = c(0.5, 0.7, 0.3, 0.8, 0.6, 0.45))
esc_ir1 <- data.frame(xi = c(0, 4, 12, 30, 7, 1), ti = c(150, 200, 410.5, 1000, 95, 40))
esc_ir2 <- data.frame(x1i = c(0, 4, 12, 30, 7, 2), x2i = c(3, 0, 20, 25, 10, 5),
                      t1i = c(120, 200, 400, 1000, 95, 50), t2i = c(110, 210, 380, 990, 100, 45.5))
esc_2x2 <- data.frame(ai = c(0, 5, 12, 30, 7, 3, 20), bi = c(25, 45, 88, 170, 43, 47, 80),
                      ci = c(4, 0, 20, 35, 10, 6, 25), di = c(21, 50, 80, 165, 40, 44, 75))
calls_F <- c(
  PFT = "escalc('PFT', xi = xi, ni = ni, data = esc_prop)",
  PAS = "escalc('PAS', xi = xi, ni = ni, data = esc_prop)",
  AS = "escalc('AS', ai = ai, bi = bi, ci = ci, di = di, data = esc_2x2)",
  SMCR = "escalc('SMCR', m1i = m1i, m2i = m2i, sd1i = sd1i, ni = ni, ri = ri, data = esc_smc)",
  SMCC = "escalc('SMCC', m1i = m1i, m2i = m2i, sd1i = sd1i, sd2i = sd2i, ni = ni, ri = ri, data = esc_smc)",
  IRLN = "escalc('IRLN', xi = xi, ti = ti, data = esc_ir1)",
  IRD = "escalc('IRD', x1i = x1i, x2i = x2i, t1i = t1i, t2i = t2i, data = esc_ir2)",
  PETO = "escalc('PETO', ai = ai, bi = bi, ci = ci, di = di, data = esc_2x2)")
F <- lapply(calls_F, function(cl) {
  d <- get(sub(".*data = (esc_[a-z0-9]+)\\)$", "\\1", cl))
  e <- ev(cl)
  list(call = cl, data = lapply(d, arr), yi = arr(e$yi), vi = arr(e$vi))
})
out$F_escalc <- F

################################################################################
# data sets as used (so that a test can check its own transformations)
################################################################################
datasets <- list(
  bcg = list(source = "bcg.csv", call = "dat <- escalc('RR', ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)",
             trial = arr(dat$trial), ablat = arr(dat$ablat), yi = arr(dat$yi), vi = arr(dat$vi)),
  school = list(source = "school.csv", note = "used as is; columns district, study, effect, var"),
  berkey = list(source = "berkey1998.csv",
                call = "V_berkey <- bldiag(lapply(split(berkey[, c('v1i', 'v2i')], berkey$trial), as.matrix))",
                trial = arr(berkey$trial), outcome = strarr(berkey$outcome), year = arr(berkey$year),
                yi = arr(berkey$yi), V = mat(V_berkey)),
  ishak_long = list(source = "ishak2007.csv (wide: y1i, v1i, ..., y4i, v4i)",
                    call = paste("ishak_long <- reshape(ishak, direction = 'long', idvar = 'study', v.names = c('yi', 'vi'), varying = list(c(2, 4, 6, 8), c(3, 5, 7, 9)));",
                                 "ishak_long <- ishak_long[order(match(ishak_long$study, ishak$study), ishak_long$time), ];",
                                 "ishak_long <- ishak_long[!is.na(ishak_long$yi), ]"),
                    V = "V[i, j] = 0.97^|time_i - time_j| * sqrt(vi_i * vi_j) within a study, 0 between studies (vcalc(vi, cluster = study, time1 = time, phi = 0.97))",
                    study = strarr(ishak_long$study), time = arr(ishak_long$time),
                    yi = arr(ishak_long$yi), vi = arr(ishak_long$vi)),
  konstantopoulos = list(source = "konstantopoulos2011.csv", derived = D$data,
                         period = strarr(kon$period)),
  bangertdrowns = list(source = "bangertdrowns2004.csv", subset = E$data,
                       id = arr(bd_len$id)))

meta <- list(
  generated_by = "tests/reference/make_inference_reference.R",
  metafor_version = as.character(packageVersion("metafor")),
  clubSandwich_version = as.character(packageVersion("clubSandwich")),
  R_version = R.version.string,
  controls = list(CTRL_UNI = CTRL_UNI, CTRL_MV = CTRL_MV, CTRL_MV_CHECK = CTRL_MV_CHECK,
                  CTRL_LS = CTRL_LS, CI_UNI = CI_UNI, CI_MV = CI_MV),
  format = c("Tables are objects with 'rownames' and one array per column; column keys are R's names with '.' replaced by '_' (ci.lb -> ci_lb, cook.d -> cook_d).",
             "Matrices (vcov) are {rownames, colnames, values (row-major array of rows)}.",
             "'call' is the exact R expression evaluated; objects it names (fit_reml, dat, ...) are defined by the 'call' of the corresponding fit or by 'data' of the section / 'datasets'.",
             "Non-finite or missing values (NA, NaN, Inf) are written as null; where this happens it is noted in 'conventions'."),
  conventions = CONVENTIONS)

meta$warnings <- WARNINGS
result <- c(list(meta = meta, datasets = datasets), out)
path <- file.path(out_dir, "inference.json")
writeLines(toJSON(result, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null",
                  na = "null"), path)
say("wrote %s (%.1f s)", path, proc.time()[["elapsed"]] - t_start)
