"""Arm-based meta-analysis: arm-level outcomes with correlated random arm effects.

Each study arm contributes its own outcome (log risk, logit risk, risk or
mean). With random study effects (van Houwelingen et al. 1993), the arms of a
study share a bivariate (multivariate, one dimension per treatment) random
effect with an unstructured covariance; treatment contrasts are differences of
the arm means. With fixed study effects and a random treatment effect, the
model is exactly the contrast-based random-effects model.
"""

from __future__ import annotations

import pandas as pd

from ..design.columns import check_arguments
from ..errors import SpecificationError
from ..inference.combinations import lincom
from ..model import MetaModel
from ..spec.formulas import quote
from .arm_data import arm_inputs, arm_levels, arm_outcomes, check_one_row_per_arm
from .inputs import complete, extra_terms, identifier

STUDY_EFFECTS = ("random", "fixed")


class ArmBasedModel(MetaModel):
    """A :class:`~bayesmeta.MetaModel` of arm-level outcomes that knows its treatments.

    Attributes
    ----------
    treatments : list
        The treatments, reference first.
    contrast_terms : dict
        For every non-reference treatment, the combination of coefficients that is
        its contrast with the reference.
    """

    treatments: list
    contrast_terms: dict

    def contrasts(self, result, *, level: float | None = None, transform=None) -> pd.DataFrame:
        """Every treatment against the reference, from a likelihood fit or a posterior of this model.

        ``level`` (default: the result's) and ``transform`` (e.g. ``numpy.exp`` for risk
        ratios) are passed to :func:`bayesmeta.lincom`; the table has one row
        ``"<treatment> vs <reference>"`` with ``estimate``, ``se``, ``ci_lb``, ``ci_ub``.
        """
        return lincom(result, self.contrast_terms, level=level, transform=transform)


def arm_based(data: pd.DataFrame, *, study: str, arm: str, events: str | None = None, total: str | None = None,
              mean: str | None = None, sd: str | None = None, n: str | None = None, measure: str = "PLN",
              reference=None, study_effects: str = "random", mods: str | None = None,
              na_action: str = "drop") -> ArmBasedModel:
    """An arm-based model from arm-level data (one row per study arm).

    Parameters
    ----------
    data : pandas.DataFrame
    study, arm : str
        Columns of the study and of the treatment of each arm.
    events, total : str, optional
        Counts: events and arm size.
    mean, sd, n : str, optional
        Means: arm mean, SD and size (instead of counts).
    measure : {"PLN", "PLO", "PR", "MN"}
        Arm outcome: log risk (default), logit risk, risk; ``"MN"`` for means.
    reference : optional
        The reference treatment of the contrasts (default: the first category or
        the first sorted value of ``arm``).
    study_effects : {"random", "fixed"}
        ``"random"``: ``y = mu_arm + u_study,arm`` with an unstructured covariance of
        the arm effects of a study (``fit.tau2``, ``fit.rho``). ``"fixed"``: a fixed
        effect per study plus a random treatment effect per study; its contrast
        equals the contrast-based random-effects model exactly.
    mods : str, optional
        Further fixed effects, e.g. ``"~ ablat"``.
    na_action : {"drop", "raise"}

    Returns
    -------
    ArmBasedModel
        A MetaModel on the arm rows (columns ``yi`` and ``vi`` added), with
        :meth:`ArmBasedModel.contrasts`.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> bcg = bm.datasets.load("bcg")
    >>> arms = pd.concat([
    ...     pd.DataFrame({"trial": bcg["trial"], "arm": "vaccine", "events": bcg["tpos"],
    ...                   "total": bcg["tpos"] + bcg["tneg"]}),
    ...     pd.DataFrame({"trial": bcg["trial"], "arm": "control", "events": bcg["cpos"],
    ...                   "total": bcg["cpos"] + bcg["cneg"]})], ignore_index=True)
    >>> model = bm.arm_based(arms, study="trial", arm="arm", events="events", total="total")
    >>> fit = model.fit()
    >>> round(float(model.contrasts(fit)["estimate"].iloc[0]), 3), round(float(fit.rho.iloc[0]), 2)
    (-0.713, 0.94)
    """
    check_arguments(data, study=study, arm=arm)
    arm_inputs(data, events, total, mean, sd, n)
    if study_effects not in STUDY_EFFECTS:
        raise SpecificationError(f"study_effects: expected 'random' or 'fixed', got {study_effects!r}.")
    clash = [c for c in ("yi", "vi") if c in data.columns]
    if clash:
        raise SpecificationError(f"data: already has column(s) {clash}, which the arm outcomes would replace; "
                                 "rename them.")
    dat = complete(data, [study, arm, events, total, mean, sd, n], na_action)
    check_one_row_per_arm(dat, study, arm)
    yi, vi = arm_outcomes(dat, measure, events=events, total=total, mean=mean, sd=sd, n=n)
    treatments = arm_levels(dat[arm], reference)
    dat = dat.assign(yi=yi, vi=vi)
    dat[arm] = pd.Categorical(dat[arm], categories=treatments)
    extra = extra_terms(mods)
    ref = treatments[0]
    if study_effects == "random":
        formula, random, struct = f"yi ~ 0 + {quote(arm)}{extra}", f"~ {quote(arm)} | {quote(study)}", "UN"
        contrast = {f"{t} vs {ref}": {f"{arm}[{t}]": 1.0, f"{arm}[{ref}]": -1.0} for t in treatments[1:]}
    else:
        indicators = {}
        for t in treatments[1:]:
            name = identifier(arm, t, taken=set(dat.columns) | set(indicators))
            indicators[name] = (dat[arm] == t).to_numpy(float)
        dat = dat.assign(**indicators)
        slopes = " + ".join(indicators)
        formula = f"yi ~ 0 + C({quote(study)}) + {slopes}{extra}"
        random = f"~ 0 + {slopes} | {quote(study)}"
        struct = "UN" if len(indicators) > 1 else None
        contrast = {f"{t} vs {ref}": {name: 1.0} for t, name in zip(treatments[1:], indicators)}
    model = ArmBasedModel(formula, dat, vi="vi", random=random, struct=struct, na_action=na_action)
    model.treatments = treatments
    model.contrast_terms = contrast
    return model

