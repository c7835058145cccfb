"""Construct the sampling covariance V of dependent effect sizes, as metafor's ``vcalc()``.

Rows of the same cluster (usually a study) may be correlated; rows of
different clusters are independent. Within a cluster, the sampling
correlation of rows ``i`` and ``j`` is the product of

* a construct correlation: 1 for the same ``obs`` of the same ``type``, the
  within-type correlation for different ``obs`` of the same ``type``, and the
  between-type correlation for different ``type`` (whatever their ``obs``);
* a contrast correlation from shared groups (``grp1`` versus ``grp2``, with
  weights ``w1``, ``w2``, usually group sizes) and from the autocorrelation
  ``phi ** |t_i - t_j|`` of measurements at different times:

  .. math::

     r_{ij} = \\frac{a(g1_i, g1_j)/\\sqrt{w1_i w1_j} - a(g1_i, g2_j)/\\sqrt{w1_i w2_j}
                    - a(g2_i, g1_j)/\\sqrt{w2_i w1_j} + a(g2_i, g2_j)/\\sqrt{w2_i w2_j}}
                   {d_i d_j},
     \\quad d_i^2 = 1/w1_i + 1/w2_i - 2 a(g1_i, g2_i)/\\sqrt{w1_i w2_i},

  with ``a(g, g') = [g == g'] phi ** |t_i - t_j|``. Without ``grp1`` every
  row contrasts group 1 with group 2 and the factor is ``phi ** |t_i - t_j|``;
  with groups but without weights, equal weights give metafor's correlation
  0.5 for a shared control group.

``V[i, j] = sqrt(vi_i vi_j) r_ij``. metafor's ``time1``/``time2`` (time of the
first and the second condition of a contrast) become one ``time`` here:
``time1 = time2 = time``, the between-subjects case. Within-subjects contrasts
of two time points, metafor's ``subgroup`` and ``rvars`` are not covered.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.columns import resolve
from ..design.sampling_covariance import ClusterBlocks
from ..errors import SpecificationError, format_rows

#: Tolerance for negative eigenvalues of a cluster's correlation matrix.
_PSD_TOL = 1e-8


def _resolve(value, name: str, data: pd.DataFrame | None) -> tuple[np.ndarray, str]:
    """An argument as an array, with the name to cite (the column, or the argument)."""
    values, what = resolve(value, name, data)
    return values.to_numpy(), what


def _check_complete(values: np.ndarray, what: str, labels: np.ndarray, k: int) -> None:
    if len(values) != k:
        raise SpecificationError(f"{what}: has length {len(values)}, expected {k} (one value per row).")
    missing = np.flatnonzero(pd.isna(values))
    if len(missing):
        raise SpecificationError(f"{what}: missing values in rows {format_rows(labels[missing])}.")


def _numeric(values: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise SpecificationError(f"{what}: must be numeric.") from None


def _check_positive(values: np.ndarray, what: str, labels: np.ndarray) -> None:
    bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
    if len(bad):
        raise SpecificationError(f"{what}: must be positive and finite; rows {format_rows(labels[bad])} are not.")


def _levels(values: np.ndarray) -> tuple[np.ndarray, list]:
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=False)
    return codes, list(uniques)


def _is_number(x) -> bool:
    return isinstance(x, numbers.Real) or (isinstance(x, np.ndarray) and x.ndim == 0)


def _correlation_table(rho, levels: list, what: str) -> np.ndarray:
    """A correlation matrix over ``levels``: a constant off the diagonal, or a labelled DataFrame."""
    m = len(levels)
    if _is_number(rho):
        r = float(rho)
        if not abs(r) <= 1:
            raise SpecificationError(f"rho: the {what} correlation must lie in [-1, 1], got {r}.")
        table = np.full((m, m), r)
        np.fill_diagonal(table, 1.0)
        return table
    if not isinstance(rho, pd.DataFrame):
        raise SpecificationError(
            f"rho: give the {what} correlations as a number or as a pandas DataFrame whose index and "
            f"columns are the {what} values; got {type(rho).__name__}.")
    if rho.shape[0] != rho.shape[1] or set(rho.index) != set(rho.columns):
        raise SpecificationError(f"rho: the {what} correlation matrix must be square with the same row and column labels.")
    absent = [lv for lv in levels if lv not in rho.index]
    if absent:
        raise SpecificationError(f"rho: no row/column of the {what} correlation matrix for {', '.join(map(repr, absent))}.")
    table = rho.loc[levels, levels].to_numpy(dtype=float)
    if not np.all(np.abs(table) <= 1):
        raise SpecificationError(f"rho: the {what} correlations must lie in [-1, 1].")
    if not np.allclose(table, table.T):
        raise SpecificationError(f"rho: the {what} correlation matrix is not symmetric.")
    return table


def _split_rho(rho, has_type: bool, has_obs: bool) -> tuple:
    """(within-type correlation over obs, between-type correlation over types), as metafor pairs them."""
    if rho is None:
        if has_type or has_obs:
            raise SpecificationError(f"rho: required when {'type' if has_type else 'obs'} is given.")
        return 0.0, 0.0
    if not (has_type or has_obs):
        raise SpecificationError("rho: given without type or obs, so it would not be used.")
    if has_type and has_obs:
        if not isinstance(rho, (list, tuple)) or len(rho) != 2:
            raise SpecificationError("rho: with both type and obs, give a pair (within-type, between-type) "
                                     "of numbers or DataFrames.")
        return rho[0], rho[1]
    if not (isinstance(rho, pd.DataFrame) or _is_number(rho)):
        raise SpecificationError(f"rho: with only {'type' if has_type else 'obs'} given, rho must be a number "
                                 "or a labelled DataFrame.")
    return (0.0, rho) if has_type else (rho, 0.0)


@dataclass(frozen=True)
class _Rows:
    """Per-row inputs of the correlation, already checked."""

    vi: np.ndarray
    type: np.ndarray
    obs: np.ndarray
    rho_obs: np.ndarray
    rho_type: np.ndarray
    time: np.ndarray
    phi: float
    grp1: np.ndarray
    grp2: np.ndarray
    w1: np.ndarray
    w2: np.ndarray


def _contrast_factor(r: _Rows, idx: np.ndarray) -> np.ndarray:
    """Shared-group and autocorrelation factor for clusters stacked as idx (B, m) -> (B, m, m)."""
    decay = r.phi ** np.abs(r.time[idx][:, :, None] - r.time[idx][:, None, :])
    s1, s2 = 1 / np.sqrt(r.w1[idx]), 1 / np.sqrt(r.w2[idx])
    g1, g2 = r.grp1[idx], r.grp2[idx]

    def term(ga, sa, gb, sb):
        return (ga[:, :, None] == gb[:, None, :]) * sa[:, :, None] * sb[:, None, :]

    numerator = decay * (term(g1, s1, g1, s1) - term(g1, s1, g2, s2) - term(g2, s2, g1, s1) + term(g2, s2, g2, s2))
    d = np.sqrt(s1 ** 2 + s2 ** 2 - 2 * (g1 == g2) * s1 * s2)
    return numerator / (d[:, :, None] * d[:, None, :])


def _construct_factor(r: _Rows, idx: np.ndarray) -> np.ndarray:
    t, o = r.type[idx], r.obs[idx]
    same_type = t[:, :, None] == t[:, None, :]
    same_obs = o[:, :, None] == o[:, None, :]
    within = np.where(same_obs, 1.0, r.rho_obs[o[:, :, None], o[:, None, :]])
    return np.where(same_type, within, r.rho_type[t[:, :, None], t[:, None, :]])


def _blocks(r: _Rows, members: list[np.ndarray], clusters: list) -> list[np.ndarray]:
    """The V block of every cluster, computed for all clusters of one size at a time."""
    out: list = [None] * len(members)
    sizes = np.array([len(m) for m in members])
    not_psd = []
    for m in np.unique(sizes):
        which = np.flatnonzero(sizes == m)
        idx = np.stack([members[c] for c in which])
        cor = _construct_factor(r, idx) * _contrast_factor(r, idx)
        if m > 1:
            low = np.linalg.eigvalsh(cor).min(axis=1)
            not_psd.extend(clusters[c] for c in which[low < -_PSD_TOL])
        sd = np.sqrt(r.vi[idx])
        mats = sd[:, :, None] * cor * sd[:, None, :]
        for c, mat in zip(which, mats):
            out[c] = mat
    if not_psd:
        raise SpecificationError(
            f"vcalc: the correlation matrix is not positive semi-definite in clusters {format_rows(not_psd)}; "
            "check rho and phi.")
    return out


def _groups(grp1, grp2, data, labels, k) -> tuple[np.ndarray, np.ndarray]:
    if grp1 is None:
        if grp2 is not None:
            raise SpecificationError("grp2: given without grp1.")
        return np.zeros(k, int), np.ones(k, int)
    g1, what1 = _resolve(grp1, "grp1", data)
    _check_complete(g1, what1, labels, k)
    if grp2 is None:
        g2, what2 = np.full(k, object()), "grp2"  # a group different from every grp1 value
    else:
        g2, what2 = _resolve(grp2, "grp2", data)
        _check_complete(g2, what2, labels, k)
    codes, _ = _levels(np.concatenate([np.asarray(g1, dtype=object), np.asarray(g2, dtype=object)]))
    c1, c2 = codes[:k], codes[k:]
    same = np.flatnonzero(c1 == c2)
    if len(same):
        raise SpecificationError(f"grp1, grp2: rows {format_rows(labels[same])} contrast a group with itself.")
    return c1, c2


def _weights(w1, w2, grp1, grp2, data, labels, k) -> tuple[np.ndarray, np.ndarray]:
    if w1 is None and w2 is None:
        return np.ones(k), np.ones(k)
    if grp1 is None:
        raise SpecificationError("w1, w2: group weights need grp1 (and grp2).")
    if w1 is None:
        raise SpecificationError("w2: given without w1.")
    if w2 is not None and grp2 is None:
        raise SpecificationError("w2: given without grp2.")
    first = _positive_column(w1, "w1", data, labels, k)
    second = first if w2 is None else _positive_column(w2, "w2", data, labels, k)
    return first, second


def _positive_column(value, name: str, data, labels, k) -> np.ndarray:
    arr, what = _resolve(value, name, data)
    _check_complete(arr, what, labels, k)
    arr = _numeric(arr, what)
    _check_positive(arr, what, labels)
    return arr


def _time(time, phi, data, labels, k) -> tuple[np.ndarray, float]:
    if time is None:
        if phi is not None:
            raise SpecificationError("phi: given without time, so it would not be used.")
        return np.zeros(k), 0.0
    if phi is None:
        raise SpecificationError("phi: required when time is given.")
    if not _is_number(phi) or not 0 <= float(phi) < 1:
        raise SpecificationError(f"phi: the autocorrelation must be a number in [0, 1), got {phi!r}.")
    t, what = _resolve(time, "time", data)
    _check_complete(t, what, labels, k)
    t = _numeric(t, what)
    if not np.isfinite(t).all():
        raise SpecificationError(f"{what}: must be finite.")
    return t, float(phi)


def _categories(value, name, data, labels, k) -> tuple[np.ndarray, list]:
    if value is None:
        return np.zeros(k, int), [None]
    arr, what = _resolve(value, name, data)
    _check_complete(arr, what, labels, k)
    return _levels(arr)


def vcalc(vi, cluster, *, type=None, time=None, obs=None, rho=None, phi: float | None = None,
          grp1=None, grp2=None, w1=None, w2=None, data: pd.DataFrame | None = None) -> ClusterBlocks:
    """Construct the sampling covariance matrix of dependent effect sizes (metafor's ``vcalc``).

    Parameters
    ----------
    vi : str or array_like
        Sampling variances (positive).
    cluster : str or array_like
        Cluster (study) of each row; rows of different clusters are independent.
    type : str or array_like, optional
        Construct (outcome type) of each row; needs ``rho``.
    time : str or array_like, optional
        Numeric time point of each row; needs ``phi``. Used as metafor's
        ``time1`` with ``time2 = time1``.
    obs : str or array_like, optional
        Distinguishes several observations of the same construct; needs ``rho``.
    rho : float, pandas.DataFrame or pair, optional
        Correlation of rows of different ``obs`` (when only ``obs`` is given)
        or different ``type`` (when only ``type`` is given), as a number or a
        DataFrame whose index and columns are the ``obs``/``type`` values.
        With both ``type`` and ``obs``: a pair (within-type, between-type),
        each a number or such a DataFrame.
    phi : float, optional
        Autocorrelation in [0, 1) of rows one time unit apart.
    grp1, grp2 : str or array_like, optional
        The two groups contrasted by each row; rows sharing a group are correlated.
    w1, w2 : str or array_like, optional
        Sizes (inverse-variance weights) of ``grp1`` and ``grp2``; default equal.
    data : pandas.DataFrame, optional
        Where string arguments are looked up as column names.

    Returns
    -------
    ClusterBlocks
        One block per cluster, in order of first appearance, over the rows of
        that cluster in data order. With ``data=`` the blocks carry the index labels
        of their rows and the cluster column (when ``cluster`` names one), so that
        ``MetaModel`` aligns them with its data by label, whatever the row order.

    Raises
    ------
    SpecificationError
        For missing values, non-positive variances or weights, unknown columns,
        length mismatches, correlations outside [-1, 1], ``phi`` outside [0, 1),
        or a cluster whose correlation matrix is not positive semi-definite.

    Examples
    --------
    >>> import pandas as pd
    >>> dat = pd.DataFrame({"study": [1, 1, 2], "vi": [0.04, 0.09, 0.01], "out": ["a", "b", "a"]})
    >>> V = vcalc("vi", "study", type="out", rho=0.5, data=dat)
    >>> V.blocks[0]
    array([[0.04, 0.03],
           [0.03, 0.09]])
    >>> V.to_dense().shape
    (3, 3)
    """
    cl, cl_what = _resolve(cluster, "cluster", data)
    k = len(cl)
    labels = np.asarray(data.index) if data is not None else np.arange(k)
    if data is not None and len(data) != k:
        raise SpecificationError(f"{cl_what}: has length {k} but data has {len(data)} rows.")
    if _is_number(vi):
        vi = np.full(k, vi)
    v = _positive_column(vi, "vi", data, labels, k)
    _check_complete(cl, cl_what, labels, k)
    type_codes, type_levels = _categories(type, "type", data, labels, k)
    obs_codes, obs_levels = _categories(obs, "obs", data, labels, k)
    rho_obs, rho_type = _split_rho(rho, type is not None, obs is not None)
    t, phi_value = _time(time, phi, data, labels, k)
    g1, g2 = _groups(grp1, grp2, data, labels, k)
    weight1, weight2 = _weights(w1, w2, grp1, grp2, data, labels, k)
    rows = _Rows(v, type_codes, obs_codes, _correlation_table(rho_obs, obs_levels, "within-type (obs)"),
                 _correlation_table(rho_type, type_levels, "between-type"), t, phi_value, g1, g2, weight1, weight2)
    codes, clusters = _levels(cl)
    order = np.argsort(codes, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(codes))[:-1])
    # with data=, the blocks know the index labels of their rows (and the cluster column): the safe form
    keyed = {"labels": [labels[m] for m in members], "column": cluster if isinstance(cluster, str) else None} \
        if data is not None else {}
    return ClusterBlocks(k, clusters, members, _blocks(rows, members, clusters), **keyed)
