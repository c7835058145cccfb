################################################################################
# Bivariate location-coscale reference from R's drmTMB for the bayesmeta tests.
#
# drmTMB (Nakagawa; itchyshin/drmTMB on GitHub, version 0.7.0, commit
# fb8e6c1a5e297941de1f7b05cf516ace0d35dbe9) is not on CRAN nor in Debian. How it
# was installed on this machine type (Debian bookworm, R 4.2.2):
#
#   1. apt-get update && apt-get install -y r-base-core r-cran-tmb r-cran-rcppeigen \
#        r-cran-matrix r-cran-cli r-cran-lifecycle r-cran-jsonlite
#      (Debian gives TMB 1.9.2, Matrix 1.5-3, RcppEigen 0.3.3.9.3, cli 3.6.0,
#      lifecycle 1.0.3; its other Imports, methods/stats/utils, come with R.)
#   2. Get the source tree of that commit into /tmp/drmTMB. Only DESCRIPTION,
#      NAMESPACE, LICENSE, R/, src/, inst/, man/ and vignettes/ are needed (the
#      repository's docs/ folder holds large files that a partial copy may lack,
#      so `git archive HEAD` of a partial copy can fail; list and export just
#      those paths, e.g. with `git ls-tree -r HEAD -- R src ...` + `git cat-file blob`).
#   3. Relax two version floors in /tmp/drmTMB/DESCRIPTION that Debian's packages
#      do not meet: `TMB (>= 1.9.6)` -> `TMB` and `Matrix (>= 1.6.0)` -> `Matrix`.
#      They were added upstream in commit ed7e392d as "ABI-safety floors (were
#      bare)", not for a feature; TMB 1.9.2 and Matrix 1.5-3 are Debian's matched
#      pair, the package compiles, loads and fits with them:
#        sed -i 's/Matrix (>= 1.6.0)/Matrix/; s/TMB (>= 1.9.6)/TMB/' /tmp/drmTMB/DESCRIPTION
#   4. mkdir -p /tmp/Rlib && MAKEFLAGS=-j2 R CMD INSTALL --no-build-vignettes -l /tmp/Rlib /tmp/drmTMB
#      (compiling src/drmTMB.cpp takes about 6 minutes on 2 cores).
#
# Run from the repository root:
#     R_LIBS=/tmp/Rlib Rscript tests/reference/make_drmtmb_reference.R
# (set DRMTMB_COMMIT=<sha> if a different commit was installed).
#
# Model: the bundled simulated data set habitat (bayesmeta/datasets/data/
# habitat.csv; outcomes A and B, sampling correlation 0.4 within a study),
# restricted to the studies that report both outcomes (drmTMB's bivariate
# meta_V route needs complete pairs), fitted as drmTMB's bivariate Gaussian
# location-coscale model with known sampling covariance:
#
#   (yA_i, yB_i) ~ N((mu1, mu2), V_i + Omega_i),
#   Omega_i = [[s1_i^2, r_i s1_i s2_i], [r_i s1_i s2_i, s2_i^2]],
#   log s1_i = X_i b_sigma1,  log s2_i = X_i b_sigma2,  r_i = 0.999999 tanh(X_i b_rho12),
#   X_i = (1, terrestrial_i)
#
# by ML (drmTMB's default) and by REML (drmTMB's REML = TRUE, which integrates
# the two means out as TMB random effects). Writes
# tests/reference/fixtures/drmtmb_coscale.json.
#
# Notes recorded in the fixture:
# * rho12's link (src/drmTMB.cpp): rho12 = 0.999999 * tanh(eta_rho12). The
#   fixture also holds the coefficients on the atanh(rho) scale (bayesmeta's zeta),
#   zeta0 = atanh(c tanh(b0)), zeta1 = atanh(c tanh(b0 + b1)) - zeta0, c = 0.999999,
#   with delta-method SEs.
# * SEs: drmTMB's SEs come from the joint Hessian of all parameters (sdreport).
#   For mu1/mu2 that is larger than metafor's/bayesmeta's (X' Sigma^-1 X)^-1,
#   which treats the variance parameters as known; the fixture also holds that
#   conditional SE, computed here from drmTMB's own estimates.
# * logLik: ML is the full normal log-density (TMB's MVNORM includes the
#   log(2 pi) constants). drmTMB's REML logLik is the likelihood with the means
#   integrated out (Laplace = exact here), which lacks metafor's
#   + 0.5 log det(X'X) term; that constant is recorded as reml_offset_to_metafor.
# * REML means: coef(fit) vs estimate_at_optimum, see mu_at_optimum() below.
################################################################################

