"""Plan stores (gridgeo.plan.store) on a GeoPackage file and on a real PostGIS server.

Every behaviour runs on both backends: the ``where`` fixture gives a fresh
GeoPackage path or a fresh schema of the session's PostgreSQL server
(tests/conftest_postgis.py). Interrupted and concurrent saves run in real
subprocesses, paused half-way through their transaction by the store's test
seam ``GRIDGEO_STORE_PAUSE``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from geopandas.testing import assert_geodataframe_equal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal
from shapely import MultiPolygon, box, union_all

from gridgeo.config import BANNER, Role
from gridgeo.errors import ConflictError, SchemaError, StoreError
from gridgeo.plan.record import PlanRecord
from gridgeo.plan.store import PlanStore

ROOT = Path(__file__).parent.parent  # the checkout, for the subprocesses' imports
TOWNS = ("150823100", "150823101")
GRIDS = ("150823100001", "150823100002", "150823101001", "150823101002")
MICROS = ("150823100001001", "150823100001002")


# -- a small plan, by hand -------------------------------------------------------------------------
def sample_record() -> PlanRecord:
    """A 4x4 lattice of units (0.01°) near 108.5E 40.7N: two towns of two grids each.

    The west town's grids are the north and south halves of its two columns;
    its northern grid is refined into two micro-grids (west, east). Columns
    cover every dtype a county may have.
    """
    row, col = np.divmod(np.arange(16), 4)  # row 0 is the northernmost
    x, y = 108.5 + 0.01 * col, 40.74 - 0.01 * (row + 1)
    squares = [box(a, b, a + 0.01, b + 0.01) for a, b in zip(x, y, strict=True)]
    squares[5] = MultiPolygon([squares[5]])  # a layer may mix polygons and multipolygons
    town = np.where(col < 2, 0, 1)
    grid = 2 * town + (row >= 2)
    units = gpd.GeoDataFrame(
        {
            "unit_id": [f"u{r}{c}" for r, c in zip(row, col, strict=True)],
            "district": [TOWNS[t] for t in town],
            "households": np.arange(16, dtype="int64") * 10 + 5,
            "residents": (np.arange(16) * 25 + 12).astype("int32"),
            "village": ["瑞泰社区", None] * 8,
            "kind": ["小区"] * 8 + ["自然村"] * 8,
        },
        geometry=squares,
        crs="EPSG:4490",
    )
    refined = (grid == 0) & (row == 0)
    assignment = pd.DataFrame(
        {
            "unit_id": units["unit_id"],
            "workload": [GRIDS[g] for g in grid],
            "refinement": np.where(refined, np.where(col == 0, MICROS[0], MICROS[1]), ""),
        }
    )
    grids = pd.DataFrame(
        {
            "code": list(GRIDS),
            "parent_code": [TOWNS[0], TOWNS[0], TOWNS[1], TOWNS[1]],
            "name": ["瑞泰社区第1网格", "瑞泰社区第2网格", "复胜村一组网格", "复胜村二组网格"],
            "locked": [False, True, False, False],
            "leader": ["王伟", None, "张敏", "巴特尔"],
            "workers": np.array([5, 4, 3, 2], dtype="int64"),
            "area_km2": [1.25, np.nan, 0.1 + 0.2, 3.0],
            "dedicated": [False, False, False, True],
            "surveyed": pd.to_datetime(["2024-03-01", "2024-03-02", None, "2025-01-31"]),
            "note": pd.Series([1, "二", None, 4.5], dtype=object),
        }
    )
    micros = pd.DataFrame(
        {"code": list(MICROS), "parent_code": [GRIDS[0]] * 2, "name": ["第1微网格", "第2微网格"]}
    )
    levels = BANNER.level_names
    frame = {
        levels[0]: gpd.GeoDataFrame(
            {"code": ["150823"], "name": ["乌拉特前旗"], "parent_code": [""]},
            geometry=[union_all(squares)],
            crs="EPSG:4490",
        ),
        BANNER.role_name(Role.DISTRICT): gpd.GeoDataFrame(
            {"code": list(TOWNS), "name": ["乌拉山镇", "白彦花镇"], "parent_code": ["150823"] * 2},
            geometry=[
                union_all([s for s, t in zip(squares, town, strict=True) if t == i])
                for i in range(2)
            ],
            crs="EPSG:4490",
        ),
    }
    history = [{"op": "move", "units": ["u00"], "to": GRIDS[1], "households": 5, "by": "规划员"}]
    return PlanRecord(
        BANNER.to_toml(), frame, units, assignment, grids, micros, history, ["150823100009"]
    )


def edited(record: PlanRecord, leader: str = "李芳") -> PlanRecord:
    """The record with unit u00 moved to the second grid and the second grid's leader set."""
    assignment = record.assignment.copy()
    assignment.loc[0, ["workload", "refinement"]] = [GRIDS[1], ""]
    grids = record.grids.copy()
    grids.loc[1, "leader"] = leader
    history = [*record.history, {"op": "set", "grid": GRIDS[1], "leader": leader}]
    return replace(record, assignment=assignment, grids=grids, history=history)


