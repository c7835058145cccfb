################################################################################
# Shared helpers of the fixture scripts: tight metafor controls, JSON-safe
# conversions, the standard extraction of a fitted model and the writer of one
# fixture file.  Sourced by make_reference.R and make_builders_reference.R
# (run them from the repository root of a fresh clone: they read only the
# bundled data in bayesmeta/datasets/data and the one input fixture below).
################################################################################

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

data_dir <- file.path("bayesmeta", "datasets", "data")
out_dir <- file.path("tests", "reference", "fixtures")
# The one input fixture without a generating script here: the Greenland-Longnecker
# covariances of the alcohol data's non-reference log relative risks, computed
# with R's dosresmeta (covar.logrr, as in the paper's code 04.DoseResponseMA.R)
# and stored as tests/reference/fixtures/alcohol_gl_covariances.json (see
# tests/reference/README.md).  bayesmeta's own GL solver is tested against it.
GL_FILE <- file.path(out_dir, "alcohol_gl_covariances.json")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)

METAFOR_VERSION <- as.character(packageVersion("metafor"))
cat("metafor version:", METAFOR_VERSION, "\n")

rd <- function(name) read.csv(file.path(data_dir, name), stringsAsFactors = FALSE)

# tight convergence: rma.uni (Fisher scoring) and rma.mv (nlminb; the
# unrecognised control elements are passed on to the optimizer)
CTRL_UNI <- list(threshold = 1e-14, maxiter = 10000)
CTRL_MV <- list(optimizer = "nlminb", rel.tol = 1e-12, iter.max = 10000,
                eval.max = 20000)
# second optimizer, only used to check convergence of the nlminb fit
CTRL_MV_ALT <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-14,
                    maxit = 20000)

################################################################################
# helpers
################################################################################

arr <- function(x) {
  # numeric vector that always serialises as a JSON array
  if (is.null(x)) return(I(numeric(0)))
  I(unname(as.numeric(x)))
}
strarr <- function(x) {
  if (is.null(x)) return(I(character(0)))
  I(unname(as.character(x)))
}
mat <- function(m) {
  m <- as.matrix(m)
  dimnames(m) <- NULL
  m
}
blocks_of <- function(V, cluster) {
  # per-cluster diagonal blocks of a (block-diagonal) V, in order of appearance
  cl <- unique(cluster)
  lapply(cl, function(s) {
    i <- which(cluster == s)
    mat(V[i, i, drop = FALSE])
  })
}
i2_paper <- function(QE, k, p) {
  # the paper's (and mixmeta's) I2 = max((Q - df)/Q, 0), in percent
  df <- k - p
  100 * max((QE - df) / QE, 0)
}

# refit an rma.mv model with another optimizer and report the differences
conv_check <- function(fit) {
  if (!inherits(fit, "rma.mv")) return(NULL)
  alt <- try(suppressWarnings(update(fit, control = CTRL_MV_ALT)), silent = TRUE)
  if (inherits(alt, "try-error")) return(list(alt_optimizer = "optim/BFGS",
                                              status = "failed"))
  list(alt_optimizer = "optim/BFGS",
       loglik_diff = as.numeric(logLik(alt)) - as.numeric(logLik(fit)),
       max_abs_coef_diff = max(abs(alt$beta - fit$beta)))
}

