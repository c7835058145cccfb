"""Descriptions of the bundled data sets (source and columns)."""

CATALOG = {
    "school": """Konstantopoulos (2011): modified school calendar and reading achievement; 56 studies in 11 districts.
Columns: district (district id), study (study id within district), effect (standardized mean difference),
var (sampling variance), year (publication year). From R package mixmeta.""",
    "thrombolytic": """Thompson et al. (2001): 20 trials of thrombolytic therapy, absolute risk differences at several
treatment delays. Columns: trial (trial name), time2treat (hours from onset to treatment), dtreat/ntreat and
dcontr/ncontr (deaths and patients in treated and control arms), risktreat, riskcontr (risks), absrisk
(absolute risk difference), var (its sampling variance). From R package mixmeta.""",
    "bcg": """Colditz et al. (1994): 13 trials of BCG vaccine against tuberculosis. Columns: trial, author, year,
tpos/tneg (TB cases / non-cases, vaccinated), cpos/cneg (control), ablat (absolute latitude), alloc (allocation
method), logrr/logrrvar and logor/logorvar (log relative risk, log odds ratio and sampling variances).
From R package mixmeta.""",
    "smoking": """Hasselblad (1998): 24 trials of four smoking-cessation interventions (A no contact, B self-help,
C individual counselling, D group counselling). Columns: study, design (treatments compared), dA..dD and
nA..nD (quitters and participants per arm), yB, yC, yD (log odds ratios versus A), SBB, SBC, SBD, SCC, SCD, SDD
(vech of their within-study covariance matrix). Trials without arm A were augmented with 0.01 individuals and
0.001 successes. From R package mixmeta.""",
    "gliomas": """Fine et al. (1993): 17 trials of treatments for malignant gliomas, survival at 6, 12, 18 and 24 months.
Columns: study, time (months), ntreat/ncontr (patients), streat/scontr (survivors), logOR (log odds ratio of
survival), logORvar (sampling variance). From R package mixmeta.""",
    "alcohol": """Pooling Project: alcohol intake and colorectal cancer in 8 cohort studies. Columns: id (study), type
("ci" cumulative incidence or "ir" incidence rate), dose (g/day), cases, peryears (person-years), logrr (log
relative risk versus the reference category), se (its standard error; NA on the reference rows).
From R package mixmeta.""",
    "berkey98": """Berkey et al. (1998): 5 trials of periodontal surgery, two outcomes. Columns: pubyear, npat (patients),
PD (probing depth), AL (attachment level), var_PD, cov_PD_AL, var_AL (within-study covariance matrix).
From R package mixmeta.""",
    "dbs": """Ishak et al. (2007): deep-brain stimulation in Parkinson's disease, wide format. Columns: author, year,
eff_month3/var_month3, eff_month6/var_month6, eff_month12/var_month12, eff_long/var_long (mean difference
in UPDRS motor score and sampling variance at 3, 6, 12 months and long term), duration (disease duration),
baseline (baseline score). From R package mixmeta.""",
    "hyp": """Hypertension trials with two outcomes. Columns: study, sbp/sbp_se and dbp/dbp_se (treatment effects on
systolic and diastolic blood pressure with standard errors), rho (within-study correlation), ish (isolated
systolic hypertension indicator). From R package mixmeta.""",
    "p53": """p53 and mortality: two log hazard ratios per study. Columns: study, y1, y2 (log hazard ratios),
V1, V2 (sampling variances); missing outcomes are NA. From R package mixmeta.""",
    "fibrinogen": """Fibrinogen Studies Collaboration: multi-parameter dose-response of fibrinogen and coronary heart
disease in 31 cohorts. Columns: cohort, b2..b5 (log hazard ratios of categories 2-5 versus 1), V_i_j (their
within-study covariance matrix, upper triangle). From R package mixmeta.""",
    "hsls": """High School Longitudinal Study: three regression coefficients by race group. Columns: race, b1..b3
(coefficients), V11..V33 (upper triangle of their covariance matrix). From R package mixmeta.""",
    "konstantopoulos2011": """Konstantopoulos (2011) modified school calendar, as in metadat (dat.konstantopoulos2011).
Columns: district (district id), school (school id within district), study (study id), year, yi (standardized
mean difference), vi (sampling variance).
From R package metadat.""",
    "berkey1998": """Berkey et al. (1998) periodontal surgery, long format, as in metadat (dat.berkey1998). Columns: trial,
author, year, ni (patients), outcome ("PD" or "AL"), yi (mean difference), vi (sampling variance), v1i, v2i
(row of the within-trial covariance matrix for PD and AL). From R package metadat.""",
    "ishak2007": """Ishak et al. (2007) deep-brain stimulation, wide format, as in metadat (dat.ishak2007). Columns: study,
y1i..y4i (mean change at 3, 6, 12 months and long term), v1i..v4i (sampling variances), mdur (mean disease
duration), mbase (mean baseline score). From R package metadat.""",
    "hasselblad1998": """Hasselblad (1998) smoking cessation network, arm-level, as in metadat (dat.hasselblad1998).
Columns: id (row), study, authors, year, trt (treatment: no_contact, self_help, ind_counseling, grp_counseling),
xi (quitters), ni (participants). From R package metadat.""",
    "habitat": """Simulated bivariate meta-analysis (bayesmeta, seed 2026): 150 studies of two outcomes (A, B), each
missing with probability 0.1 (276 rows), whose heterogeneity SDs and between-outcome correlation depend on the
study's habitat. Columns: study, outcome ("A"/"B"), habitat ("marine"/"terrestrial"), yi (effect size), vi
(sampling variance). Within a study the sampling correlation is 0.4: V = bm.vcalc("vi", "study", obs="outcome",
rho=0.4, data=dat). True values: log tau^2 = -3.0 (A), -2.5 (B), +1.0 (A, terrestrial), -1.0 (B, terrestrial);
atanh(rho) = 0.2 + 1.0 terrestrial; means 0.3 (A), -0.1 (B). Used by examples/coscale.py.""",
    "bangertdrowns2004": """Bangert-Drowns et al. (2004): 48 studies of school-based writing-to-learn interventions, as in
metadat (dat.bangertdrowns2004). Columns: id, author, year, grade (1 elementary, 2 middle, 3 high school,
4 college), length (treatment length in weeks), minutes (minutes per assignment), wic (tasks completed in
class), feedback, info, pers, imag (informational, personal, imaginative writing), meta (prompts for
metacognitive reflection) (0/1 indicators), subject, ni (total sample size), yi (bias-corrected standardized
mean difference), vi (sampling variance). From R package metadat.""",
}
