"""Propose a repair of a grid system, review it row by row, apply what is accepted."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gridgeo.check.report import CheckReport
from gridgeo.config import Coverage, Tolerances
from gridgeo.crs import project, project_xy
from gridgeo.errors import GridgeoError, SchemaError, option
from gridgeo.model import GridSystem
from gridgeo.parallel import gc_paused
from gridgeo.repair.codes import Recode, recodes
from gridgeo.repair.geometry import (
    FILLS,
    GAINS,
    LOSES,
    RULES,
    Change,
    compose,
    make_valid,
    repair_level,
)

__all__ = ["AUDIT_COLUMNS", "Proposal", "apply", "propose_repair"]

AUDIT_COLUMNS = (
    "level",
    "kind",
    "defect",
    "defect_codes",
    "action",
    "rule",
    "from_code",
    "to_code",
    "area_m2",
    "width_m",
    "households",
    "params",
    "accepted",
    "status",
    "reason",
    "depends_on",
    "geometry",
)
"""Columns of :attr:`Proposal.audit`, one row per change (index ``row``):

``level``; ``kind``: the defect it answers (``invalid_geometry``, ``overlap``,
``sliver``, ``gap``, ``outside_parent``, ``duplicate_code``, ``orphan``);
``defect``: the row of the check report it answers (-1: none, e.g. a gap that
appears only once the parent is repaired); ``defect_codes``: that row's codes
(or the polygons involved); ``action``: ``make_valid``, ``cut`` (a piece
outside the parent leaves ``from_code``), ``give`` (an overlap piece leaves
``from_code``, ``to_code`` keeps it), ``fill`` (``to_code`` takes an uncovered
piece), ``move`` (rule ``cut_off``: the part of ``from_code`` an overlap piece
would cut off from the rest of it goes to ``to_code`` with the piece; the
``give`` depends on it), ``recode``; ``rule``; ``from_code`` / ``to_code``; ``area_m2``: the
piece's area (for ``make_valid``: the signed area change); ``width_m``: the
defect's width; ``households`` in the piece (NA without points or units);
``params``; ``accepted``: accepted by default (``accept="small"``);
``status``: ``proposed`` or ``refused``; ``reason``: why it is not accepted by
default, or refused; ``depends_on``: rows that must be applied first; and the
piece (for ``recode``: the polygon) in the system's CRS."""


@dataclass
class Proposal:
    """A proposed repair: the audit table, and everything needed to apply any part of it.

    Attributes
    ----------
    audit:
        One row per change (:data:`AUDIT_COLUMNS`), nothing applied yet.
    original:
        The system the proposal was made for (never modified).
    rule, fill:
        The overlap rule and gap fill used (:data:`~gridgeo.repair.RULES`,
        :data:`~gridgeo.repair.FILLS`).
    """

    audit: gpd.GeoDataFrame
    original: GridSystem
    rule: str
    fill: str
    tolerances: Tolerances
    _changes: dict[int, tuple[str, Change | Recode]] = field(default_factory=dict, repr=False)
    _metric: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _final: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _system: GridSystem | None = field(default=None, repr=False)
    _projected: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.audit)

    @property
    def system(self) -> GridSystem:
        """The repaired system with every change applied (``apply(self, "all")``)."""
        if self._system is None:
            self._system = apply(self, "all")
        return self._system

    def summary(self) -> pd.DataFrame:
        """Rows, area and accepted-by-default rows per level, kind and action."""
        a = self.audit
        if a.empty:
            return pd.DataFrame(columns=["rows", "area_m2", "accepted", "refused"])
        table = a.groupby(["level", "kind", "action"], sort=False).agg(
            rows=("kind", "size"),
            area_m2=("area_m2", lambda s: float(np.abs(s).sum())),
            accepted=("accepted", "sum"),
            refused=("status", lambda s: int((s == "refused").sum())),
        )
        return table