def new_units(record: PlanRecord) -> PlanRecord:
    """The record on a different unit layer (one unit's households recounted)."""
    units = record.units.copy()
    units.loc[3, "households"] += 1
    return replace(record, units=units)


def assert_same_record(loaded: PlanRecord, saved: PlanRecord) -> None:
    assert loaded.config_toml == saved.config_toml
    assert list(loaded.frame) == list(saved.frame)
    for level, layer in saved.frame.items():
        assert_geodataframe_equal(loaded.frame[level], layer, check_dtype=True, check_crs=True)
    assert_geodataframe_equal(loaded.units, saved.units, check_dtype=True, check_crs=True)
    for table in ("assignment", "grids", "micros"):
        assert_frame_equal(getattr(loaded, table), getattr(saved, table), check_dtype=True)
    assert loaded.history == saved.history
    assert loaded.retired == saved.retired


# -- where the store lives -------------------------------------------------------------------------
@dataclass
class Where:
    """A store location: a GeoPackage path, or a PostgreSQL address and a schema of its own."""

    target: str
    schema: str = "gridgeo"

    def open(self, **options) -> PlanStore:
        return PlanStore(self.target, schema=self.schema, **options)

    @property
    def postgis(self) -> bool:
        return self.target.startswith("postgresql://")


