"""gridgeo.assign: statuses, levels, order, CRSs, tables, and a brute-force oracle."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

import gridgeo
from gridgeo.assign import MAX_CELLS, STATUSES, Reason, assign, build_index
from gridgeo.demo import households, load_truth
from gridgeo.errors import CrsError, GridgeoError, SchemaError, cli_voice
from gridgeo.io import read_points, write_table
from gridgeo.model import GridSystem
from tests.conftest import tiny_layers


@pytest.fixture(scope="module")
def homes(system):
    return households(system)


@pytest.fixture(scope="module")
def dirty():
    return gridgeo.load_demo("dirty")


@pytest.fixture(scope="module")
def dirty_index(dirty):
    return build_index(dirty)


def points(xy, crs=4490, **columns) -> gpd.GeoDataFrame:
    geoms = [None if p is None else shapely.Point(p) for p in xy]
    return gpd.GeoDataFrame(columns, geometry=geoms, crs=crs)


def test_every_household_lands_in_its_registered_grid(system, index, homes):
    out = assign(homes, system, index=index)
    assert len(out) == len(homes) and out.index.equals(homes.index)
    assert (out["assign_status"] == "inside").all()
    assert (out["grid_code"].astype(str) == homes["registered_grid"]).all()
    # Micro-grid codes extend grid codes, grid codes extend town codes.
    micro = out["micro_grid_code"].astype(str)
    refined = out["micro_grid_code"].notna()
    assert (micro[refined].str[:12] == out.loc[refined, "grid_code"].astype(str)).all()
    assert (out["grid_code"].astype(str).str[:9] == out["town_code"].astype(str)).all()
    assert refined.sum() == system["micro_grid"]["households"].sum()


def test_order_and_index_are_kept(system, index, homes):
    sample = homes.sample(500, random_state=1)
    sample.index = [f"row{i}" for i in range(500)]
    before = sample.copy()
    out = assign(sample, system, index=index)
    assert sample.equals(before) and list(sample.columns) == list(before.columns)  # input untouched
    assert list(out.index) == list(sample.index)
    assert (out["household_id"] == sample["household_id"]).all()


def test_each_status_with_its_reason(system, index):
    grid = system["grid"].iloc[0].geometry
    vertex = shapely.get_coordinates(grid)[0]  # a corner shared with neighbours
    xy = [
        tuple(shapely.get_coordinates(grid.representative_point())[0]),  # inside
        tuple(vertex),  # on a shared boundary
        (108.0, 40.2),  # in China, outside the banner
        None,  # missing
        (40.74, 108.63),  # latitude and longitude swapped
        (500.0, 40.0),  # out of range
        (float("nan"), 40.0),  # not a number
    ]
    out = assign(points(xy), system, index=index)
    assert out["assign_status"].tolist() == [
        "inside",
        "on_boundary",
        "outside",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
    ]
    assert out["assign_reason"].tolist()[3:] == [
        "missing coordinates",
        "latitude and longitude swapped",
        "coordinates out of range",
        "non-numeric coordinates",
    ]
    boundary = out.iloc[1]
    candidates = boundary["candidates"].split(",")
    assert len(candidates) >= 2 and candidates == sorted(candidates)
    # The documented rule: the lowest code wins.
    assert candidates[0].startswith(boundary["grid_code"])
    assert out["grid_code"].isna().tolist() == [False, False, True, True, True, True, True]


def test_overlaps_are_one_row_resolved_or_left_for_review(dirty, dirty_index):
    truth = load_truth("dirty")
    overlap = truth[(truth["kind"] == "overlap") & truth["codes"].str.contains("150823101052")]
    at = overlap.geometry.iloc[0].representative_point()
    pts = points([tuple(shapely.get_coordinates(at)[0])])
    ruled = assign(pts, dirty, index=dirty_index)
    assert ruled["assign_status"].tolist() == ["in_overlap"]
    assert ruled["candidates"].iloc[0] == "150823101052,150823101057"
    assert ruled["grid_code"].iloc[0] == "150823101052"
    review = assign(pts, dirty, index=dirty_index, on_overlap="review")
    assert review["grid_code"].isna().all() and review["assign_status"].iloc[0] == "in_overlap"
    # Plain geopandas duplicates the point; gridgeo never does.
    assert len(gpd.sjoin(pts, dirty["grid"][["code", "geometry"]], predicate="within")) == 2


def test_gap_points_get_a_suggestion_never_an_assignment(dirty, dirty_index):
    truth = load_truth("dirty")
    gap = truth[(truth["kind"] == "gap") & (truth["codes"] == "150823102047")].geometry.iloc[0]
    at = shapely.get_coordinates(gap.representative_point())[0]
    out = assign(points([tuple(at)]), dirty, index=dirty_index)
    row = out.iloc[0]
    assert row["assign_status"] == "in_gap" and pd.isna(row["grid_code"])
    assert row["suggested"] == "150823102047" and 0 < row["suggested_m"] < 60
    far = assign(points([tuple(at)]), dirty, index=dirty_index, gap_tolerance=0.001)
    assert pd.isna(far["suggested"].iloc[0])


def test_projected_input_gives_the_same_answer(system, index, homes):
    sample = homes.head(3000)
    a = assign(sample, system, index=index)
    b = assign(sample.to_crs(4545), system, index=index)
    for column in ("town_code", "grid_code", "micro_grid_code", "assign_status"):
        assert (a[column].astype(str) == b[column].astype(str)).all()


def test_refuses_no_crs_and_all_outside(system, index):
    pts = points([(108.6, 40.7)])
    with pytest.raises(CrsError, match="no coordinate reference system"):
        assign(pts.set_crs(None, allow_override=True), system, index=index)
    with pytest.raises(CrsError, match="none of the 2 valid points"):
        assign(points([(116.4, 39.9), (121.5, 31.2)]), system, index=index)  # Beijing, Shanghai


def test_gcj02_points_are_converted_back(system, index, homes):
    from gridgeo.crs import wgs84_to_gcj02

    sample = homes.head(5000)
    lon, lat = wgs84_to_gcj02(sample.geometry.x.to_numpy(), sample.geometry.y.to_numpy())
    app = points(list(zip(lon, lat, strict=True)), crs=4326)
    right = assign(app, system, index=index, coords="gcj02")
    assert (right["grid_code"].astype(str).to_numpy() == sample["registered_grid"].to_numpy()).all()
    wrong = assign(app, system, index=index)
    assert (
        wrong["grid_code"].astype(str).to_numpy() != sample["registered_grid"].to_numpy()
    ).mean() > 0.2


def test_tables_with_chinese_headers_gbk_and_bad_rows(tmp_path, system, index):
    table = pd.DataFrame(
        {
            "户主": ["王伟", "李芳", "张敏", "巴特尔"],
            "经度": ["108.6319", "abc", "", "108.6319"],
            "纬度": ["40.7364", "40.7", "40.7", "40.7364"],
        }
    )
    path = tmp_path / "hh.csv"
    table.to_csv(path, index=False, encoding="gb18030")
    pts = read_points(path)
    assert pts["coord_error"].tolist() == ["", "non-numeric longitude", "missing longitude", ""]
    out = assign(pts, system, index=index)
    assert out["assign_status"].tolist() == ["inside", "invalid", "invalid", "inside"]
    assert out["assign_reason"].tolist()[1:3] == ["non-numeric longitude", "missing longitude"]
    assert out["户主"].tolist() == ["王伟", "李芳", "张敏", "巴特尔"]
    xlsx = tmp_path / "hh.xlsx"
    table.rename(columns={"经度": "lng", "纬度": "LAT"}).to_excel(xlsx, index=False)
    assert read_points(xlsx)["coord_error"].tolist() == pts["coord_error"].tolist()
    with pytest.raises(SchemaError, match="lon="):
        read_points(_write(tmp_path / "x.csv", "a,b\n1,2\n"))


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_output_opens_in_excel_with_chinese(tmp_path, system, index, homes):
    out = assign(homes.head(10), system, index=index)
    path = write_table(out, tmp_path / "out.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs
    back = pd.read_csv(path, encoding="utf-8-sig", dtype=str)
    assert back["head_name"].tolist() == out["head_name"].tolist()
    assert back["grid_code"].tolist() == out["grid_code"].astype(str).tolist()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_matches_a_brute_force_oracle_on_the_dirty_system(dirty, dirty_index, seed):
    rng = np.random.default_rng(seed)
    # Points near real boundaries and defects as well as anywhere in the banner.
    leaves = dirty_index.leaves
    near = shapely.get_coordinates(
        leaves.geometry.iloc[rng.integers(len(leaves), size=40)].boundary.to_numpy()
    )
    picks = near[rng.integers(len(near), size=150)] + rng.normal(0, 0.0003, (150, 2))
    anywhere = rng.uniform([108.1, 40.4], [109.95, 41.3], (150, 2))
    xy = np.vstack(
        [picks, anywhere, near[rng.integers(len(near), size=20)]]
    )  # some exactly on vertices
    out = assign(points([tuple(p) for p in xy]), dirty, index=dirty_index, on_overlap="review")
    geoms = leaves.geometry.to_numpy()
    pts = shapely.points(xy)
    for k, row in enumerate(out.itertuples()):
        contains = np.flatnonzero(shapely.contains(geoms, pts[k]))
        touches = np.flatnonzero(shapely.intersects(geoms, pts[k]))
        if len(contains) == 1:
            expected = "inside"
            assert row.micro_grid_code == leaves["micro_grid_code"].iloc[contains[0]] or pd.isna(
                row.micro_grid_code
            )
            assert row.grid_code == leaves["grid_code"].iloc[contains[0]]
        elif len(contains) > 1:
            expected = "in_overlap"
        elif len(touches):
            expected = "on_boundary"
        else:
            expected = "in_gap" if dirty_index.outline.contains(pts[k]) else "outside"
        assert row.assign_status == expected, (k, xy[k])
    assert set(out["assign_status"]) <= set(STATUSES)


# -- points exactly on boundaries: vectorised, same answers as shapely -----------------
def reference(xy, system, index, on_overlap="rule") -> pd.DataFrame:
    """Statuses and codes from shapely's within/covered_by over all leaves, one pair at a time."""
    leaves = index.leaves
    geoms = leaves.geometry.to_numpy()
    pts = shapely.points(xy)
    tree = shapely.STRtree(geoms)
    codes = leaves["leaf_code"].to_numpy(dtype=str)
    within = pd.DataFrame(tree.query(pts, predicate="within").T, columns=["p", "g"])
    covered = pd.DataFrame(tree.query(pts, predicate="covered_by").T, columns=["p", "g"])
    n_in = within.groupby("p").size().reindex(range(len(xy)), fill_value=0).to_numpy()
    members = pd.concat([within[n_in[within["p"]] > 1], covered[n_in[covered["p"]] == 0]])
    members["code"] = codes[members["g"]]
    members = members.sort_values(["p", "code"])
    lowest = members.groupby("p")["g"].first()
    listed = members.groupby("p")["code"].agg(",".join)
    one = within[n_in[within["p"]] == 1].set_index("p")["g"]
    status = np.where(
        n_in == 1,
        "inside",
        np.where(n_in > 1, "in_overlap", np.where(np.isin(np.arange(len(xy)), lowest.index),
                 "on_boundary", "none")),
    )  # fmt: skip
    outline = shapely.covers(index.outline, pts)
    status = np.where(status == "none", np.where(outline, "in_gap", "outside"), status)
    leaf = pd.Series(-1, index=range(len(xy)))
    leaf[one.index] = one
    chosen = lowest if on_overlap == "rule" else lowest[n_in[lowest.index] == 0]
    leaf[chosen.index] = chosen
    out = pd.DataFrame({"assign_status": status, "candidates": listed.reindex(range(len(xy)))})
    for column in ("grid_code", "micro_grid_code"):
        values = leaves[column].to_numpy(dtype=object)[leaf.clip(lower=0)]
        out[column] = np.where(leaf >= 0, values, None)
    return out.replace("", None)


