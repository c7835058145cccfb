"""What the plots draw, read from any result: observed rows, weights, shrunken estimates,
pooled estimates and random effects, for ML/REML fits and posteriors alike.

The plots take results duck-typed (the result contract: ``design``, ``param``,
``coef``, ``level``, ``method``, ``predict``; ML/REML fits also ``estimate``,
``blup`` and ``ranef``; posteriors ``idata``) and never import the result classes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..design.blocks import build_batches
from ..engines.bayes.draws import parameter_draws
from ..errors import SpecificationError
from ..inference.blups import grouping_columns
from ..inference.intervals import check_level, critical_value
from ..likelihood.profiled import marginal_covariance
from ..spec.random_terms import ROW_TERM

#: Seed of the posterior's new-study draws (prediction intervals) when a plot asks for them.
PLOT_SEED = 0


def is_posterior(result) -> bool:
    """Whether a result holds posterior draws (a BayesResult) rather than a point estimate."""
    return hasattr(result, "idata")


def check_results(results, argument: str = "results"):
    """The design shared by ``results`` (fits of one model by different engines); errors name the argument."""
    if not results:
        raise SpecificationError(f"{argument}: give at least one fit result.")
    for i, r in enumerate(results):
        if getattr(r, "design", None) is None or getattr(r, "param", None) is None or not hasattr(r, "method"):
            raise SpecificationError(f"{argument}: argument {i + 1} is a {type(r).__name__}, not a result of "
                                     "MetaModel.fit or MetaModel.sample.")
    design = results[0].design
    for i, r in enumerate(results[1:], start=2):
        if r.design.n != design.n or not np.array_equal(r.design.row_labels, design.row_labels):
            raise SpecificationError(f"{argument}: argument {i} was fitted on other rows than argument 1; "
                                     "give fits of the same model and data.")
    return design


def names_of(results, names) -> list[str]:
    """Legend names of the results: ``names`` or their methods (numbered when they repeat)."""
    labels = list(names) if names is not None else [r.method for r in results]
    if len(labels) != len(results):
        raise SpecificationError(f"names: {len(labels)} names for {len(results)} results.")
    if len(set(labels)) != len(labels):
        labels = [f"{lab} ({i + 1})" for i, lab in enumerate(labels)]
    return labels


def per_row(design, values, argument: str) -> np.ndarray:
    """One value per row used: a pandas Series aligned by index label with the data, or a
    sequence with one value per row of the data (or per row used)."""
    labels = design.row_labels
    if isinstance(values, pd.Series):
        missing = pd.Index(labels).difference(values.index)
        if len(missing):
            raise SpecificationError(f"{argument}: no value for the row label(s) {list(missing[:10])}; give a Series "
                                     "indexed like the data.")
        return values.loc[labels].to_numpy()
    values = np.asarray(values, dtype=object)
    if values.ndim != 1:
        raise SpecificationError(f"{argument}: expected one value per row, got an array of shape {values.shape}.")
    if len(values) == design.n:
        return values
    if len(values) == len(design.row_labels) + len(design.dropped) and len(design.positions) == design.n:
        return values[design.positions]
    raise SpecificationError(f"{argument}: expected {design.n} values (one per row used) or a Series indexed "
                             f"like the data, got {len(values)}.")


def study_labels(design, slab) -> np.ndarray:
    """Row labels: ``slab`` (a Series by index label, or one per row), or the data's index labels."""
    if slab is None:
        return np.array([str(v) for v in design.row_labels])
    return np.array([str(v) for v in per_row(design, slab, "slab")])


def observed(design, level: float) -> pd.DataFrame:
    """Observed effects with their sampling SEs and normal-theory intervals (``yi, se, ci_lb, ci_ub``)."""
    se = np.sqrt(design.V.diagonal())
    crit = critical_value(check_level(level), np.inf)
    return pd.DataFrame({"yi": design.y, "se": se, "ci_lb": design.y - crit * se, "ci_ub": design.y + crit * se})


def row_weights(result) -> np.ndarray | None:
    """Percent weight of every row in the fixed-effect estimate, as metafor's ``weights``: the
    diagonal of Sigma^-1 = (V + Z G Z')^-1, normalised to 100 (``1 / (v_i + tau^2)`` in the
    standard model). None for posteriors and location-scale models (no single weight per row)."""
    if is_posterior(result) or result.param.has_scale:
        return None
    design = result.design
    G = result.param.covariances(result.estimate.theta)
    w = np.zeros(design.n)
    # designs evaluated by the nested closed form keep no batches: build them (a plot's rows are few)
    batches = design.batches or build_batches(design.y, design.X, design.V, design.encodings, design.block_of_row)
    for batch in batches:
        inverse_diagonal = np.diagonal(np.linalg.inv(marginal_covariance(batch, G)), axis1=1, axis2=2)
        real = batch.rows >= 0
        w[batch.rows[real]] = inverse_diagonal[real]
    return 100 * w / w.sum()


