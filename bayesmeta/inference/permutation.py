"""Permutation tests of location-scale models, as metafor's ``permutest`` for ``rma.ls`` fits.

Scale part: the rows of the scale moderators are permuted over the groups of
their level (the rows, for the row-level heterogeneity; the clusters, for a
cluster-level variance), the model is refitted, and the p-value of each scale
coefficient is the share of permutations whose ``|z|`` reaches the observed one
(``QSp`` likewise for the omnibus test of the scale coefficients).

Location part (row-level models): the rows of the fixed-effects design are
permuted, or, for an intercept-only location model, the signs of the outcomes
are flipped; p-values of the coefficients and of the omnibus test ``QM``.

When the number of distinct permutations (arrangements of the distinct rows of
the moderators; 2^k sign patterns) is at most ``n``, or ``exact=True``, every
one of them is used (an exact test); otherwise ``n`` permutations are used, the
first being the observed data and the rest random, so that ``p >= 1/n``.
Comparisons allow a tolerance of ``sqrt(machine epsilon)``, as metafor's. A
coefficient drifting to +-infinity in a permuted fit has an infinite SE, so
its z is 0 there.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..design.nested import build_nested
from ..design.scale_models import select_level, standardising_transform
from ..errors import SpecificationError

#: Tolerance of the comparisons with the observed statistics (metafor's comptol).
COMPTOL = float(np.sqrt(np.finfo(float).eps))


@dataclass(frozen=True)
class PermutationTest:
    """Results of a permutation test of a location-scale model.

    Attributes
    ----------
    pval : pandas.Series
        Permutation p-values of the location coefficients (empty if not tested).
    QMp : float
        Permutation p-value of the omnibus test of the location coefficients.
    pval_alpha : pandas.Series
        Permutation p-values of the scale coefficients (empty if not tested).
    QSp : float
        Permutation p-value of the omnibus test of the scale coefficients.
    n_location, n_scale : int
        Permutations used for each part (0 if the part was not tested).
    exact_location, exact_scale : bool
        Whether every distinct permutation was used.
    zval_perm, zval_alpha_perm : pandas.DataFrame
        The z statistics of every permutation (NaN where a refit failed).
    QM_perm, QS_perm : numpy.ndarray
        The omnibus statistics of every permutation.
    """

    pval: pd.Series
    QMp: float
    pval_alpha: pd.Series
    QSp: float
    n_location: int
    n_scale: int
    exact_location: bool
    exact_scale: bool
    zval_perm: pd.DataFrame
    zval_alpha_perm: pd.DataFrame
    QM_perm: np.ndarray
    QS_perm: np.ndarray

    def __str__(self) -> str:
        lines = []
        for part, n, exact, p, omnibus in (("location", self.n_location, self.exact_location, self.pval, self.QMp),
                                           ("scale", self.n_scale, self.exact_scale, self.pval_alpha, self.QSp)):
            if n:
                kind = "exact" if exact else "approximate"
                lines.append(f"Permutation test of the {part} coefficients ({kind}, {n} permutations):")
                lines.append(p.map(lambda v: f"{v:.4f}").to_string())
                if not np.isnan(omnibus):
                    lines.append(f"omnibus test: p-val = {omnibus:.4f}")
                lines.append("")
        return "\n".join(lines).rstrip()


def _distinct_permutations(rows: np.ndarray):
    """Every distinct arrangement of the rows (as index arrays), without repeats."""
    _, labels = np.unique(rows, axis=0, return_inverse=True)
    labels = labels.ravel()
    counts = np.bincount(labels)
    slots = [list(np.flatnonzero(labels == v)) for v in range(len(counts))]
    n = len(labels)

    def arrange(position, remaining):
        if position == n:
            yield ()
            return
        for value in range(len(counts)):
            if remaining[value]:
                remaining[value] -= 1
                for rest in arrange(position + 1, remaining):
                    yield (value,) + rest
                remaining[value] += 1

    for arrangement in arrange(0, counts.copy()):
        taken = [0] * len(counts)
        order = np.empty(n, dtype=int)
        for i, v in enumerate(arrangement):
            order[i] = slots[v][taken[v]]
            taken[v] += 1
        yield order


def _count_distinct(rows: np.ndarray) -> float:
    """Number of distinct arrangements of the rows: the multinomial coefficient (inf when astronomical)."""
    _, counts = np.unique(rows, axis=0, return_counts=True)
    if math.lgamma(len(rows) + 1) - sum(math.lgamma(c + 1) for c in counts) > 700:
        return math.inf
    total, placed = 1, 0
    for c in counts:
        placed += int(c)
        total *= math.comb(placed, int(c))
    return float(total)


def _statistics(fit, part: str, k: int | None = None) -> tuple[np.ndarray, float]:
    """z statistics and the omnibus Wald statistic of the location part, or of the scale model of term k.

    Drifting scale coefficients have an infinite SE: z = 0, and they add nothing to
    the omnibus statistic.
    """
    if part == "location":
        return fit.zval.to_numpy(), fit.wald_test().statistic
    sc = fit.param.scale_models[k]
    names = list(fit.alpha.index[fit.param.alpha_slice(k)])
    z = fit.alpha_zval.to_numpy()[fit.param.alpha_slice(k)].copy()
    z[np.isin(names, fit.drifting)] = 0.0
    tested = [n for n, own in zip(names, sc.names) if own != "Intercept"] or names
    tested = [n for n in tested if n not in fit.drifting]
    return z, (fit.wald_test(tested, part="scale").statistic if tested else 0.0)


def _refit(fit, design, param):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit.refit(design, param)


def _location_variant(fit, order=None, signs=None):
    design = fit.design
    X = design.X if order is None else design.X[order]
    y = design.y if signs is None else design.y * signs
    nested = build_nested(X, y, design.V.diagonal(), [e.codes for e in design.encodings])
    return replace(design, X=X, y=y, nested=nested), fit.param


def _scale_variant(fit, k: int, order):
    sc = fit.param.scale_models[k]
    W = sc.W[order]
    new = replace(sc, W=W, transform=standardising_transform(W))
    models = tuple(new if j == k else s for j, s in enumerate(fit.param.scale_models))
    return fit.design, replace(fit.param, scale_models=models)


def _p_values(observed_z, observed_q, z_perm, q_perm):
    with np.errstate(invalid="ignore"):
        hits = np.abs(z_perm) >= np.abs(observed_z) - COMPTOL
        p = np.nanmean(np.where(np.isnan(z_perm), np.nan, hits), axis=0)
        q_hits = np.where(np.isnan(q_perm), np.nan, q_perm >= observed_q - COMPTOL)
    return np.minimum(p, 1.0), float(np.nanmean(q_hits)) if np.isfinite(observed_q) else np.nan


def _run(fit, part, variants, n_total, exact, progressbar, k=None):
    """Statistics of ``n_total`` variants of the data; failed refits are NaN (exact) or replaced (random)."""
    from tqdm.auto import tqdm

    z_obs, q_obs = _statistics(fit, part, k)
    z_perm = np.full((n_total, len(z_obs)), np.nan)
    q_perm = np.full(n_total, np.nan)
    bar = tqdm(total=n_total, desc=f"permutations ({part})", disable=not progressbar)
    i = failures = 0
    with single_threaded_blas():
        for variant in variants:
            if i == n_total:
                break
            if variant is None:  # the observed data
                z, q = z_obs, q_obs
            else:
                try:
                    z, q = _statistics(_refit(fit, *variant), part, k)
                except (np.linalg.LinAlgError, ArithmeticError, SpecificationError):
                    failures += 1
                    if not exact and failures <= n_total:
                        continue
                    z, q = np.full(len(z_obs), np.nan), np.nan
            z_perm[i], q_perm[i] = z, q
            i += 1
            bar.update(1)
    bar.close()
    p, q_p = _p_values(z_obs, q_obs, z_perm, q_perm)
    return p, q_p, z_perm, q_perm


def single_threaded_blas():
    """BLAS on one thread: the many small fits are several times faster without thread hand-offs."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with PyMC
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def permutation_test(fit, n: int = 1000, random_seed=None, *, part: str = "both", term: str | None = None,
                     exact: bool | None = None, progressbar: bool = True) -> PermutationTest:
    """Permutation test of the coefficients of a location-scale model.

    Parameters
    ----------
    fit : ModeResult
        An ML or REML fit of a location-scale model (anything with its ``refit``,
        ``zval``, ``alpha_zval`` and ``wald_test``).
    n : int
        Number of permutations (the observed data included) when not exact.
    random_seed : int, optional
    part : {"both", "scale", "location"}
        Which coefficients to test; the location part needs a row-level (standard)
        location-scale model.
    term : str, optional
        The level whose scale model is tested, when several have one.
    exact : bool, optional
        Use every distinct permutation (default: when there are at most ``n``).
    progressbar : bool

    Returns
    -------
    PermutationTest
    """
    if getattr(fit, "method", None) not in ("ML", "REML") or not fit.param.has_scale:
        raise SpecificationError("permutation_test: needs an ML or REML fit of a location-scale model.")
    if fit.design.nested is None or fit.param.v_scale is not None:
        raise SpecificationError("permutation_test: not available yet for location-scale models with V= blocks, "
                                 "random terms other than nested intercepts, or V_scale=.")
    if part not in ("both", "scale", "location"):
        raise SpecificationError(f"part: expected 'both', 'scale' or 'location', got {part!r}.")
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise SpecificationError(f"n: expected an integer of at least 2, got {n!r}.")
    if part in ("both", "location") and not fit.is_standard:
        if part == "location":
            raise SpecificationError("part: the location part can be permuted only in row-level location-scale "
                                     "models (random=None); use part='scale'.")
        part = "scale"
    rng = np.random.default_rng(random_seed)
    empty = pd.DataFrame()
    result = dict(pval=pd.Series(dtype=float), QMp=np.nan, pval_alpha=pd.Series(dtype=float), QSp=np.nan,
                  n_location=0, n_scale=0, exact_location=False, exact_scale=False, zval_perm=empty,
                  zval_alpha_perm=empty, QM_perm=np.zeros(0), QS_perm=np.zeros(0))
    if part in ("both", "location"):
        X, k_rows = fit.design.X, fit.design.n
        intercept_only = X.shape[1] == 1 and np.ptp(X[:, 0]) == 0
        count = 2.0 ** k_rows if intercept_only else _count_distinct(X)
        use_exact = bool(exact) or count <= n
        if use_exact and not np.isfinite(count):
            raise SpecificationError("exact: too many permutations of the location moderators for an exact test.")
        if intercept_only:
            if use_exact:
                variants = (_location_variant(fit, signs=np.array(s)) for s in itertools.product([1.0, -1.0],
                                                                                                  repeat=k_rows))
            else:
                variants = itertools.chain([None], (_location_variant(fit, signs=rng.choice([-1.0, 1.0], k_rows))
                                                    for _ in itertools.count()))
        elif use_exact:
            variants = (_location_variant(fit, order=o) for o in _distinct_permutations(X))
        else:
            variants = itertools.chain([None], (_location_variant(fit, order=rng.permutation(k_rows))
                                                for _ in itertools.count()))
        total = int(count) if use_exact else n
        p, q_p, z_perm, q_perm = _run(fit, "location", variants, total, use_exact, progressbar)
        names = fit.coef.index
        result.update(pval=pd.Series(p, index=names, name="pval"), QMp=q_p,
                      n_location=total, exact_location=use_exact, zval_perm=pd.DataFrame(z_perm, columns=names),
                      QM_perm=q_perm)
    if part in ("both", "scale"):
        k = select_level(fit.param.scale_models, term)
        W = fit.param.scale_models[k].W
        if W.shape[1] == 1 and np.ptp(W[:, 0]) == 0:
            raise SpecificationError("permutation_test: the scale model has only an intercept; nothing to permute.")
        count = _count_distinct(W)
        use_exact = bool(exact) or count <= n
        if use_exact and not np.isfinite(count):
            raise SpecificationError("exact: too many permutations of the scale moderators for an exact test.")
        if use_exact:
            variants = (_scale_variant(fit, k, o) for o in _distinct_permutations(W))
        else:
            variants = itertools.chain([None], (_scale_variant(fit, k, rng.permutation(len(W)))
                                                for _ in itertools.count()))
        total = int(count) if use_exact else n
        p, q_p, z_perm, q_perm = _run(fit, "scale", variants, total, use_exact, progressbar, k)
        names = fit.alpha.index[fit.param.alpha_slice(k)]
        result.update(pval_alpha=pd.Series(p, index=names, name="pval"), QSp=q_p, n_scale=total,
                      exact_scale=use_exact, zval_alpha_perm=pd.DataFrame(z_perm, columns=names), QS_perm=q_perm)
    return PermutationTest(**result)
