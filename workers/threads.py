"""How many threads each worker process gives its BLAS and OpenMP pools: its share of the cores."""

from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pool_threads(cores: int, processes: int, override: int | None = None) -> int:
    """Threads per BLAS/OpenMP pool for one of `processes` workers sharing `cores`, at least 1.

    Each library's pool defaults to every core; with several worker processes (or one worker
    running tasks concurrently) those pools oversubscribe the cores and scoring slows many
    times over. `override` (the LOUPE_WORKER_THREADS setting) wins when given.
    """
    if override is not None:
        return max(1, override)
    return max(1, cores // max(1, processes))


def load_native_libraries() -> None:
    """Load the libraries whose thread pools the engine uses (NumPy's and SciPy's OpenBLAS,
    scikit-learn's OpenMP, faiss's OpenBLAS): `threadpool_limits` sizes only loaded ones."""
    import faiss  # noqa: F401
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    import sklearn.utils  # noqa: F401
