"""Reading and writing grid systems: Shapefile folders, GeoPackage, GeoParquet.

A grid system is stored as one layer per level (``banner``, ``town``,
``grid``, ``micro_grid``) plus any source layers (``party_grid``,
``sanitation_grid``), in one of three containers:

* a folder of Shapefiles, ``{layer}.shp`` with its sidecar files;
* a GeoPackage ``.gpkg`` with one layer per level;
* a folder of GeoParquet files, ``{layer}.parquet``.

Three things that usually go wrong with Chinese Shapefiles are handled here:

* **Encoding.** Names are read in the encoding the file really uses, found
  by :func:`detect_encoding` (``.cpg`` file, DBF language driver, or the
  bytes themselves), and checked strictly, so a name is either read right or
  an :class:`~gridgeo.errors.EncodingError` says what to pass. Nothing comes
  back as mojibake, and nothing is written that the encoding cannot hold.
* **Field names.** DBF field names hold 10 bytes. Long column names are
  renamed through :attr:`GridConfig.shapefile_fields
  <gridgeo.config.GridConfig.shapefile_fields>` (plus a ``field_names=``
  mapping) on writing and renamed back on reading; an undeclared long name
  is a :class:`~gridgeo.errors.SchemaError`, never a silent truncation.
* **Codes.** ``code`` and ``parent_code`` always come back as text, with
  leading zeros, whatever type a driver inferred.

Every write goes to a hidden temporary file or folder beside the target and
is moved into place with :func:`os.replace`, so a failed write leaves the
previous data intact and no temporary files behind.

Example
-------
>>> import tempfile
>>> from gridgeo import load_demo
>>> folder = Path(tempfile.mkdtemp()) / "banner"
>>> write_system(load_demo(), folder).name
'banner'
>>> read_system(folder)["town"].loc[0, "name"]
'乌拉山镇'
"""

from __future__ import annotations

import codecs
import os
import secrets
import shutil
import struct
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj import CRS
from pyproj.exceptions import CRSError

from gridgeo.config import BANNER, GridConfig
from gridgeo.errors import CrsError, DataFileError, EncodingError, LayerError, SchemaError
from gridgeo.model import GridSystem

__all__ = [
    "detect_encoding",
    "read_layer",
    "read_points",
    "read_system",
    "write_html",
    "write_layer",
    "write_system",
    "write_table",
]

Format = Literal["shapefile", "gpkg", "parquet", "geojson"]

_SUFFIX_FORMATS: dict[str, Format] = {
    ".shp": "shapefile",
    ".gpkg": "gpkg",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
    ".geojson": "geojson",
    ".json": "geojson",
}
_FORMAT_ALIASES: dict[str, Format] = {
    "shapefile": "shapefile",
    "shp": "shapefile",
    "esri shapefile": "shapefile",
    "gpkg": "gpkg",
    "geopackage": "gpkg",
    "parquet": "parquet",
    "geoparquet": "parquet",
}
_DRIVERS: dict[Format, str] = {
    "shapefile": "ESRI Shapefile",
    "gpkg": "GPKG",
    "geojson": "GeoJSON",
}
_SHAPEFILE_SIDECARS = (
    ".shp",
    ".shx",
    ".dbf",
    ".prj",
    ".cpg",
    ".qix",
    ".sbn",
    ".sbx",
    ".qmd",
    ".fix",
    ".shp.xml",
)
"""Files that belong to a Shapefile ``x.shp`` (``x.dbf``, ``x.prj``, …)."""

_DBF_NAME_BYTES = 10
_DBF_TEXT_BYTES = 254

_LDID_CODEPAGES: dict[int, str] = {
    0x01: "CP437",
    0x02: "CP850",
    0x03: "CP1252",
    0x13: "CP932",
    0x4D: "GBK",
    0x4E: "CP949",
    0x4F: "CP950",
    0x58: "CP1252",
    0x7A: "GBK",
    0x7B: "CP932",
    0xC8: "CP1250",
    0xC9: "CP1251",
}
"""DBF language driver id (header byte 29) → code page. 0x00 and 0x57 mean
"not stated" / "the writer's Windows code page" and are not listed."""

_MULTIBYTE_LDIDS = {0x13, 0x4D, 0x4E, 0x4F, 0x7A, 0x7B}

_CODEPAGE_NUMBERS = {
    "65001": "UTF-8",
    "936": "GBK",
    "20936": "GBK",
    "54936": "GB18030",
    "950": "CP950",
    "949": "CP949",
    "932": "CP932",
}


