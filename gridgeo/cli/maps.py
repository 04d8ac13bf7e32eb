"""``gridgeo map``."""

from __future__ import annotations

import argparse
from pathlib import Path

from gridgeo.cli.options import (
    Output,
    check_inputs,
    check_outputs,
    map_layers,
    prepared_output,
    read_config,
    read_input,
)
from gridgeo.cli.output import Ui

__all__ = ["run_map"]


# -- map ----------------------------------------------------------------------------------------
def run_map(args: argparse.Namespace, ui: Ui) -> int:
    from gridgeo.assign import assign, build_index
    from gridgeo.check import check_system
    from gridgeo.io import read_points, write_html
    from gridgeo.maps import coverage_map, render_html

    inputs = check_inputs(
        {
            "grid system": args.data,
            "--households": args.households,
            "--incidents": args.incidents,
        }
    )
    layers = map_layers(args.layers)
    out = Path(args.out)
    check_outputs([Output("-o/--out", out, (".html", ".htm"))], inputs)

    system = read_input(
        args.data, read_config(args), strict=False, encoding=args.encoding, coords=args.coords
    )
    index = None
    homes = events = defects = None
    if args.households or args.incidents:
        index = build_index(system)
    if args.households:
        homes = assign(
            read_points(args.households, encoding=args.points_encoding), system, index=index
        )
    if args.incidents:
        events = assign(
            read_points(args.incidents, encoding=args.points_encoding), system, index=index
        )
    if args.check:
        with ui.status("checking …"):
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
        layers=layers,
    )
    path = write_html(render_html(m), prepared_output(out))
    if args.tiles:
        offline = f"the {args.tiles} base map needs the network when the page is opened"
    else:
        offline = "works offline"
    ui.note(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {offline})")
    return 0
