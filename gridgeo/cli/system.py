"""``gridgeo info``, ``gridgeo demo`` and ``gridgeo init``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from gridgeo.cli.assign import Tally, print_assignment
from gridgeo.cli.options import (
    LEVEL_HEADERS,
    Output,
    check_inputs,
    check_outputs,
    read_config,
    read_input,
    write_text,
)
from gridgeo.cli.output import Ui
from gridgeo.errors import DataFileError

__all__ = ["run_demo", "run_info", "run_init"]


def _towns(system) -> pd.DataFrame | None:
    """The districts (the banner's towns) with their staffing, when the attributes carry it."""
    from gridgeo.config import Role

    town, grid = system.config.role_name(Role.DISTRICT), system.config.role_name(Role.WORKLOAD)
    if town is None or grid is None:
        return None
    columns = ["name", "households", "residents", "workers"]
    if any(c not in system[town] for c in columns):
        return None
    towns = system[town].set_index("code")[columns]
    towns = towns.join(system[grid].groupby("parent_code").size().rename("grids"))
    towns["workers_per_grid"] = towns["workers"] / towns["grids"]
    towns["residents_share_pct"] = 100 * towns["residents"] / towns["residents"].sum()
    return towns


def _print_summary(system, ui: Ui) -> None:
    summary = system.summary().rename(columns=LEVEL_HEADERS)
    ui.show(summary, f"{system.config.root_name} {system.config.root_code} — {system.origin}")
    towns = _towns(system)
    if towns is not None:
        # 80 columns: the residents' share is left to --format json/csv.
        shown = towns[["name", "households", "residents", "grids", "workers", "workers_per_grid"]]
        from gridgeo.config import Role

        district = system.config.role(Role.DISTRICT)
        ui.show(shown.rename(columns={"workers_per_grid": "per grid"}), district.label)


def _system_payload(system) -> dict:
    summary = system.summary()
    towns = _towns(system)
    return {
        "root": system.config.root_name,
        "code": system.config.root_code,
        "origin": system.origin,
        "levels": {k: dict(v) for k, v in summary.to_dict(orient="index").items()},
        "towns": [] if towns is None else towns.reset_index().to_dict(orient="records"),
    }


def run_info(args: argparse.Namespace, ui: Ui) -> int:
    check_inputs({"grid system": args.data})
    system = read_input(
        args.data,
        read_config(args),
        strict=not args.lenient,
        encoding=args.encoding,
        coords=args.coords,
    )
    if ui.format == "json":
        ui.emit_json(_system_payload(system))
    elif ui.format == "csv":
        ui.emit_csv(system.summary())
    else:
        _print_summary(system, ui)
    return 0


# -- demo ---------------------------------------------------------------------------------------
_DEMO_FILES = (
    "dirty_defects.gpkg",
    "dual_grid_findings.gpkg",
    "households.parquet",
    "incidents.parquet",
    "households.csv",
    "incidents.csv",
    "grid_workload.csv",
    "coverage_map.html",
    "demo_summary.json",
)


def run_demo(args: argparse.Namespace, ui: Ui) -> int:
    from gridgeo import demo
    from gridgeo.assign import assign, build_index
    from gridgeo.check import check_system
    from gridgeo.io import write_html, write_layer, write_table
    from gridgeo.maps import coverage_map, render_html

    out = Path(args.out)
    data_dir = Path(args.data_dir)
    outputs = [Output("--out", out, ())]
    outputs += [Output("--out", out / name, (Path(name).suffix,)) for name in _DEMO_FILES]
    check_outputs(outputs, [] if args.regenerate else [data_dir])
    if args.regenerate:
        with ui.status(f"generating the demo dataset into {data_dir} …"):
            demo.write_demo(data_dir)
        ui.note(f"wrote the demo dataset under {data_dir}")
    system = demo.load_demo(data_dir=data_dir)
    _print_summary(system, ui)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    with ui.status("checking the demo and its dirty variant …"):
        clean = check_system(system)
        dirty = check_system(demo.load_demo("dirty", data_dir=data_dir))
    write_layer(dirty.defects, out / "dirty_defects.gpkg")
    write_layer(clean.defects, out / "dual_grid_findings.gpkg")
    written += ["dirty_defects.gpkg", "dual_grid_findings.gpkg"]
    ui.note(
        f"check: clean demo {clean.errors} errors ({len(clean.defects)} dual-grid findings); "
        f"dirty variant {dirty.errors} errors in {len(dirty.defects)} findings"
    )

    homes = demo.households(system, progress=ui.tables)
    events = demo.incidents(system, homes)
    with ui.status("assigning households and incidents to grids …"):
        index = build_index(system)
        homes = assign(homes, system, index=index)
        events = assign(events, system, index=index)
    print_assignment(Tally.of(homes), ui)
    for name, frame in (("households", homes), ("incidents", events)):
        write_layer(frame, out / f"{name}.parquet")
        write_table(frame, out / f"{name}.csv")  # for `gridgeo assign` / `gridgeo map`
        written += [f"{name}.parquet", f"{name}.csv"]
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

    with ui.status("drawing the coverage map …"):
        # The clean banner's own findings: the dirty variant's defects belong to another system.
        m = coverage_map(system, households=homes, incidents=events, defects=clean.defects)
        write_html(render_html(m), out / "coverage_map.html")
    written.append("coverage_map.html")
    write_text(out / "demo_summary.json", json.dumps(summary, ensure_ascii=False, indent=2))
    written.append("demo_summary.json")
    if ui.format == "json":
        ui.emit_json(summary)
    ui.note(f"wrote to {out}/: {', '.join(written)}")
    return 0


def _counts(values) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().items() if v}


def _demo_stats(system, homes, events, out: Path, written: list[str]) -> dict:
    """Workload and incident tables for the demo (gridgeo.stats)."""
    from gridgeo import stats
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


# -- init ---------------------------------------------------------------------------------------
def run_init(args: argparse.Namespace, ui: Ui) -> int:
    from gridgeo.config import GridConfig
    from gridgeo.io import read_layer
    from gridgeo.io.formats import folder_layers, gpkg_layers

    inputs = check_inputs({"data": args.data})
    out = Path(args.out)
    check_outputs([Output("-o/--out", out, (".toml",))], inputs)
    path = Path(args.data)
    if path.is_file():
        if path.suffix.lower() != ".gpkg":
            raise DataFileError(
                f"{path}: gridgeo init reads a GeoPackage (.gpkg) or a folder of "
                "Shapefiles or GeoParquet files; give one of those."
            )
        files = {name: (path, name) for name in gpkg_layers(path)}
    else:
        files = {name: (file, None) for name, file in folder_layers(path).items()}
    layers = {
        name: read_layer(file, layer, encoding=args.encoding)
        for name, (file, layer) in files.items()
    }
    config = GridConfig.infer(layers)
    write_text(out, config.to_toml())
    levels = " → ".join(f"{lv.name} ({lv.code_width})" for lv in config.levels)
    ui.note(f"wrote {out}: {levels}; check the guesses, then pass --config {out}")
    return 0
