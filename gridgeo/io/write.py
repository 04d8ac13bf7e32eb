"""Writing grid systems, layers and HTML, always atomically.

Every write goes through :func:`gridgeo.io.atomic.staging`: the data is
written into a hidden folder beside the target and moved into place only when
complete, missing parent folders are created, a full disk is a
:class:`~gridgeo.errors.DiskFullError`, and stale temporaries of killed
writers are cleaned up. GeoPackages are written as GeoPackage 1.2, which
every GDAL since 2.3 (QGIS 3.x) reads and validates.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridgeo.config import BANNER, GridConfig
from gridgeo.errors import (
    CrsError,
    DataFileError,
    EncodingError,
    GeometryError,
    SchemaError,
    option,
)
from gridgeo.io.atomic import (
    check_replaceable_folder,
    commit,
    staging,
    swap_files,
    swap_folder,
    write_bytes,
)
from gridgeo.io.formats import (
    DRIVERS,
    Format,
    check_layer_name,
    file_format,
    system_format,
)
from gridgeo.io.shapefile import (
    canonical_encoding,
    no_encoding_outside_shapefiles,
    shapefile_files,
    shapefile_frame,
)
from gridgeo.model import GridSystem

__all__ = ["GPKG_VERSION", "write_frame", "write_html", "write_layer", "write_system"]

GPKG_VERSION = "1.2"
"""GeoPackage version written (GDAL's ``VERSION`` creation option).

GDAL 3.9 and later write GeoPackage 1.4 by default, whose R-tree triggers
(``rtree_<t>_<g>_update5/6/7``) the GDAL 3.6–3.8 of QGIS 3.28 LTR does not
know: its ``validate_gpkg.py`` expects ``update1``–``update4``. Version 1.2 is
what those GDALs write themselves, with the same R-tree index.
"""

_SYSTEM_SUFFIXES: dict[str, Format] = {
    ".gpkg": "gpkg",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
}
_FORMAT_WORDS = {"parquet", "geoparquet", "gpkg", "geopackage"}
_GEOMETRY_FAMILIES = np.array(
    ["point", "line", "line", "polygon", "point", "line", "polygon", "geometry collection"]
)
"""Shapefile shape family of each shapely geometry type id (Point = 0 … GeometryCollection = 7)."""
_Date = dt.date | dt.datetime


# -- writing ----------------------------------------------------------------------
def write_system(
    system: GridSystem,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    encoding: str = "UTF-8",
    field_names: Mapping[str, str] | None = None,
    date: _Date | None = None,
) -> Path:
    """Write every level, then every source layer, of ``system``.

    The whole system is written to a hidden temporary file or folder beside
    ``path`` and then moved into place, so ``path`` holds either the old or
    the new system, never a mixture, and a failed write leaves no junk.
    Missing parent folders of ``path`` are created.

    Parameters
    ----------
    system:
        The grid system.
    path:
        Where to write; its suffix gives the format: ``….gpkg`` a GeoPackage
        file, ``….parquet`` a folder of GeoParquet files, a name without
        suffix a folder of Shapefiles. A folder is replaced as a whole, so it
        must hold nothing but layer files.
    format:
        ``"shapefile"``, ``"parquet"`` or ``"gpkg"``, for a ``path`` whose
        suffix does not say (``out/parquet`` is ambiguous and refused
        without it).
    encoding:
        Text encoding of Shapefiles (a ``.cpg`` file records it). Other
        formats are always UTF-8.
    field_names:
        Column → DBF field name for long column names not declared in
        ``system.config.shapefile_fields``. Pass the same mapping to
        :func:`read_system`.
    date:
        The date recorded inside the files: the DBF header of Shapefiles and
        ``last_change`` of GeoPackage layers. By default the
        ``SOURCE_DATE_EPOCH`` environment variable (reproducible builds) if
        set, else today. Fix it to write byte-identical files.

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
    GeometryError
        A layer written to a Shapefile mixes points, lines and polygons.
    DiskFullError
        The disk filled up; the previous ``path`` is unchanged.
    DataFileError
        The format cannot be inferred, the target folder holds other files,
        or the folder cannot be written into.

    Example
    -------
    >>> import tempfile
    >>> from gridgeo import load_demo
    >>> out = Path(tempfile.mkdtemp()) / "out" / "banner.gpkg"  # out/ is created
    >>> write_system(load_demo(), out).name
    'banner.gpkg'
    >>> write_system(load_demo(), out.parent / "banner.parquet").is_dir()
    True
    """
    path = Path(path)
    kind = _system_format(path, format)
    encoding = _check_encoding(encoding, kind, path)
    layers = {**system.levels, **system.sources}
    for name in layers:
        check_layer_name(name, path)
    stamp = _file_date(date)
    if kind == "gpkg":
        if path.is_dir():
            raise DataFileError(f"{path} is a folder; a GeoPackage is written to a .gpkg file.")
        with staging(path, size=lambda: _estimate(layers.values(), kind)) as stage:
            temp = stage / path.name
            for name, frame in layers.items():
                write_frame(frame, temp, kind="gpkg", layer=name, encoding=None)
            _stamp_gpkg(temp, stamp)
            commit(temp, path)
        return path
    suffix = ".shp" if kind == "shapefile" else ".parquet"
    if kind == "shapefile":
        prepared = {
            name: _shapefile_layer(
                frame, f"{path}, layer {name!r}", encoding, system.config, field_names
            )
            for name, frame in layers.items()
        }
    else:
        prepared = dict(layers)
    check_replaceable_folder(path)
    with staging(path, size=lambda: _estimate(prepared.values(), kind)) as stage:
        folder = stage / path.name
        folder.mkdir()
        for name, frame in prepared.items():
            write_frame(
                frame,
                folder / f"{name}{suffix}",
                kind=kind,
                layer=name,
                encoding=encoding if kind == "shapefile" else None,
            )
        for dbf in folder.glob("*.dbf"):
            _stamp_dbf(dbf, stamp)
        swap_folder(folder, path, stage)
    return path


def write_layer(
    frame: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    layer: str | None = None,
    *,
    encoding: str = "UTF-8",
    config: GridConfig = BANNER,
    field_names: Mapping[str, str] | None = None,
    date: _Date | None = None,
) -> Path:
    """Write one layer to a ``.shp``, ``.gpkg``, ``.parquet`` or ``.geojson`` file.

    Writing to an existing GeoPackage replaces (or adds) only ``layer`` and
    keeps its other layers. The file is written beside ``path`` first and
    moved into place, so a failure leaves the previous file intact; a
    Shapefile's parts (``.shp``, ``.shx``, ``.dbf``, …) are replaced as one
    set, and old parts the new layer does not have (a stale ``.qix``) go.
    Missing parent folders of ``path`` are created.

    A Shapefile holds one kind of geometry, so a layer mixing points, lines
    and polygons (``check`` defects: gaps and overlaps with point findings) is
    refused before anything is written, with the advice to write a
    GeoPackage, which holds them all in one layer.

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
    date:
        The date recorded inside the file (DBF header, GeoPackage
        ``last_change``); see :func:`write_system`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    SchemaError, EncodingError, CrsError, GeometryError, DiskFullError, DataFileError

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
    kind = file_format(path, "write")
    name = layer if layer is not None else path.stem
    if not isinstance(frame, gpd.GeoDataFrame):
        raise SchemaError(f"{path}: expected a GeoDataFrame, got {type(frame).__name__}.")
    if frame.crs is None:
        raise CrsError(
            f"{path}: the layer to write has no coordinate reference system. Set one "
            "first, e.g. frame.set_crs('EPSG:4490') for CGCS2000 longitude/latitude."
        )
    encoding = _check_encoding(encoding, kind, path)
    if path.is_dir():
        raise DataFileError(f"{path} is a folder; write_layer writes one file.")
    stamp = _file_date(date)
    if kind == "shapefile":
        prepared = _shapefile_layer(frame, str(path), encoding, config, field_names)
        with staging(path, size=lambda: _estimate([prepared], kind)) as stage:
            write_frame(prepared, stage / path.name, kind=kind, layer=name, encoding=encoding)
            _stamp_dbf(stage / path.with_suffix(".dbf").name, stamp)
            parts = [p for p in stage.iterdir() if not p.name.startswith(".")]
            parts.sort(key=lambda p: p.name != path.name)  # the .shp first: moved in last
            swap_files(parts, shapefile_files(path), path.parent, stage)
        return path
    existing = path.stat().st_size if kind == "gpkg" and path.is_file() else 0
    with staging(path, size=lambda: existing + _estimate([frame], kind)) as stage:
        temp = stage / path.name
        if existing:
            shutil.copy2(path, temp)
        write_frame(frame, temp, kind=kind, layer=name, encoding=None)
        if kind == "gpkg":
            _stamp_gpkg(temp, stamp)
        commit(temp, path)
    return path


def write_html(text: str, path: str | os.PathLike[str]) -> Path:
    """Write an HTML document (UTF-8) atomically; a failed write keeps the old file.

    Every byte is forced to the disk and counted before the file is moved into
    place, so a full disk is a :class:`~gridgeo.errors.DiskFullError`, never a
    truncated page reported as written. Missing parent folders are created.

    Example
    -------
    >>> import tempfile
    >>> out = write_html("<h1>乌拉特前旗</h1>", Path(tempfile.mkdtemp()) / "maps" / "m.html")
    >>> out.read_text(encoding="utf-8")
    '<h1>乌拉特前旗</h1>'
    """
    return write_bytes(text.encode("utf-8"), path)


def write_frame(
    frame: gpd.GeoDataFrame,
    path: Path,
    *,
    kind: Format,
    layer: str,
    encoding: str | None = None,
    append: bool = False,
) -> None:
    """Write (or append) ``frame`` to ``path``, a temporary path: the one write step.

    GDAL warnings about lost characters, truncated values or renamed fields
    become errors, so nothing is changed silently. Not atomic by itself: call
    it on a path inside :func:`gridgeo.io.atomic.staging` and move the result
    into place with :func:`gridgeo.io.atomic.commit`, as :func:`write_layer`
    and :func:`gridgeo.io.stream.open_writer` do.

    Parameters
    ----------
    frame:
        The rows, ready for the format (a Shapefile's already carry DBF field
        names, see :func:`gridgeo.io.shapefile.shapefile_frame`).
    path:
        The file to write.
    kind:
        ``"gpkg"``, ``"shapefile"``, ``"geojson"`` or ``"parquet"``.
    layer:
        Layer name inside a GeoPackage.
    encoding:
        Shapefile text encoding; ``None`` for the other formats.
    append:
        Add the rows to the layer that earlier calls wrote (GeoPackage,
        Shapefile); its columns must be the same.

    Raises
    ------
    EncodingError
        GDAL could not write some characters in ``encoding``.
    SchemaError
        GDAL would truncate a value or rename a field.

    Example
    -------
    >>> import tempfile
    >>> from gridgeo import load_demo
    >>> out = Path(tempfile.mkdtemp()) / "towns.gpkg"
    >>> towns = load_demo()["town"]
    >>> write_frame(towns, out, kind="gpkg", layer="town")
    >>> write_frame(towns, out, kind="gpkg", layer="town", append=True)
    >>> len(pyogrio.read_dataframe(out)) == 2 * len(towns)
    True
    """
    if kind == "parquet":
        if append:
            raise ValueError("GeoParquet files are written whole; use gridgeo.io.stream")
        frame.to_parquet(path, index=False)
        return
    options: dict[str, object] = {}
    if kind == "shapefile":
        options["encoding"] = encoding
    else:
        options["promote_to_multi"] = False  # keep Polygon and MultiPolygon as they are
    if kind == "gpkg" and not path.exists():
        options["dataset_options"] = {"VERSION": GPKG_VERSION}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pyogrio.write_dataframe(
            frame,
            path,
            layer=layer if kind == "gpkg" else None,  # other formats: the file is the layer
            driver=DRIVERS[kind],
            append=append,
            **options,
        )
    for warning in caught:
        text = str(warning.message)
        if "converted correctly" in text:
            raise EncodingError(
                f"{path.name}: GDAL could not write some characters in {encoding} "
                f"({text}). Write with {option('encoding', 'UTF-8')} or "
                f"{option('encoding', 'GB18030')}."
            )
        if "truncated" in text or "laundered" in text:
            raise SchemaError(f"{path.name}, layer {layer!r}: {text}")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


# -- formats, encodings, geometry ----------------------------------------------------------------
def _system_format(path: Path, format: str | None) -> Format:
    """The container of a grid system at ``path``: from ``format``, else from the suffix."""
    suffix = path.suffix.lower()
    if suffix == ".shp":
        raise DataFileError(
            f"{path}: a grid system is several layers, so it cannot be one .shp file. "
            f"Write it to a folder of Shapefiles ({path.with_suffix('')}), a .gpkg file, "
            "or write one layer with write_layer."
        )
    implied = _SYSTEM_SUFFIXES.get(suffix)
    if format is not None:
        kind = system_format(path, format)
        if implied is not None and implied != kind:
            raise DataFileError(
                f"{path}: its suffix says {implied} but {option('format', format)} asks "
                f"for {kind}. Rename the target or change {option('format')}."
            )
        return kind
    if implied is not None:
        return implied
    hint = (
        f"Name it ….gpkg (GeoPackage), ….parquet (a folder of GeoParquet files) or give "
        f"a name without suffix (a folder of Shapefiles), or pass "
        f"{option('format', 'parquet')} (or 'gpkg', 'shapefile')."
    )
    if suffix:
        raise DataFileError(
            f"{path}: cannot tell the format of a grid system from the suffix "
            f"{path.suffix!r}. {hint}"
        )
    if path.name.lower() in _FORMAT_WORDS:
        raise DataFileError(
            f"{path}: the folder is named like a format ({path.name!r}) but has no suffix, "
            f"so it is unclear whether Shapefiles or {path.name} files are wanted. {hint}"
        )
    if path.is_dir() and any(p.suffix.lower() == ".parquet" for p in path.iterdir()):
        raise DataFileError(
            f"{path} holds GeoParquet files; writing Shapefiles would replace them. Pass "
            f"{option('format', 'parquet')} to replace them with GeoParquet, or "
            f"{option('format', 'shapefile')} to replace them with Shapefiles."
        )
    return "shapefile"


def _check_encoding(encoding: str, kind: Format, path: Path) -> str:
    if kind == "shapefile":
        return canonical_encoding(
            encoding, f"{path}: unknown encoding {encoding!r}; use e.g. 'UTF-8' or 'GBK'"
        )
    no_encoding_outside_shapefiles(encoding, kind, path)
    return encoding


def _shapefile_layer(
    frame: gpd.GeoDataFrame,
    where: str,
    encoding: str,
    config: GridConfig,
    field_names: Mapping[str, str] | None,
) -> gpd.GeoDataFrame:
    """``frame`` ready for a Shapefile: one geometry type, DBF field names, text that fits."""
    _one_geometry_family(frame, where)
    return shapefile_frame(frame, where, encoding, config, field_names)


def _one_geometry_family(frame: gpd.GeoDataFrame, where: str) -> None:
    """:class:`GeometryError` if ``frame`` mixes points, lines and polygons.

    A Shapefile has one shape type. Single and multi parts of one family
    (Polygon and MultiPolygon) share it; points and polygons cannot.
    """
    geometry = frame.geometry.to_numpy()
    present = geometry[~(shapely.is_missing(geometry) | shapely.is_empty(geometry))]
    families = _GEOMETRY_FAMILIES[shapely.get_type_id(present)]
    names, counts = np.unique(families, return_counts=True)
    if len(names) <= 1 and "geometry collection" not in names:
        return
    found = ", ".join(f"{n} {name}" for name, n in zip(names, counts, strict=True))
    raise GeometryError(
        f"{where}: the layer mixes geometry types ({found} rows), but a Shapefile holds "
        "one type of geometry. Write it to a GeoPackage instead (the same name ending in "
        ".gpkg keeps every row in one layer), or write the rows of each type to its own "
        "Shapefile (e.g. frame[frame.geom_type.isin(['Polygon', 'MultiPolygon'])])."
    )


# -- sizes and dates -------------------------------------------------------------------------------
def _estimate(frames: Iterable[gpd.GeoDataFrame], kind: Format) -> int:
    """Bytes the layers need on disk in format ``kind``, roughly (for a full-disk message).

    Coordinates take 16 bytes each. A GeoPackage adds its attributes and about
    64 bytes a row (row, geometry header, R-tree); GeoParquet about the
    attributes' size (compression is ignored: an upper bound); a Shapefile's
    DBF gives every row the widest value of each column, and the ``.shp``
    and ``.shx`` about 56 bytes a row.
    """
    total = 0
    for frame in frames:
        attributes = frame.drop(columns=frame.geometry.name)
        total += 16 * int(shapely.get_num_coordinates(frame.geometry.to_numpy()).sum())
        if kind == "shapefile":
            widths = [
                int(values.astype(str).str.encode("utf-8").str.len().max() or 0)
                if not pd.api.types.is_numeric_dtype(values)
                else 24
                for _, values in attributes.items()
            ]
            total += len(frame) * (57 + sum(widths))
        else:
            total += int(attributes.memory_usage(deep=True, index=False).sum())
            total += 0 if kind == "parquet" else 64 * len(frame)
    return total


def _file_date(date: _Date | None) -> dt.datetime | None:
    """The date to record in written files: ``date``, else ``SOURCE_DATE_EPOCH``, else none."""
    if date is not None:
        if isinstance(date, dt.datetime):
            return date.astimezone(dt.UTC) if date.tzinfo else date.replace(tzinfo=dt.UTC)
        return dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return None
    try:
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise DataFileError(
            f"SOURCE_DATE_EPOCH={epoch!r} is not a number of seconds since 1970; set it "
            "to e.g. 1704067200, or unset it."
        ) from None


def _stamp_dbf(dbf: Path, stamp: dt.datetime | None) -> None:
    """Set the last-update date of a DBF header (bytes 1–3: years since 1900, month, day)."""
    if stamp is None or not dbf.is_file():
        return
    if not 1900 <= stamp.year <= 2155:
        raise DataFileError(f"{dbf.name}: a DBF header holds years 1900–2155, not {stamp.year}.")
    with open(dbf, "r+b") as stream:
        stream.seek(1)
        stream.write(bytes([stamp.year - 1900, stamp.month, stamp.day]))


def _stamp_gpkg(gpkg: Path, stamp: dt.datetime | None) -> None:
    """Set ``gpkg_contents.last_change`` of every layer (GDAL writes the current time)."""
    if stamp is None:
        return
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    connection = sqlite3.connect(gpkg)
    try:
        with connection:
            connection.execute("UPDATE gpkg_contents SET last_change = ?", (text,))
    finally:
        connection.close()