@pytest.fixture(params=["gpkg", "postgis"])
def where(request, tmp_path) -> Where:
    if request.param == "gpkg":
        return Where(str(tmp_path / "plans.gpkg"))
    return Where(request.getfixturevalue("postgis_dsn"), f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def record() -> PlanRecord:
    return sample_record()


def spatial_layers(where: Where) -> dict[str, tuple[str, int]]:
    """Layer → (geometry type, SRID) of the store's spatial layers, read around the store."""
    if where.postgis:
        import psycopg

        with psycopg.connect(where.target) as connection:
            rows = connection.execute(
                "SELECT f_table_name, type, srid FROM geometry_columns WHERE f_table_schema = %s",
                [where.schema],
            ).fetchall()
        return {name: (kind, srid) for name, kind, srid in rows}
    with closing(sqlite3.connect(where.target)) as connection:
        rows = connection.execute(
            "SELECT table_name, geometry_type_name, srs_id FROM gpkg_geometry_columns"
        ).fetchall()
    return {name: (kind, srid) for name, kind, srid in rows}


# -- round trips -----------------------------------------------------------------------------------
def test_a_version_loads_back_equal_in_every_table_and_dtype(where, record):
    with where.open() as store:
        assert store.versions == [] and store.head is None
        assert store.save(record, "first draft", "planner A") == "v1"
        loaded = store.load_record("v1")
    assert_same_record(loaded, record)
    assert loaded.grids["surveyed"].dtype == record.grids["surveyed"].dtype
    assert loaded.grids["note"].tolist()[:2] == [1, "二"]  # mixed objects keep their types
    assert loaded.units["residents"].dtype == np.int32
    assert loaded.units.geometry.geom_type.tolist()[4:7] == ["Polygon", "MultiPolygon", "Polygon"]
    assert loaded.units_fingerprint == record.units_fingerprint
    with where.open(create=False) as again:  # reopened: the same
        assert_same_record(again.load_record(), record)


def test_the_store_accepts_anything_with_to_record(where, record):
    class Plan:
        def to_record(self):
            return record

    with where.open() as store:
        assert store.save(Plan(), "from a plan", "planner A") == "v1"
        assert_same_record(store.load_record("v1"), record)
        with pytest.raises(TypeError, match="Plan or a PlanRecord"):
            store.save("not a plan", "x", "y", parent="v1")


def test_a_plan_saves_and_loads_as_a_plan(where, tiny):
    from gridgeo.plan.model import Plan

    plan = Plan.from_system(tiny)
    with where.open() as store:
        version = store.save(plan, "from the tiny system", "planner A")
        loaded = store.load(version)
    assert isinstance(loaded, Plan)
    assert_same_record(loaded.to_record(), plan.to_record())


def in_crs(record: PlanRecord, crs: str) -> PlanRecord:
    frame = {level: layer.to_crs(crs) for level, layer in record.frame.items()}
    return replace(record, frame=frame, units=record.units.to_crs(crs))


def test_layers_in_crss_without_an_authority_code_keep_them(where, record):
    # two custom CRSs, which GDAL numbers alike (100000) in the files it writes
    tmerc = "+proj=tmerc +lat_0=0 +lon_0={} +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m"
    east, west = in_crs(record, tmerc.format(109)), in_crs(record, tmerc.format(108))
    with where.open() as store:
        store.save(east, "east", "planner A")
        store.save(west, "west", "planner A", parent="v1")
        store.save(record, "geographic", "planner A", parent="v2")
        for version, saved in (("v1", east), ("v2", west), ("v3", record)):
            assert_same_record(store.load_record(version), saved)
    srids = {srid for _, srid in spatial_layers(where).values()}
    if where.postgis:  # SRID 0 and the CRS kept beside the layer
        assert srids == {0, 4490}
    else:  # each CRS under its own id in gpkg_spatial_ref_sys, and in GDAL's eyes
        assert len(srids) == 3
        meridians = set()
        with closing(sqlite3.connect(where.target)) as connection:
            for name in spatial_layers(where):
                types = connection.execute(f'SELECT DISTINCT typeof(geom) FROM "{name}"')
                assert types.fetchall() == [("blob",)]
                crs = pyogrio.read_info(where.target, layer=name)["crs"]
                meridians.add(re.search(r"central_meridian\",(\d+)|EPSG:4490", crs).group(1))
        assert meridians == {"108", "109", None}


def test_versions_are_immutable_and_a_unit_layer_is_stored_once(where, record):
    with where.open() as store:
        v1 = store.save(record, "first draft", "planner A")
        v2 = store.save(edited(record), "move u00", "planner B", parent=v1)
        assert (v1, v2) == ("v1", "v2") and store.head == "v2"
        assert_same_record(store.load_record(v1), record)  # untouched by v2
        assert_same_record(store.load_record(v2), edited(record))
        layers = spatial_layers(where)
        assert sum(name.startswith("units_") for name in layers) == 1
        assert sum(name.startswith("frame_") for name in layers) == 2
        v3 = store.save(new_units(record), "recount u03", "planner A", parent=v2)
        assert sum(name.startswith("units_") for name in spatial_layers(where)) == 2
        assert_same_record(store.load_record(v3), new_units(record))
        assert_same_record(store.load_record(v1), record)
        assert not hasattr(store, "delete") and not hasattr(store, "update")


def test_log_tags_and_diff(where, record):
    with where.open() as store:
        store.save(record, "first draft", "planner A")
        store.save(edited(record), "move u00", "planner B", parent="v1")
        store.tag("v1", "approved 2027")
        store.tag("v1", "approved 2027")  # again: nothing new
        store.tag("v2", "proposal")
        log = store.log()
        with pytest.raises(StoreError, match="already names v1"):
            store.tag("v2", "approved 2027")
        with pytest.raises(StoreError, match="not itself a version id"):
            store.tag("v2", "v1")
        assert store.load_record("approved 2027").assignment.equals(record.assignment)
        diff = store.diff("approved 2027", "v2")
    assert log.columns.tolist() == [
        "version", "parent", "author", "message", "created", "tags", "units", "grids",
    ]  # fmt: skip
    assert log["version"].tolist() == ["v1", "v2"]
    assert log["parent"].tolist() == [None, "v1"]
    assert log["author"].tolist() == ["planner A", "planner B"]
    assert log["tags"].tolist() == [["approved 2027"], ["proposal"]]
    assert log["units"].tolist() == [16, 16] and log["grids"].tolist() == [4, 4]
    created = pd.to_datetime(log["created"], format="ISO8601")
    assert (created.dt.tz is not None) and (
        abs(pd.Timestamp.now(tz="UTC") - created) < pd.Timedelta("5min")
    ).all()
    assert diff.to_dict("records") == [
        {"table": "assignment", "id": "u00", "change": "changed", "column": "workload",
         "before": GRIDS[0], "after": GRIDS[1]},
        {"table": "assignment", "id": "u00", "change": "changed", "column": "refinement",
         "before": MICROS[0], "after": ""},
        {"table": "grids", "id": GRIDS[1], "change": "changed", "column": "leader",
         "before": None, "after": "李芳"},
    ]  # fmt: skip


def test_diff_shows_added_and_removed_grids(where, record):
    merged = edited(record)
    merged.assignment.loc[merged.assignment["workload"] == GRIDS[3], "workload"] = GRIDS[2]
    merged.grids = merged.grids[merged.grids["code"] != GRIDS[3]].reset_index(drop=True)
    split = merged.grids.iloc[[0]].assign(code="150823100003", name="新网格")
    merged.grids = pd.concat([merged.grids, split], ignore_index=True)
    with where.open() as store:
        store.save(record, "first draft", "planner A")
        store.save(merged, "merge", "planner A", parent="v1")
        diff = store.diff("v1", "v2")
        assert store.diff("v2", "v2").empty
    rows = diff[diff["table"] == "grids"][["id", "change", "column"]]
    assert rows.values.tolist() == [
        [GRIDS[1], "changed", "leader"],
        ["150823100003", "added", ""],
        [GRIDS[3], "removed", ""],
    ]
    moved = diff[(diff["table"] == "assignment") & (diff["column"] == "workload")]
    assert sorted(moved["id"]) == ["u00", "u22", "u23", "u32", "u33"]


TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=8)
COLUMN = st.sampled_from(["int64", "float64", "bool", "str", "object", "Int64", "datetime64[us]"])


