"""Cluster-robust (sandwich) inference for ML/REML fits, as metafor's ``robust`` and clubSandwich.

With the model's marginal covariance Sigma (V plus the random effects at the
estimates), weights W = Sigma^-1, residuals e = y - X b and bread
B = (X'W X)^-1, the sandwich covariance of b is

    B [ sum_c X_c' W_c A_c e_c e_c' A_c' W_c X_c ] B        (c: clusters)

``adjust="CR0"``: A_c = I (metafor's ``robust(..., adjust = FALSE)``);
``"CR1"``: CR0 times J / (J - p) (J clusters, p coefficients; metafor's
default); both with t-tests and F-tests on J - p degrees of freedom. When a
cluster splits rows that share a random effect or a sampling covariance, the
scores use the full weights, ``(X'W)[:, c] e_c``, as metafor does.

``adjust="CR2"``: the bias-reduced linearisation of Bell and McCaffrey (2002)
and Pustejovsky and Tipton (2018), with the model itself as working model
(clubSandwich's default for rma.uni and rma.mv fits: target Sigma,
``inverse_var = TRUE``): with D_c'D_c = Sigma_c,

    A_c = D_c' [ D_c (Sigma_c - X_c B X_c') D_c' ]^(-1/2) D_c,

t-tests with Satterthwaite degrees of freedom (``coef_test``), intervals
(``conf_int``) and Wald tests by the Hotelling T^2 approximation ``HTZ``
(``Wald_test``), all as clubSandwich 0.5.8 computes them. The J x J arrays of
clubSandwich's degrees of freedom are reduced to sums over clusters of p x p
matrices, so that nothing grows with J^2 and nothing with n^2: everything is
computed per cluster (clusters of equal size are stacked and padded, as the
likelihood's blocks). CR2 needs every cluster to contain whole independent
blocks (clubSandwich refuses random effects not nested in the clusters).

Eigenvalues below 1e-12 times the largest are treated as zero in the matrix
inverse square roots (clubSandwich's ``matrix_power`` uses an absolute 1e-12).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..design.blocks import Batch, build_batches
from ..errors import RobustTestWarning, SpecificationError, format_rows, warn
from ..likelihood.profiled import coscale_at, marginal_covariance
from ..spec.random_terms import ROW_TERM
from .intervals import check_level, critical_value, f_sf, two_sided_p
from .wald import WaldTest, hypothesis_matrix

#: The small-sample adjustments.
ADJUSTMENTS = ("CR0", "CR1", "CR2")
#: Eigenvalues below this fraction of the largest count as zero in inverse square roots.
EIGEN_TOL = 1e-12


# clusters -------------------------------------------------------------------

@dataclass(frozen=True)
class Clusters:
    """The cluster of every row used by a fit.

    Attributes
    ----------
    codes : numpy.ndarray (n,)
        Cluster of each row, numbered by first appearance.
    labels : tuple
        Label of every cluster, indexed by code.
    """

    codes: np.ndarray
    labels: tuple

    @property
    def n(self) -> int:
        return len(self.labels)


def grouping_encodings(design) -> dict:
    """The model's grouping factors by name: nested levels by their label (``"district"``,
    ``"district/study"``), ``inner | outer`` and slope terms by their outer column."""
    out = {}
    for enc in design.encodings:
        if enc.term.label != ROW_TERM:
            out.setdefault(enc.term.label.rsplit(" | ", 1)[-1], enc)
    return out


def resolve_clusters(design, cluster) -> Clusters:
    """The clusters given by ``cluster`` (see :func:`robust`) on the rows of ``design``."""
    if isinstance(cluster, str):
        groupings = grouping_encodings(design)
        if cluster not in groupings:
            available = ", ".join(repr(g) for g in groupings) or "none"
            raise SpecificationError(
                f"cluster: {cluster!r} is not a grouping factor of the model's random terms (available: "
                f"{available}); pass the cluster values instead, e.g. fit.robust(data[{cluster!r}]).")
        enc = groupings[cluster]
        return Clusters(np.asarray(enc.codes), tuple(enc.groups))
    values = _aligned_values(design, cluster)
    missing = pd.isna(values)
    if missing.any():
        raise SpecificationError(f"cluster: missing values in rows {format_rows(design.row_labels[missing])}.")
    codes, labels = pd.factorize(values, sort=False)
    return Clusters(codes.astype(int), tuple(labels.tolist()))


def _aligned_values(design, cluster) -> np.ndarray:
    """Cluster values of the rows used: a Series by index label, an array by position."""
    if isinstance(cluster, pd.Series):
        if not cluster.index.is_unique:
            raise SpecificationError("cluster: the Series index has duplicate labels; it must identify the rows.")
        absent = pd.Index(design.row_labels).difference(cluster.index)
        if len(absent):
            raise SpecificationError(f"cluster: no value for rows {format_rows(absent)} of the data.")
        return cluster.loc[design.row_labels].to_numpy()
    if isinstance(cluster, pd.DataFrame) or np.ndim(cluster) != 1:
        raise SpecificationError("cluster: expected a grouping column name, a pandas Series or a 1-d array, "
                                 f"got {type(cluster).__name__}.")
    values = np.asarray(cluster, dtype=object)
    n_data = len(design.row_labels) + len(design.dropped)
    if len(values) == n_data:
        return values[design.positions]
    if len(values) == len(design.row_labels):
        return values
    raise SpecificationError(f"cluster: expected one value per row of the data ({n_data}) or per row used "
                             f"({len(design.row_labels)}), got {len(values)}.")


def check_nested(design, clusters: Clusters) -> None:
    """Error unless every independent block of rows lies within one cluster (needed by CR2)."""
    pairs = np.unique(np.column_stack([design.block_of_row, clusters.codes]), axis=0)
    if len(pairs) == design.n_blocks:
        return
    blocks, counts = np.unique(pairs[:, 0], return_counts=True)
    split = np.isin(design.block_of_row, blocks[counts > 1])
    raise SpecificationError(
        "cluster: CR2 needs the random effects and sampling covariances nested within the clusters, but rows "
        f"{format_rows(design.row_labels[split])} share a random effect or a sampling covariance across "
        "clusters. Use a coarser cluster (such as the outermost grouping factor) or adjust='CR1'.")


# marginal covariance --------------------------------------------------------

def batches_by(design, groups: np.ndarray) -> tuple[Batch, ...]:
    """The rows stacked into padded batches by ``groups`` (each group a union of independent blocks)."""
    return build_batches(design.y, design.X, design.V, design.encodings, groups)


def block_covariances(fit, batch: Batch) -> np.ndarray:
    """The marginal covariance Sigma at the fit's estimates for every block of a batch (padding: identity)."""
    param, theta = fit.param, fit.estimate.theta
    # location-scale models: random intercepts with one variance per group, structured terms with per-row SDs
    # and per-cluster correlations; V_scale: V scaled by row factors
    row_variances = [v[enc.codes] if param.scale_of(k) is not None else None
                     for k, (enc, v) in enumerate(zip(fit.design.encodings, param.group_variances(theta)[0]))]
    return marginal_covariance(batch, param.covariances(theta), row_variances, param.v_multipliers(theta),
                               coscale_at(param, theta))


