"""Writing a table that arrives in chunks into one file, atomically.

:func:`open_writer` is the streaming twin of :func:`~gridgeo.io.write_layer`
and :func:`~gridgeo.io.write_table`. ``gridgeo assign`` reads a big points
table a chunk at a time, assigns the chunk and hands it to the writer, so
memory grows with the chunk, not with the file. The chunks go into one file
in a hidden stage beside the target (:func:`gridgeo.io.atomic.staging`),
which replaces the target only when the ``with`` block ends without an
error: a failure midway, a full disk (:class:`~gridgeo.errors.DiskFullError`)
or an interrupt leave the previous file (or nothing) at the target, and no
temporary file.

The file holds what one write of all the chunks together holds:

``.csv``
    As :func:`~gridgeo.io.write_table` writes it: UTF-8 with a BOM, CRLF,
    point geometry as ``lon``/``lat`` columns, text cells that Excel would run
    as formulas prefixed with ``'``.
``.gpkg``
    One layer (GeoPackage 1.2), as :func:`~gridgeo.io.write_layer` writes it;
    the other layers of an existing file are kept.
``.parquet``
    GeoParquet (geometry as WKB), one row group per chunk. Column types are
    kept: numbers stay numbers, nullable integers stay ``Int64``,
    categoricals stay categoricals.
``.shp``
    Long column names stored under their declared DBF field names
    (:attr:`GridConfig.shapefile_fields
    <gridgeo.config.GridConfig.shapefile_fields>` plus ``field_names``), so
    :func:`~gridgeo.io.read_layer` gives the long names back; text is checked
    to fit ``encoding`` and a DBF field. The parts are replaced as one set.

Every chunk must have the columns (names and order) and the CRS of the first.

Example
-------
>>> import tempfile
>>> import geopandas as gpd
>>> from gridgeo.io import read_layer
>>> out = Path(tempfile.mkdtemp()) / "points.gpkg"
>>> chunk = gpd.GeoDataFrame(
...     {"n": [1, 2]}, geometry=gpd.points_from_xy([108.6, 108.7], [40.7, 40.8]), crs=4490
... )
>>> with open_writer(out) as writer:
...     writer.write(chunk)
...     writer.write(chunk)
>>> read_layer(out)["n"].tolist()
[1, 2, 1, 2]
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from pyogrio.errors import DataLayerError, DataSourceError, FieldError

import gridgeo
from gridgeo.config import BANNER, GridConfig
from gridgeo.crs import same_crs
from gridgeo.errors import CrsError, DataFileError, GeometryError, SchemaError
from gridgeo.io.atomic import commit, staging, swap_files
from gridgeo.io.formats import check_layer_name
from gridgeo.io.shapefile import (
    canonical_encoding,
    no_encoding_outside_shapefiles,
    shapefile_files,
    shapefile_frame,
)
from gridgeo.io.tables import neutralise_formulas
from gridgeo.io.write import write_frame

__all__ = ["STREAM_SUFFIXES", "StreamWriter", "open_writer"]

_Kind = Literal["csv", "gpkg", "parquet", "shapefile"]
_SUFFIX_KINDS: dict[str, _Kind] = {
    ".csv": "csv",
    ".gpkg": "gpkg",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
    ".shp": "shapefile",
}
STREAM_SUFFIXES = tuple(_SUFFIX_KINDS)
"""Suffixes :func:`open_writer` writes."""

_OGR_ERRORS = (DataSourceError, DataLayerError, FieldError)
_GEOPARQUET_VERSION = "1.0.0"
_TYPE_NAMES = [
    "Point",
    "LineString",
    "LinearRing",
    "Polygon",
    "MultiPoint",
    "MultiLineString",
    "MultiPolygon",
    "GeometryCollection",
]


@contextmanager
def open_writer(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    config: GridConfig = BANNER,
    field_names: Mapping[str, str] | None = None,
    encoding: str = "UTF-8",
) -> Iterator[StreamWriter]:
    """A writer that appends frames, one :meth:`~StreamWriter.write` at a time, to one file.

    The file is written in a hidden stage beside ``path`` and moved into
    place when the ``with`` block ends without an error; if the block fails
    (an error of any kind, a full disk, an interrupt), ``path`` keeps its
    previous content (or stays absent) and no temporary file is left.
    Missing parent folders are created (and removed again on failure).

    Parameters
    ----------
    path:
        A ``.csv``, ``.gpkg``, ``.parquet`` or ``.shp`` file; its suffix
        gives the format (see :mod:`gridgeo.io.stream`).
    layer:
        Layer name inside a GeoPackage (default: the file name without
        suffix). An existing GeoPackage keeps its other layers.
    config:
        Supplies the declared Shapefile field names.
    field_names:
        Column → DBF field name for long column names not declared in
        ``config.shapefile_fields``; pass the same mapping to
        :func:`~gridgeo.io.read_layer`.
    encoding:
        Shapefile text encoding (recorded in a ``.cpg`` file). The other
        formats are always UTF-8.

    Yields
    ------
    StreamWriter
        Call ``write(frame)`` for each chunk, in order. For a GIS format each
        frame is a GeoDataFrame with a CRS; a CSV also takes plain
        DataFrames.

    Raises
    ------
    DataFileError
        ``path`` has another suffix, is a folder or cannot be written, or no
        frame was written.
    DiskFullError
        The disk filled up during any write; the previous ``path`` is
        unchanged.
    SchemaError
        A frame's columns differ from the first frame's; a column name does
        not fit a DBF field and is not declared; a value does not fit.
    CrsError
        A frame has no CRS, or another CRS than the first frame.
    EncodingError, GeometryError
        Shapefile text that ``encoding`` cannot hold; geometry of another type
        than the Shapefile's.

    See Also
    --------
    gridgeo.io.write_layer, gridgeo.io.write_table : write a whole frame.

    Notes
    -----
    A CSV gets ``lon``/``lat`` columns from a point geometry whenever the
    first frame lacks them (empty where a row has no point), so every chunk
    has the same columns; :func:`~gridgeo.io.write_table` leaves them out for
    a table without any point at all.

    Example
    -------
    >>> import tempfile
    >>> import pandas as pd
    >>> out = Path(tempfile.mkdtemp()) / "people.csv"
    >>> with open_writer(out) as writer:
    ...     for names in (["王伟", "=1+1"], ["李芳"]):
    ...         writer.write(pd.DataFrame({"name": names}))
    >>> out.read_text(encoding="utf-8-sig").splitlines()
    ['name', '王伟', "'=1+1", '李芳']
    """
    path = Path(path)
    kind = _stream_format(path)
    if kind == "shapefile":
        encoding = canonical_encoding(
            encoding, f"{path}: unknown encoding {encoding!r}; use e.g. 'UTF-8' or 'GBK'"
        )
    else:
        no_encoding_outside_shapefiles(encoding, kind, path)
    name = layer if layer is not None else path.stem
    check_layer_name(name, path)
    if path.is_dir():
        raise DataFileError(f"{path} is a folder; give the path of a file to write.")
    writer = StreamWriter(path, kind)
    try:
        with staging(path, size=writer._needed) as stage:
            temp = stage / path.name
            if kind == "csv":
                writer._sink = _CsvSink(temp, path)
            elif kind == "parquet":
                writer._sink = _ParquetSink(temp, path)
            else:
                writer._sink = _OgrSink(temp, path, kind, name, encoding, config, field_names)
            try:
                yield writer
                writer._finish()
            finally:
                writer._sink.abort()
    except _OGR_ERRORS as exc:  # a full disk is a DiskFullError by now: this is something else
        raise DataFileError(f"{path}: GDAL cannot write it ({exc}).") from exc


class StreamWriter:
    """Appends frames to one staged file; made by :func:`open_writer`.

    Attributes
    ----------
    path : pathlib.Path
        The target, written when the ``with`` block of :func:`open_writer`
        ends.
    rows : int
        Rows written so far.
    """

    def __init__(self, path: Path, kind: _Kind) -> None:
        self.path = path
        self.rows = 0
        self._kind = kind
        self._sink: _Sink | None = None  # set by open_writer, inside the stage
        self._columns: list | None = None
        self._crs = None
        self._pending: pd.DataFrame | None = None  # the chunk being written

    def write(self, frame: pd.DataFrame) -> None:
        """Append the rows of ``frame``.

        Parameters
        ----------
        frame:
            The next chunk: the columns (names and order) and CRS of the
            first. A GeoDataFrame with a CRS, except for a CSV.

        Raises
        ------
        SchemaError, CrsError, EncodingError, GeometryError, DiskFullError
            See :func:`open_writer`.
        """
        where = f"{self.path}, the chunk of rows {self.rows:,}–{self.rows + len(frame) - 1:,}"
        self._check(frame, where)
        self._pending = frame
        try:
            self._sink.append(frame, where)
        except _OGR_ERRORS as exc:
            named = _named(exc, where)
            if named is None:
                raise
            raise named from exc
        self.rows += len(frame)
        self._pending = None

    def _needed(self) -> int:
        """Bytes the file needs with the chunk being written, roughly (for a full disk).

        Called only when the disk may be full, so it may take its time.
        """
        written = self._sink.size() if self._sink else 0
        return written + (_stored_size(self._pending) if self._pending is not None else 0)

    def _check(self, frame: pd.DataFrame, where: str) -> None:
        spatial = isinstance(frame, gpd.GeoDataFrame)
        if not spatial and (self._kind != "csv" or not isinstance(frame, pd.DataFrame)):
            wanted = "a DataFrame or GeoDataFrame" if self._kind == "csv" else "a GeoDataFrame"
            raise SchemaError(f"{where}: expected {wanted}, got {type(frame).__name__}.")
        crs = frame.crs if spatial else None
        if spatial and crs is None and self._kind != "csv":
            raise CrsError(
                f"{where}: the rows to write have no coordinate reference system. Set one "
                "first, e.g. frame.set_crs('EPSG:4490') for CGCS2000 longitude/latitude."
            )
        columns = list(frame.columns)
        if self._columns is None:
            self._columns, self._crs = columns, crs
            return
        if columns != self._columns:
            missing = [c for c in self._columns if c not in columns]
            extra = [c for c in columns if c not in self._columns]
            change = (
                f"lacks {missing} and has {extra}"
                if missing or extra
                else "has them in another order"
            )
            raise SchemaError(
                f"{where}: the chunk {change} compared with the columns of the first chunk "
                f"({self._columns}); every chunk of one file needs the same columns."
            )
        if not same_crs(crs, self._crs):
            raise CrsError(
                f"{where}: the chunk's CRS is {crs.to_string() if crs else None}, the first "
                f"chunk's {self._crs.to_string() if self._crs else None}; reproject the "
                "chunks to one CRS (frame.to_crs(...)) before writing."
            )

    def _finish(self) -> None:
        if self._columns is None:
            raise DataFileError(f"{self.path}: no rows were given to write; nothing was written.")
        self._sink.close()
        self._sink.commit()


def _stream_format(path: Path) -> _Kind:
    suffix = path.suffix.lower()
    if suffix in _SUFFIX_KINDS:
        return _SUFFIX_KINDS[suffix]
    why = (
        "a GeoJSON file is one document and cannot be written in chunks"
        if suffix in (".geojson", ".json")
        else f"cannot write {path.suffix or 'a file without suffix'!r} in chunks"
    )
    raise DataFileError(
        f"{path}: {why}; name it ….csv, ….gpkg, ….parquet or ….shp (or write a whole "
        "layer with gridgeo.io.write_layer)."
    )


def _stored_size(frame: pd.DataFrame) -> int:
    """Bytes ``frame`` takes in a file, roughly: its text as UTF-8 (codes and statuses of
    categorical columns included), 8 a number, 16 a coordinate, 64 a row."""
    total = 64 * len(frame)
    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    for name, values in frame.items():
        if name == geometry:
            total += 16 * int(shapely.get_num_coordinates(values.to_numpy()).sum())
        elif pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            total += 8 * len(values)
        else:
            text = values.astype(object).where(values.notna(), "").to_numpy().astype(str)
            total += int(np.char.str_len(np.char.encode(text, "utf-8")).sum())
    return total


def _named(exc: Exception, where: str) -> Exception | None:
    """A GDAL error that is the user's to fix, as a named error (else ``None``)."""
    text = str(exc)
    if "geometry to" in text and "shapefile" in text:  # "non-point (POLYGON) geometry to …"
        return GeometryError(
            f"{where}: {text.split(': ', 1)[-1]} A Shapefile holds one type of geometry, "
            "that of the first chunk; write a GeoPackage (.gpkg) to keep every type."
        )
    return None


