# Reference values for bayesmeta.splines (natural cubic splines, splines::ns).
# Run from the repository root:  Rscript tests/reference/make_ns_reference.R
library(splines)
library(jsonlite)

alcohol <- read.csv(file.path("bayesmeta", "datasets", "data", "alcohol.csv"))
dose <- alcohol$dose
xdf <- c(0.3, 1.1, 2.5, 2.5, 3.9, 4.2, 5.0, 6.8, 7.7, 8.1, 9.9, 12.4, 15.0, 21.7)

case <- function(name, x, basis, args) {
  list(name = name, x = as.numeric(x), args = args,
       knots = as.numeric(attr(basis, "knots")),
       boundary_knots = as.numeric(attr(basis, "Boundary.knots")),
       basis = unname(lapply(seq_len(nrow(basis)), function(i) as.numeric(basis[i, ]))))
}

b_a <- ns(dose, knots = c(10, 25))
q <- unname(quantile(dose, c(0.25, 0.75)))
b_b <- ns(dose, knots = q)
b_c <- ns(xdf, df = 4)
b_d <- ns(dose, knots = c(10, 25), intercept = TRUE)
b_e <- ns(dose, knots = c(10, 25), Boundary.knots = c(5, 40))
newx <- c(-5, 0, 3.3, 10, 17.5, 25, 40, 60, 80)
b_f <- predict(b_a, newx)
b_g <- ns(xdf, df = 3, Boundary.knots = c(2, 12), intercept = TRUE)

cases <- list(
  case("a_knots", dose, b_a, list(knots = c(10, 25))),
  case("b_quantile_knots", dose, b_b, list(knots = q)),
  case("c_df4", xdf, b_c, list(df = 4)),
  case("d_intercept", dose, b_d, list(knots = c(10, 25), intercept = TRUE)),
  case("e_boundary_extrapolation", dose, b_e,
       list(knots = c(10, 25), boundary_knots = c(5, 40))),
  case("f_predict", newx, b_f,
       list(knots = c(10, 25), boundary_knots = as.numeric(attr(b_a, "Boundary.knots")))),
  case("g_df3_boundary_intercept", xdf, b_g,
       list(df = 3, boundary_knots = c(2, 12), intercept = TRUE))
)

out <- file.path("tests", "reference", "fixtures", "ns_basis.json")
write_json(list(r_version = R.version.string, cases = cases), out,
           digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", out, "\n")
