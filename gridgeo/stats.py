"""Workloads, household norms, incident aggregates and escalation levels.

Everything here starts from points that :func:`gridgeo.assign.assign` has
placed (one ``{level}_code`` column per level: the banner's ``town_code``,
``grid_code``, ``micro_grid_code``) and returns tables a notebook user keeps
working with: one row per *workload unit* (the level playing
:attr:`Role.WORKLOAD <gridgeo.config.Role.WORKLOAD>` in the system's
configuration, the banner's grids), indexed or keyed by its ``code``, with
its geometry where the result is meant to be mapped as a choropleth. Nothing
here names a level: functions given a ``system`` read its configuration,
those given only tables take ``config=`` (the banner by default).

- :func:`households_per_grid`: households, residents and the "1+1+1+N"
  ratios per grid, flagged against the 300–500 household norm of an urban
  comprehensive grid; :func:`outside_norm` lists the grids that break it.
- :func:`incidents_per_grid`: incident counts per grid by class, subclass,
  category, case status or month of report.
- :func:`overdue`: open cases past their deadline, with ``days_overdue``.
- :data:`ESCALATION`, :func:`escalation_level`, :func:`handling_units`,
  :func:`handling_summary`: the level that should handle each case under
  小事不出小区、难事不出网格、大事不出社区, and the unit (code) at that level.
- :func:`incident_rates`: incidents, open and overdue cases and incidents
  per 1,000 residents per grid.

Case status
-----------
Incidents carry their case status (reported → dispatched → handled →
closed, or overdue) in a ``status`` column; :func:`~gridgeo.assign.assign`
writes where a point fell to ``assign_status``, so the two never clash.
Functions that need the case status take ``status=`` (a column name); left
as ``None`` they use ``status``, or ``case_status`` if that is where yours is.
:data:`CASE_STATUSES` and :data:`OPEN_STATUSES` are the one list of case
statuses in gridgeo (maps and the demo use them too). A value that is not a
case status (say ``已结案``) does not stop anything: :func:`case_status`
reads it as missing and warns once with a :class:`CaseStatusWarning` naming
the values and rows, and such rows count under no status.

Example
-------
>>> import gridgeo
>>> from gridgeo.assign import assign
>>> from gridgeo.demo import households
>>> system = gridgeo.load_demo()
>>> per_grid = households_per_grid(assign(households(system), system), system)
>>> int(per_grid["households"].sum()), int(per_grid["residents"].sum())
(100099, 257826)
>>> per_grid["norm"].value_counts(sort=False).to_dict()
{'below': 3, 'within': 122, 'above': 4, 'n/a': 533}
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from gridgeo.codes import as_text
from gridgeo.config import BANNER, GridConfig, Level, Role
from gridgeo.errors import ConfigError, GridgeoError, SchemaError, option
from gridgeo.model import GridSystem

__all__ = [
    "BY",
    "CASE_STATUSES",
    "DEFAULT_LEVEL",
    "ESCALATION",
    "HANDLING_LEVELS",
    "HOUSEHOLD_NORM",
    "NORM_FLAGS",
    "OPEN_STATUSES",
    "CaseStatusWarning",
    "HouseholdSizeWarning",
    "case_status",
    "escalation_level",
    "handling_summary",
    "handling_units",
    "households_per_grid",
    "incident_rates",
    "incidents_per_grid",
    "outside_norm",
    "overdue",
]

HOUSEHOLD_NORM = (300, 500)
"""Households of an urban comprehensive grid (national guidance: 300–500)."""

NORM_FLAGS = ("below", "within", "above", "n/a")
"""Values of the ``norm`` column; ``n/a`` for grids the norm does not apply to."""

CASE_STATUSES = ("reported", "dispatched", "handled", "closed", "overdue")
"""Case statuses of an incident, in the order of the handling flow."""

OPEN_STATUSES = ("reported", "dispatched", "handled", "overdue")
"""Statuses of a case not yet closed."""


class CaseStatusWarning(UserWarning):
    """Some incidents carry a case status that is not one of :data:`CASE_STATUSES`."""


class HouseholdSizeWarning(UserWarning):
    """The households have no ``size`` column: each row counts as one resident."""


HANDLING_LEVELS = (Role.REFINEMENT, Role.WORKLOAD, Role.DISTRICT)
"""Escalation tiers, lowest first, named by the :class:`~gridgeo.config.Role` that handles them.

