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
