"""gridgeo.parallel: chunked GEOS work gives what one call gives."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgeo import parallel
from gridgeo.defects import polygon_width


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 3000), chunk=st.integers(1, 700), seed=st.integers(0, 1000))
def test_chunked_equals_one_call_row_for_row(n, chunk, seed):
    rng = np.random.default_rng(seed)
    boxes = shapely.box(*rng.uniform(0, 100, (4, n)))  # some inverted: empty or not
    sizes = rng.uniform(0, 5, n)
    whole = shapely.area(shapely.buffer(boxes, sizes))
    parts = parallel.chunked(lambda b, s: shapely.area(shapely.buffer(b, s)), boxes, sizes,
                             min_chunk=chunk)  # fmt: skip
    assert parts.dtype == whole.dtype and len(parts) == n
    np.testing.assert_array_equal(parts, whole)


def test_polygon_width_does_not_depend_on_the_threads(monkeypatch):
    rng = np.random.default_rng(3)
    strips = shapely.box(0, 0, rng.uniform(50, 500, 2500), rng.uniform(0.5, 40, 2500))
    many = polygon_width(strips)
    monkeypatch.setattr(parallel, "WORKERS", 1)
    one = polygon_width(strips)
    np.testing.assert_array_equal(many, one)


def test_started_returns_the_result_and_raises_the_error():
    assert parallel.started(shapely.area, shapely.box(0, 0, 2, 3)).result() == 6.0
    with pytest.raises(ZeroDivisionError):
        parallel.started(lambda: 1 / 0).result()


@settings(max_examples=15, deadline=None)
@given(n=st.integers(0, 2000), chunk=st.integers(1, 500), seed=st.integers(0, 1000))
def test_chunked_keeps_rows_that_are_vectors(n, chunk, seed):
    xy = np.random.default_rng(seed).uniform(-1e3, 1e3, (n, 2))
    parts = parallel.chunked(lambda a: np.c_[a[:, 1], a[:, 0] * 2], xy, min_chunk=chunk)
    assert parts.shape == (n, 2)
    np.testing.assert_array_equal(parts, np.c_[xy[:, 1], xy[:, 0] * 2])


def test_gc_paused_holds_the_collector_off_and_restores_it():
    import gc

    assert gc.isenabled()

    @parallel.gc_paused()
    def inside():
        with parallel.gc_paused():  # nested: the outer block restores it
            pass
        return gc.isenabled()

    assert inside() is False
    assert gc.isenabled()
    with pytest.raises(ValueError), parallel.gc_paused():
        raise ValueError("an error inside still restores the collector")
    assert gc.isenabled()
    gc.disable()  # a collector the caller disabled stays disabled
    try:
        with parallel.gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_started_on_a_pool_thread_runs_in_place():
    # A pool thread waiting on work queued behind it would wait for ever.
    def outer():
        inner = parallel.started(sum, [1, 2])
        assert inner.done()
        with pytest.raises(ZeroDivisionError):
            parallel.started(lambda: 1 / 0).result()
        return inner.result()

    assert parallel.each(lambda _: outer(), [0, 1]) == [3, 3]
