"""``gridgeo check``: a grid system, or one plain layer."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gridgeo.cli.options import (
    Output,
    check_inputs,
    check_outputs,
    prepared_output,
    read_config,
    read_input,
    write_text,
)
from gridgeo.cli.output import Ui, defect_table, print_borders, print_defects, print_kinds
from gridgeo.config import Role

__all__ = ["run_check"]


def run_check(args: argparse.Namespace, ui: Ui) -> int:
    from gridgeo.check import check_system
    from gridgeo.io import write_layer

    inputs = check_inputs({"grid system": args.data, "--within": _within_path(args.within)})
    out = Path(args.out) if args.out else None
    summary_path = (
        Path(args.summary)
        if args.summary
        else out.with_name(out.stem + ".summary.json")
        if out
        else None
    )
    outputs = []
    if out is not None:
        outputs.append(
            Output(
                "-o/--out",
                out,
                (".gpkg", ".geojson", ".json", ".parquet"),
                " Defects mix polygons, lines and points, which a Shapefile cannot hold.",
            )
        )
    if summary_path is not None:
        outputs.append(Output("--summary", summary_path, (".json",)))
    check_outputs(outputs, inputs)

    where = ("图层", "layer")
    if _plain_layer(args):
        report = _check_plain_layer(args, ui)
    else:
        config = read_config(args)
        district = config.role(Role.DISTRICT) or config.levels[0]
        where = (district.label_zh, district.label_en)
        system = read_input(
            args.data, config, strict=False, encoding=args.encoding, coords=args.coords
        )
        with ui.status("checking …"):
            report = check_system(system, dual=not args.no_dual and bool(config.dual_sources))
    for hint in report.hints:
        ui.err.print("注意 note:", hint, style="yellow", markup=False, highlight=False)
    payload = report.to_dict()
    if not report.crosswalk.empty:
        payload["crosswalk_rows"] = len(report.crosswalk)
    if ui.format == "json":
        ui.emit_json({**payload, "defects": defect_table(report.defects).to_dict("records")})
    elif ui.format == "csv":
        ui.emit_csv(defect_table(report.defects), index=False)
    else:
        print_defects(report.defects, args.limit, ui)
        summary = report.summary()
        if not summary.empty:
            print_kinds(summary, ui, where)
        print_borders(report.borders(), args.limit, ui)
    written = []
    if out is not None:
        write_layer(report.defects, prepared_output(out))
        written.append(str(out))
    if summary_path is not None:
        write_text(summary_path, json.dumps(payload, ensure_ascii=False, indent=2))
        written.append(str(summary_path))
    if written:
        ui.note(f"wrote {' and '.join(written)}")
    if ui.tables:
        ui.out.print(
            "[bold green]通过 passed[/]" if report.ok else f"[bold red]{report.errors} errors[/]"
        )
    return 0 if report.ok else 1


def _plain_layer(args: argparse.Namespace) -> bool:
    """One plain polygon layer (``--layer``, or a single-layer file) instead of a grid system."""
    path = Path(args.data)
    return args.layer is not None or (path.is_file() and path.suffix.lower() != ".gpkg")


def _within_path(value: str | None) -> str | None:
    """The file of ``--within FILE[:LAYER]``."""
    if value is None:
        return None
    file, _, layer = value.rpartition(":") if ":" in Path(value).name else (value, "", "")
    return file if layer else value


def _check_plain_layer(args: argparse.Namespace, ui: Ui):
    from gridgeo.check import check_layer
    from gridgeo.io import read_layer

    options = {"encoding": args.encoding, "coords": args.coords}
    frame = read_layer(args.data, args.layer, **options)
    outline = None
    if args.within:
        file = _within_path(args.within)
        layer = args.within[len(file) + 1 :] or None
        outline = read_layer(file, layer, **options)
    name = args.layer or Path(args.data).stem
    with ui.status(f"checking layer {name} …"):
        return check_layer(frame, within=outline, id=args.id, name=name)
