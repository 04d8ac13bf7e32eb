"""polygon_width against known widths and a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import shapely.affinity
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgeo.defects import polygon_width

TOL, REL = 0.01, 0.01


def allowed(width):
    """The documented precision of polygon_width."""
    return np.maximum(TOL, 2 * REL * np.asarray(width))


def brute_force(polygon: shapely.Geometry, cells: int = 400) -> tuple[float, float]:
    """Bounds on the true width from the distances of a grid of points to the boundary.

    With grid spacing h, the best grid point inside is at most h/√2 from the
    centre of the widest circle, so the width lies in [2·best, 2·best + h√2].
    """
    x0, y0, x1, y1 = polygon.bounds
    h = max(x1 - x0, y1 - y0) / cells
    xs, ys = np.meshgrid(np.arange(x0, x1 + h, h), np.arange(y0, y1 + h, h))
    points = shapely.points(xs.ravel(), ys.ravel())
    inside = shapely.contains_xy(polygon, xs.ravel(), ys.ravel())
    best = shapely.distance(points[inside], polygon.boundary).max(initial=0.0)
    return 2 * best, 2 * best + h * np.sqrt(2)


@pytest.mark.parametrize(
    "width, length",
    [(0.004, 100), (0.02, 50_000), (0.5, 80_000), (0.99, 30_000), (1.01, 30_000),
     (3.0, 200), (37.5, 10_000), (250.0, 260.0), (1_000.0, 1_000.0)],
)  # fmt: skip
@pytest.mark.parametrize("angle", [0.0, 17.0, 45.0, 88.0])
def test_rotated_rectangles_have_their_short_side_as_width(width, length, angle):
    box = shapely.box(500_000, 4_500_000, 500_000 + length, 4_500_000 + width)
    got = polygon_width(np.array([shapely.affinity.rotate(box, angle)]))[0]
    expected = min(width, length)
    if expected < TOL:  # dust: reported at most TOL wide
        assert 0 <= got <= TOL
    else:
        assert abs(got - expected) <= allowed(expected)


def test_sliver_threshold_is_decided_right_on_long_strips():
    # Strips just either side of the 1 m sliver threshold, 20 to 60 km long.
    widths = np.array([0.95, 0.97, 1.03, 1.05])
    strips = [
        shapely.affinity.rotate(shapely.box(0, 0, 20_000 * (1 + i), w), 23 * i)
        for i, w in enumerate(widths)
    ]
    got = polygon_width(np.array(strips))
    assert ((got < 1.0) == (widths < 1.0)).all()
    assert np.abs(got - widths).max() <= 0.02


def test_l_shaped_strip_has_the_closed_form_corner_circle():
    # An L of arm width w: the widest circle touches both outer edges at the
    # corner and the inner (reflex) vertex, so its diameter is 2√2·w / (1 + √2).
    w = 2.0
    ell = shapely.union(shapely.box(0, 0, 5_000, w), shapely.box(0, 0, w, 5_000))
    expected = 2 * np.sqrt(2) * w / (1 + np.sqrt(2))
    assert abs(polygon_width(np.array([ell]))[0] - expected) <= allowed(expected)


def test_annulus_and_multipolygon():
    ring = (
        shapely.Point(0, 0)
        .buffer(100, quad_segs=64)
        .difference(shapely.Point(0, 0).buffer(60, quad_segs=64))
    )
    multi = shapely.MultiPolygon([shapely.box(0, 0, 100, 3), shapely.box(0, 10, 100, 17)])
    got = polygon_width(np.array([ring, multi]))
    assert abs(got[0] - 40) <= allowed(40) + 0.1  # the discs are 256-gons
    assert abs(got[1] - 7) <= allowed(7)  # the widest part


def test_non_polygons_and_empties_are_zero():
    geoms = np.array(
        [shapely.Point(0, 0), shapely.LineString([(0, 0), (5, 5)]), shapely.Polygon(), None],
        dtype=object,
    )
    assert polygon_width(geoms).tolist() == [0.0, 0.0, 0.0, 0.0]
    assert polygon_width(np.array([], dtype=object)).shape == (0,)


@st.composite
def star_polygons(draw):
    """Star-shaped polygons (radii by angle) around a point far from the origin."""
    n = draw(st.integers(3, 24))
    radii = draw(st.lists(st.floats(0.5, 60.0), min_size=n, max_size=n))
    stretch = draw(st.sampled_from([1.0, 4.0, 30.0]))
    angles = np.sort(draw(st.permutations(np.linspace(0, 2 * np.pi, n, endpoint=False))))
    x = 500_000 + stretch * np.asarray(radii) * np.cos(angles)
    y = 4_500_000 + np.asarray(radii) * np.sin(angles)
    polygon = shapely.Polygon(np.column_stack([x, y]))
    if draw(st.booleans()):  # a hole
        cx, cy = shapely.get_coordinates(polygon.representative_point())[0]
        hole = shapely.Point(cx, cy).buffer(draw(st.floats(0.1, 5.0)))
        polygon = shapely.difference(polygon, hole)
    return polygon


@settings(max_examples=60, deadline=None)
@given(star_polygons())
def test_width_matches_brute_force_on_random_shapes(polygon):
    got = polygon_width(np.array([polygon]))[0]
    low, high = brute_force(polygon)
    assert low - allowed(high) <= got <= high + allowed(high)


@settings(max_examples=40, deadline=None)
@given(star_polygons(), st.floats(0.2, 3.0))
def test_sliver_or_not_matches_brute_force(polygon, threshold):
    # Classification against a threshold is right whenever the reference is
    # decisive (the true width is clear of the threshold by the precision).
    got = polygon_width(np.array([polygon]))[0]
    low, high = brute_force(polygon)
    if high + allowed(high) < threshold:
        assert got < threshold
    if low - allowed(low) > threshold:
        assert got > threshold


def test_small_rings_are_not_taken_for_inverted_buffers():
    # A gap piece of the Inner Mongolia benchmark (8 vertices): GEOS drops the
    # erosion of a ring under 9 points as "inverted" once all its raw vertices
    # lie a little nearer than the distance, so this piece, 144.7 m wide by
    # brute force, erodes to nothing at 139 m unless its edges get vertices.
    piece = shapely.from_wkt(
        "POLYGON ((821822.9416 4446167.0004, 821858.2100 4446140.4949, "
        "821885.6434 4446000.5923, 821910.2819 4445937.1311, 821618.5128 4446108.1188, "
        "821634.0415 4446106.3767, 821795.5033 4446166.3624, 821822.9416 4446167.0004))"
    )
    low, high = brute_force(piece, 1500)
    got = polygon_width(np.array([piece]))[0]
    assert low - allowed(high) <= got <= high + allowed(high)
    assert got > 144


def test_geos_inverted_copy_of_a_convex_polygon_is_not_a_fit():
    # Eroded a little beyond its inradius, a regular octagon comes back from
    # GEOS as a small inverted octagon, not empty.
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    octagon = shapely.Polygon(np.column_stack([np.cos(angles), np.sin(angles)]) + 500_000)
    assert not shapely.buffer(octagon, -1.05 * np.cos(np.pi / 8)).is_empty  # the GEOS quirk
    expected = 2 * np.cos(np.pi / 8)
    assert abs(polygon_width(np.array([octagon]))[0] - expected) <= allowed(expected)


@settings(max_examples=60, deadline=None)
@given(star_polygons())
def test_simply_connected_polygons_are_at_least_their_strip_wide(polygon):
    # polygon_width skips the dust buffer where 2·area / perimeter > tolerance,
    # relying on Sz.-Nagy's inequality area <= r·perimeter - π r² for polygons
    # without holes; check it on random shapes against a fine circle search.
    for part in shapely.get_parts(polygon):
        if part.is_empty or shapely.get_num_interior_rings(part):  # a hole can eat it all
            continue
        strip = 2 * part.area / part.length
        circle = 2 * shapely.length(shapely.maximum_inscribed_circle(part, strip * 1e-4))
        assert circle >= strip * (1 - 1e-3)


def test_thin_holed_pieces_are_still_checked_for_dust():
    # Holes lengthen the perimeter without making room: these are the pieces the
    # strip bound cannot clear, so each is still measured by erosion.
    frame = shapely.box(0, 0, 100, 100).difference(shapely.box(0.004, 0.004, 99.996, 99.996))
    lens = shapely.box(0, 0, 100, 0.004)
    holey = shapely.box(0, 0, 40, 20).difference(
        shapely.MultiPolygon([shapely.box(x, 1, x + 0.996, 19) for x in np.arange(1, 39, 1.0)])
    )
    got = polygon_width(np.array([frame, lens, holey]))
    np.testing.assert_allclose(got[:2], [0.004, 0.004], atol=0.01)  # dust: at most tolerance
    assert got[0] <= 0.01 and got[1] <= 0.01
    brute = brute_force(holey)
    assert brute[0] - allowed(brute[1]) <= got[2] <= brute[1] + allowed(brute[1])


def test_a_float_dust_hole_does_not_make_a_wide_piece_dust():
    """An overlay's nm² hole in a 100 m square: the square is still ~100 m wide."""
    ring = [(0, 0), (100, 0), (100, 100), (0, 100)]
    speck = [(37.0, 41.0), (37.00001, 41.0), (37.00001, 41.00003)]
    holed = shapely.Polygon(ring, [speck])
    width = polygon_width(np.array([holed]))[0]
    assert 99 <= width <= 101