def same_as_reference(out, expected):
    for column in ("assign_status", "grid_code", "micro_grid_code", "candidates"):
        got = out[column].astype(object).where(out[column].notna(), None).to_numpy()
        want = expected[column].astype(object).where(expected[column].notna(), None).to_numpy()
        assert (got == want).all(), (column, np.flatnonzero(got != want)[:5])


def test_every_vertex_of_the_demo_grids_matches_shapely(system, index):
    xy = np.unique(shapely.get_coordinates(system["grid"].geometry.to_numpy()), axis=0)
    out = assign(points([tuple(p) for p in xy]), system, index=index)
    assert len(out) > 10_000 and (out["assign_status"] == "on_boundary").all()
    same_as_reference(out, reference(xy, system, index))


@pytest.mark.parametrize("on_overlap", ["rule", "review"])
def test_every_vertex_of_the_dirty_grids_matches_shapely(dirty, dirty_index, on_overlap):
    xy = np.unique(shapely.get_coordinates(dirty_index.leaves.geometry.to_numpy()), axis=0)
    truth = load_truth("dirty")
    overlaps = truth[truth["kind"] == "overlap"].geometry.representative_point()
    xy = np.vstack([xy, shapely.get_coordinates(overlaps.to_numpy())])
    out = assign(points([tuple(p) for p in xy]), dirty, index=dirty_index, on_overlap=on_overlap)
    expected = reference(xy, dirty, dirty_index, on_overlap)
    assert {"on_boundary", "in_overlap"} <= set(expected["assign_status"])
    same_as_reference(out, expected)