@gc_paused()
def propose_repair(
    system: GridSystem,
    report: CheckReport | None = None,
    *,
    rule: str = "longest_border",
    fill: str = "auto",
    households: gpd.GeoDataFrame | None = None,
    tolerances: Tolerances | None = None,
) -> Proposal:
    """Propose the changes that repair ``system``; nothing is applied.

    Level by level, top to bottom, each level repaired inside the repaired
    level above: invalid polygons made valid (polygons only); duplicate codes
    renumbered (the next free code in the parent) and orphans given the parent
    polygon that holds them (their descendants' codes follow); pieces of a
    child outside its parent cut off; each overlap piece kept by one polygon
    (``rule``); each piece of a parent no child covers — slivers, gaps, inlets
    open to the parent's edge — given to the children along it (``fill``).
    See :mod:`gridgeo.repair.geometry` for why each step is what it is.

    Polygons no change touches are left bit-identical. Changes that would
    leave a polygon empty or newly in pieces are refused (``status``); an
    overlap piece either side would be split by losing goes to the rule's
    keeper together with what it cuts off from the loser (a ``move`` row).
    Gaps, overlaps and outside pieces at least ``tolerances.defect`` wide
    (10 m) are proposed but not accepted by default: a person decides.

    Parameters
    ----------
    system:
        The grid system (read with ``strict=False`` if it has code defects).
    report:
        Its :func:`~gridgeo.check.check_system` report, to name the check row
        each change answers (``defect``, ``defect_codes``); optional: the repair
        finds the defects itself, by the same rules.
    rule:
        Who keeps an overlap piece (:data:`~gridgeo.repair.RULES`).
        ``"households"`` needs ``households`` points with a column of the
        level's codes (e.g. ``grid_code`` from :func:`gridgeo.assign.assign`, or
        ``registered_grid``); where none settle it, the longest border does.
    fill:
        How gap pieces are filled (:data:`~gridgeo.repair.FILLS`).
    households:
        Household points (one row each), or a unit layer with a
        ``households`` column: counts in the audit. Default: the system's
        ``units`` source layer, if any.
    tolerances:
        Metre tolerances; the configuration's by default.

    Returns
    -------
    Proposal

    Raises
    ------
    GridgeoError
        An unknown ``rule`` or ``fill``, or ``households`` that is no GeoDataFrame.

    Examples
    --------
    >>> from gridgeo import load_demo
    >>> proposal = propose_repair(load_demo("dirty"))
    >>> proposal.audit.groupby("kind").size().to_dict()  # doctest: +NORMALIZE_WHITESPACE
    {'duplicate_code': 1, 'gap': 4, 'invalid_geometry': 2, 'orphan': 1, 'outside_parent': 1,
     'overlap': 1, 'sliver': 2}
    >>> fixed = apply(proposal, accept="all")
    >>> from gridgeo.check import check_system
    >>> check_system(fixed, dual=False).ok
    True
    """
    _check_options(system, rule, fill, households)
    config = system.config
    tol = tolerances or config.tolerances
    metric = system.metric_crs
    homes = _homes(system, households, metric)
    rows: list[dict] = []
    changes: dict[int, tuple[str, Change | Recode]] = {}
    prepared: dict[str, np.ndarray] = {}
    finals: dict[str, np.ndarray] = {}  # each level repaired (every change not refused)
    codes_now = {n: system[n]["code"].astype(str).to_numpy(dtype=object).copy()
                 for n in config.level_names}  # fmt: skip
    parents_now = {n: system[n]["parent_code"].astype(str).to_numpy(dtype=object).copy()
                   for n in config.level_names}  # fmt: skip
    # Projected as the check projects (long edges densified), so the repair sees
    # the edges the check measures; the added vertices are dropped on the way back.
    metric_geoms = {n: project(system[n].geometry.to_numpy(), system.crs, metric)
                    for n in config.level_names}  # fmt: skip
    points = {n: _inner_points(g) for n, g in metric_geoms.items()}
    mothers = mother_codes = None
    parent_rows: list[int] = []
    for depth, level in enumerate(config.levels):
        name = level.name
        geoms = metric_geoms[name]
        # 1. validity, judged where the user drew the data
        invalid = ~shapely.is_valid(system[name].geometry.to_numpy())
        base = geoms.copy()
        valid_rows: dict[int, int] = {}
        for i in np.flatnonzero(invalid | ~shapely.is_valid(geoms)):
            fixed = make_valid(geoms[i], tol.dust)
            base[i] = fixed
            if not invalid[i]:
                continue  # folded by projection only: mended silently, as the check does
            c = Change("invalid_geometry", "make_valid", "make_valid", int(i), int(i),
                       geoms[i], 0.0, float(shapely.area(fixed) - shapely.area(geoms[i])),
                       {"reason": shapely.is_valid_reason(system[name].geometry.iloc[i])})  # fmt: skip
            valid_rows[int(i)] = _add(rows, changes, name, c, codes_now[name], tol)
        prepared[name] = base
        # 2. codes
        below = [(lv.name, codes_now[lv.name], parents_now[lv.name], points[lv.name])
                 for lv in config.levels[depth + 1 :]]  # fmt: skip
        plen = config.levels[depth - 1].code_length if depth else 0
        code_rows: dict[int, int] = {}
        for r in recodes(level, codes_now[name], parents_now[name], base, mother_codes, mothers,
                         plen, below):  # fmt: skip
            code_rows[r.position] = _add_recode(rows, changes, r, base, tol)
            codes_now[name][r.position] = r.code
            parents_now[name][r.position] = r.parent
            for lv, j, code, parent in r.descendants:
                codes_now[lv][j], parents_now[lv][j] = code, parent
        # 3. geometry against the repaired parent level
        parent_of = _parent_positions(parents_now[name], mother_codes, base, mothers)
        level_changes, final = repair_level(
            base, parent_of, mothers, level.coverage if depth else Coverage.ROOT, tol,
            codes=codes_now[name], rule=rule, fill=fill,
            votes=_votes(homes, level), homes=None if homes is None else homes.geometry.to_numpy(),
        )  # fmt: skip
        first = len(rows)
        row_of: dict[int, int] = {}
        for c in level_changes:
            deps = {valid_rows.get(p) for p in (c.source, c.target)}
            deps |= {code_rows.get(p) for p in (c.source, c.target)}
            deps |= {row_of.get(id(n)) for n in c.needs}
            row_of[id(c)] = _add(rows, changes, name, c, codes_now[name], tol, deps - {None})
        _parent_dependencies(rows, first, parent_rows, changes, tol)
        parent_rows = list(range(first, len(rows)))
        mothers, mother_codes = final, codes_now[name]
        finals[name] = final
    audit = _audit(rows, metric, system.crs, homes, report)
    return Proposal(audit, system, rule, fill, tol, changes, prepared, finals,
                    _projected=metric_geoms)  # fmt: skip


