"""The demo dataset: counts, invariants, ground truth, determinism."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridgeo import demo, stats
from gridgeo.codes import number_children
from gridgeo.crs import metric_crs

EQUAL_AREA = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +ellps=GRS80 +units=m"


@pytest.fixture(scope="module")
def metric(demo_system):
    return demo.built_in_metric(demo_system)  # how the demo was drawn


@pytest.fixture(scope="module")
def homes(demo_households):
    return demo_households  # computed once per session (conftest)


def test_counts_match_the_banner_report(demo_system):
    assert demo_system.counts() == {"banner": 1, "town": 11, "grid": 662, "micro_grid": 897}
    grid = demo_system["grid"]
    assert grid["workers"].sum() == 2_999
    assert (grid["workers"] >= 1).all() and grid["leader"].str.len().gt(1).all()
    assert grid["residents"].sum() == 257_826
    assert 95_000 <= grid["households"].sum() <= 105_000
    assert grid["general_grid"].nunique() == 15
    assert grid["basic_grid"].nunique() == 200
    # Each basic grid (基础网格) groups whole dual grids inside one general grid (总网格).
    assert (grid.groupby("basic_grid")["general_grid"].nunique() == 1).all()
    assert (grid["grid_type"] == "dedicated").sum() == len(demo.DEDICATED)
    assert grid.loc[grid["grid_type"] == "dedicated", "name"].str.endswith("专属网格").all()


def test_towns_are_the_real_ones(demo_system):
    towns = demo_system["town"]
    assert towns["code"].tolist() == [t.code for t in demo.TOWNS]
    assert towns["name"].tolist() == [t.name for t in demo.TOWNS]
    seats = shapely.points([(t.lon, t.lat) for t in demo.TOWNS])
    assert shapely.contains(towns.geometry.to_numpy(), seats).all()
    share = towns.set_index("name")["residents"] / towns["residents"].sum()
    assert 0.35 <= share["乌拉山镇"] <= 0.45


def test_outline_is_the_real_banner_within_one_percent(demo_system, metric):
    outline = demo_system["banner"].to_crs(EQUAL_AREA)
    area_km2 = outline.area.iloc[0] / 1e6
    assert abs(area_km2 - 7_480) / 7_480 < 0.01
    # The same outline: the demo is cut from it in the metric CRS, to 1 cm.
    source = gpd.GeoDataFrame(geometry=[demo.banner_outline()], crs=4490).to_crs(metric.crs)
    banner = metric["banner"]
    assert banner.geometry.iloc[0].hausdorff_distance(source.geometry.iloc[0]) < 0.05
    assert len(banner.geometry.iloc[0].interiors) == 0


@pytest.mark.parametrize("level", ["town", "grid", "micro_grid", "party_grid", "sanitation_grid"])
def test_every_layer_is_a_valid_coverage(demo_system, metric, level):
    frame = metric.sources[level] if level in metric.sources else metric[level]
    assert frame.is_valid.all()
    assert shapely.coverage_is_valid(frame.geometry.to_numpy())


@pytest.mark.parametrize(("child", "parent"), [("town", "banner"), ("grid", "town")])
def test_children_tile_their_parent(metric, child, parent):
    kids = metric[child].dissolve("parent_code", method="coverage")
    mother = metric[parent].set_index("code").loc[kids.index]
    diff = kids.geometry.symmetric_difference(mother.geometry, align=False)
    assert (diff.area < 1.0).all()  # m², float dust only
    assert len(kids) == len(metric[parent])


def test_every_grid_lies_in_exactly_one_town(metric):
    grid = metric["grid"]
    towns = metric["town"]
    hits = grid.sjoin(towns[["code", "geometry"]], predicate="intersects", lsuffix="g", rsuffix="t")
    hits["shared"] = [
        g.intersection(towns.geometry.iloc[t]).area
        for g, t in zip(hits.geometry, hits["index_t"], strict=True)
    ]
    real = hits[hits["shared"] > 1.0]
    assert real.groupby(level=0).size().eq(1).all()
    assert (real["code_t"] == real["parent_code"]).all()


def test_micro_grids_refine_dense_grids_completely(metric):
    micro = metric["micro_grid"]
    refined = micro.dissolve("parent_code", method="coverage")
    grids = metric["grid"].set_index("code").loc[refined.index]
    assert (refined.geometry.symmetric_difference(grids.geometry, align=False).area < 1.0).all()
    assert (grids["settlement"] == "urban").all()
    per_grid = micro.groupby("parent_code").size()
    assert per_grid.min() >= 3
    assert (micro.groupby("parent_code")["households"].sum() == grids["households"]).all()


def test_codes_follow_reading_order_in_parent(metric):
    for level in ("grid", "micro_grid"):
        frame = metric[level]
        assert (number_children(frame, frame["parent_code"], 3) == frame["code"]).all()


def test_urban_grids_keep_the_household_norm(demo_system):
    grid = demo_system["grid"]
    urban = grid[grid["settlement"] == "urban"]
    inside = urban["households"].between(300, 500)
    assert inside.mean() > 0.9  # most urban grids hold 300–500 households …
    assert (~inside).sum() >= 3  # … and a few do not, for the norm check to find


def test_households_sit_in_their_registered_grid(demo_system, homes):
    assert len(homes) == demo_system["grid"]["households"].sum()
    assert homes["size"].sum() == 257_826
    assert (homes["size"] >= 1).all()
    grid = demo_system["grid"].set_index("code")
    polygons = grid.geometry.reindex(homes["registered_grid"]).to_numpy()
    assert shapely.contains(polygons, homes.geometry.to_numpy()).all()
    counts = homes.groupby("registered_grid").size().reindex(grid.index, fill_value=0)
    assert (counts == grid["households"]).all()


def test_fake_id_numbers_are_well_formed(homes):
    ids = homes["id_number"].head(500)
    assert ids.str.fullmatch(r"150823(19[4-9]\d|200[0-2])\d{4}\d{3}[\dX]").all()
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    for value in ids:
        total = sum(int(d) * w for d, w in zip(value[:17], weights, strict=True))
        assert value[17] == "10X98765432"[total % 11]
    assert homes["phone"].str.fullmatch(r"1[3-9]\d{9}").all()


def test_households_are_deterministic(demo_system, homes):
    again = demo.households(demo_system)
    assert again.geom_equals_exact(homes.geometry, tolerance=0).all()
    assert (again["id_number"] == homes["id_number"]).all()


def test_incidents_cover_a_year_with_gbt_classes(demo_system, homes):
    ev = demo.incidents(demo_system, homes)
    assert 10_000 < len(ev) < 16_000
    assert set(ev["status"]) == set(stats.CASE_STATUSES)
    span = ev["reported_at"].max() - ev["reported_at"].min()
    assert pd.Timedelta(days=360) < span <= pd.Timedelta(days=365)
    assert set(ev["event_class"]) >= {"市容环境", "宣传广告", "施工管理", "突发事件", "街面秩序"}
    overdue = ev[ev["status"] == "overdue"]
    assert (overdue["deadline"] < demo.AS_OF).all()
    assert ev["incident_id"].is_unique


# -- the dirty variant and its truth ------------------------------------------
@pytest.fixture(scope="module")
def dirty(dirty_system):
    return demo.built_in_metric(dirty_system)


@pytest.fixture(scope="module")
def truth():
    return demo.load_truth("dirty").to_crs(metric_crs())  # drawn in the metric CRS


def test_truth_lists_every_required_kind(truth):
    kinds = truth["kind"].value_counts()
    for kind in ("gap", "overlap", "sliver", "invalid_geometry", "outside_parent",
                 "duplicate_code", "orphan"):  # fmt: skip
        assert kinds.get(kind, 0) >= 1, kind
    assert kinds["gap"] == 2 and kinds["invalid_geometry"] == 2


def test_truth_geometry_matches_the_dirty_data(dirty, truth, metric):
    grid = dirty["grid"]
    valid = grid.geometry.make_valid()
    for row in truth.itertuples():
        codes = row.codes.split(",")
        if row.kind in ("gap", "sliver") and "gap" in row.detail:
            assert not valid.intersects(row.geometry.buffer(-0.05)).any()
            town = metric["town"].set_index("code").geometry[row.town]
            assert row.geometry.difference(town).area < 1e-3
        if row.kind == "sliver":
            circle = shapely.maximum_inscribed_circle(row.geometry, 0.01)
            assert circle.length * 2 < 1.0  # narrower than 1 m
        if row.kind == "overlap" or (row.kind == "sliver" and "overlap" in row.detail):
            owners = grid[grid["code"].isin(codes)]
            inner = row.geometry.representative_point()
            assert owners.contains(inner).sum() == 2
        if row.kind == "invalid_geometry":
            level = dirty[row.level]
            bad = level[level["code"] == codes[0]]
            assert not bad.is_valid.any()
            assert "Self-intersection" in shapely.is_valid_reason(bad.geometry.iloc[0])
        if row.kind == "outside_parent":
            own = grid[grid["code"] == codes[0]].geometry.iloc[0]
            town = metric["town"].set_index("code").geometry[codes[0][:9]]
            assert own.difference(town).area == pytest.approx(row.geometry.area, rel=0.01)
        if row.kind == "duplicate_code":
            assert (grid["code"] == codes[0]).sum() == 2
        if row.kind == "orphan":
            micro = dirty["micro_grid"].set_index("code")
            assert micro.loc[codes[0], "parent_code"] not in set(grid["code"])


def test_gaps_include_one_open_to_the_town_edge(truth, metric):
    gaps = truth[truth["kind"] == "gap"]
    edges = metric["town"].set_index("code").boundary
    # Within float dust of the edge (a reprojection round trip moves it by nanometres).
    touching = [
        g.distance(edges[t]) < 1e-3 for g, t in zip(gaps.geometry, gaps["town"], strict=True)
    ]
    assert sorted(touching) == [False, True]


def test_dirty_equals_clean_outside_the_defects(dirty, truth, metric):
    touched = {c for codes in truth["codes"] for c in codes.split(",")}
    clean = metric["grid"].set_index("code")
    same = dirty["grid"][~dirty["grid"]["code"].isin(touched)].set_index("code")
    assert len(same) > 600
    assert same.geometry.geom_equals_exact(clean.geometry.loc[same.index], 1e-6).all()


def test_dual_truth_matches_the_source_layers(metric):
    truth = demo.load_truth("dual").to_crs(metric_crs())
    assert (truth["kind"] == "reassigned").sum() == 12
    assert (truth["kind"] == "merged").sum() == 20
    party = metric.sources["party_grid"].set_index("code")
    dual = metric["grid"].set_index("code")
    for row in truth[truth["layer"] == "party_grid"].itertuples():
        # The block belongs to dual_from in the dual grid, to dual_to in the party layer.
        share_dual = (
            row.geometry.intersection(dual.geometry[row.dual_from]).area / row.geometry.area
        )
        share_party = (
            row.geometry.intersection(party.geometry[row.dual_to]).area / row.geometry.area
        )
        assert share_dual > 0.99 and share_party > 0.95
    # Digitising noise: shared boundaries differ by metres, not more.
    common = (
        party.index.intersection(dual.index)
        .difference(truth["dual_from"])
        .difference(truth["dual_to"])
    )
    haus = party.geometry[common].hausdorff_distance(dual.geometry[common], align=True)
    assert 0.1 < haus.median() < 5.0 and haus.max() < 6.0


def test_generator_reproduces_the_committed_data(demo_system):
    data = demo.generate()
    for level, frame in data.system.items():
        committed = demo_system[level]
        assert (frame["code"] == committed["code"]).all()
        assert (frame["name"] == committed["name"]).all()
        assert frame.geom_equals_exact(committed.geometry, 1e-9).all()
    assert np.array_equal(np.sort(data.truth["kind"]), np.sort(demo.load_truth()["kind"]))


def test_regenerating_the_demo_is_byte_identical(tmp_path):
    """`gridgeo demo --regenerate` rewrites data/ without changing a byte (dates are fixed)."""
    demo.write_demo(tmp_path)
    committed = demo.DATA_DIR
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(written) >= 20
    changed = [p for p in written if (tmp_path / p).read_bytes() != (committed / p).read_bytes()]
    assert changed == []