# -- reading ----------------------------------------------------------------------
def read_system(
    path: str | os.PathLike[str],
    config: GridConfig = BANNER,
    *,
    strict: bool = True,
    encoding: str | None = None,
    field_names: Mapping[str, str] | None = None,
) -> GridSystem:
    """Read a grid system from a Shapefile folder, a GeoPackage or a GeoParquet folder.

    Layers named after ``config``'s levels become the levels; any other layer
    becomes a source layer (``party_grid``, ``sanitation_grid``).

    Parameters
    ----------
    path:
        A folder of ``{layer}.shp`` files, a ``.gpkg`` file with one layer per
        level, or a folder of ``{layer}.parquet`` files.
    config:
        The levels to expect and the Shapefile field-name mapping.
    strict:
        Validate codes (see :meth:`GridSystem.from_layers`); pass ``False`` to
        load a dirty dataset for :mod:`gridgeo.check`.
    encoding:
        Text encoding of the Shapefiles (``"GBK"``, ``"UTF-8"``). By default
        it is detected per file with :func:`detect_encoding`.
    field_names:
        Extra column → DBF field name mapping used when the folder was
        written (extends ``config.shapefile_fields``); Shapefiles only.

    Returns
    -------
    GridSystem

    Raises
    ------
    DataFileError
        The path is missing, holds no layers, or has an unknown format.
    LayerError
        A level is missing.
    CrsError
        A layer has no CRS (a Shapefile without ``.prj``).
    EncodingError
        A Shapefile's encoding cannot be determined or does not fit its bytes.

    Example
    -------
    >>> system = read_system("data/shapefiles")  # doctest: +SKIP
    >>> system.counts()  # doctest: +SKIP
    {'banner': 1, 'town': 11, 'grid': 662, 'micro_grid': 897}
    """
    path = Path(path)
    if not path.exists():
        raise DataFileError(
            f"{path} does not exist. read_system expects a folder of Shapefiles "
            "({layer}.shp), a .gpkg file or a folder of GeoParquet files ({layer}.parquet)."
        )
    if path.is_file():
        if path.suffix.lower() != ".gpkg":
            hint = (
                " To read one Shapefile layer use gridgeo.io.read_layer; read_system "
                "needs the folder holding all the layers."
                if path.suffix.lower() == ".shp"
                else ""
            )
            raise DataFileError(
                f"{path}: unknown grid-system format {path.suffix!r}. read_system reads "
                f"a .gpkg file or a folder of .shp or .parquet files.{hint}"
            )
        _no_encoding_outside_shapefiles(encoding, "gpkg", path)
        names = _gpkg_layers(path)
        files = {name: path for name in names}
    else:
        files = _folder_layers(path)
        if next(iter(files.values())).suffix.lower() != ".shp":
            _no_encoding_outside_shapefiles(encoding, "parquet", path)
    order = [n for n in config.level_names if n in files] + sorted(
        n for n in files if n not in config.level_names
    )
    layers = {
        name: read_layer(
            files[name], name, encoding=encoding, config=config, field_names=field_names
        )
        for name in order
    }
    return GridSystem.from_layers(layers, config, strict=strict, origin=str(path))


def read_layer(
    path: str | os.PathLike[str],
    layer: str | None = None,
    *,
    encoding: str | None = None,
    config: GridConfig = BANNER,
    field_names: Mapping[str, str] | None = None,
) -> gpd.GeoDataFrame:
    """Read one layer from a ``.shp``, ``.gpkg``, ``.parquet`` or ``.geojson`` file.

    Shapefile field names are renamed back to the long column names
    (``parent`` → ``parent_code``), and ``code`` / ``parent_code`` come back
    as text; for a level of ``config`` numeric codes are zero-padded to the
    level's width.

    Parameters
    ----------
    path:
        The file. Its suffix gives the format.
    layer:
        Layer inside a GeoPackage (needed when it holds more than one). For
        other formats the file is the layer, and ``layer`` (default: the file
        name without suffix) only names it.
    encoding:
        Shapefile text encoding; detected with :func:`detect_encoding` when
        ``None``. An encoding that does not fit the bytes is an error.
    config:
        Supplies the Shapefile field-name mapping and the code widths.
    field_names:
        Extra column → DBF field name mapping (extends ``config.shapefile_fields``).

    Returns
    -------
    geopandas.GeoDataFrame
        With a CRS (a layer without one is a :class:`CrsError`).

    Example
    -------
    >>> town = read_layer("data/shapefiles/town.shp")  # doctest: +SKIP
    >>> town.loc[0, ["code", "name"]].tolist()  # doctest: +SKIP
    ['150823100', '乌拉山镇']
    """
    path = Path(path)
    kind = _file_format(path, "read")
    if not path.is_file():
        raise DataFileError(
            f"{path} does not exist{' (it is a folder)' if path.is_dir() else ''}. "
            "Check the path; read_layer reads one .shp, .gpkg, .parquet or .geojson file."
        )
    if kind != "shapefile":
        _no_encoding_outside_shapefiles(encoding, kind, path)
    name = layer if layer is not None else path.stem
    where = f"{path}" if kind != "gpkg" else f"{path}, layer {name!r}"
    if kind == "shapefile":
        frame = _read_shapefile(path, encoding, config, field_names)
    elif kind == "gpkg":
        available = _gpkg_layers(path)
        if layer is None:
            if len(available) != 1:
                raise LayerError(
                    f"{path} holds {len(available)} layers {available}; pass layer= to "
                    "say which one to read."
                )
            name = available[0]
            where = f"{path}, layer {name!r}"
        elif layer not in available:
            raise LayerError(
                f"{path} has no layer {layer!r}; it holds {available}. Pass one of those as layer=."
            )
        frame = _read_ogr(path, where, layer=name)
    elif kind == "parquet":
        try:
            frame = gpd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise DataFileError(
                f"{path}: cannot read it as GeoParquet ({exc}). Write it with "
                "GeoDataFrame.to_parquet or gridgeo.io.write_layer."
            ) from exc
    else:
        frame = _read_ogr(path, where)
    if frame.crs is None:
        raise CrsError(_no_crs_message(path, where, kind))
    return _codes_as_text(frame, name, config)


