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
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

import gridgeo
from gridgeo.config import Role
from gridgeo.errors import CrsError, DataFileError, EncodingError, GridgeoError, cli_voice

__all__ = ["build_parser", "main"]

FORMATS = ("table", "json", "csv")
CHUNK_ROWS = 200_000
"""Rows of a CSV points table assigned and written at a time by ``gridgeo assign``."""


# -- output: consoles, tables, machine-readable formats -------------------------------------
@dataclass
class _Ui:
    """Where things are printed: tables and results on stdout, the rest on stderr
    whenever stdout carries JSON or CSV."""

    out: Console
    err: Console
    format: str = "table"

    @property
    def tables(self) -> bool:
        return self.format == "table"

    def note(self, text: str) -> None:
        (self.out if self.tables else self.err).print(text)

    def status(self, text: str):
        return self.err.status(text)

    def show(self, frame: pd.DataFrame, title: str) -> None:
        if self.tables:
            self.out.print(_fit(frame, title, self.out))

    def emit_json(self, payload) -> None:
        text = json.dumps(
            _plain(payload), ensure_ascii=False, indent=2, allow_nan=False, default=_jsonable
        )
        sys.stdout.write(text)
        sys.stdout.write("\n")

    def emit_csv(self, frame: pd.DataFrame, index: bool = True) -> None:
        frame.to_csv(sys.stdout, index=index, lineterminator="\n")


def _plain(value):
    """``value`` with NaN and pandas' missing values as ``None`` (JSON ``null``)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    return value


def _jsonable(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return str(value)


def _compact(title: str) -> Table:
    """An empty table in the one compact style of the CLI: a rule under the header only."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )


def _table(frame: pd.DataFrame, title: str, right: bool = False) -> Table:
    """``frame`` as a compact table whose cells never wrap (numbers and codes stay whole)."""
    table = _compact(title)
    table.add_column(frame.index.name or "", no_wrap=True)
    for column in frame.columns:
        numbers = right or frame[column].map(_is_number).all()
        table.add_column(str(column), justify="right" if numbers else "left", no_wrap=True)
    for index, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        table.add_row(str(index), *(_cell(v) for v in row))
    return table


def _vertical(frame: pd.DataFrame, title: str) -> Table:
    """One block per row (``column  value`` lines), for rows too wide for the terminal."""
    table = Table.grid(padding=(0, 2))
    table.title = title
    table.title_justify = "left"
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for index, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        table.add_row(f"[bold]{frame.index.name or ''} {index}[/]".strip(), "")
        for column, value in zip(frame.columns, row, strict=True):
            table.add_row(f"  {column}", _cell(value))
    return table


def _natural_width(table: Table, console: Console) -> int:
    return Measurement.get(console, console.options.update(max_width=10_000), table).maximum


def _fit(frame: pd.DataFrame, title: str, console: Console) -> Table:
    """The widest layout that fits ``console``: the table, its transpose, or blocks."""
    table = _table(frame, title)
    if _natural_width(table, console) <= console.width:
        return table
    if len(frame) <= 6:
        transposed = frame.T
        transposed.index.name = frame.index.name or ""
        turned = _table(transposed.astype(object), title, right=True)
        if _natural_width(turned, console) <= console.width:
            return turned
    return _vertical(frame, title)


def _is_number(value) -> bool:
    return value is None or value is pd.NA or isinstance(value, int | float | np.number)


def _cell(value) -> str:
    if value is None or value is pd.NA:
        return "—"
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return "—"
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


# -- checking paths before any work ---------------------------------------------------------
@dataclass(frozen=True)
class _Output:
    flag: str  # "-o/--out", "--summary", …
    path: Path
    suffixes: tuple[str, ...]  # what the command writes; () for a folder
    hint: str = ""


def _check_inputs(inputs: dict[str, str | None]) -> list[Path]:
    """Every named input exists (a symlink loop or an unreadable path is said as such)."""
    found = []
    for what, value in inputs.items():
        if value is None:
            continue
        path = Path(value)
        try:
            os.stat(path)
        except FileNotFoundError:
            raise DataFileError(f"{what} {path}: no such file or folder. Check the path.") from None
        except OSError as exc:
            raise DataFileError(
                f"{what} {path}: cannot be opened ({exc.strerror}). If it is a symbolic "
                "link, make it point to the real file or folder (or give that path "
                "instead); otherwise check that you may read it."
            ) from None
        found.append(path)
    return found


