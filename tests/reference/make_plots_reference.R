################################################################################
# Reference numbers for the plots: the percent weights that bm.forest prints
# beside each row, as metafor's weights() (rma.uni: w_i = 1/(v_i + tau^2);
# rma.mv: the diagonal of W = Sigma^-1, both normalised to 100), and the
# pooled estimate and intervals that its diamond spans (predict()).
#
# Run from the repository root (reads only bayesmeta/datasets/data/*.csv):
#     Rscript tests/reference/make_plots_reference.R
# Writes tests/reference/fixtures/plots.json.  Needs metafor (3.8-1), jsonlite.
#
# Cases: bcg (rma REML of logrr), school (rma.mv REML, ~ 1 | district/study),
# berkey (rma.mv REML, ~ outcome | trial, struct = "UN", V from v1i/v2i).
################################################################################

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

data_dir <- file.path("bayesmeta", "datasets", "data")
out_dir <- file.path("tests", "reference", "fixtures")
rd <- function(name) read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
CTRL_UNI <- list(threshold = 1e-14, maxiter = 10000)
CTRL_MV <- list(optimizer = "nlminb", rel.tol = 1e-12, iter.max = 10000, eval.max = 20000)

entry <- function(fit, call) {
  p <- predict(fit)
  list(call = call, weights = unname(as.numeric(weights(fit))),
       pred = unname(p$pred[1]), ci_lb = unname(p$ci.lb[1]), ci_ub = unname(p$ci.ub[1]),
       pi_lb = unname(p$pi.lb[1]), pi_ub = unname(p$pi.ub[1]))
}

bcg <- rd("bcg")
fit_bcg <- rma(logrr, logrrvar, data = bcg, method = "REML", control = CTRL_UNI)

school <- rd("school")
fit_school <- rma.mv(effect, var, random = ~ 1 | district/study, data = school, method = "REML",
                     control = CTRL_MV)

berkey <- rd("berkey1998")
V_berkey <- bldiag(lapply(split(berkey[, c("v1i", "v2i")], berkey$trial), as.matrix))
fit_berkey <- rma.mv(yi, V_berkey, mods = ~ outcome - 1, random = ~ outcome | trial, struct = "UN",
                     data = berkey, method = "REML", control = CTRL_MV)

models <- list(
  bcg = entry(fit_bcg, "rma(logrr, logrrvar, data = bcg, method = 'REML')"),
  school = entry(fit_school, "rma.mv(effect, var, random = ~ 1 | district/study, data = school)"),
  berkey = list(call = "rma.mv(yi, V_berkey, mods = ~ outcome - 1, random = ~ outcome | trial, struct = 'UN')",
                weights = unname(as.numeric(weights(fit_berkey))))
)
x <- list(metafor_version = as.character(packageVersion("metafor")), R_version = R.version.string,
          group = "plots", models = models)
path <- file.path(out_dir, "plots.json")
jsonlite::write_json(x, path, digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", path, "\n")
