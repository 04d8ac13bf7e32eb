"""Assign points that do not fit one machine: dask-geopandas over partitioned GeoParquet.

:func:`assign_parquet` is :func:`gridgeo.assign.assign` run partition by
partition over a GeoParquet file or a folder of GeoParquet parts, on a
``dask.distributed`` cluster: a :class:`distributed.LocalCluster` of worker
processes by default, or any running scheduler given by its address.

How: the points are read lazily with :func:`dask_geopandas.read_parquet`;
the :class:`~gridgeo.assign.GridIndex` is built once, here, and broadcast
to every worker (``Client.scatter(..., broadcast=True)``); each partition is
assigned with :meth:`map_partitions`, with no shuffle and no join. This
works because the grid system is small next to the points: the demo's
index is ~30 MB pickled, while the points run to gigabytes. A province-scale
system (hundreds of thousands of grids) would need the grids themselves
spatially partitioned (points and grids co-partitioned by region); that is
left for later.

Needs the ``distributed`` extra: ``pip install 'gridgeo[distributed]'``.
Workers of a remote cluster need gridgeo installed too, and must see the
input and output paths (a shared filesystem or object store).

Example
-------
>>> import gridgeo
>>> from gridgeo.distributed import assign_parquet
>>> assign_parquet("households/", gridgeo.load_demo(), "assigned/")  # doctest: +SKIP
PosixPath('assigned')
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gridgeo.assign import GridIndex, assign, build_index
from gridgeo.crs import require_crs
from gridgeo.errors import CrsError, DataFileError, GridgeoError

# The atomic-write helpers of io: one implementation for every folder gridgeo writes.
from gridgeo.io.atomic import staging, swap_folder
from gridgeo.model import GridSystem

if TYPE_CHECKING:
    import dask_geopandas

__all__ = ["assign_parquet"]

_STATUS, _REASON = "assign_status", "assign_reason"  # assign's column names
# Statuses that count as "placed" for the check that the points are not all
# elsewhere (a wrong CRS); the same rule as assign's own check.
_PLACED = ("inside", "on_boundary", "in_overlap", "in_gap")


def assign_parquet(
    points_path: str | os.PathLike[str],
    system: GridSystem,
    out_path: str | os.PathLike[str] | None = None,
    *,
    scheduler: str | None = None,
    n_workers: int = 2,
    memory_limit: str = "2GiB",
    partition_size: int | None = None,
    coords: str | None = None,
    on_overlap: Literal["rule", "review"] = "rule",
    gap_tolerance: float = 200.0,
    index: GridIndex | None = None,
) -> dask_geopandas.GeoDataFrame | Path:
    """Assign points stored as GeoParquet to grids, partition by partition, on a dask cluster.

    The same call as :func:`gridgeo.assign.assign`, and the same answer row
    for row, for points that do not fit in memory. The grid system is
    assumed small next to the points: its index is built once and broadcast
    whole to every worker, and each partition of points is assigned against
    it (no spatial join of two dask frames). A province-scale system would
    need spatial partitioning of the grids as well; that is left for later.

    Parameters
    ----------
    points_path:
        A GeoParquet file, or a folder of GeoParquet parts, read lazily with
        :func:`dask_geopandas.read_parquet` (a partition per file, unless
        ``partition_size`` says otherwise); a ``scheme://`` URL is passed
        through to it unchecked.
    system:
        The grid system.
    out_path:
        A folder to write the result to, as partitioned GeoParquet: one
        ``part.N.parquet`` per partition, the original index kept (read it
        back with :func:`dask_geopandas.read_parquet`;
        :func:`geopandas.read_parquet` names an unnamed index
        ``__null_dask_index__``). The run happens here and the folder's path
        is returned. Written to a hidden folder beside it and moved into
        place when complete and checked; an existing folder of ``.parquet``
        files is replaced, anything else there is refused. ``None``: return
        the lazy result instead.
    scheduler:
        ``None``: start a :class:`distributed.LocalCluster` of ``n_workers``
        processes with one thread and ``memory_limit`` each, and close it
        when done. Otherwise the address of a running scheduler
        (``"tcp://host:8786"``) to connect a client to.
    n_workers, memory_limit:
        Size of the local cluster (ignored with ``scheduler``). A worker
        holds ~350 MiB (libraries and the index) plus ~1 KiB per point of
        the partition it works on (measured peaks: 400 MiB at 100k points,
        520 MiB at 250k, 640 MiB at 500k), and dask pauses a worker at 80%
        of its limit, so 1 GiB suits partitions up to ~250k points. Parts
        joined into larger partitions (``partition_size``) wait in memory
        until joined: give them room.
    partition_size:
        Points per partition, at most: stored parts larger than this are
        split evenly, smaller neighbours joined, the order kept (a part is
        one file, or one row group where dask splits files). ``None``: as
        stored.
    coords, on_overlap, gap_tolerance, index:
        As for :func:`gridgeo.assign.assign` (``index``: a prebuilt
        :func:`~gridgeo.assign.build_index` of ``system``, else built here).

    Returns
    -------
    dask_geopandas.GeoDataFrame or Path
        Without ``out_path``, the lazy result: the points plus the columns
        :func:`~gridgeo.assign.assign` adds. The code columns,
        ``assign_status`` and ``suggested`` are categoricals with the same
        (known) categories as in-process; ``candidates`` — and
        ``assign_reason`` when the points have a ``coord_error`` column —
        are plain text, since their vocabulary differs from partition to
        partition. Nothing is run: ``.compute()``
        runs on the current dask scheduler (the client connected to
        ``scheduler`` if one was given — it is left open and set as the
        default for that —, else any client already current, else dask's
        local scheduler; no cluster is started for a lazy result). Call it
        with the client current, so the index is scattered rather than
        shipped inside the graph. With
        ``out_path``, the path written.

    Raises
    ------
    DataFileError
        ``points_path`` is missing, holds no GeoParquet, or cannot be read;
        or ``out_path`` cannot be replaced.
    CrsError
        The points have no CRS; or, with ``out_path``, not one valid point
        falls in or near the root polygon (as :func:`~gridgeo.assign.assign`). A
        lazy result cannot make that last check, which needs every
        partition: a partition of points all outside the root polygon is assigned
        as such, not refused, so look at ``assign_status``.
    GridgeoError
        Any other bad input, raised as the original gridgeo error (not
        wrapped in a dask or distributed exception).
    """
    try:
        import dask_geopandas
        from distributed import Client
    except ImportError as exc:
        raise ImportError(
            f"assign_parquet needs dask-geopandas and dask.distributed ({exc}); "
            "install them with: pip install 'gridgeo[distributed]'"
        ) from exc

    if on_overlap not in ("rule", "review"):
        raise GridgeoError(f"on_overlap must be 'rule' or 'review', not {on_overlap!r}")
    source = _check_source(points_path)
    try:
        with warnings.catch_warnings():
            # dask's parquet reader still passes inplace=True to pandas 3.
            warnings.filterwarnings("ignore", "The inplace keyword", DeprecationWarning)
            points = dask_geopandas.read_parquet(source)
    except Exception as exc:  # pyarrow/dask/dask-geopandas each raise their own
        raise DataFileError(f"cannot read GeoParquet points from {source}: {exc}") from exc
    require_crs(points._meta, f"the points in {source}")
    target = None if out_path is None else Path(out_path)
    if target is not None:
        _check_replaceable(target)
    if partition_size is not None:
        points = _repartition(points, source, partition_size)

    index = index or build_index(system)
    options = {
        "coords": coords,
        "on_overlap": on_overlap,
        "gap_tolerance": gap_tolerance,
        "sentinel": _sentinel(index, points._meta.crs, coords),
    }
    meta = _assign_partition(points._meta, index, **options)

    if target is None:
        if scheduler is not None:
            client = Client(scheduler, set_as_default=True)  # left open for .compute()
        else:
            client = _current_client()
        # One key for the index either way: scattered to every worker of a
        # live client, else embedded once in the graph (any scheduler).
        shared = client.scatter(index, broadcast=True) if client else _delayed(index)
        return points.map_partitions(_assign_partition, shared, **options, meta=meta)

    with _client(scheduler, n_workers, memory_limit) as client, staging(target) as stage:
        shared = client.scatter(index, broadcast=True)
        result = points.map_partitions(_assign_partition, shared, **options, meta=meta)
        written = stage / target.name
        status = result[_STATUS].value_counts()
        write = result.to_parquet(written, compute=False)
        # One run: the write and the status counts share the read and the assignment.
        _, counts = client.compute([write, status], sync=True)
        valid = int(counts.drop("invalid", errors="ignore").sum())
        placed = int(counts.reindex(list(_PLACED), fill_value=0).sum())
        if valid and not placed:
            raise CrsError(
                f"none of the {valid} valid points in {source} falls inside "
                f"{system.config.root_name}; the points' CRS is "
                f"{CRS.from_user_input(points._meta.crs).to_string()}. Check the CRS, whether "
                "the coordinates are GCJ-02/BD-09 (coords='gcj02' or 'bd09'), and whether the "
                f"longitude and latitude columns are swapped. Nothing was written to {target}."
            )
        swap_folder(written, target, stage)
    return target


def _assign_partition(
    part: gpd.GeoDataFrame,
    index: GridIndex,
    *,
    coords,
    on_overlap,
    gap_tolerance,
    sentinel,
) -> gpd.GeoDataFrame:
    """:func:`assign` on one partition, with categories that agree across partitions."""
    kwargs = {"coords": coords, "on_overlap": on_overlap, "gap_tolerance": gap_tolerance}
    try:
        out = assign(part, index.system, index=index, **kwargs)
    except CrsError:
        # assign refuses a batch in which no valid point lands in the root polygon
        # (a wrong CRS). One partition may legitimately hold only such points
        # (the whole set is checked after the run), so try again with one point
        # known to be inside added; any other CrsError is raised again as is.
        if len(part) == 0 or part.crs is None:
            raise
        extra = part.iloc[:1].copy()
        extra[extra.geometry.name] = gpd.GeoSeries([sentinel], index=extra.index, crs=part.crs)
        if "coord_error" in extra:
            extra["coord_error"] = None
        out = assign(pd.concat([part, extra]), index.system, index=index, **kwargs).iloc[:-1]
    # The code columns, assign_status and suggested take their categories from
    # the shared index, so they already agree. candidates (and assign_reason, when the
    # reader's coord_error adds reasons) hold what this partition met: text.
    out["candidates"] = out["candidates"].astype(str)
    if "coord_error" in part:
        out[_REASON] = out[_REASON].astype(str)
    return out


def _sentinel(index: GridIndex, crs, coords: str | None) -> shapely.Point:
    """A point deep inside the root polygon, in the points' CRS (and ``coords`` system)."""
    outline = index.outline
    parts = shapely.get_parts(outline)
    largest = parts[np.argmax(shapely.area(parts))]
    circle = shapely.maximum_inscribed_circle(largest, shapely.length(largest) / 1e4)
    centre = shapely.Point(shapely.get_coordinates(circle)[0])
    point = gpd.GeoSeries([centre], crs=index.system.crs).to_crs(crs).iloc[0]
    if coords is not None and CRS.from_user_input(crs).is_geographic:
        from gridgeo.crs import from_wgs84

        lon, lat = from_wgs84(point.x, point.y, coords)
        point = shapely.Point(float(lon), float(lat))
    return point


