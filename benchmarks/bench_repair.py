"""Benchmark the repair against maup.smart_repair and raw shapely.coverage_clean.

Run from the repository root (one run, about four minutes on 2 cores; maup is
the optional ``bench`` extra; each time is the fastest of a few calls, see
``FAST_RUNS``)::

    PYTHONPATH=. python benchmarks/bench_repair.py > benchmarks/results/bench_repair.txt

Three inputs, each repaired by all three tools:

1. bench_check's layer: 900 Voronoi grids in one town, 33 injected defects
   (inner gaps, edge gaps open to the town's edge, overlaps, sliver gaps and
   overlaps, spikes, bow-ties), the clean layer known;
2. the dirty demo (its grid level; the clean demo is the truth), the 9
   geometric defects of ``load_truth("dirty")`` (codes are scored apart);
3. a real layer: Bayannur's 7 counties mixed from Tianditu and AMap
   (``benchmarks/real_counties.py``), inside the Tianditu outline: no truth,
   scored by the errors ``gridgeo.check`` still finds.

gridgeo: ``propose_repair`` + ``apply(accept="all")`` on the whole system
(every level, nested). maup: ``smart_repair`` nested in the parents
(``nest_within_regions``); on the dirty demo both the grid level alone (nested
in the towns) and every level below the root, each nested in maup's repair of
the level above — the same job as gridgeo's, and the ratio the target is
judged on. GEOS: ``coverage_clean`` of the made-valid
polygons with ``gap_width`` = the defect tolerance (10 m: wider gaps are real
disagreements) and the default snapping distance (never 0, GEOS#1525).

A defect is *restored* when every polygon it involves comes back as the clean
one: symmetric difference at most 1 m² plus 1 % of the defect's area.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from _report import ratio, say, secs, table

sys.path.insert(0, str(Path(__file__).parent))
import bench_check as bc

from gridgeo import load_demo
from gridgeo.check import check_layer, check_system
from gridgeo.check.steps import polygonal
from gridgeo.config import BANNER, Coverage, GridConfig, Level
from gridgeo.demo import load_truth
from gridgeo.model import GridSystem
from gridgeo.repair import apply, propose_repair

try:
    import maup
except ImportError:
    maup = None

GAP_WIDTH = BANNER.tolerances.defect


# Each tool's time is its fastest of a few runs (timeit's rule: this shared
# machine's noise only ever adds time): gridgeo and coverage_clean, which take
# under a second, five times; maup, which takes seconds to a minute, twice.
FAST_RUNS, SLOW_RUNS = 5, 2


def timed(fn, runs: int = 1):
    """The fastest of ``runs`` calls of ``fn``, and the last call's output."""
    best, out = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def restored(repaired: np.ndarray, clean: np.ndarray, groups, areas) -> np.ndarray:
    """Per defect: do all its polygons equal the clean ones (1 m² + 1 % of its area)?"""
    out = []
    for idx, area in zip(groups, areas, strict=True):
        idx = list(idx)
        diff = shapely.area(shapely.symmetric_difference(
            shapely.make_valid(repaired[idx]), clean[idx]))  # fmt: skip
        out.append(bool((diff <= 1.0 + 0.01 * area).all()))
    return np.array(out)


def run_maup(frame: gpd.GeoDataFrame, regions: gpd.GeoDataFrame | None):
    if maup is None:
        return None, None
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):  # maup prints progress bars
        warnings.simplefilter("ignore")
        t, out = timed(lambda: maup.smart_repair(frame, nest_within_regions=regions), SLOW_RUNS)
    return t, out.geometry.to_numpy()


def run_maup_levels(system: GridSystem, metric):
    """maup doing gridgeo's whole job: each level repaired nested in maup's repair of the one above.

    Returns the summed time, the time per level and the repaired layers (metric).
    """
    if maup is None:
        return None, {}, {}
    names = system.config.level_names
    parent = system[names[0]].to_crs(metric)[["geometry"]]
    times, layers = {}, {}
    for name in names[1:]:
        frame = system[name].to_crs(metric)[["code", "parent_code", "geometry"]]
        t, geoms = run_maup(frame, parent)
        times[name], layers[name] = t, geoms
        parent = gpd.GeoDataFrame(geometry=geoms, crs=metric)
    return sum(times.values()), times, layers


def run_clean(geoms: np.ndarray):
    fixed = np.array([polygonal(g) for g in shapely.make_valid(geoms)], dtype=object)
    return timed(lambda: shapely.coverage_clean(fixed, gap_width=GAP_WIDTH), FAST_RUNS)