def _check_outputs(outputs: Sequence[_Output], inputs: Sequence[Path]) -> None:
    """Refuse, before any work starts, every output that cannot or must not be written.

    An output must not be an input, lie inside one (a Shapefile folder) or contain one;
    its nearest existing folder must be writable; it must not be a folder itself; and
    its suffix must be one the command writes.
    """
    resolved_inputs = [(p, p.resolve()) for p in inputs]
    seen: dict[Path, str] = {}
    for output in outputs:
        path, flag = output.path, output.flag
        target = path.resolve()
        for given, source in resolved_inputs:
            same = target == source or (path.exists() and os.path.samefile(path, given))
            if same or target.is_relative_to(source) or source.is_relative_to(target):
                relation = (
                    "is" if same else "is inside" if target.is_relative_to(source) else "contains"
                )
                raise DataFileError(
                    f"{flag} {path} {relation} the input {given}; gridgeo never writes into "
                    f"its inputs. Choose another {flag} path."
                )
        if target in seen:
            raise DataFileError(f"{flag} {path} is also the {seen[target]} path; give two paths.")
        seen[target] = flag
        if output.suffixes:
            if path.is_dir():
                raise DataFileError(
                    f"{flag} {path} is a folder; give a file name ending in "
                    f"{' or '.join(output.suffixes)}."
                )
            if path.suffix.lower() not in output.suffixes:
                raise DataFileError(
                    f"{flag} {path}: cannot write {path.suffix or 'a file without suffix'!r}; "
                    f"use {' or '.join(output.suffixes)}.{output.hint}"
                )
            _require_writable(path.parent, flag, path)
        else:
            if path.exists() and not path.is_dir():
                raise DataFileError(f"{flag} {path} is a file; give a folder for the outputs.")
            _require_writable(path, flag, path)


def _require_writable(folder: Path, flag: str, path: Path) -> None:
    """The nearest existing ancestor of ``folder`` is a folder this process can write in."""
    existing = folder.resolve()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise DataFileError(
            f"{flag} {path}: {existing} is a file, not a folder, so nothing can be written "
            f"under it. Choose a {flag} path inside an existing or new folder."
        )
    try:
        handle, probe = tempfile.mkstemp(prefix=".gridgeo-probe-", dir=existing)
    except OSError as exc:
        raise DataFileError(
            f"{flag} {path}: cannot write in the folder {existing} ({exc.strerror}). "
            f"Choose a writable {flag} path."
        ) from None
    os.close(handle)
    os.unlink(probe)


def _prepare(path: Path) -> Path:
    """Create the folder of an output (checked writable up front) just before writing it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write_text(path: Path, text: str) -> None:
    from gridgeo.io import staging

    with staging(_prepare(path)) as stage:
        temp = stage / path.name
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)


def _parse_crs(value: str) -> str:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        CRS.from_user_input(value)
    except CRSError:
        raise CrsError(
            f"--crs {value!r} is not a coordinate reference system pyproj knows; use e.g. "
            "--crs EPSG:4326 (WGS-84 longitude/latitude), --crs EPSG:4490 (CGCS2000) or "
            "--crs EPSG:4547 (CGCS2000 3-degree zone 114E, metres)."
        ) from None
    return value


def _map_layers(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    from gridgeo.maps import LAYERS

    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in LAYERS]
    if unknown or not names:
        raise GridgeoError(
            f"--layers {value!r}: unknown layer name(s) {unknown}; choose among "
            f"{', '.join(LAYERS)} (comma-separated)."
        )
    return names


# -- info ---------------------------------------------------------------------------------------
_LEVEL_HEADERS = {
    "area_km2": "area km²",
    "workers_each": "workers each",
    "households_per_worker": "households/worker",
}


def _config(args: argparse.Namespace):
    """The configuration of ``--config FILE.toml``, or the banner's."""
    from gridgeo.config import BANNER, GridConfig

    if not getattr(args, "config", None):
        return BANNER
    _check_inputs({"--config": args.config})
    return GridConfig.from_toml(args.config)


def _read(path: str, config, **options):
    """The grid system at ``path``, as ``config`` describes it (levels and dual sources)."""
    from gridgeo.io import read_system

    return read_system(path, config, **options)


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


def _print_summary(system, ui: _Ui) -> None:
    summary = system.summary().rename(columns=_LEVEL_HEADERS)
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