@gc_paused()
def apply(
    proposal: Proposal,
    accept: str | Iterable[int] | Callable[[gpd.GeoDataFrame], Iterable[bool]] = "small",
) -> GridSystem:
    """The system with the accepted rows of ``proposal`` applied; the original is untouched.

    Parameters
    ----------
    proposal:
        From :func:`propose_repair`.
    accept:
        ``"small"`` (default): the rows accepted by default (``audit.accepted``);
        ``"all"``: every row not refused; a list of row ids (``audit.index``);
        or a function taking the audit table and returning one bool per row.
        A row whose ``depends_on`` rows are not all applied is skipped; refused
        rows are never applied.

    Returns
    -------
    GridSystem
        Polygons no applied row touches are the original objects, bit-identical.

    Raises
    ------
    GridgeoError
        ``accept`` names rows the proposal does not have, or is not one of the above.

    Examples
    --------
    >>> from gridgeo import load_demo
    >>> from gridgeo.check import check_system
    >>> proposal = propose_repair(load_demo("dirty"))
    >>> after = check_system(apply(proposal, "small"), dual=False)
    >>> errors = after.defects[after.defects["severity"] == "error"]
    >>> sorted(errors["kind"].unique())  # the big ones wait for a person
    ['gap', 'outside_parent', 'overlap']
    """
    chosen = _accepted(proposal, accept)
    audit = proposal.audit
    applied: set[int] = set()
    for row, deps in zip(audit.index, audit["depends_on"].tolist(), strict=True):
        # dependencies always come first
        needs = [int(d) for d in deps.split(",")] if deps else []
        if row in chosen and all(d in applied for d in needs):
            applied.add(int(row))
    system = proposal.original
    config = system.config
    metric = system.metric_crs
    out = {}
    by_level: dict[str, list[int]] = {}
    for row in sorted(applied):
        by_level.setdefault(proposal._changes[row][0], []).append(row)
    frames = {n: system[n] for n in config.level_names}
    edits: dict[str, dict[int, tuple[str, str]]] = {n: {} for n in config.level_names}
    for name in config.level_names:
        for row in by_level.get(name, []):
            change = proposal._changes[row][1]
            if isinstance(change, Recode):
                edits[name][change.position] = (change.code, change.parent)
                for lv, j, code, parent in change.descendants:
                    edits[lv][j] = (code, parent)
    composed = {}
    for name in config.level_names:
        rows = [
            r for r in by_level.get(name, []) if not isinstance(proposal._changes[r][1], Recode)
        ]
        if rows:
            composed[name] = _composed(proposal, name, rows)
    around = np.array([g for geoms in composed.values() for g in geoms.values()], dtype=object)
    lookup = _Lookup(system, metric, proposal._metric, around, proposal._projected)
    for name in config.level_names:
        frame = frames[name]
        if name not in composed and not edits[name]:
            out[name] = frame
            continue
        frame = frame.copy()
        for j, (code, parent) in edits[name].items():
            frame.iloc[j, frame.columns.get_loc("code")] = code
            frame.iloc[j, frame.columns.get_loc("parent_code")] = parent
        if name in composed:
            geoms = composed[name]
            positions = np.array(sorted(geoms))
            new = lookup.back(np.array([geoms[p] for p in positions], dtype=object))
            values = frame.geometry.to_numpy().copy()
            values[positions] = new
            frame = frame.set_geometry(gpd.GeoSeries(values, index=frame.index, crs=frame.crs))
        out[name] = frame
    return system.replace(**out)