@st.composite
def attributes(draw) -> pd.DataFrame:
    """Four grids' attribute columns of any kind, with missing values where the kind allows."""
    table = {}
    for name in draw(st.lists(TEXT.filter(lambda t: t not in GRIDS_CORE), max_size=4, unique=True)):
        kind = draw(COLUMN)
        if kind == "int64":
            values = draw(st.lists(st.integers(-(2**53), 2**53), min_size=4, max_size=4))
        elif kind in ("float64", "object", "Int64"):
            number = st.floats() if kind == "float64" else st.integers(-(2**31), 2**31)
            mixed = st.one_of(number, TEXT, st.booleans()) if kind == "object" else number
            values = draw(st.lists(st.none() | mixed, min_size=4, max_size=4))
        elif kind == "bool":
            values = draw(st.lists(st.booleans(), min_size=4, max_size=4))
        elif kind == "str":
            values = draw(st.lists(st.none() | TEXT, min_size=4, max_size=4))
        else:
            values = draw(st.lists(st.none() | st.datetimes(), min_size=4, max_size=4))
        table[name] = pd.Series(values, dtype=kind)
    return pd.DataFrame(table, index=pd.RangeIndex(4))


GRIDS_CORE = ("code", "parent_code", "name", "locked")


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(extra=attributes(), name=st.lists(st.none() | TEXT, min_size=4, max_size=4))
def test_any_attribute_columns_come_back_with_their_dtypes(where, record, extra, name):
    grids = record.grids[["code", "parent_code", "locked"]].assign(name=name).join(extra)
    with where.open() as store:
        version = store.save(
            replace(record, grids=grids), "attributes", "planner A", parent=store.head
        )
        assert_frame_equal(store.load_record(version).grids, grids, check_dtype=True)


