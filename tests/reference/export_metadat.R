################################################################################
# Export metadat data sets used by bayesmeta's examples/tests as CSV.
#
# Run from the repository root:
#     Rscript tests/reference/export_metadat.R
#
# Writes (write.csv, row.names = FALSE, NA for missing) to
# bayesmeta/datasets/data/. Citations and column meanings are in
# bayesmeta/datasets/data/README.md.
################################################################################

suppressPackageStartupMessages(library(metadat))

out_dir <- file.path("bayesmeta", "datasets", "data")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)

cat("metadat version:", as.character(packageVersion("metadat")), "\n")

sets <- c(konstantopoulos2011 = "dat.konstantopoulos2011",
          berkey1998 = "dat.berkey1998",
          ishak2007 = "dat.ishak2007",
          hasselblad1998 = "dat.hasselblad1998",
          bangertdrowns2004 = "dat.bangertdrowns2004")

for (nm in names(sets)) {
  x <- get(sets[[nm]], envir = asNamespace("metadat"))
  x <- as.data.frame(x)
  path <- file.path(out_dir, paste0(nm, ".csv"))
  write.csv(x, path, row.names = FALSE)
  cat("wrote", path, "(", nrow(x), "rows,", ncol(x), "columns )\n")
}
