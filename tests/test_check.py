"""gridgeo.check: the dirty demo's truth, hand-made cases, random coverages."""

from __future__ import annotations

import itertools
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from shapely import box

from gridgeo import load_demo
from gridgeo.check import check_level, check_system
from gridgeo.codes import number_children
from gridgeo.crs import to_metric
from gridgeo.demo import load_truth
from gridgeo.errors import CrsError, GeometryError
from gridgeo.model import GridSystem

X0, Y0 = 550_000.0, 4_500_000.0  # inside the banner, EPSG:4545 metres
TOWN = "150823100"


def found_set(defects: gpd.GeoDataFrame) -> set[tuple[str, str, frozenset[str]]]:
    return {(r.kind, r.level, frozenset(r.codes.split(","))) for r in defects.itertuples()}


# -- the demo --------------------------------------------------------------------
@pytest.fixture(scope="module")
def dirty_report():
    return check_system(load_demo("dirty"), dual=False)


def test_dirty_variant_finds_exactly_the_truth(dirty_report):
    truth = load_truth("dirty")
    expected = {(r.kind, r.level, frozenset(r.codes.split(","))) for r in truth.itertuples()}
    assert found_set(dirty_report.defects) == expected
    assert len(dirty_report.defects) == len(truth)  # nothing reported twice
    assert not dirty_report.ok and dirty_report.errors == 9


def test_defect_geometry_is_the_defect_itself(dirty_report):
    # Reprojection can fold nanometre kinks; compare repaired shapes.
    truth = to_metric(load_truth("dirty"))
    truth.geometry = truth.geometry.make_valid()
    found = to_metric(dirty_report.defects)
    found.geometry = found.geometry.make_valid()
    for row in truth.itertuples():
        codes = frozenset(row.codes.split(","))
        match = found[
            (found["kind"] == row.kind) & (found["codes"].str.split(",").map(frozenset) == codes)
        ]
        assert len(match) == 1
        got = match.geometry.iloc[0]
        if row.geometry.area > 1 and row.kind not in ("duplicate_code", "orphan"):
            iou = got.intersection(row.geometry).area / got.union(row.geometry).area
            assert iou > 0.95, (row.kind, iou)
        elif row.kind == "invalid_geometry":
            assert got.geom_type == "Point" and got.distance(row.geometry) < 10
    slivers = found[found["kind"] == "sliver"]
    assert (slivers["width_m"] < 1.0).all() and (slivers["width_m"] > 0.3).all()
    gaps = found[found["kind"] == "gap"]
    assert gaps["area_m2"].between(4_000, 6_000).all()


def test_clean_demo_has_no_defects():
    report = check_system(load_demo(), dual=False)
    assert report.defects.empty and report.ok


def test_report_summary_and_dict(dirty_report):
    summary = dirty_report.summary()
    assert summary.loc["gap", "total"] == 2
    d = dirty_report.to_dict()
    assert d["by_severity"] == {"error": 9, "warning": 2}
    assert d["by_level"] == {"grid": 9, "micro_grid": 2}
    assert all(m for m in dirty_report.defects["message_zh"]) and all(
        dirty_report.defects["message_en"]
    )


# -- hand-made cases ---------------------------------------------------------------
def town_frame(geom=None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": [TOWN], "parent_code": ["150823"]},
        geometry=[geom or box(X0, Y0, X0 + 300, Y0 + 100)],
        crs=4545,
    )


def grids(geoms, codes=None) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame({"parent_code": [TOWN] * len(geoms)}, geometry=list(geoms), crs=4545)
    frame["code"] = codes or [f"{TOWN}{i + 1:03d}" for i in range(len(geoms))]
    return frame


def three() -> list:
    return [box(X0 + 100 * i, Y0, X0 + 100 * (i + 1), Y0 + 100) for i in range(3)]


def test_clean_tiling_has_nothing():
    assert check_level(grids(three()), "grid", town_frame()).empty


def test_missing_vertex_is_an_edge_mismatch_only():
    cells = three()
    # The middle cell has a vertex on its west edge that its neighbour lacks.
    cells[1] = shapely.Polygon(
        [
            (X0 + 100, Y0),
            (X0 + 200, Y0),
            (X0 + 200, Y0 + 100),
            (X0 + 100, Y0 + 100),
            (X0 + 100, Y0 + 50),
        ]
    )
    d = check_level(grids(cells), "grid", town_frame())
    assert d["kind"].tolist() == ["edge_mismatch"]
    assert set(d["codes"].iloc[0].split(",")) == {f"{TOWN}001", f"{TOWN}002"}
    assert d["severity"].iloc[0] == "warning"