# -- building the audit -------------------------------------------------------------
def _add(rows, changes, level, c: Change, codes, tol, deps=()) -> int:
    row = len(rows)
    big = c.kind in ("gap", "overlap", "outside_parent") and c.width >= tol.defect
    reason = (
        f"{c.width:.1f} m wide: at least the defect tolerance ({tol.defect:g} m)" if big else ""
    )
    rows.append({
        "level": level, "kind": c.kind, "action": c.action, "rule": c.rule,
        "from_code": "" if c.source < 0 else str(codes[c.source]),
        "to_code": "" if c.target < 0 else str(codes[c.target]),
        "area_m2": c.area, "width_m": c.width, "params": _params(c.params),
        "big": big, "refused": c.refused, "reason": c.refused or reason,
        "deps": set(deps), "geometry": c.piece,
        "codes": sorted({str(codes[p]) for p in (c.source, c.target) if p >= 0}),
    })  # fmt: skip
    changes[row] = (level, c)
    return row


def _add_recode(rows, changes, r: Recode, geoms, tol) -> int:
    row = len(rows)
    rows.append({
        "level": r.level, "kind": r.kind, "action": "recode", "rule": r.rule,
        "from_code": r.old_code, "to_code": r.code, "area_m2": 0.0, "width_m": 0.0,
        "params": _params({"parent_code": r.parent, "descendants": len(r.descendants),
                           "why": r.reason}),
        "big": False, "refused": "", "reason": "", "deps": set(),
        "geometry": geoms[r.position], "codes": [r.old_code],
    })  # fmt: skip
    changes[row] = (r.level, r)
    return row


