"""Writing grid systems, layers and HTML, always atomically."""

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
from gridgeo.io.atomic import check_replaceable_folder, staging, swap_folder
from gridgeo.io.formats import DRIVERS, Format, check_layer_name, file_format, require_parent, system_format
from gridgeo.io.shapefile import canonical_encoding, no_encoding_outside_shapefiles, shapefile_files, shapefile_frame


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
    kind = system_format(path, format)
    if kind == "shapefile":
        encoding = canonical_encoding(
            encoding, f"{path}: unknown encoding {encoding!r}; use e.g. 'UTF-8' or 'GBK'"
        )
    else:
        no_encoding_outside_shapefiles(encoding, kind, path)
    layers = {**system.levels, **system.sources}
    for name in layers:
        check_layer_name(name, path)
    require_parent(path)
    if kind == "gpkg":
        if path.is_dir():
            raise DataFileError(f"{path} is a folder; a GeoPackage is written to a .gpkg file.")
        with staging(path) as stage:
            temp = stage / path.name
            for name, frame in layers.items():
                _write_frame(frame, temp, kind="gpkg", layer=name, encoding=None)
            os.replace(temp, path)
        return path
    suffix = ".shp" if kind == "shapefile" else ".parquet"
    if kind == "shapefile":
        prepared = {
            name: shapefile_frame(
                frame, f"{path}, layer {name!r}", encoding, system.config, field_names
            )
            for name, frame in layers.items()
        }
    else:
        prepared = dict(layers)
    check_replaceable_folder(path)
    with staging(path) as stage:
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
    kind = file_format(path, "write")
    name = layer if layer is not None else path.stem
    if not isinstance(frame, gpd.GeoDataFrame):
        raise SchemaError(f"{path}: expected a GeoDataFrame, got {type(frame).__name__}.")
    if frame.crs is None:
        raise CrsError(
            f"{path}: the layer to write has no coordinate reference system. Set one "
            "first, e.g. frame.set_crs('EPSG:4490') for CGCS2000 longitude/latitude."
        )
    if kind == "shapefile":
        encoding = canonical_encoding(
            encoding, f"{path}: unknown encoding {encoding!r}; use e.g. 'UTF-8' or 'GBK'"
        )
    else:
        no_encoding_outside_shapefiles(encoding, kind, path)
    require_parent(path)
    if path.is_dir():
        raise DataFileError(f"{path} is a folder; write_layer writes one file.")
    if kind == "shapefile":
        prepared = shapefile_frame(frame, str(path), encoding, config, field_names)
        with staging(path) as stage:
            _write_frame(prepared, stage / path.name, kind=kind, layer=name, encoding=encoding)
            written = {p.name for p in stage.iterdir()}
            for file in sorted(stage.iterdir(), key=lambda p: p.suffix.lower() == ".shp"):
                os.replace(file, path.parent / file.name)
            for stale in shapefile_files(path):
                if stale.name not in written:
                    stale.unlink()
        return path
    with staging(path) as stage:
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
            driver=DRIVERS[kind],
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


def write_html(text: str, path: str | os.PathLike[str]) -> Path:
    """Write an HTML document (UTF-8) atomically; a failed write keeps the old file."""
    path = Path(path)
    require_parent(path)
    with staging(path) as stage:
        tmp = stage / path.name
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path
