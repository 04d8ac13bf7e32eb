"""The plan: units are the truth, grid polygons are derived.

A :class:`Plan` assigns every *unit* (a building block of grids: a compound,
a group of buildings, a natural village) to one workload grid, and to one
micro-grid where the grid is refined, and holds each grid's attributes
(name, leader, workers, type, locked). Grid and micro-grid polygons are
never edited: they are the coverage union (``shapely.coverage_union_all``,
GEOS) of their units, so shared edges are exact by construction and a plan's
system has no gap or overlap.

Operations (:meth:`Plan.move`, :meth:`~Plan.split`, :meth:`~Plan.merge`,
:meth:`~Plan.refine`, :meth:`~Plan.dissolve_micro`, :meth:`~Plan.set`,
:meth:`~Plan.lock`, :meth:`~Plan.renumber`) return a new plan and leave the
old one untouched. Each validates what it touched and refuses with a
:class:`~gridgeo.errors.PlanError` naming the grid, the rule and what to do:
a grid that falls apart (contiguity on the unit adjacency graph), a grid
leaving its district, an empty grid, a locked grid changed, a micro-grid
crossing its grid. ``force=True`` records the breach instead. Norms
(households per grid, per worker; :class:`~gridgeo.config.Norm`) are
warnings with numbers.

Codes stay stable: a grid whose units did not change keeps its code; a new
grid takes the next free sequence in its district; a merged grid keeps the
lowest code; retired codes are never reused within the plan's lineage.
:meth:`Plan.renumber` is the one explicit step that renumbers, and returns
its crosswalk in :meth:`Plan.crosswalk`.

Levels are found through the configuration's roles (root, district,
workload, refinement), never by name.

Examples
--------
>>> from gridgeo import load_demo
>>> plan = Plan.from_system(load_demo(units=True))
>>> plan
Plan(662 workload grids, 897 refinements, ... units, 0 steps)
>>> new = plan.merge(["150823104003", "150823104004"], by="doctest")
>>> len(new.grid_table), len(plan.grid_table)
(661, 662)
"""

from __future__ import annotations

import datetime
import getpass
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from gridgeo.codes import as_text, reading_order
from gridgeo.config import GridConfig, Role
from gridgeo.errors import CodeError, PlanError, PlanWarning
from gridgeo.model import GridSystem
from gridgeo.plan.partition import partition
from gridgeo.plan.record import ASSIGNMENT_COLUMNS, PlanRecord

__all__ = ["Plan", "Step"]

FIXED_UNIT_COLUMNS = ("unit_id", "households", "residents", "village", "kind")
"""Unit attributes that never change in a plan (with the district code and geometry)."""

_DERIVED = ("households", "residents", "units")
"""Grid columns computed from the units, never stored as attributes."""


# -- the shared, immutable unit layer ------------------------------------------
@dataclass(eq=False)
class _Units:
    """The unit layer of a plan lineage, shared by every plan derived from it."""

    frame: gpd.GeoDataFrame  # fixed columns + "district" + geometry, storage CRS
    ids: np.ndarray
    position: dict[str, int]
    households: np.ndarray
    residents: np.ndarray
    district: np.ndarray
    geoms: np.ndarray
    xy: np.ndarray  # representative points in the metric CRS
    area: np.ndarray  # m², metric CRS
    graph: nx.Graph  # rook adjacency, nodes are positions
    metric_crs: Any  # the CRS of xy and area: every metric computation of the lineage

    @classmethod
    def build(cls, frame: gpd.GeoDataFrame, metric_crs) -> _Units:
        from gridgeo.plan.units import unit_adjacency

        frame = frame.reset_index(drop=True)
        metric = frame.geometry.to_crs(metric_crs)
        rep = shapely.get_coordinates(shapely.point_on_surface(metric.to_numpy()))
        ids = frame["unit_id"].astype(str).to_numpy()
        graph = nx.Graph()
        graph.add_nodes_from(range(len(frame)))
        i, j = _edges(unit_adjacency(frame))
        graph.add_edges_from(zip(i.tolist(), j.tolist(), strict=True))
        return cls(
            frame=frame,
            ids=ids,
            position={u: k for k, u in enumerate(ids)},
            households=frame["households"].to_numpy(np.int64),
            residents=frame["residents"].to_numpy(np.int64),
            district=frame["district"].astype(str).to_numpy(),
            geoms=frame.geometry.to_numpy(),
            xy=rep,
            area=metric.area.to_numpy(),
            graph=graph,
            metric_crs=metric_crs,
        )

    def __len__(self) -> int:
        return len(self.ids)


