"""Parameter values named as in the result tables, turned into the arrays the engines use.

Simulation studies and simulation-based calibration state the "true" parameters
of a model by the labels of :meth:`ModeResult.table <bayesmeta.ModeResult.table>`:
``beta[<coefficient>]``, ``sigma2[<label>]``, ``tau2[<label>]``, ``gamma2[<label>]``,
``rho[<label>]``, ``phi[<label>]``, ``alpha[<name>]``, ``zeta[<name>]`` and ``delta[<name>]``, so that
``fit.table()["estimate"]`` is itself a valid set of values. A family with a single
component may be named without its label (``"tau2"`` for ``"tau2[row]"``). Fixed
components may be left out (they keep their fixed value).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..design.build import Design
from ..design.parameters import FAMILIES, Parameterization
from ..errors import SpecificationError


def truth_labels(design: Design, param: Parameterization) -> list[str]:
    """Labels of every parameter value a simulation needs, in table order.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> model = bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study")
    >>> truth_labels(model.design, model.param)
    ['beta[Intercept]', 'sigma2[district]', 'sigma2[district/study]']
    """
    labels = [f"beta[{name}]" for name in design.coef_names]
    for k, t in enumerate(param.terms):
        if param.scale_of(k) is not None or param.coscale_of(k) is not None:
            continue
        labels += [f"{t.family}[{t.sd_label(i)}]" for i in range(t.n_sd)]
        if FAMILIES.get(t.family):
            labels += [f"{FAMILIES[t.family]}[{t.rho_label(i)}]" for i in range(t.n_rho)]
    return (labels + [f"alpha[{name}]" for name in param.alpha_names()]
            + [f"zeta[{name}]" for name in param.coefficient_names("zeta")]
            + [f"delta[{name}]" for name in param.delta_names()])


def _fixed_values(param: Parameterization) -> dict[str, float]:
    """Values of the fixed components, by label (variances for SDs)."""
    out = {}
    for t, fs, fr in zip(param.terms, param.fixed_sd, param.fixed_rho):
        out.update({f"{t.family}[{t.sd_label(i)}]": float(fs[i]) ** 2 for i in np.flatnonzero(~np.isnan(fs))})
        if FAMILIES.get(t.family):
            out.update({f"{FAMILIES[t.family]}[{t.rho_label(i)}]": float(fr[i])
                        for i in np.flatnonzero(~np.isnan(fr))})
    return out


def complete_truths(design: Design, param: Parameterization, truths) -> dict[str, float]:
    """Every parameter value by label, in table order, checked (fixed components filled in).

    Parameters
    ----------
    design, param
        The model's design and parameterisation.
    truths : dict or pandas.Series
        Values by table label (see the module docstring).

    Raises
    ------
    SpecificationError
        For a missing or unknown label, a value that is not finite, a negative
        variance, a correlation outside [-1, 1] or a fixed component given another value.
    """
    if isinstance(truths, pd.Series):
        truths = truths.to_dict()
    if not isinstance(truths, dict):
        raise SpecificationError(f"params: expected a dict (or Series) of values by table label such as "
                                 f"{{'beta[Intercept]': 0.1}}, got {type(truths).__name__}.")
    labels = truth_labels(design, param)
    families = pd.Series([label.partition("[")[0] for label in labels], index=labels)
    counts = families.value_counts()
    given = {}
    for key, value in truths.items():
        label = key
        if (isinstance(key, str) and key in counts.index and counts[key] == 1
                and key not in ("beta", "alpha", "zeta", "delta")):
            label = families.index[families == key][0]  # "tau2" for the only tau2 component
        if label not in families.index:
            raise SpecificationError(f"params: unknown parameter {key!r}; this model has {', '.join(labels)}.")
        number = float(value)
        if not np.isfinite(number):
            raise SpecificationError(f"params: {key!r} is {value!r}; values must be finite.")
        given[label] = number
    fixed = _fixed_values(param)
    for label, value in fixed.items():
        if label in given and not np.isclose(given[label], value):
            raise SpecificationError(f"params: {label} is fixed at {value:g} in this model, got {given[label]:g}.")
        given.setdefault(label, value)
    missing = [label for label in labels if label not in given]
    if missing:
        raise SpecificationError(f"params: no value for {', '.join(missing)}.")
    for label in labels:
        family = families[label]
        if family in FAMILIES and given[label] < 0:
            raise SpecificationError(f"params: {label} is a variance; got {given[label]:g}.")
        if family in FAMILIES.values() and family and abs(given[label]) > 1:
            raise SpecificationError(f"params: {label} is a correlation; got {given[label]:g}.")
    return {label: given[label] for label in labels}


def truth_arrays(design: Design, param: Parameterization, truths) -> tuple[np.ndarray, dict]:
    """Fixed effects (p,) and the per-family value arrays (1, k) of ``truths`` (see :func:`complete_truths`).

    Returns
    -------
    beta : numpy.ndarray (p,)
    values : dict
        ``{"sigma2": (1, k), "rho": (1, k), "alpha": (1, k), ...}``, in the order of
        :func:`bayesmeta.engines.bayes.draws.covariances_from_draws`.
    """
    given = complete_truths(design, param, truths)
    beta = np.array([given[f"beta[{name}]"] for name in design.coef_names])
    values = {}
    for label, value in given.items():
        family = label.partition("[")[0]
        if family != "beta":
            values.setdefault(family, []).append(value)
    return beta, {family: np.array([v]) for family, v in values.items()}