def _cmd_info(args: argparse.Namespace, ui: _Ui) -> int:
    _check_inputs({"grid system": args.data})
    system = _read(
        args.data,
        _config(args),
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


def _cmd_demo(args: argparse.Namespace, ui: _Ui) -> int:
    from gridgeo import demo
    from gridgeo.assign import assign, build_index
    from gridgeo.check import check_system
    from gridgeo.io import write_html, write_layer, write_table
    from gridgeo.maps import coverage_map, render_html

    out = Path(args.out)
    data_dir = Path(args.data_dir)
    outputs = [_Output("--out", out, ())]
    outputs += [_Output("--out", out / name, (Path(name).suffix,)) for name in _DEMO_FILES]
    _check_outputs(outputs, [] if args.regenerate else [data_dir])
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
    _print_assignment(_Tally.of(homes), ui)
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
    _write_text(out / "demo_summary.json", json.dumps(summary, ensure_ascii=False, indent=2))
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


# -- check --------------------------------------------------------------------------------------
_DEFECT_COLUMNS = {
    "severity": "severity",
    "kind": "kind",
    "level": "level",
    "codes": "codes",
    "area_m2": "area m²",
    "width_m": "width m",
    "message_zh": "message",
}
_SEVERITY_COLOURS = {"error": "red", "warning": "yellow", "info": "cyan"}


def _print_defects(defects, limit: int, ui: _Ui) -> None:
    if defects.empty:
        ui.out.print("[bold green]无缺陷 no defects found[/]")
        return
    title = f"缺陷 defects ({len(defects)})"
    shown = defects.head(limit)
    table = _compact(title)
    for label in _DEFECT_COLUMNS.values():
        numeric = label in ("area m²", "width m")
        table.add_column(label, justify="right" if numeric else "left", no_wrap=label != "message")
    for row in shown.itertuples():
        table.add_row(
            f"[{_SEVERITY_COLOURS.get(row.severity, 'white')}]{row.severity}[/]",
            row.kind,
            row.level,
            ", ".join(str(row.codes).split(",")),
            f"{row.area_m2:,.1f}",
            f"{row.width_m:,.2f}",
            row.message_zh,
        )
    if _natural_width(table, ui.out) > ui.out.width:
        table = _defect_blocks(shown, title)
    ui.out.print(table)
    if len(defects) > limit:
        ui.out.print(f"… {len(defects) - limit} more (see --out, or --format csv)")


def _defect_blocks(defects, title: str) -> Table:
    """Defects for narrow terminals: one short block each, codes and numbers unbroken."""
    table = Table.grid(padding=(0, 1))
    table.title = title
    table.title_justify = "left"
    table.add_column(no_wrap=True, justify="right")
    table.add_column(overflow="fold")
    for number, row in enumerate(defects.itertuples(), start=1):
        colour = _SEVERITY_COLOURS.get(row.severity, "white")
        table.add_row(f"{number}", f"[{colour}]{row.severity}[/] [bold]{row.kind}[/] {row.level}")
        table.add_row("", ", ".join(str(row.codes).split(",")))
        table.add_row("", f"area {row.area_m2:,.1f} m², width {row.width_m:,.2f} m")
        table.add_row("", str(row.message_zh))
    return table


def _kinds_by_district(summary: pd.DataFrame) -> pd.DataFrame:
    """Per kind: the total and the districts involved (``code ×n``), as one wrapping text cell."""
    towns = summary.drop(columns="total", errors="ignore")
    text = [
        ", ".join(f"{town} ×{int(n)}" if n > 1 else str(town) for town, n in row.items() if n > 0)
        for _, row in towns.iterrows()
    ]
    total = summary["total"] if "total" in summary else towns.sum(axis=1)
    out = pd.DataFrame({"total": total.to_numpy(), "districts": text}, index=summary.index)
    out.index.name = "kind"
    return out


def _print_kinds(summary: pd.DataFrame, ui: _Ui, where: tuple[str, str]) -> None:
    """Defects per kind and district; ``where`` names the district level (zh, en)."""
    frame = _kinds_by_district(summary)
    table = _compact(f"每类缺陷按{where[0]}统计 defects per kind and {where[1]}")
    table.add_column("kind", no_wrap=True)
    table.add_column("total", justify="right", no_wrap=True)
    table.add_column(f"{where[1]}s")  # wraps between codes, never inside one
    for kind, row in frame.iterrows():
        table.add_row(str(kind), f"{int(row['total']):,}", row["districts"])
    ui.out.print(table)


def _print_borders(borders, limit: int, ui: _Ui) -> None:
    """Borders along which the check found several pieces: one problem each."""
    several = borders[borders["pieces"] > 1]
    if several.empty:
        return
    frame = pd.DataFrame(
        {
            "kinds": several["kinds"].to_numpy(),
            "pieces": several["pieces"].to_numpy(),
            "m²": several["area_m2"].to_numpy(),
            "length m": several["length_m"].to_numpy(),
        },
        index=pd.Index(several["codes"].to_numpy(), name="border"),
    ).head(limit)
    title = f"沿同一边界的缺陷 pieces along one border ({len(several)} borders)"
    ui.out.print(_fit(frame, title, ui.out))


def _defect_rows(defects) -> pd.DataFrame:
    return pd.DataFrame(defects.drop(columns=defects.geometry.name))


def _cmd_check(args: argparse.Namespace, ui: _Ui) -> int:
    from gridgeo.check import check_system
    from gridgeo.io import write_layer

    inputs = _check_inputs({"grid system": args.data, "--within": _within_path(args.within)})
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
            _Output(
                "-o/--out",
                out,
                (".gpkg", ".geojson", ".json", ".parquet"),
                " Defects mix polygons, lines and points, which a Shapefile cannot hold.",
            )
        )
    if summary_path is not None:
        outputs.append(_Output("--summary", summary_path, (".json",)))
    _check_outputs(outputs, inputs)

    where = ("图层", "layer")
    if _plain_layer(args):
        report = _check_plain_layer(args, ui)
    else:
        config = _config(args)
        district = config.role(Role.DISTRICT) or config.levels[0]
        where = (district.label_zh, district.label_en)
        system = _read(args.data, config, strict=False, encoding=args.encoding, coords=args.coords)
        with ui.status("checking …"):
            report = check_system(system, dual=not args.no_dual and bool(config.dual_sources))
    for hint in report.hints:
        ui.err.print("注意 note:", hint, style="yellow", markup=False, highlight=False)
    payload = report.to_dict()
    if not report.crosswalk.empty:
        payload["crosswalk_rows"] = len(report.crosswalk)
    if ui.format == "json":
        ui.emit_json({**payload, "defects": _defect_rows(report.defects).to_dict("records")})
    elif ui.format == "csv":
        ui.emit_csv(_defect_rows(report.defects), index=False)
    else:
        _print_defects(report.defects, args.limit, ui)
        summary = report.summary()
        if not summary.empty:
            _print_kinds(summary, ui, where)
        _print_borders(report.borders(), args.limit, ui)
    written = []
    if out is not None:
        write_layer(report.defects, _prepare(out))
        written.append(str(out))
    if summary_path is not None:
        _write_text(summary_path, json.dumps(payload, ensure_ascii=False, indent=2))
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


