"""Gap pieces split among the children along them (gridgeo.repair.split)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgeo.repair.split import split_pieces


def _gap_between_halves(ys: list[float], width: float):
    """A square cut in two along a polyline; a strip ``width`` wide along it taken from both.

    Returns the piece (as an overlay returns it) and the two children.
    """
    square = shapely.box(0, 0, 100, 100)
    xs = np.linspace(0, 100, len(ys))
    line = shapely.LineString(np.c_[xs, ys])
    below = shapely.Polygon([(0, 0), (100, 0), *np.c_[xs, ys][::-1]])
    above = shapely.difference(square, below)
    strip = shapely.buffer(line, width / 2, cap_style="flat")
    kids = np.array([shapely.difference(below, strip), shapely.difference(above, strip)])
    piece = shapely.get_parts(shapely.difference(square, shapely.union_all(kids)))
    return piece[np.argmax(shapely.area(piece))], kids, line


@settings(max_examples=40, deadline=None)
@given(
    ys=st.lists(st.floats(30, 70), min_size=2, max_size=6),
    width=st.floats(1.0, 12.0),
    seed=st.integers(0, 2**16),
)
def test_shares_tile_the_piece_and_each_place_goes_to_the_nearest_child(ys, width, seed):
    piece, kids, _ = _gap_between_halves(ys, width)
    (shares,) = split_pieces(np.array([piece]), [np.array([0, 1])], np.array([0]), kids)
    geoms = np.array([g for _, g in shares])
    assert sorted(k for k, _ in shares) == sorted({k for k, _ in shares})
    assert abs(shapely.area(shapely.union_all(geoms)) - piece.area) <= 1e-6 * piece.area
    assert abs(shapely.area(geoms).sum() - piece.area) <= 1e-6 * piece.area
    # Places clearly nearer one child (by more than a tenth of the gap) are in its share.
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = piece.bounds
    points = shapely.points(rng.uniform((x0, y0), (x1, y1), size=(400, 2)))
    points = points[shapely.contains(piece, points)]
    dist = shapely.distance(points[:, None], kids[None, :])
    clear = np.abs(dist[:, 0] - dist[:, 1]) > 0.1 * width
    owner = {k: g for k, g in shares}
    for p, near in zip(points[clear], np.argmin(dist[clear], axis=1), strict=True):
        assert near in owner and owner[near].covers(p)


def test_a_disc_cut_from_two_neighbours_is_split_along_their_old_edge():
    """bench_check's inner gap: a 25 m disc at the middle of a shared edge."""
    left, right = shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)
    disc = shapely.Point(100, 50).buffer(25, quad_segs=8)
    kids = np.array([shapely.difference(left, disc), shapely.difference(right, disc)])
    piece = shapely.difference(shapely.box(0, 0, 200, 100), shapely.union_all(kids))
    (shares,) = split_pieces(np.array([piece]), [np.array([0, 1])], np.array([0]), kids)
    for k, share in shares:
        restored = shapely.union(kids[k], share)
        assert shapely.symmetric_difference(restored, (left, right)[k]).area < 1.0


def test_a_part_touching_no_child_it_is_nearest_goes_to_the_fallback():
    """A U-shaped gap whose right arm reaches back towards the child on the left."""
    piece = shapely.Polygon([(0, 0), (30, 0), (30, 12), (28, 12), (28, 2), (2, 2), (2, 12),
                             (0, 12)])  # fmt: skip
    below = shapely.box(-5, -10, 35, 0)
    inside = shapely.box(2, 2, 28, 12)  # in the U
    kids = np.array([below, inside])
    (shares,) = split_pieces(np.array([piece]), [np.array([0, 1])], np.array([0]), kids)
    total = sum(g.area for _, g in shares)
    assert abs(total - piece.area) < 1e-6
    for k, g in shares:  # every share touches its child along a border
        assert shapely.intersection(g.buffer(0.05), kids[k]).area > 0.05 * 0.05


def _segments(lines: np.ndarray) -> list[tuple]:
    """Each segment of the lines, its ends ordered, sorted."""
    out = []
    for line in lines:
        xy = shapely.get_coordinates(line)
        for a, b in pairwise(xy):
            out.append(tuple(sorted([tuple(a), tuple(b)])))
    return sorted(out)


@settings(max_examples=60, deadline=None)
@given(
    boxes=st.lists(
        st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(1, 5), st.integers(1, 5)),
        min_size=1,
        max_size=6,
    ),
    spokes=st.integers(0, 3),
)
def test_runs_join_segments_as_geos_line_merge_does(boxes, spokes):
    from collections import Counter

    from gridgeo.repair.split import _runs

    rings = [shapely.box(x, y, x + w, y + h).exterior for x, y, w, h in boxes]
    lines = [*rings, *(shapely.LineString([(0, 0), (9, 3 * k + 1)]) for k in range(spokes))]
    noded = shapely.get_parts(shapely.node(shapely.multilinestrings(lines)))
    segments = sorted(set(_segments(noded)))
    edges = np.array(segments, dtype=float)
    runs = _runs(edges)
    merged = shapely.get_parts(
        shapely.line_merge(shapely.multilinestrings(shapely.linestrings(edges)))
    )
    assert len(runs) == len(merged)
    assert _segments(runs) == _segments(merged) == segments
    # A run passes only through points exactly two segments share.
    degree = Counter(p for segment in segments for p in segment)
    for run in runs:
        assert all(degree[tuple(p)] == 2 for p in shapely.get_coordinates(run)[1:-1])
