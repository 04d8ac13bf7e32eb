"""Versions of plans, kept in a GeoPackage file or a PostgreSQL + PostGIS database.

A :class:`PlanStore` keeps every saved plan as an immutable, numbered version
(``v1``, ``v2``, …) with its author, message, time and parent. It works on
:class:`~gridgeo.plan.record.PlanRecord` tables, so it never needs to know how a
plan computes; :meth:`PlanStore.load` turns a version back into a
:class:`~gridgeo.plan.Plan`.

Two backends, one API:

* a **GeoPackage** file (``PlanStore("plans.gpkg")``), for one planner or a
  shared folder. The unit layer and the fixed upper levels are spatial layers
  QGIS opens (``units_…``, ``frame_…``); the versions are attribute tables
  (``gridgeo_versions``, ``gridgeo_assignment``, ``gridgeo_grids``, …);
* a **PostgreSQL + PostGIS** database (``PlanStore("postgresql://user@host/db")``,
  ``pip install gridgeo[postgis]``), for a team: the same tables in a schema
  (``gridgeo`` unless ``schema=`` says otherwise), geometry typed with the
  layer's SRID.

How a version is kept
---------------------
A unit layer is stored once, however many versions use it, and so are the
fixed levels: a layer is keyed by a hash of its whole content (every column,
CRS and geometry — stricter than
:attr:`~gridgeo.plan.record.PlanRecord.units_fingerprint`, so a renamed
village is a new layer rather than a lost edit). Each version stores its
assignment, grid and micro-grid rows, its history (JSON), retired codes and
configuration (TOML). Columns beyond the core ones (``code``,
``parent_code``, ``name``, ``locked``) go into a JSON text column with their
dtype noted, so any county's attributes come back as they went in (integers,
floats, text, true/false, dates). Spatial layers keep numbers, text and
true/false columns.

Saving is one transaction, and two planners cannot both save on the same
parent: :meth:`PlanStore.save` takes the parent version the plan was built on
and, when someone else saved on it first, raises a
:class:`~gridgeo.errors.ConflictError` saying what they changed; nothing is
written and nothing is lost. The check holds a lock (``BEGIN IMMEDIATE`` in
SQLite, a table lock in PostgreSQL), so it is free of races. A save cut off
half-way (a crash, a killed process, a lost connection) leaves the store at
its previous version.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import sqlite3
import struct
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from pandas.api.types import infer_dtype, pandas_dtype

from gridgeo.errors import ConflictError, SchemaError, StoreError, option
from gridgeo.io.atomic import commit, staging
from gridgeo.plan.record import ASSIGNMENT_COLUMNS, PlanRecord

if TYPE_CHECKING:
    from gridgeo.plan.model import Plan

__all__ = ["FORMAT", "FORMAT_VERSION", "PlanStore"]

FORMAT = "gridgeo-plan-store"
"""The ``format`` entry of a store's meta table: what marks a file or schema as a store."""

FORMAT_VERSION = 1
"""The layout this module writes; a store of a newer layout is refused, not damaged."""

_PAUSE = "GRIDGEO_STORE_PAUSE"
# Private test seam (tests/test_plan_store.py): seconds to sleep half-way through
# writing a version's rows, inside the transaction, after printing a line to stderr.

_GPKG_APPLICATION_ID = 0x47504B47  # "GPKG", the header mark of a GeoPackage file
_BUSY_SECONDS = 60  # how long a save waits for another writer before giving up
_KNOWN_SHOWN = 8  # versions listed when one is not found
_VERSION_ID = re.compile(r"v[1-9]\d*")
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_RESERVED = frozenset({"fid", "geom"})  # the stored layers' own key and geometry columns

# The record's tables and the columns each keeps in real (typed) columns; every
# other column goes into ``attrs`` (JSON). The key column comes first.
_CORE: dict[str, tuple[str, ...]] = {
    "assignment": ASSIGNMENT_COLUMNS,
    "grids": ("code", "parent_code", "name", "locked"),
    "micros": ("code", "parent_code", "name", "locked"),
}
_FLAGS = frozenset({"locked"})  # core columns typed true/false; the others are text

# The store's own tables: "column type, …" (types "text", "int", "bool") and the
# columns that identify a row (the primary key in PostgreSQL, UNIQUE in the GeoPackage).
_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "versions": (
        "version text, seq int, parent text, author text, message text, created text, "
        "units_fingerprint text, units_layer text, frame text, config text, history text, "
        "retired text, tables text, n_units int, n_grids int, n_micros int",
        ("version",),
    ),
    "tags": ("tag text, version text, created text", ("tag",)),
    "layers": (
        "layer text, kind text, fingerprint text, position int, level text, schema text",
        ("layer",),
    ),
    **{
        table: (
            ", ".join(
                ["version text", "pos int"]
                + [f"{c} {'bool' if c in _FLAGS else 'text'}" for c in core]
                + ["attrs text"]
            ),
            ("version", "pos"),
        )
        for table, core in _CORE.items()
    },
}


def _columns(table: str) -> list[tuple[str, str]]:
    """``(column, type)`` of one of the store's tables."""
    return [tuple(spec.split()) for spec in _TABLES[table][0].split(", ")]


_DESCRIPTIONS = {
    "versions": "gridgeo plan store: one row per saved version (immutable)",
    "tags": "gridgeo plan store: tags naming versions",
    "layers": "gridgeo plan store: the spatial layers (unit layers, fixed levels)",
    "assignment": "gridgeo plan store: unit -> workload grid, refinement per version",
    "grids": "gridgeo plan store: workload grid attributes per version",
    "micros": "gridgeo plan store: refinement (micro-grid) attributes per version",
}