def test_loop_repair_hole_is_not_a_gap():
    cells = three()
    x = X0 + 100
    # The ring loops inward; make_valid turns the loop into a hole.
    cells[1] = shapely.Polygon(
        [(x, Y0), (x + 100, Y0), (x + 100, Y0 + 100), (x, Y0 + 100), (x, Y0 + 50), (x + 50, Y0 + 50),
         (x + 50, Y0 + 20), (x + 30, Y0 + 20), (x + 30, Y0 + 50), (x, Y0 + 50)]
    )  # fmt: skip
    d = check_level(grids(cells), "grid", town_frame())
    # The loop's base vertex on the west edge is one the neighbour lacks: a
    # real (warning) mismatch. The loop itself is no gap.
    assert sorted(d["kind"]) == ["edge_mismatch", "invalid_geometry", "repair_hole"]
    assert (d.loc[d["kind"] != "edge_mismatch", "codes"] == f"{TOWN}002").all()
    hole = d[d["kind"] == "repair_hole"]
    assert hole["area_m2"].iloc[0] == pytest.approx(600, rel=1e-6)
    assert hole["severity"].iloc[0] == "info"


def test_multipart_island_and_gap():
    cells = three()
    cells[2] = shapely.MultiPolygon(
        [box(X0 + 200, Y0, X0 + 300, Y0 + 40), box(X0 + 200, Y0 + 60, X0 + 300, Y0 + 100)]
    )
    d = check_level(grids(cells), "grid", town_frame())
    assert sorted(d["kind"]) == ["gap", "multipart"]
    gap = d[d["kind"] == "gap"].iloc[0]
    assert gap["area_m2"] == pytest.approx(2000) and gap["width_m"] == pytest.approx(20, abs=0.05)
    # An island: a grid touching no other grid, with a gap all round it.
    lone = [box(X0, Y0, X0 + 100, Y0 + 100), box(X0 + 150, Y0 + 20, X0 + 250, Y0 + 80)]
    d = check_level(grids(lone), "grid", town_frame())
    assert sorted(d["kind"]) == ["gap", "island", "island"]


def test_codes_that_do_not_extend_or_have_wrong_width():
    frame = grids(three(), codes=[f"{TOWN}001", "150823101002", "15082310003"])
    d = check_level(frame, "grid", town_frame())
    kinds = d.set_index("codes")["kind"]
    assert kinds["150823101002"] == "bad_code"
    assert kinds["15082310003"] == "bad_code"
    assert len(d) == 2


def test_parent_without_children_is_one_gap_named_by_the_parent():
    towns = pd.concat(
        [town_frame(), town_frame(box(X0 + 300, Y0, X0 + 400, Y0 + 100)).assign(code="150823101")]
    )
    d = check_level(grids(three()), "grid", gpd.GeoDataFrame(towns, crs=4545))
    assert d["kind"].tolist() == ["gap"] and d["codes"].iloc[0] == "150823101"
    assert d["area_m2"].iloc[0] == pytest.approx(10_000)


def test_empty_and_non_polygon_rows_are_reported_not_crashed():
    cells = three()
    frame = grids([cells[0], cells[1], shapely.LineString([(X0 + 200, Y0), (X0 + 300, Y0 + 100)])])
    frame.loc[len(frame)] = {
        "parent_code": TOWN,
        "code": f"{TOWN}004",
        "geometry": shapely.Polygon(),
    }
    d = check_level(frame, "grid", town_frame())
    assert set(d["kind"]) == {"not_polygon", "empty_geometry", "gap"}


def test_layers_in_different_crs_are_refused():
    with pytest.raises(CrsError, match="EPSG:4490"):
        check_level(grids(three()), "grid", town_frame().to_crs(4490))


def test_storage_crs_results_come_back_in_it():
    frame = grids(three()).to_crs(4490)
    frame.loc[1, "geometry"] = frame.geometry.iloc[1].buffer(-1e-5)  # ~1 m gap all round
    d = check_level(frame, "grid", town_frame().to_crs(4490))
    assert d.crs.to_epsg() == 4490
    # Nothing touches any more: the ring-shaped gap and three islands.
    assert sorted(d["kind"]) == ["gap", "island", "island", "island"]
    assert d.loc[d["kind"] == "gap", "width_m"].between(0.5, 1.2).all()


# -- property: random coverages with injected defects -------------------------------
def coverage(xs, ys) -> gpd.GeoDataFrame:
    cells = [
        box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)
        for x0, x1 in itertools.pairwise(xs)
        for y0, y1 in itertools.pairwise(ys)
    ]
    frame = gpd.GeoDataFrame({"parent_code": [TOWN] * len(cells)}, geometry=cells, crs=4545)
    frame["code"] = number_children(frame, frame["parent_code"], 3)
    return frame