def detect_encoding(shp_path: str | os.PathLike[str]) -> str:
    """The text encoding of a Shapefile's attribute table (``.dbf``).

    Looked for in this order:

    1. the ``.cpg`` file beside it;
    2. the DBF header's language driver id (byte 29, e.g. ``0x4D`` = code
       page 936 = GBK; ``0x00`` and ``0x57`` say nothing);
    3. the bytes of the text fields themselves: strict UTF-8, then GBK, then
       GB18030. Pure ASCII is ``"UTF-8"``. When both UTF-8 and GBK decode,
       the reading made of more CJK text (rather than stray Latin, Greek or
       Cyrillic letters) wins, UTF-8 on a tie.

    A declared encoding (1, 2) is checked against the bytes, so a wrong
    ``.cpg`` is reported instead of producing garbled names.

    Parameters
    ----------
    shp_path:
        The ``.shp`` (or ``.dbf``) file.

    Returns
    -------
    str
        An encoding name understood by both Python and GDAL: ``"UTF-8"``,
        ``"GBK"``, ``"GB18030"``, ``"CP1252"``, …

    Raises
    ------
    DataFileError
        The ``.dbf`` is missing or is not a DBF file.
    EncodingError
        The ``.cpg`` names an unknown encoding, a declared encoding does not
        fit the bytes, or no encoding decodes them. The message tells to pass
        ``encoding=`` or to add a ``.cpg`` file.

    Example
    -------
    >>> import tempfile
    >>> from gridgeo import load_demo
    >>> shp = Path(tempfile.mkdtemp()) / "town.shp"
    >>> detect_encoding(write_layer(load_demo()["town"], shp, encoding="GBK"))
    'GBK'
    """
    shp = Path(shp_path)
    dbf = _require_dbf(shp)
    cpg = _sidecar(shp, ".cpg")
    ldid, items = _dbf_text(dbf)
    if cpg is not None:
        declared = cpg.read_bytes().decode("ascii", "replace")
        encoding = _canonical_encoding(
            declared,
            f"{cpg} names the encoding {declared.strip()!r}, which gridgeo does not know. "
            "Fix the .cpg (e.g. write UTF-8 or GBK into it) or pass encoding='GBK' "
            "(or the right one)",
        )
        _check_decodes(items, encoding, shp, f"its {cpg.name} file")
        return encoding
    if ldid in _MULTIBYTE_LDIDS:
        encoding = _LDID_CODEPAGES[ldid]
        _check_decodes(items, encoding, shp, f"its DBF header (language driver 0x{ldid:02X})")
        return encoding
    return _sniff(items, shp, fallback=_LDID_CODEPAGES.get(ldid))


# -- writing ----------------------------------------------------------------------
def write_system(
    system: GridSystem,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    encoding: str = "UTF-8",
    field_names: Mapping[str, str] | None = None,
) -> Path:
    """Write every level, then every source layer, of ``system``.

    The whole system is written to a hidden temporary file or folder beside
    ``path`` and then moved into place, so ``path`` holds either the old or
    the new system, never a mixture, and a failed write leaves no junk.

    Parameters
    ----------
    system:
        The grid system.
    path:
        ``….gpkg`` for a GeoPackage; otherwise a folder, which is replaced
        as a whole (so it must hold nothing but layer files).
    format:
        ``"shapefile"`` (default for a folder), ``"parquet"`` (GeoParquet
        folder) or ``"gpkg"``; inferred from ``path`` when ``None``.
    encoding:
        Text encoding of Shapefiles (a ``.cpg`` file records it). Other
        formats are always UTF-8.
    field_names:
        Column → DBF field name for long column names not declared in
        ``system.config.shapefile_fields``. Pass the same mapping to
        :func:`read_system`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    SchemaError
        A column name does not fit a DBF field name and is not declared.
    EncodingError
        A text value cannot be written in ``encoding``.
    DataFileError
        The format cannot be inferred, or the target folder holds other files.

    Example
    -------
    >>> import tempfile
    >>> from gridgeo import load_demo
    >>> out = Path(tempfile.mkdtemp()) / "banner.gpkg"
    >>> write_system(load_demo(), out).name
    'banner.gpkg'
    """
    path = Path(path)
    kind = _system_format(path, format)
    if kind == "shapefile":
        encoding = _canonical_encoding(
            encoding, f"{path}: unknown encoding {encoding!r}; use e.g. 'UTF-8' or 'GBK'"
        )
    else:
        _no_encoding_outside_shapefiles(encoding, kind, path)
    layers = {**system.levels, **system.sources}
    for name in layers:
        _check_layer_name(name, path)
    _require_parent(path)
    if kind == "gpkg":
        if path.is_dir():
            raise DataFileError(f"{path} is a folder; a GeoPackage is written to a .gpkg file.")
        with _staging(path) as stage:
            temp = stage / path.name
            for name, frame in layers.items():
                _write_frame(frame, temp, kind="gpkg", layer=name, encoding=None)
            os.replace(temp, path)
        return path
    suffix = ".shp" if kind == "shapefile" else ".parquet"
    if kind == "shapefile":
        prepared = {
            name: _shapefile_frame(
                frame, f"{path}, layer {name!r}", encoding, system.config, field_names
            )
            for name, frame in layers.items()
        }
    else:
        prepared = dict(layers)
    _check_replaceable_folder(path)
    with _staging(path) as stage:
        folder = stage / path.name
        folder.mkdir()
        for name, frame in prepared.items():
            _write_frame(
                frame,
                folder / f"{name}{suffix}",
                kind=kind,
                layer=name,
                encoding=encoding if kind == "shapefile" else None,
            )
        _swap_folder(folder, path, stage)
    return path


