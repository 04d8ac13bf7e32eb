"""Configuration of a grid system: its levels, code widths and coverage rules.

Nothing in gridgeo is hard-coded to Urad Front Banner: the levels, their
names, how many digits each adds to the hierarchical code and whether it must
cover its parent all come from one :class:`GridConfig`. :data:`BANNER` is the
default, describing the banner's stored hierarchy::

    banner (旗, 150823) → town (苏木镇, +3) → grid (网格, +3) → micro_grid (微网格, +3)

Example
-------
>>> from gridgeo.config import BANNER
>>> [level.name for level in BANNER.levels]
['banner', 'town', 'grid', 'micro_grid']
>>> BANNER.level("grid").code_length
12

A configuration is also a small TOML file (:meth:`GridConfig.from_toml`,
:meth:`GridConfig.to_toml`, written for a folder of layers by
``gridgeo init``); the README documents its schema.

Root codes with trailing zeros
------------------------------
Real codes pad the upper levels with zeros: the city 巴彦淖尔市 is ``150800``
and its districts are ``150802``, ``150821``, … — they extend ``1508``, not
``150800``. The root level's ``code_digits`` says how many digits of the root
code its children keep (4 here); the rest of the root code must be zeros.
Every code a level *stores* is :attr:`Level.code_width` digits long (the
root: ``len(root_code)``), and the prefix children extend is the first
:attr:`Level.code_length` digits of their parent's code.

>>> city = GridConfig(root_code="150800", root_name="巴彦淖尔市", levels=(
...     Level("city", "市", "city", 4, Coverage.ROOT),
...     Level("county", "旗县区", "county", 2, Coverage.FULL)))
>>> city.root_prefix, city.level("city").code_width, city.level("county").code_length
('1508', 6, 6)
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridgeo.codes import as_text
from gridgeo.errors import ConfigError, DataFileError, LayerError

__all__ = [
    "BANNER",
    "DEFAULT_NORMS",
    "Coverage",
    "GridConfig",
    "Level",
    "Norm",
    "Role",
    "Tolerances",
]


class Role(StrEnum):
    """The part a level plays, which every capability asks for instead of a level name.

    ``ROOT``: the top polygon (the banner, county or city). ``DISTRICT``: the
    administrative unit that owns workload grids and that no grid may cross (the
    banner's towns). ``WORKLOAD``: the unit grid workers are allocated to and
    households counted in (the banner's dual grids). ``REFINEMENT``: the optional
    level that refines a workload grid (the banner's micro-grids).
    """

    ROOT = "root"
    DISTRICT = "district"
    WORKLOAD = "workload"
    REFINEMENT = "refinement"


class Coverage(StrEnum):
    """How a level's polygons relate to the area of their parent.

    ``FULL``: every parent is covered by its children with no gap (towns,
    grids: the "四定" rule that every place has exactly one grid).
    ``REFINED``: a parent may have no children at all, but a parent that is
    refined is covered completely (micro-grids exist only where people are
    dense, and then tile their grid).
    ``ROOT``: the top level, which has no parent.
    """

    FULL = "full"
    REFINED = "refined"
    ROOT = "root"


@dataclass(frozen=True)
class Level:
    """One level of the hierarchy.

    Attributes
    ----------
    name:
        Identifier used in the API and as layer name in files (``"grid"``).
    label_zh, label_en:
        What users read (``"网格"``, ``"grid"``).
    code_digits:
        Digits this level appends to its parent's code. The root: the digits
        of the root code its children keep (``len(root_code)`` unless the
        root code ends in padding zeros, see the module notes).
    coverage:
        The :class:`Coverage` rule the checks enforce against the parent.
    code_length:
        Filled in by :class:`GridConfig`: length of the prefix this level's
        children extend (the sum of ``code_digits`` down to this level).
    code_width:
        Filled in by :class:`GridConfig`: digits of every code this level
        stores (``code_length``; the root: ``len(root_code)``).
    """

    name: str
    label_zh: str
    label_en: str
    code_digits: int
    coverage: Coverage
    code_length: int = 0  # filled in by GridConfig
    code_width: int = 0  # filled in by GridConfig

    @property
    def label(self) -> str:
        """Bilingual label, e.g. ``"网格 grid"``."""
        return f"{self.label_zh} {self.label_en}"

    @property
    def code_column(self) -> str:
        """Column :func:`gridgeo.assign.assign` writes this level's codes to.

        >>> BANNER.level("grid").code_column
        'grid_code'
        """
        return f"{self.name}_code"


@dataclass(frozen=True)
class Norm:
    """A workload norm: the grids it applies to and the window they should stay in.

    Plans (:mod:`gridgeo.plan`) warn, with the numbers, when an edited grid
    leaves the window; rebalancing aims for it. A bound of ``None`` is no bound.

    Attributes
    ----------
    name:
        What users read (``"urban comprehensive"``).
    where:
        ``(column, value)`` pairs every grid the norm applies to has (all must
        hold); empty: every grid of the workload level.
    households_min, households_max:
        Households per grid (300–500 for an urban comprehensive grid).
    residents_max:
        Residents per grid (about 2,500).
    per_worker_max:
        Households per grid worker.

    Examples
    --------
    >>> import pandas as pd
    >>> norm = Norm("urban", (("settlement", "urban"),), households_min=300, households_max=500)
    >>> norm.applies(pd.DataFrame({"settlement": ["urban", "rural"]})).tolist()
    [True, False]
    """

    name: str
    where: tuple[tuple[str, str], ...] = ()
    households_min: int | None = None
    households_max: int | None = None
    residents_max: int | None = None
    per_worker_max: float | None = None

    def applies(self, grids: pd.DataFrame) -> np.ndarray:
        """Which rows of ``grids`` (workload attributes) this norm applies to."""
        hit = np.ones(len(grids), dtype=bool)
        for column, value in self.where:
            if column not in grids.columns:
                return np.zeros(len(grids), dtype=bool)
            hit &= (grids[column].astype(str) == str(value)).to_numpy()
        return hit


DEFAULT_NORMS = (
    Norm(
        "urban comprehensive",
        (("settlement", "urban"), ("grid_type", "comprehensive")),
        households_min=300,
        households_max=500,
        residents_max=2500,
    ),
    Norm("rural", (("settlement", "rural"),), households_max=300),
)
"""National guidance for community grids: an urban comprehensive grid holds about
300–500 households and at most about 2,500 residents; a rural grid is a natural
village or about 300 households. Dedicated grids have no window."""


@dataclass(frozen=True)
class Tolerances:
    """Distances in metres, measured in the metric CRS.

    ``dust`` is floating-point noise below which nothing is reported;
    ``noise`` is digitising noise (two layers drawn separately disagree by
    this much); a polygon narrower than ``sliver`` is a sliver; anything wider
    than ``defect`` is a real defect.
    """

    dust: float = 0.01
    noise: float = 5.0
    sliver: float = 1.0
    defect: float = 10.0


_DEFAULT_FIELDS: tuple[tuple[str, str], ...] = (
    ("parent_code", "parent"),
    ("households", "househlds"),
    ("residents", "residents"),
    ("grid_type", "grid_type"),
    ("community", "community"),
    ("general_grid", "gen_grid"),
    ("basic_grid", "basic_grid"),
    ("source_codes", "src_codes"),
    ("settlement", "settlemnt"),
    # the columns assign and read_points add; those that fit are declared as
    # they are, so a reader never takes them for a cut of a longer name
    # ("suggested" for "suggested_m")
    ("banner_code", "banner_cd"),
    ("town_code", "town_code"),
    ("grid_code", "grid_code"),
    ("micro_grid_code", "micro_cd"),
    ("assign_status", "asg_status"),
    ("assign_reason", "asg_reason"),
    ("candidates", "candidates"),
    ("suggested", "suggested"),
    ("suggested_m", "suggest_m"),
    ("coord_error", "coord_err"),
    # the demo's households and incidents
    ("household_id", "hh_id"),
    ("registered_grid", "reg_grid"),
    ("incident_id", "incid_id"),
    ("event_class", "evt_class"),
    ("description", "descript"),
    ("reported_at", "report_at"),
)
"""Column → DBF field name pairs of the columns gridgeo itself writes."""


@dataclass(frozen=True)
class GridConfig:
    """Levels, codes, CRSs and tolerances of one grid system.

    Parameters
    ----------
    root_code:
        Code of the top-level polygon (the county code, ``"150823"``).
    root_name:
        Its name (``"乌拉特前旗"``).
    levels:
        Top to bottom. The first level's ``code_digits`` must equal
        ``len(root_code)``.
    storage_crs:
        CRS in which layers are stored (CGCS2000, EPSG:4490).
    metric_crs:
        Projected CRS for areas, distances and widths (EPSG:4545,
        CGCS2000 / 3-degree Gauss-Kruger CM 108E), or ``"auto"``: chosen
        from the data's extent. Used only through
        :func:`gridgeo.crs.metric_crs`.
    roles:
        ``(role, level name)`` pairs: which level plays which :class:`Role`.
        Missing roles default by position: the first level is the root, the
        last ``full`` level the workload level, the level above it the
        district, and a ``refined`` level below it the refinement.
    dual_sources:
        Names of the source layers whose merge is the workload level (the
        party-building and sanitation grids of 双网合一); empty when there are none.
    shapefile_fields:
        Declared mapping from column names to Shapefile's 10-character DBF
        field names; the reverse is applied on reading. It covers the
        columns gridgeo itself writes (levels, ``assign`` results, the demo's
        households and incidents), so ``assign -o out.shp`` reads back with
        the long names; extend it for columns of your own.
    norms:
        Workload :class:`Norm` s of the workload level (default
        :data:`DEFAULT_NORMS`); plans warn when a grid leaves them.
    """

    root_code: str = "150823"
    root_name: str = "乌拉特前旗"
    levels: tuple[Level, ...] = ()
    storage_crs: str = "EPSG:4490"
    metric_crs: str = "EPSG:4545"
    tolerances: Tolerances = field(default_factory=Tolerances)
    roles: tuple[tuple[str, str], ...] = ()
    dual_sources: tuple[str, ...] = ("party_grid", "sanitation_grid")
    shapefile_fields: tuple[tuple[str, str], ...] = _DEFAULT_FIELDS
    norms: tuple[Norm, ...] = DEFAULT_NORMS

    def __post_init__(self) -> None:
        levels = []
        length = 0
        for k, level in enumerate(self.levels):
            length += level.code_digits
            width = len(self.root_code) if k == 0 else length
            levels.append(replace(level, code_length=length, code_width=width))
        object.__setattr__(self, "levels", tuple(levels))
        object.__setattr__(self, "tolerances", _as_tolerances(self.tolerances))
        _validate(self)
        declared = dict(self.shapefile_fields)
        derived = tuple(
            (lv.code_column, _short_field(lv.code_column))
            for lv in levels
            if lv.code_column not in declared
        )
        object.__setattr__(self, "shapefile_fields", (*self.shapefile_fields, *derived))

    @property
    def root_prefix(self) -> str:
        """The part of :attr:`root_code` that the codes below it extend.

        >>> BANNER.root_prefix
        '150823'
        """
        return self.root_code[: self.levels[0].code_digits] if self.levels else self.root_code

    @property
    def metric_is_auto(self) -> bool:
        """Whether the metric CRS is chosen from the data's extent (``metric_crs="auto"``)."""
        return str(self.metric_crs).strip().lower() == "auto"

    def role(self, role: Role | str) -> Level | None:
        """The level playing ``role`` (``None`` when no level does, e.g. no refinement).

        >>> BANNER.role(Role.WORKLOAD).name, BANNER.role("district").name
        ('grid', 'town')
        >>> BANNER.role(Role.REFINEMENT).name
        'micro_grid'
        """
        role = Role(role)
        declared = dict(self.roles)
        if role.value in declared:
            return self.level(declared[role.value])
        return self._default_roles().get(role)

    def role_name(self, role: Role | str) -> str | None:
        """Name of the level playing ``role``, or ``None``."""
        level = self.role(role)
        return level.name if level is not None else None

    def _default_roles(self) -> dict[Role, Level]:
        if not self.levels:
            return {}
        out = {Role.ROOT: self.levels[0]}
        full = [i for i, lv in enumerate(self.levels) if lv.coverage == Coverage.FULL]
        if full:
            w = full[-1]
            out[Role.WORKLOAD] = self.levels[w]
            if w > 0:
                out[Role.DISTRICT] = self.levels[w - 1]
            below = self.levels[w + 1] if w + 1 < len(self.levels) else None
            if below is not None and below.coverage == Coverage.REFINED:
                out[Role.REFINEMENT] = below
        return out

    @property
    def level_names(self) -> list[str]:
        """Names of the levels, top to bottom."""
        return [level.name for level in self.levels]

    def level(self, name: str) -> Level:
        """The level called ``name``; :class:`LayerError` if there is none."""
        for level in self.levels:
            if level.name == name:
                return level
        raise LayerError(f"unknown level {name!r}: this grid system has levels {self.level_names}")

    def parent(self, name: str) -> Level | None:
        """The level above ``name`` (``None`` for the root)."""
        index = self.level_names.index(self.level(name).name)
        return self.levels[index - 1] if index else None

    def child(self, name: str) -> Level | None:
        """The level below ``name`` (``None`` for the lowest)."""
        index = self.level_names.index(self.level(name).name)
        return self.levels[index + 1] if index + 1 < len(self.levels) else None

    # -- files ----------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> GridConfig:
        """Read a configuration file (the schema is in the README, and :meth:`to_toml`).

        Raises
        ------
        DataFileError
            The file is missing or unreadable.
        ConfigError
            The file is not TOML, has an unknown key or a wrong value, or its
            levels are inconsistent; the message names the file and the key.

        Examples
        --------
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "gridgeo.toml"
        >>> _ = path.write_text(BANNER.to_toml(), encoding="utf-8")
        >>> GridConfig.from_toml(path) == BANNER
        True
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataFileError(
                f"{path}: cannot read the configuration file ({exc}). Pass a UTF-8 "
                "TOML file, e.g. one written by `gridgeo init`."
            ) from exc
        try:
            return cls.from_toml_text(text)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    @classmethod
    def from_toml_text(cls, text: str) -> GridConfig:
        """A configuration from TOML text (what :meth:`to_toml` writes; a plan store keeps it).

        >>> GridConfig.from_toml_text(BANNER.to_toml()) == BANNER
        True
        """
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"not a valid TOML file ({exc}). Fix that line; `gridgeo init` "
                "writes a valid file to start from."
            ) from exc
        return cls._from_mapping(data)

    @classmethod
    def _from_mapping(cls, data: Mapping[str, Any]) -> GridConfig:
        _known(data, "", _SCHEMA)
        root = _table(data, "root")
        crs = _table(data, "crs")
        raw_levels = data.get("levels", [])
        if not isinstance(raw_levels, list) or not raw_levels:
            raise ConfigError(
                "key 'levels': no [[levels]] tables. Describe every level, top to "
                "bottom, in its own [[levels]] table."
            )
        levels = []
        for k, raw in enumerate(raw_levels):
            where = f"levels[{k}]"
            if not isinstance(raw, Mapping):
                raise ConfigError(f"key {where!r}: expected a [[levels]] table, got {raw!r}")
            _known(raw, where, _LEVEL_KEYS)
            absent = [key for key in ("name", "code_digits") if key not in raw]
            if absent:
                raise ConfigError(f"key {where!r}: {absent} missing; every level needs them")
            name = _typed(raw, "name", str, where)
            coverage = raw.get("coverage", "root" if k == 0 else "full")
            try:
                coverage = Coverage(coverage)
            except ValueError:
                raise ConfigError(
                    f"key '{where}.coverage': {coverage!r} is not one of "
                    f"{[c.value for c in Coverage]}"
                ) from None
            levels.append(
                Level(
                    name,
                    _typed(raw, "label_zh", str, where, name),
                    _typed(raw, "label_en", str, where, name),
                    _typed(raw, "code_digits", int, where),
                    coverage,
                )
            )
        roles = _table(data, "roles")
        dual = _table(data, "dual")
        tolerances = _table(data, "tolerances")
        fields_ = _table(data, "shapefile_fields")
        for key, value in {**roles, **fields_}.items():
            if not isinstance(value, str):
                raise ConfigError(f"key {key!r}: expected text, got {value!r}")
        sources = dual.get("sources", [])
        if not isinstance(sources, list) or not all(isinstance(v, str) for v in sources):
            raise ConfigError(
                f"key 'dual.sources': expected a list of layer names, got {sources!r}"
            )
        numbers = {}
        for key, value in tolerances.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"key 'tolerances.{key}': expected metres, got {value!r}")
            numbers[key] = float(value)
        extra = dict(fields_)
        shapefile = {**dict(_DEFAULT_FIELDS), **extra}
        defaults = cls()
        norms = defaults.norms if "norms" not in data else _norms(data["norms"])
        return cls(
            root_code=str(_typed(root, "code", str, "root", defaults.root_code)),
            root_name=_typed(root, "name", str, "root", defaults.root_name),
            levels=tuple(levels),
            storage_crs=_typed(crs, "storage", str, "crs", defaults.storage_crs),
            metric_crs=_typed(crs, "metric", str, "crs", defaults.metric_crs),
            tolerances=Tolerances(**numbers),
            roles=tuple(roles.items()),
            dual_sources=tuple(sources),
            shapefile_fields=tuple(shapefile.items()),
            norms=norms,
        )

    def to_toml(self) -> str:
        """This configuration as a commented TOML file (:meth:`from_toml` reads it back).

        Roles that follow from the order of the levels are written as comments;
        only Shapefile field names beyond gridgeo's own are written.

        Examples
        --------
        >>> print(BANNER.to_toml().split("[[levels]]")[0])  # doctest: +ELLIPSIS
        # gridgeo configuration: ...
        [root]
        code = "150823"...
        """
        return _write_toml(self)

    # -- inference ------------------------------------------------------------
    @classmethod
    def infer(
        cls, layers: Mapping[str, pd.DataFrame], *, storage_crs: str | None = None
    ) -> GridConfig:
        """A configuration guessed from the layers of a data set.

        Layers with a ``code`` column whose codes all have one width become
        levels, narrowest first (the root is the narrowest and must hold one
        code). When several layers share a width, the level is the one whose
        codes the next level's ``parent_code`` values name most often; two
        leftover layers of a level's width become its :attr:`dual_sources`.
        A root code ending in zeros that its children do not repeat (150800
        whose children are 1508xx) keeps only its significant prefix, the
        code without its trailing zeros (``code_digits`` 4). The lowest level is ``refined`` when some parents
        have no children, else ``full``. The metric CRS is ``"auto"``.

        Parameters
        ----------
        layers:
            Layer name → table with ``code`` (and, below the root, ``parent_code``).
        storage_crs:
            Written as the storage CRS; default: the root layer's CRS when it
            has an EPSG code, else ``EPSG:4490``.

        Raises
        ------
        ConfigError
            No layer has codes, or the narrowest holds more than one code.

        Examples
        --------
        >>> import pandas as pd
        >>> layers = {
        ...     "city": pd.DataFrame({"code": ["150800"], "name": ["巴彦淖尔市"]}),
        ...     "county": pd.DataFrame({"code": ["150802", "150821"],
        ...                            "parent_code": ["150800"] * 2}),
        ... }
        >>> config = GridConfig.infer(layers)
        >>> config.level_names, config.root_prefix, config.level("county").code_digits
        (['city', 'county'], '1508', 2)
        """
        return _infer(cls, layers, storage_crs)


# -- validation -------------------------------------------------------------------
_SCHEMA = ("root", "crs", "levels", "roles", "dual", "tolerances", "shapefile_fields", "norms")
_NORM_KEYS = (
    "name",
    "where",
    "households_min",
    "households_max",
    "residents_max",
    "per_worker_max",
)
_LEVEL_KEYS = ("name", "label_zh", "label_en", "code_digits", "coverage")
_SUBKEYS = {
    "root": ("code", "name"),
    "crs": ("storage", "metric"),
    "roles": tuple(r.value for r in Role),
    "dual": ("sources",),
    "tolerances": tuple(f.name for f in fields(Tolerances)),
}


def _known(data: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
    """:class:`ConfigError` for the first key of ``data`` not in ``allowed``."""
    unknown = [key for key in data if key not in allowed]
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(
            f"unknown key {key!r}; the keys allowed {'in ' + where if where else 'at the top'} "
            f"are {list(allowed)}. Fix its spelling or delete it."
        )


def _table(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The sub-table ``name`` of ``data`` (empty when absent), its keys checked."""
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"key {name!r}: expected a [{name}] table, got {value!r}")
    if name in _SUBKEYS:
        _known(value, name, _SUBKEYS[name])
    return dict(value)


def _typed(data: Mapping[str, Any], key: str, kind: type, where: str, default: Any = None) -> Any:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, kind):
        shown = "text" if kind is str else "a whole number"
        raise ConfigError(f"key '{where}.{key}': expected {shown}, got {value!r}")
    return value


def _norms(raw: Any) -> tuple[Norm, ...]:
    """The ``[[norms]]`` tables of a configuration file."""
    if not isinstance(raw, list):
        raise ConfigError(f"key 'norms': expected [[norms]] tables, got {raw!r}")
    out = []
    for k, table in enumerate(raw):
        where = f"norms[{k}]"
        if not isinstance(table, Mapping):
            raise ConfigError(f"key {where!r}: expected a [[norms]] table, got {table!r}")
        _known(table, where, _NORM_KEYS)
        filters = table.get("where", {})
        if not isinstance(filters, Mapping) or not all(
            isinstance(v, str) for v in filters.values()
        ):
            raise ConfigError(
                f"key '{where}.where': expected a table of column = \"value\" pairs, "
                f"got {filters!r}"
            )
        numbers = {}
        for key in _NORM_KEYS[2:]:
            value = table.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ConfigError(f"key '{where}.{key}': expected a number, got {value!r}")
            numbers[key] = value
        out.append(
            Norm(
                _typed(table, "name", str, where, f"norm {k + 1}"),
                tuple(filters.items()),
                **numbers,
            )
        )
    return tuple(out)


def _as_tolerances(value: Tolerances | Mapping[str, float]) -> Tolerances:
    return value if isinstance(value, Tolerances) else Tolerances(**value)


def _validate(config: GridConfig) -> None:
    """:class:`ConfigError` for the first inconsistency of ``config`` (key named, fix said)."""
    names = config.level_names
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated or any(not n or n != n.strip() for n in names):
        raise ConfigError(
            f"key 'levels': level names {names} must be non-empty, without surrounding "
            "spaces, and unique; rename the level(s) "
            f"{duplicated or [n for n in names if not n or n != n.strip()]}."
        )
    for k, level in enumerate(config.levels):
        if level.code_digits < 1:
            raise ConfigError(
                f"key 'levels[{k}].code_digits' (level {level.name!r}): {level.code_digits}; "
                "a level adds at least one digit to its parent's code."
            )
        if (k == 0) != (level.coverage == Coverage.ROOT):
            want = "'root'" if k == 0 else "'full' or 'refined'"
            raise ConfigError(
                f"key 'levels[{k}].coverage' (level {level.name!r}): {level.coverage.value!r}; "
                f"the {'first' if k == 0 else 'lower'} level's coverage must be {want}."
            )
    if config.levels:
        code, root = config.root_code, config.levels[0]
        if not code.isdigit():
            raise ConfigError(f"key 'root.code': {code!r} is not a code of decimal digits.")
        if root.code_digits > len(code) or code[root.code_digits :].strip("0"):
            raise ConfigError(
                f"key 'levels[0].code_digits' (level {root.name!r}): {root.code_digits} "
                f"does not fit root code {code!r} ({len(code)} digits). It counts the digits "
                "of the root code that the codes below it keep: "
                f"{len(code)}, or fewer when the root code ends in padding zeros "
                f"({len(code.rstrip('0')) or 1} for {code})."
            )
    for role, name in config.roles:
        if role not in {r.value for r in Role}:
            raise ConfigError(
                f"key 'roles.{role}': unknown role; roles are {[r.value for r in Role]}."
            )
        if name not in names:
            raise ConfigError(
                f"key 'roles.{role}': {name!r} is not a level; the levels are {names}."
            )
    if len(config.dual_sources) not in (0, 2) or set(config.dual_sources) & set(names):
        raise ConfigError(
            f"key 'dual.sources': {list(config.dual_sources)}; name the two source layers "
            "merged into the workload level (not levels themselves), or [] for none."
        )
    for f in fields(Tolerances):
        value = getattr(config.tolerances, f.name)
        if not value > 0:
            raise ConfigError(
                f"key 'tolerances.{f.name}': {value!r}; give a distance in metres > 0"
            )
    long = [(c, s) for c, s in config.shapefile_fields if not 0 < len(s) <= 10]
    if long:
        raise ConfigError(
            f"key 'shapefile_fields.{long[0][0]}': {long[0][1]!r} is not a DBF field name; "
            "give 1 to 10 characters."
        )


def _short_field(column: str) -> str:
    """A DBF field name (≤ 10 characters) for a level's code column."""
    return column if len(column) <= 10 else column[:-5][:7] + "_cd"


# -- TOML -------------------------------------------------------------------------
def _quote(value: str) -> str:
    """A TOML basic string (JSON escapes are TOML escapes; TOML also escapes DEL)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _write_toml(config: GridConfig) -> str:
    declared = dict(config.roles)
    defaults = config._default_roles()
    out = [
        "# gridgeo configuration: the levels of a grid system, their codes and roles.",
        "# Use it with `gridgeo COMMAND --config THIS_FILE` or",
        "# gridgeo.config.GridConfig.from_toml(path). Lines starting with # are comments.",
        "",
        "[root]",
        f"code = {_quote(config.root_code)}  # code of the top polygon",
        f"name = {_quote(config.root_name)}",
        "",
        "[crs]",
        f"storage = {_quote(config.storage_crs)}  # CRS the layers are stored in",
        f"metric = {_quote(config.metric_crs)}  # projected CRS for areas and widths, "
        'or "auto" (from the extent)',
        "",
        "# One [[levels]] table per level, top to bottom. code_digits: digits the level",
        "# appends to its parent's code; for the first level, the digits of the root code",
        "# that the codes below keep (fewer than the root code when it ends in padding",
        '# zeros: 150800 → 4). coverage: "root" (the first level), "full" (covers its',
        '# parent without gaps) or "refined" (covers only the parents it refines).',
    ]
    for level in config.levels:
        out += [
            "",
            "[[levels]]",
            f"name = {_quote(level.name)}",
            f"label_zh = {_quote(level.label_zh)}",
            f"label_en = {_quote(level.label_en)}",
            f"code_digits = {level.code_digits}  # codes of {level.code_width} digits",
            f"coverage = {_quote(level.coverage.value)}",
        ]
    out += [
        "",
        "# Which level plays which part; a role left out follows from the order of the",
        "# levels (shown commented out). workload: the unit workers are allocated to and",
        "# households counted in; district: the unit above it, which no workload unit",
        "# crosses; refinement: an optional finer level below the workload level.",
        "[roles]",
    ]
    for role in Role:
        if role.value in declared:
            out.append(f"{role.value} = {_quote(declared[role.value])}")
        elif role in defaults:
            out.append(f"# {role.value} = {_quote(defaults[role].name)}")
    out += [
        "",
        "# The two source layers merged into the workload level (双网合一), or [].",
        "[dual]",
        "sources = [" + ", ".join(_quote(s) for s in config.dual_sources) + "]",
        "",
        "# Distances in metres, measured in the metric CRS.",
        "[tolerances]",
        *(f"{f.name} = {float(getattr(config.tolerances, f.name))!r}" for f in fields(Tolerances)),
        "",
        "# Workload norms: plans warn when an edited grid leaves them. where: the",
        "# attribute values of the grids a norm applies to; a bound left out is no bound.",
        *_norms_toml(config.norms),
        "# Column = DBF field name (10 characters at most) for your own long column",
        "# names, beyond those gridgeo writes itself.",
        "[shapefile_fields]",
    ]
    default = dict(_DEFAULT_FIELDS)
    out += [f"{_quote(c)} = {_quote(f)}" for c, f in config.shapefile_fields if default.get(c) != f]
    return "\n".join(out) + "\n"


def _norms_toml(norms: tuple[Norm, ...]) -> list[str]:
    out = []
    for norm in norms:
        where = ", ".join(f"{_toml_key(c)} = {_quote(v)}" for c, v in norm.where)
        out += ["[[norms]]", f"name = {_quote(norm.name)}", f"where = {{ {where} }}"]
        out += [
            f"{key} = {getattr(norm, key)!r}"
            for key in _NORM_KEYS[2:]
            if getattr(norm, key) is not None
        ]
        out.append("")
    return out


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else _quote(key)


# -- inference --------------------------------------------------------------------
def _code_text(values: pd.Series) -> pd.Series:
    text = as_text(values, missing="").str.strip()
    return text[text != ""]


def _infer(
    cls: type[GridConfig], layers: Mapping[str, pd.DataFrame], storage_crs: str | None
) -> GridConfig:
    widths: dict[int, list[str]] = {}
    codes: dict[str, pd.Series] = {}
    for name, frame in layers.items():
        if "code" not in frame.columns:
            continue
        text = _code_text(frame["code"])
        found = {int(n) for n in text.str.len()}
        if len(found) == 1:
            codes[name] = text
            widths.setdefault(found.pop(), []).append(name)
    if not widths:
        raise ConfigError(
            f"no layer among {sorted(layers)} has a 'code' column whose codes all have one "
            "width, so no level can be inferred. Give each level's layer a code column "
            "(rename yours, e.g. 网格编码 → code)."
        )
    parents = {
        name: set(_code_text(layers[name]["parent_code"]))
        for name in codes
        if "parent_code" in layers[name].columns
    }
    # the root: the narrowest layer, preferring one with a single code and no parent
    narrowest = widths[min(widths)]
    root = min(narrowest, key=lambda n: (codes[n].nunique() != 1, bool(parents.get(n))))
    root_codes = sorted(set(codes[root]))
    if len(root_codes) != 1:
        raise ConfigError(
            f"layer {root!r} (the narrowest codes, so the root) holds {len(root_codes)} codes "
            f"{root_codes[:5]}; a grid system has one top polygon. Dissolve it to one polygon, "
            "or remove the layer if it is not the top level."
        )
    narrowest.remove(root)  # a 150800 root may share its width with its children
    widths = {w: names for w, names in widths.items() if names}
    order = sorted(widths)
    chosen = [root]
    for k, width in enumerate(order):
        candidates = widths[width]
        below = widths[order[k + 1]] if k + 1 < len(order) else []
        named = set().union(*(parents.get(n, set()) for n in below))
        # the level is the layer the next level's parent codes name most often
        chosen.append(
            max(candidates, key=lambda n: (len(named & set(codes[n])), -candidates.index(n)))
        )
    order = [len(root_codes[0]), *order]
    root_code = root_codes[0]
    keep = len(root_code)
    if len(chosen) > 1 and not codes[chosen[1]].str.startswith(root_code).all():
        # the children extend the root code without its padding zeros (150800 → 1508)
        significant = len(root_code.rstrip("0")) or 1
        if codes[chosen[1]].str.startswith(root_code[:significant]).all():
            keep = significant
    levels = [Level(root, root, root, keep, Coverage.ROOT)]
    previous = keep
    for k, name in enumerate(chosen[1:], start=1):
        coverage = Coverage.FULL
        if k == len(chosen) - 1 and not set(codes[chosen[k - 1]]) <= parents.get(name, set()):
            coverage = Coverage.REFINED  # some parents have no children
        levels.append(Level(name, name, name, order[k] - previous, coverage))
        previous = order[k]
    config_levels = tuple(levels)
    probe = cls(root_code=root_code, levels=config_levels)
    workload = probe.role(Role.WORKLOAD)
    sources: tuple[str, ...] = ()
    if workload is not None:
        extra = [n for n in widths[workload.code_width] if n != workload.name]
        sources = tuple(extra) if len(extra) == 2 else ()
    frame = layers[root]
    if storage_crs is None:
        epsg = getattr(getattr(frame, "crs", None), "to_epsg", lambda: None)()
        storage_crs = f"EPSG:{epsg}" if epsg else "EPSG:4490"
    name = str(frame["name"].iloc[0]) if "name" in frame.columns and len(frame) else root_code
    return cls(
        root_code=root_code,
        root_name=name,
        levels=config_levels,
        storage_crs=storage_crs,
        metric_crs="auto",
        dual_sources=sources,
    )


BANNER = GridConfig(
    levels=(
        Level("banner", "旗", "banner", 6, Coverage.ROOT),
        Level("town", "苏木镇", "town", 3, Coverage.FULL),
        Level("grid", "网格", "grid", 3, Coverage.FULL),
        Level("micro_grid", "微网格", "micro-grid", 3, Coverage.REFINED),
    )
)
"""Urad Front Banner (乌拉特前旗, 150823): banner → 11 towns → 662 grids → 897 micro-grids."""