suppressPackageStartupMessages({
  library(drmTMB)
  library(jsonlite)
})

out_dir <- file.path("tests", "reference", "fixtures")
data_dir <- file.path("bayesmeta", "datasets", "data")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
DRMTMB_COMMIT <- Sys.getenv("DRMTMB_COMMIT", "fb8e6c1a5e297941de1f7b05cf516ace0d35dbe9")
RHO_GUARD <- 0.999999  # src/drmTMB.cpp: rho12 = 0.999999 * tanh(eta_rho12)
cat("drmTMB version:", as.character(packageVersion("drmTMB")), "commit", DRMTMB_COMMIT, "\n")

arr <- function(x) I(unname(as.numeric(x)))

d <- read.csv(file.path(data_dir, "habitat.csv"), stringsAsFactors = FALSE)
A <- d[d$outcome == "A", ]
B <- d[d$outcome == "B", ]
w <- merge(A, B, by = c("study", "habitat"), suffixes = c("1", "2"))
w <- w[order(match(w$study, unique(d$study))), ]  # the data's study order
rownames(w) <- NULL
cat("complete studies:", nrow(w), "of", length(unique(d$study)), "\n")

V <- meta_vcov_bivariate(w$vi1, w$vi2, cor12 = rep(0.4, nrow(w)))
form <- drm_formula(
  mu1 = yi1 ~ 1 + meta_V(V = V), mu2 = yi2 ~ 1,
  sigma1 = ~ habitat, sigma2 = ~ habitat, rho12 = ~ habitat
)

# (X' Sigma^-1 X)^-1 at the estimates: the SE of the means with the variance
# parameters treated as known (metafor's and bayesmeta's convention).
conditional_se <- function(cf) {
  Xs <- model.matrix(~ habitat, w)
  s1 <- exp(drop(Xs %*% cf$sigma1))
  s2 <- exp(drop(Xs %*% cf$sigma2))
  r <- RHO_GUARD * tanh(drop(Xs %*% cf$rho12))
  n <- nrow(w)
  i1 <- seq.int(1L, by = 2L, length.out = n)
  i2 <- i1 + 1L
  S <- V
  S[cbind(i1, i1)] <- S[cbind(i1, i1)] + s1^2
  S[cbind(i2, i2)] <- S[cbind(i2, i2)] + s2^2
  S[cbind(i1, i2)] <- S[cbind(i1, i2)] + r * s1 * s2
  S[cbind(i2, i1)] <- S[cbind(i2, i1)] + r * s1 * s2
  X <- matrix(0, 2L * n, 2L)
  X[i1, 1] <- 1
  X[i2, 2] <- 1
  sqrt(diag(solve(crossprod(X, solve(S, X)))))
}

# rho12 coefficients (b0, b1) -> atanh(rho) coefficients, with the delta method
to_atanh <- function(b, vc) {
  g <- function(e) atanh(RHO_GUARD * tanh(e))
  dg <- function(e) RHO_GUARD * (1 - tanh(e)^2) / (1 - (RHO_GUARD * tanh(e))^2)
  z0 <- g(b[1])
  z1 <- g(b[1] + b[2]) - z0
  J <- rbind(c(dg(b[1]), 0), c(dg(b[1] + b[2]) - dg(b[1]), dg(b[1] + b[2])))
  list(estimate = c(z0, z1), se = sqrt(diag(J %*% vc %*% t(J))))
}

# The means at the optimum. Under ML they are coef(fit). Under REML they are TMB
# random effects, and drmTMB 0.7.0's coef(fit) reads them through
# obj$env$parList(opt$par), i.e. from obj$env$last.par, which TMB::sdreport()'s
# finite-difference stencil has left at a perturbed point (here the rho12 slope
# 1e-3 off): coef(fit)$mu1/mu2 are then the GLS means at that perturbed point,
# 5e-5 relative off. sdreport's par.random holds them at the optimum.
mu_at_optimum <- function(fit) {
  if (!isTRUE(fit$REML)) return(c(coef(fit)$mu1, coef(fit)$mu2))
  fit$sdr$par.random[c("beta_mu1", "beta_mu2")]
}