def _check_plain_layer(args: argparse.Namespace, ui: _Ui):
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


# -- repair -------------------------------------------------------------------------------------
_AUDIT_SHOWN = ["level", "kind", "action", "from_code", "to_code", "area_m2", "accepted"]


def _cmd_repair(args: argparse.Namespace, ui: _Ui) -> int:
    from gridgeo.check import check_system
    from gridgeo.io import write_layer, write_system, write_table
    from gridgeo.repair import apply, propose_repair

    inputs = _check_inputs({"grid system": args.data, "--households": args.households})
    out = Path(args.out)
    outputs = [
        _Output(
            "-o/--out",
            out,
            (".gpkg", ".parquet", ""),
            " Give a .gpkg file, a .parquet folder, or a folder name for Shapefiles.",
        )
    ]
    if args.audit:
        outputs.append(_Output("--audit", Path(args.audit), (".csv", ".gpkg")))
    _check_outputs(outputs, inputs)
    config = _config(args)
    system = _read(args.data, config, strict=False, encoding=args.encoding, coords=args.coords)
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
    write_system(repaired, _prepare(out))
    written = [str(out)]
    if args.audit:
        path = Path(args.audit)
        if path.suffix.lower() == ".gpkg":
            write_layer(audit.reset_index(), _prepare(path))
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


def _repair_parser(sub, encoding_help: str, config_help: str, coords_help: str) -> None:
    from gridgeo.repair import FILLS

    p = _subparser(
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
    p.add_argument("--encoding", help=encoding_help)
    p.add_argument("--config", help=config_help)
    p.add_argument("--coords", choices=["gcj02", "bd09"], help=coords_help)
    _format_option(p)
    p.set_defaults(func=_cmd_repair)


# -- assign -------------------------------------------------------------------------------------
@dataclass
class _Tally:
    """Assignment statuses and reasons, summed over chunks."""

    status: pd.Series
    reasons: pd.Series

    @classmethod
    def of(cls, result) -> _Tally:
        status = result["assign_status"].value_counts(sort=False)
        status = status.reindex(result["assign_status"].cat.categories, fill_value=0)
        placed = result["assign_status"] != "inside"
        reasons = result.loc[placed, "assign_reason"].value_counts()
        return cls(status.astype(np.int64), reasons[reasons > 0].astype(np.int64))

    def __add__(self, other: _Tally) -> _Tally:
        return _Tally(
            self.status.add(other.status, fill_value=0).astype(np.int64),
            self.reasons.add(other.reasons, fill_value=0).astype(np.int64),
        )

    @property
    def rows(self) -> int:
        return int(self.status.sum())

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            {"rows": self.status, "share %": 100 * self.status / max(self.rows, 1)}
        )
        frame.index.name = "status"
        return frame