# -- the public front ------------------------------------------------------------------------------
class PlanStore:
    """Immutable, numbered versions of plans in a GeoPackage file or a PostGIS database.

    Parameters
    ----------
    path_or_dsn:
        A ``.gpkg`` path, or a PostgreSQL address ``postgresql://user[:password]@host[:port]/db``
        (``postgres://`` too; needs ``pip install gridgeo[postgis]``).
    create:
        Create the store when the file (or the schema) does not exist yet. An
        existing file or schema that is not a gridgeo store is never modified.
    schema:
        PostgreSQL only: the schema holding the store's tables (``gridgeo``).

    Raises
    ------
    StoreError
        The file or schema exists but is not a gridgeo store, the database
        cannot be reached (the message names host, port and database, never
        the password), or the store was written by a newer gridgeo.

    Examples
    --------
    A plan of two units in one grid, saved, changed and saved again:

    >>> import geopandas as gpd, pandas as pd
    >>> from shapely import box
    >>> from gridgeo.config import BANNER
    >>> from gridgeo.plan.record import PlanRecord
    >>> units = gpd.GeoDataFrame(
    ...     {"unit_id": ["u1", "u2"], "district": ["150823100"] * 2,
    ...      "households": [40, 60], "residents": [100, 150]},
    ...     geometry=[box(108.50, 40.7, 108.51, 40.71), box(108.51, 40.7, 108.52, 40.71)],
    ...     crs="EPSG:4490")
    >>> grids = pd.DataFrame({"code": ["150823100001"], "parent_code": ["150823100"],
    ...                       "name": ["第1网格"], "locked": [False], "workers": [3]})
    >>> micros = pd.DataFrame({"code": [], "parent_code": [], "name": []}, dtype=str)
    >>> assignment = pd.DataFrame({"unit_id": ["u1", "u2"],
    ...                            "workload": ["150823100001"] * 2, "refinement": [""] * 2})
    >>> record = PlanRecord(BANNER.to_toml(), {}, units, assignment, grids, micros)
    >>> store = PlanStore("plans.gpkg")
    >>> store.save(record, "first draft", "planner A")
    'v1'
    >>> record.grids.loc[0, "workers"] = 4
    >>> store.save(record, "one more worker", "planner B", parent="v1")
    'v2'
    >>> store.log()[["version", "parent", "author", "message", "units", "grids"]]
      version parent     author          message  units  grids
    0      v1   None  planner A      first draft      2      1
    1      v2     v1  planner B  one more worker      2      1
    >>> store.diff("v1", "v2")[["table", "id", "change", "column", "before", "after"]]
       table            id   change   column before after
    0  grids  150823100001  changed  workers      3     4
    >>> store.load_record("v1").grids["workers"].tolist()  # versions never change
    [3]

    Saving on a parent someone else already saved on is refused:

    >>> store.save(record, "my edit", "planner C", parent="v1")
    Traceback (most recent call last):
    ...
    gridgeo.errors.ConflictError: cannot save on v1 in plans.gpkg: 1 version was saved on it ...
    >>> store.close()
    """

    def __init__(
        self,
        path_or_dsn: str | os.PathLike[str],
        *,
        create: bool = True,
        schema: str = "gridgeo",
    ) -> None:
        where = os.fspath(path_or_dsn)
        if isinstance(where, str) and where.startswith(("postgresql://", "postgres://")):
            self._backend: _Backend = _PostGIS(where, schema=schema, create=create)
        else:
            self._backend = _GeoPackage(Path(where), create=create)

    # -- reading --
    @property
    def versions(self) -> list[str]:
        """The version ids, oldest first."""
        return self._backend.versions()

    @property
    def head(self) -> str | None:
        """The latest version, or ``None`` in an empty store."""
        return self._backend.head()

    def log(self) -> pd.DataFrame:
        """Every version, oldest first.

        Returns
        -------
        pandas.DataFrame
            ``version``, ``parent`` (``None`` for the first), ``author``,
            ``message``, ``created`` (UTC, ISO 8601 text), ``tags`` (a list of
            names), ``units`` and ``grids`` (the version's counts).
        """
        return self._backend.log()

    def load_record(self, version: str | None = None) -> PlanRecord:
        """The :class:`~gridgeo.plan.record.PlanRecord` saved as ``version`` (a version or a tag).

        ``None`` loads the head. Raises :class:`~gridgeo.errors.StoreError` for a
        version the store does not hold, listing those it does.
        """
        return self._backend.load_record(self._backend.resolve(version))

    def load(self, version: str | None = None) -> Plan:
        """The :class:`~gridgeo.plan.Plan` saved as ``version`` (a version or a tag; ``None``: the head)."""
        from gridgeo.plan.model import Plan  # the model imports this module's package

        return Plan.from_record(self.load_record(version))

    def diff(self, old: str, new: str) -> pd.DataFrame:
        """What changed between two versions, one row per changed value.

        A plain comparison of the versions' tables, for a quick look and for
        :class:`~gridgeo.errors.ConflictError` messages. For the full comparison
        of two plans (households moved, grid correspondence, the map), load
        them and use :func:`gridgeo.plan.compare`.

        Parameters
        ----------
        old, new:
            Versions (or tags).

        Returns
        -------
        pandas.DataFrame
            ``table`` (``"assignment"``: a unit's workload grid or refinement
            changed; ``"grids"``, ``"micros"``: a grid's or micro-grid's
            attributes), ``id`` (the unit id or code), ``change``
            (``"changed"``, ``"added"`` or ``"removed"``), ``column`` (the
            changed column; ``""`` for a whole row added or removed),
            ``before`` and ``after`` (``None`` where absent). Sorted by table
            and id.
        """
        backend = self._backend
        old, new = backend.resolve(old), backend.resolve(new)
        with backend.reading():
            return _diff(backend.read_tables(old), backend.read_tables(new))

    # -- writing --
    def save(
        self,
        plan_or_record: Any,
        message: str,
        author: str,
        parent: str | None = None,
    ) -> str:
        """Save a plan as a new version and return its id (``"v1"``, ``"v2"``, …).

        Parameters
        ----------
        plan_or_record:
            A :class:`~gridgeo.plan.record.PlanRecord`, or anything with a
            ``to_record()`` method returning one (a :class:`~gridgeo.plan.Plan`).
        message, author:
            What changed and who changed it (non-empty).
        parent:
            The version the plan was built on: the store's head, or ``None``
            for the first version of an empty store.

        Raises
        ------
        ConflictError
            Other versions were saved on ``parent`` since (the message says
            which, by whom, and how many units and grids they changed; the
            error's ``head`` and ``since`` attributes hold the head and those
            versions); nothing was written.
        SchemaError
            A table holds a column or value the store cannot keep; nothing
            was written.
        """
        record = plan_or_record
        if not isinstance(record, PlanRecord):
            if not callable(getattr(record, "to_record", None)):
                raise TypeError(f"save() takes a Plan or a PlanRecord, not {type(record).__name__}")
            record = record.to_record()
        for what, text, needs in (("message", message, "a"), ("author", author, "an")):
            if not isinstance(text, str) or not text.strip():
                raise StoreError(f"save() needs {needs} {what}: give {option(what, '...')}.")
        parent = None if parent is None else self._backend.resolve(parent)
        prepared = _prepare(record)  # before the lock: it can take a while, and fail
        created = datetime.now(UTC).isoformat(timespec="seconds")
        return self._backend.save(prepared, parent, author=author, message=message, created=created)

    def tag(self, version: str, name: str) -> None:
        """Name a version (``store.tag("v3", "approved 2027")``); tags are permanent.

        A tag names one version; :meth:`load`, :meth:`load_record` and
        :meth:`diff` accept it in place of the version id.
        """
        version = self._backend.resolve(version)
        if not isinstance(name, str) or not name.strip() or _VERSION_ID.fullmatch(name):
            raise StoreError(
                f"cannot tag {version} as {name!r}: a tag is a non-empty name that is not "
                "itself a version id (e.g. 'approved 2027')."
            )
        self._backend.tag(version, name, datetime.now(UTC).isoformat(timespec="microseconds"))

    # -- lifecycle --
    def close(self) -> None:
        """Close the file or the database connection."""
        self._backend.close()

    def __enter__(self) -> PlanStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PlanStore({self._backend.name!r})"


