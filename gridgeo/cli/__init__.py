"""The ``gridgeo`` command: argument parsing and printing only.

Every subcommand calls the public API; errors a user can cause
(:class:`~gridgeo.errors.GridgeoError`) are printed without a traceback and
the command exits 2 (exit 1 means "defects found", from ``gridgeo check``).
Messages name command-line flags (:func:`gridgeo.errors.cli_voice`).

Every output path is checked before any work starts: its folder must be
writable, it must not be a folder, an input, or inside (or around) one, and
its suffix must be one the command writes. Tables fit an 80-column terminal;
``--format json`` or ``--format csv`` prints machine-readable results on
stdout instead, with every other message on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from rich.console import Console

import gridgeo
from gridgeo.cli.assign import CHUNK_ROWS, run_assign
from gridgeo.cli.check import run_check
from gridgeo.cli.maps import run_map
from gridgeo.cli.options import (
    CONFIG_HELP,
    COORDS_HELP,
    ENCODING_HELP,
    Parser,
    add_command,
    format_option,
    layers_help,
    system_options,
)
from gridgeo.cli.output import Ui
from gridgeo.cli.plan import (
    run_plan_diff,
    run_plan_export,
    run_plan_log,
    run_plan_show,
    run_rebalance,
)
from gridgeo.cli.repair import repair_parser
from gridgeo.cli.system import run_demo, run_info, run_init
from gridgeo.errors import GridgeoError, cli_voice

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = Parser(
        prog="gridgeo",
        description="网格化治理 GIS: grid systems, coverage checks, assignment and maps.",
        epilog="exit codes: 0 done, 1 defects found (check), 2 a problem with the input "
        "or an option (the message says which).",
    )
    parser.add_argument("--version", action="version", version=f"gridgeo {gridgeo.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = add_command(
        sub,
        "demo",
        "run the main job end to end on the embedded banner dataset",
        "Loads the Urad Front Banner demo (乌拉特前旗), checks it and its dirty variant,\n"
        "assigns synthetic households and incidents, and writes the results, the\n"
        "households and incidents as CSV and GeoParquet, and an offline coverage map.",
        "  gridgeo demo\n"
        "  gridgeo demo --out results\n"
        "  gridgeo assign outputs/households.csv --grids data/shapefiles -o homes.gpkg\n",
    )
    p.add_argument("--out", default="outputs", help="folder for the outputs (default: outputs)")
    p.add_argument(
        "--data-dir", default=None, help="demo data folder (default: the package's data/)"
    )
    p.add_argument(
        "--regenerate", action="store_true", help="regenerate the committed demo data first"
    )
    format_option(p, ("table", "json"))
    p.set_defaults(func=run_demo)

    p = add_command(
        sub,
        "check",
        "validate every level (gaps, overlaps, slivers, codes) and the dual grid",
        "Checks every level of a grid system: gaps, overlaps, slivers, parts outside\n"
        "the parent, invalid geometry, duplicate or malformed codes, and the dual grid\n"
        "(双网合一) against its source layers. With --layer (or a single .shp file) it\n"
        "checks one plain polygon layer instead: invalid geometry, overlaps, gaps (holes,\n"
        "or against --within), slivers, multiparts, edge mismatches. Exit 1 on errors.",
        "  gridgeo check data/shapefiles\n"
        "  gridgeo check banner.gpkg -o defects.gpkg --summary defects.json\n"
        "  gridgeo check banner.gpkg --format csv > defects.csv\n"
        "  gridgeo check parcels.shp --id PARCEL_ID\n"
        "  gridgeo check city.gpkg --layer streets --within city.gpkg:boundary\n",
    )
    p.add_argument(
        "data",
        help="grid system (folder of Shapefiles, GeoPackage, folder of GeoParquet "
        "files), or one polygon layer file",
    )
    p.add_argument(
        "-o",
        "--out",
        help="write the defects here (.gpkg, .geojson or .parquet) plus a JSON summary",
    )
    p.add_argument(
        "--summary", help="path of the JSON summary (default: beside --out, ….summary.json)"
    )
    p.add_argument("--no-dual", action="store_true", help="skip the dual-grid (双网合一) check")
    p.add_argument(
        "--layer",
        help="check this one plain polygon layer (no codes, no hierarchy) of a GeoPackage; "
        "a .shp, .geojson or .parquet file is always checked as one plain layer",
    )
    p.add_argument(
        "--within",
        metavar="OUTLINE",
        help="plain layer: the outline it must cover (a file, or FILE.gpkg:LAYER); gaps "
        "open to its edge and parts beyond it are reported",
    )
    p.add_argument(
        "--id", metavar="COLUMN", help="plain layer: the column naming its polygons (default: row)"
    )
    p.add_argument("--limit", type=int, default=40, help="rows of the table to print (default 40)")
    system_options(p)
    format_option(p)
    p.set_defaults(func=run_check)

    repair_parser(sub)

    p = add_command(
        sub,
        "assign",
        "assign points (households, incidents) to grids at every level",
        "Finds the town, grid and micro-grid of every point. Each row keeps its\n"
        "columns and gains the codes, assign_status and assign_reason; points outside,\n"
        "in gaps or with bad coordinates are kept and marked. CSV tables are read,\n"
        f"assigned and written {CHUNK_ROWS:,} rows at a time (--chunk-size), so memory\n"
        "stays flat however long the table is.",
        "  gridgeo assign outputs/households.csv --grids data/shapefiles -o homes.gpkg\n"
        "  gridgeo assign events.csv --grids banner.gpkg -o events.csv --lon 经度 --lat 纬度\n"
        "  gridgeo assign app.csv --grids banner.gpkg -o app.parquet --coords gcj02\n",
    )
    p.add_argument("points", help="CSV / Excel with longitude and latitude columns, or a GIS file")
    p.add_argument(
        "--grids", required=True, help="the grid system (Shapefile folder, .gpkg, Parquet folder)"
    )
    p.add_argument(
        "-o",
        "--out",
        required=True,
        help="output: .gpkg, .parquet, .csv (UTF-8 with BOM) or .shp (declared short "
        "field names, read back long by gridgeo); never one of the inputs",
    )
    p.add_argument("--lon", help="longitude column (default: detected: lon, lng, 经度, x …)")
    p.add_argument("--lat", help="latitude column (default: detected: lat, 纬度, y …)")
    p.add_argument(
        "--crs", default="EPSG:4326", help="CRS of a table's coordinates (default EPSG:4326)"
    )
    p.add_argument(
        "--coords",
        choices=["wgs84", "cgcs2000", "gcj02", "bd09"],
        help="gcj02 / bd09: coordinates from AMap/Tencent or Baidu apps, converted first",
    )
    p.add_argument(
        "--on-overlap",
        choices=["rule", "review"],
        default="rule",
        help="a point inside overlapping grids: rule = give it the lowest code "
        "(default); review = leave it unassigned with its candidate grids listed",
    )
    p.add_argument(
        "--gap-tolerance",
        type=float,
        default=200.0,
        help="metres within which a grid is suggested for a point in a gap (default 200)",
    )
    p.add_argument(
        "--encoding", help="text encoding of a CSV points table (default: UTF-8, else GB18030)"
    )
    p.add_argument("--grids-encoding", help=ENCODING_HELP)
    p.add_argument("--grids-coords", choices=["gcj02", "bd09"], help=COORDS_HELP)
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument(
        "--chunk-size",
        type=int,
        default=CHUNK_ROWS,
        help=f"rows of a CSV read and assigned at a time (default {CHUNK_ROWS:,})",
    )
    format_option(p)
    p.set_defaults(func=run_assign)

    p = add_command(
        sub,
        "map",
        "write a self-contained HTML coverage map",
        "Draws towns, grids and micro-grids as switchable layers, households and\n"
        "incidents as heat with workload and incident-rate views, and defects with\n"
        "--check. The page works offline unless --tiles adds a base map.",
        "  gridgeo map data/shapefiles -o map.html\n"
        "  gridgeo map data/shapefiles -o map.html --households outputs/households.csv \\\n"
        "      --incidents outputs/incidents.csv --check\n"
        "  gridgeo map banner.gpkg -o map.html --layers town,grid,defects --check\n",
    )
    p.add_argument("data", help="the grid system (Shapefile folder, .gpkg, Parquet folder)")
    p.add_argument("-o", "--out", required=True, help="the HTML file to write")
    p.add_argument(
        "--households",
        help="household points (table or GIS file), one household per row; an optional "
        "size column holds its residents (1 per household without it): heat and "
        "workload views",
    )
    p.add_argument(
        "--incidents",
        help="incident points (table or GIS file); a status column gives the open ones",
    )
    p.add_argument("--check", action="store_true", help="run the check and draw the defects")
    p.add_argument("--language", choices=["zh", "en"], default="zh")
    p.add_argument(
        "--tiles",
        help="base map, loaded from the network when the page is opened: osm, tianditu "
        "(with --tiles-key), amap, or an XYZ URL (default: none, fully offline)",
    )
    p.add_argument("--tiles-key", help="key for tiles that need one (Tianditu)")
    p.add_argument(
        "--tiles-crs", choices=["wgs84", "gcj02"], default="wgs84", help="CRS of a custom tile URL"
    )
    layers = p.add_argument("--layers", help="comma-separated layers to include")
    layers.lazy_help = layers_help
    system_options(p)
    p.add_argument(
        "--points-encoding",
        help="text encoding of the --households / --incidents CSV tables "
        "(default: UTF-8, else GB18030)",
    )
    p.set_defaults(func=run_map)

    p = add_command(
        sub,
        "info",
        "load a grid system and print its summary",
        "Loads a grid system (validating its codes) and prints each level's count,\n"
        "area and staffing, and each town's households, residents and grid workers.",
        "  gridgeo info data/shapefiles\n"
        "  gridgeo info banner.gpkg --format json\n"
        "  gridgeo info dirty.gpkg --lenient\n",
    )
    p.add_argument("data", help="folder of Shapefiles, GeoPackage, or folder of GeoParquet files")
    p.add_argument("--lenient", action="store_true", help="do not reject code defects on load")
    system_options(p)
    format_option(p)
    p.set_defaults(func=run_info)

    p = add_command(
        sub,
        "init",
        "write a configuration file (levels, code widths, roles) for your data",
        "Reads every layer of a GeoPackage or a folder of Shapefiles or GeoParquet\n"
        "files and writes a commented TOML configuration: the layers with codes as\n"
        "levels in order of code width, each level's digits, the root code and name,\n"
        "the dual-grid source layers. Check the guesses, then pass it to every\n"
        "command with --config. Without --config gridgeo expects the banner's levels.",
        "  gridgeo init city.gpkg -o city.toml\n  gridgeo check city.gpkg --config city.toml\n",
    )
    p.add_argument("data", help="GeoPackage, or folder of Shapefiles or GeoParquet files")
    p.add_argument(
        "-o", "--out", default="gridgeo.toml", help="the file to write (default gridgeo.toml)"
    )
    p.add_argument("--encoding", help=ENCODING_HELP)
    p.set_defaults(func=run_init)

    p = add_command(
        sub,
        "rebalance",
        "bring grids back inside their household window, moving as few households as possible",
        "Moves units between neighbouring grids of a town until every grid is inside\n"
        "its window (urban comprehensive: --households, default the configuration's\n"
        "300-500; rural and dedicated grids follow their own norms). Grids stay\n"
        "contiguous, inside their town and micro-grids inside their grid; locked grids\n"
        "are untouched. Prints the report; exits 1 when a grid could not be brought\n"
        "inside its window or the median compactness of the grids touched fell more\n"
        "than --max-compactness-loss (the report says which and why), 2 on bad input.\n"
        "DATA is a grid system with a units layer, or STORE@VERSION of a plan store.",
        "  gridgeo plan export plans.gpkg v2 -o v2.gpkg\n"
        "  gridgeo rebalance v2.gpkg --town 150823100 -o rebalanced.gpkg\n"
        "  gridgeo rebalance plans.gpkg@v2 --town 150823100 --households 380:420 --resize\n",
    )
    p.add_argument("data", help="grid system with units (GeoPackage or folder), or STORE@VERSION")
    p.add_argument(
        "--town", action="append", help="district code to rebalance (repeat for more; default all)"
    )
    p.add_argument(
        "--households", help="MIN:MAX households of an urban comprehensive grid (e.g. 300:500)"
    )
    p.add_argument("--per-worker", type=float, help="also at most this many households per worker")
    p.add_argument("--lock", help="comma-separated grid codes to leave untouched")
    p.add_argument("--max-moved", type=int, help="move at most this many households")
    p.add_argument(
        "--split-villages",
        action="store_true",
        help="allow a natural village to spread over more grids",
    )
    p.add_argument(
        "--resize", action="store_true", help="apply the splits and merges the report proposes"
    )
    p.add_argument(
        "--max-compactness-loss",
        default="0.1",
        help="how much the median Polsby-Popper of the grids touched may fall "
        "(default 0.1); none accepts any shapes",
    )
    p.add_argument("--seed", type=int, default=0, help="breaks ties (default 0)")
    p.add_argument("-o", "--out", help="the .gpkg file to write the rebalanced plan to")
    p.add_argument("--config", help="configuration file (TOML); default: the banner's levels")
    p.add_argument("--limit", type=int, default=20, help="grids shown (default 20)")
    format_option(p)
    p.set_defaults(func=run_rebalance)

    p = add_command(
        sub,
        "plan",
        "read-only views of a plan store: log, show, diff, export",
        "A plan store (a GeoPackage, or postgresql://user@host:port/db) keeps the\n"
        "versions planners saved with gridgeo.plan.PlanStore. These commands read it;\n"
        "editing is the notebook's job.",
        "  gridgeo plan log plans.gpkg\n"
        "  gridgeo plan show plans.gpkg v2\n"
        "  gridgeo plan diff plans.gpkg v1 v2\n"
        "  gridgeo plan export plans.gpkg v2 -o v2.gpkg\n",
    )
    plan_sub = p.add_subparsers(dest="plan_command", required=True, parser_class=Parser)
    store_help = "plan store: a .gpkg file or a postgresql:// address"
    q = plan_sub.add_parser(
        "log", help="list the versions", description="List the versions of a plan store."
    )
    q.add_argument("store", help=store_help)
    format_option(q)
    q.set_defaults(func=run_plan_log)
    q = plan_sub.add_parser(
        "show",
        help="summary and history of a version",
        description="Summary, history and norm warnings of one version (default: the latest).",
    )
    q.add_argument("store", help=store_help)
    q.add_argument("version", nargs="?", help="version (default: the latest)")
    q.add_argument("--limit", type=int, default=20, help="warnings shown (default 20)")
    format_option(q)
    q.set_defaults(func=run_plan_show)
    q = plan_sub.add_parser(
        "diff",
        help="compare two versions",
        description="Grids split, merged, redrawn or renumbered between two versions, and the households that change grid.",
    )
    q.add_argument("store", help=store_help)
    q.add_argument("old", help="the earlier version")
    q.add_argument("new", help="the later version")
    q.add_argument("--limit", type=int, default=20, help="changed grids shown (default 20)")
    format_option(q)
    q.set_defaults(func=run_plan_diff)
    q = plan_sub.add_parser(
        "export",
        help="write a version as a GeoPackage for desktop GIS",
        description="Write a version's units, grids, micro-grids and crosswalk as a GeoPackage (QGIS).",
    )
    q.add_argument("store", help=store_help)
    q.add_argument("version", nargs="?", help="version (default: the latest)")
    q.add_argument("-o", "--out", required=True, help="the .gpkg file to write")
    q.set_defaults(func=run_plan_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gridgeo`` console command; returns the exit code.

    Examples
    --------
    >>> main(["info", "no/such/folder"])
    2
    """
    args = build_parser().parse_args(argv)
    if getattr(args, "data_dir", "x") is None:
        from gridgeo.demo import DATA_DIR

        args.data_dir = DATA_DIR
    # Made per run, so COLUMNS and the current sys.stdout/sys.stderr are honoured.
    ui = Ui(Console(), Console(stderr=True), getattr(args, "format", "table"))
    with cli_voice(), warnings.catch_warnings():
        # Notices (ignored layers, unknown case statuses, …) read as one plain line each,
        # not as Python warnings with a source line.
        warnings.showwarning = lambda message, *_: ui.err.print(
            "注意 note:", str(message), style="yellow", markup=False, highlight=False
        )
        try:
            return args.func(args, ui)
        except GridgeoError as exc:
            # markup=False: messages quote user data, which may contain [brackets].
            ui.err.print("错误 error:", style="bold red", end=" ")
            ui.err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            return 2
        except BrokenPipeError:
            # `gridgeo check … --format csv | head`: the reader left; not an error of ours.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
