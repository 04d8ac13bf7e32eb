"""Benchmark gridgeo.distributed.assign_parquet: 20M points on a local 2-worker cluster.

Run from the repository root (needs the ``distributed`` extra)::

    python benchmarks/bench_distributed.py                    # 20M points, ~1 GB cached in /tmp
    python benchmarks/bench_distributed.py --points 2000000   # a smaller run
    python benchmarks/bench_distributed.py --memory-limit 1GiB --partition-size 250000

The points are the demo's ~100k households (:func:`gridgeo.demo.households`)
copied ×200, each copy but the first jittered by a seeded Gaussian of
``--jitter`` metres (so some land on boundaries or outside the banner), and
written once as partitioned GeoParquet, one file per copy, to ``--cache``
(reused by later runs; a ``_COMPLETE`` marker says the set is whole).

Then :func:`~gridgeo.distributed.assign_parquet` runs the whole job — build
the index, broadcast it, read, assign, write partitioned GeoParquet to
``--out`` — on a :class:`distributed.LocalCluster` of ``--workers``
single-threaded worker processes with ``--memory-limit`` each, the same
cluster ``assign_parquet`` starts by default (started here so the run can be
watched). Reported: wall time, points per second, and per worker the peak
resident memory (sampled every 0.2 s with psutil, by the pids the client
reports), bytes spilled to disk and memory warnings in the worker logs;
plus, for scale, the same read → assign → write in-process on one file.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psutil
import shapely

SEED = 20_240_611
COPIES_MAX = 10_000


def generate(folder: Path, n_points: int, jitter: float) -> Path:
    """``n_points`` jittered demo households as GeoParquet parts in ``folder`` (cached)."""
    from gridgeo.demo import households, load_demo

    marker = folder / "_COMPLETE"
    if marker.exists() and marker.read_text().strip() == f"{n_points} {jitter}":
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    homes = households(load_demo())
    x, y = homes.geometry.x.to_numpy(), homes.geometry.y.to_numpy()
    # Metres to degrees near 40.8°N (good enough for a jitter).
    dx, dy = jitter / (111_320.0 * np.cos(np.radians(40.8))), jitter / 110_540.0
    copies = -(-n_points // len(homes))
    if copies > COPIES_MAX:
        raise SystemExit(f"--points {n_points} needs more than {COPIES_MAX} copies")
    written = 0
    start = time.perf_counter()
    for copy in range(copies):
        n = min(len(homes), n_points - written)
        rng = np.random.default_rng([SEED, copy])
        ex, ey = (rng.normal(0.0, 1.0, (2, n)) * [[dx], [dy]]) if copy else (0.0, 0.0)
        part = gpd.GeoDataFrame(
            {
                "household_id": (f"C{copy:04d}" + homes["household_id"].iloc[:n]).to_numpy(),
                "size": homes["size"].to_numpy()[:n],
                "registered_grid": homes["registered_grid"].to_numpy()[:n],
            },
            geometry=shapely.points(x[:n] + ex, y[:n] + ey),
            crs=homes.crs,
            index=pd.RangeIndex(written, written + n),
        )
        part.to_parquet(folder / f"part.{copy:04d}.parquet")
        written += n
    marker.write_text(f"{n_points} {jitter}\n")
    size = sum(p.stat().st_size for p in folder.glob("*.parquet"))
    print(
        f"generated {written:,} points in {copies} files, {size / 2**30:.2f} GiB, "
        f"in {time.perf_counter() - start:.0f} s -> {folder}"
    )
    return folder


class MemorySampler:
    """Peak RSS of every worker process, sampled in a background thread.

    Worker processes are this process's ``multiprocessing.spawn`` children,
    found afresh at every sample, so a worker the nanny restarts (memory
    above 95% of its limit) shows up as a new pid.
    """

    def __init__(self, every: float = 0.2):
        self.peak: dict[int, int] = {}
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            for proc in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # a process that just exited
                    if "multiprocessing.spawn" in " ".join(proc.cmdline()):
                        rss = proc.memory_info().rss
                        self.peak[proc.pid] = max(self.peak.get(proc.pid, 0), rss)
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class Events(logging.Handler):
    """Counts the nanny's "exceeded 95% memory budget. Restarting" events (logged here)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.restarts = 0

    def emit(self, record):
        self.restarts += "memory budget" in record.getMessage()


