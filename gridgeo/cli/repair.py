"""``gridgeo repair``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from gridgeo.cli.options import (
    Output,
    add_command,
    check_inputs,
    check_outputs,
    format_option,
    prepared_output,
    read_config,
    read_input,
    system_options,
)
from gridgeo.cli.output import Ui

__all__ = ["repair_parser"]

# -- repair -------------------------------------------------------------------------------------
_AUDIT_SHOWN = ["level", "kind", "action", "from_code", "to_code", "area_m2", "accepted"]


def _cmd_repair(args: argparse.Namespace, ui: Ui) -> int:
    from gridgeo.check import check_system
    from gridgeo.io import write_layer, write_system, write_table
    from gridgeo.repair import apply, propose_repair

    inputs = check_inputs({"grid system": args.data, "--households": args.households})
    out = Path(args.out)
    outputs = [
        Output(
            "-o/--out",
            out,
            (".gpkg", ".parquet", ""),
            " Give a .gpkg file, a .parquet folder, or a folder name for Shapefiles.",
        )
    ]
    if args.audit:
        outputs.append(Output("--audit", Path(args.audit), (".csv", ".gpkg")))
    check_outputs(outputs, inputs)
    config = read_config(args)
    system = read_input(args.data, config, strict=False, encoding=args.encoding, coords=args.coords)
    homes = None
    if args.households:
        from gridgeo.io import read_layer

        homes = read_layer(args.households)
    with ui.status("checking and proposing a repair …"):
        report = check_system(system, dual=False)
        proposal = propose_repair(system, report, rule=args.rule, fill=args.fill,
                                  households=homes)  # fmt: skip
        repaired = apply(proposal, args.accept)
        after = check_system(repaired, dual=False)
    audit = proposal.audit
    chosen = audit["accepted"] if args.accept == "small" else audit["status"] != "refused"
    summary = {
        "rows": len(audit),
        "accepted": int(chosen.sum()),
        "for_review": int((~chosen).sum()),
        "refused": int((audit["status"] == "refused").sum()),
        "errors_before": report.errors,
        "errors_after": after.errors,
        "ok": after.ok,
    }
    if ui.format == "json":
        ui.emit_json({**summary, "audit": pd.DataFrame(audit.drop(columns="geometry"))
                      .reset_index().to_dict("records")})  # fmt: skip
    elif ui.format == "csv":
        ui.emit_csv(pd.DataFrame(audit.drop(columns="geometry")))
    else:
        table = proposal.summary().reset_index()
        if not table.empty:
            ui.show(table.set_index("level"), f"修复建议 repair proposal ({len(audit)} changes)")
            shown = pd.DataFrame(audit[_AUDIT_SHOWN]).head(args.limit)
            shown["area_m2"] = shown["area_m2"].round(1)
            ui.show(shown, "变更 changes (--audit for all, with the reasons)")
        else:
            ui.note("[bold green]无需修复 nothing to repair[/]")
    write_system(repaired, prepared_output(out))
    written = [str(out)]
    if args.audit:
        path = Path(args.audit)
        if path.suffix.lower() == ".gpkg":
            write_layer(audit.reset_index(), prepared_output(path))
        else:
            write_table(pd.DataFrame(audit.drop(columns="geometry")).reset_index(), path)
        written.append(str(path))
    ui.note(f"wrote {' and '.join(written)}")
    if ui.tables:
        ui.out.print(
            f"[bold green]已修复 repaired: {summary['accepted']} changes applied, checks clean[/]"
            if after.ok
            else f"[bold yellow]{after.errors} errors remain for review "
            f"({summary['for_review']} proposed changes not applied; --accept all applies them)[/]"
        )
    return 0 if after.ok else 1


def repair_parser(sub) -> None:
    from gridgeo.repair import FILLS

    p = add_command(
        sub,
        "repair",
        "propose and apply repairs of gaps, overlaps, slivers and codes",
        "Checks a grid system and proposes one change per defect piece: invalid\n"
        "polygons made valid, parts outside the parent cut off, overlaps kept by one grid\n"
        "(--rule), slivers and gaps given to the grids along them, duplicate codes\n"
        "renumbered, orphans given the parent that holds them. Writes the repaired system\n"
        "to -o (DATA is never modified) and the audit table to --audit. Gaps and overlaps\n"
        "10 m wide or more are applied only with --accept all. Exit 0 when the result\n"
        "checks clean, 1 when defects remain for review.",
        "  gridgeo repair dirty.gpkg -o repaired.gpkg --audit audit.csv\n"
        "  gridgeo repair dirty.gpkg -o repaired.gpkg --accept all --rule largest_area\n"
        "  gridgeo repair data/shapefiles -o repaired --format json > proposal.json\n",
    )
    p.add_argument("data", help="grid system (folder of Shapefiles, GeoPackage, GeoParquet folder)")
    p.add_argument(
        "-o",
        "--out",
        required=True,
        help="where to write the repaired system (.gpkg, .parquet folder, or a folder of "
        "Shapefiles); never DATA",
    )
    p.add_argument("--audit", help="write the audit table here (.csv, or .gpkg with the pieces)")
    p.add_argument(
        "--accept",
        choices=["small", "all"],
        default="small",
        help="small (default): apply what is below the defect tolerance; all: every change",
    )
    p.add_argument(
        "--rule",
        choices=["longest_border", "largest_area", "lowest_code", "households"],
        default="longest_border",
        help="who keeps an overlap: the grid with the longest shared border (default), the "
        "larger grid, the lower code, or the grid its households are registered to "
        "(needs --households, or a units layer in DATA)",
    )
    p.add_argument(
        "--households",
        metavar="POINTS",
        help="household points (GIS file, one household per row, with a grid_code or "
        "registered_grid column): counted per change, and used by --rule households",
    )
    p.add_argument(
        "--fill",
        choices=list(FILLS),
        default="auto",
        help="gaps: split among the grids along them, or whole to the longest border "
        "(default auto: slivers whole, wider gaps split)",
    )
    p.add_argument("--limit", type=int, default=20, help="changes printed (default 20)")
    system_options(p)
    format_option(p)
    p.set_defaults(func=_cmd_repair)
