"""The command line's files and options: inputs and outputs checked before any work, CRS and layer options, reading with the configuration, the parser's pieces."""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gridgeo.cli.output import FORMATS
from gridgeo.errors import CrsError, DataFileError, GridgeoError

__all__ = [
    "CONFIG_HELP",
    "COORDS_HELP",
    "ENCODING_HELP",
    "LEVEL_HEADERS",
    "Output",
    "Parser",
    "add_command",
    "check_inputs",
    "check_outputs",
    "format_option",
    "layers_help",
    "map_layers",
    "parse_crs",
    "prepared_output",
    "read_config",
    "read_input",
    "system_options",
    "write_text",
]


# -- checking paths before any work ---------------------------------------------------------
@dataclass(frozen=True)
class Output:
    flag: str  # "-o/--out", "--summary", …
    path: Path
    suffixes: tuple[str, ...]  # what the command writes; () for a folder
    hint: str = ""


def check_inputs(inputs: dict[str, str | None]) -> list[Path]:
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


def check_outputs(outputs: Sequence[Output], inputs: Sequence[Path]) -> None:
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


def prepared_output(path: Path) -> Path:
    """Create the folder of an output (checked writable up front) just before writing it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_text(path: Path, text: str) -> None:
    from gridgeo.io import staging

    with staging(prepared_output(path)) as stage:
        temp = stage / path.name
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)


def parse_crs(value: str) -> str:
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


def map_layers(value: str | None) -> tuple[str, ...] | None:
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
LEVEL_HEADERS = {
    "area_km2": "area km²",
    "workers_each": "workers each",
    "households_per_worker": "households/worker",
}


def read_config(args: argparse.Namespace):
    """The configuration of ``--config FILE.toml``, or the banner's."""
    from gridgeo.config import BANNER, GridConfig

    if not getattr(args, "config", None):
        return BANNER
    check_inputs({"--config": args.config})
    return GridConfig.from_toml(args.config)


def read_input(path: str, config, **options):
    """The grid system at ``path``, as ``config`` describes it (levels and dual sources)."""
    from gridgeo.io import read_system

    return read_system(path, config, **options)


# -- the parser -----------------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    """An argument parser whose help texts may be computed when help is shown
    (``--layers`` lists :data:`gridgeo.maps.LAYERS` without importing the map code
    on every run)."""

    def format_help(self) -> str:
        for action in self._actions:
            lazy = getattr(action, "lazy_help", None)
            if lazy is not None:
                action.help = lazy()
        return super().format_help()


def layers_help() -> str:
    from gridgeo.maps import LAYERS

    return (
        "comma-separated layers to include (default: all available); one or more of "
        + ", ".join(LAYERS)
    )


def add_command(sub, name: str, summary: str, description: str, examples: str):
    return sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


ENCODING_HELP = (
    "text encoding of the grid system's Shapefiles, e.g. GBK or UTF-8 (default: detected per file)"
)
COORDS_HELP = (
    "the grid layers' longitudes/latitudes are really AMap/Tencent (gcj02) or Baidu "
    "(bd09) coordinates: converted to WGS-84 on read"
)
CONFIG_HELP = (
    "configuration file of the grid system's levels, codes and roles (TOML, "
    "written by `gridgeo init`; default: the banner's)"
)


def system_options(parser) -> None:
    """``--encoding``, ``--config`` and ``--coords``: how a command reads a grid system."""
    parser.add_argument("--encoding", help=ENCODING_HELP)
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--coords", choices=["gcj02", "bd09"], help=COORDS_HELP)


def format_option(parser, choices: Sequence[str] = FORMATS) -> None:
    parser.add_argument(
        "--format",
        choices=choices,
        default="table",
        help="table (default, fits 80 columns) or "
        + " / ".join(c for c in choices if c != "table")
        + " on stdout for scripts (every other message goes to stderr)",
    )