def test_reasons_are_one_enum_and_name_the_root(system, index):
    assert [int(r) for r in Reason] == list(range(len(Reason)))
    assert len({r.text for r in Reason}) == len(Reason)
    out = assign(points([(108.0, 40.2), (108.63, 40.74)]), system, index=index)
    assert out["assign_reason"].iloc[0] == f"outside {system.config.root_name}"
    assert "banner" not in " ".join(out["assign_reason"].cat.categories)


def test_messages_name_options_the_way_the_user_sets_them(system, index):
    pts = points([(108.63, 40.74)])
    with pytest.raises(GridgeoError, match="on_overlap='rule'"):
        assign(pts, system, index=index, on_overlap="first")
    with cli_voice(), pytest.raises(GridgeoError, match="--on-overlap 'rule'"):
        assign(pts, system, index=index, on_overlap="first")
    with cli_voice(), pytest.raises(CrsError, match="--coords 'gcj02'"):
        assign(pts.to_crs(4545), system, index=index, coords="gcj02")


# -- bounded lattice -------------------------------------------------------------------
def ten_degree_system() -> GridSystem:
    """The tiny system stretched over 10° x 10° of China, with a wavy grid boundary."""
    layers = tiny_layers()
    for frame in layers.values():
        frame["geometry"] = shapely.transform(
            frame.geometry.to_numpy(), lambda xy: (xy - [108.5, 40.7]) * [50, 100] + [100, 30]
        )
    grid = layers["grid"]
    wave = shapely.Polygon([(100 + 0.1 * i, 35 + np.sin(i / 3)) for i in range(51)]
                           + [(105, 40), (100, 40)])  # fmt: skip
    north = grid.geometry.iloc[0]
    grid.loc[0, "geometry"] = north.intersection(wave)
    grid.loc[1, "geometry"] = grid.geometry.iloc[1].union(north.difference(wave))
    layers["micro_grid"] = layers["micro_grid"].iloc[:0]
    return GridSystem.from_layers(layers, origin="ten degrees")


