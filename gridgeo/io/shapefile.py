"""Shapefiles: text encodings, DBF headers, field names, damaged parts.

Reading a Shapefile goes through three checks before GDAL sees it:

* :func:`check_shapefile_parts`: the ``.shp`` and ``.shx`` are as long as
  their headers say (a truncated copy is named as such, not as missing
  geometry);
* :func:`resolve_encoding`: the text encoding of the ``.dbf``, from its
  ``.cpg``, the DBF header or the bytes themselves, read in bounded memory
  and never guessed into mojibake;
* :func:`recognise_fields`: field names shortened to 10 bytes (by gridgeo's
  declared mapping or by other software) are renamed back.
"""

from __future__ import annotations

import codecs
import difflib
import os
import struct
import warnings
from collections import Counter
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gridgeo.config import GridConfig
from gridgeo.errors import DataFileError, EncodingError, SchemaError, option
from gridgeo.io.formats import SHAPEFILE_SIDECARS, read_ogr, unreachable
from gridgeo.model import REQUIRED_COLUMNS

_DBF_NAME_BYTES = 10
_DBF_TEXT_BYTES = 254
_DBF_SLACK = 512
"""Bytes a DBF may hold beyond its records (an end-of-file mark, block padding)."""
_CHUNK_BYTES = 8 * 1024 * 1024
"""A DBF is read this many bytes of records at a time, whatever its size."""
_CPG_BYTES = 256
"""A ``.cpg`` names an encoding in a few bytes; a longer one is damaged."""

_LDID_CODEPAGES: dict[int, str] = {
    0x01: "CP437",
    0x02: "CP850",
    0x03: "CP1252",
    0x08: "CP865",
    0x09: "CP437",
    0x0A: "CP850",
    0x0B: "CP437",
    0x0D: "CP437",
    0x0E: "CP850",
    0x0F: "CP437",
    0x10: "CP850",
    0x11: "CP437",
    0x12: "CP850",
    0x13: "CP932",
    0x14: "CP850",
    0x15: "CP437",
    0x16: "CP850",
    0x17: "CP865",
    0x18: "CP437",
    0x19: "CP437",
    0x1A: "CP850",
    0x1B: "CP437",
    0x1C: "CP863",
    0x1D: "CP850",
    0x1F: "CP852",
    0x22: "CP852",
    0x23: "CP852",
    0x24: "CP860",
    0x25: "CP850",
    0x26: "CP866",
    0x37: "CP850",
    0x40: "CP852",
    0x4D: "GBK",
    0x4E: "CP949",
    0x4F: "CP950",
    0x50: "CP874",
    0x58: "CP1252",
    0x59: "CP1252",
    0x64: "CP852",
    0x65: "CP866",
    0x66: "CP865",
    0x67: "CP861",
    0x6A: "CP737",
    0x6B: "CP857",
    0x6C: "CP863",
    0x78: "CP950",
    0x79: "CP949",
    0x7A: "GBK",
    0x7B: "CP932",
    0x7C: "CP874",
    0x7D: "CP1255",
    0x7E: "CP1256",
    0x86: "CP737",
    0x87: "CP852",
    0x88: "CP857",
    0xC8: "CP1250",
    0xC9: "CP1251",
    0xCA: "CP1254",
    0xCB: "CP1253",
    0xCC: "CP1257",
}
"""DBF language driver id (header byte 29) → code page, as ESRI and GDAL read
it (0x4D and 0x7A: GBK, 0x4F and 0x78: Big5, 0x4E and 0x79: Korean, 0x13 and
0x7B: Japanese). 0x00 and 0x57 mean "not stated" / "the writer's Windows code
page" and are not listed."""

_MULTIBYTE_CODEPAGES = frozenset({"GBK", "CP949", "CP950", "CP932"})
"""Code pages a language driver id names with enough confidence to follow:
their bytes rarely all decode by chance. A single-byte code page decodes any
bytes, so it is only the last resort after the bytes were sniffed."""

_CODEPAGE_NUMBERS = {
    "65001": "UTF-8",
    "936": "GBK",
    "20936": "GBK",
    "54936": "GB18030",
    "950": "CP950",
    "949": "CP949",
    "932": "CP932",
}

_SNIFFED = ("UTF-8", "GBK", "GB18030", "CP950")
"""Encodings tried on undeclared text, in order of preference on a tie."""
_PLAUSIBLE = 0.5
"""Lowest plausibility (see :func:`_plausibility`) of a sniffed CJK reading."""
_BIG5_MARGIN = 0.1
"""When both GBK and Big5 readings are plausible, Big5 this much more
plausible than GBK makes the file ambiguous (an error) rather than GBK."""
_RIVAL_MARGIN = 0.25
"""``encoding=`` that reads a layer almost as plausibly as its ``.cpg`` (at
most this much less) is worth a warning when the ``.cpg`` is followed."""


