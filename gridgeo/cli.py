"""The ``gridgeo`` command: argument parsing and printing only.

Every subcommand calls the public API; errors a user can cause
(:class:`~gridgeo.errors.GridgeoError`) are printed without a traceback and
the command exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from gridgeo.errors import GridgeoError

__all__ = ["main"]

console = Console()
errors = Console(stderr=True)


def _table(frame: pd.DataFrame, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(frame.index.name or "")
    for column in frame.columns:
        table.add_column(str(column), justify="right")
    for index, row in frame.iterrows():
        table.add_row(str(index), *(_cell(v) for v in row))
    return table


def _cell(value) -> str:
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return "—"
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if isinstance(value, int | np.integer):
        return f"{value:,}"
    return str(value)


def _print_summary(system) -> None:
    summary = system.summary()
    console.print(
        _table(summary, f"{system.config.root_name} {system.config.root_code} — {system.origin}")
    )
    if "town" in system.levels and "workers" in system["town"]:
        towns = system["town"].set_index("code")[["name", "households", "residents", "workers"]]
        grids = system["grid"].groupby("parent_code").size().rename("grids")
        towns = towns.join(grids)
        towns["workers/grid"] = towns["workers"] / towns["grids"]
        towns["share %"] = 100 * towns["residents"] / towns["residents"].sum()
        console.print(_table(towns, "苏木镇 towns"))


def _cmd_info(args: argparse.Namespace) -> int:
    from gridgeo.io import read_system

    system = read_system(args.data, strict=not args.lenient)
    _print_summary(system)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gridgeo import demo
    from gridgeo.assign import assign, build_index
    from gridgeo.check import check_system
    from gridgeo.io import write_layer

    out = Path(args.out)
    if args.regenerate:
        with console.status("generating the demo dataset into data/ …"):
            demo.write_demo(args.data_dir)
        console.print(f"wrote the demo dataset under {args.data_dir}")
    system = demo.load_demo(data_dir=args.data_dir)
    _print_summary(system)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    with console.status("checking the banner and its dirty variant …"):
        clean = check_system(system)
        dirty = check_system(demo.load_demo("dirty", data_dir=args.data_dir))
    write_layer(dirty.defects, out / "dirty_defects.gpkg")
    write_layer(clean.defects, out / "dual_grid_findings.gpkg")
    written += ["dirty_defects.gpkg", "dual_grid_findings.gpkg"]
    console.print(
        f"check: clean banner {clean.errors} errors ({len(clean.defects)} dual-grid findings); "
        f"dirty variant {dirty.errors} errors in {len(dirty.defects)} findings"
    )

    homes = demo.households(system, progress=True)
    events = demo.incidents(system, homes)
    with console.status("assigning households and incidents to grids …"):
        index = build_index(system)
        homes = assign(homes, system, index=index)
        events = assign(events, system, index=index)
    _print_assignment(homes)
    write_layer(homes, out / "households.parquet")
    write_layer(events, out / "incidents.parquet")
    written += ["households.parquet", "incidents.parquet"]
    summary = {
        "levels": {k: int(v) for k, v in system.counts().items()},
        "households": len(homes),
        "residents": int(homes["size"].sum()),
        "households_by_assignment": _counts(homes["assign_status"]),
        "incidents": len(events),
        "incidents_by_status": _counts(events["status"]),
        "incidents_by_assignment": _counts(events["assign_status"]),
        "check": {"clean": clean.to_dict(), "dirty": dirty.to_dict()},
    }
    summary.update(_demo_stats(system, homes, events, out, written))
    from gridgeo.io import write_html
    from gridgeo.maps import coverage_map, render_html

    with console.status("drawing the coverage map …"):
        m = coverage_map(system, households=homes, incidents=events, defects=dirty.defects)
        write_html(render_html(m), out / "coverage_map.html")
    written.append("coverage_map.html")
    (out / "demo_summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    written.append("demo_summary.json")
    console.print(f"wrote to {out}/: {', '.join(written)}")
    return 0


def _counts(values) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().items() if v}


def _demo_stats(system, homes, events, out: Path, written: list[str]) -> dict:
    """Workload and incident tables for the demo (gridgeo.stats), when available."""
    try:
        from gridgeo import stats
    except ImportError:  # pragma: no cover - stats ships with the package
        return {}
    from gridgeo.io import write_table

    per_grid = stats.households_per_grid(homes, system)
    write_table(per_grid, out / "grid_workload.csv")
    written.append("grid_workload.csv")
    levels = stats.escalation_level(events).value_counts()
    return {
        "grids_outside_household_norm": len(stats.outside_norm(per_grid)),
        "incidents_by_handling_level": {str(k): int(v) for k, v in levels.items()},
        "overdue_incidents": len(stats.overdue(events)),
    }


def _print_defects(defects, limit: int) -> None:
    if defects.empty:
        console.print("[bold green]无缺陷 no defects found[/]")
        return
    table = Table(title=f"缺陷 defects ({len(defects)})", title_justify="left")
    for column in ("severity", "kind", "level", "codes", "area m²", "width m", "message"):
        table.add_column(column, overflow="fold")
    colours = {"error": "red", "warning": "yellow", "info": "cyan"}
    for row in defects.head(limit).itertuples():
        table.add_row(
            f"[{colours[row.severity]}]{row.severity}[/]",
            row.kind,
            row.level,
            row.codes,
            f"{row.area_m2:,.1f}",
            f"{row.width_m:,.2f}",
            row.message_zh,
        )
    console.print(table)
    if len(defects) > limit:
        console.print(f"… {len(defects) - limit} more (see --out)")


def _cmd_check(args: argparse.Namespace) -> int:
    from gridgeo.check import check_system
    from gridgeo.io import read_system, write_layer

    system = read_system(args.data, strict=False)
    with console.status("checking …"):
        report = check_system(system, dual=not args.no_dual)
    _print_defects(report.defects, args.limit)
    summary = report.summary()
    if not summary.empty:
        console.print(_table(summary, "每类缺陷按苏木镇统计 defects per kind and town"))
    if args.out:
        out = Path(args.out)
        write_layer(report.defects, out)
        summary_path = Path(args.summary) if args.summary else out.with_suffix(".summary.json")
        payload = report.to_dict()
        if not report.crosswalk.empty:
            payload["crosswalk_rows"] = len(report.crosswalk)
        summary_path.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
        console.print(f"wrote {out} and {summary_path}")
    verdict = "[bold green]通过 passed[/]" if report.ok else f"[bold red]{report.errors} errors[/]"
    console.print(verdict)
    return 0 if report.ok else 1


def _cmd_assign(args: argparse.Namespace) -> int:
    from gridgeo.assign import assign
    from gridgeo.io import read_points, read_system, write_layer, write_table

    system = read_system(args.grids)
    points = read_points(args.points, lon=args.lon, lat=args.lat, crs=args.crs)
    with console.status(f"assigning {len(points):,} points …"):
        result = assign(
            points,
            system,
            coords=args.coords,
            on_overlap=args.on_overlap,
            gap_tolerance=args.gap_tolerance,
        )
    _print_assignment(result)
    out = Path(args.out)
    if out.suffix.lower() == ".csv":
        write_table(result, out)
    else:
        write_layer(result, out)
    console.print(f"wrote {len(result):,} rows to {out}")
    return 0


def _print_assignment(result) -> None:
    counts = (
        result["assign_status"]
        .value_counts()
        .reindex(result["assign_status"].cat.categories, fill_value=0)
    )
    frame = pd.DataFrame({"rows": counts, "share %": 100 * counts / max(len(result), 1)})
    frame.index.name = "status"
    console.print(_table(frame, "分配结果 assignment"))
    reasons = result.loc[result["assign_status"] != "inside", "assign_reason"].value_counts()
    reasons = reasons[reasons > 0]
    if len(reasons):
        console.print(_table(reasons.to_frame("rows"), "原因 reasons (not inside)"))


def _cmd_map(args: argparse.Namespace) -> int:
    from gridgeo.assign import assign, build_index
    from gridgeo.check import check_system
    from gridgeo.io import read_points, read_system, write_html
    from gridgeo.maps import coverage_map, render_html

    system = read_system(args.data, strict=False)
    index = None
    homes = events = defects = None
    if args.households or args.incidents:
        index = build_index(system)
    if args.households:
        homes = assign(read_points(args.households), system, index=index)
    if args.incidents:
        events = assign(read_points(args.incidents), system, index=index)
    if args.check:
        with console.status("checking …"):
            defects = check_system(system).defects
    m = coverage_map(
        system,
        households=homes,
        incidents=events,
        defects=defects,
        language=args.language,
        tiles=args.tiles,
        tiles_key=args.tiles_key,
        tiles_crs=args.tiles_crs,
        layers=tuple(args.layers.split(",")) if args.layers else None,
    )
    path = write_html(render_html(m), args.out)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, works offline)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="gridgeo",
        description="网格化治理 GIS: grid systems, coverage checks, assignment and maps.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the main job end to end on the embedded banner dataset")
    p.add_argument("--out", default="outputs", help="folder for the outputs (default: outputs)")
    p.add_argument(
        "--data-dir", default=None, help="demo data folder (default: the package's data/)"
    )
    p.add_argument(
        "--regenerate", action="store_true", help="regenerate the committed demo data first"
    )
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "check",
        help="validate every level (gaps, overlaps, slivers, codes) and the dual grid; exit 1 on errors",
    )
    p.add_argument("data", help="folder of Shapefiles, GeoPackage, or folder of GeoParquet files")
    p.add_argument(
        "-o", "--out", help="write the defects here (.gpkg or .geojson) plus a JSON summary"
    )
    p.add_argument("--summary", help="path of the JSON summary (default: beside --out)")
    p.add_argument("--no-dual", action="store_true", help="skip the dual-grid (双网合一) check")
    p.add_argument("--limit", type=int, default=40, help="rows of the table to print (default 40)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser(
        "assign", help="assign points (households, incidents) to grids at every level"
    )
    p.add_argument("points", help="CSV / Excel with longitude and latitude columns, or a GIS file")
    p.add_argument(
        "--grids", required=True, help="the grid system (Shapefile folder, .gpkg, Parquet folder)"
    )
    p.add_argument(
        "-o", "--out", required=True, help="output: .gpkg, .parquet or .csv (UTF-8 with BOM)"
    )
    p.add_argument("--lon", help="longitude column (default: detected: lon, lng, 经度, x …)")
    p.add_argument("--lat", help="latitude column (default: detected: lat, 纬度, y …)")
    p.add_argument(
        "--crs", default="EPSG:4326", help="CRS of a table's coordinates (default EPSG:4326)"
    )
    p.add_argument(
        "--coords",
        choices=["wgs84", "cgcs2000", "gcj02", "bd09"],
        help="GCJ-02 / BD-09 app coordinates",
    )
    p.add_argument("--on-overlap", choices=["rule", "review"], default="rule")
    p.add_argument(
        "--gap-tolerance",
        type=float,
        default=200.0,
        help="metres to suggest a grid for a point in a gap",
    )
    p.set_defaults(func=_cmd_assign)

    p = sub.add_parser("map", help="write a self-contained HTML coverage map")
    p.add_argument("data", help="the grid system (Shapefile folder, .gpkg, Parquet folder)")
    p.add_argument("-o", "--out", required=True, help="the HTML file to write")
    p.add_argument(
        "--households", help="household points (table or GIS file): heat and workload views"
    )
    p.add_argument("--incidents", help="incident points: heat, open incidents and rate views")
    p.add_argument("--check", action="store_true", help="run the check and draw the defects")
    p.add_argument("--language", choices=["zh", "en"], default="zh")
    p.add_argument(
        "--tiles", help="base map: osm, tianditu (with --tiles-key), amap, or an XYZ URL"
    )
    p.add_argument("--tiles-key", help="key for tiles that need one (Tianditu)")
    p.add_argument(
        "--tiles-crs", choices=["wgs84", "gcj02"], default="wgs84", help="CRS of a custom tile URL"
    )
    p.add_argument("--layers", help="comma-separated layers to include (default: all available)")
    p.set_defaults(func=_cmd_map)

    p = sub.add_parser("info", help="load a grid system and print its summary")
    p.add_argument("data", help="folder of Shapefiles, GeoPackage, or folder of GeoParquet files")
    p.add_argument("--lenient", action="store_true", help="do not reject code defects on load")
    p.set_defaults(func=_cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gridgeo`` console command."""
    args = build_parser().parse_args(argv)
    if getattr(args, "data_dir", "x") is None:
        from gridgeo.demo import DATA_DIR

        args.data_dir = DATA_DIR
    try:
        return args.func(args)
    except GridgeoError as exc:
        # markup=False: messages quote user data, which may contain [brackets].
        errors.print("错误 error:", style="bold red", end=" ")
        errors.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
