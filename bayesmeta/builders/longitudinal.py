"""Longitudinal meta-analysis: repeated estimates over time within studies.

Two specifications (Sera et al. 2019, section 4.5; Ishak et al. 2007):

* time as a factor: one mean per time point, random effects per time point
  with a structure over time between studies (``AR``, ``HAR``, ``UN``, ``DIAG``,
  ...) and, within studies, sampling errors correlated as ``phi ** |step|``;
* time as a continuous variable: a line over time with random intercepts and
  slopes per study (the paper's eq. 11).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..design.columns import check_arguments
from ..errors import SpecificationError, format_rows
from ..model import MetaModel
from ..spec.formulas import quote
from ..spec.structures import GROUPED, SLOPES
from .inputs import complete, extra_terms


def time_steps(values: pd.Series, times) -> tuple[list, np.ndarray]:
    """The declared order of the time points and each row's position in it.

    Raises
    ------
    SpecificationError
        If a row's time is not among ``times`` (naming the rows).
    """
    times = sorted(pd.unique(values.dropna())) if times is None else list(times)
    if len(set(times)) != len(times):
        raise SpecificationError(f"times: values repeat in {times}.")
    position = {t: i for i, t in enumerate(times)}
    unknown = [label for label, v in values.items() if v not in position]
    if unknown:
        raise SpecificationError(f"time: rows {format_rows(unknown)} have time values not in times={times}.")
    return times, values.map(position).to_numpy(dtype=int)


def ar_within(vi: np.ndarray, step: np.ndarray, study: np.ndarray, phi: float) -> list[np.ndarray]:
    """Sampling covariance blocks, ``sqrt(v_i v_j) phi ** |step_i - step_j|`` within each study.

    Rows of one study must be contiguous; blocks come in row order.

    Examples
    --------
    >>> ar_within(np.array([1.0, 4.0]), np.array([0, 2]), np.array(["a", "a"]), 0.5)[0]
    array([[1. , 0.5],
           [0.5, 4. ]])
    """
    blocks, start = [], 0
    change = np.flatnonzero(study[1:] != study[:-1]) + 1
    for stop in [*change, len(study)]:
        sd = np.sqrt(vi[start:stop])
        s = step[start:stop]
        blocks.append(np.outer(sd, sd) * phi ** np.abs(np.subtract.outer(s, s)))
        start = stop
    return blocks


def longitudinal(data: pd.DataFrame, *, yi: str, id: str, time: str, vi: str | None = None, V=None,
                 phi: float | None = None, times=None, time_as: str = "factor", struct: str | None = None,
                 mods: str | None = None, center: float | None = None, na_action: str = "drop") -> MetaModel:
    """A longitudinal model over repeated time points within studies.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format: one row per study and time point.
    yi, id, time : str
        Columns of the estimates, the study and the time point.
    vi : str, optional
        Column of sampling variances; with ``phi``, errors of one study are
        correlated ``phi ** |step|`` where ``step`` counts positions in ``times``.
    V : optional
        The within-study sampling covariance, instead of ``vi`` (as for MetaModel,
        in the row order of the returned model: by study, then time).
    phi : float, optional
        Within-study autocorrelation of the sampling errors (default 0).
    times : list, optional
        The time points in order (default: the sorted values of ``time``). A row
        whose time is not listed is an error.
    time_as : {"factor", "continuous"}
        A mean per time point with random effects structured by ``struct``
        (default ``"AR"``), or a line in time with random intercepts and slopes
        per study (``struct`` ``"UN"``, default, or ``"DIAG"``).
    struct : str, optional
        See ``time_as``.
    mods : str, optional
        Further fixed effects, e.g. ``"~ dose"`` (added to the time terms).
    center : float, optional
        For ``time_as="continuous"``: time is centred here (default: the mean of
        ``times``), so that the intercept is the mean effect at that time.
    na_action : {"drop", "raise"}

    Returns
    -------
    MetaModel
        Over the rows sorted by study (first appearance) and time. Coefficients
        are ``time[t]`` per time point, or ``Intercept`` and ``<time>_c``.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> dat = bm.datasets.load("gliomas").dropna(subset=["logOR"])
    >>> model = bm.longitudinal(dat, yi="logOR", vi="logORvar", id="study", time="time", phi=0.61,
    ...                         struct="DIAG")
    >>> round(model.fit().loglik, 3)
    -45.741
    """
    check_arguments(data, yi=yi, id=id, time=time, vi=vi)
    if time_as not in ("factor", "continuous"):
        raise SpecificationError(f"time_as: expected 'factor' or 'continuous', got {time_as!r}.")
    allowed = GROUPED if time_as == "factor" else SLOPES
    struct = struct or ("AR" if time_as == "factor" else "UN")
    if struct not in allowed:
        raise SpecificationError(f"struct: for time_as={time_as!r} expected one of {', '.join(allowed)}, got {struct!r}.")
    if (vi is None) == (V is None):
        raise SpecificationError("Give the sampling variances as vi= (a column) or V= (blocks), not both or neither.")
    if phi is not None and (V is not None or not 0 <= phi < 1):
        raise SpecificationError("phi: a number in [0, 1), used with vi= (V= already holds the correlations).")
    data = complete(data, [id, time] + ([yi, vi] if phi else []), na_action)
    times, step = time_steps(data[time], times)
    dat = data.assign(_step=step, _first=data[id].map({s: i for i, s in enumerate(pd.unique(data[id]))}))
    dat = dat.sort_values(["_first", "_step"], kind="stable")
    if V is not None and not dat.index.equals(data.index):
        raise SpecificationError("V: the rows are not ordered by study and time, so V's blocks cannot be matched; "
                                 "sort the data by study then time, or give vi= (and phi=).")
    repeated = dat.duplicated([id, time], keep=False)
    if repeated.any():
        raise SpecificationError(f"time: rows {format_rows(dat.index[repeated])} repeat a time point within a study.")
    fixed = extra_terms(mods)
    if time_as == "factor":
        dat[time] = pd.Categorical(dat[time], categories=times)
        formula, random = f"{quote(yi)} ~ 0 + {quote(time)}{fixed}", f"~ {quote(time)} | {quote(id)}"
    else:
        centred = f"{time}_c"
        dat[centred] = dat[time] - (float(np.mean(times)) if center is None else center)
        formula, random = f"{quote(yi)} ~ 1 + {quote(centred)}{fixed}", f"~ 1 + {quote(centred)} | {quote(id)}"
    if phi:
        V = ar_within(dat[vi].to_numpy(float), dat["_step"].to_numpy(), dat[id].to_numpy(), phi)
    model_vi = vi if V is None else None
    return MetaModel(formula, dat.drop(columns=["_step", "_first"]), vi=model_vi, V=V, random=random,
                     struct=struct, na_action=na_action)