def detect_encoding(shp_path: str | os.PathLike[str]) -> str:
    """The text encoding of a Shapefile's attribute table (``.dbf``).

    Looked for in this order:

    1. the ``.cpg`` file beside it;
    2. the DBF header's language driver id (byte 29) when it names a
       Chinese, Japanese or Korean code page (``0x4D``/``0x7A`` GBK,
       ``0x4F``/``0x78`` Big5, ``0x4E``/``0x79`` CP949, ``0x13``/``0x7B`` CP932);
    3. the bytes of the text fields themselves, read as UTF-8, GBK (GB18030
       when GBK fails) and Big5 (CP950). Pure ASCII is ``"UTF-8"``. Each
       reading is scored by how much of it is plausible Chinese text: common
       characters count fully, rare ideographs and CJK punctuation half,
       Latin, Greek, Cyrillic or kana letters nothing, and Private Use Area
       characters (U+E000–U+F8FF, what Big5 bytes become when read as
       GB18030) against it. UTF-8 wins unless a Chinese reading scores
       higher; a Chinese reading must score at least 0.5 with no private-use
       character; GBK wins over Big5 unless Big5 is clearly more plausible,
       and then the file is ambiguous and an error asks for the encoding;
    4. a single-byte code page named in the DBF header, when no reading fits.

    A declared encoding (1, 2) is checked against the bytes, so a wrong
    ``.cpg`` is reported instead of producing garbled names. Nothing is ever
    returned that would read as mojibake: when in doubt,
    :class:`~gridgeo.errors.EncodingError` asks for the encoding.

    The ``.dbf`` is read in chunks of 8 MB, so its size does not matter; one
    whose size does not match its header, or whose records are not records
    (a file of zeros), is refused before its content is read.

    Parameters
    ----------
    shp_path:
        The ``.shp`` (or ``.dbf``) file.

    Returns
    -------
    str
        An encoding name understood by both Python and GDAL: ``"UTF-8"``,
        ``"GBK"``, ``"GB18030"``, ``"CP950"``, ``"CP1252"``, …

    Raises
    ------
    DataFileError
        The ``.dbf`` is missing, is not a DBF file, is truncated or damaged.
    EncodingError
        The ``.cpg`` is damaged or names an unknown encoding, a declared
        encoding does not fit the bytes, or no encoding reads them as
        plausible text. The message says how to pass the encoding
        (``encoding=`` in Python, ``--encoding`` on the command line).

    Example
    -------
    >>> import tempfile
    >>> from gridgeo import load_demo
    >>> from gridgeo.io import write_layer
    >>> shp = Path(tempfile.mkdtemp()) / "town.shp"
    >>> detect_encoding(write_layer(load_demo()["town"], shp, encoding="GBK"))
    'GBK'
    >>> shp.with_suffix(".cpg").unlink()  # now the bytes alone tell
    >>> detect_encoding(shp)
    'GBK'
    """
    return resolve_encoding(Path(shp_path), None)


def resolve_encoding(shp: Path, requested: str | None) -> str:
    """The encoding to read Shapefile ``shp`` with, given ``encoding=`` (or ``None``).

    ``requested`` applies to a layer that does not declare its encoding in a
    ``.cpg`` file (it overrides the DBF header's language byte), and to a
    layer whose ``.cpg`` is damaged or does not fit its bytes. A ``.cpg`` that fits is
    followed, with a warning naming it when ``requested`` would read the text
    differently. So one ``encoding=`` for a whole folder fixes the layers
    that need it and leaves the correctly labelled ones alone.

    Parameters
    ----------
    shp:
        The ``.shp`` (or ``.dbf``) file.
    requested:
        What the user asked for; ``None`` to detect (see :func:`detect_encoding`).

    Returns
    -------
    str
        The encoding's canonical name.

    Raises
    ------
    DataFileError, EncodingError
        As :func:`detect_encoding`; also when ``requested`` does not fit.

    Example
    -------
    >>> import tempfile
    >>> from gridgeo import load_demo
    >>> from gridgeo.io import write_layer
    >>> shp = Path(tempfile.mkdtemp()) / "town.shp"
    >>> shp = write_layer(load_demo()["town"], shp, encoding="UTF-8")
    >>> resolve_encoding(shp, "GBK")  # the UTF-8 .cpg fits its bytes: it wins
    'UTF-8'
    >>> shp.with_suffix(".cpg").unlink()
    >>> resolve_encoding(shp, "UTF-8")  # no .cpg: encoding= decides (and is checked)
    'UTF-8'
    """
    dbf = _require_dbf(shp)
    ldid, items = _dbf_text(dbf)
    cpg = _sidecar(shp, ".cpg")
    try:
        declared = _cpg_encoding(cpg) if cpg is not None else None
    except EncodingError:
        if requested is None:
            raise
        declared = None  # a damaged .cpg declares nothing: encoding= replaces it
    if requested is None:
        if declared is not None:
            _check_fits(items, declared, shp, f"its {cpg.name} file", cpg=cpg)
            return declared
        codepage = _LDID_CODEPAGES.get(ldid)
        if codepage in _MULTIBYTE_CODEPAGES:
            source = f"its DBF header (language driver 0x{ldid:02X})"
            _check_fits(items, codepage, shp, source, cpg=None)
            return codepage
        return _sniff(items, shp, fallback=codepage)
    wanted = canonical_encoding(
        requested,
        f"unknown encoding {requested!r}; use e.g. {option('encoding', 'GBK')}, "
        f"{option('encoding', 'UTF-8')} or {option('encoding', 'big5')}",
    )
    if declared is not None and _misfit(items, declared) is None:
        if _rivals(items, declared, wanted):
            warnings.warn(
                f"{shp}: its {cpg.name} says the text is {declared}, which fits its "
                f"bytes, so gridgeo read it as {declared}, not as {wanted} "
                f"({option('encoding', requested)} applies to layers without a .cpg). "
                f"If {cpg.name} is wrong, fix or delete it.",
                stacklevel=3,
            )
        return declared
    if _decodes(items, wanted) is not None:
        return wanted
    where, raw = _first_failure(items, wanted)
    also = (
        f" Its {cpg.name} says {declared}, which does not fit either."
        if declared is not None
        else ""
    )
    raise EncodingError(
        f"{shp}: {where} holds bytes [{_show_bytes(raw)}] that are not valid {wanted}, "
        f"so {option('encoding', requested)} cannot be this file's encoding.{also} "
        f"Pass the encoding {shp.stem} was written in (e.g. "
        f"{option('encoding', 'GBK')}, {option('encoding', 'UTF-8')} or "
        f"{option('encoding', 'big5')}), or add {shp.stem}.cpg containing its name."
    )


