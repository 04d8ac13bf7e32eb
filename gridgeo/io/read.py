"""Reading grid systems and layers.

Every reader returns layers in one shape whatever the file format: codes as
text, the long column names gridgeo uses (Shapefile field names cut to 10
bytes are renamed back), and the CRS by its authority code (``EPSG:4490``),
so a Shapefile folder, a GeoPackage and a GeoParquet folder of the same data
read back equal.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.errors import ShapelyError

from gridgeo.codes import as_text
from gridgeo.config import BANNER, GridConfig, Level
from gridgeo.crs import COORDINATE_SYSTEMS, to_wgs84
from gridgeo.errors import CrsError, DataFileError, LayerError, option
from gridgeo.io.formats import (
    canonical_crs,
    file_format,
    folder_layers,
    gpkg_layers,
    no_crs_message,
    read_ogr,
    unreachable,
)
from gridgeo.io.shapefile import (
    no_encoding_outside_shapefiles,
    read_shapefile,
    recognise_fields,
    require_fields,
)
from gridgeo.model import GridSystem

__all__ = ["read_layer", "read_system"]


def read_system(
    path: str | os.PathLike[str],
    config: GridConfig = BANNER,
    *,
    strict: bool = True,
    encoding: str | None = None,
    field_names: Mapping[str, str] | None = None,
    sources: Iterable[str] | None = None,
    coords: str | None = None,
) -> GridSystem:
    """Read a grid system from a Shapefile folder, a GeoPackage or a GeoParquet folder.

    Layers named after ``config``'s levels become the levels; layers named
    in ``sources`` (by default ``config.dual_sources``: for the banner the
    party-building and sanitation grids) become source layers. Any other
    layer the file or folder holds (``roads``, ``buildings``) is not read: a
    warning names it.

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
        Text encoding of the Shapefiles that do not declare theirs
        (``"GBK"``, ``"UTF-8"``, ``"big5"``). A layer with a ``.cpg`` file
        that fits its bytes is read as its ``.cpg`` says (with a warning if
        ``encoding`` disagrees); ``encoding`` replaces a ``.cpg`` that does
        not fit, and the DBF header's language byte. By default every layer's
        encoding is detected with :func:`detect_encoding`.
    field_names:
        Extra column → DBF field name mapping used when the folder was
        written (extends ``config.shapefile_fields``).
    sources:
        Names of the non-level layers to read as source layers.
    coords:
        The coordinate system the longitudes and latitudes are really in, when
        it is not what the files' CRS says: ``"gcj02"`` for layers drawn on or
        downloaded from AMap (Gaode) or Tencent, ``"bd09"`` for Baidu. Every
        layer is converted to WGS-84 on read (see :func:`read_layer`).

    Returns
    -------
    GridSystem
        Every layer in the CRS its file gives, named by authority code when
        it has one (``system.crs`` prints ``EPSG:4490`` for all formats).

    Raises
    ------
    DataFileError
        The path is missing (or a broken or looping link), holds no layers,
        has an unknown format, or a file is truncated or damaged.
    LayerError
        A level is missing.
    SchemaError
        A layer lacks ``code``, ``name`` or ``parent_code`` under any name
        gridgeo recognises; the message names the fields that look like them.
    CrsError
        A layer has no CRS (a Shapefile without ``.prj``) or an unreadable
        one, or ``coords`` is given for a layer in a projected CRS.
    EncodingError
        A Shapefile's encoding cannot be determined or does not fit its bytes.

    Example
    -------
    >>> import tempfile
    >>> from gridgeo import load_demo
    >>> from gridgeo.io import write_layer
    >>> gpkg = Path(tempfile.mkdtemp()) / "banner.gpkg"
    >>> for name, frame in load_demo().items():
    ...     _ = write_layer(frame, gpkg, name)
    >>> _ = write_layer(load_demo()["town"], gpkg, "roads")  # not part of the system
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     system = read_system(gpkg)
    >>> system.counts()
    {'banner': 1, 'town': 11, 'grid': 662, 'micro_grid': 897}
    >>> "roads" in str(caught[0].message), str(system.crs)
    (True, 'EPSG:4490')
    """
    path = Path(path)
    reason = unreachable(path)
    if reason is not None:
        raise DataFileError(
            f"{reason}. read_system expects a folder of Shapefiles ({{layer}}.shp), a "
            ".gpkg file or a folder of GeoParquet files ({layer}.parquet)."
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
        files = dict.fromkeys(gpkg_layers(path), path)
    else:
        files = folder_layers(path)
        if next(iter(files.values())).suffix.lower() != ".shp":
            no_encoding_outside_shapefiles(encoding, "parquet", path)
    wanted = list(config.dual_sources if sources is None else sources)
    order = _system_layers(files, config, wanted, path)
    layers = {
        name: read_layer(
            files[name],
            name if path.is_file() else None,
            encoding=encoding,
            config=config,
            field_names=field_names,
            coords=coords,
        )
        for name in order
    }
    for name, frame in layers.items():
        where = f"{files[name]}, layer {name!r}" if path.is_file() else str(files[name])
        require_fields(frame, where, config, field_names)
    return GridSystem.from_layers(layers, config, strict=strict, origin=str(path))


def _system_layers(
    files: Mapping[str, Path], config: GridConfig, sources: list[str], path: Path
) -> list[str]:
    """The layers of ``files`` to read (levels, then sources); warns about the others."""
    levels = config.level_names
    missing = [name for name in levels if name not in files]
    if missing:
        raise LayerError(
            f"{path}: level(s) {missing} are missing; it holds layers {sorted(files)}. A "
            f"grid system needs one layer per level: {levels}. Rename the layers, or "
            "describe your levels in a GridConfig."
        )
    wanted = [*levels, *(name for name in sources if name in files and name not in levels)]
    ignored = sorted(set(files) - set(wanted))
    if ignored:
        warnings.warn(
            f"{path}: ignored layer(s) {ignored}, which are neither levels ({levels}) nor "
            f"source layers ({sources}); read one with gridgeo.io.read_layer if you need it.",
            stacklevel=3,
        )
    return wanted


def read_layer(
    path: str | os.PathLike[str],
    layer: str | None = None,
    *,
    encoding: str | None = None,
    config: GridConfig = BANNER,
    field_names: Mapping[str, str] | None = None,
    coords: str | None = None,
) -> gpd.GeoDataFrame:
    """Read one layer from a ``.shp``, ``.gpkg``, ``.parquet`` or ``.geojson`` file.

    Short field names are renamed back to the long column names (the
    declared ``parent`` → ``parent_code``, and names other software cut to
    10 characters, ``parent_cod`` → ``parent_code``; see
    :func:`~gridgeo.io.shapefile.recognise_fields`), ``code`` /
    ``parent_code`` come back as text (for a level of ``config`` numeric
    codes are zero-padded to the level's width), and the CRS is named by its
    authority code when it has one. Coordinates are returned as stored, even
    when they do not fit the CRS: the model checks them.

    Parameters
    ----------
    path:
        The file. Its suffix gives the format.
    layer:
        Layer inside a GeoPackage (needed when it holds more than one). For
        other formats the file is the layer, and ``layer`` (default: the file
        name without suffix) only names it.
    encoding:
        Shapefile text encoding, used as :func:`read_system` describes;
        detected with :func:`detect_encoding` when ``None``.
    config:
        Supplies the Shapefile field-name mapping and the code widths.
    field_names:
        Extra column → DBF field name mapping (extends ``config.shapefile_fields``).
    coords:
        The system the longitudes and latitudes are really in when the file's
        geographic CRS (usually EPSG:4326) does not say it: ``"gcj02"`` (also
        ``"amap"``, ``"gaode"``, ``"tencent"``) or ``"bd09"`` (``"baidu"``).
        Every vertex is converted to WGS-84 with :func:`gridgeo.crs.to_wgs84`
        (to about 0.1 mm); the layer keeps its CRS. Unconverted GCJ-02 lies
        300–700 m off, enough to turn shared borders into gaps and overlaps.
        ``None`` (default), ``"wgs84"`` or ``"cgcs2000"`` leave coordinates as stored.

    Returns
    -------
    geopandas.GeoDataFrame
        With a CRS (a layer without one is a :class:`CrsError`).

    Raises
    ------
    CrsError
        The layer has no CRS or an unreadable one; ``coords`` is not a known
        system, or is given for a layer in a projected CRS (GCJ-02 and BD-09
        are longitudes and latitudes).

    Example
    -------
    >>> import tempfile
    >>> from gridgeo import load_demo
    >>> from gridgeo.io import write_layer
    >>> shp = write_layer(load_demo()["town"], Path(tempfile.mkdtemp()) / "town.shp")
    >>> town = read_layer(shp)
    >>> town.loc[0, ["code", "name", "parent_code"]].tolist()
    ['150823100', '乌拉山镇', '150823']
    >>> str(town.crs)
    'EPSG:4490'
    """
    path = Path(path)
    kind = file_format(path, "read")
    if not path.is_file():
        reason = unreachable(path) or f"{path} is a folder, not a file"
        raise DataFileError(
            f"{reason}. read_layer reads one .shp, .gpkg, .parquet or .geojson file."
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
                    f"{path} holds {len(available)} layers {available}; pass "
                    f"{option('layer', available[0] if available else 'name')} (or "
                    "another) to say which one to read."
                )
            name = available[0]
            where = f"{path}, layer {name!r}"
        elif layer not in available:
            raise LayerError(
                f"{path} has no layer {layer!r}; it holds {available}. Pass one of those "
                f"as {option('layer')}."
            )
        frame = read_ogr(path, where, layer=name)
    elif kind == "parquet":
        try:
            frame = gpd.read_parquet(path)
        except (OSError, ValueError, ShapelyError) as exc:
            raise DataFileError(
                f"{path}: cannot read it as GeoParquet ({exc}). Write it with "
                "GeoDataFrame.to_parquet or gridgeo.io.write_layer."
            ) from exc
    else:
        frame = read_ogr(path, where)
    if frame.crs is None:
        raise CrsError(no_crs_message(path, where, kind))
    frame = recognise_fields(canonical_crs(frame), config, field_names)
    return _codes_as_text(_to_wgs84(frame, coords, where), name, config)


# -- coordinates ---------------------------------------------------------------------------
def _to_wgs84(frame: gpd.GeoDataFrame, coords: str | None, where: str) -> gpd.GeoDataFrame:
    """``frame`` with every vertex converted from ``coords`` (GCJ-02, BD-09) to WGS-84."""
    if coords is None:
        return frame
    if not isinstance(coords, str) or coords.strip().lower() not in COORDINATE_SYSTEMS:
        raise CrsError(
            f"{where}: unknown coordinate system {option('coords', str(coords))}. Use "
            f"{option('coords', 'gcj02')} for AMap, Gaode or Tencent data, "
            f"{option('coords', 'bd09')} for Baidu data, or leave it out for WGS-84 and "
            f"CGCS2000 (names accepted: {', '.join(COORDINATE_SYSTEMS)})."
        )
    crs = CRS.from_user_input(frame.crs)
    if not crs.is_geographic:
        raise CrsError(
            f"{where}: {option('coords', coords)} converts longitudes and latitudes, but "
            f"this layer is in the projected CRS {crs.to_string()} ({crs.name}). GCJ-02 "
            "and BD-09 exist only as longitude/latitude: leave the option out, or pass "
            "the layer as it came from AMap or Baidu, in degrees."
        )
    if frame.empty:
        return frame

    def convert(xy: np.ndarray) -> np.ndarray:
        out = xy.copy()  # a third column (heights of a PolygonZ) is kept as it is
        out[:, 0], out[:, 1] = to_wgs84(xy[:, 0], xy[:, 1], coords)
        return out

    moved = shapely.transform(frame.geometry.to_numpy(), convert, include_z=None)
    frame = frame.copy()
    frame[frame.geometry.name] = gpd.GeoSeries(moved, index=frame.index, crs=frame.crs)
    return frame


# -- codes ---------------------------------------------------------------------------------
def _codes_as_text(frame: gpd.GeoDataFrame, layer: str, config: GridConfig) -> gpd.GeoDataFrame:
    """``code`` / ``parent_code`` as text (:func:`gridgeo.codes.as_text`), padded to the level's widths.

    A driver may hand back codes as integers or floats (a DBF numeric field, a
    GeoJSON number); the leading zeros they lost are restored from the width
    the level's codes have. Text is left exactly as read.
    """
    widths = {"code": 0, "parent_code": 0}
    if layer in config.level_names:
        parent = config.parent(layer)
        widths = {
            "code": _stored_width(config.level(layer)),
            "parent_code": _stored_width(parent) if parent else 0,
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
        frame[column] = as_text(frame[column], widths[column])
    return frame


def _stored_width(level: Level) -> int:
    """Digits of the codes ``level`` stores (a root code ``150800`` keeps its zeros)."""
    return getattr(level, "code_width", 0) or level.code_length