def _edges(adjacency) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) position pairs of adjacent units from :func:`gridgeo.plan.units.unit_adjacency`."""
    for names in (("i", "j"), ("left", "right"), ("a", "b")):
        if all(hasattr(adjacency, n) for n in names):
            return (
                np.asarray(getattr(adjacency, names[0])),
                np.asarray(getattr(adjacency, names[1])),
            )
    matrix = getattr(adjacency, "matrix", adjacency)
    coo = matrix.tocoo()
    keep = coo.row < coo.col
    return coo.row[keep], coo.col[keep]


# -- history ---------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One operation in a plan's history.

    ``codes`` lists the code changes it made as ``(role, old, new, reason)``;
    ``breaches`` the rules it broke with ``force=True``; ``warnings`` the norms
    its grids left.
    """

    op: str
    params: dict
    when: str
    by: str
    households_moved: int = 0
    units_moved: int = 0
    touched: tuple[str, ...] = ()
    codes: tuple[tuple[str, str, str, str], ...] = ()
    breaches: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """JSON-serialisable form (what a store saves)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["touched"] = list(self.touched)
        out["codes"] = [list(c) for c in self.codes]
        out["breaches"] = list(self.breaches)
        out["warnings"] = list(self.warnings)
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> Step:
        data = dict(data)
        data["touched"] = tuple(data.get("touched", ()))
        data["codes"] = tuple(tuple(c) for c in data.get("codes", ()))
        data["breaches"] = tuple(data.get("breaches", ()))
        data["warnings"] = tuple(data.get("warnings", ()))
        return cls(**data)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _default_author() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a container
        return "unknown"


# -- the plan -----------------------------------------------------------------------
@dataclass(eq=False)
class Plan:
    """Units → workload grid (→ refinement), grid attributes, and the history.

    Build one with :meth:`from_system`; every operation returns a new Plan.
    Read it through :attr:`units`, :attr:`grids` and :attr:`micro_grids`
    (GeoDataFrames with derived polygons), :meth:`to_system`,
    :attr:`history` and :meth:`crosswalk`.
    """

    config: GridConfig
    frame: dict[str, gpd.GeoDataFrame]
    _units: _Units
    workload: np.ndarray  # grid code per unit
    refinement: np.ndarray  # micro-grid code per unit ("" where the grid is not refined)
    grid_table: pd.DataFrame  # index: code; parent_code, name, locked, attributes
    micro_table: pd.DataFrame  # index: code; parent_code, name, attributes
    steps: tuple[Step, ...] = ()
    retired: frozenset[str] = frozenset()
    author: str = field(default_factory=_default_author)
    _previous: Plan | None = None
    _undone: tuple[Plan, ...] = ()
    _shapes: dict[str, Any] = field(default_factory=dict)

    # -- building ------------------------------------------------------------
    @classmethod
    def from_system(
        cls,
        system: GridSystem,
        units: gpd.GeoDataFrame | None = None,
        *,
        households: gpd.GeoDataFrame | None = None,
        author: str | None = None,
    ) -> Plan:
        """A plan of ``system``: its unit layer, the one given, or :func:`derive_units`.

        Parameters
        ----------
        system : GridSystem
            The grid system to plan; its levels down to the workload level's
            parent stay fixed (the districts).
        units : GeoDataFrame, optional
            The unit layer (:mod:`gridgeo.plan.units` describes its columns).
            Default: the system's source layer ``"units"``, else units derived
            from the system (and ``households`` points, when given).
        author : str, optional
            Recorded in the history of every operation (default: the OS user).

        Raises
        ------
        PlanError, SchemaError
            The units do not tile the grids, or lack a column.
        """
        from gridgeo.plan.units import UNIT_LAYER, derive_units, validate_units

        config = system.config
        district, workload, refinement = _roles(config)
        if units is None:
            units = system.sources.get(UNIT_LAYER)
        if units is None:
            units = derive_units(system, households)
        validate_units(units, system)
        units = units.to_crs(system.crs) if units.crs != system.crs else units
        fixed = units[[c for c in FIXED_UNIT_COLUMNS if c in units.columns]].copy()
        for column, default in (("village", ""), ("kind", "")):
            if column not in fixed:
                fixed[column] = default
        fixed["district"] = as_text(units[district.code_column], missing="").to_numpy()
        fixed = gpd.GeoDataFrame(fixed, geometry=units.geometry.to_numpy(), crs=units.crs)
        shared = _Units.build(fixed, system.metric_crs)
        names = config.level_names
        upper = {n: system[n].copy() for n in names[: names.index(workload.name)]}
        grids = _attributes(system[workload.name])
        micros = (
            _attributes(system[refinement.name])
            if refinement is not None
            else pd.DataFrame(columns=["parent_code", "name"], index=pd.Index([], name="code"))
        )
        grids["locked"] = grids["locked"].astype(bool) if "locked" in grids else False
        work = as_text(units[workload.code_column], missing="").to_numpy(dtype=object)
        if refinement is not None and refinement.code_column in units:
            fine = as_text(units[refinement.code_column], missing="").to_numpy(dtype=object)
        else:
            fine = np.full(len(units), "", dtype=object)
        return cls(
            config=config,
            frame=upper,
            _units=shared,
            workload=work,
            refinement=fine,
            grid_table=grids,
            micro_table=micros,
            author=author or _default_author(),
        )

    # -- reading -------------------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"Plan({len(self.grid_table)} workload grids, {len(self.micro_table)} refinements, "
            f"{len(self._units):,} units, {len(self.steps)} steps)"
        )

    @property
    def metric_crs(self):
        """The projected CRS the plan measures in (the system's, chosen once)."""
        return self._units.metric_crs

    @property
    def units(self) -> gpd.GeoDataFrame:
        """The unit layer with each unit's current grid (and micro-grid) code."""
        district, workload, refinement = _roles(self.config)
        out = self._units.frame.rename(columns={"district": district.code_column}).copy()
        out.insert(2, workload.code_column, self.workload)
        if refinement is not None:
            out.insert(3, refinement.code_column, self.refinement)
        return out

    @property
    def grids(self) -> gpd.GeoDataFrame:
        """Workload grids: attributes, households/residents/units from the units, polygons."""
        return self._level(self.grid_table, self.workload)

    @property
    def micro_grids(self) -> gpd.GeoDataFrame:
        """Refinements (micro-grids), like :attr:`grids`."""
        return self._level(self.micro_table, self.refinement)

    def _level(self, table: pd.DataFrame, codes: np.ndarray) -> gpd.GeoDataFrame:
        totals = self._totals(codes).reindex(table.index, fill_value=0)
        out = table.drop(columns=[c for c in _DERIVED if c in table], errors="ignore").copy()
        for column in _DERIVED:
            out[column] = totals[column].to_numpy(np.int64)
        out = out.reset_index()
        geometry = self._geometry(out["code"].tolist(), codes)
        return gpd.GeoDataFrame(out, geometry=geometry, crs=self._units.frame.crs)

    def _totals(self, codes: np.ndarray) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "code": codes,
                "households": self._units.households,
                "residents": self._units.residents,
                "units": 1,
            }
        )
        return frame[frame["code"] != ""].groupby("code")[list(_DERIVED)].sum()

    def households_of(self, codes: Iterable[str]) -> dict[str, int]:
        """Households per grid (or micro-grid) code, from the units."""
        codes = list(codes)
        out = dict.fromkeys(codes, 0)
        for key, values in (
            (self.workload, self._units.households),
            (self.refinement, self._units.households),
        ):
            hit = _isin(key, codes)
            if hit.any():
                sums = pd.Series(values[hit]).groupby(key[hit]).sum()
                out.update({k: int(v) for k, v in sums.items()})
        return out

    def neighbours(self, grid: str) -> pd.DataFrame:
        """Grids sharing an edge with ``grid``: code, district, shared unit edges, households.

        Sorted by shared edges (most first); a planner's merge and move partners.
        """
        code = str(self._grid(grid).name)
        members = np.flatnonzero(self.workload == code)
        counts: dict[str, int] = {}
        for p in members.tolist():
            for n in self._units.graph.neighbors(p):
                other = self.workload[n]
                if other != code:
                    counts[other] = counts.get(other, 0) + 1
        out = pd.DataFrame(
            {"code": list(counts), "shared_edges": list(counts.values())},
            columns=["code", "shared_edges"],
        )
        out["parent_code"] = self.grid_table["parent_code"].reindex(out["code"]).to_numpy()
        out["households"] = out["code"].map(self.households_of(out["code"])).astype(np.int64)
        return out.sort_values(["shared_edges", "code"], ascending=[False, True], ignore_index=True)

    def border_units(self, grid: str, other: str) -> list[str]:
        """Ids of the units of ``grid`` that share an edge with grid ``other``."""
        code, neighbour = str(self._grid(grid).name), str(self._grid(other).name)
        members = np.flatnonzero(self.workload == code)
        hits = [
            p
            for p in members.tolist()
            if any(self.workload[n] == neighbour for n in self._units.graph.neighbors(p))
        ]
        return [str(u) for u in self._units.ids[hits]]

    def _geometry(self, codes: list[str], labels: np.ndarray) -> list:
        """Coverage union of each code's units, cached per plan (untouched codes are inherited)."""
        missing = [c for c in codes if c not in self._shapes]
        if missing:
            hit = _isin(labels, missing)
            groups = pd.Series(np.flatnonzero(hit)).groupby(labels[hit]).indices
            positions = np.flatnonzero(hit)
            for code, idx in groups.items():
                self._shapes[code] = shapely.coverage_union_all(self._units.geoms[positions[idx]])
        return [self._shapes.get(c, shapely.Polygon()) for c in codes]

    def to_system(self) -> GridSystem:
        """The plan as a :class:`GridSystem`: fixed upper levels, derived grids and micro-grids.

        The unit layer travels as the source layer ``"units"``, so
        ``Plan.from_system(plan.to_system())`` rebuilds the plan.
        """
        from gridgeo.plan.units import UNIT_LAYER

        district, workload, refinement = _roles(self.config)
        levels = {name: frame.copy() for name, frame in self.frame.items()}
        grids = self.grids.drop(columns=["units", "locked"])
        levels[workload.name] = grids
        if refinement is not None:
            levels[refinement.name] = self.micro_grids.drop(columns=["units"])
        upper = levels[district.name]
        totals = grids.groupby("parent_code")[
            [c for c in ("households", "residents", "workers") if c in grids]
        ].sum()
        for column in totals.columns:
            if column in upper:
                upper[column] = upper["code"].map(totals[column]).fillna(0).astype(np.int64)
        return GridSystem(levels, self.config, {UNIT_LAYER: self.units}, origin="plan")

    # -- history -----------------------------------------------------------------
    @property
    def history(self) -> pd.DataFrame:
        """Every operation: what, when, by whom, households moved, codes touched."""
        rows = [
            {
                "step": k + 1,
                "op": s.op,
                "when": s.when,
                "by": s.by,
                "households_moved": s.households_moved,
                "units_moved": s.units_moved,
                "touched": ", ".join(s.touched),
                "forced": "; ".join(s.breaches),
                "warnings": len(s.warnings),
            }
            for k, s in enumerate(self.steps)
        ]
        columns = [
            "step",
            "op",
            "when",
            "by",
            "households_moved",
            "units_moved",
            "touched",
            "forced",
            "warnings",
        ]
        return pd.DataFrame(rows, columns=columns)

    def crosswalk(self) -> pd.DataFrame:
        """Every code change since the plan was built: ``level, old_code, new_code, step, reason``.

        A split's new grid appears with its source as ``old_code``; a merged
        grid's retired code with the code it joined; a renumbering with every
        code it changed (cascading to micro-grids). Codes that never changed
        are not listed.
        """
        names = {role.value: self.config.role_name(role) for role in Role}
        rows = [
            {
                "level": names.get(role, role),
                "old_code": old,
                "new_code": new,
                "step": k + 1,
                "op": s.op,
                "reason": why,
            }
            for k, s in enumerate(self.steps)
            for role, old, new, why in s.codes
        ]
        return pd.DataFrame(rows, columns=["level", "old_code", "new_code", "step", "op", "reason"])

    def undo(self) -> Plan:
        """The plan before the last operation (:meth:`redo` brings it back)."""
        if self._previous is None:
            raise PlanError("nothing to undo: this plan has no operation in its history.", "undo")
        return replace(self._previous, _undone=(*self._undone, self))

    def redo(self) -> Plan:
        """The plan :meth:`undo` went back from."""
        if not self._undone:
            raise PlanError("nothing to redo: no operation was undone since the last edit.", "redo")
        return replace(self._undone[-1], _previous=self, _undone=self._undone[:-1])

    # -- validation helpers ---------------------------------------------------------
    def _grid(self, code: str, what: str | None = None) -> pd.Series:
        code = str(code)
        what = what or self.config.role(Role.WORKLOAD).label_en
        if code in self.grid_table.index:
            return self.grid_table.loc[code]
        if code in self.retired:
            raise PlanError(
                f"{what} {code} was retired earlier in this plan (merged or renumbered); "
                "see plan.crosswalk() for the code that replaced it.",
                "unknown",
                (code,),
            )
        raise PlanError(
            f"unknown {what} code {code}: this plan has {len(self.grid_table)} grids "
            f"(e.g. {', '.join(self.grid_table.index[:3])}). Use plan.grids to look one up.",
            "unknown",
            (code,),
        )

    def _unit_positions(self, units: Iterable[str] | str) -> np.ndarray:
        if isinstance(units, str):
            units = [units]
        ids = [str(u) for u in units]
        unknown = [u for u in ids if u not in self._units.position]
        if unknown:
            raise PlanError(
                f"unknown unit id(s) {unknown[:5]}: the plan's units are "
                f"{self._units.ids[0]} … {self._units.ids[-1]}; see plan.units.",
                "unknown",
                tuple(unknown[:5]),
            )
        if not ids:
            raise PlanError("no units given: pass the unit ids to move.", "unknown")
        return np.array([self._units.position[u] for u in ids], dtype=np.int64)

    # -- operations ----------------------------------------------------------------
    def move(
        self,
        units: Iterable[str] | str,
        to: str,
        *,
        force: bool = False,
        by: str | None = None,
    ) -> Plan:
        """Give ``units`` to the grid (or micro-grid) ``to``.

        When ``to`` is a grid that is refined, each unit joins the target's
        micro-grid it shares most edges with. Units keep their district: a
        unit of another district cannot join ``to`` (a grid never crosses its
        district).

        >>> from gridgeo import load_demo
        >>> plan = Plan.from_system(load_demo(units=True))
        >>> unit = plan.units.query("grid_code == '150823101002'").unit_id.iloc[0]
        >>> plan.move([unit], to="150823101002").steps[-1].units_moved
        0
        """
        positions = self._unit_positions(units)
        target = str(to)
        if target in self.micro_table.index:
            grid = str(self.micro_table.loc[target, "parent_code"])
            micro = target
        else:
            grid = str(self._grid(target).name)
            micro = None
        work = self.workload.copy()
        fine = self.refinement.copy()
        moving = positions[
            (work[positions] != grid) | ((micro is not None) & (fine[positions] != micro))
        ]
        sources = sorted(set(work[moving]))
        old_micros = sorted(set(fine[moving]) - {""})
        work[moving] = grid
        if micro is not None:
            fine[moving] = micro
        else:
            refined = (self.workload == grid) & (self.refinement != "")
            if refined.any():
                fine[moving] = self._nearest_micro(moving, grid)
            else:
                fine[moving] = ""
        touched = sorted({grid, *sources})
        micros_touched = sorted(
            set(old_micros) | ({micro} if micro else set()) | set(fine[moving]) - {""}
        )
        step = self._step(
            "move",
            {"units": [str(u) for u in self._units.ids[positions]], "to": target},
            by,
            moved=moving,
            touched=touched,
        )
        micros = self.micro_table.drop(index=[m for m in old_micros if not (fine == m).any()])
        codes = tuple(
            ("refinement", m, "", "emptied by the move")
            for m in old_micros
            if m not in micros.index
        )
        return self._next(
            step, work, fine, self.grid_table, micros, touched, micros_touched, force, codes
        )

    def reassign(
        self,
        assignment: pd.DataFrame,
        *,
        grids: pd.DataFrame | None = None,
        op: str = "reassign",
        force: bool = False,
        by: str | None = None,
    ) -> Plan:
        """Apply a whole table of unit → grid (→ micro-grid) codes, validated like an edit.

        What :func:`~gridgeo.plan.exchange.import_plan` uses after a planner
        edited codes in desktop GIS. ``assignment`` has ``unit_id`` and the
        workload level's code column (and the refinement's, when refined).
        A code the plan does not have becomes a new grid (attributes from
        ``grids`` when it has a row for it); it must extend its units'
        district code and must not be retired. Grids left with no units are
        retired.
        """
        district, workload, refinement = _roles(self.config)
        table = assignment.copy()
        table["unit_id"] = table["unit_id"].astype(str)
        positions = self._unit_positions(table["unit_id"].tolist())
        work = self.workload.copy()
        fine = self.refinement.copy()
        work[positions] = as_text(table[workload.code_column], missing="").to_numpy(dtype=object)
        if refinement is not None and refinement.code_column in table:
            fine[positions] = as_text(table[refinement.code_column], missing="").to_numpy(
                dtype=object
            )
        grid_table = self.grid_table.copy()
        micro_table = self.micro_table.copy()
        prefix = district.code_length
        extra = grids.set_index(grids["code"].astype(str)) if grids is not None else None
        for code in sorted(set(work) - set(grid_table.index)):
            units_here = np.flatnonzero(work == code)
            home = self._units.district[units_here[0]]
            if code in self.retired:
                raise PlanError(
                    f"grid code {code} (unit {self._units.ids[units_here[0]]}) was retired in this "
                    "plan's lineage and is never reused; give those units a new code.",
                    "unknown",
                    (code,),
                )
            if (
                len(code) != workload.code_width
                or not code.isdigit()
                or code[:prefix] != home[:prefix]
            ):
                raise PlanError(
                    f"grid code {code!r} (unit {self._units.ids[units_here[0]]}) is not a "
                    f"{workload.code_width}-digit code of district {home}: a new grid's code is its "
                    f"district's code plus {workload.code_digits} digits.",
                    "unknown",
                    (code,),
                )
            row = {"parent_code": home, "name": code, "locked": False}
            if extra is not None and code in extra.index:
                row.update(
                    {
                        k: v
                        for k, v in extra.loc[code].items()
                        if k in grid_table.columns and k != "code"
                    }
                )
            grid_table = _with_row(grid_table, code, row)
        for code in sorted(set(fine) - set(micro_table.index) - {""}):
            parent = work[np.flatnonzero(fine == code)[0]]
            micro_table = _with_row(micro_table, code, {"parent_code": parent, "name": code})
        gone = sorted(set(grid_table.index) - set(work))
        gone_micro = sorted(set(micro_table.index) - set(fine))
        moved = np.flatnonzero((work != self.workload) | (fine != self.refinement))
        touched = sorted(set(self.workload[moved]) | set(work[moved]))
        grid_table = grid_table.drop(index=gone)
        micro_table = micro_table.drop(index=gone_micro)
        codes = tuple(("workload", c, "", f"no units left after {op}") for c in gone)
        codes += tuple(("refinement", c, "", f"no units left after {op}") for c in gone_micro)
        step = self._step(op, {"units": len(moved)}, by, moved=moved, touched=touched)
        micros_touched = sorted(set(fine[moved]) | set(self.refinement[moved]) - {""})
        return self._next(
            step,
            work,
            fine,
            grid_table,
            micro_table,
            [t for t in touched if t not in gone],
            [m for m in micros_touched if m and m not in gone_micro],
            force,
            codes,
            retire=gone + gone_micro,
        )

    def _nearest_micro(self, moving: np.ndarray, grid: str) -> np.ndarray:
        """For each moving unit, the micro-grid of ``grid`` it shares most edges with."""
        graph = self._units.graph
        inside = set(np.flatnonzero(self.workload == grid).tolist())
        out = np.empty(len(moving), dtype=object)
        pending = list(range(len(moving)))
        chosen: dict[int, str] = {}
        # breadth-first: a unit far from the target takes its neighbour's choice
        for _ in range(len(moving) + 1):
            left = []
            for k in pending:
                votes: dict[str, int] = {}
                for n in graph.neighbors(int(moving[k])):
                    m = self.refinement[n] if n in inside else chosen.get(n)
                    if m:
                        votes[m] = votes.get(m, 0) + 1
                if votes:
                    best = max(sorted(votes), key=votes.get)
                    out[k] = best
                    chosen[int(moving[k])] = best
                else:
                    left.append(k)
            if not left or len(left) == len(pending):
                pending = left
                break
            pending = left
        if pending:
            first = sorted(set(self.refinement[list(inside)]) - {""})[0]
            out[pending] = first
        return out

    def split(
        self,
        grid: str,
        parts: int = 2,
        *,
        line: Any = None,
        force: bool = False,
        by: str | None = None,
    ) -> Plan:
        """Split ``grid`` into ``parts`` contiguous grids balanced by households, or along ``line``.

        The part with the most households keeps the code, name and leader;
        the others take the next free codes of the district, named after the
        grid with a suffix. Workers are shared by households (at least one
        each). A refined grid is split along its micro-grids, which move
        whole (their codes follow their new grid).

        ``line`` (a LineString in the plan's CRS, as a planner drew it) cuts
        the grid's polygon; each unit (or micro-grid) goes to the piece
        holding most of its area, so the cut snaps to unit edges.
        """
        row = self._grid(grid)
        code = str(row.name)
        members = np.flatnonzero(self.workload == code)
        refined = bool((self.refinement[members] != "").any())
        atoms = self.refinement[members] if refined else members.astype(str)
        groups = pd.Series(members).groupby(atoms).apply(np.asarray).to_dict()
        if line is not None:
            labels = self._split_by_line(code, groups, line)
        else:
            if parts < 2:
                raise PlanError(
                    f"split of grid {code}: parts={parts}; a split makes at least 2 grids.",
                    "empty",
                    (code,),
                )
            if len(groups) < parts:
                raise PlanError(
                    f"grid {code} has {len(groups)} {'micro-grids' if refined else 'units'}, too few "
                    f"for {parts} parts. Split it into fewer parts, or dissolve its micro-grids first.",
                    "empty",
                    (code,),
                )
            labels = self._split_balanced(groups, parts)
        # the part with the most households keeps the code
        hh = [
            int(self._units.households[np.concatenate([groups[a] for a in part])].sum())
            for part in labels
        ]
        order = sorted(range(len(labels)), key=lambda k: -hh[k])
        work = self.workload.copy()
        fine = self.refinement.copy()
        grids = self.grid_table.copy()
        micros = self.micro_table.copy()
        taken = set(grids.index) | set(self.retired)
        codes = []
        new_codes = [code]
        workers = (
            _share(int(row.get("workers", 0) or 0), [hh[k] for k in order])
            if "workers" in grids
            else None
        )
        for rank, k in enumerate(order[1:], start=1):
            new = _next_code(row["parent_code"], self._digits("workload"), taken, self.config)
            taken.add(new)
            new_codes.append(new)
            attrs = row.copy()
            attrs["name"] = f"{row['name']}-{rank + 1}" if row["name"] else new
            for column in ("leader",):
                if column in attrs:
                    attrs[column] = ""
            attrs["locked"] = False
            grids.loc[new] = attrs
            codes.append(("workload", code, new, f"split from {code}"))
            for atom in labels[k]:
                pos = groups[atom]
                work[pos] = new
            if refined:
                for atom in labels[k]:
                    renamed = new + str(atom)[len(code) :]
                    fine[groups[atom]] = renamed
                    micros.loc[renamed] = micros.loc[atom]
                    micros.loc[renamed, "parent_code"] = new
                    micros = micros.drop(index=atom)
                    codes.append(("refinement", str(atom), renamed, f"its grid {code} was split"))
        if workers is not None:
            for c, w in zip(new_codes, workers, strict=True):
                grids.loc[c, "workers"] = w
        step = self._step(
            "split",
            {
                "code": code,
                "parts": len(labels),
                "line": None if line is None else shapely.to_wkt(line),
            },
            by,
            moved=np.flatnonzero(work != self.workload),
            touched=sorted(new_codes),
        )
        return self._next(
            step,
            work,
            fine,
            grids,
            micros,
            new_codes,
            sorted(set(fine[members]) - {""}),
            force,
            tuple(codes),
        )

    def _split_balanced(self, groups: dict, parts: int) -> list[list]:
        atoms = list(groups)
        graph = self._atom_graph(groups)
        weight = {a: float(self._units.households[groups[a]].sum()) for a in atoms}
        if sum(weight.values()) == 0:
            weight = {a: float(self._units.area[groups[a]].sum()) for a in atoms}
        xy = {a: tuple(self._units.xy[groups[a]].mean(axis=0)) for a in atoms}
        if not nx.is_connected(graph):
            raise PlanError(
                f"grid {next(iter(self.workload[groups[atoms[0]]]))} is not contiguous, so it "
                "cannot be split into balanced contiguous parts; move its detached units first.",
                "contiguity",
            )
        return [sorted(p) for p in partition(graph, weight, xy, parts)]

    def _atom_graph(self, groups: dict) -> nx.Graph:
        owner = {}
        for atom, pos in groups.items():
            for p in pos.tolist():
                owner[p] = atom
        graph = nx.Graph()
        graph.add_nodes_from(groups)
        for p, atom in owner.items():
            for n in self._units.graph.neighbors(p):
                other = owner.get(n)
                if other is not None and other != atom:
                    graph.add_edge(atom, other)
        return graph

    def _split_by_line(self, code: str, groups: dict, line: Any) -> list[list]:
        polygon = self._geometry([code], self.workload)[0]
        pieces = _cut_polygon(polygon, line)
        if len(pieces) < 2:
            raise PlanError(
                f"the line does not cut grid {code} in two: draw it across the grid, from "
                "outside its edge to outside the opposite edge.",
                "empty",
                (code,),
            )
        atoms = list(groups)
        shapes = [
            shapely.union_all(self._units.geoms[groups[a]])
            if len(groups[a]) > 1
            else self._units.geoms[groups[a][0]]
            for a in atoms
        ]
        area = np.array(
            [[shapely.area(shapely.intersection(s, p)) for p in pieces] for s in shapes]
        )
        side = area.argmax(axis=1)
        labels = [
            [a for a, s in zip(atoms, side, strict=True) if s == k] for k in range(len(pieces))
        ]
        labels = [part for part in labels if part]
        if len(labels) < 2:
            raise PlanError(
                f"the line cuts grid {code} but every unit lies mostly on one side: draw it "
                "along the unit edges where the grid should divide.",
                "empty",
                (code,),
            )
        return labels

    def merge(self, grids: Iterable[str], *, force: bool = False, by: str | None = None) -> Plan:
        """Merge ``grids`` (of one district) into one grid, which keeps the lowest code.

        The others' codes are retired; workers add up. If some of the grids
        are refined, the merged grid is refined: their micro-grids are
        renumbered under the kept code and each unrefined grid becomes one
        micro-grid.
        """
        codes_in = sorted({str(self._grid(c).name) for c in grids})
        if len(codes_in) < 2:
            raise PlanError(
                f"merge needs at least two different grids, got {codes_in}.",
                "unknown",
                tuple(codes_in),
            )
        keep, others = codes_in[0], codes_in[1:]
        work = self.workload.copy()
        fine = self.refinement.copy()
        table = self.grid_table.copy()
        micros = self.micro_table.copy()
        changes = []
        refined = {
            c: bool(((self.workload == c) & (self.refinement != "")).any()) for c in codes_in
        }
        any_refined = any(refined.values())
        taken = set(micros.index) | set(self.retired)
        digits = self._digits("refinement") if any_refined else 0
        for code in codes_in:
            members = np.flatnonzero(self.workload == code)
            if any_refined and not refined[code]:
                new = _next_code(keep, digits, taken, self.config)
                taken.add(new)
                fine[members] = new
                name = self.grid_table.loc[code, "name"]
                micros = _with_row(micros, new, {"parent_code": keep, "name": name})
                changes.append(
                    ("refinement", code, new, f"grid {code} became a micro-grid of {keep}")
                )
            elif code != keep and refined[code]:
                for old in sorted(set(self.refinement[members]) - {""}):
                    new = _next_code(keep, digits, taken, self.config)
                    taken.add(new)
                    fine[members[self.refinement[members] == old]] = new
                    micros.loc[new] = micros.loc[old]
                    micros.loc[new, "parent_code"] = keep
                    micros = micros.drop(index=old)
                    changes.append(("refinement", old, new, f"its grid {code} merged into {keep}"))
            work[members] = keep
        if "workers" in table:
            table.loc[keep, "workers"] = int(table.loc[codes_in, "workers"].sum())
        table = table.drop(index=others)
        changes += [("workload", c, keep, f"merged into {keep}") for c in others]
        step = self._step(
            "merge",
            {"grids": codes_in},
            by,
            moved=np.flatnonzero(work != self.workload),
            touched=codes_in,
        )
        return self._next(
            step,
            work,
            fine,
            table,
            micros,
            [keep, *others],
            sorted(set(fine[work == keep]) - {""}),
            force,
            tuple(changes),
            retire=others,
        )

    def refine(
        self, grid: str, parts: int = 2, *, force: bool = False, by: str | None = None
    ) -> Plan:
        """Refine ``grid`` into ``parts`` contiguous micro-grids balanced by households."""
        code = str(self._grid(grid).name)
        refinement = _roles(self.config)[2]
        if refinement is None:
            raise PlanError(
                f"this configuration has no refinement level, so grid {code} cannot be refined.",
                "refinement",
                (code,),
            )
        members = np.flatnonzero(self.workload == code)
        if (self.refinement[members] != "").any():
            raise PlanError(
                f"grid {code} is already refined; dissolve_micro({code!r}) first, then refine it again.",
                "refinement",
                (code,),
            )
        if len(members) < parts:
            raise PlanError(
                f"grid {code} has {len(members)} units, too few for {parts} micro-grids.",
                "empty",
                (code,),
            )
        groups = {str(p): np.array([p]) for p in members}
        labels = self._split_balanced(groups, parts)
        # reading order of the parts (north→south, west→east) gives their sequence numbers
        centre = np.array([self._units.xy[[int(a) for a in part]].mean(axis=0) for part in labels])
        rank = reading_order(gpd.GeoSeries(shapely.points(centre)), pd.Series(["x"] * len(labels)))
        fine = self.refinement.copy()
        micros = self.micro_table.copy()
        taken = set(micros.index) | set(self.retired)
        name = self.grid_table.loc[code, "name"]
        changes = []
        for k in np.argsort(rank):
            new = _next_code(code, self._digits("refinement"), taken, self.config)
            taken.add(new)
            fine[[int(a) for a in labels[k]]] = new
            micros = _with_row(
                micros,
                new,
                {"parent_code": code, "name": f"{name}第{len(changes) + 1}{refinement.label_zh}"},
            )
            changes.append(("refinement", "", new, f"refines {code}"))
        step = self._step(
            "refine",
            {"code": code, "parts": parts},
            by,
            moved=np.array([], dtype=np.int64),
            touched=[code],
        )
        return self._next(
            step,
            self.workload,
            fine,
            self.grid_table,
            micros,
            [code],
            [c for _, _, c, _ in changes],
            force,
            tuple(changes),
        )

    def dissolve_micro(self, grid: str, *, force: bool = False, by: str | None = None) -> Plan:
        """Remove the micro-grids of ``grid`` (their codes are retired)."""
        code = str(self._grid(grid).name)
        members = np.flatnonzero(self.workload == code)
        old = sorted(set(self.refinement[members]) - {""})
        if not old:
            raise PlanError(f"grid {code} has no micro-grids to dissolve.", "refinement", (code,))
        fine = self.refinement.copy()
        fine[members] = ""
        micros = self.micro_table.drop(index=old)
        changes = tuple(("refinement", m, "", f"dissolved into {code}") for m in old)
        step = self._step(
            "dissolve_micro", {"code": code}, by, moved=np.array([], dtype=np.int64), touched=[code]
        )
        return self._next(
            step,
            self.workload,
            fine,
            self.grid_table,
            micros,
            [code],
            [],
            force,
            changes,
            retire=old,
        )

    def set(
        self, grid: str, *, force: bool = False, by: str | None = None, **attributes: Any
    ) -> Plan:
        """Set attributes (``name``, ``leader``, ``workers``, …) of a grid or micro-grid."""
        code = str(grid)
        protected = {"code", "parent_code", "locked", *_DERIVED}
        bad = sorted(set(attributes) & protected)
        if bad:
            raise PlanError(
                f"set() cannot change {bad} of {code}: codes change through split/merge/renumber, "
                "locks through lock()/unlock(), households through the units.",
                "unknown",
                (code,),
            )
        if "workers" in attributes and int(attributes["workers"]) < 1:
            raise PlanError(
                f"grid {code}: workers={attributes['workers']}; every grid has at least one "
                "worker, its grid leader (网格长).",
                "workers",
                (code,),
            )
        if code in self.micro_table.index:
            micros = self.micro_table.copy()
            for key, value in attributes.items():
                micros.loc[code, key] = value
            grids, touched = self.grid_table, [str(self.micro_table.loc[code, "parent_code"])]
        else:
            code = str(self._grid(code).name)
            grids = self.grid_table.copy()
            for key, value in attributes.items():
                if key not in grids:
                    grids[key] = pd.Series(dtype=object)
                grids.loc[code, key] = value
            micros, touched = self.micro_table, [code]
        step = self._step(
            "set",
            {"code": code, **{k: _plain(v) for k, v in attributes.items()}},
            by,
            moved=np.array([], dtype=np.int64),
            touched=touched,
        )
        return self._next(
            step, self.workload, self.refinement, grids, micros, touched, [], force, ()
        )

    def set_many(
        self,
        values: pd.DataFrame,
        *,
        op: str = "set",
        force: bool = False,
        by: str | None = None,
    ) -> Plan:
        """Set attributes of many grids in one step (``values``: indexed by code, one column each).

        What :func:`~gridgeo.plan.rebalance.apportion_workers` uses to record
        one step for a whole apportionment. The rules of :meth:`set` hold.
        """
        codes = [str(self._grid(c).name) for c in values.index]
        protected = {"code", "parent_code", "locked", *_DERIVED}
        bad = sorted(set(values.columns) & protected)
        if bad:
            raise PlanError(
                f"set_many() cannot change {bad}; see set().", "unknown", tuple(codes[:3])
            )
        if "workers" in values and (values["workers"].astype(int) < 1).any():
            low = values.index[values["workers"].astype(int) < 1][0]
            raise PlanError(
                f"grid {low}: workers={values.loc[low, 'workers']}; every grid has at least one "
                "worker, its grid leader (网格长).",
                "workers",
                (str(low),),
            )
        grids = self.grid_table.copy()
        for column in values.columns:
            if column not in grids:
                grids[column] = pd.Series(dtype=object)
            grids.loc[codes, column] = values[column].to_numpy()
        step = self._step(
            op,
            {"codes": codes, "columns": [str(c) for c in values.columns]},
            by,
            moved=np.array([], dtype=np.int64),
            touched=codes,
        )
        return self._next(
            step, self.workload, self.refinement, grids, self.micro_table, codes, [], force, ()
        )

    def lock(self, grids: Iterable[str] | str, *, by: str | None = None) -> Plan:
        """Lock grids: later operations that change them are refused (unless forced)."""
        return self._locking(grids, True, by)

    def unlock(self, grids: Iterable[str] | str, *, by: str | None = None) -> Plan:
        """Unlock grids locked by :meth:`lock`."""
        return self._locking(grids, False, by)

    def _locking(self, grids, value: bool, by) -> Plan:
        codes = [str(self._grid(c).name) for c in ([grids] if isinstance(grids, str) else grids)]
        table = self.grid_table.copy()
        table.loc[codes, "locked"] = value
        step = self._step(
            "lock" if value else "unlock",
            {"grids": codes},
            by,
            moved=np.array([], dtype=np.int64),
            touched=codes,
        )
        return self._chain(step, self.workload, self.refinement, table, self.micro_table, codes, ())

    def renumber(self, *, by: str | None = None) -> Plan:
        """Renumber every grid (and micro-grid) in reading order: north→south, west→east.

        The one step that changes codes of unchanged grids; its old → new
        table is in :meth:`crosswalk`, cascading to micro-grids and units.
        """
        grids = self.grids
        digits = self._digits("workload")
        keep = self._prefix_length()
        rank = reading_order(grids.geometry.representative_point(), grids["parent_code"])
        new = [
            p[:keep] + str(r + 1).zfill(digits)
            for p, r in zip(grids["parent_code"], rank, strict=True)
        ]
        mapping = dict(zip(grids["code"], new, strict=True))
        changes = [("workload", o, n, "renumbered") for o, n in mapping.items() if o != n]
        work = pd.Series(self.workload).map(mapping).to_numpy(dtype=object)
        table = self.grid_table.rename(index=mapping)
        micros = self.micro_table.copy()
        fine = self.refinement.copy()
        if len(micros):
            m = self.micro_grids
            parent = m["parent_code"].map(mapping)
            mrank = reading_order(m.geometry.representative_point(), parent)
            mdigits = self._digits("refinement")
            mnew = [p + str(r + 1).zfill(mdigits) for p, r in zip(parent, mrank, strict=True)]
            mmap = dict(zip(m["code"], mnew, strict=True))
            changes += [("refinement", o, n, "renumbered") for o, n in mmap.items() if o != n]
            micros = micros.rename(index=mmap)
            micros["parent_code"] = micros["parent_code"].map(mapping)
            fine = pd.Series(fine).map(lambda c: mmap.get(c, c)).to_numpy(dtype=object)
        step = self._step("renumber", {}, by, moved=np.array([], dtype=np.int64), touched=[])
        plan = self._chain(
            step, work, fine, table.sort_index(), micros.sort_index(), [], tuple(changes)
        )
        plan._shapes.clear()
        return plan

    # -- machinery -------------------------------------------------------------------
    def _digits(self, role: str) -> int:
        level = self.config.role(role)
        return level.code_digits

    def _prefix_length(self) -> int:
        return self.config.role(Role.DISTRICT).code_length

    def _step(self, op: str, params: dict, by: str | None, *, moved: np.ndarray, touched) -> Step:
        return Step(
            op=op,
            params=params,
            when=_now(),
            by=by or self.author,
            households_moved=int(self._units.households[moved].sum()) if len(moved) else 0,
            units_moved=len(moved),
            touched=tuple(touched),
        )

    def _next(
        self, step, work, fine, grids, micros, touched, micros_touched, force, codes, retire=()
    ) -> Plan:
        """Validate what an operation touched, then chain the new plan (or refuse)."""
        touched = [c for c in dict.fromkeys(touched)]
        breaches = _locked(self.grid_table, touched)
        candidate = self._chain(step, work, fine, grids, micros, touched, codes, retire=retire)
        breaches += candidate._breaches(
            [c for c in touched if c in grids.index], micros_touched, self
        )
        if breaches and not force:
            first = breaches[0]
            more = f" ({len(breaches) - 1} more rule(s) broken)" if len(breaches) > 1 else ""
            raise PlanError(
                first[2]
                + more
                + " The plan is unchanged; pass force=True to record the breach instead.",
                first[0],
                first[1],
            )
        notes = candidate.norm_warnings([c for c in touched if c in grids.index])
        for text in notes:
            warnings.warn(text, PlanWarning, stacklevel=3)
        candidate.steps = (
            *self.steps,
            replace(
                step,
                codes=tuple(codes),
                breaches=tuple(b[2] for b in breaches),
                warnings=tuple(notes),
            ),
        )
        return candidate

    def _chain(self, step, work, fine, grids, micros, touched, codes, retire=()) -> Plan:
        # polygons of untouched grids and micro-grids are inherited, never recomputed
        stale = set(touched) | set(fine[_isin(work, touched)])
        alive = set(grids.index) | set(micros.index)
        shapes = {k: v for k, v in self._shapes.items() if k not in stale and k in alive}
        return Plan(
            config=self.config,
            frame=self.frame,
            _units=self._units,
            workload=work,
            refinement=fine,
            grid_table=grids,
            micro_table=micros,
            steps=(*self.steps, replace(step, codes=tuple(codes))),
            retired=self.retired
            | frozenset(retire)
            | frozenset(o for _, o, n, _ in codes if o and not n),
            author=self.author,
            _previous=self,
            _undone=(),
            _shapes=shapes,
        )

    def _breaches(self, grids: list[str], micros: list[str], before: Plan) -> list[tuple]:
        out = []
        graph = self._units.graph
        for code in grids:
            members = np.flatnonzero(self.workload == code)
            if len(members) == 0:
                out.append(
                    (
                        "empty",
                        (code,),
                        f"grid {code} would have no units left. Merge it into a neighbour instead of emptying it.",
                    )
                )
                continue
            district = str(self.grid_table.loc[code, "parent_code"])
            away = members[self._units.district[members] != district]
            if len(away):
                out.append(
                    (
                        "district",
                        (code,),
                        f"grid {code} would take unit(s) {', '.join(self._units.ids[away[:3]])} of district "
                        f"{self._units.district[away[0]]}; a grid never crosses its district ({district}). "
                        "Give the units to a grid of their own district.",
                    )
                )
            if not nx.is_connected(graph.subgraph(members.tolist())):
                pieces = list(nx.connected_components(graph.subgraph(members.tolist())))
                small = min(pieces, key=len)
                out.append(
                    (
                        "contiguity",
                        (code,),
                        f"grid {code} would fall apart into {len(pieces)} pieces (the smallest: "
                        f"{len(small)} unit(s), e.g. {self._units.ids[min(small)]}). Move the detached "
                        "units to a neighbouring grid too, or choose units along the shared edge.",
                    )
                )
            fine = self.refinement[members]
            if (fine != "").any() and (fine == "").any():
                out.append(
                    (
                        "refinement",
                        (code,),
                        f"grid {code} would be partly refined ({int((fine == '').sum())} unit(s) in no "
                        "micro-grid); a refined grid is covered by its micro-grids. Move the units into "
                        "one of its micro-grids.",
                    )
                )
        for code in micros:
            members = np.flatnonzero(self.refinement == code)
            if len(members) == 0:
                continue
            parents = set(self.workload[members])
            expected = (
                str(self.micro_table.loc[code, "parent_code"])
                if code in self.micro_table.index
                else None
            )
            if len(parents) > 1 or (expected is not None and parents != {expected}):
                out.append(
                    (
                        "refinement",
                        (code,),
                        f"micro-grid {code} would cross its grid ({sorted(parents)}). Move whole micro-grids, or move the units into the target grid's micro-grids.",
                    )
                )
            if not nx.is_connected(graph.subgraph(members.tolist())):
                out.append(
                    (
                        "contiguity",
                        (code,),
                        f"micro-grid {code} would fall apart. Move the detached units to a neighbouring micro-grid too.",
                    )
                )
        return out

    def norm_warnings(self, codes: Iterable[str] | None = None) -> list[str]:
        """The norms (:attr:`GridConfig.norms <gridgeo.config.GridConfig>`) these grids break, in words."""
        table = (
            self.grid_table
            if codes is None
            else self.grid_table.loc[[c for c in codes if c in self.grid_table.index]]
        )
        if table.empty:
            return []
        # sum over the units of these grids only: an edit checks two or three grids
        hit = _isin(self.workload, table.index)
        frame = pd.DataFrame(
            {"households": self._units.households[hit], "residents": self._units.residents[hit]}
        )
        totals = frame.groupby(self.workload[hit]).sum().reindex(table.index, fill_value=0)
        out = []
        for norm in self.config.norms:
            hit = norm.applies(table)
            for code in table.index[hit]:
                hh = int(totals.loc[code, "households"])
                res = int(totals.loc[code, "residents"])
                if norm.households_min is not None and hh < norm.households_min:
                    out.append(
                        f"grid {code}: {hh} households, below the {norm.name} norm of {norm.households_min}–{norm.households_max or '…'}."
                    )
                if norm.households_max is not None and hh > norm.households_max:
                    out.append(
                        f"grid {code}: {hh} households, above the {norm.name} norm of {norm.households_min or 0}–{norm.households_max}."
                    )
                if norm.residents_max is not None and res > norm.residents_max:
                    out.append(
                        f"grid {code}: {res} residents, above the {norm.name} norm of {norm.residents_max}."
                    )
                if norm.per_worker_max is not None and "workers" in table:
                    workers = max(int(table.loc[code, "workers"] or 0), 1)
                    if hh / workers > norm.per_worker_max:
                        out.append(
                            f"grid {code}: {hh / workers:.0f} households per worker, above the {norm.name} norm of {norm.per_worker_max:g}."
                        )
        return out

    # -- records -----------------------------------------------------------------------
    def to_record(self) -> PlanRecord:
        """This plan as tables (:class:`~gridgeo.plan.record.PlanRecord`), for a store."""
        assignment = pd.DataFrame(
            dict(
                zip(
                    ASSIGNMENT_COLUMNS,
                    (self._units.ids, self.workload, self.refinement),
                    strict=True,
                )
            )
        )
        return PlanRecord(
            config_toml=self.config.to_toml(),
            frame={k: v.copy() for k, v in self.frame.items()},
            units=self._units.frame.copy(),
            assignment=assignment,
            grids=self.grid_table.reset_index(),
            micros=self.micro_table.reset_index(),
            history=[s.to_dict() for s in self.steps],
            retired=sorted(self.retired),
        )

    @classmethod
    def from_record(cls, record: PlanRecord, *, author: str | None = None) -> Plan:
        """Rebuild a plan from :meth:`to_record`'s tables (its history included, no undo)."""
        config = GridConfig.from_toml_text(record.config_toml)
        units = record.units.reset_index(drop=True)
        metric = _metric_crs(config, record.frame)
        shared = _Units.build(units, metric)
        assignment = record.assignment.set_index("unit_id").reindex(shared.ids)
        grids = record.grids.set_index("code")
        grids.index = grids.index.astype(str)
        micros = record.micros.set_index("code") if "code" in record.micros else record.micros
        micros.index = micros.index.astype(str)
        micros.index.name = "code"
        grids["locked"] = grids["locked"].astype(bool)
        return cls(
            config=config,
            frame={k: v.copy() for k, v in record.frame.items()},
            _units=shared,
            workload=assignment["workload"].astype(str).to_numpy(dtype=object),
            refinement=assignment["refinement"].fillna("").astype(str).to_numpy(dtype=object),
            grid_table=grids,
            micro_table=micros,
            steps=tuple(Step.from_dict(s) for s in record.history),
            retired=frozenset(record.retired),
            author=author or _default_author(),
        )


