"""gridgeo.distributed: assign over partitioned GeoParquet on a dask.distributed cluster.

Every comparison is against :func:`gridgeo.assign.assign` run in-process on
the same points, row by row (by the original index), with real worker
processes (a LocalCluster of 2 workers shared by the module, plus one run
that starts and closes its own).
"""

from __future__ import annotations

import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely
from distributed import Client, LocalCluster, get_client

import gridgeo
from gridgeo.assign import assign, build_index
from gridgeo.demo import households, load_truth
from gridgeo.distributed import assign_parquet
from gridgeo.errors import CrsError, DataFileError
from gridgeo.io import read_system, write_system

# dask's parquet reader still passes inplace=True to pandas 3 (its warning, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")

ADDED = [
    "town_code",
    "grid_code",
    "micro_grid_code",
    "assign_status",
    "assign_reason",
    "candidates",
    "suggested",
]
N_HOMES = 20_000
PARTS = 4
MEMORY = "768MiB"


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2, threads_per_worker=1, memory_limit=MEMORY, dashboard_address=":0"
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def points(system, index) -> gpd.GeoDataFrame:
    """20k demo households, 30 points on shared grid edges, and bad rows."""
    homes = households(system).iloc[:N_HOMES]
    leaves = index.leaves
    # Vertices of leaf outlines: on boundaries shared by two or more grids.
    rng = np.random.default_rng(7)
    rings = leaves.geometry.iloc[rng.choice(len(leaves), 30, replace=False)].boundary
    vertices = [shapely.Point(shapely.get_coordinates(r)[3]) for r in rings]
    edges = homes.iloc[:30].copy()
    edges["household_id"] = [f"E{k:05d}" for k in range(30)]
    edges = edges.set_geometry(gpd.GeoSeries(vertices, index=edges.index, crs=homes.crs))
    bad = homes.iloc[:5].copy()
    bad["household_id"] = [f"BAD{k}" for k in range(5)]
    bad = bad.set_geometry(
        gpd.GeoSeries(
            [
                None,  # missing
                shapely.Point(np.nan, np.nan),  # NaN coordinates
                shapely.Point(116.40, 39.90),  # Beijing: outside the banner
                shapely.Point(40.75, 108.65),  # latitude and longitude swapped
                shapely.Point(112.0, 42.0),  # elsewhere in Inner Mongolia
            ],
            index=bad.index,
            crs=homes.crs,
        )
    )
    frame = pd.concat([homes, edges, bad], ignore_index=True)
    # A non-trivial index, to check it survives the round trip.
    frame.index = pd.Index(np.arange(len(frame)) * 3 + 11, name="row")
    return frame


def write_parts(frame: gpd.GeoDataFrame, folder, parts: int = PARTS, tail: int = 5):
    """``frame`` as ``parts`` GeoParquet files, plus its last ``tail`` rows as a file of their own.

    The last file holds only the bad rows: no point in it lands in the
    banner, which assign refuses for a batch on its own.
    """
    folder.mkdir()
    body = frame.iloc[:-tail] if tail else frame
    for k, rows in enumerate(np.array_split(np.arange(len(body)), parts)):
        body.iloc[rows].to_parquet(folder / f"part.{k:02d}.parquet")
    if tail:
        frame.iloc[-tail:].to_parquet(folder / f"part.{parts:02d}.parquet")
    return folder


@pytest.fixture(scope="module")
def parquet(points, tmp_path_factory):
    return write_parts(points, tmp_path_factory.mktemp("points") / "households")


@pytest.fixture(scope="module")
def expected(parquet, system, index):
    # In-process on the same files: a POINT (NaN NaN) is stored in WKB as an
    # empty point, so it comes back "missing coordinates" ("non-numeric" in memory).
    return assign(gpd.read_parquet(parquet), system, index=index)


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[ADDED].astype(object).where(frame[ADDED].notna(), None).astype(str)


