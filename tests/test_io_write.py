"""Tests of writing (gridgeo.io.write, gridgeo.io.atomic) through real files.

Killed writers are real subprocesses, a full disk is a real 2 MB tmpfs, and
GeoPackages are inspected with sqlite3 and read back with GDAL.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import box

from gridgeo.assign import assign
from gridgeo.check import check_system
from gridgeo.errors import DataFileError, DiskFullError, GeometryError, cli_voice
from gridgeo.io import read_layer, read_points, read_system, write_html, write_layer, write_system
from gridgeo.io.atomic import STALE_AFTER, remove_stale_stages, write_bytes
from gridgeo.io.tables import write_table
from gridgeo.model import GridSystem

CRS = "EPSG:4490"


def _points(n: int, seed: int = 0, text: str = "乌拉山镇瑞泰社区") -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    return gpd.GeoDataFrame(
        {"n": np.arange(n), "name": [text] * n, "value": rng.random(n)},
        geometry=shapely.points(108.2 + rng.random(n), 40.5 + 0.7 * rng.random(n)),
        crs=CRS,
    )


def _listing(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` → its bytes (``None`` for a folder)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def _stages(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# -- stale temporaries of killed writers ------------------------------------------------------
_WRITER = """
import sys
import numpy as np, geopandas as gpd, shapely
from gridgeo.io import write_layer
n = 300_000
frame = gpd.GeoDataFrame(
    {"n": np.arange(n)}, geometry=shapely.points(108 + np.random.rand(n), 40 + np.random.rand(n)),
    crs="EPSG:4490",
)
print("ready", flush=True)
write_layer(frame, sys.argv[1])
"""


def _kill_mid_write(target: Path, sig: signal.Signals) -> None:
    """Run a writer of a big layer to ``target`` and kill it once its stage holds data."""
    process = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            staged = [
                f
                for stage in target.parent.glob(f".{target.name}.*.tmp")
                for f in stage.rglob("*")
                if f.is_file() and f.stat().st_size > 256 * 1024
            ]
            if staged:
                break
            time.sleep(0.005)
        assert process.poll() is None, "the writer finished before it could be killed"
        process.send_signal(sig)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -sig


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_next_write_removes_the_stage_of_a_killed_writer(tmp_path: Path, sig) -> None:
    target = tmp_path / "out.gpkg"
    old = _points(5)
    write_layer(old, target)
    before = target.read_bytes()
    _kill_mid_write(target, sig)
    assert len(_stages(tmp_path)) == 1  # the killed writer's stage, with its pid in the name
    assert re.fullmatch(r"\.out\.gpkg\.\d+-[0-9a-f]{8}\.tmp", _stages(tmp_path)[0])
    assert target.read_bytes() == before  # the old file is intact
    assert read_layer(target)["n"].tolist() == old["n"].tolist()

    write_layer(_points(7, seed=1), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.gpkg"]
    assert read_layer(target)["n"].tolist() == list(range(7))


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_stale_stages_of_the_same_target_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "t.gpkg"
    dead = _dead_pid()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stages = {
            "dead writer": f".t.gpkg.{dead}-0000000a.tmp",
            "live writer": f".t.gpkg.{sleeper.pid}-0000000b.tmp",
            "this process": f".t.gpkg.{os.getpid()}-0000000c.tmp",
            "other target": f".t.gpkg.x.{dead}-0000000d.tmp",
            "other target 2": f".u.gpkg.{dead}-0000000e.tmp",
            "old, no pid": ".t.gpkg.0000000f.tmp",
            "new, no pid": ".t.gpkg.00000010.tmp",
            "other host": f".t.gpkg.{dead}-00000011.tmp",
        }
        for name in stages.values():
            (tmp_path / name).mkdir()
            (tmp_path / name / "t.gpkg").write_bytes(b"partial")
        (tmp_path / stages["other host"] / ".owner").write_text(
            "another-host-than-" + socket.gethostname()
        )
        hour_ago = time.time() - 6 * STALE_AFTER
        os.utime(tmp_path / stages["old, no pid"], (hour_ago, hour_ago))
        os.utime(tmp_path / stages["other host"], (hour_ago, hour_ago))  # < a day: kept

        removed = remove_stale_stages(target)
        assert sorted(p.name for p in removed) == sorted(
            [stages["dead writer"], stages["old, no pid"]]
        )
        kept = {k: v for k, v in stages.items() if k not in ("dead writer", "old, no pid")}
        assert _stages(tmp_path) == sorted(kept.values())
        write_layer(_points(3), target)  # a write cleans the same way and leaves its own nothing
        assert _stages(tmp_path) == sorted(kept.values())
    finally:
        sleeper.kill()
        sleeper.wait()


# -- a Shapefile is replaced as one set -------------------------------------------------------
@pytest.mark.parametrize("blocked", [".shx", ".dbf", ".prj", ".cpg"])
def test_failed_shapefile_replace_keeps_the_old_set(tmp_path: Path, blocked: str) -> None:
    """A part of the target that cannot be replaced (a non-empty folder) rolls the swap back."""
    target = write_layer(_points(4), tmp_path / "town.shp")
    in_the_way = target.with_suffix(blocked)
    in_the_way.unlink()
    in_the_way.mkdir()
    (in_the_way / "keep.txt").write_text("not mine")
    before = _listing(tmp_path)

    with pytest.raises(DataFileError, match=re.escape(in_the_way.name)) as caught:
        write_layer(_points(9, seed=2, text="新名字"), target)
    assert "previous town.shp is unchanged" in str(caught.value)
    assert _listing(tmp_path) == before  # every old part byte for byte, nothing new, no stage
    if blocked in (".cpg",):  # still a readable layer: the old one
        assert read_layer(target)["name"].tolist() == ["乌拉山镇瑞泰社区"] * 4


def test_shapefile_replace_drops_stale_parts_of_the_old_set(tmp_path: Path) -> None:
    target = write_layer(_points(4), tmp_path / "town.shp")
    target.with_suffix(".qix").write_bytes(b"old spatial index")  # QGIS made one
    write_layer(_points(6, seed=3), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "town.cpg",
        "town.dbf",
        "town.prj",
        "town.shp",
        "town.shx",
    ]
    assert len(read_layer(target)) == 6


# -- a full disk --------------------------------------------------------------------------------
def _size(text: str) -> float:
    number, unit = text.split()
    return float(number) * {"bytes": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[unit]


def _write(kind: str, target: Path, small: bool, tiny: GridSystem) -> None:
    """Write a small (fits) or a big (does not fit 2 MB) file of ``kind`` to ``target``."""
    if kind == "html":
        write_html("<p>旧</p>" if small else "<p>" + "网格" * 1_200_000 + "</p>", target)
    elif kind == "csv":
        write_table(_points(5 if small else 150_000), target)
    elif kind == "system":
        from gridgeo.demo import load_demo

        if small:
            write_system(tiny, target)
        else:
            write_system(load_demo(), target)  # about 2.4 MB
    else:
        write_layer(_points(5 if small else 120_000), target)


@pytest.mark.parametrize(
    "name",
    ["out.gpkg", "out.parquet", "out.shp", "out.csv", "map.html", "banner.gpkg"],
)
def test_full_disk_is_a_named_error_and_keeps_the_old_file(
    small_disk: Path, tiny: GridSystem, name: str
) -> None:
    kind = "system" if name == "banner.gpkg" else Path(name).suffix[1:]
    target = small_disk / name
    _write(kind, target, True, tiny)
    before = _listing(small_disk)
    with pytest.raises(DiskFullError) as caught:
        _write(kind, target, False, tiny)
    message = str(caught.value)
    assert str(target) in message and str(small_disk) in message
    assert f"previous {name} is unchanged" in message
    found = re.search(
        r"needs (about|more than) ([\d.]+ (?:bytes|KB|MB|GB)) in .*?, and "
        r"([\d.]+ (?:bytes|KB|MB|GB)) is free",
        message,
    )
    assert found, message
    if found[1] == "about":  # an estimate of the whole write, which the disk cannot hold
        assert _size(found[2]) > _size(found[3])
    assert _listing(small_disk) == before  # old file intact, no temporary left


def test_full_disk_removes_the_folders_it_created(small_disk: Path) -> None:
    with pytest.raises(DiskFullError, match="Nothing was written"):
        write_layer(_points(120_000), small_disk / "new" / "deeper" / "out.gpkg")
    assert list(small_disk.iterdir()) == []


def test_write_bytes_reports_the_html_size_it_needed(small_disk: Path) -> None:
    data = b"x" * (3 * 1024 * 1024)
    with pytest.raises(DiskFullError, match=r"needs about 3\.0 MB"):
        write_bytes(data, small_disk / "page.html")
    assert list(small_disk.iterdir()) == []


# -- parents and formats ---------------------------------------------------------------------
def test_missing_parent_folders_are_created(tmp_path: Path, tiny: GridSystem) -> None:
    gpkg = write_system(tiny, tmp_path / "out" / "banner.gpkg")
    assert read_system(gpkg).counts() == tiny.counts()
    shp = write_layer(tiny["grid"], tmp_path / "a" / "b" / "grid.shp")
    assert read_layer(shp)["code"].tolist() == tiny["grid"]["code"].tolist()
    html = write_html("<p>图</p>", tmp_path / "maps" / "m.html")
    assert html.read_text(encoding="utf-8") == "<p>图</p>"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataFileError, match="is a file"):
        write_layer(tiny["grid"], tmp_path / "file" / "grid.gpkg")


@pytest.mark.parametrize(
    ("name", "written"),
    [("banner.parquet", ".parquet"), ("banner.gpkg", None), ("banner", ".shp")],
)
def test_system_format_comes_from_the_suffix(
    tmp_path: Path, tiny: GridSystem, name: str, written: str | None
) -> None:
    path = write_system(tiny, tmp_path / "out" / name)
    if written is None:
        assert path.is_file()
    else:
        parts = {".shp", ".shx", ".dbf", ".prj", ".cpg"} if written == ".shp" else {written}
        assert {p.suffix for p in path.iterdir()} == parts
        assert {p.stem for p in path.glob(f"*{written}")} == set(tiny.levels)
    assert read_system(path).counts() == tiny.counts()


def test_ambiguous_system_targets_are_refused(tmp_path: Path, tiny: GridSystem) -> None:
    with pytest.raises(DataFileError, match=re.escape("format='parquet'")):
        write_system(tiny, tmp_path / "out" / "parquet")
    with cli_voice(), pytest.raises(DataFileError, match=re.escape("--format 'parquet'")):
        write_system(tiny, tmp_path / "out" / "parquet")
    with pytest.raises(DataFileError, match="several layers"):
        write_system(tiny, tmp_path / "out" / "banner.shp")
    with pytest.raises(DataFileError, match=r"'\.v2'"):
        write_system(tiny, tmp_path / "out" / "banner.v2")
    with pytest.raises(DataFileError, match="suffix says gpkg"):
        write_system(tiny, tmp_path / "banner.gpkg", format="parquet")
    assert not (tmp_path / "out").exists()  # nothing written, no folder created
    folder = write_system(tiny, tmp_path / "layers", format="parquet")
    with pytest.raises(DataFileError, match="holds GeoParquet files"):
        write_system(tiny, folder)  # would silently turn GeoParquet into Shapefiles
    assert {p.suffix for p in folder.iterdir()} == {".parquet"}
    write_system(tiny, tmp_path / "parquet", format="parquet")  # explicit is fine
    assert {p.suffix for p in (tmp_path / "parquet").iterdir()} == {".parquet"}


# -- mixed geometry into a Shapefile ---------------------------------------------------------
def test_mixed_geometry_shapefile_is_refused_with_a_hint(tmp_path: Path, demo_system) -> None:
    defects = check_system(demo_system).defects
    kinds = defects.geom_type.value_counts()
    assert len(kinds) > 1  # polygons, lines and points: the case of `check -o defects.shp`
    with pytest.raises(GeometryError, match=r"\.gpkg") as caught:
        write_layer(defects, tmp_path / "defects.shp")
    message = str(caught.value)
    polygons = int(kinds.get("Polygon", 0) + kinds.get("MultiPolygon", 0))
    points = int(kinds.get("Point", 0) + kinds.get("MultiPoint", 0))
    assert f"{polygons} polygon" in message and f"{points} point" in message
    assert list(tmp_path.iterdir()) == []
    gpkg = write_layer(defects, tmp_path / "defects.gpkg")
    assert read_layer(gpkg).geom_type.value_counts().to_dict() == kinds.to_dict()


def test_polygons_and_multipolygons_share_a_shapefile(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"code": ["a", "b", "c"]},
        geometry=[
            box(0, 0, 1, 1),
            shapely.MultiPolygon([box(2, 0, 3, 1), box(4, 0, 5, 1)]),
            None,
        ],
        crs=CRS,
    )
    back = read_layer(write_layer(frame, tmp_path / "p.shp"))
    assert np.nan_to_num(shapely.area(back.geometry.to_numpy())).tolist() == [1.0, 2.0, 0.0]


# -- assign results as a Shapefile -------------------------------------------------------------
def test_assign_output_round_trips_through_a_shapefile(tmp_path: Path, tiny: GridSystem) -> None:
    table = tmp_path / "hh.csv"
    table.write_text(
        "户主,lon,lat\n王伟,108.52,40.79\n李芳,108.65,40.72\n张敏,108.6,40.76\n"
        "巴特尔,abc,40.7\n赵敏,109.9,41.5\n",
        encoding="utf-8",
    )
    result = assign(read_points(table), tiny)
    long = [c for c in result.columns if len(c.encode()) > 10]
    assert {"assign_status", "assign_reason", "suggested_m", "coord_error"} <= set(long)
    back = read_layer(write_layer(result, tmp_path / "out.shp"))
    attrs = [c for c in result.columns if c != "geometry"]
    assert [c for c in back.columns if c != "geometry"] == attrs  # the long names are back
    expected = result[attrs].astype(object).where(result[attrs].notna(), None)
    got = back[attrs].astype(object).where(back[attrs].notna(), None)
    for column in attrs:
        for want, have in zip(expected[column], got[column], strict=True):
            if isinstance(want, float):
                assert have == pytest.approx(want), column
            else:
                assert (have or None) == (want or None), column  # DBF stores "" as NULL
    assert back["assign_status"].tolist() == result["assign_status"].astype(str).tolist()


# -- GeoPackage version: what GDAL 3.6 / QGIS 3.28 validate -----------------------------------
_GPKG_12_TRIGGERS = ["delete", "insert", "update1", "update2", "update3", "update4"]


def _rtree_triggers(gpkg: Path) -> dict[str, list[str]]:
    with sqlite3.connect(gpkg) as db:
        names = [
            r[0]
            for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            if r[0].startswith("rtree_")
        ]
        tables = [r[0] for r in db.execute("SELECT table_name FROM gpkg_contents")]
    return {
        table: sorted(
            n.removeprefix(f"rtree_{table}_geom_")
            for n in names
            if n.startswith(f"rtree_{table}_geom_")
        )
        for table in tables
    }


def test_geopackages_are_version_1_2_with_its_rtree_triggers(
    tmp_path: Path, tiny: GridSystem
) -> None:
    gpkg = write_system(tiny, tmp_path / "banner.gpkg")
    write_layer(tiny["town"], gpkg, "party_grid")  # a layer added to an existing file
    layer = write_layer(_points(3), tmp_path / "one.gpkg")
    for path, tables in ((gpkg, [*tiny.levels, "party_grid"]), (layer, ["one"])):
        triggers = _rtree_triggers(path)
        assert sorted(triggers) == sorted(tables)
        assert all(found == _GPKG_12_TRIGGERS for found in triggers.values()), triggers
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # "GPKG"
            assert db.execute("PRAGMA user_version").fetchone()[0] == 10200
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            extensions = db.execute("SELECT definition FROM gpkg_extensions").fetchall()
        assert {d for (d,) in extensions} <= {"http://www.geopackage.org/spec120/#extension_rtree"}
    assert read_system(gpkg).counts() == tiny.counts()
    assert pyogrio.read_info(gpkg, layer="party_grid")["features"] == len(tiny["town"])
    # the R-tree still answers spatial queries through GDAL
    grid = tiny["grid"]
    inside = pyogrio.read_dataframe(
        gpkg, layer="grid", bbox=tuple(grid.geometry[0].buffer(-1e-4).bounds)
    )
    assert inside["code"].tolist() == [grid["code"][0]]


# -- dates inside files: byte-identical regeneration ---------------------------------------------
def _dbf_date(dbf: Path) -> tuple[int, int, int]:
    head = dbf.read_bytes()[1:4]
    return (1900 + head[0], head[1], head[2])


def test_date_fixes_dbf_headers_and_geopackage_last_change(
    tmp_path: Path, tiny: GridSystem
) -> None:
    day = dt.date(2020, 1, 2)
    folder = write_system(tiny, tmp_path / "a" / "banner", date=day)
    assert {_dbf_date(f) for f in folder.glob("*.dbf")} == {(2020, 1, 2)}
    shp = write_layer(tiny["grid"], tmp_path / "grid.shp", date=day)
    assert _dbf_date(shp.with_suffix(".dbf")) == (2020, 1, 2)
    gpkg = write_system(tiny, tmp_path / "a.gpkg", date=day)
    with sqlite3.connect(gpkg) as db:
        changes = {r[0] for r in db.execute("SELECT last_change FROM gpkg_contents")}
    assert changes == {"2020-01-02T00:00:00.000Z"}


def test_source_date_epoch_makes_writes_byte_identical(
    tmp_path: Path, tiny: GridSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1262304000")  # 2010-01-01T00:00:00Z
    folder = write_system(tiny, tmp_path / "1" / "banner")
    write_system(tiny, tmp_path / "1" / "banner.gpkg")
    time.sleep(1.1)  # GDAL's own timestamps would differ now
    write_system(tiny, tmp_path / "2" / "banner")
    write_system(tiny, tmp_path / "2" / "banner.gpkg")
    assert {_dbf_date(f) for f in folder.glob("*.dbf")} == {(2010, 1, 1)}
    assert _listing(tmp_path / "1") == {k: v for k, v in _listing(tmp_path / "2").items()}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(DataFileError, match="SOURCE_DATE_EPOCH"):
        write_system(tiny, tmp_path / "3" / "banner")


# -- numeric columns keep their types --------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(
    values=st.lists(
        st.tuples(
            st.floats(-180, 180, allow_nan=False),
            st.integers(-(2**53), 2**53),
            st.one_of(st.none(), st.integers(0, 10**6)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_numeric_columns_keep_their_types(
    tmp_path_factory: pytest.TempPathFactory, values: list[tuple[float, int, int | None]]
) -> None:
    lon, ids, sizes = zip(*values, strict=True)
    frame = gpd.GeoDataFrame(
        {"lon": list(lon), "id": list(ids), "size": pd.array(list(sizes), dtype="Int64")},
        geometry=shapely.points(np.zeros(len(values)), np.zeros(len(values))),
        crs=CRS,
    )
    folder = tmp_path_factory.mktemp("numeric")
    gpkg = write_layer(frame, folder / "p.gpkg")
    with sqlite3.connect(gpkg) as db:
        types = {r[1]: r[2] for r in db.execute("PRAGMA table_info(p)")}
        stored = db.execute("SELECT lon, id, size FROM p ORDER BY fid").fetchall()
    assert (types["lon"], types["id"], types["size"]) == ("REAL", "INTEGER", "INTEGER")
    assert stored == [(float(a), int(b), c) for a, b, c in values]
    parquet = write_layer(frame, folder / "p.parquet")
    schema = pq.read_schema(parquet)
    assert (str(schema.field("lon").type), str(schema.field("id").type)) == ("double", "int64")
    assert str(schema.field("size").type) == "int64"
    back = read_layer(parquet)
    assert back["id"].tolist() == list(ids) and back["lon"].tolist() == list(lon)
