"""The arrangement of a plain layer (gridgeo.check.faces) against GEOS's own overlay."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgeo.check.faces import arrangement


def _coverage(n: int, seed: int) -> np.ndarray:
    """Voronoi cells of ``n`` random seeds clipped to a 1 km square: an exact coverage."""
    rng = np.random.default_rng(seed)
    square = shapely.box(0, 0, 1000, 1000)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(
            shapely.multipoints(rng.uniform(0, 1000, (n, 2))), extend_to=square
        )
    )
    return shapely.intersection(cells, square)


# The reference overlays snap-round to a micrometre grid: GEOS's floating
# overlay, given two cells whose shared edge differs in the last bit (a cell
# shrunk and grown back), once returned one whole cell as their intersection.
_GRID = 1e-6


def _holes_of_union(polygons: np.ndarray) -> float:
    """Area the layer encloses that no polygon covers, by GEOS: filled union − union."""
    union = shapely.union_all(polygons, grid_size=_GRID)
    rings = shapely.get_exterior_ring(shapely.get_parts(union))
    filled = shapely.union_all(shapely.polygons(rings), grid_size=_GRID)
    return float(shapely.area(filled) - shapely.area(union))


def _covered_twice(polygons: np.ndarray) -> float:
    """Area two or more polygons cover, by GEOS: the union of pairwise intersections."""
    left, right = shapely.STRtree(polygons).query(polygons, predicate="intersects")
    keep = left < right
    pieces = shapely.intersection(polygons[left[keep]], polygons[right[keep]], grid_size=_GRID)
    return float(shapely.area(shapely.union_all(pieces, grid_size=_GRID))) if len(pieces) else 0.0


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 40),
    seed=st.integers(0, 10_000),
    # Whole metres in, half metres out: a cell shrunk and its neighbour grown
    # by the same amount would meet within float noise (a channel 1e-7 m wide
    # that one overlay calls open and another, snapping, closed).
    shrink=st.lists(st.integers(1, 30), max_size=4),
    grow=st.lists(st.integers(1, 30).map(lambda d: d - 0.5), max_size=4),
    drop=st.booleans(),
    twin=st.booleans(),
)
def test_gaps_and_overlaps_are_the_holes_of_the_union_and_the_area_covered_twice(
    n, seed, shrink, grow, drop, twin
):
    cells = list(_coverage(n, seed))
    rng = np.random.default_rng(seed + 1)
    for d in shrink:  # a cell drawn too small leaves a gap around it
        k = int(rng.integers(len(cells)))
        cells[k] = shapely.buffer(cells[k], -d, join_style="mitre")
    for d in grow:  # one drawn too large overlaps its neighbours
        k = int(rng.integers(len(cells)))
        cells[k] = shapely.buffer(cells[k], d, join_style="mitre")
    if drop and len(cells) > 3:  # a missing cell: an enclosed hole (or an inlet)
        cells.pop(int(rng.integers(len(cells))))
    if twin:  # a duplicated cell overlaps itself whole
        cells.append(cells[int(rng.integers(len(cells)))])
    layer = np.array([c for c in cells if not c.is_empty], dtype=object)
    faces = arrangement(layer)
    scale = max(float(shapely.area(layer).sum()), 1.0)
    np.testing.assert_allclose(shapely.area(faces.gaps).sum(), _holes_of_union(layer),
                               atol=1e-6 * scale)  # fmt: skip
    np.testing.assert_allclose(shapely.area(faces.overlaps).sum(), _covered_twice(layer),
                               atol=1e-6 * scale)  # fmt: skip
    # Each overlap face is named by exactly the polygons covering a point inside it.
    inside = shapely.point_on_surface(faces.overlaps)
    for face, point, makers in zip(faces.overlaps, inside, faces.makers, strict=True):
        covering = np.flatnonzero(shapely.contains(layer, point))
        touching = np.flatnonzero(shapely.intersects(layer, point))
        assert len(makers) >= 2
        # Judged where the point is inside the face (not so on float-dust
        # faces) and on no polygon's edge.
        if face.contains(point) and len(touching) == len(covering):
            assert set(makers.tolist()) == set(covering.tolist())


def test_an_exact_coverage_has_no_faces_and_keeps_no_linework_inside():
    layer = _coverage(30, 7)
    faces = arrangement(layer)
    assert len(faces.gaps) == 0 and len(faces.overlaps) == 0


def test_lattice_of_squares_is_clean_although_face_points_fall_on_shared_edges():
    # The layer's one face is the whole block; its interior point lies on a
    # shared edge, where counting the squares around it would be wrong.
    squares = np.array([shapely.box(x, y, x + 100, y + 100)
                        for x in range(0, 400, 100) for y in range(0, 400, 100)])  # fmt: skip
    faces = arrangement(squares)
    assert len(faces.gaps) == 0 and len(faces.overlaps) == 0


def test_island_in_a_lake_is_a_gap_with_a_hole():
    ring = shapely.box(0, 0, 300, 300).difference(shapely.box(100, 100, 200, 200))
    island = shapely.box(140, 140, 160, 160)
    faces = arrangement(np.array([ring, island]))
    assert [round(g.area) for g in faces.gaps] == [100 * 100 - 20 * 20]
    assert len(faces.overlaps) == 0


def test_a_third_polygon_across_a_shared_border_is_one_overlap_named_by_one_side():
    left, right = shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)
    across = shapely.box(80, 40, 120, 60)  # lies over the border the two share
    faces = arrangement(np.array([left, right, across]))
    assert [round(f.area) for f in faces.overlaps] == [40 * 20]
    assert 2 in faces.makers[0] and len(faces.makers[0]) == 2
