"""Benchmark gridgeo.plan: deriving grids, editing Wulashan, comparing plans.

Run from the repository root::

    python benchmarks/bench_plan.py            # ~1 minute on 2 cores
    python benchmarks/bench_plan.py --repeat 3 # fewer repetitions per operation

All in one run, on the demo banner with its shipped unit layer
(``load_demo(units=True)``: 662 grids, 897 micro-grids, ~20k units):

1. **Derive**: ``Plan.from_system`` (unit graph included), then every grid and
   micro-grid polygon derived from the units (``plan.grids`` /
   ``plan.micro_grids`` with an empty cache), against what a user would
   otherwise write: ``units.dissolve("grid_code")`` (geopandas, unary union)
   and ``dissolve(..., method="coverage")``. Target: < 1 s for all 662 grids.
2. **Operations on Wulashan** (乌拉山镇, 150823100, the largest town): move a
   boundary unit, split a grid in two, merge two neighbours, refine, dissolve
   micro-grids, set an attribute, lock; each timed with the touched grids'
   polygons derived (what a planner then sees). Median of ``--repeat`` runs.
   Target: < 100 ms each.
3. **Compare**: ``compare(plan, edited)`` banner-wide, without and with the
   ~100k demo households. Target: < 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _report import ratio, say, secs, table

from gridgeo import load_demo
from gridgeo.demo import households
from gridgeo.errors import PlanWarning
from gridgeo.plan import Plan, compare

TOWN = "150823100"


def timed(fn, repeat: int = 1):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per operation (median)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", PlanWarning)

    system = load_demo(units=True)
    units = system.sources["units"]
    say(
        f"demo: {len(system['grid'])} grids, {len(system['micro_grid'])} micro-grids, "
        f"{len(units):,} units"
    )

    # 1. derive
    t_build, plan = timed(lambda: Plan.from_system(system))

    def derive():
        plan._shapes.clear()
        return len(plan.grids), len(plan.micro_grids)

    t_derive, _ = timed(derive, 3)
    t_unary, _ = timed(lambda: units.dissolve("grid_code"), 1)
    t_cov, _ = timed(lambda: units.dissolve("grid_code", method="coverage"), 3)
    table(
        ["step", "seconds", "vs gridgeo"],
        [
            ["Plan.from_system (units, graph)", secs(t_build), ""],
            ["gridgeo: derive 662 grids + 897 micro-grids", secs(t_derive), "1×"],
            ["geopandas dissolve (unary), grids only", secs(t_unary), ratio(t_unary, t_derive)],
            ["geopandas dissolve (coverage), grids only", secs(t_cov), ratio(t_cov, t_derive)],
        ],
        "1. derive (target < 1 s)",
    )

    # 2. operations on Wulashan
    grids = plan.grids
    town = grids[grids["parent_code"] == TOWN]
    refined = set(plan.micro_table["parent_code"])
    plain = town[~town["code"].isin(refined)]
    graph = plan._units.graph
    # a boundary unit of a plain grid whose move keeps both grids contiguous
    move_args = None
    for code in plain["code"]:
        members = [int(p) for p in (plan.workload == code).nonzero()[0]]
        for p in members:
            others = {plan.workload[n] for n in graph.neighbors(p)} - {code}
            others = [o for o in others if o in set(plain["code"])]
            if not others:
                continue
            try:
                plan.move([plan._units.ids[p]], to=others[0])
            except Exception:
                continue
            move_args = ([plan._units.ids[p]], others[0])
            break
        if move_args:
            break
    pair = None
    for a in plain["code"]:
        for b in plain["code"]:
            if a < b:
                try:
                    plan.merge([a, b])
                except Exception:
                    continue
                pair = [a, b]
                break
        if pair:
            break
    big = town.sort_values("households").iloc[-1]["code"]
    plain_big = plain.sort_values("households").iloc[-1]["code"]
    refined_one = sorted(refined & set(town["code"]))[0]

    def op(fn):
        def run():
            new = fn()
            touched = new.steps[-1].touched
            new._geometry([c for c in touched if c in new.grid_table.index], new.workload)
            return new

        return run

    ops = [
        ("move 1 unit", op(lambda: plan.move(*move_args[:1], to=move_args[1]))),
        (f"split {big} in 2", op(lambda: plan.split(big, parts=2))),
        (f"merge {pair[0]} + {pair[1]}", op(lambda: plan.merge(pair))),
        (f"refine {plain_big} in 3", op(lambda: plan.refine(plain_big, parts=3))),
        (f"dissolve_micro {refined_one}", op(lambda: plan.dissolve_micro(refined_one))),
        ("set leader", op(lambda: plan.set(big, leader="王伟"))),
        ("lock 3 grids", op(lambda: plan.lock(list(town["code"][:3])))),
    ]
    rows = []
    for name, fn in ops:
        t, _ = timed(fn, args.repeat)
        rows.append([name, f"{t * 1000:.1f}", "yes" if t < 0.1 else "NO"])
    table(["operation on Wulashan", "ms (median)", "< 100 ms"], rows, "2. operations")

    # 3. compare
    edited = plan.move(*move_args[:1], to=move_args[1]).split(big, parts=2).merge(pair)
    homes = households(system)
    t_cmp, c = timed(lambda: compare(plan, edited), 3)
    t_pts, c2 = timed(lambda: compare(plan, edited, households=homes), 1)
    table(
        ["compare, banner-wide", "seconds", "result"],
        [
            ["grids and units", secs(t_cmp), repr(c)],
            [f"… with {len(homes):,} households", secs(t_pts), f"{len(c2.households)} change grid"],
        ],
        "3. compare (target < 1 s)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
