"""Variance components the data cannot identify, found from the encodings of the random terms.

A component is not identified when the likelihood does not (or only through a
sum with another component) depend on it. Estimating it anyway gives an
arbitrary number; instead, as metafor does, it is fixed with a warning, and
results and summaries flag it (:attr:`Parameterization.not_identified
<bayesmeta.design.parameters.Parameterization>`):

* a term with a single cluster: its random effect is one draw, confounded with
  the fixed effects; its variances (and correlations) are fixed at 0 (metafor:
  "Single-level factor(s) found in 'random' argument. Corresponding 'sigma2'
  value(s) fixed to 0");
* two random-intercept terms with the same clusters (the same term given twice,
  or a nested level each of whose clusters holds a single cluster of the next
  level, as ``~ 1 | study/district`` with one district per study): only the sum
  of the two variances is identified; the later one is fixed at 0 (metafor
  splits the sum in two equal halves);
* the correlation of a single-correlation structure (CS, HCS, AR, HAR) when no
  cluster has two levels of the inner factor: fixed at 0 (metafor: "Each level
  of the outer factor contains only a single level of the inner factor, so fixed
  value of rho to 0");
* correlations of a UN structure between levels that never occur in the same
  cluster: the likelihood does not depend on them. When no pair co-occurs they
  are fixed at 0, as metafor does. When only some pairs never co-occur they are
  flagged but stay free (a UN matrix is parameterised by canonical partial
  correlations, which cannot hold a subset of correlations at a value; metafor
  fixes them at 0): their estimates are arbitrary within the values that keep
  the matrix positive definite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec.structures import lower_pairs


@dataclass(frozen=True)
class NotIdentified:
    """A component (or several of one term) that the data cannot identify.

    Attributes
    ----------
    term : int
        Index of the covariance term.
    kind : {"sd", "rho"}
        Its SDs (variances) or its correlations.
    entries : tuple of int
        Which SDs or correlations of the term.
    reason : str
        Why, in words.
    fixed : bool
        Whether it is fixed (at ``value``) or only flagged.
    value : float
        The value it is fixed at (a variance of 0 or a correlation of 0).
    """

    term: int
    kind: str
    entries: tuple
    reason: str
    fixed: bool = True
    value: float = 0.0

    def labels(self, terms) -> list[str]:
        """Names of the components, as in the results' tables (``sigma2[g]``, ``rho[outcome | trial]``)."""
        t = terms[self.term]
        if self.kind == "sd":
            return [f"{t.family}[{t.sd_label(i)}]" for i in self.entries]
        return [f"{t.correlation_family}[{t.rho_label(i)}]" for i in self.entries]

    def describe(self, terms) -> str:
        """One line for warnings and summaries."""
        what = f"fixed at {self.value:g}" if self.fixed else "left free (its estimate is arbitrary)"
        return f"{', '.join(self.labels(terms))} not identified ({self.reason}): {what}"


def _co_occurrence(enc) -> np.ndarray:
    """q x q counts of clusters holding rows of both levels of the inner factor."""
    incidence = np.zeros((enc.term.n_groups, enc.Z.shape[1]))
    np.add.at(incidence, enc.codes, enc.Z != 0)
    present = (incidence > 0).astype(float)
    return present.T @ present


def _correlations(k: int, enc) -> list[NotIdentified]:
    """Correlations of an ``inner | outer`` term between levels that never share a cluster."""
    term = enc.term
    if enc.inner is None or term.n_rho == 0:
        return []
    co = _co_occurrence(enc)
    rows, cols = lower_pairs(term.q)
    never = co[rows, cols] == 0
    if term.n_rho == 1:  # one correlation for every pair: identified by any pair
        if never.all():
            return [NotIdentified(k, "rho", (0,), f"no cluster of {term.label!r} has two levels of {enc.inner!r}")]
        return []
    if not never.any():
        return []
    pairs = [f"{term.levels[cols[i]]}/{term.levels[rows[i]]}" for i in np.flatnonzero(never)]
    reason = f"levels {', '.join(pairs)} of {enc.inner!r} never occur in the same cluster"
    return [NotIdentified(k, "rho", tuple(int(i) for i in np.flatnonzero(never)), reason, fixed=bool(never.all()))]


def find_non_identified(encodings, scale_models: tuple = ()) -> tuple[NotIdentified, ...]:
    """The components of the random terms that the data cannot identify (see the module docs).

    Parameters
    ----------
    encodings : tuple of TermEncoding
    scale_models : tuple, optional
        Per term, its scale model or None (terms with a scale model are left out).

    Examples
    --------
    >>> import bayesmeta as bm
    >>> import warnings
    >>> dat = bm.datasets.load("school").assign(all=1)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     model = bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | all/district")
    >>> [n.describe(model.design.terms) for n in find_non_identified(model.design.encodings)]
    ["sigma2[all] not identified (a single cluster of 'all'): fixed at 0"]
    """
    out: list[NotIdentified] = []
    seen: dict[bytes, str] = {}
    for k, enc in enumerate(encodings):
        term = enc.term
        if scale_models and scale_models[k] is not None:
            continue
        if term.n_groups == 1:
            out.append(NotIdentified(k, "sd", tuple(range(term.n_sd)), f"a single cluster of {term.label!r}"))
            if term.n_rho:
                out.append(NotIdentified(k, "rho", tuple(range(term.n_rho)), f"a single cluster of {term.label!r}"))
            continue
        if enc.Z is None:
            key = np.ascontiguousarray(enc.codes).tobytes()
            if key in seen:
                out.append(NotIdentified(k, "sd", (0,), f"its clusters are those of {seen[key]!r}: only the sum of "
                                                        "the two variances is identified"))
                continue
            seen[key] = term.label
        out += _correlations(k, enc)
    return tuple(out)
