"""Prior-sensitivity studies: one model sampled under every prior of a grid."""

from __future__ import annotations

import pandas as pd

from ..errors import SpecificationError
from .parallel import check_run_options
from .sensitivity_result import SensitivityResult, result_rows


def _check_priors(priors) -> dict:
    if not isinstance(priors, dict) or not priors:
        raise SpecificationError("priors: expected a dict label -> priors dict (see bm.prior_grid), e.g. "
                                 "{'narrow': {'sd': Prior('HalfNormal', sigma=0.2)}}.")
    for label, value in priors.items():
        if not (isinstance(value, dict) or value == "flat"):
            raise SpecificationError(f"priors: {label!r} must map to a priors dict as sample() takes, "
                                     f"got {type(value).__name__}.")
    return priors


def _sample_one(model, priors, options: dict):
    return model.sample(priors=priors, **options)


def prior_sensitivity(model, priors: dict, *, draws: int = 1000, tune: int = 1000, chains: int = 4,
                      random_seed=None, n_jobs: int = 1, progressbar: bool = True, reference: str | None = "REML",
                      **sample_kwargs) -> SensitivityResult:
    """Sample ``model`` under every prior of ``priors``; see :meth:`bayesmeta.MetaModel.sensitivity`."""
    priors = _check_priors(priors)
    check_run_options(len(priors), n_jobs, "joblib", None)
    options = {"draws": draws, "tune": tune, "chains": chains, "random_seed": random_seed,
               "progressbar": False, **sample_kwargs}
    from tqdm.auto import tqdm

    labels = list(priors)
    if n_jobs == 1:
        fits = [_sample_one(model, priors[label], options)
                for label in tqdm(labels, desc="priors", disable=not progressbar)]
    else:
        from joblib import Parallel, delayed

        jobs = (delayed(_sample_one)(model, priors[label], options) for label in labels)
        fits = list(tqdm(Parallel(n_jobs=n_jobs, return_as="generator")(jobs), total=len(labels), desc="priors",
                         disable=not progressbar))
    rows = [result_rows(fit, "NUTS").assign(prior=label) for label, fit in zip(labels, fits)]
    table = pd.concat(rows, ignore_index=True)
    table = table[["prior"] + [c for c in table.columns if c != "prior"]]
    ref = None
    if reference is not None:
        fit = model.fit(reference)
        fit.confint(progressbar=False)
        ref = fit.table()
    return SensitivityResult(table, {(label, "NUTS"): fit for label, fit in zip(labels, fits)}, ["prior"], ref)
