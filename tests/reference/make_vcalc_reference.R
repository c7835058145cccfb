################################################################################
# Reference fixtures for bm.vcalc from R's metafor::vcalc, and two rma.mv fits
# with V = vcalc(...).
#
# Run from the repository root:
#     Rscript tests/reference/make_vcalc_reference.R
#
# Writes tests/reference/fixtures/vcalc.json: for every case, the input
# columns, the vcalc() arguments (our names: time = metafor's time1) and the
# resulting blocks, one per cluster in order of first appearance, with the
# 1-based rows of each block.
################################################################################

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

labelled <- function(R) list(labels = rownames(R), values = unname(R))

blocks_of <- function(V, cluster) {
  lapply(unique(cluster), function(u) {
    rows <- which(cluster == u)
    list(cluster = u, rows = rows, block = unname(V[rows, rows, drop = FALSE]))
  })
}

# args: a list of our argument names -> column names of `data`, plus rho/phi values;
# call: the same vcalc() call in metafor's terms.
case <- function(name, data, args, call) {
  V <- eval(call, envir = data)
  list(name = name, args = args, data = as.list(data), blocks = blocks_of(V, data[[args$cluster]]))
}

assink <- dat.assink2016
ishak <- reshape(dat.ishak2007, direction = "long", idvar = "study", v.names = c("yi", "vi"),
                 varying = list(c(2, 4, 6, 8), c(3, 5, 7, 9)))
ishak <- ishak[order(ishak$study, ishak$time), ]
ishak <- ishak[!is.na(ishak$yi), c("study", "time", "yi", "vi")]
rownames(ishak) <- NULL

knapp <- dat.knapp2017
knapp$task.diff <- unlist(lapply(split(knapp, knapp$study), function(x) {
  task.int <- as.integer(factor(x$task))
  diff.int <- as.integer(factor(x$difficulty))
  diff.int[is.na(diff.int)] <- 1
  paste0(task.int, ".", diff.int)}))
R_knapp <- matrix(0.4, nrow = 8, ncol = 8)
R_knapp[5:8, 1:4] <- R_knapp[1:4, 5:8] <- 0.28
diag(R_knapp[1:4, 5:8]) <- 0.7
diag(R_knapp[5:8, 1:4]) <- 0.7
diag(R_knapp) <- 1
rownames(R_knapp) <- colnames(R_knapp) <- paste0(rep(1:2, each = 4), ".", 1:4)
knapp <- knapp[, c("study", "yi", "vi", "group1", "group2", "n_sz", "n_hc", "task.diff")]

R_deltype <- matrix(c(1, 0.3, 0.5, 0.3, 1, 0.6, 0.5, 0.6, 1), 3, 3,
                    dimnames = list(c("covert", "general", "overt"), c("covert", "general", "overt")))

# synthetic: clusters interleaved (non-contiguous rows), two types, three time points, a shared
# control group with unequal sizes
set.seed(20240501)
syn <- data.frame(cl = c("s1", "s2", "s1", "s3", "s2", "s1", "s3", "s2", "s1", "s3", "s1", "s2"),
                  type = c("a", "a", "b", "a", "b", "a", "a", "a", "b", "b", "a", "b"),
                  time = c(0, 0, 0, 1, 0, 2, 3, 1, 1, 1, 2.5, 1),
                  g1 = c("T1", "T1", "T1", "T1", "T1", "T2", "T1", "T2", "T2", "T1", "T1", "T2"),
                  g2 = "C",
                  n1 = c(20, 30, 20, 15, 30, 25, 15, 35, 25, 15, 22, 35),
                  n2 = c(40, 30, 40, 18, 30, 40, 18, 30, 40, 18, 40, 30))
syn$vi <- round(runif(nrow(syn), 0.02, 0.2), 4)
syn$yi <- round(rnorm(nrow(syn), 0.3, 0.2), 4)
R_syn <- matrix(c(1, 0.35, 0.35, 1), 2, 2, dimnames = list(c("a", "b"), c("a", "b")))

