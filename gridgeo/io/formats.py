"""File formats, paths and the OGR reader shared by every layer file."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.raw
import shapely
from pyogrio.errors import DataLayerError, DataSourceError, FeatureError, FieldError
from pyogrio.errors import GeometryError as OgrGeometryError
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.errors import ShapelyError

from gridgeo.errors import CrsError, DataFileError, GeometryError, LayerError, option

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
                f"unknown format {format!r} for {path}; use {option('format', 'shapefile')}, "
                f"{option('format', 'gpkg')} or {option('format', 'parquet')}."
            )
        return kind
    if path.suffix.lower() == ".gpkg":
        return "gpkg"
    if path.is_dir() or not path.suffix:
        return "shapefile"
    raise DataFileError(
        f"{path}: cannot tell the format from the suffix {path.suffix!r}. Write to a "
        "….gpkg file, or to a folder (a name without suffix) of Shapefiles, or pass "
        f"{option('format', 'parquet')} / {option('format', 'shapefile')}."
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
    # A broken link stays in the listing, so reading it says what is wrong with it.
    entries = [p for p in folder.iterdir() if p.is_file() or p.is_symlink()]
    shp = sorted(p for p in entries if p.suffix.lower() == ".shp")
    parquet = sorted(p for p in entries if p.suffix.lower() == ".parquet")
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


def unreachable(path: Path) -> str | None:
    """Why ``path`` cannot be opened, or ``None`` when it can.

    Tells a symbolic-link loop and a broken link from a path that does not
    exist, so the message points at the real problem.
    """
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return (
                f"{path} is a symbolic link loop (the link, or a link on its path, leads "
                "back to itself), so there is nothing to read. Replace the link with the "
                "real file or folder, or point it at one"
            )
        if path.is_symlink():
            return (
                f"{path} is a broken symbolic link: it points to {os.readlink(path)!r}, "
                "which does not exist. Fix the link or give the real path"
            )
        if exc.errno == errno.EACCES:
            return f"{path} cannot be opened: permission denied. Check its permissions"
        return f"{path} does not exist. Check the path"
    return None


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
    except ShapelyError as exc:
        raise _geometry_error(path, where, layer, exc) from exc
    except (DataSourceError, DataLayerError, FeatureError, FieldError, OgrGeometryError) as exc:
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


def _geometry_error(path: Path, where: str, layer: str | None, exc: Exception) -> GeometryError:
    """The row whose stored geometry GEOS cannot build (a ring of NaN coordinates)."""
    _, _, wkb, _ = pyogrio.raw.read(path, layer=layer, columns=[])
    built = shapely.from_wkb(wkb, on_invalid="ignore")
    broken = np.flatnonzero(pd.isna(built) & ~pd.isna(wkb))
    row = f", row {int(broken[0])}" if broken.size else ""
    return GeometryError(
        f"{where}{row}: the stored geometry cannot be read as a shape ({exc}). Its "
        "coordinates are probably NaN or infinite, so a ring cannot close. Fix or "
        "delete the feature in your GIS, or re-export the layer."
    )


def _crs_parses(prj: Path) -> bool:
    try:
        CRS.from_wkt(_prj_text(prj))
    except CRSError:
        return False
    return True


def _prj_text(prj: Path) -> str:
    with prj.open("rb") as file:  # a .prj is a few hundred bytes; never read a huge one
        return file.read(64 * 1024).decode("utf-8", errors="replace")


def canonical_crs(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with its CRS given by authority code when the CRS has one.

    GeoParquet stores a CRS as PROJJSON, a GeoPackage as an EPSG code, a
    Shapefile as ESRI WKT; all three describe EPSG:4490 alike, but print
    differently. A CRS equal to an authority's definition is replaced by that
    definition, so every format reads back the same ``EPSG:4490``. A CRS with
    no equal authority definition is kept as it is.

    Example
    -------
    >>> from shapely import box
    >>> frame = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs="EPSG:4490")
    >>> frame = frame.set_crs(frame.crs.to_json(), allow_override=True)
    >>> str(frame.crs)[:9]
    '{"$schema'
    >>> str(canonical_crs(frame).crs)
    'EPSG:4490'
    """
    crs = frame.crs
    if crs is None:
        return frame
    found = crs.to_authority(min_confidence=70)
    if found is None or crs.srs == ":".join(found):
        return frame
    try:
        named = CRS.from_authority(*found)
    except CRSError:  # pragma: no cover - an authority that PROJ lists but cannot build
        return frame
    if named != crs:
        return frame
    return frame.set_crs(named, allow_override=True)


def no_crs_message(path: Path, where: str, kind: str) -> str:
    if kind == "shapefile":
        prj = path.with_suffix(".prj")
        if prj.is_file():
            with prj.open("rb") as file:
                head = file.read(61)
            text = head[:60].decode("ascii", errors="replace")
            shown = (
                repr(text) + (" …" if len(head) > 60 else "")
                if text.isprintable()
                else f"with the bytes [{head[:24].hex(' ')}{' …' if len(head) > 24 else ''}]"
            )
            return (
                f"{prj} cannot be read as a coordinate reference system: it begins "
                f"{shown}, which is not a WKT definition (the file is damaged, empty "
                f"or not a .prj at all), so {path.name} has no usable CRS. Replace {prj.name} "
                "with the .prj of a layer in the right CRS (for CGCS2000 longitude/"
                "latitude, EPSG:4490), or delete it, read the layer with geopandas and "
                "call .set_crs('EPSG:4490') before loading."
            )
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
