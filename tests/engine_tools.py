"""Test helpers: the Bayesian graph's mode against the likelihood engine."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from scipy import stats

#: MAP (flat priors) against ML/REML: absolute tolerance.
MODE_TOL = 1e-5


def components(fit) -> np.ndarray:
    """All variance components and correlations of a fit, in one vector."""
    return np.concatenate([np.atleast_1d(getattr(fit, name).to_numpy())
                           for name in ("sigma2", "tau2", "rho") if getattr(fit, name) is not None])


def assert_same_fit(a, b, tol: float = MODE_TOL) -> None:
    """Coefficients, SEs, components and log-likelihood agree to ``tol``."""
    np.testing.assert_allclose(a.coef.to_numpy(), b.coef.to_numpy(), atol=tol)
    np.testing.assert_allclose(a.se.to_numpy(), b.se.to_numpy(), atol=tol)
    np.testing.assert_allclose(components(a), components(b), atol=tol)
    assert abs(a.loglik - b.loglik) < tol


def assert_graph_mode_is_reml(model) -> None:
    """The Bayesian graph under flat priors, with the restricted term, has its mode at REML."""
    assert_same_fit(model.fit("MAP", priors="flat", restricted=True), model.fit("REML"))


def dense_profile_loglik(design, S: np.ndarray, reml: bool) -> tuple[float, np.ndarray]:
    """(Restricted) log-likelihood with the GLS estimate of beta, from the dense n x n
    marginal covariance ``S``: the reference the block-wise engines are tested against."""
    W = np.linalg.inv(S)
    A = design.X.T @ W @ design.X
    beta = np.linalg.solve(A, design.X.T @ W @ design.y)
    ll = stats.multivariate_normal(design.X @ beta, S).logpdf(design.y)
    if reml:
        ll += (0.5 * design.p * np.log(2 * np.pi) + 0.5 * np.linalg.slogdet(design.X.T @ design.X)[1]
               - 0.5 * np.linalg.slogdet(A)[1])
    return ll, beta


def random_points(pm_model, names: list[str], n: int = 3, seed: int = 3):
    """Log-densities of a PyMC model at ``n`` random unconstrained points (N(0, 0.5^2) each), with the
    values of the named variables there: pairs ``(logp, {name: value})``."""
    import pytensor

    outputs = pytensor.function(pm_model.value_vars, pm_model.replace_rvs_by_values([pm_model[v] for v in names]),
                                on_unused_input="ignore")
    logp = pm_model.compile_logp(jacobian=False)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        point = {v.name: rng.normal(scale=0.5, size=np.shape(x)) for v, x in
                 zip(pm_model.value_vars, pm_model.initial_point().values())}
        out.append((logp(point), dict(zip(names, outputs(*[point[v.name] for v in pm_model.value_vars])))))
    return out


def standardised_normal_logpdf(coefficients: np.ndarray, priors: tuple, T: np.ndarray) -> float:
    """The log density of ``coefficients_std = T^-1 coefficients`` when the coefficients have independent Normal
    priors: their log density plus log|det T|."""
    mu = np.array([p.parameters["mu"] for p in priors])
    sigma = np.array([p.parameters["sigma"] for p in priors])
    return float(stats.norm.logpdf(coefficients, mu, sigma).sum() + np.linalg.slogdet(T)[1])


@contextmanager
def counted_compiles():
    """Record, at every setting of an assumption-sensitivity study, how many nutpie models have been
    compiled so far (the list yielded)."""
    from bayesmeta.studies import assumptions

    built = []
    original = assumptions._CompiledOnce.__call__

    def counting(self, model, level):
        result = original(self, model, level)
        built.append(len(self.compiled))
        return result

    assumptions._CompiledOnce.__call__ = counting
    try:
        yield built
    finally:
        assumptions._CompiledOnce.__call__ = original


def conditional_log_densities(y: np.ndarray, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """log N(y_i; E[y_i | y_-i], Var[y_i | y_-i]) of every row, by the Schur complement."""
    out = []
    for i in range(len(y)):
        rest = np.delete(np.arange(len(y)), i)
        weights = np.linalg.solve(sigma[np.ix_(rest, rest)], sigma[rest, i])
        out.append(stats.norm.logpdf(y[i], mean[i] + weights @ (y[rest] - mean[rest]),
                                     np.sqrt(sigma[i, i] - sigma[i, rest] @ weights)))
    return np.array(out)
