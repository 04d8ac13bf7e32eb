"""gridgeo.check.check_layer: one plain polygon layer, no codes, no hierarchy."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from shapely import box

from gridgeo.check import CheckReport, check_layer
from gridgeo.crs import wgs84_to_gcj02
from gridgeo.defects import COLUMNS
from gridgeo.errors import SchemaError

X0, Y0 = 550_000.0, 4_500_000.0  # inside the banner, EPSG:4545 metres


def layer(geoms, crs=4545, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=list(geoms), crs=crs)


def cells(nx=3, ny=2, size=100.0) -> list:
    return [
        box(X0 + size * i, Y0 + size * j, X0 + size * (i + 1), Y0 + size * (j + 1))
        for i in range(nx)
        for j in range(ny)
    ]


def kinds(report: CheckReport) -> list[str]:
    return sorted(report.defects["kind"])


# -- hand-made layers ---------------------------------------------------------------
def test_a_clean_tiling_is_clean_and_has_the_shared_schema():
    report = check_layer(layer(cells()))
    assert report.defects.empty and report.ok and not report.hints
    assert list(report.defects.columns) == list(COLUMNS)
    assert report.metric_crs.to_epsg() == 4545


def test_a_layer_without_code_column_does_not_raise():
    frame = layer(cells(), name=list("abcdef"))
    assert "code" not in frame.columns
    assert check_layer(frame).defects.empty


def test_a_hole_of_the_union_is_one_gap_named_by_its_four_neighbours():
    # 3 x 3 squares of 100 m with the middle one missing: a 10,000 m² hole.
    squares = [c for k, c in enumerate(cells(3, 3)) if k != 4]
    report = check_layer(layer(squares, id=[f"p{k}" for k in range(8)]), id="id")
    d = report.defects
    assert d["kind"].tolist() == ["gap"]
    assert d["area_m2"].iloc[0] == pytest.approx(10_000)
    assert d["width_m"].iloc[0] == pytest.approx(100, rel=0.01)
    # Only the squares sharing an edge with the hole border it (corners touch a point).
    assert d["codes"].iloc[0] == "p1,p3,p4,p6"
    assert d["severity"].iloc[0] == "error" and d["level"].iloc[0] == "layer"


def test_an_island_polygon_inside_a_hole_is_not_part_of_the_gap():
    squares = [c for k, c in enumerate(cells(3, 3)) if k != 4]
    middle = cells(3, 3)[4].buffer(-30)  # a 40 m square floating in the hole
    d = check_layer(layer([*squares, middle])).defects
    gap = d[d["kind"] == "gap"]
    assert gap["area_m2"].iloc[0] == pytest.approx(10_000 - 1_600)
    assert d.loc[d["kind"] == "island", "codes"].tolist() == ["8"]


def test_an_overlap_has_its_exact_area_and_both_ids():
    geoms = cells(2, 1)
    geoms[0] = box(X0, Y0, X0 + 112.5, Y0 + 100)  # 12.5 m into its neighbour
    d = check_layer(layer(geoms)).defects
    assert d["kind"].tolist() == ["overlap"]
    assert d["codes"].iloc[0] == "0,1"
    assert d["area_m2"].iloc[0] == pytest.approx(1_250)
    assert d["width_m"].iloc[0] == pytest.approx(12.5, abs=0.05)


def test_a_narrow_overlap_is_a_sliver_warning():
    geoms = cells(2, 1)
    geoms[0] = box(X0, Y0, X0 + 100.4, Y0 + 100)
    d = check_layer(layer(geoms)).defects
    assert d["kind"].tolist() == ["sliver"]
    assert d["severity"].iloc[0] == "warning"
    assert d["area_m2"].iloc[0] == pytest.approx(40)


def test_an_overlap_in_two_places_is_two_pieces_summed_by_borders():
    a = box(X0, Y0, X0 + 100, Y0 + 100)
    tabs = [box(X0 + 100, Y0 + 10, X0 + 105, Y0 + 30), box(X0 + 100, Y0 + 60, X0 + 105, Y0 + 90)]
    geoms = [shapely.union_all([a, *tabs]), box(X0 + 100, Y0, X0 + 200, Y0 + 100)]
    report = check_layer(layer(geoms))
    d = report.defects
    assert d["kind"].tolist() == ["overlap", "overlap"]
    assert sorted(d["area_m2"].round(6)) == [100, 150]
    borders = report.borders()
    assert len(borders) == 1
    row = borders.iloc[0]
    assert (row["codes"], row["kinds"], row["pieces"]) == ("0,1", "overlap", 2)
    assert row["area_m2"] == pytest.approx(250)
    assert row["length_m"] == pytest.approx((20 + 5) + (30 + 5))
    assert row["geometry"].area == pytest.approx(250)


def test_hundreds_of_slivers_along_one_border_are_one_border():
    a = box(X0, Y0, X0 + 100, Y0 + 1000)
    notches = [box(X0 + 100, Y0 + 5 * k, X0 + 100.3, Y0 + 5 * k + 2) for k in range(1, 201)]
    b = box(X0 + 100, Y0, X0 + 200, Y0 + 1010).difference(shapely.union_all(notches))
    report = check_layer(layer([a.union(box(X0, Y0 + 1000, X0 + 100, Y0 + 1010)), b]))
    assert kinds(report) == ["sliver"] * 200
    borders = report.borders()
    assert borders[["codes", "kinds", "pieces"]].values.tolist() == [["0,1", "sliver", 200]]
    assert borders["area_m2"].iloc[0] == pytest.approx(200 * 0.6)
    assert borders["length_m"].iloc[0] == pytest.approx(200 * 2.3)


def test_invalid_geometry_names_the_reason_and_the_place():
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100)])
    report = check_layer(layer([bowtie]))
    d = report.defects
    row = d[d["kind"] == "invalid_geometry"].iloc[0]
    assert "Self-intersection" in row["message_en"]
    assert row["geometry"].distance(shapely.Point(X0 + 50, Y0 + 50)) < 1e-6


def test_empty_and_non_polygon_rows_are_reported_not_crashed():
    geoms = [*cells(2, 1), shapely.Polygon(), shapely.LineString([(X0, Y0), (X0 + 5, Y0)]), None]
    d = check_layer(layer(geoms)).defects
    assert sorted(zip(d["kind"], d["codes"], strict=True)) == [
        ("empty_geometry", "2"),
        ("empty_geometry", "4"),
        ("not_polygon", "3"),
    ]


def test_multipart_and_edge_mismatch():
    geoms = cells(3, 1)
    geoms[2] = shapely.MultiPolygon([geoms[2], box(X0 + 400, Y0, X0 + 450, Y0 + 50)])
    # The middle square has a vertex on its west edge that its neighbour lacks.
    geoms[1] = shapely.Polygon(
        [(X0 + 100, Y0), (X0 + 200, Y0), (X0 + 200, Y0 + 100), (X0 + 100, Y0 + 100),
         (X0 + 100, Y0 + 50)]
    )  # fmt: skip
    d = check_layer(layer(geoms)).defects
    assert sorted(zip(d["kind"], d["codes"], strict=True)) == [
        ("edge_mismatch", "0,1"),
        ("multipart", "2"),
    ]
    assert d.loc[d["kind"] == "multipart", "area_m2"].iloc[0] == pytest.approx(2_500)


def test_ids_default_to_row_labels_sorted_as_numbers():
    geoms = cells(11, 1)
    geoms[9] = box(X0 + 900, Y0, X0 + 1010, Y0 + 100)  # into square 10
    d = check_layer(layer(geoms)).defects
    assert d["codes"].tolist() == ["9,10"]


def test_an_unknown_id_column_names_the_columns():
    with pytest.raises(SchemaError, match=r"no column 'nr'.*\['name'\].*id="):
        check_layer(layer(cells(), name=list("abcdef")), id="nr")


# -- against an outline ---------------------------------------------------------------
def test_gaps_open_to_the_outline_edge_and_parts_outside_it():
    geoms = cells(3, 1)
    geoms[0] = box(X0, Y0 + 10, X0 + 100, Y0 + 100)  # 10 m short of the south edge
    geoms[2] = box(X0 + 200, Y0, X0 + 330, Y0 + 100)  # 30 m beyond the east edge
    outline = box(X0, Y0, X0 + 300, Y0 + 100)
    d = check_layer(layer(geoms), within=outline).defects
    assert sorted(zip(d["kind"], d["codes"], d["area_m2"].round(6), strict=True)) == [
        ("gap", "0", 1_000),
        ("outside_parent", "2", 3_000),
    ]
    # Without the outline, a gap open to the edge is no hole of the union; what
    # remains is the vertex the neighbour lacks where the gap ended (a warning).
    bare = check_layer(layer(geoms))
    assert set(bare.defects["kind"]) == {"edge_mismatch"} and bare.ok


def test_an_outline_part_nobody_touches_is_a_gap_named_by_nobody():
    outline = shapely.union_all([box(X0, Y0, X0 + 300, Y0 + 100),
                                 box(X0 + 1000, Y0, X0 + 1100, Y0 + 100)])  # fmt: skip
    d = check_layer(layer(cells(3, 1)), within=outline).defects
    assert d["kind"].tolist() == ["gap"] and d["codes"].tolist() == [""]
    assert d["area_m2"].iloc[0] == pytest.approx(10_000)


def test_an_outline_in_another_crs_is_projected_not_refused():
    geoms = cells(3, 1)
    outline = gpd.GeoDataFrame(geometry=[box(X0, Y0, X0 + 300, Y0 + 100)], crs=4545)
    outline = outline.to_crs(4490)  # two rows would be united; one is enough here
    report = check_layer(layer(geoms), within=outline)
    assert report.defects.empty


def test_a_layer_in_degrees_gives_the_same_areas_as_in_metres():
    geoms = cells(3, 1)
    geoms[0] = box(X0, Y0, X0 + 112.5, Y0 + 100)
    metres = check_layer(layer(geoms)).defects
    for crs in (4490, 4326):
        degrees = check_layer(layer(geoms).to_crs(crs)).defects
        assert degrees.crs.to_epsg() == crs
        assert degrees["area_m2"].tolist() == pytest.approx(metres["area_m2"].tolist(), rel=1e-6)


# -- the GCJ-02 hint ------------------------------------------------------------------
def gcj_shifted(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    def shift(xy):
        return np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1]))

    out = frame.copy()
    out.geometry = shapely.transform(frame.geometry.to_numpy(), shift)
    return out


def town_cells() -> gpd.GeoDataFrame:
    """Nine 0.02° cells in the banner (EPSG:4490), about 1.7 x 2.2 km each."""
    geoms = [
        box(108.6 + 0.02 * i, 40.7 + 0.02 * j, 108.62 + 0.02 * i, 40.72 + 0.02 * j)
        for i, j in itertools.product(range(3), range(3))
    ]
    return gpd.GeoDataFrame({"name": [f"c{k}" for k in range(9)]}, geometry=geoms, crs=4490)


def test_a_layer_in_gcj02_against_a_wgs84_outline_gets_the_hint():
    outline = box(108.6, 40.7, 108.66, 40.76)
    report = check_layer(gcj_shifted(town_cells()), within=outline, name="towns")
    assert {"gap", "outside_parent"} <= set(report.defects["kind"])
    assert len(report.hints) == 1
    hint = report.hints[0]
    assert "layer 'towns'" in hint and "GCJ-02" in hint and "coords='gcj02'" in hint
    shift = float(hint.split(" m shift")[0].rsplit(" ", 1)[1])
    assert 300 <= shift <= 700
    assert report.to_dict()["hints"] == report.hints


def test_no_hint_for_a_converted_layer_or_an_ordinary_misfit():
    outline = box(108.6, 40.7, 108.66, 40.76)
    assert check_layer(town_cells(), within=outline).hints == []
    # Drawn 400 m off due north: a shift, but not the GCJ-02 one.
    moved = town_cells()
    moved.geometry = moved.translate(0, 0.0036)
    report = check_layer(moved, within=outline)
    assert {"gap", "outside_parent"} <= set(report.defects["kind"]) and report.hints == []


# -- property: random coverages with injected defects ---------------------------------
@st.composite
def breaks(draw):
    n = draw(st.integers(3, 6))
    steps = draw(st.lists(st.integers(60, 200), min_size=n, max_size=n))
    return list(np.cumsum([0, *steps]).astype(float))


def mesh(xs, ys) -> list:
    return [
        box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)
        for x0, x1 in itertools.pairwise(xs)
        for y0, y1 in itertools.pairwise(ys)
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    xs=breaks(),
    ys=breaks(),
    picks=st.lists(
        st.tuples(
            st.sampled_from(("gap", "overlap", "edge_bite")),
            st.integers(0, 10_000),
            st.floats(5, 25),
        ),
        min_size=1,
        max_size=3,
    ),
    outlined=st.booleans(),
)
def test_random_coverage_returns_exactly_the_injected_defects(xs, ys, picks, outlined):
    geoms = mesh(xs, ys)
    nx, ny = len(xs) - 1, len(ys) - 1
    used: set[int] = set()
    expected = []
    for kind, seed, size in picks:
        col, row = seed % (nx - 1), (seed // nx) % ny
        if kind == "edge_bite":
            if not outlined:
                continue
            row = 0
        i = col * ny + row
        j = i + ny  # the east neighbour
        block = {i, j, i - 1, i + 1, j - 1, j + 1, i - ny, j + ny}
        if used & block:
            continue
        used |= block
        a, b = geoms[i], geoms[j]
        shared = a.intersection(b)
        if kind == "gap":  # a disc cut out of both, on their shared edge: a hole
            disc = shared.interpolate(0.5, normalized=True).buffer(size)
            geoms[i], geoms[j] = a.difference(disc), b.difference(disc)
            expected.append(("gap", f"{min(i, j)},{max(i, j)}", disc.area))
        elif kind == "overlap":
            strip = shared.buffer(size, cap_style="flat").intersection(b)
            geoms[i] = a.union(strip)
            expected.append(("overlap", f"{min(i, j)},{max(i, j)}", strip.area))
        else:  # a bite out of the outline's south edge: a gap open to the edge
            south = shapely.LineString([(a.bounds[0], Y0), (a.bounds[2], Y0)])
            bite = south.interpolate(0.5, normalized=True).buffer(size)
            geoms[i] = a.difference(bite)
            expected.append(("gap", str(i), a.intersection(bite).area))
        event(kind)
    within = box(X0, Y0, X0 + xs[-1], Y0 + ys[-1]) if outlined else None
    d = check_layer(layer(geoms), within=within).defects
    got = sorted(zip(d["kind"], d["codes"], d["area_m2"], strict=True))
    want = sorted(expected)
    assert [(k, c) for k, c, _ in got] == [(k, c) for k, c, _ in want]
    # Discs are polygons of buffer(): the defect is that polygon, to GEOS precision.
    assert [a for *_, a in got] == pytest.approx([a for *_, a in want], rel=1e-6)