def _params(params: dict) -> str:
    return "; ".join(f"{k}={v}" for k, v in params.items())


def _parent_dependencies(rows, first, parent_rows, changes, tol) -> None:
    """A change of this level that lies where the parent level changed needs that change."""
    pieces = [(r, rows[r]["geometry"]) for r in parent_rows if rows[r]["action"] != "recode"]
    if not pieces or first == len(rows):
        return
    ids = np.array([r for r, _ in pieces])
    tree = shapely.STRtree(np.array([g for _, g in pieces], dtype=object))
    mine = np.arange(first, len(rows))
    geoms = np.array([rows[r]["geometry"] for r in mine], dtype=object)
    hit, other = tree.query(geoms, predicate="intersects")
    share = shapely.area(shapely.intersection(geoms[hit], tree.geometries[other]))
    for h, o in zip(hit[share > tol.dust**2], other[share > tol.dust**2], strict=True):
        rows[mine[h]]["deps"].add(int(ids[o]))


def _audit(rows, metric, crs, homes, report) -> gpd.GeoDataFrame:
    columns = [c for c in AUDIT_COLUMNS if c != "geometry"]
    if not rows:
        frame = pd.DataFrame(columns=columns)
        out = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
        out.index.name = "row"
        return out
    frame = pd.DataFrame(rows)
    geoms = np.asarray(frame["geometry"].to_numpy(), dtype=object)
    # A row is accepted by default when it is small and all it depends on is too.
    accepted = []
    for k, r in enumerate(rows):
        ok = not r["big"] and not r["refused"] and all(accepted[d] for d in r["deps"])
        if not r["big"] and not r["refused"] and not ok:
            frame.at[k, "reason"] = "depends on a row that is not accepted by default"
        accepted.append(ok)
    frame["accepted"] = accepted
    frame["status"] = np.where(frame["refused"].astype(bool), "refused", "proposed")
    frame["depends_on"] = [",".join(str(d) for d in sorted(r["deps"])) for r in rows]
    frame["households"] = _households(geoms, frame["action"].to_numpy(), homes)
    defect, defect_codes = _match(frame, geoms, metric, report)
    frame["defect"] = defect
    frame["defect_codes"] = defect_codes
    frame["geometry"] = project(geoms, metric, crs, spacing=None)
    out = gpd.GeoDataFrame(frame[columns], geometry=frame["geometry"].to_numpy(), crs=crs)
    out.index.name = "row"
    return out


def _match(frame, geoms, metric, report) -> tuple[np.ndarray, list[str]]:
    """The check row each change answers (same level, a matching kind, touching it)."""
    own = [",".join(c) for c in frame["codes"]]
    defect = np.full(len(frame), -1)
    if report is None or report.defects.empty:
        return defect, own
    d = report.defects
    where = project(d.geometry.to_numpy(), d.crs, metric, spacing=None)
    tree = shapely.STRtree(where)
    family = {"sliver": {"sliver", "gap", "overlap"}, "gap": {"gap", "sliver"},
              "overlap": {"overlap", "sliver", "outside_parent"}}  # fmt: skip
    hit, other = tree.query(shapely.buffer(geoms, 0.01), predicate="intersects")
    for h, o in zip(hit, other, strict=True):
        kinds = family.get(frame.at[h, "kind"], {frame.at[h, "kind"]})
        if (
            defect[h] < 0
            and d["kind"].iat[o] in kinds
            and d["level"].iat[o] == frame.at[h, "level"]
        ):
            defect[h] = o
            own[h] = d["codes"].iat[o]
    return defect, own