def assert_same(result: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same rows, same index, same answers (text compared as text), same dtypes elsewhere."""
    assert len(result) == len(expected)
    assert result.index.is_unique
    assert set(result.index) == set(expected.index)
    result = result.loc[expected.index]
    pd.testing.assert_frame_equal(as_text(result), as_text(expected))
    np.testing.assert_array_equal(result["suggested_m"], expected["suggested_m"])
    # Everything else, dtypes included, is exactly the in-process result;
    # candidates is plain text (its vocabulary differs per partition).
    assert isinstance(result, gpd.GeoDataFrame) and result.crs == expected.crs
    geometry = result.geometry.name
    np.testing.assert_array_equal(
        shapely.to_wkb(result.geometry.to_numpy()), shapely.to_wkb(expected.geometry.to_numpy())
    )
    pd.testing.assert_frame_equal(
        pd.DataFrame(result.drop(columns=["candidates", geometry])),
        pd.DataFrame(expected.drop(columns=["candidates", geometry])),
        check_index_type=False,
        check_names=False,
    )


def test_the_points_cover_every_status_of_interest(parquet, system, index, expected):
    counts = expected["assign_status"].value_counts()
    assert counts["inside"] >= N_HOMES
    assert counts["on_boundary"] >= 20
    assert counts["outside"] == 2 and counts["invalid"] == 3
    # On its own, the last part (bad rows only) is refused by assign: not one
    # valid point lands in the banner. assign_parquet must still assign it.
    with pytest.raises(CrsError, match="none of the 2 valid points"):
        assign(gpd.read_parquet(parquet / f"part.{PARTS:02d}.parquet"), system, index=index)


def test_lazy_result_on_a_cluster_equals_assign_in_process(
    cluster, parquet, system, index, expected
):
    with Client(cluster) as client:
        lazy = assign_parquet(parquet, system, index=index)  # index scattered to the client
        assert isinstance(lazy, dask_geopandas.GeoDataFrame)
        assert lazy.npartitions == PARTS + 1
        result = client.compute(lazy, sync=True)
    assert_same(result, expected)


def test_lazy_result_with_a_scheduler_address_connects_a_default_client(
    cluster, parquet, system, index, expected
):
    lazy = assign_parquet(parquet, system, index=index, scheduler=cluster.scheduler_address)
    client = get_client()  # connected by assign_parquet and left open for .compute()
    try:
        assert client.scheduler.address == cluster.scheduler_address
        assert_same(lazy.compute(), expected)
    finally:
        client.close()


def test_written_result_reads_back_equal(cluster, parquet, system, index, expected, tmp_path):
    address = cluster.scheduler_address
    out = assign_parquet(parquet, system, tmp_path / "assigned", scheduler=address, index=index)
    assert out == tmp_path / "assigned"
    assert sorted(p.name for p in out.iterdir()) == [f"part.{k}.parquet" for k in range(PARTS + 1)]
    assert [p.name for p in tmp_path.iterdir()] == ["assigned"]  # no staging folder left
    assert_same(dask_geopandas.read_parquet(out).compute(), expected)
    # A rerun replaces the folder it wrote.
    assign_parquet(parquet, system, out, scheduler=address, index=index, partition_size=10**6)
    assert [p.name for p in out.iterdir()] == ["part.0.parquet"]
    assert len(gpd.read_parquet(out)) == len(expected)


def test_default_starts_and_closes_its_own_local_cluster(
    parquet, system, index, expected, tmp_path
):
    out = assign_parquet(
        parquet, system, tmp_path / "assigned", n_workers=2, memory_limit=MEMORY, index=index
    )
    assert_same(dask_geopandas.read_parquet(out).compute(), expected)
    with pytest.raises(ValueError, match="No global client"):
        get_client()  # none left behind


def test_partition_size_splits_and_joins_in_order(cluster, parquet, system, index, expected):
    stored = [pq.ParquetFile(f).metadata.num_rows for f in sorted(parquet.iterdir())]
    assert len(stored) == PARTS + 1 and max(stored) == 5_008
    with Client(cluster) as client:
        small = assign_parquet(parquet, system, index=index, partition_size=2_000)
        assert small.npartitions == 3 * len(stored)  # each part split in 3 pieces
        joined = assign_parquet(parquet, system, index=index, partition_size=12_000)
        assert joined.npartitions == 3  # neighbours joined two at a time
        for frame, size in [(small, 2_000), (joined, 12_000)]:
            partitions = client.compute(frame.to_delayed(), sync=True)
            assert max(len(p) for p in partitions) <= size
            assert_same(pd.concat(partitions), expected)


def test_lazy_result_without_a_client_runs_on_any_scheduler(parquet, system, index, expected):
    lazy = assign_parquet(parquet, system, index=index)  # index embedded once in the graph
    assert_same(lazy.compute(scheduler="threads"), expected)


def test_grids_and_points_both_read_from_geoparquet(cluster, points, system, tmp_path):
    """The scenario of geopandas/dask-geopandas#327.

    dask-geopandas 0.5.0 fails to sjoin two frames that were both read with
    read_parquet ("Can only compare identically-labeled Series objects").
    assign_parquet never joins two dask frames (the grids are broadcast to
    the workers, the points mapped partition by partition), so the bug cannot
    bite; here both sides come from GeoParquet anyway — the grids through
    geopandas.read_parquet, the points through dask_geopandas.read_parquet —
    and the index is built from the grids as read back.
    """
    grids = read_system(write_system(system, tmp_path / "grids", format="parquet"))
    assert {p.suffix for p in (tmp_path / "grids").iterdir()} == {".parquet"}
    path = write_parts(points.iloc[-2_000:], tmp_path / "points")
    expected = assign(gpd.read_parquet(path), system)
    with Client(cluster) as client:
        result = client.compute(assign_parquet(path, grids), sync=True)
    assert_same(result, expected)


def test_dirty_system_gaps_overlaps_and_review(cluster, points, tmp_path):
    dirty = gridgeo.load_demo("dirty")
    index = build_index(dirty)
    truth = load_truth("dirty")
    spots = truth[truth["kind"].isin(["gap", "overlap"])].geometry.representative_point()
    more = gpd.GeoDataFrame({"household_id": [f"T{k}" for k in range(len(spots))]}, geometry=spots)
    frame = pd.concat([points.iloc[:2_000], more.set_crs(dirty.crs)], ignore_index=True)
    path = write_parts(frame, tmp_path / "points", parts=3, tail=0)
    options = {"on_overlap": "review", "gap_tolerance": 500.0, "index": index}
    expected = assign(gpd.read_parquet(path), dirty, **options)
    assert {"in_gap", "in_overlap"} <= set(expected["assign_status"])
    with Client(cluster) as client:
        assert_same(client.compute(assign_parquet(path, dirty, **options), sync=True), expected)


def test_reader_reasons_differ_per_partition_and_still_agree(
    cluster, points, system, index, tmp_path
):
    frame = points.iloc[:3_000].copy()
    frame["coord_error"] = ""  # as gridgeo.io.read_points writes it
    rows = frame.index[[10, 2_900]]
    frame.loc[rows, "coord_error"] = ["longitude is text: 'abc'", "latitude is empty"]
    frame.loc[rows, "geometry"] = None
    path = write_parts(frame, tmp_path / "points", parts=3, tail=0)
    expected = assign(gpd.read_parquet(path), system, index=index)
    with Client(cluster) as client:
        result = client.compute(assign_parquet(path, system, index=index), sync=True)
    assert result.loc[rows[1], "assign_reason"] == "latitude is empty"
    assert result["assign_reason"].dtype == "str"  # text: its vocabulary differs per partition
    expected["assign_reason"] = expected["assign_reason"].astype(str)
    assert_same(result, expected)


# -- bad input ------------------------------------------------------------------------------------
def test_missing_path_is_a_data_file_error_naming_it(system, tmp_path):
    missing = tmp_path / "nowhere" / "households.parquet"
    with pytest.raises(DataFileError, match="nowhere"):
        assign_parquet(missing, system)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match=r"without any \.parquet"):
        assign_parquet(tmp_path / "empty", system)
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(DataFileError, match=r"fake\.parquet"):
        assign_parquet(tmp_path / "fake.parquet", system)


def test_points_without_crs_are_a_crs_error(points, system, tmp_path):
    path = tmp_path / "no_crs.parquet"
    points.iloc[:100].set_crs(None, allow_override=True).to_parquet(path)
    with pytest.raises(CrsError, match=r"no_crs\.parquet has no coordinate reference system"):
        assign_parquet(path, system)


def test_a_part_without_crs_surfaces_as_crs_error_from_the_worker(
    cluster, points, system, index, tmp_path
):
    """Raised in a task on a worker process; arrives as the gridgeo error itself."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    points.iloc[:100].to_parquet(folder / "part.0.parquet")
    points.iloc[100:200].set_crs(None, allow_override=True).to_parquet(folder / "part.1.parquet")
    out = tmp_path / "out"
    with pytest.raises(CrsError, match="no coordinate reference system") as raised:
        assign_parquet(folder, system, out, scheduler=cluster.scheduler_address, index=index)
    assert type(raised.value) is CrsError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed"]  # nothing written, no staging


def test_all_points_outside_is_a_crs_error_and_writes_nothing(
    cluster, points, system, index, tmp_path
):
    wrong = points.iloc[:1_000].set_crs("EPSG:4545", allow_override=True)  # degrees as metres
    path = write_parts(wrong, tmp_path / "wrong", parts=2, tail=0)
    with pytest.raises(CrsError, match="none of the 1000 valid points"):
        assign_parquet(
            path, system, tmp_path / "out", scheduler=cluster.scheduler_address, index=index
        )
    assert not (tmp_path / "out").exists()


def test_out_path_holding_other_files_is_refused(parquet, system, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("keep me")
    with pytest.raises(DataFileError, match=r"notes\.txt"):
        assign_parquet(parquet, system, tmp_path / "out", scheduler="tcp://127.0.0.1:1")
    assert (tmp_path / "out" / "notes.txt").read_text() == "keep me"