def _check_source(points_path) -> str:
    """The points' path as text, checked to exist and to hold GeoParquet."""
    text = os.fspath(points_path)
    if "://" in text:
        return text
    path = Path(text)
    if not path.exists():
        raise DataFileError(
            f"{path} does not exist; give a GeoParquet file or a folder of GeoParquet parts."
        )
    if path.is_dir() and not any(path.rglob("*.parquet")):
        raise DataFileError(f"{path} is a folder without any .parquet file in it.")
    return str(path)


def _repartition(points, source: str, partition_size: int):
    """``points`` in partitions of at most ``partition_size`` rows, in their order.

    A partition never spans files, so the largest file (counted from the
    footers alone) bounds every partition: each is split evenly into ``k``
    pieces when that file is too large, or neighbours are joined ``g`` at a
    time when ``g`` of the largest still fit.
    """
    import pyarrow.dataset as ds

    if partition_size < 1:
        raise GridgeoError(
            f"partition_size must be a positive number of points, not {partition_size}"
        )
    fragments = ds.dataset(source, format="parquet").get_fragments()
    largest = max((f.count_rows() for f in fragments), default=0)
    n = points.npartitions
    if largest > partition_size:
        return points.repartition(npartitions=n * -(-largest // partition_size))
    group = partition_size // max(largest, 1)
    if group > 1 and n > 1:
        return points.repartition(npartitions=-(-n // group))
    return points


def _current_client():
    from distributed import get_client

    try:
        return get_client()
    except ValueError:  # no client running
        return None


def _delayed(obj):
    import dask

    return dask.delayed(obj, pure=True)


@contextmanager
def _client(scheduler: str | None, n_workers: int, memory_limit: str) -> Iterator:
    """A client of the scheduler at ``scheduler``, or of a local cluster closed on exit."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler, set_as_default=False) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            memory_limit=memory_limit,
            processes=True,
            dashboard_address=":0",
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def _check_replaceable(target: Path) -> None:
    if not target.exists():
        if not target.parent.is_dir():
            raise DataFileError(f"{target.parent} does not exist; create it first.")
        return
    if not target.is_dir():
        raise DataFileError(
            f"{target} exists and is a file; give a folder for the GeoParquet parts."
        )
    foreign = sorted(p.name for p in target.iterdir() if p.suffix != ".parquet")
    if foreign:
        raise DataFileError(
            f"{target} already holds files that are not GeoParquet parts ({foreign[:5]}); "
            "the result replaces the whole folder, so give a new or empty folder."
        )