def _households(geoms, actions, homes) -> pd.array:
    """Households in each piece (recode rows: in the polygon); NA without points."""
    if homes is None:
        return pd.array([pd.NA] * len(geoms), dtype="Int64")
    counts = np.zeros(len(geoms), dtype=np.int64)
    points = homes.geometry.to_numpy()
    weight = homes["_weight"].to_numpy()
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    hit, who = shapely.STRtree(points).query(np.where(polygonal, geoms, None), predicate="contains")
    np.add.at(counts, hit, weight[who])
    return pd.array(counts, dtype="Int64")


# -- inputs ----------------------------------------------------------------------
def _check_options(system, rule, fill, households) -> None:
    if not isinstance(system, GridSystem):
        raise GridgeoError(
            f"propose_repair needs a GridSystem (gridgeo.read_system(path, strict=False)), "
            f"not {type(system).__name__}. For a plan, use gridgeo.repair.propose_plan_repair."
        )
    if rule not in RULES:
        raise GridgeoError(
            f"unknown overlap rule {option('rule', rule)}; choose one of {', '.join(RULES)}."
        )
    if fill not in FILLS:
        raise GridgeoError(
            f"unknown gap fill {option('fill', fill)}; choose one of {', '.join(FILLS)}."
        )
    if households is not None and not isinstance(households, gpd.GeoDataFrame):
        raise SchemaError(
            f"households must be a GeoDataFrame of points (or of units with a 'households' "
            f"column), not {type(households).__name__}; read them with gridgeo.read_points."
        )
    if households is not None and households.crs is None:
        raise SchemaError(
            "the households have no CRS; set one (households.set_crs(4326)) or read them "
            "with gridgeo.read_points."
        )
    if rule == "households" and households is None and "units" not in system.sources:
        raise GridgeoError(
            f"{option('rule', 'households')} needs household points: pass "
            f"{option('households', 'points')} with a column of each level's codes."
        )


def _homes(system, households, metric) -> gpd.GeoDataFrame | None:
    """Household points in the metric CRS with a ``_weight`` (1, or a unit's households)."""
    if households is None:
        households = system.sources.get("units")
    if households is None or not len(households):
        return None
    geoms = households.geometry.to_numpy()
    out = households.copy()
    if np.isin(shapely.get_type_id(geoms), (3, 6)).any():
        # A unit layer: each unit's households sit at a point inside it.
        if "households" not in households:
            raise SchemaError(
                "the households layer holds polygons but no 'households' column; pass "
                "household points, or units with their household counts."
            )
        out["_weight"] = households["households"].fillna(0).astype(np.int64).to_numpy()
        out = out.set_geometry(shapely.point_on_surface(geoms))
    else:
        out["_weight"] = 1
    return out.to_crs(metric)


def _votes(homes, level) -> np.ndarray | None:
    if homes is None:
        return None
    for column in (level.code_column, f"registered_{level.name}"):
        if column in homes:
            return homes[column].astype(str).to_numpy()
    return np.full(len(homes), "", dtype=object)


def _inner_points(geoms: np.ndarray) -> np.ndarray:
    """A point inside each polygon (of its valid version where it is invalid)."""
    geoms = geoms.copy()
    bad = ~shapely.is_valid(geoms)
    geoms[bad] = shapely.make_valid(geoms[bad])
    return shapely.point_on_surface(geoms)


def _parent_positions(parents, mother_codes, geoms, mothers) -> np.ndarray:
    """Each polygon's parent position; a duplicated parent code: the one holding it."""
    if mother_codes is None:
        return np.full(len(parents), -1)
    index = pd.Index(mother_codes)
    if index.is_unique:
        return index.get_indexer(parents)
    out = np.full(len(parents), -1)
    tree = shapely.STRtree(mothers)
    points = shapely.point_on_surface(geoms)
    for i, p in enumerate(parents):
        options = np.flatnonzero(np.asarray(mother_codes) == p)
        if len(options) == 1:
            out[i] = options[0]
        elif len(options):
            hit = tree.query(points[i], predicate="within")
            inside = [h for h in hit if h in set(options)]
            out[i] = inside[0] if inside else options[0]
    return out


