"""Scale models of structured terms (multivariate location-coscale), encoded on the data.

A structured term ``inner | outer`` (``random="~ outcome | study"``) gives each
cluster j a vector of effects, one per level l of ``inner``, with covariance
``G_j = D_j R(rho_j) D_j``. With a scale model (``scale={"outcome | study":
{"tau": ..., "rho": ...}}``, see :mod:`bayesmeta.spec.scale_argument`) its SDs and
its correlation vary between cells and clusters:

    log tau_jl^2 = w_jl' alpha        (one row of moderators per (cluster, level) cell)
    atanh(rho_j) = u_j' zeta          (one row per cluster; structures with one correlation)

so two rows i, k of cluster j at levels l(i), l(k) share the covariance
``tau_j,l(i) tau_j,l(k) R(rho_j)[l(i), l(k)]``. The structure decides only the
kind of correlation matrix (exchangeable for CS/HCS and UN with two levels,
``rho ** |l - l'|`` for AR/HAR); the ``"tau"`` formula decides the SDs, so CS and
HCS (AR and HAR) differ only in their default ``"tau"`` formula. Clusters with
some levels absent use the levels they have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import SpecificationError
from ..spec.structures import Structure
from .scale_models import ScaleDesign, encode_scale


@dataclass(frozen=True)
class CoscaleDesign:
    """Moderators of the SDs and the correlation of one structured term.

    Attributes
    ----------
    label : str
        The term's label, e.g. ``"outcome | study"``.
    structure : Structure
        The term's structure (its correlation family).
    tau : ScaleDesign
        Log variance of every (cluster, level) cell: groups are the cells,
        named ``"<cluster>: <level>"``.
    zeta : ScaleDesign or None
        Fisher's z of every cluster's correlation (None for structures without one).
    cell_of_row : numpy.ndarray (n,)
        Cell of every row.
    cluster_of_row : numpy.ndarray (n,)
        Cluster of every row (the term's group codes).
    level_of_row : numpy.ndarray (n,)
        Level (column of the term's Z) of every row.
    """

    label: str
    structure: Structure
    tau: ScaleDesign
    zeta: ScaleDesign | None
    cell_of_row: np.ndarray
    cluster_of_row: np.ndarray
    level_of_row: np.ndarray

    @property
    def r(self) -> int:
        """Number of coefficients: the tau model's, then the correlation model's."""
        return self.tau.r + self.n_zeta

    @property
    def n_zeta(self) -> int:
        return 0 if self.zeta is None else self.zeta.r

    def row_values(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the SD ``tau_cell`` and the correlation ``rho_cluster`` at the term's theta entries.

        ``theta`` holds the standardised coefficients (tau's, then zeta's); without a
        correlation model the correlations are 0.
        """
        theta = np.asarray(theta, dtype=float)
        sd_cells = np.exp(0.5 * (self.tau.W_std @ theta[:self.tau.r]))
        rho_clusters = self.cluster_correlations(theta)
        return sd_cells[self.cell_of_row], rho_clusters[self.cluster_of_row]

    def cluster_correlations(self, theta: np.ndarray) -> np.ndarray:
        """The correlation of every cluster, ``tanh(U zeta)`` (zeros without a correlation model)."""
        if self.zeta is None:
            return np.zeros(int(self.cluster_of_row.max()) + 1 if len(self.cluster_of_row) else 0)
        return np.tanh(self.zeta.W_std @ np.asarray(theta, dtype=float)[self.tau.r:])

    def gradient(self, theta: np.ndarray, d_sd_rows: np.ndarray, d_rho_rows: np.ndarray) -> np.ndarray:
        """Chain rule: from derivatives in the rows' SDs and correlations to the term's theta entries."""
        theta = np.asarray(theta, dtype=float)
        sd_rows, _ = self.row_values(theta)
        n_cells = len(self.tau.W)
        d_eta = np.bincount(self.cell_of_row, weights=0.5 * d_sd_rows * sd_rows, minlength=n_cells)
        out = [self.tau.W_std.T @ d_eta]
        if self.zeta is not None:
            rho = self.cluster_correlations(theta)
            d_rho = np.bincount(self.cluster_of_row, weights=d_rho_rows, minlength=len(rho))
            out.append(self.zeta.W_std.T @ (d_rho * (1.0 - rho ** 2)))
        return np.concatenate(out)


def cell_codes(enc) -> tuple[np.ndarray, np.ndarray]:
    """The (cluster, level) cell of every row of an ``inner | outer`` term, numbered by first appearance,
    and the first row of every cell."""
    level = np.argmax(enc.Z, axis=1)
    key = enc.codes.astype(np.int64) * enc.term.q + level
    _, first, cell_of_row = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))
    return renumber[cell_of_row.ravel()], np.sort(first)