extract <- function(fit) {
  cf <- coef(fit)
  se <- sqrt(diag(vcov(fit)))
  se_of <- function(dpar) se[startsWith(names(se), paste0(dpar, ":"))]
  rho_names <- grep("^rho12:", rownames(vcov(fit)), value = TRUE)
  zeta <- to_atanh(cf$rho12, vcov(fit)[rho_names, rho_names])
  list(
    estimator = fit$estimator,
    REML = isTRUE(fit$REML),
    convergence = fit$opt$convergence,
    max_abs_gradient = max(abs(fit$obj$gr(fit$opt$par))),  # outer (fixed) parameters
    logLik = as.numeric(logLik(fit)),
    df = attr(logLik(fit), "df"),
    mu = list(terms = I(c("mu1:(Intercept)", "mu2:(Intercept)")),
              estimate = arr(c(cf$mu1, cf$mu2)),
              estimate_at_optimum = arr(mu_at_optimum(fit)),
              se = arr(c(se_of("mu1"), se_of("mu2"))),
              se_conditional = arr(conditional_se(cf))),
    sigma1 = list(terms = I(names(cf$sigma1)), estimate = arr(cf$sigma1), se = arr(se_of("sigma1"))),
    sigma2 = list(terms = I(names(cf$sigma2)), estimate = arr(cf$sigma2), se = arr(se_of("sigma2"))),
    rho12 = list(terms = I(names(cf$rho12)), estimate = arr(cf$rho12), se = arr(se_of("rho12"))),
    rho12_atanh = list(terms = I(names(cf$rho12)), estimate = arr(zeta$estimate), se = arr(zeta$se))
  )
}

fit_ml <- drmTMB(form, family = biv_gaussian(), data = w)
fit_reml <- drmTMB(form, family = biv_gaussian(), data = w, REML = TRUE)
stopifnot(fit_ml$opt$convergence == 0L, fit_reml$opt$convergence == 0L)

Xm <- cbind(rep(c(1, 0), nrow(w)), rep(c(0, 1), nrow(w)))  # outcome A, outcome B
models <- list(ML = extract(fit_ml), REML = extract(fit_reml))
models$REML$reml_offset_to_metafor <- 0.5 * as.numeric(determinant(crossprod(Xm))$modulus)

out <- list(
  source = "tests/reference/make_drmtmb_reference.R",
  data = "habitat (bundled), studies with both outcomes A and B; sampling correlation 0.4",
  formula = paste(
    "drm_formula(mu1 = yi1 ~ 1 + meta_V(V = V), mu2 = yi2 ~ 1, sigma1 = ~ habitat,",
    "sigma2 = ~ habitat, rho12 = ~ habitat), family = biv_gaussian(),",
    "V = meta_vcov_bivariate(vi1, vi2, cor12 = 0.4)"
  ),
  links = list(
    mu = "identity",
    sigma = "log SD: log(sigma_k) = X b_sigma_k (bayesmeta alpha = 2 b_sigma)",
    rho12 = "rho12 = 0.999999 * tanh(X b_rho12) (src/drmTMB.cpp); rho12_atanh holds atanh(rho) coefficients"
  ),
  notes = paste(
    "se: drmTMB's sdreport (joint Hessian). mu se_conditional: (X' Sigma^-1 X)^-1 at the estimates.",
    "ML logLik is the full normal log-density. REML logLik lacks metafor's + 0.5 log det(X'X)",
    "(reml_offset_to_metafor). REML mu: coef(fit) is read at sdreport's perturbed last.par;",
    "estimate_at_optimum is sdreport's par.random. drmTMB was installed with its TMB >= 1.9.6 / Matrix >= 1.6.0",
    "DESCRIPTION floors relaxed to Debian's TMB 1.9.2 / Matrix 1.5-3."
  ),
  drmtmb_version = as.character(packageVersion("drmTMB")),
  drmtmb_commit = DRMTMB_COMMIT,
  tmb_version = as.character(packageVersion("TMB")),
  r_version = paste(R.version$major, R.version$minor, sep = "."),
  studies = I(w$study),
  models = models
)
path <- file.path(out_dir, "drmtmb_coscale.json")
jsonlite::write_json(out, path, digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", path, "\n")
