"""Keyword arguments of the samplers, checked before any sampling starts.

``pymc.sample`` passes unknown keyword arguments on to its step methods, which
ignore what they do not know: a misspelt ``target_acept=0.99`` would run with
the default and say nothing. The names accepted here are those of
:func:`pymc.sample` and of its NUTS step method, or those of :func:`nutpie.sample`
and of nutpie's sampler settings.
"""

from __future__ import annotations

import inspect

from ...errors import SpecificationError

#: Arguments MetaModel.sample sets itself (and names in its own signature).
OWN = frozenset({"draws", "tune", "chains", "cores", "random_seed", "progressbar", "model",
                 "compute_convergence_checks", "loo", "prior_predictive"})


def _parameters(*functions) -> set[str]:
    names = set()
    for function in functions:
        names |= {name for name, p in inspect.signature(function).parameters.items()
                  if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and name not in ("self", "vars")}
    return names


def pymc_options() -> set[str]:
    """Keyword arguments ``MetaModel.sample(sampler="pymc")`` passes to :func:`pymc.sample`."""
    import pymc as pm
    from pymc.step_methods.hmc.base_hmc import BaseHMC

    return (_parameters(pm.sample, pm.NUTS.__init__, BaseHMC.__init__) | {"nuts"}) - OWN


def nutpie_options() -> set[str]:
    """Keyword arguments ``MetaModel.sample(sampler="nutpie")`` passes to :func:`nutpie.sample`."""
    import nutpie

    names = _parameters(nutpie.sample) | {"mode", "target_accept"}
    settings = getattr(getattr(nutpie, "_lib", None), "PyNutsSettings", None)  # the settings kwargs may set
    if settings is not None:
        names |= {n for n in dir(settings.Diag(0)) if not n.startswith("_") and n[0].islower()}
    return names - OWN - {"compiled_model", "seed", "progress_bar"}


def check_sampler_options(sampler: str, options: dict) -> None:
    """Refuse keyword arguments the chosen sampler does not take, naming them.

    Examples
    --------
    >>> check_sampler_options("pymc", {"target_accept": 0.95})
    >>> check_sampler_options("pymc", {"target_acept": 0.95})
    Traceback (most recent call last):
    ...
    bayesmeta.errors.SpecificationError: sample: unknown keyword argument(s) 'target_acept' for sampler 'pymc' ...
    """
    if not options:
        return
    known = pymc_options() if sampler == "pymc" else nutpie_options()
    unknown = sorted(set(options) - known)
    if unknown:
        near = [n for n in sorted(known) if any(u[:5] == n[:5] for u in unknown)]
        hint = f" (did you mean {', '.join(map(repr, near))}?)" if near else ""
        raise SpecificationError(f"sample: unknown keyword argument(s) {', '.join(map(repr, unknown))} for sampler "
                                 f"{sampler!r}{hint}; they would be ignored.")


def default_sampler() -> str:
    """nutpie (a dependency of bayesmeta) when it can be imported, else PyMC's NUTS."""
    from importlib.util import find_spec

    return "nutpie" if find_spec("nutpie") is not None else "pymc"


def available_cores() -> int:
    """The number of CPUs this process may run on."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
