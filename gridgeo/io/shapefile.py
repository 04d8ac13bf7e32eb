"""Shapefiles: text encodings, DBF headers, field names."""

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
from gridgeo.io.formats import SHAPEFILE_SIDECARS, read_ogr


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
        encoding = canonical_encoding(
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

def no_encoding_outside_shapefiles(encoding: str | None, kind: str, path: Path) -> None:
    if encoding is None:
        return
    if canonical_encoding(encoding, f"unknown encoding {encoding!r}") != "UTF-8":
        raise EncodingError(
            f"{path}: {kind} text is always UTF-8; encoding={encoding!r} applies only "
            "to Shapefiles. Leave it out."
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


def shapefile_files(shp: Path) -> list[Path]:
    """The files of Shapefile ``shp`` that exist (``.shp``, ``.dbf``, ``.cpg``, …)."""
    stem = shp.name[: -len(".shp")] if shp.name.lower().endswith(".shp") else shp.stem
    return [
        shp.parent / f"{stem}{suffix}"
        for suffix in SHAPEFILE_SIDECARS
        if (shp.parent / f"{stem}{suffix}").is_file()
    ]


# -- Shapefile field names and text ------------------------------------------------------
def _field_mapping(config: GridConfig, field_names: Mapping[str, str] | None) -> dict[str, str]:
    mapping = dict(config.shapefile_fields)
    mapping.update(field_names or {})
    return mapping


def read_shapefile(
    path: Path,
    encoding: str | None,
    config: GridConfig,
    field_names: Mapping[str, str] | None,
) -> gpd.GeoDataFrame:
    if encoding is None:
        encoding = detect_encoding(path)
    else:
        encoding = canonical_encoding(
            encoding, f"unknown encoding {encoding!r}; use e.g. 'GBK' or 'UTF-8'"
        )
        _, items = _dbf_text(_require_dbf(path))
        _check_decodes(items, encoding, path, f"encoding={encoding!r}")
    frame = read_ogr(path, str(path), encoding=encoding)
    reverse = {short: long for long, short in _field_mapping(config, field_names).items()}
    renames = {
        column: reverse[column]
        for column in frame.columns
        if column in reverse and reverse[column] not in frame.columns
    }
    return frame.rename(columns=renames)


def shapefile_frame(
    frame: gpd.GeoDataFrame,
    where: str,
    encoding: str,
    config: GridConfig,
    field_names: Mapping[str, str] | None,
) -> gpd.GeoDataFrame:
    """``frame`` with DBF field names; checks names and text fit the DBF."""
    codec = canonical_encoding(
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
def canonical_encoding(name: str, message: str) -> str:
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