def inverse_sqrt(mats: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """Symmetric inverse square roots of a stack of PSD matrices; eigenvalues below ``EIGEN_TOL``
    times ``scale`` (default: the largest eigenvalue of each matrix) are mapped to zero.

    Examples
    --------
    >>> inverse_sqrt(np.array([[[4.0, 0.0], [0.0, 1e-20]]]))
    array([[[0.5, 0. ],
            [0. , 0. ]]])
    """
    w, U = np.linalg.eigh(mats)
    scale = w.max(axis=-1) if scale is None else np.asarray(scale)
    keep = w > EIGEN_TOL * scale[..., None]
    root = np.where(keep, 1.0 / np.sqrt(np.where(keep, w, 1.0)), 0.0)
    return (U * root[..., None, :]) @ np.swapaxes(U, -1, -2)


# sandwich estimators -----------------------------------------------------------

def cr0_parts(fit, clusters: Clusters) -> tuple[np.ndarray, np.ndarray]:
    """Bread (X'WX)^-1 and the cluster scores (X'W)[:, c] e_c (J, p), per independent block."""
    design = fit.design
    batches = design.batches or batches_by(design, design.block_of_row)
    WX = np.zeros_like(design.X)
    for batch in batches:
        real = batch.rows >= 0
        WX[batch.rows[real]] = np.linalg.solve(block_covariances(fit, batch), batch.X)[real]
    e = design.y - design.X @ fit.coef.to_numpy()
    scores = np.zeros((clusters.n, design.p))
    np.add.at(scores, clusters.codes, WX * e[:, None])
    return np.linalg.inv(design.X.T @ WX), scores


@dataclass(frozen=True)
class CR2Moments:
    """Per-cluster matrices of clubSandwich's small-sample corrections (its G and H arrays
    reduced to p x p products).

    Attributes
    ----------
    gg : numpy.ndarray (J, p, p)
        G_c G_c' with G_c = B X_c' W_c A_c L_c (L_c L_c' = Sigma_c).
    h : numpy.ndarray (J, p, p)
        H_c = B X_c' W_c A_c X_c L_B (L_B L_B' = B).
    """

    gg: np.ndarray
    h: np.ndarray

    def hotelling_nu(self, L: np.ndarray) -> float:
        """clubSandwich's HTZ degrees of freedom nu of the hypotheses ``L b`` (q x p); for one
        hypothesis (q = 1), the Satterthwaite degrees of freedom of its t-test.

        clubSandwich's array P[s, t, c, d] = [c = d] (G_c G_c')_st - (H_c H_d')_st (rows of
        L G_c and L H_c, after scaling by Omega^-1/2, Omega = sum_c P[., ., c, c]) enters only
        through sums over c and d of products of two entries; those sums are expanded here
        into per-cluster q x q products and the p x p x q x q array K = sum_c H_c (x) H_c.
        """
        D = L @ self.gg @ L.T
        H = L @ self.h
        omega = D.sum(axis=0) - np.einsum("csk,ctk->st", H, H)
        T = inverse_sqrt(omega)
        D = T @ D @ T
        H = T @ H
        P = H @ np.swapaxes(H, 1, 2)
        K = np.einsum("csk,cul->sukl", H, H)
        cross = (np.einsum("cst,cst->st", D, D) - 2 * np.einsum("cst,cst->st", D, P)
                 + np.einsum("stkl,tskl->st", K, K))
        d, p = np.diagonal(D, axis1=1, axis2=2), np.diagonal(P, axis1=1, axis2=2)
        same = d.T @ d - d.T @ p - p.T @ d + np.einsum("stkl,stkl->st", K, K)
        q = L.shape[0]
        return float(q * (q + 1) / (cross + same).sum())


def cr2_parts(fit, clusters: Clusters) -> tuple[np.ndarray, np.ndarray, CR2Moments]:
    """Bread, CR2-adjusted cluster scores X_c' W_c A_c e_c (J, p) and the moments of the corrections."""
    design = fit.design
    check_nested(design, clusters)
    beta = fit.coef.to_numpy()
    # first pass: whitened rows (Xt = L^-1 X) for the bread
    cached = []
    for batch in batches_by(design, clusters.codes):
        L = np.linalg.cholesky(block_covariances(fit, batch))
        r = batch.y - batch.X @ beta
        cached.append((batch, L, np.linalg.solve(L, batch.X), np.einsum("bji,bj->bi", L, r)))
    bread = np.linalg.inv(sum(np.einsum("bmi,bmj->ij", Xt, Xt) for _, _, Xt, _ in cached))
    L_bread = np.linalg.cholesky(bread)
    p = design.p
    scores, gg, h = np.zeros((clusters.n, p)), np.zeros((clusters.n, p, p)), np.zeros((clusters.n, p, p))
    for batch, L, Xt, rt in cached:
        # with D_c = L_c' (D_c'D_c = Sigma_c): G = D_c (Sigma_c - X_c B X_c') D_c' = Q Q - Y B Y'
        Q = np.swapaxes(L, 1, 2) @ L
        Y = np.swapaxes(L, 1, 2) @ batch.X
        G = Q @ Q - Y @ bread @ np.swapaxes(Y, 1, 2)
        # the scale of each cluster's G from its real rows (padding rows add eigenvalues 1)
        scale = np.where(batch.rows >= 0, np.diagonal(G, axis1=1, axis2=2), 0.0).max(axis=1)
        E = np.swapaxes(Xt, 1, 2) @ inverse_sqrt(G, scale)  # X_c' W_c A_c = E L_c'
        codes = clusters.codes[batch.rows[:, 0]]
        scores[codes] = np.einsum("bim,bm->bi", E, rt)
        BEQ = bread @ (E @ Q)
        gg[codes] = BEQ @ np.swapaxes(BEQ, 1, 2)
        h[codes] = bread @ E @ Y @ L_bread
    return bread, scores, CR2Moments(gg, h)


# the result ---------------------------------------------------------------------

@dataclass(frozen=True)
class RobustWaldTest(WaldTest):
    """A cluster-robust Wald test: F-test on (m, J - p) degrees of freedom (CR0, CR1) or
    clubSandwich's Hotelling T^2 approximation ``HTZ`` (CR2).

    Attributes
    ----------
    delta : float
        HTZ: the scaling of the Wald statistic, max((nu - q + 1) / nu, 0); 1 for the F-test.
    test : str
        ``"HTZ"`` or ``"F"``.
    """

    delta: float = 1.0
    test: str = "F"

    def __str__(self) -> str:
        p = "= NA" if np.isnan(self.pvalue) else "< .0001" if self.pvalue < 1e-4 else f"= {self.pvalue:.4f}"
        return (f"Test of {', '.join(self.terms)} ({self.test}): F(df1 = {self.df}, df2 = {self.df_resid:.4g}) = "
                f"{self.statistic:.4f}, p-val {p}")


@dataclass(frozen=True)
class RobustResult:
    """Cluster-robust tests and intervals of the fixed effects.

    Attributes
    ----------
    coef : pandas.Series
        The fit's estimates.
    vcov : pandas.DataFrame
        The cluster-robust covariance matrix.
    df : pandas.Series
        Degrees of freedom of each t-test: J - p (CR0, CR1) or Satterthwaite (CR2).
    adjust : str
        ``"CR0"``, ``"CR1"`` or ``"CR2"``.
    clusters : tuple
        The cluster labels.
    level : float
        Confidence level of the intervals.
    moments : CR2Moments or None
        CR2: what the Satterthwaite and HTZ degrees of freedom are computed from.
    """

    coef: pd.Series
    vcov: pd.DataFrame
    df: pd.Series
    adjust: str
    clusters: tuple
    level: float = 0.95
    moments: CR2Moments | None = field(default=None, repr=False)

    @property
    def n_clusters(self) -> int:
        return len(self.clusters)

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov)), index=self.coef.index, name="se")

    @property
    def tval(self) -> pd.Series:
        return (self.coef / self.se).rename("tval")

    @property
    def pval(self) -> pd.Series:
        p = [float(two_sided_p(t, d)) for t, d in zip(self.tval, self.df)]
        return pd.Series(p, index=self.coef.index, name="pval")

    @property
    def ci(self) -> pd.DataFrame:
        crit = np.array([critical_value(self.level, d) for d in self.df])
        return pd.DataFrame({"ci_lb": self.coef - crit * self.se, "ci_ub": self.coef + crit * self.se})

    def table(self) -> pd.DataFrame:
        """Columns ``estimate, se, ci_lb, ci_ub, tval, df, pval``, rows ``beta[name]``."""
        out = pd.concat([self.coef.rename("estimate"), self.se, self.ci, self.tval, self.df.rename("df"),
                         self.pval], axis=1)
        return out.set_axis([f"beta[{n}]" for n in self.coef.index])

    def wald_test(self, terms=None, L=None) -> RobustWaldTest:
        """Cluster-robust Wald test that some coefficients (or combinations ``L b``) are zero.

        Parameters
        ----------
        terms : list of str, optional
            Coefficients tested jointly; default every coefficient but the intercept
            (all of them without an intercept), as metafor's omnibus test.
        L : array_like, optional
            Linear combinations, one row per hypothesis (instead of ``terms``).

        Returns
        -------
        RobustWaldTest
            CR2: clubSandwich's ``Wald_test(..., test = "HTZ")``, F = delta Q / q on
            (q, nu - q + 1) degrees of freedom; with nu - q + 1 <= 0 (too few clusters
            for the hypotheses), F = 0 and a NaN p-value, with a warning, as clubSandwich.
            CR0/CR1: F = Q / q on (q, J - p) degrees of freedom (metafor).

        Examples
        --------
        >>> import bayesmeta as bm
        >>> dat = bm.datasets.load("bcg")
        >>> fit = bm.MetaModel("logrr ~ ablat + year", data=dat, vi="logrrvar").fit()
        >>> print(fit.robust(dat["trial"], "CR1").wald_test())
        Test of ablat, year (F): F(df1 = 2, df2 = 10) = 11.8547, p-val = 0.0023
        """
        names = list(self.coef.index)
        default = [n for n in names if n != "Intercept"] or names
        L, terms = hypothesis_matrix(names, terms, L, default)
        q = L.shape[0]
        if np.linalg.matrix_rank(L) < q:
            raise SpecificationError(f"L: the {q} hypotheses are linearly dependent; drop the redundant rows.")
        b, V = L @ self.coef.to_numpy(), L @ self.vcov.to_numpy() @ L.T
        stat = float(b @ np.linalg.solve(V, b))
        if self.moments is None:
            df2 = float(self.n_clusters - len(names))
            return RobustWaldTest(stat / q, q, df2, float(f_sf(stat / q, q, df2)), terms)
        nu = self.moments.hotelling_nu(L)
        df2 = nu - q + 1
        delta = max(df2 / nu, 0.0)
        if df2 <= 0:
            warn(f"The HTZ test of {q} hypotheses has {df2:.4g} denominator degrees of freedom "
                          f"({self.n_clusters} clusters are too few): F = 0 and no p-value, as clubSandwich.",
                          RobustTestWarning)
        pvalue = float(f_sf(delta * stat / q, q, df2)) if df2 > 0 else np.nan
        return RobustWaldTest(delta * stat / q, q, df2, pvalue, terms, delta=delta, test="HTZ")

    def summary(self) -> str:
        """The table and the omnibus test, as metafor prints a robust fit."""
        dfs = "Satterthwaite df" if self.adjust == "CR2" else f"df = {self.n_clusters - len(self.coef)}"
        lines = [f"Cluster-robust inference ({self.adjust}; {self.n_clusters} clusters; {dfs})", "",
                 self.table().round(4).to_string(), ""]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RobustTestWarning)
            lines.append(str(self.wald_test()))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def robust(fit, cluster, adjust: str = "CR2", *, level: float | None = None) -> RobustResult:
    """Cluster-robust standard errors, t-tests and intervals of a fit's fixed effects.

    Parameters
    ----------
    fit : ModeResult
        An ML, REML (or FE) fit.
    cluster : str, pandas.Series or array_like
        A grouping factor of the model's random terms by name (a nested level as
        the model labels it, ``"district"`` or ``"district/study"``, or the outer
        column of an ``inner | outer`` term, ``"trial"``); or the cluster of every
        row: a Series aligned by index label with the data the model was built on,
        or an array with one value per row of that data (or per row used), by position.
    adjust : {"CR2", "CR1", "CR0"}
        Small-sample adjustment (see the module's description).
    level : float, optional
        Confidence level (default: the fit's).

    Returns
    -------
    RobustResult
        The fit's estimates with cluster-robust SEs, t-tests and intervals.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> school = bm.datasets.load("school")
    >>> model = bm.MetaModel("effect ~ 1", data=school, vi="var", random="~ 1 | district/study")
    >>> rob = robust(model.fit(), "district")
    >>> rob.table().round(4)
                     estimate      se   ci_lb   ci_ub   tval      df   pval
    beta[Intercept]    0.1847  0.0845 -0.0038  0.3733  2.187  9.8632  0.054
    >>> print(rob.wald_test())
    Test of Intercept (HTZ): F(df1 = 1, df2 = 9.863) = 4.7832, p-val = 0.0540
    """
    if adjust not in ADJUSTMENTS:
        raise SpecificationError(f"adjust: expected one of {', '.join(ADJUSTMENTS)}, got {adjust!r}.")
    level = check_level(fit.level if level is None else level)
    design = fit.design
    clusters = resolve_clusters(design, cluster)
    if clusters.n < 2:
        raise SpecificationError("cluster: cluster-robust inference needs at least two clusters; found one.")
    names = fit.coef.index
    if adjust == "CR2":
        bread, scores, moments = cr2_parts(fit, clusters)
        df = [moments.hotelling_nu(row[None, :]) for row in np.eye(design.p)]
    else:
        if clusters.n <= design.p:
            raise SpecificationError(f"cluster: {adjust} needs more clusters ({clusters.n}) than coefficients "
                                     f"({design.p}); use adjust='CR2'.")
        bread, scores = cr0_parts(fit, clusters)
        moments, df = None, [clusters.n - design.p] * design.p
    vcov = bread @ scores.T @ scores @ bread
    if adjust == "CR1":
        vcov *= clusters.n / (clusters.n - design.p)
    return RobustResult(fit.coef.copy(), pd.DataFrame(vcov, index=names, columns=names),
                        pd.Series(np.asarray(df, dtype=float), index=names, name="df"), adjust, clusters.labels,
                        level, moments)