# -- a record as rows ------------------------------------------------------------------------------
@dataclass
class _Layer:
    """A spatial layer to store once: the unit layer or one fixed level."""

    name: str
    kind: str  # "units" or "frame"
    fingerprint: str
    position: int
    level: str
    frame: gpd.GeoDataFrame
    schema: dict


@dataclass
class _Prepared:
    """A record flattened into what the store writes, computed before any lock is taken."""

    units: _Layer
    frame: list[_Layer]
    frame_key: str
    units_fingerprint: str
    tables: dict[str, tuple[list[dict], list[tuple]]]  # table → (schema, rows)
    config: str
    history: str
    retired: str

    @property
    def layers(self) -> list[_Layer]:
        return [self.units, *self.frame]


def _prepare(record: PlanRecord) -> _Prepared:
    """Check a record and turn it into rows; raises :class:`SchemaError` naming what cannot be kept."""
    if not isinstance(record.config_toml, str):
        raise SchemaError("the record's config_toml must be TOML text (GridConfig.to_toml()).")
    for table, needed in (("assignment", ASSIGNMENT_COLUMNS), ("grids", ("code",)),
                          ("micros", ("code",))):  # fmt: skip
        missing = [c for c in needed if c not in getattr(record, table).columns]
        if missing:
            raise SchemaError(f"the plan's {table} table lacks the columns {missing}.")
    frame, schema, key = _layer(record.units, "unit layer")
    units = _Layer(f"units_{key}", "units", key, 0, "", frame, schema)
    levels = [
        (str(level), *_layer(layer, f"fixed level {level!r}"))
        for level, layer in record.frame.items()
    ]
    frame_key = hashlib.sha256(
        "\x1d".join(f"{level}\x1e{key}" for level, _, _, key in levels).encode()
    ).hexdigest()[:16]
    fixed = []
    for position, (level, frame, schema, _) in enumerate(levels):
        slug = re.sub(r"[^a-z0-9_]", "", level.lower())[:20]  # for QGIS users: a readable name
        name = f"frame_{frame_key}_{position}" + (f"_{slug}" if slug else "")
        fixed.append(_Layer(name, "frame", frame_key, position, level, frame, schema))
    return _Prepared(
        units=units,
        frame=fixed,
        frame_key=frame_key,
        units_fingerprint=record.units_fingerprint,
        tables={t: _encode_table(getattr(record, t), t, core) for t, core in _CORE.items()},
        config=record.config_toml,
        history=_json(list(record.history), "history"),
        retired=_json([str(code) for code in record.retired], "retired codes"),
    )


def _layer(frame: gpd.GeoDataFrame, what: str) -> tuple[gpd.GeoDataFrame, dict, str]:
    """A spatial layer, its schema (columns' order and dtypes, CRS) and a hash of its content."""
    if not isinstance(frame, gpd.GeoDataFrame):
        raise SchemaError(f"the plan's {what} must be a GeoDataFrame, not {type(frame).__name__}.")
    frame = frame.reset_index(drop=True)
    geometry = frame.geometry.name
    columns = []
    for name in frame.columns:
        if name == geometry:
            continue
        if not isinstance(name, str) or name.lower() in _RESERVED:
            raise SchemaError(
                f"the plan's {what} has a column named {name!r}, which a plan store "
                f"reserves ({', '.join(sorted(_RESERVED))}): rename it."
            )
        dtype = frame[name].dtype
        if dtype.kind not in "biuf" and not _is_text(frame[name]):
            raise SchemaError(
                f"the plan's {what} column {name!r} has dtype {dtype}: a plan store keeps "
                "numbers, text and true/false in spatial layers; convert it "
                "(e.g. .astype(str))."
            )
        columns.append([name, str(dtype)])
    schema = {
        "columns": columns,
        "order": [str(c) for c in frame.columns],
        "geometry": str(geometry),
        "crs": _crs_text(frame.crs),
    }
    digest = hashlib.sha256(json.dumps(schema, ensure_ascii=False).encode())
    for name, _ in columns:
        digest.update(("\x1e" + "\x1f".join(map(str, frame[name].tolist()))).encode())
    for blob in shapely.to_wkb(frame.geometry.to_numpy()):
        digest.update(b"\x1d" + (blob or b""))
    return frame, schema, digest.hexdigest()[:16]


@functools.lru_cache(maxsize=16)  # the authority search takes ~0.1 s for a custom CRS
def _crs_text(crs: pyproj.CRS | None) -> str | None:
    """``"EPSG:4490"`` when the CRS is exactly an authority's, else its WKT."""
    if crs is None:
        return None
    authority = crs.to_authority(min_confidence=100)
    return ":".join(authority) if authority else crs.to_wkt()


def _is_text(column: pd.Series) -> bool:
    return column.dtype.kind == "O" and infer_dtype(column, skipna=True) in ("string", "empty")


def _encode_table(frame: pd.DataFrame, table: str, core: tuple[str, ...]) -> tuple[list, list]:
    """A table's schema (``[name, dtype, real]`` per column) and rows ``(pos, *core, attrs)``."""
    frame = frame.reset_index(drop=True)
    if not all(isinstance(c, str) for c in frame.columns) or frame.columns.duplicated().any():
        raise SchemaError(
            f"the plan's {table} table needs unique text column names, not {list(frame.columns)}."
        )
    schema = []
    for name in frame.columns:
        column = frame[name]
        fits = column.dtype.kind == "b" if name in _FLAGS else _is_text(column)
        schema.append({"name": name, "dtype": str(column.dtype), "real": name in core and fits})
    real = {s["name"] for s in schema if s["real"]}
    extras = [s["name"] for s in schema if not s["real"]]
    n = len(frame)
    values = [_plain(frame[c]) if c in real else [None] * n for c in core]
    if extras:
        plain = {c: _plain(frame[c]) for c in extras}
        attrs = [_json({c: plain[c][i] for c in extras}, f"{table} row {i}") for i in range(n)]
    else:
        attrs = [None] * n
    return schema, list(zip(range(n), *values, attrs, strict=True))