def write_layer(
    frame: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    layer: str | None = None,
    *,
    encoding: str = "UTF-8",
    config: GridConfig = BANNER,
    field_names: Mapping[str, str] | None = None,
) -> Path:
    """Write one layer to a ``.shp``, ``.gpkg``, ``.parquet`` or ``.geojson`` file.

    Writing to an existing GeoPackage replaces (or adds) only ``layer`` and
    keeps its other layers. The file is written beside ``path`` first and
    moved into place, so a failure leaves the previous file intact.

    Parameters
    ----------
    frame:
        The layer; it must have a CRS. It is not modified.
    path:
        Target file; its suffix gives the format.
    layer:
        Layer name inside a GeoPackage (default: the file name without
        suffix); ignored by the single-layer formats.
    encoding:
        Shapefile text encoding (recorded in a ``.cpg`` file), e.g. ``"GBK"``
        for software that expects it. Other formats are always UTF-8.
    config:
        Supplies the declared Shapefile field names.
    field_names:
        Column → DBF field name for long column names not declared in
        ``config.shapefile_fields``; pass the same mapping to :func:`read_layer`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    SchemaError, EncodingError, CrsError, DataFileError

    Example
    -------
    >>> import tempfile
    >>> from gridgeo import load_demo
    >>> out = Path(tempfile.mkdtemp()) / "grid.shp"
    >>> write_layer(load_demo()["grid"], out, encoding="GBK").name
    'grid.shp'
    >>> sorted(p.suffix for p in out.parent.iterdir())
    ['.cpg', '.dbf', '.prj', '.shp', '.shx']
    """
    path = Path(path)
    kind = _file_format(path, "write")
    name = layer if layer is not None else path.stem
    if not isinstance(frame, gpd.GeoDataFrame):
        raise SchemaError(f"{path}: expected a GeoDataFrame, got {type(frame).__name__}.")
    if frame.crs is None:
        raise CrsError(
            f"{path}: the layer to write has no coordinate reference system. Set one "
            "first, e.g. frame.set_crs('EPSG:4490') for CGCS2000 longitude/latitude."
        )
    if kind == "shapefile":
        encoding = _canonical_encoding(
            encoding, f"{path}: unknown encoding {encoding!r}; use e.g. 'UTF-8' or 'GBK'"
        )
    else:
        _no_encoding_outside_shapefiles(encoding, kind, path)
    _require_parent(path)
    if path.is_dir():
        raise DataFileError(f"{path} is a folder; write_layer writes one file.")
    if kind == "shapefile":
        prepared = _shapefile_frame(frame, str(path), encoding, config, field_names)
        with _staging(path) as stage:
            _write_frame(prepared, stage / path.name, kind=kind, layer=name, encoding=encoding)
            written = {p.name for p in stage.iterdir()}
            for file in sorted(stage.iterdir(), key=lambda p: p.suffix.lower() == ".shp"):
                os.replace(file, path.parent / file.name)
            for stale in _shapefile_files(path):
                if stale.name not in written:
                    stale.unlink()
        return path
    with _staging(path) as stage:
        temp = stage / path.name
        if kind == "gpkg" and path.exists():
            shutil.copy2(path, temp)
        _write_frame(frame, temp, kind=kind, layer=name, encoding=None)
        os.replace(temp, path)
    return path


def _write_frame(
    frame: gpd.GeoDataFrame,
    path: Path,
    *,
    kind: Format,
    layer: str,
    encoding: str | None,
) -> None:
    """Write ``frame`` to ``path`` (always a temporary path): the one write step.

    GDAL warnings about lost characters, truncated values or renamed fields
    become errors, so nothing is changed silently.
    """
    if kind == "parquet":
        frame.to_parquet(path, index=False)
        return
    options: dict[str, object] = {}
    if kind == "shapefile":
        options["encoding"] = encoding
    else:
        options["promote_to_multi"] = False  # keep Polygon and MultiPolygon as they are
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pyogrio.write_dataframe(
            frame,
            path,
            layer=layer if kind == "gpkg" else None,  # other formats: the file is the layer
            driver=_DRIVERS[kind],
            **options,
        )
    for warning in caught:
        text = str(warning.message)
        if "converted correctly" in text:
            raise EncodingError(
                f"{path.name}: GDAL could not write some characters in {encoding} "
                f"({text}). Write with encoding='UTF-8' or 'GB18030'."
            )
        if "truncated" in text or "laundered" in text:
            raise SchemaError(f"{path.name}, layer {layer!r}: {text}")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


# -- formats and paths ---------------------------------------------------------------
def _file_format(path: Path, action: str) -> Format:
    name = path.name.lower()
    for suffix, kind in _SUFFIX_FORMATS.items():
        if name.endswith(suffix):
            return kind
    raise DataFileError(
        f"{path}: cannot {action} a layer with suffix {path.suffix or '(none)'!r}; "
        "use .shp, .gpkg, .parquet or .geojson."
    )


def _system_format(path: Path, format: str | None) -> Format:
    if format is not None:
        kind = _FORMAT_ALIASES.get(format.strip().lower())
        if kind is None:
            raise DataFileError(
                f"unknown format {format!r} for {path}; use 'shapefile', 'gpkg' or 'parquet'."
            )
        return kind
    if path.suffix.lower() == ".gpkg":
        return "gpkg"
    if path.is_dir() or not path.suffix:
        return "shapefile"
    raise DataFileError(
        f"{path}: cannot tell the format from the suffix {path.suffix!r}. Write to a "
        "….gpkg file, or to a folder (a name without suffix) of Shapefiles, or pass "
        "format='parquet' / format='shapefile'."
    )


def _no_encoding_outside_shapefiles(encoding: str | None, kind: str, path: Path) -> None:
    if encoding is None:
        return
    if _canonical_encoding(encoding, f"unknown encoding {encoding!r}") != "UTF-8":
        raise EncodingError(
            f"{path}: {kind} text is always UTF-8; encoding={encoding!r} applies only "
            "to Shapefiles. Leave it out."
        )


def _check_layer_name(name: str, path: Path) -> None:
    if not name or name in {".", ".."} or any(c in name for c in "/\\:"):
        raise LayerError(f"{path}: layer name {name!r} cannot be a file name; rename the layer.")


def _require_parent(path: Path) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise DataFileError(
            f"{path}: the folder {parent} does not exist; create it first "
            "(gridgeo never creates folders it was not asked for)."
        )


def _require_dbf(shp: Path) -> Path:
    dbf = _sidecar(shp, ".dbf")
    if dbf is None:
        raise DataFileError(
            f"{shp}: its attribute table {shp.with_suffix('.dbf').name} is missing. A "
            "Shapefile needs its .shp, .shx and .dbf files (and .prj) side by side."
        )
    return dbf


def _sidecar(shp: Path, suffix: str) -> Path | None:
    """The file ``shp`` with ``suffix`` (either case), if it exists."""
    for candidate in (suffix, suffix.upper()):
        file = shp.with_suffix(candidate)
        if file.is_file():
            return file
    return None