cases <- list(
  case("assink obs", assink, list(vi = "vi", cluster = "study", obs = "esid", rho = 0.6),
       quote(vcalc(vi, cluster = study, obs = esid, rho = 0.6))),
  case("assink type obs", assink,
       list(vi = "vi", cluster = "study", type = "deltype", obs = "esid", rho = c(0.7, 0.5)),
       quote(vcalc(vi, cluster = study, type = deltype, obs = esid, rho = c(0.7, 0.5)))),
  case("assink type matrix", assink,
       list(vi = "vi", cluster = "study", type = "deltype", obs = "esid", rho = list(0.6, labelled(R_deltype))),
       quote(vcalc(vi, cluster = study, type = deltype, obs = esid, rho = list(0.6, R_deltype)))),
  case("ishak AR", ishak, list(vi = "vi", cluster = "study", time = "time", phi = 0.97),
       quote(vcalc(vi, cluster = study, time1 = time, phi = 0.97))),
  case("kalaian type", dat.kalaian1996, list(vi = "vi", cluster = "study", type = "outcome", rho = 0.66),
       quote(vcalc(vi, cluster = study, type = outcome, rho = 0.66))),
  case("knapp shared groups", knapp,
       list(vi = "vi", cluster = "study", grp1 = "group1", grp2 = "group2", w1 = "n_sz", w2 = "n_hc",
            obs = "task.diff", rho = labelled(R_knapp)),
       quote(vcalc(vi, cluster = study, grp1 = group1, grp2 = group2, w1 = n_sz, w2 = n_hc,
                   obs = task.diff, rho = R_knapp))),
  case("knapp groups equal weights", knapp, list(vi = "vi", cluster = "study", grp1 = "group1", grp2 = "group2"),
       quote(vcalc(vi, cluster = study, grp1 = group1, grp2 = group2))),
  case("synthetic all", syn,
       list(vi = "vi", cluster = "cl", type = "type", time = "time", phi = 0.8, rho = 0.4,
            grp1 = "g1", grp2 = "g2", w1 = "n1", w2 = "n2"),
       quote(vcalc(vi, cluster = cl, type = type, time1 = time, phi = 0.8, rho = 0.4,
                   grp1 = g1, grp2 = g2, w1 = n1, w2 = n2))),
  case("synthetic type matrix and time", syn,
       list(vi = "vi", cluster = "cl", type = "type", time = "time", phi = 0.5, rho = labelled(R_syn)),
       quote(vcalc(vi, cluster = cl, type = type, time1 = time, phi = 0.5, rho = R_syn)))
)

fit_summary <- function(name, fit, data, args, random) {
  list(name = name, args = args, random = random, data = as.list(data),
       coef = unname(coef(fit)), se = unname(fit$se), sigma2 = fit$sigma2,
       loglik = as.numeric(logLik(fit)), method = fit$method)
}

V_assink <- vcalc(vi, cluster = study, obs = esid, data = assink, rho = 0.6)
fit_assink <- rma.mv(yi, V_assink, random = ~ 1 | study / esid, data = assink)
V_syn <- with(syn, vcalc(vi, cluster = cl, type = type, time1 = time, phi = 0.8, rho = 0.4,
                         grp1 = g1, grp2 = g2, w1 = n1, w2 = n2))
syn$row <- seq_len(nrow(syn))
fit_syn <- rma.mv(yi, V_syn, mods = ~ type, random = ~ 1 | cl, data = syn, method = "ML")

models <- list(
  fit_summary("assink three-level", fit_assink, assink[, c("study", "esid", "yi", "vi")],
              list(vi = "vi", cluster = "study", obs = "esid", rho = 0.6), "~ 1 | study/esid"),
  fit_summary("synthetic ML", fit_syn, syn, cases[[8]]$args, "~ 1 | cl")
)

out <- list(metafor_version = as.character(packageVersion("metafor")), cases = cases, models = models)
jsonlite::write_json(out, "tests/reference/fixtures/vcalc.json", digits = NA, auto_unbox = TRUE,
                     pretty = TRUE, na = "null")
cat("wrote tests/reference/fixtures/vcalc.json\n")
