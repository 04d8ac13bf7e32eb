"""Reading grid systems and layers."""

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
from gridgeo.io.formats import file_format, folder_layers, gpkg_layers, no_crs_message, read_ogr
from gridgeo.io.shapefile import detect_encoding, no_encoding_outside_shapefiles, read_shapefile


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
        no_encoding_outside_shapefiles(encoding, "gpkg", path)
        names = gpkg_layers(path)
        files = {name: path for name in names}
    else:
        files = folder_layers(path)
        if next(iter(files.values())).suffix.lower() != ".shp":
            no_encoding_outside_shapefiles(encoding, "parquet", path)
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
    kind = file_format(path, "read")
    if not path.is_file():
        raise DataFileError(
            f"{path} does not exist{' (it is a folder)' if path.is_dir() else ''}. "
            "Check the path; read_layer reads one .shp, .gpkg, .parquet or .geojson file."
        )
    if kind != "shapefile":
        no_encoding_outside_shapefiles(encoding, kind, path)
    name = layer if layer is not None else path.stem
    where = f"{path}" if kind != "gpkg" else f"{path}, layer {name!r}"
    if kind == "shapefile":
        frame = read_shapefile(path, encoding, config, field_names)
    elif kind == "gpkg":
        available = gpkg_layers(path)
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
        frame = read_ogr(path, where, layer=name)
    elif kind == "parquet":
        try:
            frame = gpd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise DataFileError(
                f"{path}: cannot read it as GeoParquet ({exc}). Write it with "
                "GeoDataFrame.to_parquet or gridgeo.io.write_layer."
            ) from exc
    else:
        frame = read_ogr(path, where)
    if frame.crs is None:
        raise CrsError(no_crs_message(path, where, kind))
    return _codes_as_text(frame, name, config)


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
