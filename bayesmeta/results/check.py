"""``fit.check()``: one diagnostic report to read before interpreting a fit.

Modelled on drmTMB's ``check_drm``: every line is a named check with a status
(``"ok"``, ``"note"`` or ``"problem"``), a value and a sentence. A *note* is
worth knowing but not wrong in itself (a variance estimated at 0, rows dropped
for missing values, a dense V); a *problem* makes the reported numbers
unreliable (no convergence, a Hessian that is not positive definite, drifting
scale coefficients, MCMC that has not mixed).

The checks of the data and the model (rows dropped, V, the fixed effects, the
components the data cannot identify) are shared by both engines; ML/REML fits
add the optimiser's, posteriors the sampler's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.parameters import BOUNDARY_THETA
from ..engines.mode.curvature import hessian
from ..engines.mode.objective import Objective
from ..errors import format_rows
from ..likelihood.profiled import NotPositiveDefinite

#: Largest |gradient| (interior parameters, log-likelihood units) counted as converged.
GRADIENT_TOL = 1e-3
#: Condition numbers above this get a note (a nearly singular V block, collinear moderators or Hessian).
CONDITION_NOTE = 1e8
#: Blocks of V larger than this are not decomposed by the check (their eigenvalues are not computed).
MAX_EIGEN_BLOCK = 2000
STATUSES = ("ok", "note", "problem")


@dataclass(frozen=True)
class CheckReport:
    """The checks of a fit: :attr:`table` (a DataFrame, one row per check), printed as text.

    Attributes
    ----------
    table : pandas.DataFrame
        Index ``check``; columns ``status`` (``"ok"``, ``"note"``, ``"problem"``),
        ``value`` and ``message``.
    """

    table: pd.DataFrame

    @property
    def ok(self) -> bool:
        """Whether no check reports a problem."""
        return not (self.table["status"] == "problem").any()

    @property
    def problems(self) -> list[str]:
        """The messages of the checks that report a problem."""
        return self.table.loc[self.table["status"] == "problem", "message"].tolist()

    def to_frame(self) -> pd.DataFrame:
        """The checks as a DataFrame (a copy of :attr:`table`)."""
        return self.table.copy()

    def __str__(self) -> str:
        counts = self.table["status"].value_counts()
        head = f"{len(self.table)} checks: " + "; ".join(f"{s}: {int(counts.get(s, 0))}" for s in STATUSES)
        width = max(map(len, self.table.index))
        lines = [head, ""] + [f"{name:<{width}}  {row.status:<7}  {row.message}"
                              + (f" [{row.value}]" if row.value else "") for name, row in self.table.iterrows()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def _row(check: str, status: str, value, message: str) -> dict:
    return {"check": check, "status": status, "value": "" if value is None else str(value), "message": message}


def _condition(values: np.ndarray) -> float:
    """Largest over smallest of positive ``values`` (inf when the smallest is not positive)."""
    return float(values.max() / values.min()) if values.min() > 0 else np.inf


def data_checks(design, param) -> list[dict]:
    """Rows dropped, V (dimension, storage, smallest eigenvalue, condition), the fixed effects (rank and
    condition), parameters against data, and components the data cannot identify."""
    rows = []
    dropped = design.dropped
    rows.append(_row("dropped_rows", "note" if len(dropped) else "ok", f"used={design.n}; dropped={len(dropped)}",
                     f"rows {format_rows(dropped)} dropped for missing values" if len(dropped)
                     else "no rows dropped"))
    V = design.V
    sizes = [s.size for s in V.stacks]
    largest = max(sizes)
    storage = ("diagonal" if largest == 1 else "dense" if V.n_blocks == 1 and design.n > 1
               else f"{V.n_blocks} blocks (largest {largest} x {largest})")
    small = [np.linalg.eigvalsh(s.mats) for s in V.stacks if s.size <= MAX_EIGEN_BLOCK]
    if small:
        low = min(float(e[:, 0].min()) for e in small)  # eigenvalues ascending, one row per block
        cond = max(float(np.max(e[:, -1] / e[:, 0])) if e[:, 0].min() > 0 else np.inf for e in small)
        value = f"n={design.n}; storage={storage}; min eigenvalue={low:.4g}; condition={cond:.3g}"
        status = "note" if storage == "dense" or cond > CONDITION_NOTE else "ok"
        message = ("V is dense: evaluated as one block" if storage == "dense" else
                   "a block of V is nearly singular" if cond > CONDITION_NOTE else "V is positive definite")
    else:
        value, status, message = f"n={design.n}; storage={storage}", "note", "V's blocks too large to decompose here"
    rows.append(_row("sampling_covariance", status, value, message))
    singular = np.linalg.svd(design.X / np.linalg.norm(design.X, axis=0), compute_uv=False)
    cond_x = _condition(singular)
    rows.append(_row("fixed_effects", "note" if cond_x > CONDITION_NOTE else "ok",
                     f"columns={design.p}; condition={cond_x:.3g}",
                     "moderators nearly collinear" if cond_x > CONDITION_NOTE else "full column rank"))
    n_parms = design.p + param.n_free
    rows.append(_row("parameters", "note" if n_parms >= design.n - 1 else "ok",
                     f"parameters={n_parms}; observations={design.n}",
                     "almost as many parameters as observations" if n_parms >= design.n - 1
                     else "fewer parameters than observations"))
    notes = param.identification_notes()
    free = [n for n in param.not_identified if not n.fixed]
    rows.append(_row("identification", "problem" if free else "note" if notes else "ok", len(notes),
                     "; ".join(notes) if notes else "every variance component is identified"))
    return rows


def _optimiser_checks(fit) -> list[dict]:
    est = fit.estimate
    rows = [_row("convergence", "ok" if est.converged else "problem", f"iterations={est.n_iter}",
                 est.message if est.converged else f"the optimiser did not converge: {est.message}")]
    finite = bool(np.isfinite(fit.loglik))
    rows.append(_row("finite_objective", "ok" if finite else "problem", f"{fit.loglik:.6g}",
                     "the log-likelihood is finite" if finite else "the log-likelihood is not finite"))
    rows.append(_row("gradient", "ok" if est.gradient_norm <= GRADIENT_TOL else "problem",
                     f"max={est.gradient_norm:.3g}",
                     f"max |gradient| of the interior parameters {'<=' if est.gradient_norm <= GRADIENT_TOL else '>'}"
                     f" {GRADIENT_TOL:g}"))
    rows.append(_hessian_check(fit))
    finite_se = bool(np.isfinite(fit.se.to_numpy()).all())
    rows.append(_row("standard_errors", "ok" if finite_se else "problem", None,
                     "all fixed-effect SEs are finite" if finite_se else
                     f"non-finite SEs of {list(fit.se.index[~np.isfinite(fit.se.to_numpy())])}"))
    return rows


def _hessian_check(fit) -> dict:
    """The Hessian of the objective over the interior free parameters: positive definite, and its condition."""
    param, theta = fit.param, fit.estimate.theta
    idx = np.flatnonzero(param.interior(theta, BOUNDARY_THETA)) if param.n_free else np.zeros(0, int)
    if fit.method not in ("ML", "REML"):
        return _row("hessian", "ok", None, "no variance parameters estimated (FE)" if fit.method == "FE" else
                    f"{fit.method} is a moment estimator: no likelihood Hessian to check")
    if len(idx) == 0:
        return _row("hessian", "ok", None, "no interior variance parameters (nothing to check)")
    objective = Objective(fit.design, param, fit.method == "REML")
    try:
        H = objective.hessian(theta) if objective.exact_hessian else None
        H = H[np.ix_(idx, idx)] if H is not None else hessian(objective.gradient, theta, idx)
    except NotPositiveDefinite:
        return _row("hessian", "problem", None, "the likelihood is not defined next to the estimate")
    eig = np.linalg.eigvalsh((H + H.T) / 2)
    if not np.all(np.isfinite(eig)) or eig.min() <= 0:
        return _row("hessian", "problem", f"min eigenvalue={eig.min():.3g}",
                    "the Hessian is not positive definite: the estimate is not a strict maximum (a flat or "
                    "non-identified direction)")
    cond = _condition(eig)
    return _row("hessian", "note" if cond > CONDITION_NOTE else "ok", f"condition={cond:.3g}",
                "the Hessian is positive definite" + (" but ill-conditioned (a nearly flat profile)"
                                                      if cond > CONDITION_NOTE else ""))


def _component_checks(fit) -> list[dict]:
    boundary = fit.boundary
    rows = [_row("boundary", "note" if boundary else "ok", len(boundary),
                 "estimated on the boundary (variance 0 or correlation +-1): " + ", ".join(boundary) if boundary
                 else "no component on its boundary")]
    if fit.param.has_scale:
        drifting = fit.drifting + [f"zeta[{c}]" for c in fit.drifting_zeta]
        rows.append(_row("scale_drift", "problem" if drifting else "ok", len(drifting),
                         "scale coefficients drifting to +-infinity: " + ", ".join(drifting) if drifting
                         else "no scale coefficient drifts"))
    return rows


def check_mode(fit) -> CheckReport:
    """The checks of an ML/REML/FE/moment fit (:class:`~bayesmeta.results.mode.ModeResult`)."""
    rows = _optimiser_checks(fit) + _component_checks(fit) + data_checks(fit.design, fit.param)
    return CheckReport(pd.DataFrame(rows).set_index("check"))


def _mcmc_checks(fit, limits: dict) -> list[dict]:
    if fit.sampler == "laplace":
        return [_row("sampler", "ok", None, "independent draws of the Laplace approximation (no MCMC diagnostics)")]
    d = fit.diagnostics
    return [
        _row("divergences", "problem" if d["divergences"] else "ok", d["divergences"],
             "divergent transitions after tuning" if d["divergences"] else "no divergent transitions"),
        _row("r_hat", "problem" if d["chains"] > 1 and d["max_rhat"] > limits["r_hat"] else "ok",
             f"max={d['max_rhat']:.4f}", f"R-hat at most {limits['r_hat']} means the chains have mixed"),
        _row("ess", "problem" if min(d["min_ess_bulk"], d["min_ess_tail"]) < limits["ess"] else "ok",
             f"bulk={d['min_ess_bulk']:.0f}; tail={d['min_ess_tail']:.0f}",
             f"effective sample sizes of at least {limits['ess']} are needed"),
        _row("bfmi", "problem" if np.isfinite(d["min_bfmi"]) and d["min_bfmi"] < limits["bfmi"] else "ok",
             f"min={d['min_bfmi']:.3g}", f"E-BFMI of at least {limits['bfmi']}"),
    ]


def check_bayes(fit, limits: dict) -> CheckReport:
    """The checks of a posterior (:class:`~bayesmeta.results.posterior.BayesResult`); ``limits`` holds the
    largest R-hat (``"r_hat"``) and the smallest ESS (``"ess"``) and E-BFMI (``"bfmi"``) that pass."""
    rows = _mcmc_checks(fit, limits)
    if fit.design is not None and fit.param is not None:
        rows += data_checks(fit.design, fit.param)
    return CheckReport(pd.DataFrame(rows).set_index("check"))