def _print_assignment(tally: _Tally, ui: _Ui) -> None:
    ui.show(tally.frame(), "分配结果 assignment")
    if len(tally.reasons):
        reasons = tally.reasons.sort_values(ascending=False).to_frame("rows")
        reasons.index.name = "reason"
        ui.show(reasons, "原因 reasons (not inside)")


def _point_chunks(args: argparse.Namespace) -> Iterator:
    """The points table, ``--chunk-size`` rows at a time (a CSV is read as it goes)."""
    from gridgeo.io.tables import iter_points

    return iter_points(
        args.points,
        chunksize=args.chunk_size,
        lon=args.lon,
        lat=args.lat,
        crs=args.crs,
        encoding=args.encoding,
    )


def _cmd_assign(args: argparse.Namespace, ui: _Ui) -> int:
    from gridgeo.assign import assign, build_index, check_placed
    from gridgeo.io import open_writer
    from gridgeo.io.stream import STREAM_SUFFIXES

    inputs = _check_inputs({"points table": args.points, "--grids": args.grids})
    out = Path(args.out)
    _check_outputs([_Output("-o/--out", out, STREAM_SUFFIXES)], inputs)
    config = _config(args)
    _parse_crs(args.crs)
    chunks = _point_chunks(args)  # checks the table (encoding, columns) before the long work
    try:
        system = _read(args.grids, config, encoding=args.grids_encoding, coords=args.grids_coords)
    except EncodingError as exc:
        raise EncodingError(
            f"{exc} (for the grid system given by --grids, the option is --grids-encoding)"
        ) from None
    index = build_index(system)
    tally = None
    with _progress(ui) as advance, open_writer(out, config=system.config) as writer:
        for chunk in chunks:
            # A chunk may lie wholly outside the root polygon (a sorted file): the whole
            # table is checked once, below, before anything is moved into place.
            result = assign(
                chunk,
                system,
                coords=args.coords,
                on_overlap=args.on_overlap,
                gap_tolerance=args.gap_tolerance,
                index=index,
                require_placed=False,
            )
            writer.write(result)
            tally = _Tally.of(result) if tally is None else tally + _Tally.of(result)
            advance(len(result))
        if tally is not None:
            check_placed(tally.status, system, args.crs)
    if ui.format == "json":
        ui.emit_json(
            {
                "out": str(out),
                "rows": tally.rows,
                "by_status": tally.status.to_dict(),
                "by_reason": tally.reasons.to_dict(),
            }
        )
    elif ui.format == "csv":
        ui.emit_csv(tally.frame())
    else:
        _print_assignment(tally, ui)
    ui.note(f"wrote {tally.rows:,} rows to {out}")
    return 0


@contextmanager
def _progress(ui: _Ui) -> Iterator[Callable[[int], None]]:
    """Rows assigned so far, on stderr (the total is not known while streaming)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("assigning: {task.completed:,} points"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=ui.err, transient=True) as progress:
        task = progress.add_task("assign", total=None)
        yield lambda rows: progress.advance(task, rows)


# -- map ----------------------------------------------------------------------------------------
def _cmd_map(args: argparse.Namespace, ui: _Ui) -> int:
    from gridgeo.assign import assign, build_index
    from gridgeo.check import check_system
    from gridgeo.io import read_points, write_html
    from gridgeo.maps import coverage_map, render_html

    inputs = _check_inputs(
        {
            "grid system": args.data,
            "--households": args.households,
            "--incidents": args.incidents,
        }
    )
    layers = _map_layers(args.layers)
    out = Path(args.out)
    _check_outputs([_Output("-o/--out", out, (".html", ".htm"))], inputs)

    system = _read(
        args.data, _config(args), strict=False, encoding=args.encoding, coords=args.coords
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
    path = write_html(render_html(m), _prepare(out))
    if args.tiles:
        offline = f"the {args.tiles} base map needs the network when the page is opened"
    else:
        offline = "works offline"
    ui.note(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {offline})")
    return 0


# -- init ---------------------------------------------------------------------------------------
def _cmd_init(args: argparse.Namespace, ui: _Ui) -> int:
    from gridgeo.config import GridConfig
    from gridgeo.io import read_layer
    from gridgeo.io.formats import folder_layers, gpkg_layers

    inputs = _check_inputs({"data": args.data})
    out = Path(args.out)
    _check_outputs([_Output("-o/--out", out, (".toml",))], inputs)
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
    _write_text(out, config.to_toml())
    levels = " → ".join(f"{lv.name} ({lv.code_width})" for lv in config.levels)
    ui.note(f"wrote {out}: {levels}; check the guesses, then pass --config {out}")
    return 0


# -- the parser -----------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An argument parser whose help texts may be computed when help is shown
    (``--layers`` lists :data:`gridgeo.maps.LAYERS` without importing the map code
    on every run)."""

    def format_help(self) -> str:
        for action in self._actions:
            lazy = getattr(action, "lazy_help", None)
            if lazy is not None:
                action.help = lazy()
        return super().format_help()