# -- conflicts -------------------------------------------------------------------------------------
def test_the_second_save_on_a_parent_gets_a_conflict_and_nothing_is_lost(where, record):
    with where.open() as first, where.open() as second:
        first.save(record, "first draft", "planner A")
        mine = edited(record, leader="苏和")
        assert first.save(edited(record), "split 017 and new leader", "王规划", parent="v1") == "v2"
        with pytest.raises(ConflictError) as caught:
            second.save(mine, "my edit", "planner C", parent="v1")
        message = str(caught.value)
        assert re.search(
            r"cannot save on v1 in .*: 1 version was saved on it since — v2 by '王规划' at "
            r"\S+: 'split 017 and new leader'\. Relative to v1 it changes 1 unit and 1 grid\. "
            r"Nothing was written\. Load the head \(store\.load\('v2'\)\), .* "
            r"save with parent='v2'\.$",
            message,
        ), message
        assert caught.value.head == "v2" and caught.value.since == ["v2"]
        assert second.versions == ["v1", "v2"]
        assert_same_record(second.load_record("v2"), edited(record))
        # the way out the message gives: save on the head
        assert second.save(mine, "my edit", "planner C", parent="v2") == "v3"
        with pytest.raises(ConflictError, match=r"cannot save a first version .* 3 versions were"):
            first.save(record, "again", "planner A")  # parent=None on a store that has versions
        assert first.versions == ["v1", "v2", "v3"]


SAVER = """
import sys
sys.path.insert(0, {tests!r})
from test_plan_store import edited, new_units, sample_record
from gridgeo.plan.store import PlanStore

target, schema, parent = sys.argv[1:4]
with PlanStore(target, schema=schema) as store:
    print(store.save(new_units(edited(sample_record())), "paused save", "saver", parent=parent))
"""


def start_saver(where: Where, parent: str, pause: float) -> subprocess.Popen:
    """A subprocess saving on ``parent``, returned once it paused inside its transaction."""
    script = SAVER.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "GRIDGEO_STORE_PAUSE": str(pause)}
    saver = subprocess.Popen(
        [sys.executable, "-c", script, where.target, where.schema, parent],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, cwd=ROOT,
    )  # fmt: skip
    watchdog = threading.Timer(60, saver.kill)
    watchdog.start()
    lines = []
    while not lines or "paused mid-save" not in lines[-1]:
        line = saver.stderr.readline()
        if not line:
            watchdog.cancel()
            pytest.fail("the saver ended before pausing:\n" + "".join(lines))
        lines.append(line)
    watchdog.cancel()
    return saver


def test_a_save_killed_half_way_leaves_the_previous_version(where, record):
    with where.open() as store:
        store.save(record, "first draft", "planner A")
    layers = spatial_layers(where)
    saver = start_saver(where, "v1", pause=60)
    os.kill(saver.pid, signal.SIGKILL)
    assert saver.wait(timeout=30) == -signal.SIGKILL
    with where.open(create=False) as store:
        assert store.versions == ["v1"] and store.log()["message"].tolist() == ["first draft"]
        assert_same_record(store.load_record(), record)
        assert spatial_layers(where) == layers  # the killed save's new unit layer is gone too
        # the store is not stuck: the next save takes v2 and adds the layer
        assert store.save(new_units(record), "again", "planner A", parent="v1") == "v2"
        assert_same_record(store.load_record("v2"), new_units(record))
    if not where.postgis:  # the killed writer's stage beside the file was cleaned up
        assert sorted(p.name for p in Path(where.target).parent.iterdir()) == ["plans.gpkg"]