小区 (compound): the refinement level (the banner's micro-grids); 网格 (grid):
the workload level (grids); 社区 (community): the district level that owns
the workload unit (the banner's towns, the level the stored hierarchy has in
place of the community). :func:`handling_units` names each tier by the level
of the system's configuration that plays it.
"""

DEFAULT_LEVEL = Role.WORKLOAD
"""Tier of a case whose subclass and class are both missing from the table."""

_COMPOUND, _GRID, _COMMUNITY = HANDLING_LEVELS

ESCALATION: dict[str, str] = {
    # Classes (GB/T 30428.2): the level for every subclass not listed below.
    "市容环境": _COMPOUND,
    "宣传广告": _COMPOUND,
    "街面秩序": _GRID,
    "公用设施": _GRID,
    "道路交通": _GRID,
    "园林绿化": _GRID,
    "施工管理": _GRID,
    "房屋土地": _COMMUNITY,
    "突发事件": _COMMUNITY,
    # Subclasses: override their class.
    # 小事不出小区: the compound's own grid worker and residents deal with it.
    "暴露垃圾": _COMPOUND,
    "非法小广告": _COMPOUND,
    "乱堆物料": _COMPOUND,
    # 难事不出网格: needs the grid leader and a department's crew.
    "垃圾箱": _GRID,
    "积存垃圾渣土": _GRID,
    "占道经营": _GRID,
    "井盖": _GRID,
    "路灯": _GRID,
    "道路破损": _GRID,
    "行道树": _GRID,
    "施工扰民": _GRID,
    "邻里纠纷": _GRID,
    # 大事不出社区: needs law enforcement or an emergency response.
    "火灾隐患": _COMMUNITY,
    "违章建筑": _COMMUNITY,
}
"""The tier that should handle a case, keyed by subclass or class name.

Under "小事不出小区、难事不出网格、大事不出社区" small matters stay in the
compound (``refinement``), hard ones in the grid (``workload``) and big ones
in the community (``district``; see :data:`HANDLING_LEVELS`). A case's
``subclass`` is looked up first, then its ``event_class``; a case found under
neither goes to :data:`DEFAULT_LEVEL` (``workload``). Class and subclass
names of GB/T 30428.2 do not collide, so one flat mapping holds both.

The table is policy, not fact, and names roles rather than levels, so it
applies to any configuration: change a copy and pass it as ``table=``, e.g.
``{**ESCALATION, "路灯": "refinement"}``.
"""

BY = ("event_class", "subclass", "category", "status", "month")
"""What :func:`incidents_per_grid` can count by."""

_GRID_COLUMNS = ("code", "name", "parent_code", "community", "settlement", "grid_type", "workers")
_RATE_COLUMNS = ("incidents", "open", "overdue", "per_1000_residents")
_ASSIGN_HINT = "Assign the points first: gridgeo.assign.assign(points, system)."


# -- households ---------------------------------------------------------------
def households_per_grid(
    assigned_households: pd.DataFrame,
    system: GridSystem,
    *,
    norm: tuple[int, int] = HOUSEHOLD_NORM,
    size: str | None = None,
) -> gpd.GeoDataFrame:
    """Households, residents and workload per grid, flagged against the norm.

    Parameters
    ----------
    assigned_households:
        Households as returned by :func:`gridgeo.assign.assign`: one row per
        household with the workload level's code column (the banner's
        ``grid_code``) and a ``size`` (residents). Households with no such code
        (outside the root polygon, in a gap, left for review) are not counted. With a ``registered_grid`` column, households whose
        registered grid differs from the assigned one are counted too.
    system:
        The grid system; every polygon of its workload level (the banner's
        ``grid``) gets a row.
    norm:
        ``(fewest, most)`` households of an urban comprehensive grid,
        both inclusive.
    size:
        Name of the column with the number of residents of a household.
        ``None`` (the default): the ``size`` column if there is one; if not,
        each row is one household of one resident, with a
        :class:`HouseholdSizeWarning` (household counts are then exact,
        resident counts are the household counts).

    Returns
    -------
    GeoDataFrame
        One row per workload unit, in the order of its layer: ``code``,
        ``name``, ``parent_code``, ``community``, ``settlement``,
        ``grid_type``, ``workers`` (those of the grid's attributes present),
        ``households`` and ``residents`` (0 where none is assigned),
        ``households_per_worker`` and ``residents_per_worker`` (the N of
        "1+1+1+N"; missing where a grid has no worker), ``norm``
        (:data:`NORM_FLAGS`: ``below``/``within``/``above`` for grids with
        ``settlement == "urban"`` and ``grid_type == "comprehensive"``,
        ``n/a`` for the others), ``registered_elsewhere`` (if the
        households carry ``registered_grid``; missing registrations are not
        counted) and ``geometry``.

    Raises
    ------
    SchemaError
        The workload code column (``grid_code``) is missing, or the ``size``
        column named is.

    Example
    -------
    >>> import gridgeo
    >>> from gridgeo.assign import assign
    >>> from gridgeo.demo import households
    >>> system = gridgeo.load_demo()
    >>> per_grid = households_per_grid(assign(households(system), system), system)
    >>> row = per_grid.set_index("code").loc["150823100001"]
    >>> int(row["households"]), int(row["workers"]), row["norm"]
    (74, 4, 'n/a')
    """
    fewest, most = norm
    if fewest > most:
        raise GridgeoError(f"norm {norm!r}: the fewest households exceed the most")
    workload = _level(system.config, Role.WORKLOAD)
    column = workload.code_column
    _require(assigned_households, [column], "the households", _ASSIGN_HINT)
    code = _codes(assigned_households, column)
    people = pd.DataFrame({"unit": code, "size": _sizes(assigned_households, size)})
    grouped = people.groupby("unit")
    counts = grouped.agg(households=("size", "size"), residents=("size", "sum"))
    if "registered_grid" in assigned_households:
        registered = _codes(assigned_households, "registered_grid")
        people["elsewhere"] = registered.notna() & code.notna() & (registered != code)
        counts["registered_elsewhere"] = people.groupby("unit")["elsewhere"].sum()

    grid = system[workload.name]
    out = grid[[c for c in _GRID_COLUMNS if c in grid]].copy()
    for column in _GRID_COLUMNS:
        if column not in out:
            out[column] = pd.NA
    out = out[list(_GRID_COLUMNS)].join(counts, on="code")
    for column in counts.columns:
        out[column] = out[column].fillna(0).astype(np.int64)

    workers = pd.to_numeric(out["workers"]).astype(float)
    staffed = workers.where(workers > 0)
    out["households_per_worker"] = out["households"] / staffed
    out["residents_per_worker"] = out["residents"] / staffed

    households = out["households"].to_numpy()
    applies = ((out["settlement"] == "urban") & (out["grid_type"] == "comprehensive")).to_numpy(
        dtype=bool, na_value=False
    )
    flag = np.where(households < fewest, "below", np.where(households > most, "above", "within"))
    out["norm"] = pd.Categorical(np.where(applies, flag, "n/a"), categories=list(NORM_FLAGS))

    columns = [
        *_GRID_COLUMNS,
        "households",
        "residents",
        "households_per_worker",
        "residents_per_worker",
        "norm",
    ]
    if "registered_elsewhere" in out:
        columns.append("registered_elsewhere")
    return gpd.GeoDataFrame(out[columns], geometry=grid.geometry, crs=grid.crs)


def outside_norm(per_grid: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The grids of :func:`households_per_grid` whose households break the norm.

    Only urban comprehensive grids are flagged (rural, dedicated and
    institution grids are ``n/a``). Sorted by households, fewest first, so
    the grids below the norm come first and the most crowded grid last
    (ties by code).

    Example
    -------
    >>> import gridgeo
    >>> from gridgeo.assign import assign
    >>> from gridgeo.demo import households
    >>> system = gridgeo.load_demo()
    >>> per_grid = households_per_grid(assign(households(system), system), system)
    >>> outside_norm(per_grid)["households"].tolist()
    [180, 240, 260, 560, 620, 680, 720]
    """
    _require(per_grid, ["code", "households", "norm"], "per_grid", "Use households_per_grid().")
    rows = per_grid[per_grid["norm"].isin(["below", "above"]).to_numpy()]
    return rows.sort_values(["households", "code"], kind="stable")


# -- incidents ----------------------------------------------------------------
def incidents_per_grid(
    assigned_incidents: pd.DataFrame,
    system: GridSystem | None = None,
    by: str = "event_class",
    *,
    status: str | None = None,
    config: GridConfig | None = None,
) -> pd.DataFrame:
    """Incident counts per workload unit, one column per class, status or month.

    Parameters
    ----------
    assigned_incidents:
        Incidents placed by :func:`gridgeo.assign.assign` (the workload
        level's code column, the banner's ``grid_code``); those with no
        workload unit are not counted.
    system:
        With a system, one row per polygon of its workload level (zeros
        where no incident falls); without, only the units with incidents.
    by:
        ``"event_class"``, ``"subclass"``, ``"category"`` (部件/事件): one
        column per value found, sorted. ``"status"``: one column per case
        status (:data:`CASE_STATUSES`, in flow order). ``"month"``: one
        column per month of ``reported_at`` (``"2026-01"``), every month from
        the first to the last, including empty ones.
    status:
        Column of the case status for ``by="status"`` (see the module notes).
    config:
        Without a system, the configuration naming the workload level
        (default: the system's, else :data:`~gridgeo.config.BANNER`).

    Returns
    -------
    DataFrame
        Counts (int64), indexed by the workload code column (``grid_code``);
        the columns are named ``by``.

    Example
    -------
    >>> import pandas as pd
    >>> events = pd.DataFrame({"grid_code": ["A", "A", "B", None],
    ...                        "event_class": ["市容环境", "街面秩序", "市容环境", "市容环境"]})
    >>> incidents_per_grid(events).to_dict("index")
    {'A': {'市容环境': 1, '街面秩序': 1}, 'B': {'市容环境': 1, '街面秩序': 0}}
    """
    if by not in BY:
        raise GridgeoError(f"by={by!r}: count incidents by one of {list(BY)}")
    config = _config(system, config)
    workload = _level(config, Role.WORKLOAD)
    unit = workload.code_column
    _require(assigned_incidents, [unit], "the incidents", _ASSIGN_HINT)
    code = _codes(assigned_incidents, unit)
    columns: Sequence[str] | None = None
    if by == "status":
        values = _case_status(assigned_incidents, status)
        columns = CASE_STATUSES
    elif by == "month":
        _require(assigned_incidents, ["reported_at"], "the incidents", "")
        month = pd.to_datetime(assigned_incidents["reported_at"]).dt.to_period("M")
        values = month.astype(str).where(month.notna())
        if month.notna().any():
            columns = pd.period_range(month.min(), month.max(), freq="M").astype(str)
    else:
        _require(assigned_incidents, [by], "the incidents", "")
        values = assigned_incidents[by].astype(object)
    table = pd.crosstab(
        code.to_numpy(), np.asarray(values, dtype=object), rownames=[unit], colnames=[by]
    )
    if columns is not None:
        table = table.reindex(columns=pd.Index(list(columns), name=by), fill_value=0)
    if system is not None:
        table = table.reindex(pd.Index(system[workload.name]["code"], name=unit), fill_value=0)
    return table.astype(np.int64)


def overdue(
    incidents: pd.DataFrame,
    as_of: pd.Timestamp | str | None = None,
    *,
    status: str | None = None,
) -> pd.DataFrame:
    """Cases past their deadline: flagged ``overdue``, or open past ``deadline``.

    Parameters
    ----------
    incidents:
        Incidents with ``deadline``, a case status and, when ``as_of`` is
        not given, ``reported_at``; assigned or not.
    as_of:
        The moment to judge at. Default: the latest ``reported_at`` in the
        data, so a result depends on the data alone, never on today's date
        (for the demo that is 2026-11-30, the end of its year). Pass
        ``pd.Timestamp.now()`` for live data.
    status:
        Column of the case status (see the module notes).

    Returns
    -------
    (Geo)DataFrame
        The rows whose status is ``overdue``, plus those still ``reported``,
        ``dispatched`` or ``handled`` whose ``deadline`` is before ``as_of``
        (closed cases never), with ``days_overdue``: calendar days from the
        deadline to ``as_of`` (a float, 0 for a case flagged overdue before
        its deadline). Most overdue first.

    Example
    -------
    >>> import pandas as pd
    >>> events = pd.DataFrame({
    ...     "status": ["reported", "closed", "handled", "overdue"],
    ...     "deadline": pd.to_datetime(["2026-11-01", "2026-11-01", "2026-12-09", "2026-11-20"]),
    ... })
    >>> overdue(events, "2026-12-01")["days_overdue"].tolist()
    [30.0, 11.0]
    """
    late, as_of = _late(incidents, as_of, _case_status(incidents, status))
    out = incidents[late.to_numpy()].copy()
    days = (as_of - pd.to_datetime(out["deadline"])) / pd.Timedelta(days=1)
    out["days_overdue"] = days.clip(lower=0.0).to_numpy()
    return out.sort_values("days_overdue", ascending=False, kind="stable")


# -- escalation ---------------------------------------------------------------
def escalation_level(
    incidents: pd.DataFrame,
    table: Mapping[str, str] = ESCALATION,
    *,
    default: str = DEFAULT_LEVEL,
) -> pd.Series:
    """The tier that should handle each incident, from :data:`ESCALATION`.

    The ``subclass`` is looked up first, then the ``event_class``; neither
    found gives ``default``.

    Returns
    -------
    Series
        Categorical of the tiers :data:`HANDLING_LEVELS` (``refinement``,
        ``workload``, ``district``), named ``handling_level``, with the index
        of ``incidents``.

    Example
    -------
    >>> import pandas as pd
    >>> events = pd.DataFrame({"event_class": ["突发事件", "突发事件", "其他"],
    ...                        "subclass": ["火灾隐患", "邻里纠纷", "其他"]})
    >>> escalation_level(events).tolist()
    ['district', 'workload', 'workload']
    >>> escalation_level(events, {**ESCALATION, "邻里纠纷": "refinement"}).tolist()
    ['district', 'refinement', 'workload']
    """
    tiers = [str(t) for t in HANDLING_LEVELS]
    wrong = {k: v for k, v in table.items() if v not in tiers}
    if wrong or default not in tiers:
        shown = wrong or {"default": default}
        raise GridgeoError(
            f"escalation tiers must be one of {tiers} (the roles that handle a case); got {shown}"
        )
    keys = [c for c in ("subclass", "event_class") if c in incidents]
    if not keys:
        raise SchemaError(
            f"the incidents have neither 'subclass' nor 'event_class'; found {list(incidents.columns)}"
        )
    lookup = {k: str(v) for k, v in table.items()}
    level = pd.Series(np.nan, index=incidents.index, dtype=object)
    for key in keys:  # most specific first: at most two passes over whole columns
        level = level.fillna(incidents[key].astype(object).map(lookup))
    level = level.fillna(str(default))
    return pd.Series(
        pd.Categorical(level, categories=tiers),
        index=incidents.index,
        name="handling_level",
    )


def handling_units(
    assigned_incidents: pd.DataFrame,
    table: Mapping[str, str] = ESCALATION,
    *,
    default: str = DEFAULT_LEVEL,
    config: GridConfig = BANNER,
) -> pd.DataFrame:
    """Incidents with the level and the unit that should handle them.

    Adds ``handling_level``: the name, in ``config``, of the level playing
    the tier :func:`escalation_level` chose (the banner: ``micro_grid``,
    ``grid``, ``town``); ``handling_unit``: the incident's code at that level
    (its ``{level}_code`` column); and ``handling_fallback``: ``True`` where a
    refinement-tier case lies in a workload unit no refinement polygon
    refines (a rural or dedicated grid), or the configuration has no
    refinement level, so the workload unit stands in (its level is then named
    in ``handling_level``). Incidents with no workload unit have no unit.

    Example
    -------
    >>> import pandas as pd
    >>> events = pd.DataFrame({
    ...     "subclass": ["暴露垃圾", "暴露垃圾", "路灯", "违章建筑"],
    ...     "town_code": ["150823100"] * 4,
    ...     "grid_code": ["150823100001", "150823100002", "150823100001", "150823100001"],
    ...     "micro_grid_code": ["150823100001001", None, "150823100001001", None],
    ... })
    >>> out = handling_units(events)
    >>> out["handling_unit"].tolist()
    ['150823100001001', '150823100002', '150823100001', '150823100']
    >>> out["handling_level"].tolist()
    ['micro_grid', 'grid', 'grid', 'town']
    """
    workload = _level(config, Role.WORKLOAD)
    district = _level(config, Role.DISTRICT)
    refinement = config.role(Role.REFINEMENT)
    _require(
        assigned_incidents,
        [workload.code_column, district.code_column],
        "the incidents",
        _ASSIGN_HINT,
    )
    tier = escalation_level(assigned_incidents, table, default=default)
    upper = _codes(assigned_incidents, district.code_column)
    unit = _codes(assigned_incidents, workload.code_column)
    finer = (
        _codes(assigned_incidents, refinement.code_column)
        if refinement is not None and refinement.code_column in assigned_incidents
        else pd.Series(np.nan, index=unit.index, dtype=object)
    )
    at_finer = (tier == _COMPOUND).to_numpy()
    at_upper = (tier == _COMMUNITY).to_numpy()
    has_finer = finer.notna().to_numpy()
    fine = at_finer & has_finer
    names = _tier_names(config)
    out = assigned_incidents.copy()
    out["handling_level"] = pd.Categorical(
        np.where(at_upper, district.name, np.where(fine, names[0], workload.name)),
        categories=names,
    )
    out["handling_unit"] = np.where(
        at_upper, upper.to_numpy(), np.where(fine, finer.to_numpy(), unit.to_numpy())
    )
    out["handling_fallback"] = at_finer & ~has_finer & unit.notna().to_numpy()
    return out


def handling_summary(
    assigned_incidents: pd.DataFrame,
    table: Mapping[str, str] = ESCALATION,
    *,
    default: str = DEFAULT_LEVEL,
    status: str | None = None,
    config: GridConfig = BANNER,
) -> pd.DataFrame:
    """Case counts per handling level and unit, one column per case status.

    The work list of each unit: rows ``(handling_level, handling_unit)``
    from :func:`handling_units` (levels lowest first, units by code),
    columns :data:`CASE_STATUSES`. Incidents with no unit are left out.
    Totals per level: ``summary.groupby(level="handling_level").sum()``.

    Example
    -------
    >>> import pandas as pd
    >>> events = pd.DataFrame({
    ...     "subclass": ["暴露垃圾", "路灯", "路灯"],
    ...     "status": ["closed", "reported", "overdue"],
    ...     "town_code": ["150823100"] * 3,
    ...     "grid_code": ["150823100001"] * 3,
    ...     "micro_grid_code": ["150823100001001"] * 3,
    ... })
    >>> handling_summary(events)[["reported", "closed", "overdue"]].to_numpy().tolist()
    [[0, 1, 0], [1, 0, 1]]
    """
    units = handling_units(assigned_incidents, table, default=default, config=config)
    case = _case_status(units, status)
    summary = pd.crosstab(
        [units["handling_level"].astype(object).to_numpy(), units["handling_unit"].to_numpy()],
        np.asarray(case, dtype=object),
        rownames=["handling_level", "handling_unit"],
        colnames=["status"],
    )
    summary = summary.reindex(columns=pd.Index(CASE_STATUSES, name="status"), fill_value=0)
    rank = {name: k for k, name in enumerate(_tier_names(config))}
    summary = summary.sort_index(
        key=lambda index: index.map(rank) if index.name == "handling_level" else index
    )
    return summary.astype(np.int64)


# -- rates --------------------------------------------------------------------
def incident_rates(
    assigned_incidents: pd.DataFrame,
    per_grid: gpd.GeoDataFrame,
    *,
    as_of: pd.Timestamp | str | None = None,
    status: str | None = None,
    config: GridConfig = BANNER,
) -> gpd.GeoDataFrame:
    """``per_grid`` with incident counts and incidents per 1,000 residents.

    Parameters
    ----------
    assigned_incidents:
        Incidents placed by :func:`gridgeo.assign.assign`.
    per_grid:
        The result of :func:`households_per_grid` (its ``residents`` are the
        denominator).
    as_of, status:
        As for :func:`overdue`.
    config:
        Names the workload level, whose code column (``grid_code``) places
        each incident.

    Returns
    -------
    GeoDataFrame
        ``per_grid`` plus ``incidents``, ``open`` (not closed), ``overdue``
        (as :func:`overdue` counts them) and ``per_1000_residents``
        (missing where a grid has no residents). Columns of an earlier call
        are replaced.

    Example
    -------
    >>> import geopandas as gpd, pandas as pd
    >>> per_grid = gpd.GeoDataFrame({"code": ["A", "B"], "residents": [2000, 0]})
    >>> events = pd.DataFrame({"grid_code": ["A", "A", "A"],
    ...                        "status": ["closed", "reported", "overdue"],
    ...                        "deadline": pd.to_datetime(["2026-11-01"] * 3),
    ...                        "reported_at": pd.to_datetime(["2026-10-25"] * 3)})
    >>> incident_rates(events, per_grid)[["incidents", "open", "overdue"]].to_numpy().tolist()
    [[3, 2, 1], [0, 0, 0]]
    >>> incident_rates(events, per_grid)["per_1000_residents"].tolist()
    [1.5, nan]
    """
    unit = _level(config, Role.WORKLOAD).code_column
    _require(assigned_incidents, [unit], "the incidents", _ASSIGN_HINT)
    _require(per_grid, ["code", "residents"], "per_grid", "Use households_per_grid().")
    case = _case_status(assigned_incidents, status)
    late, _ = _late(assigned_incidents, as_of, case)
    frame = pd.DataFrame(
        {
            "unit": _codes(assigned_incidents, unit).to_numpy(),
            "incidents": 1,
            "open": case.isin(OPEN_STATUSES).to_numpy(),
            "overdue": late.to_numpy(),
        }
    )
    counts = frame.groupby("unit")[["incidents", "open", "overdue"]].sum()
    out = per_grid.drop(columns=[c for c in _RATE_COLUMNS if c in per_grid]).join(counts, on="code")
    for column in counts.columns:
        out[column] = out[column].fillna(0).astype(np.int64)
    residents = pd.to_numeric(out["residents"]).astype(float)
    out["per_1000_residents"] = out["incidents"] * 1000.0 / residents.where(residents > 0)
    return out


# -- helpers ------------------------------------------------------------------
def _config(system: GridSystem | None, config: GridConfig | None) -> GridConfig:
    if config is not None:
        return config
    return system.config if system is not None else BANNER


def _level(config: GridConfig, role: Role) -> Level:
    """The level playing ``role``; :class:`ConfigError` when none does."""
    level = config.role(role)
    if level is None:
        raise ConfigError(
            f"the configuration of {config.root_name} has no {role.value} level (levels "
            f"{config.level_names}); name one under [roles] in the configuration file, "
            f"e.g. {role.value} = {config.level_names[-1]!r}."
        )
    return level


def _tier_names(config: GridConfig) -> list[str]:
    """Level names of the tiers, lowest first (the refinement tier only if a level plays it)."""
    names = [config.role_name(tier) for tier in HANDLING_LEVELS]
    return [n for n in dict.fromkeys(names) if n is not None]


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str, hint: str) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise SchemaError(
            f"{what}: column(s) {missing} missing; found {list(frame.columns)}. {hint}".rstrip()
        )