# -- sinks: one per format --------------------------------------------------------------------
class _Sink:
    """Where the frames go: a file in the stage, moved onto the target at the end."""

    def __init__(self, temp: Path, target: Path) -> None:
        self.temp = temp
        self.target = target
        self.first = True

    def append(self, frame: pd.DataFrame, where: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Complete the file (a full disk may show only here)."""

    def abort(self) -> None:
        """Release open files quietly; called after :meth:`close` or on failure."""

    def size(self) -> int:
        """Bytes written so far."""
        stage = self.temp.parent
        return sum(p.stat().st_size for p in stage.iterdir() if not p.name.startswith("."))

    def commit(self) -> None:
        commit(self.temp, self.target)


class _CsvSink(_Sink):
    """CSV as :func:`~gridgeo.io.write_table` writes it, one frame after another."""

    def __init__(self, temp: Path, target: Path) -> None:
        super().__init__(temp, target)
        self.handle: IO[str] | None = None
        self.derived: list[str] = []  # lon/lat columns made from the point geometry

    def append(self, frame: pd.DataFrame, where: str) -> None:
        if self.first:
            if isinstance(frame, gpd.GeoDataFrame):
                self.derived = [c for c in ("lon", "lat") if c not in frame]
            # utf-8-sig writes the BOM once, at the start of the file; CRLF as Excel writes
            self.handle = open(self.temp, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed by close())
        table = frame
        if isinstance(frame, gpd.GeoDataFrame):
            table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
            geoms = frame.geometry.to_numpy()
            usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
            usable &= shapely.get_type_id(geoms) == 0
            for column in self.derived:
                values = np.full(len(table), np.nan)
                getter = shapely.get_x if column == "lon" else shapely.get_y
                values[usable] = getter(geoms[usable])
                table[column] = values
        neutralise_formulas(table).to_csv(
            self.handle, index=False, header=self.first, lineterminator="\r\n"
        )
        self.first = False

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()

    def abort(self) -> None:
        with suppress(OSError):
            self.close()


class _OgrSink(_Sink):
    """GeoPackage and Shapefile, through GDAL's append (``write_frame``)."""

    def __init__(
        self,
        temp: Path,
        target: Path,
        kind: Literal["gpkg", "shapefile"],
        layer: str,
        encoding: str,
        config: GridConfig,
        field_names: Mapping[str, str] | None,
    ) -> None:
        super().__init__(temp, target)
        self.kind = kind
        self.layer = layer
        self.encoding = encoding
        self.config = config
        self.field_names = field_names

    def append(self, frame: pd.DataFrame, where: str) -> None:
        if self.kind == "shapefile":
            frame = shapefile_frame(frame, where, self.encoding, self.config, self.field_names)
        elif self.first and self.target.is_file():  # keep the other layers of a GeoPackage
            shutil.copy2(self.target, self.temp)
        write_frame(
            frame,
            self.temp,
            kind=self.kind,
            layer=self.layer,
            encoding=self.encoding if self.kind == "shapefile" else None,
            append=not self.first,
        )
        self.first = False

    def size(self) -> int:
        # An append to a GeoPackage is one SQLite transaction, whose rollback journal
        # may copy every page it touches (R-tree nodes included): up to the whole file.
        return super().size() * (2 if self.kind == "gpkg" else 1)

    def commit(self) -> None:
        if self.kind == "gpkg":
            commit(self.temp, self.target)
            return
        stage = self.temp.parent
        parts = [p for p in stage.iterdir() if not p.name.startswith(".")]
        parts.sort(key=lambda p: p.name != self.target.name)  # the .shp first: moved in last
        swap_files(parts, shapefile_files(self.target), self.target.parent, stage)


class _ParquetSink(_Sink):
    """GeoParquet, one row group per frame; the ``geo`` metadata covers every frame."""

    def __init__(self, temp: Path, target: Path) -> None:
        super().__init__(temp, target)
        self.writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None
        self.geometry = ""
        self.crs = None
        self.types: set[str] = set()
        self.bounds = np.array([np.inf, np.inf, -np.inf, -np.inf])

    def append(self, frame: pd.DataFrame, where: str) -> None:
        geometry = frame.geometry
        geoms = geometry.to_numpy()
        table = pd.DataFrame(frame, copy=False)
        table[geometry.name] = shapely.to_wkb(geoms)
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        if self.writer is None:
            self.geometry, self.crs = geometry.name, geometry.crs
            # The schema's "geo" (what Arrow readers see) is written now, before the
            # later chunks are known: any geometry types, no bbox. The footer's (what
            # GDAL and geopandas read) adds the types and bbox of every chunk at the end.
            geo = json.dumps(self._geo(types=[], bbox=None))
            self.schema = _stable(arrow.schema, geometry.name).with_metadata(
                {**arrow.schema.metadata, b"geo": geo.encode()}
            )
            self.writer = pq.ParquetWriter(self.temp, self.schema)
        try:
            arrow = arrow.cast(self.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaError(
                f"{where}: a column changed its type since the first chunk ({exc}); give "
                "every chunk the same column types (e.g. frame.astype(...))."
            ) from None
        self.writer.write_table(arrow)
        self._cover(geoms)
        self.first = False

    def _cover(self, geoms: np.ndarray) -> None:
        """Add the geometry types and bounds of ``geoms`` to those of the file."""
        ids = shapely.get_type_id(geoms)
        z = shapely.has_z(geoms)
        for type_id, has_z in set(zip(ids[ids >= 0].tolist(), z[ids >= 0].tolist(), strict=True)):
            self.types.add(_TYPE_NAMES[type_id] + (" Z" if has_z else ""))
        bounds = shapely.bounds(geoms)
        if len(bounds) and not np.isnan(bounds).all():
            self.bounds[:2] = np.fmin(self.bounds[:2], np.nanmin(bounds[:, :2], axis=0))
            self.bounds[2:] = np.fmax(self.bounds[2:], np.nanmax(bounds[:, 2:], axis=0))

    def _geo(self, types: list[str], bbox: list[float] | None) -> dict[str, object]:
        """GeoParquet metadata: the geometry column, its CRS, types and bounds."""
        column: dict[str, object] = {
            "encoding": "WKB",
            "geometry_types": types,
            "crs": self.crs.to_json_dict() if self.crs is not None else None,
        }
        if bbox is not None:
            column["bbox"] = bbox
        return {
            "version": _GEOPARQUET_VERSION,
            "primary_column": self.geometry,
            "columns": {self.geometry: column},
            "creator": {"library": "gridgeo", "version": gridgeo.__version__},
        }

    def close(self) -> None:
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        bbox = self.bounds.tolist() if np.isfinite(self.bounds).all() else None
        writer.add_key_value_metadata({"geo": json.dumps(self._geo(sorted(self.types), bbox))})
        writer.close()

    def abort(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            with suppress(Exception):  # the file is discarded: only release it
                writer.close()


def _stable(schema: pa.Schema, geometry: str) -> pa.Schema:
    """``schema`` with types every later chunk can be cast to.

    A category column's codes are 8 bits for a few categories and 16 for
    more, so dictionaries get 32-bit indices; a column without any value in
    the first chunk (no type yet) is text; the geometry is WKB.
    """
    fields = []
    for field in schema:
        kind = field.type
        if field.name == geometry:
            kind = pa.binary()
        elif pa.types.is_dictionary(kind):
            values = pa.large_string() if pa.types.is_null(kind.value_type) else kind.value_type
            kind = pa.dictionary(pa.int32(), values, kind.ordered)
        elif pa.types.is_null(kind):
            kind = pa.string()
        fields.append(field.with_type(kind))
    return pa.schema(fields, metadata=schema.metadata)