def _plain(column: pd.Series) -> list:
    """A column as Python values, missing ones as ``None``, times as ISO text."""
    if column.dtype.kind in "mM":
        return [None if pd.isna(v) else v.isoformat() for v in column]
    return column.astype(object).where(column.notna(), None).tolist()


def _json(value: Any, what: str) -> str:
    def plain(item: Any) -> Any:
        if isinstance(item, np.generic):
            return item.item()
        if isinstance(item, date):  # datetime and pandas.Timestamp too
            return item.isoformat()
        raise TypeError(f"{type(item).__name__} {item!r}")

    try:
        # allow_nan: an infinite attribute is a number too (Python reads "Infinity" back)
        return json.dumps(value, ensure_ascii=False, default=plain)
    except (TypeError, ValueError) as error:
        raise SchemaError(
            f"the plan's {what} cannot be stored as JSON ({error}): keep numbers, text, "
            "true/false, lists and dicts there."
        ) from None


def _decode_table(rows: list[tuple], core: tuple[str, ...], schema: list[dict]) -> pd.DataFrame:
    """The table :func:`_encode_table` wrote, with its columns' order and dtypes."""
    by_name = {c: i + 1 for i, c in enumerate(core)}
    attrs = [json.loads(row[-1]) if row[-1] else {} for row in rows]
    data = {}
    for column in schema:
        name = column["name"]
        if column["real"]:
            values = [row[by_name[name]] for row in rows]
        else:
            values = [a.get(name) for a in attrs]
        data[name] = _typed(values, column["dtype"])
    return pd.DataFrame(data, columns=[c["name"] for c in schema], index=pd.RangeIndex(len(rows)))


def _typed(values: Sequence[Any], dtype: str) -> pd.Series:
    """Stored values back into a column of ``dtype``."""
    target = pandas_dtype(dtype)
    series = pd.Series(list(values), dtype=object)
    if target.kind == "M":  # ISO 8601 text, as _plain wrote it
        series = pd.to_datetime(series, format="ISO8601")
    elif target.kind == "m":
        series = pd.to_timedelta(series)
    return series.astype(target)


def _restore_layer(data: pd.DataFrame, geometry: np.ndarray, schema: dict) -> gpd.GeoDataFrame:
    """A layer read back as saved: its columns' order, dtypes and names, and its CRS."""
    columns = {name: _typed(data[name].tolist(), dtype) for name, dtype in schema["columns"]}
    columns[schema["geometry"]] = gpd.GeoSeries(geometry)
    return gpd.GeoDataFrame(
        {name: columns[name] for name in schema["order"]},
        geometry=schema["geometry"],
        crs=schema["crs"],
    )


# -- diff ------------------------------------------------------------------------------------------
_DIFF_COLUMNS = ["table", "id", "change", "column", "before", "after"]


def _diff(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per changed value of two versions' tables (see :meth:`PlanStore.diff`)."""
    parts = []
    for table, core in _CORE.items():
        key = core[0]
        old = before[table].set_index(key)
        new = after[table].set_index(key)
        for change, ids in (
            ("removed", old.index.difference(new.index, sort=False)),
            ("added", new.index.difference(old.index, sort=False)),
        ):
            parts.append(pd.DataFrame({"table": table, "id": ids, "change": change, "column": ""}))
        common = old.index.intersection(new.index, sort=False)
        for column in old.columns.union(new.columns, sort=False):
            a = _column(old, column, common)
            b = _column(new, column, common)
            changed = ~(_equal(a, b) | (a.isna() & b.isna()).to_numpy())
            if changed.any():
                parts.append(
                    pd.DataFrame(
                        {
                            "table": table,
                            "id": common[changed],
                            "change": "changed",
                            "column": column,
                            "before": a[changed].to_numpy(),
                            "after": b[changed].to_numpy(),
                        }
                    )
                )
    frames = [p for p in parts if len(p)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _DIFF_COLUMNS})
    out = pd.concat(frames, ignore_index=True).reindex(columns=_DIFF_COLUMNS)
    out[["before", "after"]] = out[["before", "after"]].astype(object)
    out = out.where(out.notna(), None)
    order = {table: i for i, table in enumerate(_CORE)}
    out = out.sort_values(["table", "id"], key=lambda s: s.map(order) if s.name == "table" else s)
    return out.reset_index(drop=True)


def _column(frame: pd.DataFrame, column: str, ids: pd.Index) -> pd.Series:
    if column not in frame.columns:
        return pd.Series([None] * len(ids), index=ids, dtype=object)
    return frame[column].reindex(ids).astype(object)