def _shapefile_files(shp: Path) -> list[Path]:
    """The files of Shapefile ``shp`` that exist (``.shp``, ``.dbf``, ``.cpg``, …)."""
    stem = shp.name[: -len(".shp")] if shp.name.lower().endswith(".shp") else shp.stem
    return [
        shp.parent / f"{stem}{suffix}"
        for suffix in _SHAPEFILE_SIDECARS
        if (shp.parent / f"{stem}{suffix}").is_file()
    ]


def _is_layer_file(file: Path) -> bool:
    name = file.name.lower()
    return file.is_file() and (
        name.endswith(".parquet") or any(name.endswith(s) for s in _SHAPEFILE_SIDECARS)
    )


def _folder_layers(folder: Path) -> dict[str, Path]:
    """Layer name → file for a folder of Shapefiles or GeoParquet files."""
    shp = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".shp" and p.is_file())
    parquet = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".parquet" and p.is_file())
    if shp and parquet:
        raise DataFileError(
            f"{folder} holds both Shapefiles and GeoParquet files; keep one format per "
            "folder so it is clear which layers form the system."
        )
    files = shp or parquet
    if not files:
        raise DataFileError(
            f"{folder} holds no layers: expected one {{layer}}.shp or {{layer}}.parquet "
            "file per level (banner.shp, town.shp, …)."
        )
    return {p.stem: p for p in files}


def _gpkg_layers(path: Path) -> list[str]:
    """Names of the layers of a GeoPackage that have geometry."""
    try:
        listing = pyogrio.list_layers(path)
    except (DataSourceError, DataLayerError) as exc:
        raise DataFileError(
            f"{path}: cannot open it as a GeoPackage ({exc}). Check that the file is "
            "complete and really a .gpkg."
        ) from exc
    return [str(name) for name, geometry_type in listing if geometry_type is not None]


def _read_ogr(
    path: Path, where: str, *, layer: str | None = None, encoding: str | None = None
) -> gpd.GeoDataFrame:
    options: dict[str, object] = {}
    if layer is not None:
        options["layer"] = layer
    if encoding is not None:
        options["encoding"] = encoding
    try:
        return pyogrio.read_dataframe(path, **options)
    except (DataSourceError, DataLayerError) as exc:
        prj = path.with_suffix(".prj")
        if path.suffix.lower() == ".shp" and prj.exists() and not _crs_parses(prj):
            raise CrsError(
                f"{prj}: unknown coordinate reference system ({exc}). Replace it with a "
                "valid .prj, e.g. CGCS2000 (EPSG:4490), or delete it and set the CRS in "
                "Python with frame.set_crs(...)."
            ) from exc
        raise DataFileError(
            f"{where}: cannot read it ({exc}). Check that the file is complete and "
            "not open for writing in another program."
        ) from exc


def _crs_parses(prj: Path) -> bool:
    try:
        CRS.from_wkt(prj.read_text(encoding="utf-8", errors="replace"))
    except CRSError:
        return False
    return True


def _no_crs_message(path: Path, where: str, kind: str) -> str:
    if kind == "shapefile":
        return (
            f"{path} has no .prj file, so its coordinates have no coordinate reference "
            f"system. Add {path.stem}.prj beside it (for CGCS2000 longitude/latitude, "
            "EPSG:4490, copy the .prj of a layer in that CRS), or read it with geopandas "
            "and call .set_crs('EPSG:4490') before loading."
        )
    return (
        f"{where} has no coordinate reference system. Set one in the GIS that wrote "
        "it, or read it with geopandas and call .set_crs('EPSG:4490') before loading."
    )


# -- Shapefile field names and text ------------------------------------------------------
def _field_mapping(config: GridConfig, field_names: Mapping[str, str] | None) -> dict[str, str]:
    mapping = dict(config.shapefile_fields)
    mapping.update(field_names or {})
    return mapping


def _read_shapefile(
    path: Path,
    encoding: str | None,
    config: GridConfig,
    field_names: Mapping[str, str] | None,
) -> gpd.GeoDataFrame:
    if encoding is None:
        encoding = detect_encoding(path)
    else:
        encoding = _canonical_encoding(
            encoding, f"unknown encoding {encoding!r}; use e.g. 'GBK' or 'UTF-8'"
        )
        _, items = _dbf_text(_require_dbf(path))
        _check_decodes(items, encoding, path, f"encoding={encoding!r}")
    frame = _read_ogr(path, str(path), encoding=encoding)
    reverse = {short: long for long, short in _field_mapping(config, field_names).items()}
    renames = {
        column: reverse[column]
        for column in frame.columns
        if column in reverse and reverse[column] not in frame.columns
    }
    return frame.rename(columns=renames)


def _shapefile_frame(
    frame: gpd.GeoDataFrame,
    where: str,
    encoding: str,
    config: GridConfig,
    field_names: Mapping[str, str] | None,
) -> gpd.GeoDataFrame:
    """``frame`` with DBF field names; checks names and text fit the DBF."""
    codec = _canonical_encoding(
        encoding, f"{where}: unknown encoding {encoding!r}; use e.g. 'UTF-8' or 'GBK'"
    )
    mapping = _field_mapping(config, field_names)
    shorts = {short: long for long, short in mapping.items() if short != long}
    geometry = frame.geometry.name
    renames: dict[str, str] = {}
    seen: dict[str, str] = {}
    for column in frame.columns:
        if column == geometry:
            continue
        if not isinstance(column, str):
            raise SchemaError(
                f"{where}: column name {column!r} is not text; rename it "
                "(frame.columns = frame.columns.astype(str))."
            )
        if column in mapping:
            field = mapping[column]
        elif column in shorts:
            raise SchemaError(
                f"{where}: column {column!r} would read back as {shorts[column]!r}, whose "
                f"declared Shapefile field name is {column!r}. Rename the column."
            )
        else:
            field = column
        size = _byte_length(field, codec, where)
        if size > _DBF_NAME_BYTES:
            if column in mapping:
                raise SchemaError(
                    f"{where}: the declared Shapefile field name {field!r} for column "
                    f"{column!r} is {size} bytes in {codec}; DBF field names hold at most "
                    f"{_DBF_NAME_BYTES}. Declare a shorter one with field_names="
                    f"{{{column!r}: '...'}}."
                )
            raise SchemaError(
                f"{where}: column {column!r} is {size} bytes long in {codec}, but Shapefile "
                f"(DBF) field names hold at most {_DBF_NAME_BYTES} bytes and gridgeo never "
                f"truncates them. Declare a short name: write_layer(..., field_names="
                f"{{{column!r}: 'short_name'}}) or write_system(..., field_names=...), or "
                "add it to GridConfig.shapefile_fields; pass the same field_names= when "
                "reading and the long name comes back. Or write a GeoPackage instead."
            )
        key = field.lower()
        if key in seen:
            raise SchemaError(
                f"{where}: columns {seen[key]!r} and {column!r} would both be stored as "
                f"DBF field {field!r} (field names ignore case). Rename one of them."
            )
        seen[key] = column
        if field != column:
            renames[column] = field
        _check_text_values(frame[column], column, codec, where)
    return frame.rename(columns=renames)