@st.composite
def breaks(draw):
    n = draw(st.integers(3, 6))
    steps = draw(st.lists(st.integers(60, 200), min_size=n, max_size=n))
    return list(np.cumsum([0, *steps]).astype(float))


DEFECTS = ("gap_inside", "gap_edge", "overlap", "sliver_gap", "sliver_overlap", "spike")


def inject(frame, kind, i, j, size):
    """Apply one defect to cell i (and its east neighbour j); return the expected finding."""
    a, b = frame.geometry.iloc[i], frame.geometry.iloc[j]
    shared = a.intersection(b)
    codes = {frame["code"].iloc[i], frame["code"].iloc[j]}
    if kind == "gap_inside":
        disc = shared.interpolate(0.5, normalized=True).buffer(size)
        frame.loc[frame.index[i], "geometry"] = a.difference(disc)
        frame.loc[frame.index[j], "geometry"] = b.difference(disc)
        return "gap", codes
    if kind == "gap_edge":  # a bite out of the parent's south edge
        south = shapely.LineString(a.exterior.coords[3:5])  # box rings: (minx, miny) → (maxx, miny)
        bite = south.interpolate(0.5, normalized=True).buffer(size)
        frame.loc[frame.index[i], "geometry"] = a.difference(bite)
        return "gap", {frame["code"].iloc[i]}
    if kind in ("overlap", "sliver_overlap"):
        width = size if kind == "overlap" else size / 40
        frame.loc[frame.index[i], "geometry"] = a.union(
            shared.buffer(width, cap_style="flat").intersection(b)
        )
        return ("overlap" if width >= 1 else "sliver"), codes
    if kind == "sliver_gap":
        frame.loc[frame.index[i], "geometry"] = a.difference(
            shared.buffer(size / 40, cap_style="flat")
        )
        return "sliver", codes
    ring = list(a.exterior.coords)
    inward = np.subtract(a.centroid.coords[0], ring[1])
    tip = tuple(np.add(ring[1], 5 * inward / np.hypot(*inward)))
    frame.loc[frame.index[i], "geometry"] = shapely.Polygon([*ring[:2], tip, *ring[1:]])
    return "invalid_geometry", {frame["code"].iloc[i]}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    xs=breaks(),
    ys=breaks(),
    picks=st.lists(
        st.tuples(st.sampled_from(DEFECTS), st.integers(0, 10_000), st.floats(5, 25)),
        min_size=1,
        max_size=3,
    ),
)
def test_random_coverage_returns_exactly_the_injected_defects(xs, ys, picks):
    frame = coverage(xs, ys)
    parent = town_frame(box(X0, Y0, X0 + xs[-1], Y0 + ys[-1]))
    nx, ny = len(xs) - 1, len(ys) - 1
    used: set[int] = set()
    expected = set()
    for kind, seed, size in picks:
        col, row = seed % (nx - 1), (seed // nx) % ny
        if kind == "gap_edge":
            row = 0
        i = col * ny + row  # cells are listed column by column
        j = i + ny  # its east neighbour
        block = {i, j, i - 1, i + 1, j - 1, j + 1, i - ny, j + ny}
        if used & block:
            continue
        used |= block
        found_kind, codes = inject(frame, kind, i, j, size)
        event(kind)
        expected.add((found_kind, "grid", frozenset(codes)))
    d = check_level(frame, "grid", parent)
    assert found_set(d) == expected
    assert len(d) == len(expected)


# -- empty layers and impossible coordinates -------------------------------------------
def metric_system(**empty) -> GridSystem:
    """Banner of two towns (EPSG:4545), each tiled by three grids; ``empty`` levels have no rows."""
    towns = [box(X0, Y0, X0 + 300, Y0 + 100), box(X0 + 300, Y0, X0 + 600, Y0 + 100)]
    town_codes = [TOWN, "150823101"]
    cells = [box(X0 + 100 * i, Y0, X0 + 100 * (i + 1), Y0 + 100) for i in range(6)]
    grid_codes = [f"{town_codes[i // 3]}{i % 3 + 1:03d}" for i in range(6)]

    def layer(codes, parents, geoms):
        return gpd.GeoDataFrame(
            {"code": codes, "name": codes, "parent_code": parents}, geometry=geoms, crs=4545
        )

    layers = {
        "banner": layer(["150823"], [""], [box(X0, Y0, X0 + 600, Y0 + 100)]),
        "town": layer(town_codes, ["150823"] * 2, towns),
        "grid": layer(grid_codes, [c[:9] for c in grid_codes], cells),
        "micro_grid": layer([f"{TOWN}001001"], [f"{TOWN}001"], [cells[0]]),
    }
    for name in empty:
        layers[name] = layers[name].iloc[:0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty full level warns; the check is the subject
        return GridSystem.from_layers(layers, origin="metric", strict=False)


def test_the_metric_system_is_clean():
    assert check_system(metric_system(), dual=False).defects.empty


def test_an_empty_full_level_is_one_gap_per_parent():
    d = check_system(metric_system(grid=True, micro_grid=True), dual=False).defects
    assert d["kind"].tolist() == ["gap", "gap"]
    assert (d["level"] == "grid").all()
    assert sorted(d["codes"]) == [TOWN, "150823101"]  # named by the parent
    assert d["area_m2"].tolist() == pytest.approx([30_000, 30_000], rel=1e-6)


def test_an_empty_refined_level_has_nothing_to_report():
    assert check_system(metric_system(micro_grid=True), dual=False).defects.empty


def test_check_level_with_an_empty_layer():
    d = check_level(grids([]), "grid", town_frame())
    assert d["kind"].tolist() == ["gap"] and d["codes"].tolist() == [TOWN]
    assert d["area_m2"].iloc[0] == pytest.approx(30_000)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e300])