def _rivals(items: list[tuple[str, bytes]], declared: str, wanted: str) -> bool:
    """Whether ``wanted`` reads ``items`` differently from ``declared``, as plausibly."""
    theirs = _decodes(items, wanted)
    if declared == wanted or theirs is None:
        return False
    ours = _decodes(items, declared) or ""
    return theirs != ours and _plausibility(theirs) >= _plausibility(ours) - _RIVAL_MARGIN


def no_encoding_outside_shapefiles(encoding: str | None, kind: str, path: Path) -> None:
    if encoding is None:
        return
    if canonical_encoding(encoding, f"unknown encoding {encoding!r}") != "UTF-8":
        raise EncodingError(
            f"{path}: {kind} text is always UTF-8; {option('encoding', encoding)} applies "
            "only to Shapefiles. Leave it out."
        )


def _require_dbf(shp: Path) -> Path:
    dbf = _sidecar(shp, ".dbf")
    if dbf is None:
        expected = shp.with_suffix(".dbf")
        reason = unreachable(expected) if expected.is_symlink() else None
        raise DataFileError(
            f"{shp}: its attribute table {expected.name} is missing"
            f"{f' ({reason})' if reason else ''}. A Shapefile needs its .shp, .shx and "
            ".dbf files (and .prj) side by side."
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


# -- damaged parts -----------------------------------------------------------------------
_SHP_FILE_CODE = 9994


def check_shapefile_parts(shp: Path) -> None:
    """:class:`DataFileError` when the ``.shp`` or ``.shx`` is truncated or not a Shapefile.

    Both files start with a 100-byte header whose bytes 24–27 give the file's
    length; a copy cut short (a full disk, an interrupted download) is
    shorter than that. GDAL would read the missing records as rows without
    geometry, which reads as a drawing mistake, not as a damaged file.

    Example
    -------
    >>> import os, tempfile
    >>> from gridgeo import load_demo
    >>> from gridgeo.io import write_layer
    >>> shp = write_layer(load_demo()["town"], Path(tempfile.mkdtemp()) / "town.shp")
    >>> check_shapefile_parts(shp)
    >>> os.truncate(shp, shp.stat().st_size // 2)
    >>> check_shapefile_parts(shp)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridgeo.errors.DataFileError: .../town.shp is truncated: ...
    """
    size = _declared_length(shp, "main file (.shp)")
    shx = _sidecar(shp, ".shx")
    if shx is None:
        return
    _declared_length(shx, "index file (.shx)")
    count = (shx.stat().st_size - 100) // 8
    if count <= 0:
        return
    index = np.memmap(shx, dtype=">i4", mode="r", offset=100, shape=(count, 2))
    ends = (index[:, 0].astype(np.int64) + 4 + index[:, 1].astype(np.int64)) * 2
    beyond = np.flatnonzero(ends > size)
    if beyond.size:
        row = int(beyond[0])
        raise DataFileError(
            f"{shp} is truncated: its index {shx.name} places row {row} (and "
            f"{beyond.size - 1} row(s) after it) beyond the end of the file, which has "
            f"only {size:,} bytes. The copy is incomplete or the disk was full while "
            "writing; copy the layer again, or re-export it from your GIS."
        )


def _declared_length(file: Path, what: str) -> int:
    """The size of ``file``, checked against the length its Shapefile header declares."""
    size = file.stat().st_size
    with file.open("rb") as handle:
        head = handle.read(100)
    if len(head) < 100 or struct.unpack(">i", head[:4])[0] != _SHP_FILE_CODE:
        raise DataFileError(
            f"{file} is not a Shapefile {what}: it does not start with the Shapefile "
            f"header (it is {size:,} bytes, beginning [{_show_bytes(head)}]). Copy the "
            "layer again, or re-export it from your GIS."
        )
    declared = struct.unpack(">i", head[24:28])[0] * 2
    if size < declared:
        raise DataFileError(
            f"{file} is truncated: its header says it holds {declared:,} bytes, but the "
            f"file has only {size:,} ({size / declared:.0%}). The copy is incomplete or "
            "the disk was full while writing; copy the layer again, or re-export it "
            "from your GIS."
        )
    return size


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
    check_shapefile_parts(path)
    encoding = resolve_encoding(path, encoding)
    return read_ogr(path, str(path), encoding=encoding)


_TRUNCATED = range(8, _DBF_NAME_BYTES + 1)
"""Lengths a field name cut short by other software has (ArcGIS and GDAL cut
to 10 bytes, older tools to 8)."""


def recognise_fields(
    frame: gpd.GeoDataFrame, config: GridConfig, field_names: Mapping[str, str] | None
) -> gpd.GeoDataFrame:
    """``frame`` with short field names renamed to the column names gridgeo uses.

    A column is renamed when the layer lacks the long name and the column is

    * the declared Shapefile field name (``parent`` → ``parent_code``, from
      ``config.shapefile_fields`` and ``field_names``);
    * the long name in another case (``CODE`` → ``code``);
    * the long name cut to 8–10 characters by other software
      (``parent_cod`` → ``parent_code``, ``househol`` → ``households``). When
      several long names start that way, the shortest one (the one least cut)
      is taken, with a warning naming the others and how to declare one of
      them instead; when several are equally short, the column is left as it
      is, with a warning.

    Columns that already carry a known name are left as they are.

    Example
    -------
    >>> from shapely import box
    >>> from gridgeo.config import BANNER
    >>> frame = gpd.GeoDataFrame(
    ...     {"CODE": ["1"], "name": ["a"], "parent_cod": [""], "househol": [3]},
    ...     geometry=[box(0, 0, 1, 1)],
    ... )
    >>> with warnings.catch_warnings():  # "househol" could be "household_id" too
    ...     warnings.simplefilter("ignore")
    ...     list(recognise_fields(frame, BANNER, None).columns)
    ['code', 'name', 'parent_code', 'households', 'geometry']
    """
    mapping = _field_mapping(config, field_names)
    known = list(dict.fromkeys([*REQUIRED_COLUMNS, *mapping]))
    # both the configured and the extra short name read back: field_names={'parent_code':
    # 'PARENTCODE'} for one layer must not stop 'parent' being read in the others
    pairs = [*config.shapefile_fields, *(field_names or {}).items()]
    declared = {short: long for long, short in pairs if short != long}
    geometry = frame.geometry.name
    columns = [c for c in frame.columns if isinstance(c, str) and c != geometry]
    taken = set(frame.columns)
    renames: dict[str, str] = {}
    for column in columns:
        if column in known:
            continue
        target = declared.get(column) or _long_name(column, known, field_names)
        if target is None or target in taken:
            continue
        renames[column] = target
        taken.add(target)
    return frame.rename(columns=renames) if renames else frame


def require_fields(
    frame: gpd.GeoDataFrame,
    where: str,
    config: GridConfig,
    field_names: Mapping[str, str] | None,
    required: tuple[str, ...] = REQUIRED_COLUMNS,
) -> None:
    """:class:`SchemaError` when ``frame`` (after :func:`recognise_fields`) lacks a ``required`` column.

    The message names the columns expected, the columns found, and for each
    missing one the found columns that look like it (a cut that is too short
    or too odd to be recognised, ``parent_c`` or ``PARENTCOD``), with the
    ``field_names`` mapping that declares it.

    Example
    -------
    >>> from shapely import box
    >>> from gridgeo.config import BANNER
    >>> frame = gpd.GeoDataFrame(
    ...     {"code": ["1"], "name": ["a"], "parent_c": [""]}, geometry=[box(0, 0, 1, 1)]
    ... )
    >>> require_fields(frame, "town.shp", BANNER, None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridgeo.errors.SchemaError: town.shp: column 'parent_code' is missing...could be 'parent_c'...
    """
    absent = [name for name in required if name not in frame.columns]
    if not absent:
        return
    geometry = frame.geometry.name
    found = [c for c in frame.columns if c != geometry]
    known = set(_field_mapping(config, field_names)) | set(required)
    spare = [c for c in found if isinstance(c, str) and c not in known]
    looks = {name: _lookalikes(name, spare) for name in absent}
    hints = [
        f"{name!r} could be {' or '.join(repr(c) for c in columns)}"
        for name, columns in looks.items()
        if columns
    ]
    example = next(((n, c[0]) for n, c in looks.items() if c), (absent[0], "YOUR_FIELD"))
    declare = f"{option('field_names')}{{{example[0]!r}: {example[1]!r}}}"
    raise SchemaError(
        f"{where}: column{'s' if len(absent) > 1 else ''} "
        f"{', '.join(repr(n) for n in absent)} {'are' if len(absent) > 1 else 'is'} missing. "
        f"Every layer needs {', '.join(repr(n) for n in required)} (parent_code empty "
        f"for the top level); gridgeo also recognises these names cut to 8–10 "
        f"characters by other software ('parent_cod') and in any letter case. It "
        f"found {found}"
        + (f"; of those, {'; '.join(hints)}" if hints else "")
        + f". Declare which field holds each column, e.g. {declare}, or rename the "
        "fields in your GIS."
    )


def _lookalikes(name: str, columns: list[str]) -> list[str]:
    """``columns`` that may be ``name`` under another spelling: a prefix, a cut, a near miss."""
    key = name.lower().replace("_", "")
    out = []
    for column in columns:
        other = column.lower().replace("_", "")
        if len(other) >= 3 and (key.startswith(other) or other.startswith(key)):
            out.append(column)
    near = difflib.get_close_matches(name.lower(), [c.lower() for c in columns], n=3, cutoff=0.6)
    out += [c for c in columns if c.lower() in near and c not in out]
    return out


def _long_name(column: str, known: list[str], field_names: Mapping[str, str] | None) -> str | None:
    """The known long name ``column`` is another spelling or a cut of, if any."""
    key = column.lower()
    same = [name for name in known if name.lower() == key]
    if same:
        return same[0]
    if len(key.encode("utf-8")) not in _TRUNCATED:
        return None
    cut = sorted(
        (name for name in known if len(name) > len(key) and name.lower().startswith(key)),
        key=len,
    )
    if len(cut) <= 1:
        return cut[0] if cut else None
    others = ", ".join(repr(name) for name in cut[1:])
    declare = f"{option('field_names')}{{{cut[1]!r}: {column!r}}}"
    if len(cut[0]) == len(cut[1]):
        warnings.warn(
            f"field {column!r} looks like a cut of {cut[0]!r} or {others}; it is kept as "
            f"{column!r}. Declare which it is, e.g. {declare}.",
            stacklevel=5,
        )
        return None
    warnings.warn(
        f"field {column!r} was read as {cut[0]!r}, the shortest column name it is a cut "
        f"of; it could also be {others}. If so, declare it, e.g. {declare}.",
        stacklevel=5,
    )
    return cut[0]


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
                    f"{_DBF_NAME_BYTES}. Declare a shorter one with "
                    f"{option('field_names')}{{{column!r}: '...'}}."
                )
            raise SchemaError(
                f"{where}: column {column!r} is {size} bytes long in {codec}, but Shapefile "
                f"(DBF) field names hold at most {_DBF_NAME_BYTES} bytes and gridgeo never "
                f"truncates them. Declare a short name with "
                f"{option('field_names')}{{{column!r}: 'short_name'}} (write_layer, "
                "write_system), or add it to GridConfig.shapefile_fields; pass the same "
                f"{option('field_names')} when reading and the long name comes back. Or "
                "write a GeoPackage instead."
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
            f"{option('encoding', 'UTF-8')}."
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
                f"with {option('encoding', 'UTF-8')}, or {option('encoding', 'GB18030')} "
                "if the reading software needs a GBK-compatible file."
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
    (its superset), ``"88591"`` → ``"ISO-8859-1"``, ``"big5"`` → ``"BIG5"``;
    unknown (or not a name at all) → :class:`EncodingError` with ``message``.

    Example
    -------
    >>> canonical_encoding("cp936", "unknown")
    'GBK'
    >>> canonical_encoding("ANSI 950", "unknown")
    'CP950'
    """
    key = name.strip().strip("\x00").strip().upper().replace(" ", "")
    if key.startswith("ANSI") and key[4:].isdigit():
        key = key[4:]  # "ANSI 936"
    if key in _CODEPAGE_NUMBERS:
        return _CODEPAGE_NUMBERS[key]
    if key.isdigit():
        key = f"ISO-8859-{key[4:]}" if key.startswith("8859") and len(key) > 4 else f"CP{key}"
    if not key or not key.isascii() or not key.isprintable():
        raise EncodingError(message + ".")
    try:
        python = codecs.lookup(key).name
    except (LookupError, ValueError):
        raise EncodingError(message + ".") from None
    if python in {"gbk", "gb2312"}:
        return "GBK"
    if python.startswith("iso8859-"):
        return "ISO-8859-" + python.removeprefix("iso8859-")
    return python.upper().replace("_", "-")


def _cpg_encoding(cpg: Path) -> str | None:
    """The encoding a ``.cpg`` file names; ``None`` for an empty one."""
    with cpg.open("rb") as file:
        raw = file.read(_CPG_BYTES + 1)
    if not raw.strip():
        return None
    text = raw.strip(b" \t\r\n\x00")  # some writers pad the name with NUL bytes
    if len(raw) > _CPG_BYTES or not text or not all(0x20 <= byte < 0x7F for byte in text):
        raise EncodingError(
            f"{cpg} should hold the name of an encoding (such as UTF-8 or GBK) but is "
            f"{len(raw) if len(raw) <= _CPG_BYTES else 'over ' + str(_CPG_BYTES)} bytes "
            f"of something else [{_show_bytes(raw)}]: it is damaged. Write the "
            f"encoding's name into {cpg.name} (e.g. UTF-8 or GBK), or delete it and pass "
            f"{option('encoding', 'GBK')} (or the right one)."
        )
    declared = text.decode("ascii")
    return canonical_encoding(
        declared,
        f"{cpg} names the encoding {declared!r}, which gridgeo does not know. Fix the "
        f".cpg (e.g. write UTF-8 or GBK into it) or pass {option('encoding', 'GBK')} "
        "(or the right one)",
    )


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
    """Language driver id and the distinct non-ASCII text of a DBF.

    The text is ``(where, raw bytes)`` for field names and values, each
    distinct value once, where it first occurs. ``where`` reads like
    ``"row 3, field 'NAME'"`` (rows count from 0, as in the GeoDataFrame).
    Deleted records are skipped; values lose their padding.

    The records are read :data:`_CHUNK_BYTES` at a time, so memory stays
    bounded whatever the file's size. A file whose size does not match its
    header (truncated, or with data appended: a sparse file of zeros), or a
    record that does not start with a record marker, is a
    :class:`DataFileError` raised before the rest is read.
    """
    size = dbf.stat().st_size
    with dbf.open("rb") as file:
        count, header, record, ldid = _dbf_header(file.read(32), dbf)
        expected = header + count * record
        if size < expected or size > expected + _DBF_SLACK:
            raise DataFileError(_size_mismatch(dbf, size, count, header, record))
        descriptors = file.read(header - 32)
        names, fields = _dbf_fields(descriptors, record, dbf)
        items = dict(names)  # raw bytes -> where, in order of appearance
        rows = max(1, _CHUNK_BYTES // record)
        for first in range(0, count, rows):
            n = min(rows, count - first)
            table = np.fromfile(file, dtype=np.uint8, count=n * record).reshape(n, record)
            _require_records(table, first, dbf)
            live = table[:, 0] != 0x2A  # "*" marks a deleted record
            for name, start, width in fields:
                _add_values(items, table[:, start : start + width], live, first, name)
    return ldid, [(where, raw) for raw, where in items.items()]


def _size_mismatch(dbf: Path, size: int, count: int, header: int, record: int) -> str:
    expected = header + count * record
    if size < expected:
        return (
            f"{dbf} is truncated: its header declares {count:,} records of {record} bytes "
            f"({expected:,} bytes with the header), but the file has only {size:,}. The "
            "copy is incomplete or the disk was full while writing; copy the layer "
            "again, or re-export it from your GIS."
        )
    return (
        f"{dbf} is damaged: its header declares {count:,} records of {record} bytes "
        f"({expected:,} bytes with the header), but the file has {size:,} bytes, "
        f"{size - expected:,} more than that (junk appended, or a header that lost "
        "count of its records). gridgeo does not guess which records are real: "
        "re-export the layer from your GIS, or restore it from a backup."
    )


def _dbf_fields(
    descriptors: bytes, record: int, dbf: Path
) -> tuple[dict[bytes, str], list[tuple[str, int, int]]]:
    """Non-ASCII field names (raw → where) and the text fields ``(name, offset, width)``."""
    names: dict[bytes, str] = {}
    fields: list[tuple[str, int, int]] = []
    offset = 1  # byte 0 of every record is the deletion flag
    for position in range(0, len(descriptors) - 31, 32):
        descriptor = descriptors[position : position + 32]
        if descriptor[0] == 0x0D:
            break
        raw_name = descriptor[:11].split(b"\x00", 1)[0]
        name = raw_name.decode("ascii", "backslashreplace")
        if not raw_name.isascii():
            names.setdefault(raw_name, f"field name {name!r}")
        width = descriptor[16]
        if descriptor[11:12] == b"C":
            width += descriptor[17] << 8  # FoxPro: text widths above 255
            fields.append((name, offset, width))
        offset += width
    if offset > record:
        raise DataFileError(
            f"{dbf} has a damaged header: its fields take {offset} bytes per record, "
            f"but its records are {record} bytes. Re-export the layer from your GIS."
        )
    return names, fields


def _require_records(table: np.ndarray, first: int, dbf: Path) -> None:
    """Every row starts with a record marker: a space (live) or ``*`` (deleted)."""
    flags = table[:, 0]
    bad = np.flatnonzero((flags != 0x20) & (flags != 0x2A))
    if bad.size:
        row = first + int(bad[0])
        raise DataFileError(
            f"{dbf}: record {row} does not start with a record marker (it starts with "
            f"byte 0x{int(flags[bad[0]]):02X}), so the file is damaged or is not a DBF "
            "(a file of zeros, binary junk). Re-export the layer from your GIS, or "
            "restore it from a backup."
        )


def _add_values(
    items: dict[bytes, str], block: np.ndarray, live: np.ndarray, first: int, field: str
) -> None:
    """Add the distinct non-ASCII values of one text field of one chunk to ``items``."""
    wanted = np.flatnonzero(live & (block >= 0x80).any(axis=1))
    if not wanted.size:
        return
    values = np.ascontiguousarray(block[wanted]).view(np.dtype((np.void, block.shape[1])))
    _, index = np.unique(values.ravel(), return_index=True)
    for position in np.sort(index):  # distinct values only, in row order
        raw = block[wanted[position]].tobytes().rstrip(b" \x00")
        if raw not in items:
            items[raw] = f"row {first + int(wanted[position])}, field {field!r}"


def _decodes(items: list[tuple[str, bytes]], encoding: str) -> str | None:
    """All ``items`` decoded strictly with ``encoding`` (joined by newlines), or ``None``."""
    try:
        # "\n" is never part of a multi-byte sequence in UTF-8, GB18030 or Big5, so
        # the joined text decodes exactly when every item does.
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


def _shown(raw: bytes, encoding: str) -> str:
    """``raw`` read with ``encoding``, short enough for a message."""
    text = raw.decode(encoding, errors="replace")
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


_UNICODE_TEXT = frozenset({"UTF-8", "UTF-16", "UTF-16-LE", "UTF-16-BE", "UTF-32"})


def _misfit(items: list[tuple[str, bytes]], encoding: str) -> str | None:
    """Why ``encoding`` does not fit ``items`` (``None`` when it does).

    It fits when every item decodes and, for a legacy code page, the text
    holds no Private Use Area character: those are what the bytes of another
    code page (Big5 read as GB18030) turn into.
    """
    text = _decodes(items, encoding)
    if text is None:
        where, raw = _first_failure(items, encoding)
        return f"{where} holds bytes [{_show_bytes(raw)}] that are not valid {encoding}"
    if encoding not in _UNICODE_TEXT and _private_use(text):
        where, raw = next((w, r) for w, r in items if _private_use(r.decode(encoding)))
        return (
            f"read as {encoding}, {where} is {_shown(raw, encoding)}, which holds "
            "private-use characters (U+E000–U+F8FF): the sign of text in another "
            "encoding, such as Big5, read as the wrong one"
        )
    return None


def _check_fits(
    items: list[tuple[str, bytes]], encoding: str, shp: Path, source: str, *, cpg: Path | None
) -> None:
    """:class:`EncodingError` unless ``encoding``, declared by ``source``, fits ``items``."""
    reason = _misfit(items, encoding)
    if reason is None:
        return
    fix = f"fix or delete {cpg.name}" if cpg is not None else f"add {shp.stem}.cpg naming it"
    raise EncodingError(
        f"{shp}: {source} says the text is {encoding}, but {reason}. Pass the right "
        f"encoding, e.g. {option('encoding', 'GBK')}, {option('encoding', 'UTF-8')} or "
        f"{option('encoding', 'big5')}, or {fix}. If the text really is {encoding}, "
        f"pass {option('encoding', encoding)} to read it as it is."
    )


def _private_use(text: str) -> bool:
    return any("\ue000" <= c <= "\uf8ff" for c in text)


_PLAUSIBLE_RANGES = (
    ("\u1800", "\u18af"),  # Mongolian
    ("\u2000", "\u206f"),  # general punctuation
    ("\u2100", "\u218f"),  # letterlike symbols (℃, №) and number forms (Ⅱ)
    ("\u2460", "\u24ff"),  # enclosed alphanumerics (①)
    ("\u2e80", "\u2fdf"),  # CJK radicals
    ("\u3000", "\u303f"),  # CJK punctuation
    ("\u3200", "\u4dbf"),  # enclosed CJK, CJK compatibility (㎡), extension A
    ("\u4e00", "\u9fff"),  # CJK unified ideographs
    ("\uf900", "\ufaff"),  # CJK compatibility ideographs
    ("\ufe30", "\ufe4f"),  # CJK compatibility forms
    ("\uff00", "\uffef"),  # full-width forms
    ("\U00020000", "\U0003ffff"),  # CJK extensions B and later (GB18030)
)


@cache
def _common_chinese() -> frozenset[str]:
    """The 3,755 level-1 characters of GB2312 and the 5,401 common ones of Big5."""
    common: set[str] = set()
    trails = [*range(0x40, 0x7F), *range(0xA1, 0xFF)]
    for lead in range(0xA4, 0xD8):
        for trail in trails:
            pair = bytes((lead, trail))
            if lead >= 0xB0 and trail >= 0xA1:
                common.add(pair.decode("gb2312", errors="ignore"))
            if (lead << 8 | trail) <= 0xC67E:
                common.add(pair.decode("big5", errors="ignore"))
    common.discard("")
    return frozenset(common)


def _plausibility(text: str) -> float:
    """How much ``text`` looks like Chinese, from -1 to 1 (1 for pure ASCII).

    Per non-ASCII character: a common Chinese character (GB2312 level 1 or
    Big5's common set) counts 1; another CJK ideograph, CJK or full-width
    punctuation, Mongolian, ``·°×²`` 0.5; a Private Use Area character −1;
    anything else (the Latin, Greek, Cyrillic, kana and box-drawing letters
    that one code page's bytes turn into in another) 0.

    Example
    -------
    >>> _plausibility("乌拉山镇")
    1.0
    >>> "烏拉山鎮".encode("big5").decode("gb18030")  # Big5 bytes read as GB18030
    '疩┰\\ue619马'
    >>> _plausibility("疩┰\\ue619马")
    0.125
    """
    counts = Counter(c for c in text if not c.isascii())
    total = sum(counts.values())
    if not total:
        return 1.0
    common = _common_chinese()
    score = 0.0
    for char, n in counts.items():
        if char in common:
            score += n
        elif "\ue000" <= char <= "\uf8ff":
            score -= n
        elif char in "·°×²³±÷" or any(lo <= char <= hi for lo, hi in _PLAUSIBLE_RANGES):
            score += 0.5 * n
    return score / total


def _readings(items: list[tuple[str, bytes]]) -> dict[str, str]:
    """Each sniffed encoding that decodes ``items`` → the text (GB18030 only if GBK fails)."""
    readings: dict[str, str] = {}
    for encoding in _SNIFFED:
        if encoding == "GB18030" and "GBK" in readings:
            continue  # a superset: the same text wherever GBK decodes
        text = _decodes(items, encoding)
        if text is not None:
            readings[encoding] = text
    return readings


def _sniff(items: list[tuple[str, bytes]], shp: Path, fallback: str | None) -> str:
    """Encoding of undeclared text (see :func:`detect_encoding`, step 3)."""
    if not items:
        return "UTF-8"
    readings = _readings(items)
    scores = {encoding: _plausibility(text) for encoding, text in readings.items()}
    chinese = {
        encoding: score
        for encoding, score in scores.items()
        if encoding != "UTF-8" and score >= _PLAUSIBLE and not _private_use(readings[encoding])
    }
    if "UTF-8" in scores and scores["UTF-8"] >= max(chinese.values(), default=-1.0):
        return "UTF-8"
    gb = next((e for e in ("GBK", "GB18030") if e in chinese), None)
    if gb is not None and "CP950" in chinese:
        if chinese["CP950"] > chinese[gb] + _BIG5_MARGIN:
            raise EncodingError(_ambiguous(items, shp, gb))
        return gb
    if chinese:
        return max(chinese, key=chinese.__getitem__)
    if fallback is not None:
        return fallback  # a single-byte code page declared in the header decodes anything
    raise EncodingError(_unreadable(items, shp, readings))


def _ambiguous(items: list[tuple[str, bytes]], shp: Path, gb: str) -> str:
    where, raw = next(((w, r) for w, r in items if r.decode(gb) != r.decode("CP950")), items[0])
    return (
        f"{shp}: cannot tell whether the text is simplified Chinese ({gb}) or "
        f"traditional Chinese (Big5): it has no .cpg file, its DBF header does not "
        f"say, and {where} reads as {_shown(raw, gb)} in {gb} but as "
        f"{_shown(raw, 'CP950')} in Big5. Pass the right one, "
        f"{option('encoding', 'GBK')} or {option('encoding', 'big5')}, or add "
        f"{shp.stem}.cpg containing its name."
    )


def _unreadable(items: list[tuple[str, bytes]], shp: Path, readings: dict[str, str]) -> str:
    if readings:
        encoding = next(iter(readings))
        where, raw = max(items, key=lambda item: -_plausibility(item[1].decode(encoding)))
        detail = (
            f"read as {encoding} (the only way its bytes decode among UTF-8, GBK/GB18030 "
            f"and Big5) {where} would be {_shown(raw, encoding)}, which is not plausible "
            "text, and gridgeo never returns garbled names"
        )
    else:
        where, raw = _first_failure(items, "GB18030")
        detail = (
            f"{where} holds bytes [{_show_bytes(raw)}] that are valid in none of UTF-8, "
            "GBK/GB18030 and Big5"
        )
    return (
        f"{shp}: cannot tell the text encoding of this Shapefile. It has no .cpg file, "
        f"its DBF header does not say, and {detail}. Pass the encoding it was written "
        f"in, e.g. {option('encoding', 'GBK')} for simplified Chinese or "
        f"{option('encoding', 'big5')} for traditional Chinese (or the right one), or "
        f"add {shp.stem}.cpg containing its name."
    )