def _accepted(proposal: Proposal, accept) -> set[int]:
    audit = proposal.audit
    ok = audit["status"] != "refused"
    if isinstance(accept, str):
        if accept == "small":
            return set(audit.index[audit["accepted"].astype(bool) & ok])
        if accept == "all":
            return set(audit.index[ok])
        raise GridgeoError(
            f"{option('accept', accept)} is not a choice: use 'small', 'all', a list of "
            "audit row ids, or a function of the audit table returning one bool per row."
        )
    if callable(accept):
        mask = np.asarray(accept(audit), dtype=bool)
        if mask.shape != (len(audit),):
            raise GridgeoError(
                f"the accept function returned {mask.shape[0] if mask.ndim else 1} values for "
                f"{len(audit)} audit rows; return one bool per row."
            )
        return set(audit.index[mask & ok.to_numpy()])
    wanted = {int(r) for r in accept}
    unknown = sorted(wanted - set(audit.index))
    if unknown:
        raise GridgeoError(
            f"{option('accept', str(unknown[:5]))}: no such audit row(s); the proposal has "
            f"rows 0 … {len(audit) - 1}."
        )
    return wanted & set(audit.index[ok])


# -- applying ---------------------------------------------------------------------
def _composed(proposal: Proposal, name: str, rows: list[int]) -> dict[int, shapely.Geometry]:
    """Metric geometry of each polygon of level ``name`` the applied ``rows`` change."""
    prepared = proposal._metric[name]
    base: dict[int, shapely.Geometry] = {}
    removed: dict[int, list] = {}
    added: dict[int, list] = {}
    for row in rows:
        c = proposal._changes[row][1]
        if c.action == "make_valid":
            base[c.source] = prepared[c.source]
            continue
        if c.action in LOSES:
            removed.setdefault(c.source, []).append(c.piece)
        if c.action in GAINS:
            added.setdefault(c.target, []).append(c.piece)
    # Every change of the level that is not refused: the proposal composed them already.
    every = {
        r for r, (lv, c) in proposal._changes.items()
        if lv == name and isinstance(c, Change) and not c.refused and c.action != "make_valid"
    }  # fmt: skip
    final = proposal._final.get(name) if every <= set(rows) else None
    out = {}
    dust = proposal.tolerances.dust
    for i in set(base) | set(removed) | set(added):
        if final is not None and (i in removed or i in added):
            out[i] = final[i]
            continue
        start = base.get(i, prepared[i])  # make_valid's output, or the prepared polygon
        out[i] = compose(start, removed.get(i, []), added.get(i, []), dust)
    return out


def _points(xy: np.ndarray) -> pd.Index:
    """Exact positions (n × 2) as one hashable value each: the two floats read as one
    complex number (a hash index on one column; a MultiIndex factorizes both)."""
    return pd.Index(np.ascontiguousarray(xy, dtype=float).view(np.complex128).ravel())


def _ranks(ids: np.ndarray) -> np.ndarray:
    """Sorted ids numbered 0, 1, … in order (indices for shapely's constructors)."""
    return np.cumsum(np.r_[False, ids[1:] != ids[:-1]]) if len(ids) else ids