# -- plan: read-only views of a plan store ------------------------------------------------------
def _store(args: argparse.Namespace):
    from gridgeo.plan import PlanStore

    target = args.store
    if "://" not in target:
        _check_inputs({"plan store": target})
    return PlanStore(target, create=False)


def _cmd_plan_log(args: argparse.Namespace, ui: _Ui) -> int:
    with _store(args) as store:
        log = store.log()
    if ui.format == "json":
        ui.emit_json(log.to_dict(orient="records"))
    elif ui.format == "csv":
        ui.emit_csv(log, index=False)
    else:
        ui.show(log.set_index("version"), f"plan store {args.store}: {len(log)} version(s)")
    return 0


def _plan_summary(plan) -> pd.DataFrame:
    grids = plan.grids
    rows = {
        "grids": len(grids),
        "micro-grids": len(plan.micro_table),
        "units": len(plan.units),
        "households": int(grids["households"].sum()),
        "residents": int(grids["residents"].sum()),
        "steps": len(plan.steps),
        "norm warnings": len(plan.norm_warnings()),
    }
    if "workers" in grids:
        rows["workers"] = int(grids["workers"].sum())
    return pd.DataFrame({"value": rows})


def _cmd_plan_show(args: argparse.Namespace, ui: _Ui) -> int:
    with _store(args) as store:
        version = args.version or store.head
        plan = store.load(version)
    summary = _plan_summary(plan)
    history = plan.history
    if ui.format == "json":
        ui.emit_json(
            {
                "version": version,
                "summary": summary["value"].to_dict(),
                "history": history.to_dict(orient="records"),
                "warnings": plan.norm_warnings(),
            }
        )
    elif ui.format == "csv":
        ui.emit_csv(summary)
    else:
        ui.show(summary, f"version {version}")
        if len(history):
            ui.show(
                history.set_index("step")[["op", "by", "households_moved", "touched"]], "history"
            )
        for text in plan.norm_warnings()[: args.limit]:
            ui.note(f"注意 note: {text}")
    return 0


def _cmd_plan_diff(args: argparse.Namespace, ui: _Ui) -> int:
    from gridgeo.plan import compare

    with _store(args) as store:
        a, b = store.load(args.old), store.load(args.new)
    comparison = compare(a, b)
    changed = comparison.grids[comparison.grids["relation"] != "unchanged"]
    columns = [
        "code",
        "relation",
        "households_before",
        "households_after",
        "from_codes",
        "to_codes",
    ]
    if ui.format == "json":
        ui.emit_json(
            {"summary": comparison.summary, "grids": changed[columns].to_dict(orient="records")}
        )
    elif ui.format == "csv":
        ui.emit_csv(changed[columns], index=False)
    else:
        summary = pd.DataFrame({"count": comparison.summary})
        ui.show(summary[summary["count"] > 0], f"{args.old} → {args.new}")
        shown = changed[columns].head(args.limit).set_index("code")
        ui.show(
            shown.rename(
                columns={"households_before": "hh before", "households_after": "hh after"}
            ),
            "changed grids",
        )
        if len(changed) > args.limit:
            ui.note(f"… {len(changed) - args.limit} more; --limit N shows more, --format csv all.")
    return 0


def _cmd_plan_export(args: argparse.Namespace, ui: _Ui) -> int:
    from gridgeo.plan import export_plan

    out = Path(args.out)
    inputs = [] if "://" in args.store else _check_inputs({"plan store": args.store})
    _check_outputs([_Output("-o/--out", out, (".gpkg",))], inputs)
    with _store(args) as store:
        version = args.version or store.head
        plan = store.load(version)
    export_plan(plan, _prepare(out))
    ui.note(f"wrote version {version} to {out} (units, grids, micro-grids, crosswalk)")
    return 0


# -- rebalance ----------------------------------------------------------------------------------
def _window_option(value: str) -> tuple[int, int]:
    """``--households 300:500`` as (300, 500)."""
    from gridgeo.errors import option

    lo, _, hi = value.partition(":")
    try:
        return int(lo), int(hi)
    except ValueError:
        raise GridgeoError(
            f"{option('households', value)}: give the window as MIN:MAX households, e.g. "
            f"{option('households', '300:500')}."
        ) from None


