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
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from gridgeo.errors import LayerError

__all__ = [
    "BANNER",
    "Coverage",
    "GridConfig",
    "Level",
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
        Digits this level appends to its parent's code (the root: the whole code).
    coverage:
        The :class:`Coverage` rule the checks enforce against the parent.
    """

    name: str
    label_zh: str
    label_en: str
    code_digits: int
    coverage: Coverage
    code_length: int = 0  # filled in by GridConfig

    @property
    def label(self) -> str:
        """Bilingual label, e.g. ``"网格 grid"``."""
        return f"{self.label_zh} {self.label_en}"


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
        CGCS2000 / 3-degree Gauss-Kruger CM 108E). Used only through
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
    """

    root_code: str = "150823"
    root_name: str = "乌拉特前旗"
    levels: tuple[Level, ...] = ()
    storage_crs: str = "EPSG:4490"
    metric_crs: str = "EPSG:4545"
    tolerances: Tolerances = field(default_factory=Tolerances)
    roles: tuple[tuple[str, str], ...] = ()
    dual_sources: tuple[str, ...] = ("party_grid", "sanitation_grid")
    shapefile_fields: tuple[tuple[str, str], ...] = (
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

    def __post_init__(self) -> None:
        length = 0
        levels = []
        for level in self.levels:
            length += level.code_digits
            levels.append(replace(level, code_length=length))
        object.__setattr__(self, "levels", tuple(levels))
        if levels and levels[0].code_length != len(self.root_code):
            raise ValueError("the first level's code_digits must equal len(root_code)")

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


BANNER = GridConfig(
    levels=(
        Level("banner", "旗", "banner", 6, Coverage.ROOT),
        Level("town", "苏木镇", "town", 3, Coverage.FULL),
        Level("grid", "网格", "grid", 3, Coverage.FULL),
        Level("micro_grid", "微网格", "micro-grid", 3, Coverage.REFINED),
    )
)
"""Urad Front Banner (乌拉特前旗, 150823): banner → 11 towns → 662 grids → 897 micro-grids."""