def _byte_length(text: str, codec: str, where: str) -> int:
    try:
        return len(text.encode(codec))
    except UnicodeEncodeError as exc:
        raise EncodingError(
            f"{where}: field name {text!r} cannot be written in {codec} "
            f"({text[exc.start : exc.end]!r}). Rename it, or write with "
            "encoding='UTF-8'."
        ) from exc


def _check_text_values(values: pd.Series, column: str, codec: str, where: str) -> None:
    """Every text value of ``values`` fits ``codec`` and a 254-byte DBF field."""
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return
    array = values.to_numpy()
    for value in pd.unique(values.dropna().to_numpy()):
        if not isinstance(value, str):
            continue
        row = int(np.flatnonzero(array == value)[0])
        try:
            size = len(value.encode(codec))
        except UnicodeEncodeError as exc:
            raise EncodingError(
                f"{where}, row {row}, column {column!r}: {value!r} contains "
                f"{value[exc.start : exc.end]!r}, which {codec} cannot represent. Write "
                "with encoding='UTF-8', or 'GB18030' if the reading software needs a "
                "GBK-compatible file."
            ) from exc
        if size > _DBF_TEXT_BYTES:
            raise SchemaError(
                f"{where}, row {row}, column {column!r}: the text is {size} bytes in "
                f"{codec}; a Shapefile text field holds at most {_DBF_TEXT_BYTES} and "
                "gridgeo never truncates it. Shorten it or write a GeoPackage."
            )


# -- encodings ---------------------------------------------------------------------------
def _canonical_encoding(name: str, message: str) -> str:
    """``name`` as an encoding both Python and GDAL (iconv) understand.

    ``"utf8"`` → ``"UTF-8"``, ``"936"`` / ``"CP936"`` / ``"GB2312"`` → ``"GBK"``
    (its superset), ``"88591"`` → ``"ISO-8859-1"``; unknown → :class:`EncodingError`
    with ``message``.
    """
    key = name.strip().strip("\x00").strip().upper().replace(" ", "")
    if key.startswith("ANSI") and key[4:].isdigit():
        key = key[4:]  # "ANSI 936"
    if key in _CODEPAGE_NUMBERS:
        return _CODEPAGE_NUMBERS[key]
    if key.isdigit():
        key = f"ISO-8859-{key[4:]}" if key.startswith("8859") and len(key) > 4 else f"CP{key}"
    try:
        python = codecs.lookup(key).name
    except LookupError:
        raise EncodingError(message + ".") from None
    if python in {"gbk", "gb2312"}:
        return "GBK"
    if python.startswith("iso8859-"):
        return "ISO-8859-" + python.removeprefix("iso8859-")
    return python.upper().replace("_", "-")


def _dbf_header(head: bytes, dbf: Path) -> tuple[int, int, int, int]:
    """``(record count, header length, record length, language driver id)``."""
    if len(head) < 32:
        raise DataFileError(f"{dbf} is not a DBF file (it is only {len(head)} bytes).")
    count, header, record = struct.unpack("<IHH", head[4:12])
    if header < 33 or record < 1:
        raise DataFileError(
            f"{dbf} has a damaged header (header {header} bytes, records {record} "
            "bytes); re-export the layer from your GIS."
        )
    return count, header, record, head[29]