def split_accuracy(audit: gpd.GeoDataFrame, repaired: gpd.GeoDataFrame, per: int = 300) -> str:
    """How much of the split gap area went to a polygon that is not the nearest.

    The polygons as the split saw them: the repaired ones less every gap
    filled into them (fills come last). ``per`` random points in each share
    of a split gap; a point counts as wrong when another polygon is nearer it
    than the share's own by more than 5 % (+ 1 cm): the split bends its
    lines to within 2 %.
    """
    fills = audit[audit["action"] == "fill"].to_crs(repaired.crs)
    before = repaired.set_index("code").geometry
    for code, rows in fills.groupby("to_code"):
        filled = shapely.union_all(shapely.make_valid(rows.geometry.to_numpy()))
        before[code] = shapely.difference(shapely.make_valid(before[code]), filled)
    rows = fills[fills["rule"] == "split"]
    rng = np.random.default_rng(0)
    wrong = total = 0.0
    for share, code in zip(rows.geometry.to_numpy(), rows["to_code"], strict=True):
        x0, y0, x1, y1 = shapely.bounds(share)
        points = shapely.points(rng.uniform((x0, y0), (x1, y1), size=(per, 2)))
        points = points[shapely.contains(share, points)]
        if not len(points):
            continue
        near = shapely.distance(points[:, None], before.to_numpy()[None, :])
        own = near[:, before.index.get_loc(code)]
        wrong += (near.min(axis=1) < own / 1.05 - 0.01).mean() * share.area
        total += share.area
    return (f"split accuracy: {100 * wrong / max(total, 1e-300):.3f} % of the split gap area "
            f"({total / 1e6:.1f} km², {len(rows)} shares) lies clearly nearer another county "
            f"than its own (random points, {per} per share)")  # fmt: skip


def system_of(frame, parent, crs) -> GridSystem:
    banner = gpd.GeoDataFrame({"code": ["150823"], "name": ["b"], "parent_code": [""]},
                              geometry=parent.geometry.to_numpy(), crs=crs)  # fmt: skip
    town = parent.assign(name="t")[["code", "name", "parent_code", "geometry"]]
    grid = frame.assign(name="g")
    micro = gpd.GeoDataFrame({"code": [], "name": [], "parent_code": []},
                             geometry=gpd.GeoSeries([], crs=crs))  # fmt: skip
    return GridSystem.from_layers({"banner": banner, "town": town, "grid": grid,
                                   "micro_grid": micro}, BANNER, strict=False)  # fmt: skip


def report_rows(name, t_gg, r_gg, t_m, r_m, t_c, r_c, n, extra=("", "", "")):
    rows = [["gridgeo propose + apply(all)", secs(t_gg), f"{r_gg}/{n}", "1.0×", extra[0]]]
    rows.append(["maup.smart_repair", secs(t_m), f"{r_m}/{n}" if r_m is not None else "—",
                 ratio(t_m, t_gg), extra[1]])  # fmt: skip
    rows.append([f"coverage_clean(gap_width={GAP_WIDTH:g})", secs(t_c), f"{r_c}/{n}",
                 ratio(t_c, t_gg), extra[2]])  # fmt: skip
    table(["tool", "time s", "restored", "time / gridgeo", "note"], rows, name)


# -- 1. bench_check's layer ----------------------------------------------------------
def part1() -> None:
    say("=" * 78 + "\n1. bench_check's layer: 900 grids, 33 injected defects\n" + "=" * 78)
    layer = bc.make_layer(900, sum(bc.MIX.values()), bc.SEED, "grid", BANNER)
    clean, _ = bc.voronoi_coverage(900, np.random.default_rng(bc.SEED))
    system = system_of(layer.frame, layer.parent, bc.CRS)
    groups = [t.idx for t in layer.truth]
    areas = [shapely.area(t.geometry) for t in layer.truth]
    t_gg, fixed = timed(lambda: apply(propose_repair(system), "all"), FAST_RUNS)
    got = fixed["grid"].geometry.to_numpy()
    ok_gg = restored(got, clean, groups, areas)
    t_m, got_m = run_maup(layer.frame, layer.parent)
    ok_m = restored(got_m, clean, groups, areas) if got_m is not None else None
    t_c, got_c = run_clean(layer.frame.geometry.to_numpy())
    ok_c = restored(got_c, clean, groups, areas)
    left = check_system(fixed, dual=False).errors
    report_rows("Results", t_gg, ok_gg.sum(), t_m, None if ok_m is None else ok_m.sum(), t_c,
                ok_c.sum(), len(groups), (f"{left} errors left", "", ""))  # fmt: skip
    per = {}
    for k, t in enumerate(layer.truth):
        row = per.setdefault(t.what, [0, 0, 0, 0])
        row[0] += 1
        row[1] += int(ok_gg[k])
        row[2] += int(ok_m[k]) if ok_m is not None else 0
        row[3] += int(ok_c[k])
    table(["injected", "n", "gridgeo", "maup", "coverage_clean"],
          [[w, *v] for w, v in per.items()], "Restored per injected kind")  # fmt: skip
    summary["part1"] = (t_gg, t_m, ok_gg.sum(), None if ok_m is None else ok_m.sum())