class _Lookup:
    """Metric → storage coordinates for repaired polygons.

    A vertex the system already has gets its stored coordinates back exactly,
    so edges shared with untouched polygons match bit for bit; a vertex that
    densifying added (:func:`gridgeo.crs.project`) is dropped, so an edge
    the repair kept is the stored straight edge again; a new vertex (where a
    repair cut an edge) is projected back.
    """

    def __init__(self, system: GridSystem, metric: CRS, prepared: dict, around: np.ndarray,
                 projected: dict) -> None:  # fmt: skip
        """``projected``: each level as :func:`propose_repair` projected it (densified)."""
        # Only polygons whose boxes meet a repaired polygon's can lend it a vertex.
        near = {
            n: np.unique(shapely.STRtree(prepared[n]).query(around)[1])
            for n in system.config.level_names
        }
        geoms = [system[n].geometry.to_numpy()[k] for n, k in near.items() if len(k)]
        geoms = np.concatenate(geoms) if geoms else np.empty(0, dtype=object)
        dense = [projected[n][k] for n, k in near.items() if len(k)]
        dense = np.concatenate(dense) if dense else np.empty(0, dtype=object)
        stored = shapely.get_coordinates(geoms).reshape(-1, 2)
        plain = project_xy(stored, system.crs, metric)
        dense = shapely.get_coordinates(dense).reshape(-1, 2)
        keys = _points(np.r_[plain, dense])
        first = ~keys.duplicated()
        self.index = keys[first]
        # stored coordinates for original vertices, NaN for those densifying added
        values = np.vstack([stored, np.full((len(dense), 2), np.nan)])
        self.stored = values[first]
        self.crs, self.metric = system.crs, metric

    def back(self, geoms: np.ndarray) -> np.ndarray:
        """Each polygon in storage coordinates: every ring of every polygon looked up at once."""
        parts, part_of = shapely.get_parts(geoms, return_index=True)
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        xy, ring = shapely.get_coordinates(rings, return_index=True)
        if not len(xy):
            return np.array([shapely.Polygon()] * len(geoms), dtype=object)
        found = self.index.get_indexer(_points(xy))
        known = found >= 0
        back = np.empty_like(xy)
        back[known] = self.stored[found[known]]
        first = np.r_[True, ring[1:] != ring[:-1]]
        last = np.r_[first[1:], True]
        # New vertices (where a repair cut an edge) go back by projection, and so
        # does a ring's first vertex if densifying added it (it closes the ring).
        todo = ~known | (first & np.isnan(back[:, 0]))
        if todo.any():
            back[todo] = project_xy(xy[todo], self.metric, self.crs)
        back[last] = back[np.flatnonzero(first)]
        keep = ~np.isnan(back[:, 0])  # vertices densifying added are dropped
        back, ring = back[keep], ring[keep]
        # A ring left with 3 vertices or fewer is dropped; so is a part whose
        # shell is (holes and all). get_rings gives each part's shell first.
        whole = np.bincount(ring, minlength=len(rings)) >= 4
        kept = whole[ring]
        made = shapely.linearrings(back[kept], indices=_ranks(ring[kept]))
        owner = ring_part[whole]
        shell = np.r_[0, np.flatnonzero(ring_part[1:] != ring_part[:-1]) + 1]
        alive = np.isin(owner, ring_part[shell[whole[shell]]])
        made, owner = made[alive], owner[alive]
        polygons = shapely.polygons(made, indices=_ranks(owner))
        poly_part = np.unique(owner)
        out = np.empty(len(geoms), dtype=object)
        out[:] = [shapely.Polygon()] * len(geoms)
        geom_of = part_of[poly_part]
        count = np.bincount(geom_of, minlength=len(geoms))
        single = count[geom_of] == 1
        out[geom_of[single]] = polygons[single]
        several = np.flatnonzero(count > 1)
        if len(several):
            multi = ~single
            out[several] = shapely.multipolygons(
                polygons[multi], indices=np.searchsorted(several, geom_of[multi])
            )
        bad = ~shapely.is_valid(out)
        if bad.any():  # projection folded a new vertex: mend it where it is stored
            out[bad] = [make_valid(g, 0.0) for g in out[bad]]
        return out
