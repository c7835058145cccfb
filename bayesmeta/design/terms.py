"""Random terms encoded on the data: per row, the group of every covariance term and its design."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import SpecificationError
from ..spec.random_terms import ROW_TERM, GroupedTerm, NestedTerm
from ..spec.structures import get_structure
from .encode import encode
from .parameters import CovarianceTerm


@dataclass(frozen=True)
class TermEncoding:
    """Per-row encoding of one covariance term.

    Attributes
    ----------
    term : CovarianceTerm
    codes : numpy.ndarray (n,)
        Group of every row, numbered by first appearance.
    Z : numpy.ndarray (n, q) or None
        Random-effect design (None for a random intercept).
    groups : tuple
        Label of every group, indexed by code: the value of the grouping column as
        it is in the data, or, for an inner level of nested intercepts, the values
        of its columns joined by "/" (``"3/12"`` for study 12 of district 3).
    inner : str or None
        Column whose levels index the effects of an ``inner | outer`` term.
    z_spec : formulaic.ModelSpec or None
        Re-encodes the slope design of a ``1 + x | outer`` term on new data.
    """

    term: CovarianceTerm
    codes: np.ndarray
    Z: np.ndarray | None
    groups: tuple
    inner: str | None = None
    z_spec: object = None

    @property
    def columns(self) -> set[str]:
        """Data columns needed to encode new rows of this term."""
        if self.inner is not None:
            return {self.inner}
        return set(self.z_spec.required_variables) if self.z_spec is not None else set()

    def new_z(self, data: pd.DataFrame) -> np.ndarray:
        """Random-effect design (n, q) of new rows."""
        if self.inner is not None:
            values = data[self.inner].astype(str).to_numpy()
            unknown = sorted(set(values) - set(self.term.levels))
            if unknown:
                raise SpecificationError(f"newdata: column {self.inner!r} has level(s) {unknown} not in the "
                                         f"model (levels: {list(self.term.levels)}).")
            return (values[:, None] == np.array(self.term.levels)[None, :]).astype(float)
        if self.z_spec is not None:
            return np.asarray(self.z_spec.get_model_matrix(data, na_action="raise"), dtype=float)
        return np.ones((len(data), 1))


def _levels(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna())
        return [c for c in values.cat.categories if c in present]
    return sorted(pd.unique(values.dropna()))


def group_codes(frame: pd.DataFrame) -> tuple[np.ndarray, tuple]:
    """Group of every row by first appearance, and the groups' labels (see :class:`TermEncoding`)."""
    codes = frame.groupby(list(frame.columns), sort=False, dropna=False).ngroup().to_numpy()
    _, first = np.unique(codes, return_index=True)
    if frame.shape[1] == 1:
        return codes, tuple(frame.iloc[first, 0].tolist())
    values = frame.to_numpy()[first].T
    # column by column; Python scalars print as NumPy's 64-bit ones (not float32's: keep those)
    columns = values.tolist() if values.dtype in (object, np.int64, np.float64, bool) else list(values)
    return codes, tuple("/".join(labels) for labels in zip(*(map(str, column) for column in columns)))


def encode_terms(terms, data: pd.DataFrame) -> tuple[TermEncoding, ...]:
    """Encode the parsed random terms (None: the standard model's row-level effect) on the data."""
    n = len(data)
    if terms is None:
        term = CovarianceTerm(ROW_TERM, "tau2", get_structure("ID"), ("intercept",), n)
        return (TermEncoding(term, np.arange(n), None, tuple(data.index.tolist())),)
    encodings = []
    structured = iter(["tau2", "gamma2"])
    for t in terms:
        if isinstance(t, NestedTerm):
            for depth in range(1, len(t.levels) + 1):
                codes, groups = group_codes(data[list(t.levels[:depth])])
                label = "/".join(t.levels[:depth])
                term = CovarianceTerm(label, "sigma2", get_structure("ID"), ("intercept",), len(groups))
                encodings.append(TermEncoding(term, codes, None, groups))
            continue
        family = next(structured)
        codes, groups = group_codes(data[[t.outer]])
        if isinstance(t, GroupedTerm):
            levels = _levels(data[t.inner])
            index = {lv: i for i, lv in enumerate(levels)}
            Z = np.zeros((n, len(levels)))
            Z[np.arange(n), [index[v] for v in data[t.inner]]] = 1.0
            label = f"{t.inner} | {t.outer}"
            names = tuple(str(lv) for lv in levels)
            extra = {"inner": t.inner}
        else:
            mm = encode("~ " + t.lhs, data)
            Z = np.asarray(mm, dtype=float)
            names = tuple(mm.columns)
            label = f"{t.lhs} | {t.outer}"
            extra = {"z_spec": mm.model_spec}
        structure = get_structure(t.struct)
        if isinstance(t, GroupedTerm) and structure.n_rho(2) and len(names) < 2:
            raise SpecificationError(
                f"struct: {t.struct} needs at least two levels of {t.inner!r} in {label!r}; found {len(names)}."
            )
        term = CovarianceTerm(label, family, structure, names, len(groups))
        encodings.append(TermEncoding(term, codes, Z, groups, **extra))
    return tuple(encodings)