def _codes(frame: pd.DataFrame, column: str) -> pd.Series:
    """A code column as text (object), missing for NA and ''; index reset."""
    text = as_text(frame[column].reset_index(drop=True), missing=np.nan)
    return text.where(text != "", np.nan)


def case_status(incidents: pd.DataFrame, status: str | None = None) -> pd.Series:
    """The case status of each incident, as a categorical of :data:`CASE_STATUSES`.

    A column holds case statuses when at least half of its non-missing values
    are in :data:`CASE_STATUSES`. Other values (``已结案``, a typo) become
    missing, with one :class:`CaseStatusWarning` naming them, how many rows
    carry them and the first rows; those rows then count as neither open
    nor closed, and nothing else stops.

    Parameters
    ----------
    incidents : DataFrame
        The incidents.
    status : str, optional
        The column to read. ``None``: ``status``, else ``case_status`` (the
        first that holds case statuses; ``assign`` leaves its own result in
        ``assign_status``, but older files may have it in ``status``).

    Returns
    -------
    Series
        Categorical with :data:`CASE_STATUSES` as categories, the index of
        ``incidents`` and the column's name.

    Raises
    ------
    SchemaError
        No column holds case statuses.

    Examples
    --------
    >>> import pandas as pd, warnings
    >>> events = pd.DataFrame({"status": ["closed", "已结案", "overdue"]})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     case_status(events).tolist()
    ['closed', nan, 'overdue']
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    column 'status': 1 incident(s) have a case status that is not one of [...]: '已结案' (rows [1])...
    """
    names = [status] if status else ["status", "case_status"]
    for name in names:
        if name not in incidents:
            continue
        values = incidents[name].astype(object)
        present = values.notna() & (values.astype(str) != "")
        known = values.isin(CASE_STATUSES)
        if known.sum() * 2 < present.sum() or not known.any():
            if status:
                shown = sorted(set(values[present & ~known].astype(str)))[:5]
                raise SchemaError(
                    f"column {status!r} holds {shown}, not case statuses {list(CASE_STATUSES)}"
                )
            continue
        unknown = present & ~known
        if unknown.any():
            shown = ", ".join(repr(v) for v in sorted(set(values[unknown].astype(str)))[:5])
            warnings.warn(
                f"column {name!r}: {int(unknown.sum())} incident(s) have a case status that is "
                f"not one of {list(CASE_STATUSES)}: {shown} (rows "
                f"{incidents.index[unknown.to_numpy()][:5].tolist()}). They count under no "
                "status; rename those values to one of the case statuses.",
                CaseStatusWarning,
                stacklevel=2,
            )
        return pd.Series(
            pd.Categorical(values.where(known), categories=list(CASE_STATUSES)),
            index=incidents.index,
            name=name,
        )
    raise SchemaError(
        f"the incidents have no case status column ({' or '.join(map(repr, names))} holding "
        f"{list(CASE_STATUSES)}); found {list(incidents.columns)}. Name the case status "
        f"column with {option('status', 'your column')}."
    )


