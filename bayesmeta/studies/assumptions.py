"""Sensitivity to what the model assumes but the data do not tell: e.g. within-study correlations.

Within-study correlations behind V are rarely reported and are usually guessed;
the answer should be checked across plausible values. :func:`assumption_sensitivity`
builds the model at every value (through a function of the user's, typically
calling :func:`bayesmeta.vcalc`), fits it with every method and collects one tidy
table (:class:`~bayesmeta.studies.sensitivity_result.SensitivityResult`).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..engines.bayes.options import check_sampler_options, default_sampler
from ..errors import SpecificationError
from ..results.posterior import BayesResult
from .sensitivity_result import SensitivityResult, result_rows

ROBUST_METHODS = ("CR2", "CR1", "CR0")
BAYES_METHODS = ("NUTS",)


def _check(values: dict, methods: tuple, cluster) -> list[dict]:
    if not isinstance(values, dict) or not values:
        raise SpecificationError("values: expected a dict of assumption -> values, e.g. {'rho': [0, 0.4, 0.8]}.")
    for name, options in values.items():
        if isinstance(options, (str, bytes)) or not np.iterable(options) or not len(options):
            raise SpecificationError(f"values: {name!r} needs a list of values, got {options!r}.")
    unknown = [m for m in methods if not isinstance(m, str)]
    if not methods or unknown:
        raise SpecificationError(f"methods: expected names such as ('REML', 'CR2', 'NUTS'), got {methods!r}.")
    if any(m in ROBUST_METHODS for m in methods) and cluster is None:
        raise SpecificationError("cluster: robust methods (CR2, CR1, CR0) need the clustering variable, "
                                 "e.g. cluster='study'.")
    names = list(values)
    return [dict(zip(names, combination)) for combination in itertools.product(*values.values())]


class _CompiledOnce:
    """NUTS at every setting with nutpie on one compiled model per model structure and priors: the
    settings' sampling covariances (and outcomes) are data of the compiled model
    (:class:`~bayesmeta.engines.bayes.data_sampler.DataSampler`). Other settings (another sampler,
    ``loo="cluster"``, designs nutpie cannot take) go through ``model.sample``."""

    def __init__(self, options: dict):
        self.options = dict(options)
        self.sampler = self.options.pop("sampler", None) or default_sampler()
        self.compiled = []  # DataSamplers made so far

    def __call__(self, model, level: float):
        from ..engines.bayes import data_sampler
        from ..engines.bayes.priors import resolve_priors

        options = dict(self.options)
        priors = options.pop("priors", None)
        loo = options.pop("loo", "row")
        if (self.sampler != "nutpie" or loo != "row" or priors == "flat"
                or not data_sampler.supports(model.design)):
            return model.sample(level=level, progressbar=False, sampler=self.sampler, loo=loo, priors=priors,
                                **options)
        check_sampler_options("nutpie", {k: v for k, v in options.items()
                                         if k not in ("draws", "tune", "chains", "random_seed", "cores")})
        options.pop("cores", None)
        prior_set = resolve_priors(model.design, model.param, priors)
        sampler = next((s for s in self.compiled if s.prior_set == prior_set
                        and data_sampler.same_structure(s.design, model.design)), None)
        if sampler is None:
            sampler = data_sampler.DataSampler(model.design, model.param, prior_set)
            self.compiled.append(sampler)
        idata = sampler.sample_complete(model.design, model.param, **options)
        return BayesResult(idata, prior_set, "nutpie", level, model.design, model.param)


def _fits(model, setting: dict, methods: tuple, cluster, level: float, nuts: _CompiledOnce) -> dict:
    """``method -> result`` for one setting (robust methods on the REML fit)."""
    out, reml = {}, None
    for method in methods:
        if method in BAYES_METHODS:
            out[method] = nuts(model, level)
            continue
        if method in ROBUST_METHODS:
            if reml is None:
                reml = model.fit("REML", level=level)
            out[method] = reml.robust(cluster, adjust=method)
            continue
        fit = model.fit(method, level=level)
        if method == "REML":
            reml = fit
        if method != "FE":
            fit.confint(level, progressbar=False)  # the table's intervals, computed silently
        out[method] = fit
    return out


def assumption_sensitivity(make_model, values: dict, methods=("REML", "CR2", "NUTS"), *, cluster=None,
                           level: float = 0.95, draws: int = 1000, tune: int = 1000, chains: int = 4,
                           random_seed=None, progressbar: bool = True, **sample_kwargs) -> SensitivityResult:
    """Fit a model at every value of an assumption, with every method.

    Parameters
    ----------
    make_model : callable
        ``make_model(**setting)`` returns a :class:`~bayesmeta.MetaModel`; it is called with
        every combination of ``values``.
    values : dict
        Assumption name -> values, e.g. ``{"rho": [0, 0.2, 0.4, 0.6, 0.8]}``; several names
        give their Cartesian product.
    methods : sequence of str
        ``"REML"``, ``"ML"``, moment estimators, ``"CR2"`` / ``"CR1"`` / ``"CR0"`` (cluster-robust
        tests of the fixed effects on the REML fit) and ``"NUTS"``.
    cluster : str or array_like, optional
        The clustering variable of the robust methods (as for
        :meth:`~bayesmeta.ModeResult.robust`).
    level : float
        Probability of the intervals.
    draws, tune, chains, random_seed, **sample_kwargs
        NUTS settings (the same seed for every setting, so differences come from the assumption).
        With nutpie installed (``sampler="nutpie"``, the default then) the model is compiled once:
        the settings' sampling covariances enter it as data; ``sampler="pymc"`` builds and
        compiles every setting's model.
    progressbar : bool

    Returns
    -------
    SensitivityResult
        ``table`` with one column per assumption, then ``method, parameter, estimate, se,
        ci_lb, ci_ub`` (and ESS, R-hat, divergences for NUTS); ``results[(label, method)]``.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> dat = bm.datasets.load("berkey1998")
    >>> def make(rho):
    ...     V = bm.vcalc("vi", cluster="trial", type="outcome", rho=rho, data=dat)
    ...     return bm.MetaModel("yi ~ 0 + outcome", dat, V=V, random="~ outcome | trial", struct="UN")
    >>> sens = bm.assumption_sensitivity(make, {"rho": [0.0, 0.5]}, methods=("REML", "CR2"), cluster="trial",
    ...                                  progressbar=False)
    >>> print(sens.summary("beta[outcome[PD]]"))
     rho method         parameter  estimate  ci_lb  ci_ub
     0.0   REML beta[outcome[PD]]    0.3446 0.2375 0.4516
     0.0    CR2 beta[outcome[PD]]    0.3446 0.1919 0.4972
     0.5   REML beta[outcome[PD]]    0.3578 0.2386 0.4769
     0.5    CR2 beta[outcome[PD]]    0.3578 0.1873 0.5283
    """
    methods = tuple(methods)
    settings = _check(values, methods, cluster)
    nuts = _CompiledOnce({"draws": draws, "tune": tune, "chains": chains, "random_seed": random_seed, **sample_kwargs})
    from tqdm.auto import tqdm

    rows, results = [], {}
    for setting in tqdm(settings, desc="settings", disable=not progressbar):
        label = ", ".join(f"{k}={v}" for k, v in setting.items())
        fits = _fits(make_model(**setting), setting, methods, cluster, level, nuts)
        for method, result in fits.items():
            results[(label, method)] = result
            part = result_rows(result, method)
            for position, (name, value) in enumerate(setting.items()):
                part.insert(position, name, value)
            rows.append(part)
    return SensitivityResult(pd.concat(rows, ignore_index=True), results, list(values))