extract <- function(r, paper = NULL, notes = character(0), ...) {
  fit <- r$fit
  call <- r$call
  fs <- fitstats(fit)
  ll <- logLik(fit)
  is_mv <- inherits(fit, "rma.mv")
  k <- fit$k
  p <- fit$p
  # Wald intervals of the fixed effects at another level (no refit, no profiling)
  ci90 <- if (is_mv) confint(fit, fixed = TRUE, level = 90)$fixed else
    confint(fit, fixed = TRUE, random = FALSE, level = 90)$fixed
  out <- list(
    call = call,
    fun = if (is_mv) "rma.mv" else "rma.uni",
    method = fit$method,
    k = k,
    p = p,
    coef_names = strarr(rownames(fit$beta)),
    coef = arr(fit$beta),
    se = arr(fit$se),
    zval = arr(fit$zval),
    pval = arr(fit$pval),
    ci_lb = arr(fit$ci.lb),
    ci_ub = arr(fit$ci.ub),
    vcov = mat(vcov(fit)),
    sigma2 = arr(if (is_mv && fit$withS) fit$sigma2 else NULL),
    tau2 = arr(if (!is_mv) fit$tau2 else if (fit$withG) fit$tau2 else NULL),
    rho = arr(if (is_mv && fit$withG) fit$rho else NULL),
    gamma2 = arr(if (is_mv && fit$withH) fit$gamma2 else NULL),
    phi = arr(if (is_mv && fit$withH) fit$phi else NULL),
    loglik = unname(fs["logLik:", 1]),
    deviance = unname(fs["deviance:", 1]),
    aic = unname(fs["AIC:", 1]),
    bic = unname(fs["BIC:", 1]),
    aicc = unname(fs["AICc:", 1]),
    parms = unname(attr(ll, "df")),
    QE = fit$QE,
    QEp = fit$QEp,
    QM = fit$QM,
    QMdf = arr(fit$QMdf),
    QMp = fit$QMp,
    test = fit$test,
    QE_df = k - p,
    I2_paper = i2_paper(fit$QE, k, p),
    fitted = arr(fitted(fit)),
    residuals = arr(residuals(fit)),
    ci90_lb = arr(ci90[, "ci.lb"]),
    ci90_ub = arr(ci90[, "ci.ub"])
  )
  if (is_mv) {
    out$struct <- strarr(fit$struct)
    if (fit$withS) {
      out$s_names <- strarr(fit$s.names)
      out$s_nlevels <- arr(fit$s.nlevels)
    }
    if (fit$withG && !(fit$struct[1] %in% c("GEN", "GDIAG"))) {
      out$g_names <- strarr(fit$g.names)
      out$g_nlevels_f <- arr(fit$g.nlevels.f)
      out$g_levels_f <- if (is.list(fit$g.levels.f))
        lapply(fit$g.levels.f, strarr) else strarr(fit$g.levels.f)
      out$g_levels_k <- arr(fit$g.levels.k)
    } else if (fit$withG) {
      out$g_names <- strarr(fit$g.names)  # GEN/GDIAG: inner columns + outer factor
    }
    out$vc_fixed <- lapply(fit$vc.fix, function(x) if (is.null(x)) I(logical(0)) else I(unname(x)))
    out$control_used <- r$control
    cc <- conv_check(fit)
    if (!is.null(cc)) out$convergence_check <- cc
  } else {
    out$I2 <- fit$I2
    out$H2 <- fit$H2
    out$tau2_se <- fit$se.tau2
  }
  out$paper <- if (is.null(paper)) setNames(list(), character(0)) else paper
  out$notes <- strarr(notes)
  extra <- list(...)
  for (nm in names(extra)) out[[nm]] <- extra[[nm]]
  out
}

# fit, with the call kept as a string (without the control argument, which is
# added here); the expression is evaluated in the calling environment.  For
# rma.mv, nlminb with rel.tol = 1e-12 sometimes stops with "false
# convergence" at the optimum; then progressively looser tolerances are tried
# (the control actually used is stored, and every rma.mv fit is cross-checked
# with a second optimizer in 'convergence_check').
CTRL_MV_SEQ <- list(CTRL_MV,
                    modifyList(CTRL_MV, list(rel.tol = 1e-11)),
                    modifyList(CTRL_MV, list(rel.tol = 1e-10)),
                    list(optimizer = "nlminb", iter.max = 10000, eval.max = 20000))
fit_str <- function(expr_string, env = parent.frame()) {
  e <- parse(text = expr_string)[[1]]
  fun <- as.character(e[[1]])
  ctrls <- if (fun == "rma.mv") CTRL_MV_SEQ else list(CTRL_UNI)
  for (ct in ctrls) {
    e2 <- e
    e2$control <- ct
    fit <- try(eval(e2, envir = env), silent = TRUE)
    if (!inherits(fit, "try-error")) break
  }
  if (inherits(fit, "try-error")) stop(fit)
  list(fit = fit, call = expr_string, control = ct)
}

write_group <- function(group, models, extra = list()) {
  x <- c(list(metafor_version = METAFOR_VERSION,
              R_version = R.version.string,
              group = group),
         extra,
         list(models = models))
  path <- file.path(out_dir, paste0(group, ".json"))
  jsonlite::write_json(x, path, digits = NA, auto_unbox = TRUE, pretty = TRUE,
                       na = "null")
  cat("wrote", path, "\n")
}
