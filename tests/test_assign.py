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
from gridgeo.assign import STATUSES, assign, build_index
from gridgeo.demo import households, load_truth
from gridgeo.errors import CrsError, SchemaError
from gridgeo.io import read_points, write_table


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