def _dbf_text(dbf: Path) -> tuple[int, list[tuple[str, bytes]]]:
    """Language driver id and the non-ASCII text of a DBF.

    The text is ``(where, raw bytes)`` for field names and values.

    ``where`` reads like ``"row 3, field 'NAME'"`` (rows count from 0, as in
    the GeoDataFrame). Deleted records are skipped; values lose their padding.
    """
    data = dbf.read_bytes()
    count, header, record, ldid = _dbf_header(data[:32], dbf)
    items: list[tuple[str, bytes]] = []
    fields: list[tuple[str, int, int]] = []
    offset = 1  # byte 0 of every record is the deletion flag
    position = 32
    while position + 32 <= min(header, len(data)) and data[position] != 0x0D:
        descriptor = data[position : position + 32]
        raw_name = descriptor[:11].split(b"\x00", 1)[0]
        name = raw_name.decode("ascii", "backslashreplace")
        if not raw_name.isascii():
            items.append((f"field name {name!r}", raw_name))
        width = descriptor[16]
        if descriptor[11:12] == b"C":
            width += descriptor[17] << 8  # FoxPro: text widths above 255
            fields.append((name, offset, width))
        offset += width
        position += 32
    available = max(0, (len(data) - header) // record)
    rows = min(count, available)
    if not rows or not fields:
        return ldid, items
    table = np.frombuffer(data, dtype=np.uint8, count=rows * record, offset=header)
    table = table.reshape(rows, record)
    live = table[:, 0] != 0x2A  # "*" marks a deleted record
    for name, start, width in fields:
        block = table[:, start : min(start + width, record)]
        wanted = np.flatnonzero(live & (block >= 0x80).any(axis=1))
        for row in wanted:
            raw = block[row].tobytes().rstrip(b" \x00")
            items.append((f"row {int(row)}, field {name!r}", raw))
    return ldid, items


def _decodes(items: list[tuple[str, bytes]], encoding: str) -> str | None:
    """All ``items`` decoded strictly with ``encoding`` (joined by newlines), or ``None``."""
    try:
        # "\n" is never part of a multi-byte sequence in UTF-8 or GB18030, so the
        # joined text decodes exactly when every item does.
        return b"\n".join(raw for _, raw in items).decode(encoding)
    except UnicodeDecodeError:
        return None


def _first_failure(items: list[tuple[str, bytes]], encoding: str) -> tuple[str, bytes]:
    for where, raw in items:
        try:
            raw.decode(encoding)
        except UnicodeDecodeError:
            return where, raw
    return items[0]  # pragma: no cover - only called after a failure


def _show_bytes(raw: bytes) -> str:
    return raw[:24].hex(" ") + (" …" if len(raw) > 24 else "")


def _check_decodes(items: list[tuple[str, bytes]], encoding: str, shp: Path, source: str) -> None:
    """:class:`EncodingError` unless every text item decodes with ``encoding``."""
    if not items or _decodes(items, encoding) is not None:
        return
    where, raw = _first_failure(items, encoding)
    raise EncodingError(
        f"{shp}: {source} says the text is {encoding}, but {where} holds bytes "
        f"[{_show_bytes(raw)}] that are not valid {encoding}. Pass the right encoding, "
        f'e.g. encoding="GBK" or encoding="UTF-8", or fix {shp.stem}.cpg.'
    )


def _cjk_share(text: str) -> float:
    """Share of the non-ASCII characters of ``text`` that look like Chinese text.

    CJK ideographs and punctuation, full-width forms, Mongolian script and the
    middle dot of transliterated names count; the Latin, Greek, Cyrillic and
    other letters that GBK bytes turn into when misread as UTF-8 do not.
    """
    wide = [c for c in text if not c.isascii()]
    if not wide:
        return 1.0
    plausible = sum(
        "\u4e00" <= c <= "\u9fff"
        or "\u3400" <= c <= "\u4dbf"
        or "\u3000" <= c <= "\u303f"
        or "\uff00" <= c <= "\uffef"
        or "\u1800" <= c <= "\u18af"
        or "\u2000" <= c <= "\u206f"
        or c in "·°×"
        for c in wide
    )
    return plausible / len(wide)


def _sniff(items: list[tuple[str, bytes]], shp: Path, fallback: str | None) -> str:
    """Encoding of undeclared text: UTF-8 or GBK/GB18030, by strict decoding."""
    if not items:
        return "UTF-8"
    utf8 = _decodes(items, "UTF-8")
    chinese = "GBK"
    gb = _decodes(items, chinese)
    if gb is None:
        chinese = "GB18030"
        gb = _decodes(items, chinese)
    if utf8 is not None and gb is not None:
        return "UTF-8" if _cjk_share(utf8) >= _cjk_share(gb) else chinese
    if utf8 is not None:
        return "UTF-8"
    if gb is not None:
        return chinese
    if fallback is not None:
        return fallback  # a single-byte code page declared in the header decodes anything
    where, raw = _first_failure(items, "GB18030")
    raise EncodingError(
        f"{shp}: cannot tell the text encoding of this Shapefile. It has no .cpg file, "
        f"its DBF header does not say, and {where} holds bytes [{_show_bytes(raw)}] "
        "that are valid in neither UTF-8 nor GBK/GB18030. Pass the encoding it was "
        'written in, e.g. read_system(..., encoding="GBK") or read_layer(path, '
        f'encoding="GBK") (or the right one), or add {shp.stem}.cpg containing its name.'
    )


# -- codes ---------------------------------------------------------------------------------
def _codes_as_text(frame: gpd.GeoDataFrame, layer: str, config: GridConfig) -> gpd.GeoDataFrame:
    """``code`` / ``parent_code`` as text; numbers zero-padded to the level's code widths.

    A driver may hand back codes as integers or floats (a DBF numeric field, a
    GeoJSON number); the leading zeros they lost are restored from the width
    the level's codes have. Text is left exactly as read.
    """
    widths = {"code": 0, "parent_code": 0}
    if layer in config.level_names:
        parent = config.parent(layer)
        widths = {
            "code": config.level(layer).code_length,
            "parent_code": parent.code_length if parent else 0,
        }
    columns = [
        column
        for column in widths
        if column in frame.columns
        and (
            pd.api.types.is_numeric_dtype(frame[column])
            or pd.api.types.is_object_dtype(frame[column])
        )
    ]
    if not columns:
        return frame
    frame = frame.copy()
    for column in columns:
        width = widths[column]
        frame[column] = frame[column].astype(object).map(lambda v, w=width: _code_text(v, w))
    return frame


def _code_text(value: object, width: int) -> object:
    """A numeric code as zero-padded text; anything else unchanged (NaN → ``None``)."""
    if isinstance(value, bool | np.bool_):
        return value
    if isinstance(value, int | np.integer):
        text = str(int(value))
    elif isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return None
        if not float(value).is_integer():
            return value  # not a code at all; the code checks report it
        text = str(int(value))
    else:
        return value
    return text.zfill(width) if width else text


# -- atomic writes --------------------------------------------------------------------------
@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A new hidden folder beside ``target``, removed on exit whatever happens."""
    stage = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    stage.mkdir()
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _check_replaceable_folder(path: Path) -> None:
    if not path.exists():
        return
    if not path.is_dir():
        raise DataFileError(
            f"{path} exists and is a file; write the grid system to a folder (or a .gpkg file)."
        )
    foreign = sorted(p.name for p in path.iterdir() if not _is_layer_file(p))
    if foreign:
        raise DataFileError(
            f"{path} already holds files that are not layer files ({foreign[:5]}); "
            "write_system replaces the whole folder, so write to a new or empty folder, "
            "or move those files out first."
        )


def _swap_folder(new: Path, target: Path, stage: Path) -> None:
    """Move folder ``new`` to ``target``, replacing any old ``target``."""
    if not target.exists():
        os.replace(new, target)
        return
    aside = stage / "previous"
    os.replace(target, aside)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(aside, target)
        raise


# -- point tables (households, incidents) ---------------------------------------
_LON_NAMES = ("lon", "lng", "long", "longitude", "经度", "东经", "x")
_LAT_NAMES = ("lat", "latitude", "纬度", "北纬", "y")
_TABLE_SUFFIXES = (".csv", ".txt", ".xlsx", ".xls")


def read_points(
    path: str | os.PathLike[str],
    *,
    lon: str | None = None,
    lat: str | None = None,
    crs: str | int = "EPSG:4326",
    sheet: str | int = 0,
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Points from a CSV or Excel table with longitude/latitude columns, or a GIS file.

    Longitude and latitude columns are found by their usual names (``lon``,
    ``lng``, ``longitude``, ``经度``, ``x`` / ``lat``, ``latitude``, ``纬度``,
    ``y``, any case) unless given. Rows whose coordinates are missing or not
    numbers are kept, with no geometry and the reason in ``coord_error``, so
    :func:`gridgeo.assign.assign` reports them as ``invalid`` rather than
    dropping them. CSV text is read as UTF-8 (with or without BOM) or, failing
    that, GB18030 (Excel on Chinese Windows), unless ``encoding`` is given.

    Example
    -------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "hh.csv"
    >>> _ = p.write_text("户主,经度,纬度\\n王伟,108.63,40.74\\n李芳,abc,40.7\\n", encoding="utf-8")
    >>> pts = read_points(p)
    >>> pts["coord_error"].tolist()
    ['', 'non-numeric longitude']
    """
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"{path}: no such file. Check the path of the points table.")
    suffix = path.suffix.lower()
    if suffix not in _TABLE_SUFFIXES:
        return read_layer(path)
    table = _read_table(path, suffix, sheet, encoding)
    lon = lon or _find_column(table, _LON_NAMES, "longitude", "lon", path)
    lat = lat or _find_column(table, _LAT_NAMES, "latitude", "lat", path)
    for name in (lon, lat):
        if name not in table:
            raise SchemaError(f"{path}: no column {name!r}; the columns are {list(table.columns)}.")
    error = pd.Series("", index=table.index, dtype=object)
    values = {}
    for name, what in ((lon, "longitude"), (lat, "latitude")):
        raw = table[name]
        blank = raw.isna() | raw.astype(str).str.strip().eq("")
        number = pd.to_numeric(raw, errors="coerce")
        error[blank & error.eq("")] = f"missing {what}"
        error[~blank & number.isna() & error.eq("")] = f"non-numeric {what}"
        values[what] = number
    ok = error.eq("")
    geometry = np.full(len(table), None, dtype=object)
    geometry[ok.to_numpy()] = shapely.points(
        values["longitude"][ok].to_numpy(dtype=float), values["latitude"][ok].to_numpy(dtype=float)
    )
    out = gpd.GeoDataFrame(table, geometry=geometry, crs=crs)
    out["coord_error"] = error.to_numpy()
    return out


