"""The user-facing model specification, :class:`MetaModel`.

A MetaModel records what was asked (formula, sampling covariance, random
terms, fixed components, scale models), encodes it on the data once (raising
clear errors for bad input) and hands the frozen design and parameterisation to
an engine. The Bayesian engine (PyMC, PyTensor, ArviZ) is imported only by the
methods that use it: ML/REML needs none of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .design.build import Design, build_design
from .design.coscale import encode_coscale_models
from .design.columns import require_frame
from .design.identifiability import find_non_identified
from .design.parameters import Parameterization, build_parameterization
from .design.scale_models import (
    check_v_scale_identified,
    encode_scale_models,
    encode_v_scale,
)
from .engines.bayes.options import check_sampler_options, default_sampler
from .engines.mode.moments import MOMENT_METHODS, fit_moments
from .engines.mode.optimize import fit_mode
from .errors import BoundaryWarning, IdentificationWarning, SpecificationError, warn
from .inference.intervals import check_level
from .results.mode import ModeResult
from .results.posterior import BayesResult
from .spec.random_terms import parse_random
from .spec.scale_argument import cite, formulas, requested, scale_columns
from .studies.prior_sensitivity import prior_sensitivity
from .studies.sensitivity_result import SensitivityResult
from .studies.simulation import simulate_data

_METHODS = ("ML", "REML", "FE")


class MetaModel:
    """A meta-analytic linear mixed model with known sampling covariance.

    The model is ``y = X b + Z u + e`` with ``e ~ N(0, V)``, V known, and random
    effects ``u`` given by metafor-style terms.

    Parameters
    ----------
    formula : str
        Fixed effects, outcome on the left: ``"yi ~ 1"``, ``"yi ~ 0 + C(outcome)"``,
        ``"logrr ~ 0 + ns(dose, knots=[10, 25])"``.
    data : pandas.DataFrame
    vi : str or array_like, optional
        Sampling variances: a column name or one value per row.
    V : array_like, scipy.sparse matrix or list of arrays, optional
        Sampling covariance: an n x n matrix or per-cluster blocks in row order.
    random : str, list of str or None
        ``None`` (default) is the standard random-effects model with one
        row-level effect (metafor's ``rma()``); ``[]`` is the common-effect
        model; otherwise metafor-style terms such as ``"~ 1 | district/study"``,
        ``"~ outcome | trial"`` or ``"~ 1 + time | study"``.
    struct : str or list of str, optional
        Structure of each non-nested term: ``"ID"``, ``"DIAG"``, ``"CS"`` (default),
        ``"HCS"``, ``"UN"``, ``"AR"``, ``"HAR"``; random slopes take ``"UN"`` (default)
        or ``"DIAG"``.
    fixed : dict, optional
        Components held fixed, e.g. ``{"sigma2": [None, 0.0]}`` or ``{"rho": 0.5}``.
    scale : str or dict, optional
        Location-scale model: the log of a random level's variance is linear in
        moderators. ``"~ z"`` models the model's only level (the standard model's
        heterogeneity, ``log tau_i^2 = z_i' alpha``, as metafor's ``rma(..., scale = ~ z)``);
        a dict such as ``{"study": "~ w", "district": "~ v"}`` models levels of nested
        random intercepts, named by their innermost column (moderators must be
        constant within the groups of their level). See :mod:`bayesmeta.spec.scale_argument`.
        With ``V=`` blocks (or random terms that are not nested intercepts) the modelled
        levels must be random intercepts, e.g. ``V=blocks, scale="~ z"`` (drmTMB's
        ``sigma ~ z`` with ``meta_V(V)``); see ``docs/coscale.md``. A structured term
        ``inner | outer`` takes ``{"tau": ..., "rho": ...}``: the log variance of every
        (cluster, level) cell and Fisher's z of every cluster's correlation are linear in
        moderators (multivariate location-coscale), e.g.
        ``scale={"outcome | study": {"tau": "~ 0 + outcome + outcome:habitat", "rho": "~ habitat"}}``;
        see ``docs/multivariate_coscale.md`` and :mod:`bayesmeta.design.coscale`.
    V_scale : str, optional
        A proportional (multiplicative) sampling-variance component: the known
        sampling covariance is scaled to ``D^1/2 V D^1/2`` with
        ``D = diag(exp(w_i' delta))``, ``w_i`` the row-level moderators of this
        one-sided formula (``"~ 1"``: one common factor ``phi = exp(delta)``).
        ``random=[]`` with ``V_scale="~ 1"`` is Stanley and Doucouliagos' unrestricted
        weighted least squares (UWLS); ``random=None`` keeps the standard model's
        additive row-level heterogeneity beside it (``tau^2 + phi v_i``), which is
        identified only when the sampling variances differ between rows (or V has
        covariances): with equal variances a SpecificationError is raised. The
        coefficients are ``fit.delta`` (rows ``delta[...]`` of ``fit.table()``), and
        ``delta`` in the posterior of ``sample()`` (default priors:
        :mod:`bayesmeta.engines.bayes.priors`); see ``docs/coscale.md``.
    na_action : {"drop", "raise"}
        Drop rows with missing values (with a warning naming them) or raise.
    trusted : bool
        Formulas may contain only data columns, numbers, arithmetic and a list of
        transforms, because formula text is evaluated as Python (see
        :mod:`bayesmeta.spec.formulas`); ``trusted=True`` lifts that restriction for
        formulas you wrote yourself. Never use it for formulas or column names that
        come from data files or other people.

    Examples
    --------
    >>> import bayesmeta as bm
    >>> dat = bm.datasets.load("school")
    >>> fit = bm.MetaModel("effect ~ 1", data=dat, vi="var", random="~ 1 | district/study").fit()
    >>> round(float(fit.coef.iloc[0]), 4)
    0.1847

    A location-scale model, heterogeneity depending on treatment length:

    >>> dat = bm.datasets.load("bangertdrowns2004")
    >>> fit = bm.MetaModel("yi ~ length", data=dat, vi="vi", scale="~ length").fit()
    >>> fit.alpha.round(4)
    Intercept   -3.6011
    length       0.0472
    Name: alpha, dtype: float64

    Unrestricted weighted least squares (multiplicative heterogeneity, no random effects):

    >>> dat = bm.datasets.load("bcg")
    >>> uwls = bm.MetaModel("logrr ~ 1", data=dat, vi="logrrvar", random=[], V_scale="~ 1").fit("ML")
    >>> round(float(uwls.delta["Intercept"]), 4)  # log of the factor phi
    2.4605
    """

    def __init__(self, formula: str, data: pd.DataFrame, *, vi=None, V=None, random=None,
                 struct=None, fixed: dict | None = None, scale=None, V_scale: str | None = None,
                 na_action: str = "drop", trusted: bool = False):
        if not isinstance(formula, str):
            raise SpecificationError(f"formula: expected a string such as 'yi ~ 1', got {type(formula).__name__}.")
        if random is None and struct is not None:
            raise SpecificationError("struct: given, but random is None (the standard model has no structure).")
        if fixed is not None and not isinstance(fixed, dict):
            raise SpecificationError(f"fixed: expected a dict such as {{'sigma2': [None, 0.0]}}, got "
                                     f"{type(fixed).__name__}.")
        self.formula = formula
        self.random = random
        self.struct = struct
        self.fixed = dict(fixed or {})
        self.scale = scale
        self.V_scale = V_scale
        terms = None if random is None else parse_random(random, struct) if random != [] else ()
        self.terms = terms
        require_frame(data)
        scale_needs = {place: scale_columns(f, place, data.columns, trusted)
                       for key, value in requested(scale) for place, f in formulas(cite(key), value)}
        if V_scale is not None:
            scale_needs["V_scale"] = scale_columns(V_scale, "V_scale", data.columns, trusted)
        self.design: Design = build_design(formula, data, vi=vi, V=V, terms=terms, na_action=na_action,
                                           extra_columns=scale_needs, trusted=trusted, closed_form=V_scale is None)
        used = data.iloc[self.design.positions]
        scale_models, structured = encode_scale_models(scale, self.design.encodings, used)
        coscale_models = encode_coscale_models(structured, self.design.encodings, used)
        v_scale = encode_v_scale(V_scale, used)
        if v_scale is not None:
            check_v_scale_identified(self.design.V, self.design.encodings)
        typical_sd = float(np.sqrt(np.mean(self.design.V.diagonal())))
        not_identified = find_non_identified(self.design.encodings, scale_models)
        self.param: Parameterization = build_parameterization(self.design.terms, self.fixed, typical_sd,
                                                              scale_models, not_identified, v_scale, coscale_models)
        for note in self.param.identification_notes():
            warn(note + ".", IdentificationWarning)
        n_parms = self.design.p + self.param.n_free
        if n_parms > self.design.n:
            raise SpecificationError(
                f"The model has {n_parms} parameters ({self.design.p} fixed effects and "
                f"{self.param.n_free} variance components) but only {self.design.n} rows of data."
            )

    def fit(self, method: str = "REML", *, test: str = "z", level: float = 0.95,
            control: dict | None = None, priors=None, restricted: bool = False, draws: int = 1000,
            random_seed=None):
        """Estimate by maximum likelihood (or, for the standard model, another estimator of tau^2).

        Parameters
        ----------
        method : {"REML", "ML", "FE", "DL", "HE", "HS", "SJ", "EB", "PM", "MAP", "laplace"}
            Restricted or full maximum likelihood, a fixed-effects (common-effect)
            fit with all free variance components at zero, the posterior mode of the
            Bayesian model (``"MAP"``), or a Gaussian approximation at that mode with
            draws (``"laplace"``, returns a :class:`~bayesmeta.BayesResult`). For the
            standard model (``random=None``, no ``scale=``) also metafor's other
            estimators of tau^2: DerSimonian-Laird, Hedges, Hunter-Schmidt,
            Sidik-Jonkman, empirical Bayes and Paule-Mandel
            (:mod:`bayesmeta.engines.mode.moments`); their log-likelihood, AIC, BIC
            and AICc are the ML ones at the estimate, as metafor reports them.
        test : {"z", "t", "knha"}
            Wald tests and intervals from the normal or from a t distribution with
            k - p degrees of freedom; ``"knha"`` (Knapp and Hartung, standard model
            only, as metafor's ``rma(test="knha")``) also multiplies the covariance of
            the fixed effects by ``r' W r / (k - p)`` (``fit.s2w``), the weighted
            residual sum of squares over its degrees of freedom, and tests moderators
            jointly by an F test. metafor's ``rma.mv`` (models with random terms)
            offers only ``"t"``, and so does this method there.
        level : float
            Confidence level of the intervals.
        control : dict, optional
            Optimizer settings: ``maxiter`` (L-BFGS iterations, default 2000) and
            ``polish`` (Newton polishing steps after L-BFGS, default True).
        priors : dict or "flat", optional
            Priors of the Bayesian model, for ``"MAP"`` and ``"laplace"`` (see
            :meth:`sample`). With ``"flat"`` the mode is the ML estimate.
        restricted : bool
            For ``"MAP"``/``"laplace"``: add the restricted-likelihood term, so that
            the mode under flat priors is the REML estimate.
        draws : int
            Draws of the Laplace approximation.
        random_seed : int, optional
            Seed of the Laplace draws.

        Returns
        -------
        ModeResult, or BayesResult for ``"laplace"``
        """
        method = method.upper() if isinstance(method, str) else method
        self._check_test(method, test)
        if method in ("MAP", "LAPLACE"):
            return self._fit_bayes_mode(method, test, level, priors, restricted, draws, random_seed)
        if method not in _METHODS + MOMENT_METHODS:
            raise SpecificationError(f"method: expected one of {', '.join(_METHODS + MOMENT_METHODS)}, 'MAP' or "
                                     f"'laplace', got {method!r}.")
        level = check_level(level)
        if method == "FE" and (self.param.has_scale or self.param.v_scale is not None):
            raise SpecificationError("method: 'FE' sets every variance to zero, which a scale model (scale=, "
                                     "V_scale=) cannot express; fit the model without it instead.")
        control = dict(control or {})
        unknown = set(control) - {"maxiter", "polish"}
        if unknown:
            raise SpecificationError(f"control: unknown setting(s) {sorted(unknown)}; use 'maxiter' or 'polish'.")
        if method in MOMENT_METHODS:
            self._check_moment_method(method, control)
            estimate = fit_moments(self.design, self.param, method)
        else:
            estimate = fit_mode(self.design, self.param, method, **control)
        result = ModeResult(self.design, self.param, estimate, test=test, level=level)
        if result.boundary and method != "FE":
            warn(f"{method}: {', '.join(result.boundary)} estimated on the boundary of the parameter space (a "
                 "variance of 0 or a correlation of +-1); Wald-type SEs and intervals do not apply to it.",
                 BoundaryWarning)
        return result

    def _check_test(self, method, test) -> None:
        """Errors naming ``test`` (Knapp-Hartung: the standard model's ML/REML/FE/moment fits only)."""
        if test not in ("z", "t", "knha"):
            raise SpecificationError(f"test: expected 'z', 't' or 'knha', got {test!r}.")
        if test != "knha":
            return
        if self.random is not None:
            raise SpecificationError("test: 'knha' (Knapp-Hartung) is defined for the standard model (random=None), "
                                     "as metafor's rma(); for models with random terms metafor's rma.mv offers "
                                     "test='t', and so does this method.")
        if method in ("MAP", "LAPLACE"):
            raise SpecificationError(f"test: 'knha' adjusts ML, REML, FE and moment fits, not method {method!r}.")
        if method == "FE":
            warn("test: the Knapp-Hartung method is not meant for FE models (metafor warns the same).",
                          UserWarning)

    def _check_moment_method(self, method: str, control: dict) -> None:
        """Errors naming ``method``: metafor's moment estimators fit the standard model only."""
        if self.random is not None:
            raise SpecificationError(f"method: {method!r} estimates tau^2 of the standard model (random=None), as "
                                     "metafor's rma(); fit models with random terms by 'REML' or 'ML'.")
        if self.param.has_scale or self.param.v_scale is not None:
            raise SpecificationError(f"method: {method!r} cannot fit a location-scale model (scale=, V_scale=); use "
                                     "'REML' or 'ML', as metafor.")
        if control:
            raise SpecificationError(f"control: {sorted(control)} are settings of the ML/REML optimizer; method "
                                     f"{method!r} has none.")

    def _require_bayes_support(self) -> None:
        """Refuse models the Bayesian engine does not express (the place for such refusals; every model
        the ML/REML engine fits is expressed today, scale models of structured terms included)."""

    def _priors(self, priors):
        """The resolved priors (imports the Bayesian engine's prior module, and so PyMC)."""
        self._require_bayes_support()
        from .engines.bayes.priors import resolve_priors

        return resolve_priors(self.design, self.param, priors)

    def _fit_bayes_mode(self, method, test, level, priors, restricted, draws, random_seed):
        self._require_bayes_support()
        from .engines.bayes import posterior_mode

        level = check_level(level)
        if method == "LAPLACE" and (isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1):
            raise SpecificationError(f"draws: expected a positive integer (draws of the Laplace approximation), "
                                     f"got {draws!r}.")
        prior_set = self._priors(priors)
        if method == "MAP":
            estimate = posterior_mode.find_mode(self.design, self.param, prior_set, restricted)
            return ModeResult(self.design, self.param, estimate, test=test, level=level)
        idata = posterior_mode.laplace(self.design, self.param, prior_set, draws, random_seed, restricted)
        return BayesResult(idata, prior_set, "laplace", level, self.design, self.param)

    def build_pymc(self, priors=None, *, restricted: bool = False):
        """The PyMC model (random effects integrated out) under the given priors.

        Parameters
        ----------
        priors : dict or "flat", optional
            See :mod:`bayesmeta.engines.bayes.priors` for the keys and the default rule.
        restricted : bool
            Add the restricted-likelihood term (its mode under flat priors is REML).

        Returns
        -------
        pymc.Model
        """
        from .engines.bayes.pymc_model import build_model

        return build_model(self.design, self.param, self._priors(priors), restricted=restricted)

    def sample(self, draws: int = 1000, tune: int = 1000, chains: int = 4, cores: int | None = None,
               random_seed=None, priors=None, sampler: str | None = None, progressbar: bool = True,
               level: float = 0.95, loo: str = "row", prior_predictive: bool = False, **kwargs):
        """Sample the posterior with NUTS.

        Parameters
        ----------
        draws, tune, chains : int
            Draws kept per chain, tuning steps per chain, number of chains.
        cores : int, optional
            Chains run in parallel (default: as many as the machine has, at most
            ``chains``; one thread for nutpie on models whose log-density it calls
            through Python, see ``sampler``).
        random_seed : int, optional
        priors : dict or "flat", optional
            ``{"beta": Prior(...), "sd": Prior(...), "lkj_eta": 2.0, "rho": Prior(...),
            "sd[district]": Prior(...)}``; defaults are weakly informative and scaled
            to the data (:mod:`bayesmeta.engines.bayes.priors`).
        sampler : {"nutpie", "pymc"}, optional
            nutpie's NUTS (the default), which runs the sampler in Rust on the compiled
            log-density: for nested random intercepts a numba-compiled C callback (no
            Python in a step, chains in parallel), otherwise PyTensor's C backend called
            from Python; or PyMC's NUTS, which runs the sampler in Python (several times
            slower per step). The default falls back to PyMC when nutpie cannot be imported.
        progressbar : bool
            Show the progress bar and PyMC's log lines (sampler, initialisation,
            timing); ``False`` silences both (PyMC's warnings still show).
        level : float
            Probability of the reported equal-tailed intervals.
        loo : {"row", "cluster"}
            What the ``log_likelihood`` group holds, for ``az.loo``, ``az.compare`` and
            ``az.plot_loo_pit``: ``"row"`` (default) the density of each row given all
            other rows, ``log p(y_i | y_-i, theta)`` (exact for this non-factorised normal
            model: :mod:`bayesmeta.engines.bayes.pointwise`), dim ``obs`` with the data's
            row labels, so models with different random structures on the same rows can
            be compared; ``"cluster"`` one value per independent block (leave one cluster out).
        prior_predictive : bool
            Also draw from the prior (``draws`` draws): adds the ``prior`` and
            ``prior_predictive`` groups to the same InferenceData.
        **kwargs
            Passed to :func:`pymc.sample` or :func:`nutpie.sample` (e.g. ``target_accept``,
            default 0.9). Defaults differ from the samplers': PyMC adapts a dense mass
            matrix (``init="jitter+adapt_full"``, up to 100 parameters) and nutpie a
            low-rank modified one, which keeps correlated parameters (an intercept and an
            uncentred slope) from causing divergences.

        Returns
        -------
        BayesResult

        Examples
        --------
        >>> import bayesmeta as bm
        >>> model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
        ...                      random="~ 1 | district/study")
        >>> post = model.sample(draws=50, tune=50, chains=1, random_seed=1, progressbar=False)  # a short demo run
        >>> post.idata.posterior["beta"].dims
        ('chain', 'draw', 'term')
        """
        from .engines.bayes import sampling

        sampler = sampler or default_sampler()
        if sampler not in ("pymc", "nutpie"):
            raise SpecificationError(f"sampler: expected 'pymc' or 'nutpie', got {sampler!r}.")
        for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (name != "tune"):
                raise SpecificationError(f"{name}: expected a positive integer, got {value!r}.")
        if cores is not None and (isinstance(cores, bool) or not isinstance(cores, (int, np.integer)) or cores < 1):
            raise SpecificationError(f"cores: expected a positive integer or None, got {cores!r}.")
        if loo not in sampling.LOO_KINDS:
            raise SpecificationError(f"loo: expected one of {', '.join(map(repr, sampling.LOO_KINDS))}, got {loo!r}.")
        level = check_level(level)
        check_sampler_options(sampler, kwargs)
        prior_set = self._priors(priors)
        if prior_predictive and prior_set.flat:
            raise SpecificationError("prior_predictive: flat priors are improper and cannot be sampled.")
        idata = sampling.sample(self.design, self.param, prior_set, draws=draws, tune=tune, chains=chains,
                                cores=cores, random_seed=random_seed, sampler=sampler, progressbar=progressbar,
                                loo=loo, **kwargs)
        if prior_predictive:
            prior = sampling.sample_prior(self.design, self.param, prior_set, draws, random_seed)
            idata.add_groups(prior=prior.prior, prior_predictive=prior.prior_predictive)
        return BayesResult(idata, prior_set, sampler, level, self.design, self.param)

    def sample_prior_predictive(self, draws: int = 500, random_seed=None, priors=None):
        """Draws of the parameters and of the outcome from the prior.

        Parameters
        ----------
        draws : int
        random_seed : int, optional
        priors : dict or "flat", optional
            As for :meth:`sample` ("flat" priors cannot be sampled).

        Returns
        -------
        arviz.InferenceData
            Group ``prior`` (``beta``, ``sigma``/``tau``, ``sigma2``/``tau2``/``rho``, ...)
            and group ``prior_predictive`` with ``y`` (dim ``obs``, the rows used):
            ``X beta + Z u + e`` with ``u ~ N(0, G)`` and ``e ~ N(0, V)``.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
        ...                      random="~ 1 | district/study")
        >>> prior = model.sample_prior_predictive(draws=100, random_seed=1)
        >>> prior.prior_predictive["y"].shape
        (1, 100, 56)
        """
        from .engines.bayes import sampling

        if not isinstance(draws, (int, np.integer)) or draws < 1:
            raise SpecificationError(f"draws: expected a positive integer, got {draws!r}.")
        if isinstance(priors, str) and priors == "flat":
            raise SpecificationError("priors: flat priors are improper and cannot be sampled; give proper priors.")
        return sampling.sample_prior(self.design, self.param, self._priors(priors), draws, random_seed)

    def simulate(self, params, n: int = 1, random_seed=None) -> pd.DataFrame:
        """New outcomes drawn from the model at given parameter values (same X, V and random structure).

        Parameters
        ----------
        params : dict, pandas.Series or ModeResult
            Values by result-table label: ``beta[<coefficient>]``, ``sigma2[<label>]``,
            ``tau2[<label>]``, ``rho[<label>]``, ``alpha[<name>]``, ... (``fit.table()["estimate"]``
            is one; a family with one component may be named alone, e.g. ``"tau2"``; fixed
            components may be left out), or an ML/REML fit, whose estimates are used.
        n : int
            Number of data sets.
        random_seed : int, optional

        Returns
        -------
        pandas.DataFrame
            One row per row used (indexed by the data's labels), columns ``sim_1 .. sim_n``:
            ``X beta + Z u + e`` with ``u ~ N(0, G)`` and ``e ~ N(0, V)`` drawn afresh.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
        ...                      random="~ 1 | district/study")
        >>> sims = model.simulate({"beta[Intercept]": 0.2, "sigma2[district]": 0.05,
        ...                        "sigma2[district/study]": 0.03}, n=3, random_seed=1)
        >>> sims.shape, list(sims.columns)
        ((56, 3), ['sim_1', 'sim_2', 'sim_3'])
        """
        return simulate_data(self, params, n, random_seed)

    def sensitivity(self, priors: dict, *, draws: int = 1000, tune: int = 1000, chains: int = 4,
                    random_seed=None, n_jobs: int = 1, progressbar: bool = True, reference: str | None = "REML",
                    **kwargs) -> SensitivityResult:
        """Sample the posterior under every prior of a grid and collect one tidy table.

        Parameters
        ----------
        priors : dict
            Label -> priors dict (as :meth:`sample` takes it); :func:`bayesmeta.prior_grid`
            builds the labelled Cartesian product of options.
        draws, tune, chains, random_seed, **kwargs
            As for :meth:`sample` (the same seed under every prior). The sampler is nutpie
            when installed: priors of the same families (differing only in hyperparameters)
            then share one compiled model, their hyperparameters set in shared variables;
            ``sampler="pymc"`` samples each prior with PyMC, compiling each.
        n_jobs : int
            Priors sampled in parallel processes (each compiles its own model).
        progressbar : bool
        reference : str or None
            A likelihood fit (``"REML"``, ``"ML"``) marked in the plot; None for none.

        Returns
        -------
        SensitivityResult
            ``table``: ``prior, method, parameter, estimate`` (posterior mean), ``se``
            (posterior SD), ``ci_lb, ci_ub, ess_bulk, r_hat, divergences``; ``results[(label,
            "NUTS")]`` the BayesResults; ``plot()`` each parameter's interval under every
            prior with the reference fit marked; ``summary()``.

        Examples
        --------
        >>> import bayesmeta as bm
        >>> model = bm.MetaModel("effect ~ 1", data=bm.datasets.load("school"), vi="var",
        ...                      random="~ 1 | district/study")
        >>> grid = bm.prior_grid(sd=[bm.Prior("HalfNormal", sigma=s) for s in (0.1, 1.0)])
        >>> sens = model.sensitivity(grid, draws=100, tune=100, chains=2, random_seed=1, progressbar=False)
        >>> sorted(sens.table["prior"].unique())  # a short demo run; use longer chains in practice
        ['sd=HalfNormal(sigma=0.1)', 'sd=HalfNormal(sigma=1.0)']
        >>> ax = sens.plot()
        """
        return prior_sensitivity(self, priors, draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                                 n_jobs=n_jobs, progressbar=progressbar, reference=reference, **kwargs)

    def __repr__(self) -> str:
        scale = f", scale={self.scale!r}" if self.scale is not None else ""
        scale += f", V_scale={self.V_scale!r}" if self.V_scale is not None else ""
        return (f"MetaModel({self.formula!r}, random={self.random!r}, struct={self.struct!r}{scale}, "
                f"k={self.design.n}, p={self.design.p})")
