################################################################################
# Reference fixtures for bm.escalc from R's metafor::escalc.
#
# Run from the repository root:
#     Rscript tests/reference/make_escalc_reference.R
#
# Writes tests/reference/fixtures/escalc.json: for every case, the input
# columns, the escalc() arguments and the resulting yi and vi.
################################################################################

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

# 2x2 tables with zero cells (one table with a single zero, one with two zeros
# in one arm, one with no events at all) beside BCG's complete tables.
bcg <- dat.bcg[, c("tpos", "tneg", "cpos", "cneg")]
names(bcg) <- c("ai", "bi", "ci", "di")
tables <- rbind(bcg, data.frame(ai = c(0, 0, 3, 0), bi = c(20, 15, 17, 25), ci = c(4, 0, 0, 2),
                                di = c(16, 15, 20, 0)))
# proportions, with no events and with all events
props <- data.frame(xi = c(5, 0, 12, 30, 7), ni = c(40, 25, 12, 60, 7))
rates <- dat.hart1999[, c("x1i", "t1i", "x2i", "t2i")]
rates <- rbind(rates, data.frame(x1i = 0, t1i = 100, x2i = 3, t2i = 120))
means <- dat.normand1999[, c("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")]
means$m1i <- abs(means$m1i) + 1  # ROM needs positive means
means$m2i <- abs(means$m2i) + 1
cors <- dat.mcdaniel1994[, c("ri", "ni")]

case <- function(name, measure, data, args = list()) {
  es <- do.call(escalc, c(list(measure = measure), as.list(data), args))
  list(name = name, measure = measure, args = args, data = as.list(data),
       yi = as.numeric(es$yi), vi = as.numeric(es$vi))
}

cases <- list(
  case("RR", "RR", tables),
  case("OR", "OR", tables),
  case("RD", "RD", tables),
  case("OR add to all", "OR", tables, list(to = "all")),
  case("OR no correction", "OR", tables[1:13, ], list(add = 0)),
  case("RR add 0.1 if0all", "RR", tables, list(add = 0.1, to = "if0all")),
  case("OR drop00", "OR", tables, list(drop00 = TRUE)),
  case("RD drop00 to all", "RD", tables, list(drop00 = TRUE, to = "all")),
  case("PLO drop00", "PLO", props, list(drop00 = TRUE)),
  case("PLN", "PLN", props),
  case("PLO", "PLO", props),
  case("PR", "PR", props),
  case("IRR", "IRR", rates),
  case("MN", "MN", setNames(means[, c("m1i", "sd1i", "n1i")], c("mi", "sdi", "ni"))),
  case("MD", "MD", means),
  case("SMD", "SMD", means),
  case("ROM", "ROM", means),
  case("COR", "COR", cors),
  case("ZCOR", "ZCOR", cors)
)

out <- list(metafor_version = as.character(packageVersion("metafor")), cases = cases)
jsonlite::write_json(out, "tests/reference/fixtures/escalc.json", digits = NA, auto_unbox = TRUE,
                     pretty = TRUE, na = "null")
cat("wrote tests/reference/fixtures/escalc.json\n")
