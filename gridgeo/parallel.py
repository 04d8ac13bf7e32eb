"""Vectorised GEOS work spread over the machine's cores.

Shapely's array functions release Python's GIL while GEOS works, so a long
array cut into chunks runs on every core from plain threads (no processes,
no pickling). Used where one call handles thousands of geometries, each
independently of the others, so the result does not depend on the chunking.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

__all__ = ["WORKERS", "chunked", "started"]

WORKERS = max(1, min(os.cpu_count() or 1, 8))
"""Threads :func:`chunked` uses: the machine's cores, at most 8."""


def chunked(func: Callable[..., np.ndarray], *arrays: np.ndarray, min_chunk: int = 1000):
    """``func(*arrays)``, computed over slices of the arrays on :data:`WORKERS` threads.

    ``func`` maps arrays of equal length to one array of that length, element
    by element (each result depends on its own row only). Arrays shorter than
    two chunks are done in one call.

    Examples
    --------
    >>> import shapely
    >>> squares = shapely.box(np.arange(5000), 0, np.arange(5000) + 1, 1)
    >>> area = chunked(shapely.area, squares, min_chunk=1000)
    >>> bool((area == 1).all()), len(area)
    (True, 5000)
    """
    n = len(arrays[0])
    parts = min(WORKERS, n // max(min_chunk, 1))
    if parts < 2:
        return func(*arrays)
    # Interleaved rows give each thread a like mix of large and small geometries.
    slices = [np.arange(k, n, parts) for k in range(parts)]
    with ThreadPoolExecutor(max_workers=parts) as pool:
        results = list(pool.map(lambda rows: func(*(a[rows] for a in arrays)), slices))
    out = np.empty(n, dtype=np.asarray(results[0]).dtype)
    for rows, result in zip(slices, results, strict=True):
        out[rows] = result
    return out


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def started(func: Callable, *args) -> Future:
    """``func(*args)`` started on a background thread; ``.result()`` waits for it.

    For one long GEOS call that needs nothing from the work done meanwhile
    (coverage validation while the overlaps are measured).

    >>> started(sum, [1, 2, 3]).result()
    6
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="gridgeo")
    return _POOL.submit(func, *args)
