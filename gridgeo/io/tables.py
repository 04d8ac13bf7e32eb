"""Point tables (households, incidents): CSV and Excel in, CSV out.

Rules this module applies to every table, so a user never gets garbled text,
silently wrong types or a file that runs code in Excel:

* **Text encoding** (CSV and ``.txt``). A UTF-16 byte-order mark means UTF-16
  (Excel's "Unicode text"). Otherwise the bytes are decoded strictly as UTF-8
  (with or without BOM); if that fails, as GB18030 (Excel on mainland Chinese
  Windows) and as Big5 (``cp950``, Excel on Taiwan or Hong Kong Windows).
  Big5 bytes nearly always *decode* as GB18030 too, into Private Use Area
  characters, kana and rare ideographs, so each decoding is scored by the share
  of its non-ASCII characters that are common Chinese characters (GB2312 or
  Big5 level-1 ideographs) or punctuation; a reading is accepted when it
  scores at least 0.8 and the other does not. Otherwise (both or neither, as
  for a tiny file) an :class:`~gridgeo.errors.EncodingError` asks for the
  encoding: nothing comes back as mojibake.
* **Binary junk** is refused early: an empty file, NUL bytes (a binary,
  damaged or sparse file) or a first line longer than 1 MiB raise a
  :class:`~gridgeo.errors.DataFileError` before any table is built, and
  messages quote at most 80 characters of what the file holds.
* **Types.** Longitude and latitude columns are always floats; a value that is
  missing or not a number leaves the row without geometry, its reason in
  ``coord_error``. Any other column becomes numbers only when every non-empty
  value is written exactly as that number prints back: ``12``, ``-3.5``,
  ``108.6319`` (integers then as nullable ``Int64``, up to 2**53; floats as
  ``float64``). ``001``, ``+5``, ``1.50``, ``1e5`` or an 18-digit ID-card
  number keep the whole column as text, so no code loses a digit.
* **Coordinates in metres.** With a longitude/latitude CRS (the default),
  a table where more than half of the rows with numeric coordinates lie
  outside ±180 / ±90 is refused with a :class:`~gridgeo.errors.CrsError`
  naming the CRS to pass: the coordinates are projected metres, and reading
  them as degrees would mark every point ``invalid``. A few such rows are
  kept and reported per row by :func:`gridgeo.assign.assign` (``invalid``,
  out of range).
* **CSV injection.** :func:`write_table` prefixes ``'`` to text cells that
  start with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (the
  OWASP advice), so Excel shows them as text instead of running them as
  formulas. Numbers, including negative ones, are written as numbers.
"""

from __future__ import annotations

import codecs
import io
import os
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from gridgeo.config import BANNER
from gridgeo.crs import in_china
from gridgeo.errors import (
    CrsError,
    DataFileError,
    EncodingError,
    GridgeoError,
    SchemaError,
    option,
)
from gridgeo.io.atomic import commit, staging
from gridgeo.io.formats import file_format
from gridgeo.io.read import read_layer

__all__ = ["TABLE_SUFFIXES", "iter_points", "neutralise_formulas", "read_points", "write_table"]

TABLE_SUFFIXES = (".csv", ".txt", ".xlsx", ".xls")
"""Suffixes read as tables of longitude/latitude; anything else is read as a GIS layer."""

_LAYER_SUFFIXES_TEXT = ".shp, .gpkg, .parquet or .geojson"
_LON_NAMES = ("lon", "lng", "long", "longitude", "经度", "东经", "經度", "東經", "x")
_LAT_NAMES = ("lat", "latitude", "纬度", "北纬", "緯度", "北緯", "y")
_DEFAULT_CRS = "EPSG:4326"
_DEFAULT_CHUNK = 100_000

_HEAD_BYTES = 8192  # sniffed for NUL bytes before anything else
_BLOCK_BYTES = 1 << 18
_SAMPLE_BYTES = 1 << 18  # non-ASCII lines scored to choose an encoding
_MAX_HEADER_BYTES = 1 << 20
_QUOTE_CHARS = 80
_PLAUSIBLE = 0.8
_MAX_EXACT_INT = 2**53
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_DELIMITERS = (",", "\t", ";", "|")
_ENCODING_NAMES = {"utf-8-sig": "UTF-8", "utf-8": "UTF-8", "gb18030": "GB18030", "cp950": "Big5"}