def test_a_large_system_gets_a_bounded_lattice_and_exact_answers():
    system = ten_degree_system()
    index = build_index(system)
    assert index.lookup.size <= MAX_CELLS
    assert index.cell > 0.0005  # coarsened from the default
    rng = np.random.default_rng(3)
    xy = rng.uniform([99.5, 29.5], [110.5, 40.5], (3000, 2))
    out = assign(points([tuple(p) for p in xy]), system, index=index)
    leaves = index.leaves
    inside = shapely.contains_xy(leaves.geometry.to_numpy()[:, None], xy[:, 0], xy[:, 1])
    hit = inside.argmax(axis=0)
    expected = np.where(inside.any(axis=0), leaves["grid_code"].to_numpy(dtype=object)[hit], None)
    got = out["grid_code"].astype(object).where(out["grid_code"].notna(), None).to_numpy()
    assert (got == expected).all()
    assert (out["assign_status"] == "inside").sum() == inside.any(axis=0).sum() > 1000


def test_empty_levels_do_not_break_the_index():
    layers = tiny_layers()
    layers["grid"] = layers["grid"].iloc[:0]
    layers["micro_grid"] = layers["micro_grid"].iloc[:0]
    pts = points([(108.55, 40.75), (108.0, 40.2)])
    # Towns without grids are the lowest polygons: a point lands in its town only.
    # (Loading such a system strictly is refused: see test_model.)
    with pytest.warns(UserWarning, match="no features"):
        system = GridSystem.from_layers(layers, strict=False)
    out = assign(pts, system)
    assert out["assign_status"].tolist() == ["inside", "outside"]
    assert out["town_code"].tolist()[0] == "150823100" and out["grid_code"].isna().all()
    # Nothing below the banner at all: every point in it is in a gap.
    layers["town"] = layers["town"].iloc[:0]
    with pytest.warns(UserWarning, match="no features"):
        system = GridSystem.from_layers(layers, strict=False)
    out = assign(pts, system)
    assert out["assign_status"].tolist() == ["in_gap", "outside"]


