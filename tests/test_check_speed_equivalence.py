"""The fast paths of gridgeo.check.steps give what the plain GEOS computation gives.

``_holes`` takes the holes of the layer's union as they stand and differences
only a hole with another part of the union inside it (an island in a lake);
these tests build lakes, islands and islands' own holes and compare with
``difference(union_all(holes), union)`` computed here with plain GEOS.
"""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgeo.check import check_layer

X0, Y0 = 500_000.0, 4_500_000.0  # EPSG:4545, near the banner


def _layer(geoms: list, names: list[str]) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame({"name": names}, geometry=geoms, crs=4545)
    return frame.set_geometry(frame.geometry.translate(X0, Y0))


def _reference_gaps(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Sorted areas of the holes of the union, islands removed (plain GEOS)."""
    whole = shapely.union_all(frame.geometry.to_numpy())
    rings = [ring for part in shapely.get_parts(whole) for ring in part.interiors]
    enclosed = shapely.union_all([shapely.Polygon(r) for r in rings])
    pieces = shapely.get_parts(shapely.difference(enclosed, whole))
    return np.sort(shapely.area(pieces))


def _gaps(report) -> tuple[np.ndarray, list[str]]:
    gaps = report.defects[report.defects["kind"].isin(["gap", "sliver"])]
    gaps = gaps.sort_values("area_m2")
    return gaps["area_m2"].to_numpy(dtype=float), gaps["codes"].tolist()


def _frame(side: float, wall: float, inner: float, core: float):
    """A frame around a lake, an island in it with a hole, and a neighbour."""
    lake = shapely.box(wall, wall, side - wall, side - wall)
    frame = shapely.box(0, 0, side, side).difference(lake)
    mid = side / 2
    island = shapely.box(mid - inner, mid - inner, mid + inner, mid + inner).difference(
        shapely.box(mid - core, mid - core, mid + core, mid + core)
    )
    neighbour = shapely.box(side, 0, side + 100, side)
    return [frame, island, neighbour]


def test_island_in_a_lake_and_its_hole_are_each_one_gap():
    geoms = _frame(side=300, wall=50, inner=50, core=20)
    report = check_layer(_layer(geoms, ["frame", "island", "east"]), id="name")
    areas, codes = _gaps(report)
    # The lake 200 m square less the 100 m island; the island's own 40 m hole once.
    np.testing.assert_allclose(areas, [40.0**2, 200.0**2 - 100.0**2], rtol=1e-9)
    assert codes == ["island", "frame,island"]
    kinds = report.defects["kind"].tolist()
    assert kinds.count("island") == 1  # the island touches nothing


def test_island_touching_the_lake_shore_at_a_corner():
    frame = shapely.box(0, 0, 300, 300).difference(shapely.box(50, 50, 250, 250))
    island = shapely.box(50, 50, 150, 150)  # one corner on the shore's corner
    report = check_layer(_layer([frame, island], ["frame", "island"]), id="name")
    areas, _ = _gaps(report)
    np.testing.assert_allclose(areas, [200.0**2 - 100.0**2], rtol=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    side=st.floats(200, 2_000),
    wall=st.floats(0.1, 0.3),
    inner=st.floats(0.1, 0.6),
    # No core hole, or one wider than the dust tolerance (0.01 m): a hole narrower
    # than dust is float noise the check drops by design (tested in test_check.py).
    core=st.one_of(st.just(0.0), st.floats(0.01, 0.8)),
)
def test_gap_areas_equal_plain_geos(side, wall, inner, core):
    wall_m = side * wall
    inner_m = (side / 2 - wall_m) * inner
    core_m = inner_m * core
    geoms = _frame(side, wall_m, inner_m, core_m)
    frame = _layer(geoms, ["frame", "island", "east"])
    areas, _ = _gaps(check_layer(frame, id="name"))
    expected = _reference_gaps(frame)
    np.testing.assert_allclose(areas, expected[expected > 0], rtol=1e-6)
    lake = (side - 2 * wall_m) ** 2 - (2 * inner_m) ** 2
    assert np.isclose(areas.sum(), lake + (2 * core_m) ** 2, rtol=1e-6)


# -- gap naming: contact lengths measured along the piece's own edge ------------------
@settings(max_examples=30, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 999), min_size=1, max_size=8, unique=True),  # strips ≥ 1 m
    band=st.floats(0.2, 50),  # wider than twice the 5 cm reach, or the ends count too
    spacing=st.floats(0.7, 300),
)
def test_contact_is_the_length_each_child_shares_with_the_piece(cuts, band, spacing):
    from gridgeo.check.steps import contact_lengths

    # Strips above a gap band: each strip borders the band along its bottom
    # edge, drawn with its own extra vertices; a far strip touches nothing.
    x = np.r_[0.0, np.sort(cuts), 1000.0].astype(float)
    strips = [shapely.segmentize(shapely.box(x0, band, x1, 500), spacing)
              for x0, x1 in itertools.pairwise(x)]  # fmt: skip
    children = np.array([*strips, shapely.box(0, 600, 1000, 700)])
    # The piece as an overlay returns it: cut at every child vertex along its edge.
    piece = shapely.difference(shapely.box(0, 0, 1000, 500), shapely.union_all(strips))
    p, c, length = contact_lengths(np.array([piece]), children)
    assert set(p) == {0} and len(c) == len(strips) and c.max() < len(strips)
    np.testing.assert_allclose(length[np.argsort(c)], np.diff(x), rtol=1e-9)


def test_gap_in_a_bay_is_named_after_the_children_around_it():
    # A U-shaped child clipped to the gap's envelope falls into two arms.
    bay = shapely.box(0, 0, 300, 300).difference(shapely.box(100, 100, 200, 300))
    plug = shapely.box(100, 150, 200, 300)  # leaves a 100 × 50 m gap at the bay's end
    detailed = shapely.segmentize(bay, 0.5)  # many vertices, as real borders have
    report = check_layer(_layer([detailed, plug], ["bay", "plug"]), id="name")
    areas, codes = _gaps(report)
    np.testing.assert_allclose(areas, [100.0 * 50.0], rtol=1e-9)
    assert codes == ["bay,plug"]