def _rebalance_input(args: argparse.Namespace):
    """The plan to rebalance: ``STORE@VERSION`` (a plan store) or a grid system with units."""
    from gridgeo.plan import UNIT_LAYER, Plan, PlanStore

    data = args.data
    if "@" in data or "://" in data:
        target, _, version = data.rpartition("@")
        if not target or "/" in version or ":" in version:
            # postgresql://user@host/db without a version: the last "@" was the user's
            target, version = data, ""
        inputs = [] if "://" in target else _check_inputs({"plan store": target})
        with PlanStore(target, create=False) as store:
            return store.load(version or None), inputs
    import pyogrio

    from gridgeo.io import read_layer
    from gridgeo.io.formats import folder_layers

    inputs = _check_inputs({"DATA": data})
    config = _config(args)
    system = _read(data, config)
    path = Path(data)
    if path.is_dir():
        files = folder_layers(path)
        units = read_layer(files[UNIT_LAYER]) if UNIT_LAYER in files else None
    else:
        names = pyogrio.list_layers(path)[:, 0].tolist()
        units = read_layer(path, UNIT_LAYER) if UNIT_LAYER in names else None
    if units is None:
        raise DataFileError(
            f"DATA {path} has no {UNIT_LAYER!r} layer, the building blocks a rebalancing "
            "moves; add one (gridgeo.plan.derive_units), or give a plan store as STORE@VERSION."
        )
    return Plan.from_system(system, units), inputs


def _compactness_option(value: str) -> float | None:
    raw = value.strip().lower()
    if raw == "none":
        return None
    try:
        share = float(raw)
    except ValueError:
        share = -1.0
    if not 0 <= share < 1:
        raise GridgeoError(
            f"--max-compactness-loss {value!r}: give a share from 0 to below 1, such as 0.1 "
            "(the median Polsby-Popper of the grids touched may fall 10 %), or none."
        )
    return share


def _cmd_rebalance(args: argparse.Namespace, ui: _Ui) -> int:
    from gridgeo.plan import export_plan
    from gridgeo.plan.rebalance import rebalance

    window = _window_option(args.households) if args.households else None
    out = Path(args.out) if args.out else None
    plan, inputs = _rebalance_input(args)
    if out is not None:
        _check_outputs([_Output("-o/--out", out, (".gpkg",))], inputs)
    locked = [c.strip() for c in (args.lock or "").split(",") if c.strip()]
    districts = set(plan.grid_table["parent_code"].astype(str))
    for town in args.town or []:
        if town not in districts:
            raise GridgeoError(
                f"--town {town!r}: no district of that code has grids in {args.data} (it has "
                f"{len(districts)}, e.g. {', '.join(sorted(districts)[:3])})."
            )
    with ui.status("rebalancing …"):
        new, report = rebalance(
            plan,
            towns=args.town,
            households=window,
            per_worker=args.per_worker,
            locked=locked,
            max_moved=args.max_moved,
            keep_villages=not args.split_villages,
            seed=args.seed,
            resize=args.resize,
            max_compactness_loss=_compactness_option(args.max_compactness_loss),
        )
    if out is not None:
        export_plan(new, _prepare(out))
    columns = ["code", "norm", "households_before", "households_after", "status"]
    changed = report.grids[report.grids["status"] != "inside"]
    if ui.format == "json":
        ui.emit_json(
            {
                "ok": report.ok,
                "summary": report.summary,
                "grids": changed[[*columns, "reason"]].to_dict(orient="records"),
                "proposals": report.proposals.to_dict(orient="records"),
                "problems": report.problems.to_dict(orient="records"),
            }
        )
    elif ui.format == "csv":
        ui.emit_csv(report.grids, index=False)
    else:
        ui.note(str(report))
        shown = changed[columns].head(args.limit).set_index("code")
        if len(shown):
            ui.show(
                shown.rename(
                    columns={"households_before": "hh before", "households_after": "hh after"}
                ),
                "grids outside their window before or after",
            )
        if len(changed) > args.limit:
            ui.note(f"… {len(changed) - args.limit} more; --limit N shows more, --format csv all.")
    if out is not None:
        ui.note(f"wrote the rebalanced plan to {out} (units, grids, micro-grids, crosswalk)")
    return 0 if report.ok else 1


def _layers_help() -> str:
    from gridgeo.maps import LAYERS

    return (
        "comma-separated layers to include (default: all available); one or more of "
        + ", ".join(LAYERS)
    )