def _read_table(path: Path, suffix: str, sheet, encoding: str | None) -> pd.DataFrame:
    try:
        if suffix in (".xlsx", ".xls"):
            return pd.read_excel(path, sheet_name=sheet, dtype=object)
        for codec in [encoding] if encoding else ["utf-8-sig", "gb18030"]:
            try:
                return pd.read_csv(
                    path, dtype=object, encoding=codec, keep_default_na=False, na_values=[""]
                )
            except UnicodeDecodeError:
                continue
    except (ValueError, OSError) as exc:
        raise DataFileError(f"{path}: cannot read it as a table ({exc}).") from exc
    raise EncodingError(
        f"{path}: the text is neither UTF-8 nor GB18030. Pass encoding='...' "
        "(e.g. read_points(path, encoding='big5'))."
    )


def _find_column(
    table: pd.DataFrame, names: tuple[str, ...], what: str, arg: str, path: Path
) -> str:
    lowered = {str(c).strip().lower(): c for c in table.columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    raise SchemaError(
        f"{path}: no {what} column among {list(table.columns)}. Name it one of "
        f"{list(names)}, or pass {arg}='your column'."
    )


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV, UTF-8 with BOM so Excel shows the Chinese, atomically.

    A point geometry becomes ``lon``/``lat`` columns (unless the frame has them).
    """
    path = Path(path)
    _require_parent(path)
    out = pd.DataFrame(
        frame.drop(columns=frame.geometry.name) if isinstance(frame, gpd.GeoDataFrame) else frame
    )
    if isinstance(frame, gpd.GeoDataFrame):
        geoms = frame.geometry.to_numpy()
        usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        usable &= shapely.get_type_id(geoms) == 0
        for column, getter in (("lon", shapely.get_x), ("lat", shapely.get_y)):
            if column not in out and usable.any():
                values = np.full(len(out), np.nan)
                values[usable] = getter(geoms[usable])
                out[column] = values
    with _staging(path) as stage:
        tmp = stage / path.name
        out.to_csv(tmp, index=False, encoding="utf-8-sig")
        os.replace(tmp, path)
    return path


def write_html(text: str, path: str | os.PathLike[str]) -> Path:
    """Write an HTML document (UTF-8) atomically; a failed write keeps the old file."""
    path = Path(path)
    _require_parent(path)
    with _staging(path) as stage:
        tmp = stage / path.name
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path
