"""Vectorised GEOS work spread over the machine's cores.

Shapely's array functions release Python's GIL while GEOS works, so a long
array cut into chunks runs on every core from plain threads (no processes,
no pickling). Used where one call handles thousands of geometries, each
independently of the others, so the result does not depend on the chunking.

Such work also makes tens of thousands of short-lived Python objects (one
per geometry): :func:`gc_paused` keeps Python's cyclic garbage collector
from walking the whole heap again and again meanwhile.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

__all__ = ["WORKERS", "chunked", "each", "gc_paused", "started"]

WORKERS = max(1, min(os.cpu_count() or 1, 8))
"""Threads :func:`chunked` uses: the machine's cores, at most 8."""


def chunked(func: Callable[..., np.ndarray], *arrays: np.ndarray, min_chunk: int = 1000):
    """``func(*arrays)``, computed over slices of the arrays on :data:`WORKERS` threads.

    ``func`` maps arrays of equal length to one array of that length, row by
    row (each result depends on its own row only; a row may be a vector). Arrays shorter than
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
    if parts < 2 or _inside():
        return func(*arrays)
    # Interleaved rows give each thread a like mix of large and small geometries.
    slices = [np.arange(k, n, parts) for k in range(parts)]
    results = list(_pool().map(lambda rows: func(*(a[rows] for a in arrays)), slices))
    first = np.asarray(results[0])
    out = np.empty((n, *first.shape[1:]), dtype=first.dtype)  # rows of any shape
    for rows, result in zip(slices, results, strict=True):
        out[rows] = result
    return out


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def each(func: Callable, items: list) -> list:
    """``[func(x) for x in items]`` on :data:`WORKERS` threads, in order.

    For a few long GEOS calls on separate geometries (a county's overlay
    each), where one vectorised call cannot hold them.

    >>> each(len, [[1], [1, 2], []])
    [1, 2, 0]
    """
    if len(items) < 2 or WORKERS < 2 or _inside():
        return [func(x) for x in items]
    return list(_pool().map(func, items))


def _inside() -> bool:
    """Is this one of the pool's threads? (Its work then runs in place: a
    worker waiting on work queued behind it would wait for ever.)"""
    return threading.current_thread().name.startswith("gridgeo")


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="gridgeo")
    return _POOL


def started(func: Callable, *args) -> Future:
    """``func(*args)`` started on a background thread; ``.result()`` waits for it.

    For one long GEOS call that needs nothing from the work done meanwhile
    (coverage validation while the overlaps are measured).

    >>> started(sum, [1, 2, 3]).result()
    6
    """
    if not _inside():
        return _pool().submit(func, *args)
    done: Future = Future()  # on a pool thread: run in place (see _inside)
    try:
        done.set_result(func(*args))
    except Exception as exc:  # handed over as the pool would hand it over
        done.set_exception(exc)
    return done


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off for a block (or, as a decorator, a call).

    Each geometry shapely returns is a Python object; a vectorised call makes
    thousands at once, and every few hundred the collector walks the young
    objects, and now and then the whole heap (a notebook's heap: every
    module, frame and table). None of those geometries is in a cycle, so the
    walks find nothing; on Bayannur's repair they cost about a tenth of the
    time. Cycles made meanwhile are collected after the block, as usual. A
    collector already disabled stays so; nested blocks leave it to the
    outermost.

    >>> import gc
    >>> with gc_paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
