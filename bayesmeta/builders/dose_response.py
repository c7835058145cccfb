"""One-stage dose-response meta-analysis (Sera et al. 2019, section 4.4).

Every study reports log relative risks of several exposure levels against its
own reference level. The non-reference log RRs of a study share the reference
group, so their sampling errors are correlated: Greenland and Longnecker's
covariance (:func:`bayesmeta.gl_covariance`) gives the within-study blocks. The
dose-response curve is linear in the dose or a natural cubic spline, without an
intercept (log RR 0 at the reference), with random study deviations in all or
some of its coefficients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..design.columns import check_arguments
from ..errors import SpecificationError, format_rows
from ..inference.combinations import lincom
from ..model import MetaModel
from ..prep.greenland_longnecker import gl_covariance
from ..spec.formulas import quote
from .inputs import by_first_appearance

COVARIANCES = ("gl", "diagonal")
RANDOM = ("same", "linear", "none")


class DoseResponseModel(MetaModel):
    """A :class:`~bayesmeta.MetaModel` of a dose-response curve that predicts relative risks.

    Attributes
    ----------
    dose : str
        The dose column.
    """

    dose: str

    def relative_risks(self, result, doses, *, reference: float = 0.0, level: float | None = None) -> pd.DataFrame:
        """Pooled relative risks at ``doses`` against the ``reference`` dose.

        Parameters
        ----------
        result : ModeResult or BayesResult
            A fit or posterior of this model.
        doses : array_like
        reference : float
            The dose of relative risk 1 (default 0).
        level : float, optional

        Returns
        -------
        pandas.DataFrame
            Indexed by dose: ``estimate`` (RR), ``se`` (of the log RR for a fit; of
            the RR for a posterior), ``lower``, ``upper``.
        """
        doses = np.atleast_1d(np.asarray(doses, dtype=float))
        grid = self.design.new_rows(pd.DataFrame({self.dose: doses}))[0]
        at_reference = self.design.new_rows(pd.DataFrame({self.dose: [float(reference)]}))[0]
        L = pd.DataFrame(grid - at_reference, index=pd.Index(doses, name=self.dose), columns=self.design.coef_names)
        return lincom(result, L, level=level, transform=np.exp)

    def plot_curve(self, results: dict, doses, *, reference: float = 0.0, ax=None):
        """The pooled curve (RR against dose) with its interval, for one or more results.

        Parameters
        ----------
        results : dict
            Label -> ModeResult or BayesResult, e.g. ``{"ML": fit, "NUTS": post}``.
        doses : array_like
        reference : float
        ax : matplotlib.axes.Axes, optional

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        for label, result in results.items():
            rr = self.relative_risks(result, doses, reference=reference)
            line, = ax.plot(rr.index, rr["estimate"], label=label)
            ax.fill_between(rr.index, rr["ci_lb"], rr["ci_ub"], color=line.get_color(), alpha=0.2)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xlabel(self.dose)
        ax.set_ylabel(f"relative risk (vs {self.dose} = {reference:g})")
        ax.legend()
        return ax


def dose_response(data: pd.DataFrame, *, id: str, dose: str, logrr: str, se: str, cases: str | None = None,
                  n: str | None = None, type: str | None = None, covariance: str = "gl", knots=None,
                  random: str = "same", solver: str = "exact") -> DoseResponseModel:
    """A one-stage dose-response model.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per exposure level and study, including each study's reference row
        (``se`` missing, ``logrr`` 0). Reference rows define the covariance and are
        not outcomes: the model uses the other rows.
    id, dose, logrr, se : str
        Columns: study, dose, log relative risk and its standard error.
    cases, n, type : str, optional
        For ``covariance="gl"``: cases, subjects or person-time, and the study type
        (a column or one of ``"ci"``, ``"ir"``, ``"cc"``); see :func:`bayesmeta.gl_covariance`.
    covariance : {"gl", "diagonal"}
        Greenland-Longnecker within-study covariance, or independent errors (``se**2``).
    knots : list of float, optional
        Interior knots of a natural cubic spline in the dose (``ns(dose, knots=...)``,
        boundary knots at the range of the non-reference doses, as R's ``ns``);
        default: a linear curve.
    random : {"same", "linear", "none"}
        Random study deviations in every coefficient of the curve (``"same"``, with
        an unstructured covariance), in a linear slope only (``"linear"``), or none.
    solver : {"exact", "dosresmeta"}
        See :func:`bayesmeta.gl_covariance`.

    Returns
    -------
    DoseResponseModel

    Examples
    --------
    >>> import bayesmeta as bm
    >>> alcohol = bm.datasets.load("alcohol")
    >>> model = bm.dose_response(alcohol, id="id", dose="dose", logrr="logrr", se="se", cases="cases",
    ...                          n="peryears", type="type")
    >>> fit = model.fit("ML")
    >>> rr = model.relative_risks(fit, [12])
    >>> [round(float(rr.loc[12.0, c]), 3) for c in ("estimate", "ci_lb", "ci_ub")]
    [1.08, 1.046, 1.115]
    """
    check_arguments(data, id=id, dose=dose, logrr=logrr, se=se, cases=cases, n=n)
    if covariance not in COVARIANCES:
        raise SpecificationError(f"covariance: expected 'gl' or 'diagonal', got {covariance!r}.")
    if random not in RANDOM:
        raise SpecificationError(f"random: expected one of {', '.join(RANDOM)}, got {random!r}.")
    if covariance == "gl" and None in (cases, n, type):
        raise SpecificationError("covariance='gl' needs cases=, n= and type= (or use covariance='diagonal').")
    if data[dose].isna().any():
        raise SpecificationError(f"dose: missing in rows {format_rows(data.index[data[dose].isna()])}.")
    outcome_rows = data[data[se].notna()]
    if covariance == "gl":
        V = {"V": gl_covariance(data, id=id, logrr=logrr, se=se, cases=cases, n=n, type=type, solver=solver)}
        outcome_rows = by_first_appearance(outcome_rows, id)  # the blocks' order
    else:
        V = {"vi": outcome_rows[se].to_numpy(float) ** 2}
    curve = quote(dose) if knots is None else f"ns({quote(dose)}, knots={[float(k) for k in knots]})"
    group = quote(id)
    terms = {"same": [f"~ 0 + {curve} | {group}"], "linear": [f"~ 0 + {quote(dose)} | {group}"], "none": []}[random]
    model = DoseResponseModel(f"{quote(logrr)} ~ 0 + {curve}", outcome_rows, random=terms, **V)
    model.dose = dose
    return model
