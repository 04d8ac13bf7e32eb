"""Point tables (households, incidents): CSV and Excel in, CSV out."""

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
from gridgeo.io.atomic import staging
from gridgeo.io.formats import require_parent
from gridgeo.io.read import read_layer


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
    require_parent(path)
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
    with staging(path) as stage:
        tmp = stage / path.name
        out.to_csv(tmp, index=False, encoding="utf-8-sig")
        os.replace(tmp, path)
    return path