# -- 2. the dirty demo ---------------------------------------------------------------
def part2() -> None:
    say(
        "\n"
        + "=" * 78
        + "\n2. The dirty demo (grid level scored; all levels repaired)\n"
        + "=" * 78
    )
    dirty, clean_system = load_demo("dirty"), load_demo()
    metric = dirty.metric_crs
    truth = load_truth("dirty").to_crs(metric)
    geometric = truth[
        ~truth["kind"].isin(["duplicate_code", "orphan"]) & (truth["level"] == "grid")
    ]
    clean = clean_system["grid"].to_crs(metric).geometry.to_numpy()
    codes = clean_system["grid"]["code"].to_numpy()
    groups = [[int(np.flatnonzero(codes == c)[0]) for c in r.codes.split(",")]
              for r in geometric.itertuples()]  # fmt: skip
    areas = shapely.area(geometric.geometry.to_numpy())
    t_prop, proposal = timed(lambda: propose_repair(dirty), FAST_RUNS)
    t_apply, fixed = timed(lambda: apply(proposal, "all"), FAST_RUNS)
    t_gg = t_prop + t_apply
    got = fixed["grid"].to_crs(metric).geometry.to_numpy()
    ok_gg = restored(got, clean, groups, areas)
    frame = dirty["grid"].to_crs(metric)
    towns = dirty["town"].to_crs(metric)
    t_m, got_m = run_maup(frame[["code", "parent_code", "geometry"]], towns)
    ok_m = restored(got_m, clean, groups, areas) if got_m is not None else None
    # The same job as gridgeo's: every level, each nested in the repaired level above.
    t_all, per_level, layers = run_maup_levels(dirty, metric)
    ok_all = restored(layers["grid"], clean, groups, areas) if layers else None
    t_c, got_c = run_clean(frame.geometry.to_numpy())
    ok_c = restored(got_c, clean, groups, areas)
    left = check_system(fixed, dual=False).errors
    report_rows("Results", t_gg, ok_gg.sum(), t_m, None if ok_m is None else ok_m.sum(), t_c,
                ok_c.sum(), len(groups), (f"{left} errors left", "nested in towns", ""))  # fmt: skip
    if t_all is not None:
        say(f"maup.smart_repair on every level, each nested in its repaired parent (gridgeo's "
            f"job): {t_all:.1f} s ("
            + ", ".join(f"{n} {t:.2f} s" for n, t in per_level.items())
            + f"), restored {int(ok_all.sum())}/{len(groups)} at grid level: "
            f"{t_all / t_gg:.1f}× gridgeo's time")  # fmt: skip
    say(f"gridgeo: propose {t_prop:.3f} s + apply {t_apply:.3f} s = {t_gg:.3f} s "
        f"(target < 1 s: {'met' if t_gg < 1 else 'NOT met'}); the check alone takes "
        f"{timed(lambda: check_system(dirty, dual=False), FAST_RUNS)[0]:.3f} s")  # fmt: skip
    rows = []
    for k, r in enumerate(geometric.itertuples()):
        rows.append([r.kind, r.codes[:27], f"{areas[k]:,.0f}", "yes" if ok_gg[k] else "no",
                     "—" if ok_m is None else ("yes" if ok_m[k] else "no"),
                     "yes" if ok_c[k] else "no"])  # fmt: skip
    table(["truth kind", "codes", "area m²", "gridgeo", "maup", "coverage_clean"], rows,
          "Per defect")  # fmt: skip
    audit = proposal.audit
    say(f"\ngridgeo audit: {len(audit)} rows, {int(audit['accepted'].sum())} accepted by "
        f"default; not by default: "
        + "; ".join(f"{r.kind} {r.area_m2:,.0f} m² ({r.reason})"
                    for r in audit[~audit['accepted']].itertuples()))  # fmt: skip
    summary["part2 grid level"] = (t_gg, t_m, ok_gg.sum(), None if ok_m is None else ok_m.sum())
    summary["part2"] = (t_gg, t_all, ok_gg.sum(), None if ok_all is None else ok_all.sum())