def test_check_level_names_the_row_with_impossible_coordinates(bad):
    cells = three()
    cells[1] = shapely.Polygon([(X0 + 100, Y0), (bad, Y0), (X0 + 200, Y0 + 100)])
    with pytest.raises(GeometryError, match=r"layer 'grid', row 1 \(code 150823100002\)"):
        check_level(grids(cells), "grid", town_frame())


def test_check_level_refuses_metres_labelled_as_degrees():
    frame = grids(three()).set_crs(4490, allow_override=True)
    with pytest.raises(CrsError, match=r"layer 'grid'.*look like metres"):
        check_level(frame, "grid", town_frame().set_crs(4490, allow_override=True))


# -- projection once and right; the GCJ-02 hint -----------------------------------------
def tiny_system(**replace_layers) -> GridSystem:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import tiny_layers

    return GridSystem.from_layers({**tiny_layers(), **replace_layers}, origin="tiny")


def test_the_tiny_fixture_exact_in_degrees_checks_clean():
    # Its towns' 11 km straight edges carry the grids' vertices only at their ends;
    # projecting corners alone made a 40,613 m² "gap" 4.8 m wide and 11 other findings.
    report = check_system(tiny_system())
    assert report.defects.empty and report.ok and report.hints == []


def test_auto_metric_crs_is_chosen_once_and_reported():
    from dataclasses import replace

    system = tiny_system()
    auto = GridSystem.from_layers(
        {k: v.copy() for k, v in system.levels.items()},
        config=replace(system.config, metric_crs="auto"),
        origin="tiny",
    )
    report = check_system(auto)
    assert report.metric_crs.to_epsg() == 4545 and report.defects.empty
    assert report.to_dict()["metric_crs"].startswith("EPSG:4545")


def test_a_grid_layer_in_gcj02_gets_the_hint_naming_it():
    from gridgeo.crs import wgs84_to_gcj02

    system = tiny_system()
    grid = system.levels["grid"].copy()
    grid.geometry = shapely.transform(
        grid.geometry.to_numpy(), lambda xy: np.column_stack(wgs84_to_gcj02(*xy.T))
    )
    report = check_system(tiny_system(grid=grid), dual=False)
    kinds = set(report.defects.loc[report.defects["level"] == "grid", "kind"])
    assert {"gap", "outside_parent"} <= kinds
    assert len(report.hints) == 1
    assert "layer 'grid'" in report.hints[0] and "outside 'town'" in report.hints[0]
    assert "coords='gcj02'" in report.hints[0]
    # check_level carries it in the frame's attrs.
    d = check_level(grid, "grid", system.levels["town"])
    assert d.attrs["hints"] == report.hints


def test_check_level_on_a_layer_without_codes_says_what_to_use():
    from gridgeo.errors import SchemaError

    plain = grids(three()).drop(columns=["code"])
    with pytest.raises(SchemaError, match=r"no 'code' column.*check_layer"):
        check_level(plain, "grid", town_frame())


def test_codes_of_a_finding_are_sorted_and_pieces_are_separate():
    cells = three()
    # Two tabs of cell 1 reach into cell 2: two overlap pieces, one border.
    tabs = [box(X0 + 200, Y0 + 10, X0 + 210, Y0 + 30), box(X0 + 200, Y0 + 60, X0 + 210, Y0 + 90)]
    cells[1] = shapely.union_all([cells[1], *tabs])
    d = check_level(grids(cells), "grid", town_frame())
    assert d["kind"].tolist() == ["overlap", "overlap"]
    assert set(d["codes"]) == {f"{TOWN}002,{TOWN}003"}
    assert sorted(d["area_m2"].round(6)) == [200, 300]
