"""Replications run one after another, in parallel processes (joblib) or on a dask cluster.

Every replication gets its own seed, spawned from the study's ``random_seed``
with :class:`numpy.random.SeedSequence`, so a study gives the same numbers
whatever the backend and the number of workers. Results come back in
replication order.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import SpecificationError

BACKENDS = ("joblib", "dask")


def replication_seeds(random_seed, n: int) -> list[int]:
    """``n`` independent integer seeds derived from ``random_seed``.

    Examples
    --------
    >>> replication_seeds(1, 3) == replication_seeds(1, 3)
    True
    >>> len(set(replication_seeds(1, 100)))
    100
    """
    return [int(s.generate_state(1, np.uint32)[0]) for s in np.random.SeedSequence(random_seed).spawn(n)]


def check_run_options(n, n_jobs, backend: str, client) -> None:
    """Errors naming the argument for a bad number of replications, workers or backend."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SpecificationError(f"n: expected a positive number of replications, got {n!r}.")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 or n_jobs < -1:
        raise SpecificationError(f"n_jobs: expected a positive number of workers or -1 (all cores), got {n_jobs!r}.")
    if backend not in BACKENDS:
        raise SpecificationError(f"backend: expected one of {', '.join(map(repr, BACKENDS))}, got {backend!r}.")
    if backend == "dask" and client is None:
        raise SpecificationError("client: backend='dask' needs a dask.distributed Client or a scheduler address "
                                 "(e.g. Client(LocalCluster()) or 'tcp://scheduler:8786').")
    if backend != "dask" and client is not None:
        raise SpecificationError("client: given, but backend is not 'dask'.")


def run_replications(task: Callable, n: int, *, random_seed=None, n_jobs: int = 1, backend: str = "joblib",
                     client=None, progressbar: bool = True, description: str = "replications") -> list:
    """``[task(i, seed_i) for i in range(n)]``, possibly in parallel.

    Parameters
    ----------
    task : callable
        ``task(index, seed)``; with ``n_jobs != 1`` or ``backend="dask"`` it is
        pickled (cloudpickle) and run in other processes.
    n : int
        Number of replications.
    random_seed : int, optional
        Seed of the whole run.
    n_jobs : int
        Worker processes for joblib (``-1``: all cores); 1 runs in this process.
    backend : {"joblib", "dask"}
    client : dask.distributed.Client or str, optional
        For ``backend="dask"``: a client, or the address of a scheduler.
    progressbar : bool
    description : str
        Label of the progress bar.

    Returns
    -------
    list
        The results, in replication order.

    Examples
    --------
    >>> run_replications(lambda i, seed: i * i, 4, random_seed=1, progressbar=False)
    [0, 1, 4, 9]
    """
    check_run_options(n, n_jobs, backend, client)
    seeds = replication_seeds(random_seed, n)
    if backend == "dask":
        return _run_dask(task, seeds, client, progressbar, description)
    from tqdm.auto import tqdm

    if n_jobs == 1:
        return [task(i, s) for i, s in tqdm(enumerate(seeds), total=n, desc=description, disable=not progressbar)]
    from joblib import Parallel, delayed

    results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(task)(i, s) for i, s in enumerate(seeds))
    return list(tqdm(results, total=n, desc=description, disable=not progressbar))


def _run_dask(task: Callable, seeds: list[int], client, progressbar: bool, description: str) -> list:
    from distributed import Client, as_completed
    from tqdm.auto import tqdm

    own = isinstance(client, str)
    client = Client(client) if own else client
    try:
        futures = client.map(task, range(len(seeds)), seeds, pure=False)
        with tqdm(total=len(seeds), desc=description, disable=not progressbar) as bar:
            for _ in as_completed(futures):
                bar.update()
        return client.gather(futures)
    finally:
        if own:
            client.close()