def _subparser(sub, name: str, summary: str, description: str, examples: str):
    return sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _format_option(parser, choices: Sequence[str] = FORMATS) -> None:
    parser.add_argument(
        "--format",
        choices=choices,
        default="table",
        help="table (default, fits 80 columns) or "
        + " / ".join(c for c in choices if c != "table")
        + " on stdout for scripts (every other message goes to stderr)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _Parser(
        prog="gridgeo",
        description="网格化治理 GIS: grid systems, coverage checks, assignment and maps.",
        epilog="exit codes: 0 done, 1 defects found (check), 2 a problem with the input "
        "or an option (the message says which).",
    )
    parser.add_argument("--version", action="version", version=f"gridgeo {gridgeo.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    encoding_help = (
        "text encoding of the grid system's Shapefiles, e.g. GBK or UTF-8 "
        "(default: detected per file)"
    )
    coords_help = (
        "the grid layers' longitudes/latitudes are really AMap/Tencent (gcj02) or Baidu "
        "(bd09) coordinates: converted to WGS-84 on read"
    )
    config_help = (
        "configuration file of the grid system's levels, codes and roles (TOML, "
        "written by `gridgeo init`; default: the banner's)"
    )

    p = _subparser(
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
    _format_option(p, ("table", "json"))
    p.set_defaults(func=_cmd_demo)

    p = _subparser(
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
    p.add_argument("--encoding", help=encoding_help)
    p.add_argument("--config", help=config_help)
    p.add_argument("--coords", choices=["gcj02", "bd09"], help=coords_help)
    _format_option(p)
    p.set_defaults(func=_cmd_check)

    _repair_parser(sub, encoding_help, config_help, coords_help)

    p = _subparser(
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
    p.add_argument("--grids-encoding", help=encoding_help)
    p.add_argument("--grids-coords", choices=["gcj02", "bd09"], help=coords_help)
    p.add_argument("--config", help=config_help)
    p.add_argument(
        "--chunk-size",
        type=int,
        default=CHUNK_ROWS,
        help=f"rows of a CSV read and assigned at a time (default {CHUNK_ROWS:,})",
    )
    _format_option(p)
    p.set_defaults(func=_cmd_assign)

    p = _subparser(
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
    layers.lazy_help = _layers_help
    p.add_argument("--encoding", help=encoding_help)
    p.add_argument("--config", help=config_help)
    p.add_argument("--coords", choices=["gcj02", "bd09"], help=coords_help)
    p.add_argument(
        "--points-encoding",
        help="text encoding of the --households / --incidents CSV tables "
        "(default: UTF-8, else GB18030)",
    )
    p.set_defaults(func=_cmd_map)

    p = _subparser(
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
    p.add_argument("--encoding", help=encoding_help)
    p.add_argument("--config", help=config_help)
    p.add_argument("--coords", choices=["gcj02", "bd09"], help=coords_help)
    _format_option(p)
    p.set_defaults(func=_cmd_info)

    p = _subparser(
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
    p.add_argument("--encoding", help=encoding_help)
    p.set_defaults(func=_cmd_init)

    p = _subparser(
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
    _format_option(p)
    p.set_defaults(func=_cmd_rebalance)

    p = _subparser(
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
    plan_sub = p.add_subparsers(dest="plan_command", required=True, parser_class=_Parser)
    store_help = "plan store: a .gpkg file or a postgresql:// address"
    q = plan_sub.add_parser(
        "log", help="list the versions", description="List the versions of a plan store."
    )
    q.add_argument("store", help=store_help)
    _format_option(q)
    q.set_defaults(func=_cmd_plan_log)
    q = plan_sub.add_parser(
        "show",
        help="summary and history of a version",
        description="Summary, history and norm warnings of one version (default: the latest).",
    )
    q.add_argument("store", help=store_help)
    q.add_argument("version", nargs="?", help="version (default: the latest)")
    q.add_argument("--limit", type=int, default=20, help="warnings shown (default 20)")
    _format_option(q)
    q.set_defaults(func=_cmd_plan_show)
    q = plan_sub.add_parser(
        "diff",
        help="compare two versions",
        description="Grids split, merged, redrawn or renumbered between two versions, and the households that change grid.",
    )
    q.add_argument("store", help=store_help)
    q.add_argument("old", help="the earlier version")
    q.add_argument("new", help="the later version")
    q.add_argument("--limit", type=int, default=20, help="changed grids shown (default 20)")
    _format_option(q)
    q.set_defaults(func=_cmd_plan_diff)
    q = plan_sub.add_parser(
        "export",
        help="write a version as a GeoPackage for desktop GIS",
        description="Write a version's units, grids, micro-grids and crosswalk as a GeoPackage (QGIS).",
    )
    q.add_argument("store", help=store_help)
    q.add_argument("version", nargs="?", help="version (default: the latest)")
    q.add_argument("-o", "--out", required=True, help="the .gpkg file to write")
    q.set_defaults(func=_cmd_plan_export)
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
    ui = _Ui(Console(), Console(stderr=True), getattr(args, "format", "table"))
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