# -- 3. a real, defect-rich layer -----------------------------------------------------
def part3() -> None:
    say(
        "\n"
        + "=" * 78
        + "\n3. Real layer: Bayannur's counties, Tianditu and AMap mixed\n"
        + "=" * 78
    )
    import real_counties as rc

    tdt, _, mixed = rc.counties("1508")
    metric = rc.metric_for(rc.CRS, tdt.union_all())
    outline = shapely.coverage_union_all(tdt.geometry.to_numpy())
    config = GridConfig(
        root_code="1508", root_name="巴彦淖尔市",
        levels=(Level("city", "市", "city", 4, Coverage.ROOT),
                Level("county", "县", "county", 2, Coverage.FULL)),
        metric_crs=metric,
    )  # fmt: skip
    layers = {
        "city": gpd.GeoDataFrame({"code": ["1508"], "name": ["巴彦淖尔"], "parent_code": [""]},
                                 geometry=[outline], crs=rc.CRS),
        "county": mixed.assign(name=mixed["code"]),
    }  # fmt: skip
    system = GridSystem.from_layers(layers, config, strict=False)
    before = check_system(system, dual=False)
    t_p, proposal = timed(lambda: propose_repair(system), FAST_RUNS)
    t_a, fixed = timed(lambda: apply(proposal, "all"), FAST_RUNS)
    t_gg = t_p + t_a
    after = check_system(fixed, dual=False)
    again = propose_repair(fixed)  # idempotent: nothing left to propose
    kinds = after.defects.loc[after.defects["severity"] == "warning", "kind"].value_counts()
    left_warnings = ", ".join(f"{k} {v}" for k, v in kinds.items()) or "none"
    frame = mixed.to_crs(metric)
    parent = gpd.GeoDataFrame({"code": ["1508"]}, geometry=[outline], crs=rc.CRS).to_crs(metric)
    t_m, got_m = run_maup(frame, parent)
    t_c, got_c = run_clean(frame.geometry.to_numpy())

    def count(geoms) -> int | None:
        if geoms is None:
            return None
        layer = gpd.GeoDataFrame({"code": mixed["code"]}, geometry=geoms, crs=metric)
        d = check_layer(layer, within=parent, id="code").defects
        return int((d["severity"] == "error").sum())

    def errors(geoms):
        n = count(geoms)
        return "—" if n is None else f"{n} errors"

    rows = [["gridgeo propose + apply(all)", secs(t_gg), f"{after.errors} errors", "1.0×",
             f"{len(proposal.audit)} audit rows"],
            ["maup.smart_repair", secs(t_m), errors(got_m), ratio(t_m, t_gg), "nested in outline"],
            [f"coverage_clean(gap_width={GAP_WIDTH:g})", secs(t_c), errors(got_c), ratio(t_c, t_gg),
             "no outline"]]  # fmt: skip
    table(["tool", "time s", "left after", "time / gridgeo", "note"], rows,
          f"{len(mixed)} counties; before: {before.errors} errors "
          f"({', '.join(f'{k} {v}' for k, v in before.defects['kind'].value_counts().items())})")  # fmt: skip
    by = proposal.audit.groupby(["kind", "action"]).agg(rows=("kind", "size"),
                                                        area_m2=("area_m2", "sum"),
                                                        accepted=("accepted", "sum"))  # fmt: skip
    say(f"gridgeo: propose {t_p:.2f} s + apply {t_a:.2f} s; "
        f"{int((proposal.audit['status'] == 'refused').sum())} rows refused; "
        f"warnings left: {left_warnings}; re-proposing on the repaired layer: "
        f"{len(again)} rows (idempotent: {'yes' if len(again) == 0 else 'NO'})")  # fmt: skip
    say("\ngridgeo audit by kind:\n" + by.to_string())
    say(split_accuracy(proposal.audit, fixed["county"].to_crs(metric)))
    left_m = count(got_m)
    # "restored" here: minus the errors left, so fewer errors compare as more restored
    summary["part3"] = (t_gg, t_m, -after.errors, None if left_m is None else -left_m)


summary: dict = {}

if __name__ == "__main__":
    pd.set_option("display.width", 120)
    say(f"maup {getattr(maup, '__version__', 'not installed')}, shapely {shapely.__version__} "
        f"(GEOS {'.'.join(map(str, shapely.geos_version))})\n")  # fmt: skip
    part1()
    part2()
    part3()
    say("\n" + "=" * 78 + "\nRatios (maup.smart_repair time / gridgeo time)\n" + "=" * 78)
    for key, label in (
        ("part1", "900-grid layer"),
        ("part2", "dirty demo, every level (the same job)"),
        ("part2 grid level", "dirty demo, maup on the grid level only (less work than gridgeo's)"),
        ("part3", "Bayannur's counties (one level, nested in the outline)"),
    ):
        t_gg, t_m, r_gg, r_m = summary[key]
        if t_m is not None:
            verdict = "met" if t_m / t_gg >= 20 and r_gg >= r_m else "NOT met"
            score = (f"errors left {-r_gg} vs {-r_m}" if key == "part3"
                     else f"restored {r_gg} vs {r_m}")  # fmt: skip
            say(f"{label}: {t_m / t_gg:.1f}× faster, {score} "
                f"(target ≥ 20× with equal or better restoration: {verdict})")  # fmt: skip