def in_process_file(path: Path, system, index, out: Path) -> tuple[int, float]:
    """Read → assign → write of one file in this process: rows and seconds."""
    from gridgeo.assign import assign

    start = time.perf_counter()
    frame = gpd.read_parquet(path)
    assign(frame, system, index=index).to_parquet(out)
    return len(frame), time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=20_000_000)
    parser.add_argument("--jitter", type=float, default=30.0, help="metres (σ)")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("/tmp/gridgeo-bench/assigned"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="1GiB")
    parser.add_argument("--partition-size", type=int, default=None)
    args = parser.parse_args(argv)

    import dask
    import distributed
    from dask.utils import parse_bytes
    from distributed import Client, LocalCluster, get_task_stream

    import gridgeo
    from gridgeo.assign import build_index
    from gridgeo.distributed import assign_parquet

    cache = args.cache or Path(f"/tmp/gridgeo-bench/points-{args.points}")
    source = generate(cache, args.points, args.jitter)
    files = sorted(source.glob("*.parquet"))
    system = gridgeo.load_demo()
    limit = parse_bytes(args.memory_limit)
    print(
        f"dask {dask.__version__}, distributed {distributed.__version__}; "
        f"{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
        f"load average {os.getloadavg()[0]:.1f} (other processes share the CPUs)"
    )
    print(
        f"input: {args.points:,} points in {len(files)} files "
        f"({sum(f.stat().st_size for f in files) / 2**30:.2f} GiB); "
        f"{args.workers} workers x 1 thread, memory_limit {args.memory_limit}; "
        f"partition_size {args.partition_size or 'as stored'}"
    )

    # For scale: one file, in this process, one core.
    index = build_index(system)
    scratch = args.out.parent / "one-file.parquet"
    rows, seconds = in_process_file(files[0], system, index, scratch)
    scratch.unlink()
    print(
        f"in-process, one file: {rows:,} points in {seconds:.2f} s = {rows / seconds:,.0f} points/s"
    )

    events = Events()
    logging.getLogger("distributed.nanny.memory").addHandler(events)
    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            memory_limit=args.memory_limit,
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
        MemorySampler() as sampler,
    ):
        with get_task_stream(client) as stream:
            start = time.perf_counter()
            out = assign_parquet(
                source,
                system,
                args.out,
                scheduler=cluster.scheduler_address,
                partition_size=args.partition_size,
            )
            wall = time.perf_counter() - start
        pids = client.run(lambda: psutil.Process().pid)
        spilled = client.run(lambda dask_worker: dask_worker.data.spilled_total.disk)
        logs = client.get_worker_logs()

    pauses = {
        name: sum("Pausing worker" in line for _, line in lines) for name, lines in logs.items()
    }
    status = pd.read_parquet(out, columns=["assign_status"])["assign_status"]
    parts = len(list(out.glob("*.parquet")))
    print(f"wall time: {wall:.1f} s (index build, scatter, read, assign, write)")
    print(f"throughput: {args.points / wall:,.0f} points/s")
    print(f"written: {len(status):,} rows in {parts} files -> {out}")
    print("statuses:", status.value_counts().to_dict())
    busy: dict[str, float] = {}
    for task in stream.data:
        key = task["key"][0] if isinstance(task["key"], tuple) else task["key"]
        prefix = str(key).rsplit("-", 1)[0]
        for part in task["startstops"]:
            if part["action"] == "compute":
                busy[prefix] = busy.get(prefix, 0.0) + part["stop"] - part["start"]
    top = sorted(busy.items(), key=lambda item: -item[1])[:6]
    print(
        f"worker compute time, {sum(busy.values()):.0f} s in all: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in top)
    )
    print("per worker process: peak RSS / memory_limit, spilled to disk, pauses")
    by_pid = {pid: name for name, pid in pids.items()}
    for pid, peak in sorted(sampler.peak.items()):
        name = by_pid.get(pid, "(restarted away)")
        print(
            f"  pid {pid} {name}: {peak / 2**20:,.0f} MiB / {limit / 2**20:,.0f} MiB "
            f"({peak / limit:.0%}), spilled {spilled.get(name, 0):,} B, "
            f"{pauses.get(name, 0)} pauses"
        )
    print(f"workers restarted for memory: {events.restarts}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if len(status) != args.points:
        raise SystemExit(f"expected {args.points:,} rows, wrote {len(status):,}")


if __name__ == "__main__":
    main()