# -- public API ------------------------------------------------------------------------------
def read_points(
    path: str | os.PathLike[str],
    *,
    lon: str | None = None,
    lat: str | None = None,
    crs: str | int = _DEFAULT_CRS,
    sheet: str | int = 0,
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Points from a CSV or Excel table with longitude/latitude columns, or a GIS file.

    Longitude and latitude columns are found by their usual names (``lon``,
    ``lng``, ``longitude``, ``经度``, ``x`` / ``lat``, ``latitude``, ``纬度``,
    ``y``, any case) unless given. Rows whose coordinates are missing or not
    numbers are kept, with no geometry and the reason in ``coord_error``, so
    :func:`gridgeo.assign.assign` reports them as ``invalid`` rather than
    dropping them. The encoding, type and coordinate rules are those of
    :mod:`gridgeo.io.tables`.

    Parameters
    ----------
    path:
        A ``.csv``, ``.txt`` (comma, tab, semicolon or ``|`` separated),
        ``.xlsx`` or ``.xls`` table, or a GIS layer (``.shp``, ``.gpkg``,
        ``.parquet``, ``.geojson``), read with :func:`gridgeo.io.read_layer`.
    lon, lat:
        Names of the longitude and latitude (or x and y) columns.
    crs:
        The CRS of the table's coordinates, e.g. ``"EPSG:4490"`` (CGCS2000)
        or ``"EPSG:4545"`` (CGCS2000 Gauss-Kruger metres). GIS files carry
        their own.
    sheet:
        The Excel sheet, by name or position.
    encoding:
        The text encoding of a CSV (``"gb18030"``, ``"big5"``, ``"utf-8"``);
        detected when not given.

    Returns
    -------
    geopandas.GeoDataFrame
        The table's columns (lon/lat as floats, other columns typed as above),
        point geometry in ``crs`` and ``coord_error`` (``""`` when fine).

    Raises
    ------
    DataFileError
        The file is missing, empty, binary, damaged, has no rows, or has a
        suffix gridgeo does not read.
    EncodingError
        The text encoding cannot be told apart, or ``encoding`` does not fit.
    SchemaError
        No longitude or latitude column.
    CrsError
        ``crs`` is not a CRS, or the coordinates are metres but ``crs`` is
        longitude/latitude.

    See Also
    --------
    iter_points : the same, in chunks of rows, for tables too large for memory.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "hh.csv"
    >>> _ = p.write_text("户主,经度,纬度,户号\\n王伟,108.63,40.74,001\\n李芳,abc,40.7,002\\n")
    >>> pts = read_points(p)
    >>> pts["coord_error"].tolist()
    ['', 'non-numeric longitude']
    >>> str(pts["经度"].dtype), pts["户号"].tolist()
    ('float64', ['001', '002'])
    """
    path = _existing(path)
    crs = _parse_crs(crs)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        return _read_layer(path)
    if suffix in (".xlsx", ".xls"):
        table = _read_excel(path, sheet)
    else:
        text = _inspect_text(path, encoding)
        lon, lat = _coordinate_columns(text.columns, lon, lat, path)
        with _csv_reader(path, text) as table:
            pass
    if table.empty:
        raise _no_rows(path)
    lon, lat = _coordinate_columns(list(table.columns), lon, lat, path)
    kinds = _column_kinds(table, skip=(lon, lat))
    return _points(_apply_kinds(table, kinds, path, check=False), lon, lat, crs, path)


def iter_points(
    path: str | os.PathLike[str],
    *,
    chunksize: int = _DEFAULT_CHUNK,
    lon: str | None = None,
    lat: str | None = None,
    crs: str | int = _DEFAULT_CRS,
    encoding: str | None = None,
) -> Iterator[gpd.GeoDataFrame]:
    """The points of a table, ``chunksize`` rows at a time, with bounded memory.

    Each chunk is what :func:`read_points` returns for those rows: the same
    column detection, float lon/lat, per-row ``coord_error``, and an index
    that counts rows across the whole file. A CSV or ``.txt`` is read as it
    goes (memory grows with ``chunksize``, not with the file); an Excel
    workbook (at most 1,048,576 rows) or a GIS layer is read whole and then
    handed out in chunks.

    The file, its encoding, its columns and ``crs`` are checked when
    ``iter_points`` is called, before the first chunk. Column types are
    decided on the first chunk; a later value that does not fit (``007`` in a
    column of numbers) raises a :class:`~gridgeo.errors.SchemaError` naming
    the row, rather than a chunk with a different type. The metres check of
    :func:`read_points` applies to each chunk.

    Parameters
    ----------
    path, lon, lat, crs, encoding:
        As for :func:`read_points`.
    chunksize:
        Rows per chunk (at least 1).

    Yields
    ------
    geopandas.GeoDataFrame
        Consecutive chunks of rows, together the whole table.

    Raises
    ------
    DataFileError, EncodingError, SchemaError, CrsError
        As for :func:`read_points`.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "ev.csv"
    >>> rows = "".join(f"{i},108.6,40.7\\n" for i in range(5))
    >>> _ = p.write_text("id,lon,lat\\n" + rows, encoding="utf-8")
    >>> [len(chunk) for chunk in iter_points(p, chunksize=2)]
    [2, 2, 1]
    >>> last = list(iter_points(p, chunksize=2))[-1]
    >>> last.index.tolist(), last["id"].tolist(), str(last["id"].dtype)
    ([4], [4], 'Int64')
    """
    path = _existing(path)
    crs = _parse_crs(crs)
    if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
        raise GridgeoError(f"chunksize must be a whole number of rows ≥ 1, not {chunksize!r}.")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".txt"):
        whole = read_points(path, lon=lon, lat=lat, crs=crs, encoding=encoding)
        return (whole.iloc[start : start + chunksize] for start in range(0, len(whole), chunksize))
    text = _inspect_text(path, encoding)
    lon, lat = _coordinate_columns(text.columns, lon, lat, path)
    return _stream(path, text, chunksize, lon, lat, crs)


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV, UTF-8 with BOM so Excel shows the Chinese, atomically.

    A point geometry becomes ``lon``/``lat`` columns (unless the frame has
    them). Text cells (and column names) that Excel would run as a formula,
    those starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return, get a leading ``'``; numeric columns are written unchanged.

    Parameters
    ----------
    frame:
        The table; a GeoDataFrame's point geometry becomes ``lon``/``lat``.
    path:
        A ``.csv`` file (missing folders are created); an old file is
        replaced only once the new one is complete.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    DataFileError
        The suffix is not ``.csv``, or the folder cannot be written into.
    DiskFullError
        The disk filled up; the old file is unchanged and no temporary file
        is left.

    Examples
    --------
    >>> import tempfile
    >>> table = pd.DataFrame({"name": ["=1+1", "王伟"], "size": [-3.5, 2.0]})
    >>> out = write_table(table, Path(tempfile.mkdtemp()) / "out.csv")
    >>> out.read_text(encoding="utf-8-sig").splitlines()
    ['name,size', "'=1+1,-3.5", '王伟,2.0']
    """
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise DataFileError(
            f"{path}: write_table writes .csv files, not {path.suffix or '(no suffix)'!r}. "
            f"Name the output ….csv, or write a GIS layer ({_LAYER_SUFFIXES_TEXT}) "
            "with gridgeo.io.write_layer."
        )
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
    out = neutralise_formulas(out)
    with staging(path) as stage:  # a full disk: DiskFullError, the old file intact
        tmp = stage / path.name
        # CRLF, as Excel writes: a cell holding a lone CR or LF is then quoted.
        out.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\r\n")
        commit(tmp, path)
    return path


# -- arguments and files ---------------------------------------------------------------------
def _existing(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"{path}: no such file. Check the path of the points table.")
    if path.is_dir():
        raise DataFileError(
            f"{path} is a folder; give the points table itself (a "
            f"{', '.join(TABLE_SUFFIXES)} file, or a {_LAYER_SUFFIXES_TEXT} layer)."
        )
    return path


def _read_layer(path: Path) -> gpd.GeoDataFrame:
    try:
        file_format(path, "read")
    except DataFileError:
        raise DataFileError(
            f"{path}: cannot read points from a {path.suffix or '(no suffix)'!r} file. "
            f"Use a table ({', '.join(TABLE_SUFFIXES)}) with longitude/latitude columns, "
            f"or a GIS layer ({_LAYER_SUFFIXES_TEXT})."
        ) from None
    return read_layer(path)


def _parse_crs(crs: object) -> CRS:
    """``crs`` as a pyproj CRS tied to the earth; :class:`CrsError` naming it otherwise."""
    how = (
        f"Write it as an EPSG code, e.g. {option('crs', 'EPSG:4490')} for CGCS2000 "
        "longitude/latitude, EPSG:4326 for WGS-84 or EPSG:4545 for CGCS2000 "
        "Gauss-Kruger metres (central meridian 108°E)."
    )
    try:
        parsed = CRS.from_user_input(crs)
    except (CRSError, TypeError, ValueError) as exc:
        reason = _quote(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise CrsError(
            f"{_quote(repr(crs))} is not a coordinate reference system ({reason}). {how}"
        ) from None
    if not (parsed.is_geographic or parsed.is_projected):
        raise CrsError(f"{_quote(repr(crs))} is not tied to the earth ({parsed.name}). {how}")
    return parsed


def _quote(text: str, limit: int = _QUOTE_CHARS) -> str:
    """``text`` cut to ``limit`` characters (with "…"), so no message embeds a whole file."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "…"


def _show_columns(columns: list) -> str:
    shown = [_quote(str(c), 40) for c in columns[:12]]
    more = f", … ({len(columns)} columns)" if len(columns) > 12 else ""
    return "[" + ", ".join(repr(c) for c in shown) + more + "]"


def _no_rows(path: Path) -> DataFileError:
    return DataFileError(
        f"{path}: the table has column names but no rows, so there are no points. "
        "Export it again with its rows."
    )


def _coordinate_columns(
    columns: list, lon: str | None, lat: str | None, path: Path
) -> tuple[str, str]:
    lon = lon if lon is not None else _find_column(columns, _LON_NAMES, "longitude", "lon", path)
    lat = lat if lat is not None else _find_column(columns, _LAT_NAMES, "latitude", "lat", path)
    for name, arg in ((lon, "lon"), (lat, "lat")):
        if name not in columns:
            raise SchemaError(
                f"{path}: no column {_quote(repr(name))}; the columns are "
                f"{_show_columns(columns)}. Pass {option(arg, 'your column')} with one of them."
            )
    if lon == lat:
        raise SchemaError(
            f"{path}: the longitude and latitude columns are both {_quote(repr(lon))}; "
            f"pass {option('lon', 'x column')} and {option('lat', 'y column')} as two columns."
        )
    return lon, lat


def _find_column(columns: list, names: tuple[str, ...], what: str, arg: str, path: Path) -> str:
    lowered = {str(c).strip().lower(): c for c in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    raise SchemaError(
        f"{path}: no {what} column among {_show_columns(columns)}. Name it one of "
        f"{list(names)}, or pass {option(arg, 'your column')}."
    )


# -- text tables: sniffing, encoding, chunks -------------------------------------------------
class _TextFormat:
    """How a text table is written: its encoding and its delimiter."""

    def __init__(self, encoding: str, delimiter: str, columns: list) -> None:
        self.encoding = encoding
        self.delimiter = delimiter
        self.columns = columns
        # NUL bytes mean junk in every encoding but UTF-16.
        self.nul_free = not codecs.lookup(encoding).name.startswith("utf-16")


def _inspect_text(path: Path, encoding: str | None) -> _TextFormat:
    """Refuse binary junk and find the encoding and delimiter, reading a bounded prefix."""
    size = path.stat().st_size
    if size == 0:
        raise DataFileError(f"{path}: the file is empty (0 bytes). Export the table again.")
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if not utf16 and b"\x00" in head:
        raise _binary(path, head.index(b"\x00"))
    if encoding is not None:
        codec = _user_encoding(encoding, path)
    elif utf16:
        codec = "utf-16"
    else:
        codec = _detect_encoding(path)
    first = _first_line(path, codec, size)
    counts = {d: first.count(d) for d in _DELIMITERS}
    delimiter = max(_DELIMITERS, key=lambda d: (counts[d], d == ","))
    return _TextFormat(codec, delimiter, _header(path, first, delimiter, codec))


def _binary(path: Path, offset: int) -> DataFileError:
    return DataFileError(
        f"{path}: byte {offset:,} is a NUL (0x00), so this is not a text table but a "
        "binary, damaged or sparse file. Export the table again as CSV (UTF-8) or .xlsx."
    )


def _user_encoding(encoding: str, path: Path) -> str:
    try:
        name = codecs.lookup(encoding).name
    except (LookupError, TypeError, ValueError):
        raise EncodingError(
            f"{path}: {_quote(repr(encoding))} is not a text encoding Python knows. Pass "
            f"one such as {option('encoding', 'gb18030')}, {option('encoding', 'big5')} or "
            f"{option('encoding', 'utf-8')}, or leave it out to have it detected."
        ) from None
    return "utf-8-sig" if name == "utf-8" else name  # a BOM is no part of the first column


def _first_line(path: Path, codec: str, size: int) -> str:
    """The header line, decoded; :class:`DataFileError` if it is absurdly long."""
    with path.open("rb") as handle:
        raw = handle.read(_MAX_HEADER_BYTES)
    if codecs.lookup(codec).name.startswith("utf-16"):
        text = raw[: len(raw) // 2 * 2].decode(codec, errors="replace")
        end = text.find("\n")
        line = text if end < 0 else text[:end]
    else:
        end = raw.find(b"\n")
        try:
            line = (raw if end < 0 else raw[:end]).decode(codec)
        except UnicodeDecodeError as exc:
            raise _unreadable(path, _ENCODING_NAMES.get(codec, codec), ",", exc) from None
    if end < 0 and size > len(raw):
        raise DataFileError(
            f"{path}: the first line is longer than {_MAX_HEADER_BYTES // 2**20} MiB "
            f"(it starts {_quote(repr(line[:_QUOTE_CHARS]))}), so it is not a table with a "
            "header row. Export the table again as CSV."
        )
    return line.removeprefix("\ufeff")


def _detect_encoding(path: Path) -> str:
    """UTF-8, GB18030 or Big5 (cp950), from a bounded sample of non-ASCII lines."""
    sample = _non_ascii_sample(path)
    if not sample:
        return "utf-8-sig"  # plain ASCII: every candidate reads it the same
    scores = {codec: _plausibility(sample, codec) for codec in ("utf-8-sig", "gb18030", "cp950")}
    utf8 = scores.pop("utf-8-sig")
    plausible = [codec for codec, score in scores.items() if score >= _PLAUSIBLE]
    # Valid multi-byte UTF-8 is so constrained that GB18030 or Big5 text rarely
    # forms it by accident, and then not as common Chinese: short GB text such
    # as "一" reads as Cyrillic "һ" in UTF-8. Such a tie is asked about.
    if utf8 >= _PLAUSIBLE or (utf8 >= 0 and not plausible):
        return "utf-8-sig"
    if utf8 < 0 and len(plausible) == 1:
        return plausible[0]
    shown = ", ".join(
        f"{_ENCODING_NAMES[c]} {'does not fit' if v < 0 else f'reads {v:.0%} common Chinese'}"
        for c, v in {"utf-8-sig": utf8, **scores}.items()
    )
    raise EncodingError(
        f"{path}: cannot tell the text encoding ({shown}). Pass the encoding it was "
        f"written in, e.g. "
        f"{option('encoding', 'big5')} (Taiwan, Hong Kong), "
        f"{option('encoding', 'gb18030')} (mainland Excel) or save it from Excel as "
        "CSV UTF-8."
    )


def _non_ascii_sample(path: Path) -> bytes:
    """Blocks of whole lines holding non-ASCII bytes, up to about 256 KiB in all.

    Pure-ASCII blocks are skipped (all three encodings read them alike), so a
    file whose Chinese starts late is still sampled; NUL bytes in the blocks
    read raise :class:`DataFileError`.
    """
    kept: list[bytes] = []
    total = 0
    offset = 0
    carry = b""
    with path.open("rb") as handle:
        while total < _SAMPLE_BYTES and (block := handle.read(_BLOCK_BYTES)):
            nul = block.find(b"\x00")
            if nul >= 0:
                raise _binary(path, offset + nul)
            offset += len(block)
            block = carry + block
            cut = block.rfind(b"\n") + 1
            block, carry = block[:cut], block[cut:]
            if not block.isascii():
                kept.append(block)
                total += len(block)
    if carry and not carry.isascii() and total < _SAMPLE_BYTES:
        kept.append(carry)  # the last line, without newline
    return b"".join(kept)


def _plausibility(raw: bytes, codec: str) -> float:
    """Share of the non-ASCII characters of ``raw`` read with ``codec`` that are common
    Chinese characters or punctuation; -1 when ``codec`` does not decode ``raw``."""
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        return -1.0
    counts = Counter(text)
    wide = {c: n for c, n in counts.items() if not c.isascii()}
    total = sum(wide.values())
    if not total:
        return 1.0
    return sum(n for c, n in wide.items() if _common_chinese(c)) / total


def _common_chinese(char: str) -> bool:
    """A GB2312 or Big5 level-1 ideograph, or CJK / general punctuation.

    Misread Big5 or GB text turns into Private Use Area characters, kana, Greek,
    box drawing and rare ideographs, none of which pass.
    """
    if "\u3000" <= char <= "\u303f" or "\uff01" <= char <= "\uff5e" or char in "·—…“”‘’°×":
        return True
    try:
        gb = char.encode("gb2312")
        if gb[0] >= 0xB0:
            return True
    except UnicodeEncodeError:
        pass
    try:
        big5 = char.encode("cp950")
    except UnicodeEncodeError:
        return False
    return len(big5) == 2 and 0xA440 <= int.from_bytes(big5, "big") <= 0xC67E


class _NulGuard(io.RawIOBase):
    """A binary file that raises :class:`DataFileError` at the first NUL byte it reads."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file = path.open("rb")
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._file.readinto(buffer)
        view = memoryview(buffer)[:n]
        nul = view.tobytes().find(b"\x00")
        if nul >= 0:
            raise _binary(self._path, self._offset + nul)
        self._offset += n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


class _csv_reader:
    """``pandas.read_csv`` over a table, as text (object) columns, closing the file after.

    Gives the whole table, or with ``chunksize`` an iterator of tables.
    """

    def __init__(self, path: Path, text: _TextFormat, chunksize: int | None = None) -> None:
        self._path = path
        self._text = text
        self._chunksize = chunksize

    def __enter__(self):
        nul_free = self._text.nul_free
        self._handle = (
            io.BufferedReader(_NulGuard(self._path)) if nul_free else self._path.open("rb")
        )
        options = dict(
            sep=self._text.delimiter,
            dtype=object,
            encoding=self._text.encoding,
            keep_default_na=False,
            na_values=[""],
            chunksize=self._chunksize,
        )
        try:
            return _translate_read_errors(
                self._path, self._text, lambda: pd.read_csv(self._handle, **options)
            )
        except BaseException:
            self._handle.close()
            raise

    def __exit__(self, *exc) -> None:
        self._handle.close()


def _header(path: Path, line: str, delimiter: str, codec: str) -> list:
    """Column names of the header ``line``, as pandas names them."""
    try:
        frame = pd.read_csv(io.StringIO(line), sep=delimiter, nrows=0, dtype=object)
    except pd.errors.EmptyDataError:
        raise DataFileError(
            f"{path}: the first line is blank, so there is no header row naming the "
            "columns. Export the table again with its header."
        ) from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise _unreadable(path, _ENCODING_NAMES.get(codec, codec), delimiter, exc) from None
    return list(frame.columns)


def _translate_read_errors(path: Path, text: _TextFormat, read):
    try:
        return read()
    except pd.errors.EmptyDataError:
        raise DataFileError(
            f"{path}: holds no header row (only blank lines). Export the table again."
        ) from None
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError, OSError) as exc:
        name = _ENCODING_NAMES.get(text.encoding, text.encoding)
        raise _unreadable(path, name, text.delimiter, exc) from None


def _unreadable(path: Path, name: str, delimiter: str, exc: Exception) -> GridgeoError:
    """The error for a table pandas cannot read, ``name`` its encoding."""
    if isinstance(exc, UnicodeDecodeError):
        return EncodingError(
            f"{path}: holds bytes that are not valid {name} ({exc.reason}). "
            f"Pass the encoding it was written in, e.g. {option('encoding', 'gb18030')} or "
            f"{option('encoding', 'big5')}, or save it from Excel as CSV UTF-8."
        )
    reason = _quote(str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__)
    return DataFileError(
        f"{path}: cannot read it as a {delimiter!r}-separated table ({reason}). Check "
        "that every row has as many fields as the header and that quotes are closed."
    )


def _stream(
    path: Path, text: _TextFormat, chunksize: int, lon: str, lat: str, crs: CRS
) -> Iterator[gpd.GeoDataFrame]:
    kinds: dict[str, str] | None = None
    with _csv_reader(path, text, chunksize) as reader:
        chunks = iter(reader)
        while True:
            chunk = _translate_read_errors(path, text, lambda: next(chunks, None))
            if chunk is None:
                break
            if kinds is None:
                if chunk.empty:
                    raise _no_rows(path)
                kinds = _column_kinds(chunk, skip=(lon, lat))
            yield _points(_apply_kinds(chunk, kinds, path), lon, lat, crs, path)
    if kinds is None:
        raise _no_rows(path)


# -- Excel -------------------------------------------------------------------------------------
_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _read_excel(path: Path, sheet: str | int) -> pd.DataFrame:
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
    if not head:
        raise DataFileError(f"{path}: the file is empty (0 bytes). Export the table again.")
    if not head.startswith((_ZIP_MAGIC, _OLE2_MAGIC)):
        raise DataFileError(_not_a_workbook(path, head))
    redo = (
        f"{path}: is not a complete Excel workbook ({{}}). It may be truncated or damaged: "
        "open it in Excel (or WPS) and save it again, as .xlsx or .csv."
    )
    try:
        book = pd.ExcelFile(path)
    except ImportError as exc:
        raise DataFileError(
            f"{path}: reading this kind of workbook needs a package that is not installed "
            f"({_quote(str(exc))}). Save it from Excel as .xlsx or .csv, or install it."
        ) from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise DataFileError(redo.format(_quote(str(exc) or type(exc).__name__))) from None
    with book:
        names = book.sheet_names
        if (isinstance(sheet, int) and not 0 <= sheet < len(names)) or (
            isinstance(sheet, str) and sheet not in names
        ):
            raise DataFileError(
                f"{path}: has no sheet {_quote(repr(sheet))}; its sheets are "
                f"{_show_columns(names)}. Pass {option('sheet', names[0] if names else '…')}."
            )
        try:
            table = pd.read_excel(book, sheet_name=sheet, dtype=object)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
            raise DataFileError(redo.format(_quote(str(exc) or type(exc).__name__))) from None
    table.columns = [str(c) for c in table.columns]
    # Cells as the text Excel would export, so one rule types CSV and Excel columns.
    return table.apply(lambda column: column.map(_cell_text, na_action="ignore").astype(object))


def _cell_text(value: object) -> object:
    if isinstance(value, str):
        return value if value.strip() else np.nan
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_EXACT_INT:
        return str(int(value))
    return str(value)


def _not_a_workbook(path: Path, head: bytes) -> str:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<html", b"<!doctype", b"<table", b"<?xml", b"<meta")):
        return (
            f"{path}: is a web page (HTML) saved with an Excel name, not a workbook. Open it "
            "in Excel (or WPS) and save it as .xlsx or .csv."
        )
    if b"\x00" not in head:
        shown = _quote(repr(head.decode("utf-8", "replace").splitlines()[0]))
        return (
            f"{path}: is plain text, not an Excel workbook (it starts {shown}). Rename it "
            "to ….csv (or save it from Excel as .xlsx)."
        )
    return (
        f"{path}: is not an Excel workbook (neither .xlsx nor .xls). Export the table "
        "again as .xlsx or .csv."
    )


# -- types -------------------------------------------------------------------------------------
def _column_kinds(table: pd.DataFrame, skip: tuple[str, str]) -> dict[str, str]:
    """``"int"``, ``"float"`` or ``"text"`` for each column, by the exact round-trip rule."""
    kinds = {}
    for name in table.columns:  # columns, not rows
        if name in skip:
            continue
        values = table[name].dropna()
        kinds[name] = "text"
        for kind in ("int", "float"):
            if len(values) and _fits(values, kind).all():
                kinds[name] = kind
                break
    return kinds


def _fits(values: pd.Series, kind: str) -> np.ndarray:
    """Whether each text value is written exactly as the ``kind`` number it holds."""
    text = values.astype(str).to_numpy(dtype=object)
    number = pd.to_numeric(pd.Series(text), errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(number)
    integral = finite & (np.abs(number) <= _MAX_EXACT_INT) & (np.mod(number, 1) == 0)
    as_int = np.array(
        list(map(str, np.where(integral, number, 0).astype(np.int64).tolist())), dtype=object
    )
    fits_int = integral & (as_int == text)
    if kind == "int":
        return fits_int
    as_float = np.array(list(map(repr, np.where(finite, number, 0).tolist())), dtype=object)
    return fits_int | (finite & (as_float == text))


def _apply_kinds(
    table: pd.DataFrame, kinds: dict[str, str], path: Path, *, check: bool = True
) -> pd.DataFrame:
    """``table`` with its numeric columns converted; ``check`` that every value fits first."""
    table = table.copy()
    for name, kind in kinds.items():
        if kind == "text":
            continue
        values = table[name].dropna()
        ok = _fits(values, kind) if check else np.ones(len(values), dtype=bool)
        if not ok.all():
            row = values.index[np.flatnonzero(~ok)[0]]
            raise SchemaError(
                f"{path}: column {_quote(repr(name))} holds {kind}s in the rows read first, "
                f"but data row {row + 1:,} holds {_quote(repr(values[row]))}. A column "
                "is read as numbers only when every value is one, decided on the first "
                "chunk when a table is streamed: read the whole table with "
                "gridgeo.io.read_points, or make the value a number."
            )
        number = pd.to_numeric(table[name], errors="coerce")
        table[name] = number.astype("Int64") if kind == "int" else number.astype(float)
    return table


# -- coordinates -------------------------------------------------------------------------------
def _points(table: pd.DataFrame, lon: str, lat: str, crs: CRS, path: Path) -> gpd.GeoDataFrame:
    error = np.full(len(table), "", dtype=object)
    values = {}
    for name, what in ((lon, "longitude"), (lat, "latitude")):
        raw = table[name]
        number = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        # Blank or not a number: only the (few) rows that did not parse are looked at.
        failed = np.flatnonzero(np.isnan(number))
        blank = np.zeros(len(table), dtype=bool)
        blank[failed] = raw.iloc[failed].astype("string").str.strip().fillna("").eq("").to_numpy()
        error[blank & (error == "")] = f"missing {what}"
        error[~blank & np.isnan(number) & (error == "")] = f"non-numeric {what}"
        values[what] = number
    ok = error == ""
    x, y = values["longitude"], values["latitude"]
    if crs.is_geographic:
        _refuse_metres(x[ok], y[ok], crs, path)
    geometry = np.full(len(table), None, dtype=object)
    geometry[ok] = shapely.points(x[ok], y[ok])
    table = table.copy()
    table[lon] = x
    table[lat] = y
    out = gpd.GeoDataFrame(table, geometry=geometry, crs=crs)
    out["coord_error"] = error
    return out


def _refuse_metres(x: np.ndarray, y: np.ndarray, crs: CRS, path: Path) -> None:
    """:class:`CrsError` when most finite coordinates are outside ±180 / ±90 (metres)."""
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.any():
        return
    x, y = x[finite], y[finite]
    outside = (np.abs(x) > 180) | (np.abs(y) > 90)
    if outside.sum() * 2 <= len(x):
        return
    mx, my = float(np.median(x[outside])), float(np.median(y[outside]))
    suggestion = _suggest_crs(mx, my)
    raise CrsError(
        f"{path}: the coordinates look like metres (x {mx:.0f}…, y {my:.0f}…, "
        f"{int(outside.sum()):,} of {len(x):,} rows outside ±180/±90), but the CRS "
        f"{crs.to_string()} is longitude/latitude. Pass the CRS they are in, e.g. "
        f"{option('crs', suggestion)}."
    )


def _suggest_crs(x: float, y: float) -> str:
    """A projected CRS that puts (x, y) in China: zone-numbered Gauss-Kruger, Web Mercator,
    or else the configured metric CRS."""
    candidates = []
    zone = int(x // 1_000_000)
    if 25 <= zone <= 45:  # CGCS2000 3-degree Gauss-Kruger, zone number in front of x
        candidates.append(f"EPSG:{4513 + zone - 25}")
    if 13 <= zone <= 23:  # CGCS2000 6-degree Gauss-Kruger
        candidates.append(f"EPSG:{4491 + zone - 13}")
    candidates += [BANNER.metric_crs, "EPSG:3857"]
    for candidate in candidates:
        transformer = Transformer.from_crs(candidate, "EPSG:4326", always_xy=True)
        lon, lat = transformer.transform(x, y)
        if bool(in_china(lon, lat)):
            return candidate
    return BANNER.metric_crs


# -- writing -----------------------------------------------------------------------------------
def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells and column names that Excel would run as formulas, prefixed with ``'``."""
    out = frame.copy(deep=False)
    out.columns = [_defuse(c) if isinstance(c, str) else c for c in out.columns]
    for position in range(out.shape[1]):  # columns, not rows
        column = out.iloc[:, position]
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object)
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue  # numbers, dates, booleans: Excel never runs them
        # Only str cells: numbers that share an object column with text stay numbers.
        text = column.astype(object).where(column.map(type, na_action="ignore").eq(str), "")
        risky = text.astype(str).str.startswith(_FORMULA_START).to_numpy(dtype=bool)
        if risky.any():
            column = column.astype(object).copy()
            column[risky] = "'" + column[risky].astype(str)
            out.isetitem(position, column)
    return out


def _defuse(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text
