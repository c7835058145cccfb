"""Prior-sensitivity studies: one model sampled under every prior of a grid."""

from __future__ import annotations

import pandas as pd

from ..engines.bayes.options import check_sampler_options, default_sampler
from ..errors import SpecificationError
from ..results.posterior import BayesResult
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


def _sample_compiled_once(model, priors: dict, options: dict, progressbar: bool) -> list:
    """Every prior set with nutpie, one compiled log-density per set of prior families."""
    from ..engines.bayes import sampling
    from ..engines.bayes.priors import resolve_priors

    options = dict(options)
    level = options.pop("level", 0.95)
    options.pop("sampler")
    check_sampler_options("nutpie", {k: v for k, v in options.items() if k not in SAMPLE_ARGUMENTS})
    prior_sets = [resolve_priors(model.design, model.param, p) for p in priors.values()]
    from tqdm.auto import tqdm

    with tqdm(total=len(prior_sets), desc="priors", disable=not progressbar) as bar:
        runs = sampling.sample_grid(model.design, model.param, prior_sets, done=bar.update, **options)
    return [BayesResult(idata, prior_set, "nutpie", level, model.design, model.param)
            for (idata, _), prior_set in zip(runs, prior_sets)]


#: Arguments of sample() that sample_grid takes by name.
SAMPLE_ARGUMENTS = ("draws", "tune", "chains", "cores", "random_seed", "progressbar", "loo")


def prior_sensitivity(model, priors: dict, *, draws: int = 1000, tune: int = 1000, chains: int = 4,
                      random_seed=None, n_jobs: int = 1, progressbar: bool = True, reference: str | None = "REML",
                      **sample_kwargs) -> SensitivityResult:
    """Sample ``model`` under every prior of ``priors``; see :meth:`bayesmeta.MetaModel.sensitivity`."""
    priors = _check_priors(priors)
    check_run_options(len(priors), n_jobs, "joblib", None)
    sampler = sample_kwargs.pop("sampler", None) or default_sampler()
    options = {"draws": draws, "tune": tune, "chains": chains, "random_seed": random_seed,
               "progressbar": False, "sampler": sampler, **sample_kwargs}
    from tqdm.auto import tqdm

    labels = list(priors)
    if sampler == "nutpie" and n_jobs == 1 and not any(p == "flat" for p in priors.values()):
        fits = _sample_compiled_once(model, priors, {**options, "cores": options.get("cores")}, progressbar)
    elif n_jobs == 1:
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
