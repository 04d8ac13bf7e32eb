"""Tests of gridgeo.io.stream: chunks written to one file equal one write of the whole frame.

Real files read back with GDAL and pyarrow; a full disk is a real 2 MB tmpfs.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgeo.assign import assign
from gridgeo.errors import (
    CrsError,
    DataFileError,
    DiskFullError,
    EncodingError,
    GeometryError,
    SchemaError,
)
from gridgeo.io import open_writer, read_layer, read_points, write_layer, write_table
from gridgeo.model import GridSystem
from tests.conftest import tiny_layers

CRS = "EPSG:4490"
SUFFIXES = [".csv", ".gpkg", ".parquet", ".shp"]


def _listing(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` → its bytes (``None`` for a folder)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def _chunks(frame: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [frame.iloc[start : start + size] for start in range(0, len(frame), size)]


def _stream(frames, path: Path, **options) -> Path:
    with open_writer(path, **options) as writer:
        for frame in frames:
            writer.write(frame)
    assert writer.rows == sum(len(f) for f in frames)
    return path


def _one_shot(frame: pd.DataFrame, path: Path) -> Path:
    return write_table(frame, path) if path.suffix == ".csv" else write_layer(frame, path)


@pytest.fixture(scope="module")
def assigned(tmp_path_factory: pytest.TempPathFactory) -> gpd.GeoDataFrame:
    """Households read from a CSV and assigned: Int64 ids, Chinese and formula text,
    rows without coordinates, points outside, and every categorical column of assign."""
    rng = np.random.default_rng(3)
    n = 40
    lon = rng.uniform(108.5, 108.7, n)
    lat = rng.uniform(40.7, 40.8, n)
    lon[[5, 17]] = np.nan
    lon[[8, 30]] = 109.5  # outside the banner
    lon[12], lat[12] = 108.6, 40.75  # on a shared corner: boundary, candidates
    names = ["王伟", '=HYPERLINK("x")', "+86 138", "-5 级", "@SUM(A1)", "巴特尔"]
    table = pd.DataFrame(
        {
            "household_id": np.arange(n) * 1000,
            "head_name": [names[i % len(names)] for i in range(n)],
            "note": [None] * 20 + ["第二批"] * (n - 20),  # empty in the first chunks
            "size": rng.integers(1, 6, n),
            "lon": lon,
            "lat": lat,
        }
    )
    csv = tmp_path_factory.mktemp("assigned") / "hh.csv"
    table.to_csv(csv, index=False)
    return assign(read_points(csv), GridSystem.from_layers(tiny_layers(), origin="tiny"))


# -- round trips ----------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("size", [1, 7, 40])
def test_chunks_equal_one_write_of_the_whole_frame(
    tmp_path: Path, assigned: gpd.GeoDataFrame, suffix: str, size: int
) -> None:
    whole = _one_shot(assigned, tmp_path / "whole" / f"out{suffix}")
    streamed = _stream(_chunks(assigned, size), tmp_path / "streamed" / f"out{suffix}")
    if suffix == ".csv":
        assert streamed.read_bytes() == whole.read_bytes()
        return
    expected, got = read_layer(whole), read_layer(streamed)
    assert set(got.columns) == set(assigned.columns)  # a Shapefile's long names are back
    pd.testing.assert_frame_equal(got, expected, check_categorical=False)
    assert got.crs == expected.crs
    if suffix == ".parquet":  # types kept, as by the one-shot write
        assert str(got["household_id"].dtype) == "Int64"
        assert str(got["size"].dtype) == "Int64"
        assert isinstance(got["assign_status"].dtype, pd.CategoricalDtype)
        assert got["assign_status"].tolist() == assigned["assign_status"].tolist()
    assert sorted(p.name for p in streamed.parent.iterdir()) == sorted(
        p.name for p in whole.parent.iterdir()
    )


def test_csv_neutralises_formulas_and_keeps_numbers(
    tmp_path: Path, assigned: gpd.GeoDataFrame
) -> None:
    out = _stream(_chunks(assigned, 4), tmp_path / "out.csv")
    back = pd.read_csv(out, encoding="utf-8-sig", dtype={"grid_code": str})
    names = back["head_name"].tolist()
    assert names[1:5] == ['\'=HYPERLINK("x")', "'+86 138", "'-5 级", "'@SUM(A1)"]
    assert back["household_id"].tolist() == list(range(0, 40_000, 1000))
    assert back["lon"].iloc[0] == pytest.approx(assigned.geometry.x.iloc[0])
    assert back["lon"].isna().tolist() == assigned["lon"].isna().tolist()
    assert out.read_bytes().startswith(b"\xef\xbb\xbfhousehold_id,")  # one BOM, one header
    assert out.read_bytes().count(b"household_id") == 1


@settings(max_examples=25, deadline=None)
@given(
    cells=st.lists(
        st.tuples(
            st.text(alphabet="=+-@\t\r\n,\"'a王 ", max_size=6),
            st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
            st.booleans(),
        ),
        min_size=1,
        max_size=30,
    ),
    size=st.integers(1, 31),
)
def test_any_chunking_of_a_csv_is_byte_identical(
    tmp_path_factory: pytest.TempPathFactory, cells: list, size: int
) -> None:
    text, value, has_point = zip(*cells, strict=True)
    geometry = [shapely.Point(108.6, 40.7) if p else None for p in has_point]
    frame = gpd.GeoDataFrame({"text": text, "value": value}, geometry=geometry, crs=CRS)
    if not any(has_point):  # write_table adds lon/lat only for a table with points
        frame["lon"] = frame["lat"] = np.nan
    folder = tmp_path_factory.mktemp("csv")
    whole = write_table(frame, folder / "whole.csv")
    streamed = _stream(_chunks(frame, size), folder / "streamed.csv")
    assert streamed.read_bytes() == whole.read_bytes()


def test_parquet_categories_may_change_between_chunks(tmp_path: Path) -> None:
    """A category column of a few values, then of 300 (wider codes), then of none."""
    first = pd.Categorical(["a", None])
    many = pd.Categorical([f"c{i}" for i in range(300)])
    empty = pd.Categorical.from_codes([-1, -1], categories=pd.Index([], dtype=object))
    frames = [
        gpd.GeoDataFrame(
            {"kind": values, "n": pd.array(range(len(values)), dtype="Int64")},
            geometry=shapely.points(np.full(len(values), 108.6), np.full(len(values), 40.7)),
            crs=CRS,
        )
        for values in (first, many, empty)
    ]
    out = _stream(frames, tmp_path / "p.parquet")
    back = read_layer(out)
    assert isinstance(back["kind"].dtype, pd.CategoricalDtype)
    expected = ["a", None, *(f"c{i}" for i in range(300)), None, None]
    assert [None if pd.isna(v) else v for v in back["kind"]] == expected
    assert str(back["n"].dtype) == "Int64"
    column = json.loads(pq.read_metadata(out).metadata[b"geo"])["columns"]["geometry"]
    assert column["geometry_types"] == ["Point"]
    assert column["bbox"] == [108.6, 40.7, 108.6, 40.7]
    assert len(pq.ParquetFile(out).metadata.to_dict()["row_groups"]) == 3


def test_parquet_geo_metadata_covers_every_chunk(tmp_path: Path) -> None:
    points = gpd.GeoDataFrame({"n": [1]}, geometry=[shapely.Point(1, 2)], crs=CRS)
    polygons = gpd.GeoDataFrame({"n": [2]}, geometry=[shapely.box(3, 4, 5, 6)], crs=CRS)
    out = _stream([points, polygons], tmp_path / "p.parquet")
    footer = json.loads(pq.read_metadata(out).metadata[b"geo"])["columns"]["geometry"]
    assert footer["geometry_types"] == ["Point", "Polygon"]  # as GDAL and geopandas read it
    assert footer["bbox"] == [1.0, 2.0, 5.0, 6.0]
    schema = json.loads(pq.read_schema(out).metadata[b"geo"])["columns"]["geometry"]
    assert schema["geometry_types"] == [] and "bbox" not in schema  # "any", as Arrow reads it
    assert footer["crs"] == schema["crs"] == points.crs.to_json_dict()
    assert (
        read_layer(out)
        .geometry.geom_equals(pd.concat([points, polygons], ignore_index=True).geometry)
        .all()
    )


def test_shapefile_uses_the_declared_short_names(
    tmp_path: Path, assigned: gpd.GeoDataFrame
) -> None:
    import pyogrio

    out = _stream(_chunks(assigned, 9), tmp_path / "out.shp", encoding="GB18030")
    fields = pyogrio.read_info(out)["fields"].tolist()
    assert {"asg_status", "asg_reason", "micro_cd", "suggest_m", "coord_err"} <= set(fields)
    assert all(len(f) <= 10 for f in fields)
    assert out.with_suffix(".cpg").read_text() == "GB18030"
    assert read_layer(out)["head_name"].iloc[0] == "王伟"


def test_geopackage_keeps_the_other_layers(tmp_path: Path, tiny: GridSystem) -> None:
    gpkg = write_layer(tiny["town"], tmp_path / "data.gpkg", "town")
    chunk = tiny["grid"]
    _stream([chunk, chunk], gpkg, layer="grid")
    assert read_layer(gpkg, "town")["code"].tolist() == tiny["town"]["code"].tolist()
    assert read_layer(gpkg, "grid")["code"].tolist() == 2 * tiny["grid"]["code"].tolist()


# -- failures leave nothing -----------------------------------------------------------------
def _old_file(folder: Path, suffix: str, tiny: GridSystem) -> Path:
    return _one_shot(tiny["town"], folder / f"out{suffix}")


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("old", [False, True])
def test_a_failing_chunk_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, tiny: GridSystem, suffix: str, old: bool
) -> None:
    if old:
        _old_file(tmp_path, suffix, tiny)
    before = _listing(tmp_path)
    grid = tiny["grid"]
    with pytest.raises(SchemaError, match=r"rows 8–11.*lacks \['workers'\]"):
        _stream([grid, grid, grid.drop(columns="workers")], tmp_path / f"out{suffix}")
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_an_error_in_the_block_writes_nothing(tmp_path: Path, tiny: GridSystem, suffix: str):
    target = tmp_path / "new" / f"out{suffix}"
    with pytest.raises(KeyboardInterrupt), open_writer(target) as writer:
        writer.write(tiny["grid"])
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []  # not even the folder it created


def test_text_a_later_chunk_cannot_encode_writes_nothing(tmp_path: Path, tiny: GridSystem):
    grid = tiny["grid"]
    later = grid.assign(leader=["王伟", "李芳", "张敏", "\u9fff"])  # not in GBK
    with pytest.raises(EncodingError, match=r"rows 4–7, row 3, column 'leader'"):
        _stream([grid, later], tmp_path / "g.shp", encoding="GBK")
    assert list(tmp_path.iterdir()) == []


def test_another_geometry_type_in_a_shapefile_is_a_geometry_error(tmp_path: Path, tiny):
    grid = tiny["grid"]
    points = grid.set_geometry(grid.representative_point())
    with pytest.raises(GeometryError, match="GeoPackage"):
        _stream([points, grid], tmp_path / "g.shp")
    assert list(tmp_path.iterdir()) == []


def test_chunks_in_another_crs_are_refused(tmp_path: Path, tiny: GridSystem) -> None:
    grid = tiny["grid"]
    with pytest.raises(CrsError, match=r"EPSG:4326.*EPSG:4490"):
        _stream([grid, grid.to_crs(4326)], tmp_path / "g.gpkg")
    with pytest.raises(CrsError, match="no coordinate reference system"):
        _stream([grid.set_crs(None, allow_override=True)], tmp_path / "g.parquet")
    assert list(tmp_path.iterdir()) == []


def test_a_column_changing_type_in_parquet_is_a_schema_error(tmp_path: Path, tiny) -> None:
    grid = tiny["grid"]
    with pytest.raises(SchemaError, match=r"rows 4–7.*changed its type"):
        _stream([grid, grid.assign(workers=["many"] * 4)], tmp_path / "g.parquet")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "needle"),
    [("out.geojson", "one document"), ("out.txt", "'.txt'"), ("out", "without suffix")],
)
def test_unstreamable_targets_are_refused(tmp_path: Path, name: str, needle: str) -> None:
    with pytest.raises(DataFileError, match=needle), open_writer(tmp_path / name):
        pass
    assert list(tmp_path.iterdir()) == []


def test_nothing_written_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no rows"), open_writer(tmp_path / "o.csv"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_encoding_applies_to_shapefiles_only(tmp_path: Path) -> None:
    with (
        pytest.raises(EncodingError, match="only to Shapefiles"),
        open_writer(tmp_path / "o.gpkg", encoding="GBK"),
    ):
        pass


# -- a full disk ----------------------------------------------------------------------------
def _points(n: int, start: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(start)
    return gpd.GeoDataFrame(
        {
            "n": np.arange(start, start + n),
            "name": ["乌拉山镇瑞泰社区"] * n,
            "value": rng.random(n),
        },
        geometry=shapely.points(108.2 + rng.random(n), 40.5 + rng.random(n)),
        crs=CRS,
    )


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("old", [False, True])
def test_full_disk_during_an_append_is_a_disk_full_error(
    small_disk: Path, tiny: GridSystem, suffix: str, old: bool
) -> None:
    target = small_disk / f"out{suffix}"
    if old:
        _old_file(small_disk, suffix, tiny)
    before = _listing(small_disk)
    chunks = (_points(5_000, start) for start in range(0, 200_000, 5_000))  # ≈ 10 MB
    with pytest.raises(DiskFullError) as caught:
        _stream(chunks, target)
    message = str(caught.value)
    assert str(target) in message and "the disk is full" in message
    assert ("previous" if old else "Nothing was written") in message
    assert _listing(small_disk) == before  # the old file intact, no temporary left