def row_draws(result) -> np.ndarray:
    """Posterior draws (S, n) of every row's true effect ``x_i' beta + z_i' u``."""
    design = result.design
    beta, _ = parameter_draws(result.param, result.idata.posterior)
    total = beta @ design.X.T
    for enc, name in zip(design.encodings, effect_names(result)):
        u = flat_draws(result, name)
        total = total + (u[:, enc.codes] if enc.Z is None else np.einsum("nq,snq->sn", enc.Z, u[:, enc.codes, :]))
    return total


def effect_names(result) -> list[str]:
    """The posterior variable ``u_<key>`` of every covariance term (as the engine names them)."""
    from ..engines.bayes.augment import effect_key

    taken, names = set(), []
    for enc in result.design.encodings:
        names.append(f"u_{effect_key(enc.term.label, enc.term.family, taken)}")
    missing = [n for n in names if n not in result.idata.posterior]
    if missing:
        raise SpecificationError(f"result: the posterior has no random effects {missing} (too many to store); "
                                 "sample fewer draws or plot an ML/REML fit.")
    return names


def flat_draws(result, name: str) -> np.ndarray:
    """A posterior variable's draws with the chains stacked, (S, ...)."""
    values = result.idata.posterior[name].values
    return values.reshape((-1,) + values.shape[2:])


def summarise(draws: np.ndarray, level: float, index) -> pd.DataFrame:
    """Posterior means and equal-tailed intervals of draws (S, J) (columns ``pred, lb, ub``)."""
    lo, hi = (1 - level) / 2, (1 + level) / 2
    return pd.DataFrame({"pred": draws.mean(axis=0), "lb": np.quantile(draws, lo, axis=0),
                         "ub": np.quantile(draws, hi, axis=0)}, index=index)


def shrunken(result) -> pd.DataFrame:
    """Every row's shrunken estimate with its interval (``pred, lb, ub``): the BLUP of an ML/REML
    fit (fixed part plus random effects, with its prediction interval, as metafor's ``blup``), or
    the posterior mean and equal-tailed interval of ``x_i' beta + z_i' u`` of a posterior."""
    if is_posterior(result):
        return summarise(row_draws(result), result.level, pd.RangeIndex(result.design.n))
    b = result.blup()
    return pd.DataFrame({"pred": b["pred"].to_numpy(), "lb": b["pi_lb"].to_numpy(), "ub": b["pi_ub"].to_numpy()})


def pooled(result) -> pd.DataFrame:
    """``result.predict()`` (a posterior's with a fixed seed, so that plots are reproducible)."""
    if is_posterior(result):
        return result.predict(random_seed=PLOT_SEED)
    return result.predict()


def has_moderators(design) -> bool:
    """Whether the fixed part is more than an intercept (then there is no single pooled estimate)."""
    return not (design.p == 1 and np.ptp(design.X[:, 0]) == 0)


def grouping(design, group) -> tuple[np.ndarray, list[str]] | None:
    """Group code of every row and the groups' header labels, or None (no grouping).

    ``group=None`` chooses the outermost cluster of the random terms (the districts of
    ``~ 1 | district/study``, the trials of ``~ outcome | trial``) when clusters hold
    several rows; ``False`` turns grouping off; otherwise one value per row (a Series by
    index label or a sequence), whose distinct values become the groups in order of appearance.
    """
    if group is False:
        return None
    if group is None:
        for enc in design.encodings:
            if enc.term.label != ROW_TERM and enc.term.n_groups < design.n:
                column = grouping_columns(enc.term)[0]
                return enc.codes, [f"{column} {g}" for g in enc.groups]
        return None
    values = per_row(design, group, "group")
    codes, uniques = pd.factorize(pd.Series(values), sort=False)
    return codes, [str(u) for u in uniques]


def random_effects(result, term: str | None = None) -> tuple[str, pd.DataFrame]:
    """The random effects of one covariance term (its label and ``pred, lb, ub`` by cluster):
    BLUPs with prediction intervals (ML/REML, metafor's ``ranef``) or posterior means and intervals.

    ``term`` is a term's label (``"district"``, ``"district/study"``, ``"outcome | trial"``) or
    its innermost grouping column (``"study"``); default: the first term.
    """
    encodings = result.design.encodings
    if not encodings:
        raise SpecificationError("result: the model has no random effects.")
    labels = [enc.term.label for enc in encodings]
    keys = [label.split(" | ")[-1].split("/")[-1] for label in labels]
    if term is None:
        k = 0
    elif term in labels:
        k = labels.index(term)
    elif keys.count(term) == 1:
        k = keys.index(term)
    else:
        raise SpecificationError(f"term: expected one of {labels}, got {term!r}.")
    enc = encodings[k]
    if enc.Z is None:
        index = pd.Index([str(g) for g in enc.groups], name=labels[k])
    else:
        index = pd.Index([f"{g}: {lev}" for g in enc.groups for lev in enc.term.levels], name=labels[k])
    if is_posterior(result):
        draws = flat_draws(result, effect_names(result)[k])
        return labels[k], summarise(draws.reshape(len(draws), -1), result.level, index)
    r = result.ranef()[labels[k]]
    return labels[k], pd.DataFrame({"pred": r["pred"].to_numpy(), "lb": r["pi_lb"].to_numpy(),
                                    "ub": r["pi_ub"].to_numpy()}, index=index)
