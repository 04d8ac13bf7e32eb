"""File formats, paths and the OGR reader shared by every layer file."""

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
DRIVERS: dict[Format, str] = {
    "shapefile": "ESRI Shapefile",
    "gpkg": "GPKG",
    "geojson": "GeoJSON",
}
SHAPEFILE_SIDECARS = (
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


def file_format(path: Path, action: str) -> Format:
    name = path.name.lower()
    for suffix, kind in _SUFFIX_FORMATS.items():
        if name.endswith(suffix):
            return kind
    raise DataFileError(
        f"{path}: cannot {action} a layer with suffix {path.suffix or '(none)'!r}; "
        "use .shp, .gpkg, .parquet or .geojson."
    )


def system_format(path: Path, format: str | None) -> Format:
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


def check_layer_name(name: str, path: Path) -> None:
    if not name or name in {".", ".."} or any(c in name for c in "/\\:"):
        raise LayerError(f"{path}: layer name {name!r} cannot be a file name; rename the layer.")


def require_parent(path: Path) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise DataFileError(
            f"{path}: the folder {parent} does not exist; create it first "
            "(gridgeo never creates folders it was not asked for)."
        )


def is_layer_file(file: Path) -> bool:
    name = file.name.lower()
    return file.is_file() and (
        name.endswith(".parquet") or any(name.endswith(s) for s in SHAPEFILE_SIDECARS)
    )


def folder_layers(folder: Path) -> dict[str, Path]:
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


def gpkg_layers(path: Path) -> list[str]:
    """Names of the layers of a GeoPackage that have geometry."""
    try:
        listing = pyogrio.list_layers(path)
    except (DataSourceError, DataLayerError) as exc:
        raise DataFileError(
            f"{path}: cannot open it as a GeoPackage ({exc}). Check that the file is "
            "complete and really a .gpkg."
        ) from exc
    return [str(name) for name, geometry_type in listing if geometry_type is not None]


def read_ogr(
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


def no_crs_message(path: Path, where: str, kind: str) -> str:
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