def test_two_savers_racing_on_one_parent_one_wins(where, record):
    with where.open() as store:
        store.save(record, "first draft", "planner A")
        saver = start_saver(where, "v1", pause=1.5)  # holds the store's lock, mid-save
        began = time.monotonic()
        with pytest.raises(ConflictError, match=r"v2 by 'saver'.*'paused save'"):
            store.save(edited(record, leader="苏和"), "my edit", "planner C", parent="v1")
        waited = time.monotonic() - began
        out, err = saver.communicate(timeout=60)
        assert saver.returncode == 0, err
        assert out.strip() == "v2"
        assert waited > 0.5  # it waited for the other save to finish, then saw its version
        assert store.versions == ["v1", "v2"]
        assert_same_record(store.load_record("v2"), new_units(edited(record)))


# -- bad input -------------------------------------------------------------------------------------
def test_unknown_versions_are_named_with_the_known_ones(where, record):
    with where.open() as store:
        with pytest.raises(StoreError, match="holds no version yet"):
            store.load_record()
        for i in range(10):
            store.save(record, f"draft {i}", "planner A", parent=store.head)
        for call in (
            lambda: store.load_record("v11"),
            lambda: store.diff("v1", "v11"),
            lambda: store.tag("v11", "approved"),
            lambda: store.save(record, "x", "planner A", parent="v11"),
        ):
            with pytest.raises(
                StoreError, match=r"no version 'v11' .*v1, v2, .*v8 … and 2 more.*store\.log\(\)"
            ):
                call()
        assert store.versions == [f"v{i}" for i in range(1, 11)]
        with pytest.raises(StoreError, match="needs an author"):
            store.save(record, "x", " ", parent="v10")


def test_a_record_the_store_cannot_keep_writes_nothing(where, record):
    bad = edited(record)
    bad.history = [*bad.history, {"op": "odd", "value": object()}]
    reserved = new_units(record)
    reserved.units = reserved.units.rename(columns={"kind": "fid"})
    with where.open() as store:
        store.save(record, "first draft", "planner A")
        with pytest.raises(SchemaError, match="history cannot be stored as JSON"):
            store.save(bad, "bad", "planner A", parent="v1")
        with pytest.raises(SchemaError, match="column named 'fid'"):
            store.save(reserved, "bad", "planner A", parent="v1")
        assert store.versions == ["v1"]
    assert len(spatial_layers(where)) == 3


def test_a_store_of_a_newer_layout_is_refused(where, record):
    with where.open() as store:
        store.save(record, "first draft", "planner A")
    update = "UPDATE {} SET value = '99' WHERE key = 'format_version'"
    if where.postgis:
        import psycopg

        with psycopg.connect(where.target) as connection:
            connection.execute(update.format(f"{where.schema}.meta"))
    else:
        with closing(sqlite3.connect(where.target)) as connection:
            connection.execute(update.format("gridgeo_meta"))
            connection.commit()
    with pytest.raises(StoreError, match="layout 99, made by a newer gridgeo"):
        where.open()