def _equal(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise ``a == b`` of two object columns (``False`` where undecidable, as pd.NA)."""
    try:
        return np.asarray(a.to_numpy() == b.to_numpy(), dtype=bool)
    except (TypeError, ValueError):  # an element compared to pd.NA: one at a time
        return np.array([x is y or (x == y) is True for x, y in zip(a, b, strict=True)])


# -- conflicts -------------------------------------------------------------------------------------
def _conflict(backend: _Backend, parent: str | None, head: str) -> ConflictError:
    """The error of a save on ``parent`` when ``head`` is newer: who saved what since."""
    t = backend.table
    seq = 0
    if parent is not None:
        ((seq,),) = backend.query(f"SELECT seq FROM {t('versions')} WHERE version = ?", [parent])
    since = backend.query(
        f"SELECT version, author, message, created FROM {t('versions')} WHERE seq > ? ORDER BY seq",
        [seq],
    )
    newest = backend.read_tables(head)
    relayered = False
    if parent is None:
        units, grids = len(newest["assignment"]), len(newest["grids"])
    else:
        changes = _diff(backend.read_tables(parent), newest)
        units = changes.loc[changes["table"] == "assignment", "id"].nunique()
        grids = changes.loc[changes["table"] == "grids", "id"].nunique()
        layers = backend.query(
            f"SELECT DISTINCT units_layer FROM {t('versions')} WHERE version IN (?, ?)",
            [parent, head],
        )
        relayered = len(layers) > 1
    saved = "; ".join(
        f"{version} by {author!r} at {created}: {message!r}"
        for version, author, message, created in since
    )
    count = f"{len(since)} version{'s were' if len(since) > 1 else ' was'}"
    they = "they" if len(since) > 1 else "it"
    if parent is None:
        opening = f"cannot save a first version in {backend.name}: {count} saved before"
        relative = f"Together {they} hold"
    else:
        opening = f"cannot save on {parent} in {backend.name}: {count} saved on it since"
        relative = f"Relative to {parent} {they} change{'s' * (len(since) == 1)}"
    error = ConflictError(
        f"{opening} — {saved}. {relative} {units} unit{'s' * (units != 1)}"
        f"{', ' if relayered else ' and '}{grids} grid{'s' * (grids != 1)}"
        f"{' and the unit layer' if relayered else ''}. Nothing was written. Load the head "
        f"(store.load({head!r})), compare your plan with it (gridgeo.plan.compare), redo "
        f"your edits on it and save with {option('parent', head)}."
    )
    error.head = head
    error.since = [row[0] for row in since]
    return error


def _pause_if_asked() -> None:
    """Test seam: sleep ``$GRIDGEO_STORE_PAUSE`` seconds half-way through writing a version.

    Only tests set it, to kill a save in the middle (the store must stay at
    its previous version) or to race two savers. The line on stderr tells them
    the transaction is open.
    """
    seconds = os.environ.get(_PAUSE)
    if seconds:
        print(f"gridgeo store: paused mid-save for {seconds} s", file=sys.stderr, flush=True)
        time.sleep(float(seconds))


# -- the backends ----------------------------------------------------------------------------------
def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Backend:
    """What both backends share: the SQL of versions, tags and tables, the save sequence."""

    name: str

    # each backend provides these
    def table(self, name: str) -> str:
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    def insert(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        raise NotImplementedError

    def reading(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def writing(self, prepared: _Prepared) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def insert_row(self, table: str, **values: Any) -> None:
        self.insert(table, list(values), [tuple(values.values())])

    def has_layer(self, name: str) -> bool:
        return bool(self.query(f"SELECT 1 FROM {self.table('layers')} WHERE layer = ?", [name]))

    def add_layer(self, layer: _Layer) -> None:
        raise NotImplementedError

    def read_layer(self, name: str, schema: dict) -> gpd.GeoDataFrame:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # shared
    def versions(self) -> list[str]:
        return [
            row[0]
            for row in self.query(f"SELECT version FROM {self.table('versions')} ORDER BY seq")
        ]

    def log(self) -> pd.DataFrame:
        with self.reading():
            rows = self.query(
                "SELECT version, parent, author, message, created, n_units, n_grids "
                f"FROM {self.table('versions')} ORDER BY seq"
            )
            tags = self.query(
                f"SELECT version, tag FROM {self.table('tags')} ORDER BY created, tag"
            )
        named: dict[str, list[str]] = {}
        for version, tag in tags:
            named.setdefault(version, []).append(tag)
        columns = ["version", "parent", "author", "message", "created", "units", "grids"]
        log = pd.DataFrame(rows, columns=columns).astype({"units": "int64", "grids": "int64"})
        log["parent"] = log["parent"].astype(object).where(log["parent"].notna(), None)
        log.insert(5, "tags", [named.get(version, []) for version in log["version"]])
        return log

    def resolve(self, version: str | None) -> str:
        """A version id from a version id, a tag or ``None`` (the head)."""
        if version is None:
            head = self.head()
            if head is None:
                raise StoreError(f"{self.name} holds no version yet: save a plan first.")
            return head
        if isinstance(version, str):
            found = self.query(
                f"SELECT version FROM {self.table('versions')} WHERE version = ? "
                f"UNION SELECT version FROM {self.table('tags')} WHERE tag = ?",
                [version, version],
            )
            if found:
                return found[0][0]
        known = self.versions()
        listed = ", ".join(known[:_KNOWN_SHOWN]) + (
            f" … and {len(known) - _KNOWN_SHOWN} more" if len(known) > _KNOWN_SHOWN else ""
        )
        held = f"it holds {listed}" if known else "it holds no version yet"
        raise StoreError(
            f"no version {version!r} in {self.name}: {held}; store.log() lists them "
            "with their tags."
        )

    def load_record(self, version: str) -> PlanRecord:
        versions, layers = self.table("versions"), self.table("layers")
        ((units_layer, frame_key, config, history, retired, schemas),) = self.query(
            "SELECT units_layer, frame, config, history, retired, tables "
            f"FROM {versions} WHERE version = ?",
            [version],
        )
        frame = self.query(
            f"SELECT layer, level, schema FROM {layers} "
            "WHERE kind = 'frame' AND fingerprint = ? ORDER BY position",
            [frame_key],
        )
        ((units_schema,),) = self.query(
            f"SELECT schema FROM {layers} WHERE layer = ?", [units_layer]
        )
        tables = self.read_tables(version, json.loads(schemas))
        return PlanRecord(
            config_toml=config,
            frame={level: self.read_layer(name, json.loads(s)) for name, level, s in frame},
            units=self.read_layer(units_layer, json.loads(units_schema)),
            assignment=tables["assignment"],
            grids=tables["grids"],
            micros=tables["micros"],
            history=json.loads(history),
            retired=json.loads(retired),
        )

    def head(self) -> str | None:
        rows = self.query(f"SELECT version FROM {self.table('versions')} ORDER BY seq DESC LIMIT 1")
        return rows[0][0] if rows else None

    def save(self, prepared: _Prepared, parent: str | None, **about: str) -> str:
        with self.writing(prepared):
            head = self.head()
            if head != parent:
                raise _conflict(self, parent, head)
            for layer in prepared.layers:
                if not self.has_layer(layer.name):
                    self.add_layer(layer)
                    schema = json.dumps(layer.schema, ensure_ascii=False)
                    self.insert_row(
                        "layers",
                        layer=layer.name,
                        kind=layer.kind,
                        fingerprint=layer.fingerprint,
                        position=layer.position,
                        level=layer.level,
                        schema=schema,
                    )
            ((latest,),) = self.query(f"SELECT max(seq) FROM {self.table('versions')}")
            seq = (latest or 0) + 1
            version = f"v{seq}"
            schemas = {table: schema for table, (schema, _) in prepared.tables.items()}
            n_units, n_grids, n_micros = (len(prepared.tables[t][1]) for t in _CORE)
            self.insert_row(
                "versions",
                version=version,
                seq=seq,
                parent=parent,
                **about,
                units_fingerprint=prepared.units_fingerprint,
                units_layer=prepared.units.name,
                frame=prepared.frame_key,
                config=prepared.config,
                history=prepared.history,
                retired=prepared.retired,
                tables=json.dumps(schemas, ensure_ascii=False),
                n_units=n_units,
                n_grids=n_grids,
                n_micros=n_micros,
            )
            for table, core in _CORE.items():
                rows = [(version, *row) for row in prepared.tables[table][1]]
                columns = ("version", "pos", *core, "attrs")
                half = len(rows) // 2
                self.insert(table, columns, rows[:half])
                if table == "assignment":
                    _pause_if_asked()
                self.insert(table, columns, rows[half:])
        return version

    def read_tables(self, version: str, schemas: dict | None = None) -> dict[str, pd.DataFrame]:
        """The version's assignment, grids and micros tables."""
        if schemas is None:
            ((text,),) = self.query(
                f"SELECT tables FROM {self.table('versions')} WHERE version = ?", [version]
            )
            schemas = json.loads(text)
        out = {}
        for table, core in _CORE.items():
            columns = ", ".join(_quote(c) for c in ("pos", *core, "attrs"))
            rows = self.query(
                f"SELECT {columns} FROM {self.table(table)} WHERE version = ? ORDER BY pos",
                [version],
            )
            out[table] = _decode_table(rows, core, schemas[table])
        return out

    def tag(self, version: str, name: str, created: str) -> None:
        with self.writing(None):
            found = self.query(f"SELECT version FROM {self.table('tags')} WHERE tag = ?", [name])
            if found and found[0][0] != version:
                raise StoreError(
                    f"the tag {name!r} already names {found[0][0]} in {self.name}; tags are "
                    "permanent: choose another name."
                )
            if not found:
                self.insert_row("tags", tag=name, version=version, created=created)

    def ddl(self, types: dict[str, str], fid: str = "") -> list[str]:
        """CREATE TABLE statements of the store's tables; ``fid``: a leading key column."""
        statements = []
        for table, (_, key) in _TABLES.items():
            body = [f"{_quote(c)} {types[kind]}" for c, kind in _columns(table)]
            body.append(f"{'UNIQUE' if fid else 'PRIMARY KEY'} ({', '.join(key)})")
            statements.append(f"CREATE TABLE {self.table(table)} ({fid}{', '.join(body)})")
        return statements


class _GeoPackage(_Backend):
    """A store in a GeoPackage file: spatial layers by GDAL, version tables by sqlite3."""

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path = path
        self.name = str(path)
        if not path.exists():
            if not create:
                raise StoreError(
                    f"there is no plan store at {path}: check the path, or open it with "
                    f"{option('create', True)} to make a new one."
                )
            if path.suffix.lower() != ".gpkg":
                raise StoreError(
                    f"cannot make a plan store at {path}: a store is a GeoPackage file (a name "
                    "ending in .gpkg) or a postgresql:// database address."
                )
            self._create()
        elif not path.is_file():
            raise StoreError(f"{path} is a folder, not a plan store: give a .gpkg file's path.")
        self._con = self._connect()

    # -- opening --
    def _connect(self) -> sqlite3.Connection:
        # mode=rw: never create a file (SQLite opens a write-protected one read-only).
        uri = f"{self.path.resolve().as_uri()}?mode=rw"
        con = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=_BUSY_SECONDS)
        try:
            found = dict(con.execute("SELECT key, value FROM gridgeo_meta").fetchall())
        except sqlite3.DatabaseError as error:
            kind = _kind_of_file(con, error) if self.path.stat().st_size else "an empty file"
            con.close()
            raise StoreError(
                f"{self.path} is not a gridgeo plan store ({kind}); it was left unchanged. Give "
                "the path of a store, or a new file name (.gpkg) to start one."
            ) from None
        _check_meta(found, self.name, con.close)
        return con

    def _create(self) -> None:
        """Make an empty store: a GeoPackage (by GDAL) with the store's tables, moved into place."""
        import pyogrio

        with staging(self.path) as stage:
            fresh = stage / self.path.name
            pyogrio.write_dataframe(_meta_frame(), fresh, layer="gridgeo_meta", driver="GPKG")
            con = sqlite3.connect(fresh, isolation_level=None)
            try:
                con.execute("BEGIN")
                for statement in self.ddl(
                    {"text": "TEXT", "int": "INTEGER", "bool": "BOOLEAN"},
                    # GeoPackage attribute tables need an integer primary key (QGIS uses it)
                    fid="fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, ",
                ):
                    con.execute(statement)
                con.executemany(
                    "INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
                    "VALUES (?, 'attributes', ?, ?)",
                    [(f"gridgeo_{t}", f"gridgeo_{t}", _DESCRIPTIONS[t]) for t in _TABLES],
                )
                con.execute("COMMIT")
            finally:
                con.close()
            # No clobbering: if another process created the store meanwhile, use theirs.
            with open(fresh, "rb") as written:
                os.fsync(written.fileno())
            try:
                os.link(fresh, self.path)
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links
                commit(fresh, self.path)

    # -- SQL --
    def table(self, name: str) -> str:
        return _quote(name if name.startswith(("units_", "frame_")) else f"gridgeo_{name}")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._con.execute(sql, list(params)).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._con.execute(sql, list(params))

    def insert(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        marks = ", ".join("?" * len(columns))
        names = ", ".join(_quote(c) for c in columns)
        self._con.executemany(f"INSERT INTO {self.table(table)} ({names}) VALUES ({marks})", rows)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        self._con.execute("BEGIN")
        try:
            yield
        finally:
            self._con.execute("COMMIT")

    @contextlib.contextmanager
    def writing(self, prepared: _Prepared | None) -> Iterator[None]:
        con = self._con
        with contextlib.ExitStack() as stack:
            missing = (
                []
                if prepared is None
                else [layer for layer in prepared.layers if not self.has_layer(layer.name)]
            )
            if missing:
                # GDAL writes the new layers into a file of their own first; the
                # transaction below copies them in, so they land with the version.
                import pyogrio

                stage = stack.enter_context(staging(self.path))
                staged = stage / "layers.gpkg"
                for layer in missing:
                    pyogrio.write_dataframe(
                        layer.frame,
                        staged,
                        layer=layer.name,
                        driver="GPKG",
                        promote_to_multi=False,
                        layer_options={"SPATIAL_INDEX": "NO"},
                    )
                con.execute("ATTACH DATABASE ? AS staged", [str(staged)])
                stack.callback(con.execute, "DETACH DATABASE staged")
            try:
                con.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if "locked" in str(error) or "busy" in str(error):
                    raise StoreError(
                        f"{self.name} is busy: another program has been writing to it for "
                        f"{_BUSY_SECONDS} s. Try again later."
                    ) from None
                raise StoreError(f"cannot write to {self.name}: {error}.") from None
            try:
                yield
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    # -- layers --
    def add_layer(self, layer: _Layer) -> None:
        """Copy the staged layer GDAL wrote into this file (inside the save's transaction)."""
        con, name = self._con, layer.name
        ((ddl,),) = self.query(
            "SELECT sql FROM staged.sqlite_master WHERE type = 'table' AND name = ?", [name]
        )
        con.execute(ddl)
        con.execute(f"INSERT INTO main.{_quote(name)} SELECT * FROM staged.{_quote(name)}")
        ((staged_srs,),) = self.query(
            "SELECT srs_id FROM staged.gpkg_geometry_columns WHERE table_name = ?", [name]
        )
        srs = self._merge_srs(staged_srs, name)
        for table in (
            "gpkg_contents",
            "gpkg_geometry_columns",
            "gpkg_ogr_contents",
            "gpkg_extensions",
        ):
            self._copy_rows(table, name, {"srs_id": srs})
        triggers = self.query(
            "SELECT sql FROM staged.sqlite_master WHERE type = 'trigger' AND tbl_name = ?", [name]
        )
        for (sql,) in triggers:
            con.execute(sql)

    def _copy_rows(self, table: str, layer: str, overrides: dict[str, Any]) -> None:
        """Copy ``layer``'s rows of a GeoPackage system table from the staged file."""
        staged = [r[1] for r in self.query(f"PRAGMA staged.table_info({_quote(table)})")]
        mine = [r[1] for r in self.query(f"PRAGMA main.table_info({_quote(table)})")]
        if not staged or not mine:
            return
        columns = [c for c in staged if c in mine]
        select = ", ".join("?" if c in overrides else _quote(c) for c in columns)
        params = [overrides[c] for c in columns if c in overrides]
        self.execute(
            f"INSERT INTO main.{_quote(table)} ({', '.join(map(_quote, columns))}) "
            f"SELECT {select} FROM staged.{_quote(table)} WHERE table_name = ?",
            [*params, layer],
        )

    def _merge_srs(self, srs_id: int, layer: str) -> int:
        """The id of the staged layer's spatial reference in this file, added if new."""
        ((definition,),) = self.query(
            "SELECT definition FROM staged.gpkg_spatial_ref_sys WHERE srs_id = ?", [srs_id]
        )
        mine = self.query(
            "SELECT srs_id FROM main.gpkg_spatial_ref_sys WHERE definition = ? ORDER BY "
            "srs_id != ?",
            [definition, srs_id],
        )
        if mine:
            target = mine[0][0]
        elif not self.query("SELECT 1 FROM main.gpkg_spatial_ref_sys WHERE srs_id = ?", [srs_id]):
            target = srs_id
        else:  # the id means another CRS here (two custom CRSs, both numbered 100000 by GDAL)
            ((highest,),) = self.query("SELECT max(srs_id) FROM main.gpkg_spatial_ref_sys")
            target = max(highest, 99_999) + 1
        if not self.query("SELECT 1 FROM main.gpkg_spatial_ref_sys WHERE srs_id = ?", [target]):
            staged = [r[1] for r in self.query("PRAGMA staged.table_info(gpkg_spatial_ref_sys)")]
            mine_cols = [r[1] for r in self.query("PRAGMA main.table_info(gpkg_spatial_ref_sys)")]
            columns = [c for c in staged if c in mine_cols]
            select = ", ".join("?" if c == "srs_id" else _quote(c) for c in columns)
            self.execute(
                f"INSERT INTO main.gpkg_spatial_ref_sys ({', '.join(map(_quote, columns))}) "
                f"SELECT {select} FROM staged.gpkg_spatial_ref_sys WHERE srs_id = ?",
                [target, srs_id],
            )
        if target != srs_id:
            # A GeoPackage geometry's header repeats the id: bytes 5-8, in the blob's byte order.
            ((blob,),) = self.query(
                f"SELECT geom FROM main.{_quote(layer)} WHERE geom IS NOT NULL LIMIT 1"
            ) or [(None,)]
            if blob is not None:
                order = "<" if blob[3] & 1 else ">"
                self.execute(  # || makes text of blobs: cast back
                    f"UPDATE main.{_quote(layer)} SET geom = "
                    "CAST(substr(geom, 1, 4) || ? || substr(geom, 9) AS BLOB) WHERE geom IS NOT NULL",
                    [struct.pack(f"{order}i", target)],
                )
        return target

    def read_layer(self, name: str, schema: dict) -> gpd.GeoDataFrame:
        from pyogrio.raw import read  # not read_dataframe: the CRS comes from the schema

        columns = [column for column, _ in schema["columns"]]
        meta, _, wkb, values = read(self.path, layer=name, columns=columns)
        data = pd.DataFrame(dict(zip(meta["fields"], values, strict=True)))
        return _restore_layer(data, shapely.from_wkb(wkb), schema)

    def close(self) -> None:
        self._con.close()


class _PostGIS(_Backend):
    """A store in a schema of a PostgreSQL database with PostGIS, through psycopg 3."""

    def __init__(self, dsn: str, *, schema: str, create: bool) -> None:
        try:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:
            raise StoreError(
                "a PostgreSQL plan store needs psycopg: pip install 'gridgeo[postgis]'."
            ) from None
        if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
            raise StoreError(
                f"{option('schema', str(schema))} is not a usable schema name: use lower-case "
                "letters, digits and _ (e.g. 'gridgeo')."
            )
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error:
            raise StoreError(
                f"cannot read the database address {_redacted(dsn)!r}: write it as "
                "postgresql://user[:password]@host[:port]/database."
            ) from None
        host, port = params.get("host") or "localhost", params.get("port") or "5432"
        database = params.get("dbname") or params.get("user") or "(the user's)"
        where = f"database {database!r} on {host}:{port}"
        user = f"{params['user']}@" if params.get("user") else ""
        self.name = f"postgresql://{user}{host}:{port}/{database} (schema {schema})"
        self._schema = schema
        extra = {} if "connect_timeout" in params else {"connect_timeout": 10}
        try:
            self._con = psycopg.connect(dsn, autocommit=True, **extra)
        except psycopg.Error as error:
            reason = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            password = params.get("password")
            if password:
                reason = reason.replace(password, "***")
            raise StoreError(
                f"cannot connect to the PostgreSQL {where} as user "
                f"{params.get('user') or '(default)'!r}: {reason}. Check the address, that the "
                "server is running and accepts connections from here, and the user's password."
            ) from None
        try:
            self._open(create, where)
        except BaseException:
            self._con.close()
            raise

    def _open(self, create: bool, where: str) -> None:
        with self._con.transaction():
            # One creator at a time: a second one waits, then finds the store made.
            self.execute("SELECT pg_advisory_xact_lock(hashtext(?))", [f"gridgeo:{self._schema}"])
            tables = {
                row[0]
                for row in self.query(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                    [self._schema],
                )
            }
            if "meta" in tables:
                found = dict(self.query(f"SELECT key, value FROM {self.table('meta')}"))
                _check_meta(found, self.name, lambda: None)
                return
            if tables:
                raise StoreError(
                    f"the schema {self._schema!r} of the {where} holds tables that are not a "
                    f"gridgeo plan store; it was left unchanged. Choose another "
                    f"{option('schema')} for the store."
                )
            if not create:
                raise StoreError(
                    f"there is no plan store in schema {self._schema!r} of the {where}: check "
                    f"{option('schema')}, or open it with {option('create', True)}."
                )
            if not self.query("SELECT 1 FROM pg_extension WHERE extname = 'postgis'"):
                raise StoreError(
                    f"PostGIS is not enabled in the {where}: ask its administrator to run "
                    "CREATE EXTENSION postgis; there, then open the store again."
                )
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(self._schema)}")
            self.execute(f"CREATE TABLE {self.table('meta')} (key text PRIMARY KEY, value text)")
            for statement in self.ddl({"text": "text", "int": "bigint", "bool": "boolean"}):
                self.execute(statement)
            self.insert("meta", ("key", "value"), list(_meta_frame().itertuples(index=False)))

    # -- SQL --
    def table(self, name: str) -> str:
        return f"{_quote(self._schema)}.{_quote(name)}"

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._con.execute(sql.replace("?", "%s"), list(params)).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._con.execute(sql.replace("?", "%s"), list(params))

    def insert(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        names = ", ".join(_quote(c) for c in columns)
        with (
            self._con.cursor() as cursor,
            cursor.copy(f"COPY {self.table(table)} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        with self._con.transaction():
            yield

    @contextlib.contextmanager
    def writing(self, prepared: _Prepared | None) -> Iterator[None]:
        import psycopg

        try:
            with self._con.transaction():
                self.execute(f"SET LOCAL lock_timeout = '{_BUSY_SECONDS}s'")
                # Saves queue here, so a save sees every version saved before it.
                self.execute(f"LOCK TABLE {self.table('versions')} IN SHARE ROW EXCLUSIVE MODE")
                yield
        except psycopg.errors.LockNotAvailable:
            raise StoreError(
                f"{self.name} is busy: another save has held it for {_BUSY_SECONDS} s. "
                "Try again later."
            ) from None

    # -- layers --
    def add_layer(self, layer: _Layer) -> None:
        frame, schema = layer.frame, layer.schema
        crs = schema["crs"] or ""
        srid = int(crs[5:]) if re.fullmatch(r"EPSG:\d+", crs) else 0
        if srid and not self.query("SELECT 1 FROM spatial_ref_sys WHERE srid = ?", [srid]):
            srid = 0  # the CRS is kept in the layer's schema all the same
        types = {"b": "boolean", "i": "bigint", "u": "bigint", "f": "double precision"}
        columns = [
            f"{_quote(name)} {types.get(pandas_dtype(dtype).kind, 'text')}"
            for name, dtype in schema["columns"]
        ]
        self.execute(
            f"CREATE TABLE {self.table(layer.name)} (fid bigint PRIMARY KEY, "
            f"{''.join(c + ', ' for c in columns)}geom geometry(Geometry, {int(srid)}))"
        )
        geometry = frame.geometry.to_numpy()
        if srid:
            geometry = shapely.set_srid(geometry, srid)
        wkb = shapely.to_wkb(geometry, hex=True, include_srid=bool(srid))
        values = [_plain(frame[name]) for name, _ in schema["columns"]]
        rows = zip(range(len(frame)), *values, wkb, strict=True)
        names = ["fid", *(name for name, _ in schema["columns"]), "geom"]
        self.insert(layer.name, names, list(rows))

    def read_layer(self, name: str, schema: dict) -> gpd.GeoDataFrame:
        columns = [c for c, _ in schema["columns"]]
        select = "".join(f"{_quote(c)}, " for c in columns)
        rows = self.query(f"SELECT {select}ST_AsBinary(geom) FROM {self.table(name)} ORDER BY fid")
        data = pd.DataFrame([row[:-1] for row in rows], columns=columns, dtype=object)
        return _restore_layer(data, shapely.from_wkb([row[-1] for row in rows]), schema)

    def close(self) -> None:
        self._con.close()


def _kind_of_file(con: sqlite3.Connection, error: sqlite3.DatabaseError) -> str:
    """What a file that is not a store is, for the message."""
    if "not a database" in str(error):
        return "not a GeoPackage nor any SQLite database"
    with contextlib.suppress(sqlite3.DatabaseError):
        if con.execute("PRAGMA application_id").fetchone()[0] == _GPKG_APPLICATION_ID:
            return "a GeoPackage without gridgeo's tables"
    return "an SQLite database without gridgeo's tables"


def _meta_frame() -> pd.DataFrame:
    from gridgeo import __version__

    return pd.DataFrame(
        {
            "key": ["format", "format_version", "created_by"],
            "value": [FORMAT, str(FORMAT_VERSION), f"gridgeo {__version__}"],
        }
    )


def _check_meta(found: dict[str, str], name: str, close: Callable[[], None]) -> None:
    """Refuse a meta table that is not a store's, or a store of a newer layout."""
    if found.get("format") != FORMAT:
        close()
        raise StoreError(
            f"{name} is not a gridgeo plan store (its meta table does not say so); it was "
            "left unchanged. Give the path of a store, or a new name to start one."
        )
    version = int(found.get("format_version", "0"))
    if version > FORMAT_VERSION:
        close()
        raise StoreError(
            f"{name} is a plan store of layout {version}, made by a newer gridgeo than this "
            f"one (which reads layout {FORMAT_VERSION}): upgrade gridgeo to open it."
        )


def _redacted(dsn: str) -> str:
    """A database address without its password."""
    dsn = re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", dsn)
    return re.sub(r"(password=)[^&\s]*", r"\1***", dsn)