# -- helpers -------------------------------------------------------------------------
def _isin(values: np.ndarray, codes: Iterable[str]) -> np.ndarray:
    """``np.isin`` for arrays of code strings, by hashing (numpy sorts objects: 50× slower)."""
    return pd.Series(values, copy=False).isin(list(codes)).to_numpy()


def _roles(config: GridConfig):
    district = config.role(Role.DISTRICT)
    workload = config.role(Role.WORKLOAD)
    if district is None or workload is None:
        raise PlanError(
            "this configuration has no workload level with a district above it: a plan "
            "needs both roles (see [roles] in the configuration).",
            "unknown",
        )
    return district, workload, config.role(Role.REFINEMENT)


def _attributes(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """A level's attribute table: code index, no geometry, no derived totals."""
    out = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    out = out.drop(columns=[c for c in ("households", "residents") if c in out])
    out["code"] = out["code"].astype(str)
    return out.set_index("code")


def _with_row(table: pd.DataFrame, code: str, row: Mapping[str, Any]) -> pd.DataFrame:
    """``table`` with the row ``code`` set from ``row`` (text columns kept as text)."""
    out = table.copy()
    for column, value in row.items():
        if column not in out:
            out[column] = pd.Series(dtype=object)
        elif isinstance(value, str) and out[column].dtype != object:
            out[column] = out[column].astype(object)
    out.loc[code] = pd.Series(dict(row), dtype=object)
    return out


def _locked(table: pd.DataFrame, codes: list[str]) -> list[tuple]:
    if "locked" not in table:
        return []
    hit = [c for c in codes if c in table.index and bool(table.loc[c, "locked"])]
    return [
        (
            "locked",
            (c,),
            f"grid {c} is locked; unlock({c!r}) it first, or leave it out of the edit.",
        )
        for c in hit
    ]


def _next_code(parent: str, digits: int, taken: set[str], config: GridConfig) -> str:
    """The next free code under ``parent``: one above the highest ever used there.

    Never fills a hole, since a hole may be a code retired before this plan.
    """
    prefix = str(parent)
    district = config.role(Role.DISTRICT)
    if district is not None and len(prefix) == district.code_width:
        prefix = prefix[: district.code_length]
    used = [
        int(c[len(prefix) :])
        for c in taken
        if c.startswith(prefix) and len(c) == len(prefix) + digits and c[len(prefix) :].isdigit()
    ]
    seq = max(used, default=0) + 1
    if seq >= 10**digits:
        raise CodeError(
            f"no free code left under {parent}: {digits} digits are used up. Renumber the "
            "district (plan.renumber()) to reuse retired sequence numbers."
        )
    return prefix + str(seq).zfill(digits)


def _share(total: int, weights: list[int]) -> list[int]:
    """``total`` workers shared by ``weights`` (largest remainder), at least one each."""
    n = len(weights)
    total = max(total, n)
    w = np.asarray(weights, dtype=float)
    w = w if w.sum() > 0 else np.ones(n)
    raw = 1 + (total - n) * w / w.sum()
    out = np.floor(raw).astype(int)
    rest = total - out.sum()
    out[np.argsort(-(raw - out), kind="stable")[:rest]] += 1
    return out.tolist()


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _cut_polygon(polygon, line) -> list:
    """Pieces of ``polygon`` cut by ``line`` (polygonize the noded boundary and line)."""
    edges = shapely.union(shapely.boundary(polygon), line)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(edges)))
    inside = faces[shapely.contains(polygon, shapely.point_on_surface(faces))]
    return list(inside)


def _metric_crs(config: GridConfig, frame: Mapping[str, gpd.GeoDataFrame]):
    from gridgeo.crs import metric_crs

    top = next((f for f in frame.values() if len(f)), None)
    return metric_crs(config, top)