@pytest.mark.parametrize("content", ["text", "geopackage", "sqlite", "empty"])
def test_a_file_that_is_not_a_store_is_refused_and_left_unchanged(tmp_path, record, content):
    path = tmp_path / "plans.gpkg"
    if content == "text":
        path.write_text("unit_id,grid\nu1,150823100001\n", encoding="utf-8")
    elif content == "geopackage":
        pyogrio.write_dataframe(record.units, path, layer="units")
    elif content == "sqlite":
        with closing(sqlite3.connect(path)) as connection:
            connection.execute("CREATE TABLE t (x)")
    else:
        path.write_bytes(b"")
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    kinds = {"text": "not a GeoPackage nor any SQLite", "geopackage": "a GeoPackage without",
             "sqlite": "an SQLite database without", "empty": "an empty file"}  # fmt: skip
    with pytest.raises(StoreError, match=f"{path} is not a gridgeo plan store \\({kinds[content]}"):
        PlanStore(path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plans.gpkg"]


def test_missing_stores_and_bad_names(tmp_path):
    with pytest.raises(StoreError, match=r"no plan store at .*create=True"):
        PlanStore(tmp_path / "none.gpkg", create=False)
    with pytest.raises(StoreError, match=r"ending in \.gpkg"):
        PlanStore(tmp_path / "plans.sqlite")
    with pytest.raises(StoreError, match="is a folder"):
        PlanStore(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_schema_that_is_not_a_store_is_refused_and_left_unchanged(postgis_dsn):
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgis_dsn, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.parcels (id int)")
    with pytest.raises(StoreError, match=f"schema '{schema}' .* not a gridgeo plan store"):
        PlanStore(postgis_dsn, schema=schema)
    with pytest.raises(StoreError, match="no plan store in schema 'nowhere'"):
        PlanStore(postgis_dsn, schema="nowhere", create=False)
    with pytest.raises(StoreError, match="not a usable schema name"):
        PlanStore(postgis_dsn, schema="Robert'); DROP TABLE x;--")
    with psycopg.connect(postgis_dsn) as connection:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN (%s, 'nowhere')",
            [schema],
        ).fetchall()
    assert tables == [(schema, "parcels")]


def test_a_database_that_cannot_be_reached_is_named_without_its_password(postgis_dsn):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(StoreError) as caught:
        PlanStore(f"postgresql://planner:s3cret-Pw@localhost:{closed}/plans")
    message = str(caught.value)
    assert f"database 'plans' on localhost:{closed} as user 'planner'" in message, message
    assert "s3cret-Pw" not in message and "s3cret" not in repr(caught.value.__cause__)
    port = postgis_dsn.rsplit(":", 1)[1].split("/")[0]
    with pytest.raises(
        StoreError, match=f"database 'no_such_db' on localhost:{port}.*does not exist"
    ) as caught:
        PlanStore(f"postgresql://postgres:s3cret-Pw@localhost:{port}/no_such_db")
    assert "s3cret-Pw" not in str(caught.value)
    with pytest.raises(StoreError, match="cannot read the database address") as caught:
        PlanStore("postgresql://planner:s3cret-Pw@[::1/plans")
    assert "s3cret-Pw" not in str(caught.value) and "planner:***@[::1/plans" in str(caught.value)


# -- what other tools see --------------------------------------------------------------------------
def test_the_geopackage_opens_as_layers_and_tables_in_any_gis(tmp_path, record):
    path = tmp_path / "plans.gpkg"
    with PlanStore(path) as store:
        store.save(record, "first draft", "planner A")
    layers = dict(map(tuple, pyogrio.list_layers(path)))
    units = next(name for name in layers if name.startswith("units_"))
    assert layers[units] == "Unknown"  # polygons and a multipolygon: generic geometry
    frames = sorted(name for name in layers if name.startswith("frame_"))
    kinds = [record.frame[level].geom_type.unique().item() for level in record.frame]
    assert [layers[name] for name in frames] == kinds
    assert frames[1].endswith("_1_" + BANNER.role_name(Role.DISTRICT))
    for table in ("meta", "versions", "tags", "layers", "assignment", "grids", "micros"):
        assert layers[f"gridgeo_{table}"] is None  # attribute tables, registered
    read = gpd.read_file(path, layer=units)
    assert read.crs == "EPSG:4490"
    assert read.geometry.geom_equals_exact(record.units.geometry, 0).all()
    assert read["unit_id"].tolist() == record.units["unit_id"].tolist()
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        kinds = dict(connection.execute("SELECT table_name, data_type FROM gpkg_contents"))
    assert kinds["gridgeo_versions"] == "attributes" and kinds[units] == "features"


def test_postgis_geometry_is_typed_with_the_layers_srid(postgis_dsn, record):
    where = Where(postgis_dsn, f"t_{uuid.uuid4().hex[:12]}")
    with where.open() as store:
        store.save(record, "first draft", "planner A")
    layers = spatial_layers(where)
    assert len(layers) == 3 and set(layers.values()) == {("GEOMETRY", 4490)}