# Two gap pieces of Bayannur's mixed counties (metric, exact bits): thin spikes
# whose extra vertices, rounded onto two nearly touching edges, made GEOS's
# segmentize return an invalid ring (negative area) or, "fixed", an empty one.
_SPIKES = [
    "01030000000100000007000000E112ADB173E014419932981F50345141500858A41FDD14412F2E3A1E69"
    "34514199A0AA9CCBD91441EE3D431D82345141628DC2EB70DC14412314713E6E34514182E005F591E014"
    "41BCF46BD65034514123C95D7B43E11441D679D6CC42345141E112ADB173E014419932981F50345141",
    "010300000001000000070000002F056AB45DF41C4116A25063783A51418A251DDD7DF21C41EC6AEE4637"
    "3A51414EE495CFE8F31C4175BDBC86683A5141E5E377C70EF41C411DB86CAB793A514169063FA847F41C"
    "41B911312E8C3A51417384C6B76CF31C419DBDF7B9503B51412F056AB45DF41C4116A25063783A5141",
]


def test_spikes_keep_their_width_when_extra_vertices_would_break_them():
    spikes = shapely.from_wkb(_SPIKES)
    assert shapely.is_valid(spikes).all()
    mic = 2 * shapely.length(shapely.maximum_inscribed_circle(spikes, 0.001))
    np.testing.assert_allclose(polygon_width(spikes), mic, rtol=0.02)