def structure_designs(enc, coscale: CoscaleDesign | None) -> tuple[np.ndarray, np.ndarray]:
    """Moderators of a structured term's log variances (per cell) and of its correlation's Fisher z (per
    cluster): its scale model's, or those that express the plain structure (one variance per level or one
    for all; one correlation, or none)."""
    if coscale is not None:
        zeta = coscale.zeta.W if coscale.zeta is not None else np.zeros((enc.term.n_groups, 0))
        return coscale.tau.W, zeta
    term = enc.term
    _, firsts = cell_codes(enc)
    tau = enc.Z[firsts] if term.structure.heterogeneous else np.ones((len(firsts), 1))
    return tau, np.ones((term.n_groups, term.structure.n_rho(term.q)))


def default_tau(structure: Structure, inner: str) -> str:
    """The ``"tau"`` formula of the plain structure: one variance per level, or one for all."""
    return f"~ 0 + C({inner})" if structure.heterogeneous else "~ 1"


def encode_coscale(parts: dict, enc, data: pd.DataFrame) -> CoscaleDesign:
    """Encode the ``"tau"`` and ``"rho"`` formulas of one structured term.

    Parameters
    ----------
    parts : dict
        ``{"tau": formula or None, "rho": formula or None}`` (None: the default).
    enc : TermEncoding
        The ``inner | outer`` term.
    data : pandas.DataFrame
        The rows the model uses.

    Raises
    ------
    SpecificationError
        For a correlation formula on a structure without exactly one correlation,
        moderators varying within cells (tau) or clusters (rho), naming them, or
        rank-deficient moderators.
    """
    term = enc.term
    place = f"scale[{term.label!r}]"
    n_rho = term.structure.n_rho(term.q)
    if n_rho > 1:
        raise SpecificationError(
            f"{place}: the {term.structure.name} term {term.label!r} has {n_rho} correlations; scale models of a "
            "structured term need one correlation (CS, HCS, AR, HAR, or UN with two levels). Use struct='HCS' for "
            "more than two outcomes.")
    if n_rho == 0 and parts.get("rho") is not None:
        raise SpecificationError(f"{place}['rho']: the {term.structure.name} term {term.label!r} has no "
                                 "correlation to model.")
    cell_of_row, firsts = cell_codes(enc)
    level = np.argmax(enc.Z, axis=1)
    cells = tuple(f"{enc.groups[enc.codes[i]]}: {term.levels[level[i]]}" for i in firsts)
    tau = encode_scale(parts.get("tau") or default_tau(term.structure, enc.inner), data, cell_of_row, cells,
                       term.label, f"{place}['tau']")
    zeta = None
    if n_rho == 1:
        zeta = encode_scale(parts.get("rho") or "~ 1", data, enc.codes, enc.groups, term.label, f"{place}['rho']")
    return CoscaleDesign(term.label, term.structure, tau, zeta, cell_of_row, np.asarray(enc.codes), level)


def encode_coscale_models(structured: dict, encodings, data: pd.DataFrame) -> tuple:
    """Per covariance term, its CoscaleDesign or None (an empty tuple without any).

    ``structured`` maps term indices to ``{"tau": ..., "rho": ...}``
    (:func:`bayesmeta.design.scale_models.encode_scale_models`).
    """
    if not structured:
        return ()
    return tuple(encode_coscale(structured[k], enc, data) if k in structured else None
                 for k, enc in enumerate(encodings))