def test_index_built_in_chunks_is_the_same_index(system, index, monkeypatch):
    # build_index scans the lattice a band of rows at a time and cuts and
    # tests the leaves a chunk at a time (memory over a city's extent); the
    # chunk sizes must change nothing.
    monkeypatch.setattr(gridgeo.assign, "_CELL_CHUNK", 1_000)
    monkeypatch.setattr(gridgeo.assign, "_LEAF_CHUNK", 50)
    small = build_index(system)
    assert (index.lookup <= -2).sum() > 10 * 1_000  # many chunks
    assert np.array_equal(small.lookup, index.lookup)
    assert np.array_equal(small.offsets, index.offsets)
    assert np.array_equal(small.candidates, index.candidates)


def test_each_region_is_labelled_as_its_every_cell_would_be(system, index):
    # One cell per region decides the region; any cell must give the same leaf.
    # Check a sample of non-boundary cells of the demo lattice against shapely.
    rng = np.random.default_rng(5)
    iy, ix = np.nonzero(index.lookup > -2)  # leaf numbers and -1 (no leaf)
    pick = rng.choice(len(iy), size=5_000, replace=False)
    x0, y0 = index.origin
    centres = shapely.points(x0 + (ix[pick] + 0.5) * index.cell, y0 + (iy[pick] + 0.5) * index.cell)
    leaves = index.leaves.geometry.to_numpy()
    where, leaf = shapely.STRtree(leaves).query(centres, predicate="within")
    expected = np.full(len(pick), -1)
    expected[where] = leaf
    assert np.array_equal(index.lookup[iy[pick], ix[pick]], expected)


def test_boundary_cells_list_every_leaf_that_meets_them(dirty_index):
    # Candidates come from each leaf's own edges plus the leaves holding the
    # cell's centre; every leaf whose polygon meets the cell (what boxing the
    # cell and querying the tree finds) must be among them, including the
    # repaired leaves that are geometry collections (no `boundary` of their own).
    index = dirty_index
    geoms = index.leaves.geometry.to_numpy()
    assert (shapely.get_type_id(geoms) == 7).any()
    by, bx = np.nonzero(index.lookup <= -2)
    b = -2 - index.lookup[by, bx]
    x0, y0 = index.origin
    c = index.cell
    boxes = shapely.box(x0 + bx * c, y0 + by * c, x0 + (bx + 1) * c, y0 + (by + 1) * c)
    cell, leaf = shapely.STRtree(geoms).query(boxes, predicate="intersects")
    n = len(geoms)
    listed = np.repeat(np.arange(len(index.offsets) - 1), np.diff(index.offsets)) * n
    listed += index.candidates
    assert len(cell) > 10_000
    assert np.isin(b[cell] * n + leaf, listed).all()