def _case_status(incidents: pd.DataFrame, column: str | None) -> pd.Series:
    """:func:`case_status`, index reset."""
    return case_status(incidents, column).reset_index(drop=True)


def _sizes(households: pd.DataFrame, size: str | None) -> np.ndarray:
    """Residents of each household: the ``size`` column, or 1 per row without one."""
    if size is None and "size" not in households:
        warnings.warn(
            f"the households have no 'size' column (found {list(households.columns)}): each "
            "row counts as one household of one resident. For resident counts, add a "
            "'size' column with the residents of each household.",
            HouseholdSizeWarning,
            stacklevel=3,
        )
        return np.ones(len(households), dtype=np.int64)
    column = size or "size"
    _require(households, [column], "the households", "")
    values = pd.to_numeric(households[column], errors="coerce")
    wrong = values.isna() & households[column].notna()
    if wrong.any():
        row = households.index[wrong.to_numpy()][0]
        raise SchemaError(
            f"the households: column {column!r}, row {row}: {households[column].loc[row]!r} "
            "is not a number of residents. Fix the value or delete the row."
        )
    return values.to_numpy()


def _late(
    incidents: pd.DataFrame, as_of: pd.Timestamp | str | None, case: pd.Series
) -> tuple[pd.Series, pd.Timestamp]:
    """Which cases are overdue at ``as_of`` (index reset), and ``as_of`` itself."""
    _require(incidents, ["deadline"], "the incidents", "")
    if as_of is None:
        _require(incidents, ["reported_at"], "the incidents", "Or pass as_of=.")
        as_of = pd.to_datetime(incidents["reported_at"]).max()
    as_of = pd.Timestamp(as_of)
    deadline = pd.to_datetime(incidents["deadline"]).reset_index(drop=True)
    waiting = case.isin(["reported", "dispatched", "handled"]) & (deadline < as_of)
    return (case == "overdue") | waiting, as_of
