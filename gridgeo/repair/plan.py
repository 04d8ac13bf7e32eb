"""Repair a plan by reassigning units, never by moving polygon edges.

A plan's polygons are derived from its units (:class:`gridgeo.plan.Plan`), so
they cannot overlap or leave gaps; what a forced edit can break is the
assignment: a grid in pieces, a unit in a grid of another district, a
refined grid with units in no micro-grid. Each is repaired by moving units:

- ``multipart``: every piece of a grid but its largest goes to the
  neighbouring grid of the same district sharing the most unit edges with it;
- ``outside_parent``: a unit in a grid of another district goes to the
  neighbouring grid of its own district sharing the most edges with it;
- ``gap``: a unit of a refined grid in no micro-grid joins the micro-grid
  of that grid it shares most edges with.

One audit row per group of units moved. Rows moving no households are
accepted by default; the others wait for a planner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from gridgeo.config import Role
from gridgeo.errors import GridgeoError, option

__all__ = ["PlanProposal", "apply_plan_repair", "propose_plan_repair"]


@dataclass
class PlanProposal:
    """Units to move, one audit row per group, for :func:`apply_plan_repair`.

    ``audit`` columns: ``kind``, ``from_code``, ``to_code``, ``units`` (count),
    ``households``, ``area_m2``, ``unit_ids`` (comma-separated), ``accepted``
    (by default), ``reason``.
    """

    audit: pd.DataFrame
    plan: object

    def __len__(self) -> int:
        return len(self.audit)


def propose_plan_repair(plan) -> PlanProposal:
    """The unit moves that repair ``plan``'s assignment (see the module notes).

    Examples
    --------
    >>> from gridgeo import load_demo
    >>> from gridgeo.plan import Plan
    >>> len(propose_plan_repair(Plan.from_system(load_demo(units=True))))
    0
    """
    from gridgeo.plan import Plan

    if not isinstance(plan, Plan):
        raise GridgeoError(
            f"propose_plan_repair needs a gridgeo.plan.Plan, not {type(plan).__name__}; for a "
            "grid system use gridgeo.repair.propose_repair."
        )
    units, graph = plan._units, plan._units.graph
    work, fine = plan.workload, plan.refinement
    district_of = plan.grid_table["parent_code"].astype(str)
    rows = []
    for code in sorted(set(work) - {""}):
        members = np.flatnonzero(work == code)
        home = district_of.get(code, "")
        away = members[units.district[members] != home]
        for group in _groups(graph, away):
            target = _best(graph, group, work, lambda c, g=group, me=code: _district(district_of, c)
                           == units.district[g[0]] and c != me)  # fmt: skip
            rows.append(_row(plan, "outside_parent", code, target, group))
        stay = np.setdiff1d(members, away)
        pieces = sorted(_groups(graph, stay), key=len, reverse=True)
        for group in pieces[1:]:
            target = _best(graph, group, work,
                           lambda c, h=home, me=code: _district(district_of, c) == h and c != me)  # fmt: skip
            rows.append(_row(plan, "multipart", code, target, group))
        refined = fine[members] != ""
        if refined.any() and not refined.all():
            for group in _groups(graph, members[~refined]):
                micro = _best(graph, group, fine, lambda m, c=code: m != "" and
                              str(plan.micro_table["parent_code"].get(m, "")) == c)  # fmt: skip
                rows.append(_row(plan, "gap", code, micro, group, refinement=True))
    columns = ["kind", "from_code", "to_code", "units", "households", "area_m2", "unit_ids",
               "accepted", "reason", "refinement"]  # fmt: skip
    audit = pd.DataFrame(rows, columns=columns)
    audit.index.name = "row"
    return PlanProposal(audit, plan)


def apply_plan_repair(
    proposal: PlanProposal,
    accept: str | Iterable[int] | Callable[[pd.DataFrame], Iterable[bool]] = "small",
    *,
    by: str | None = None,
):
    """The plan with the accepted unit moves applied, as one ``repair`` step in its history.

    ``accept`` works as in :func:`gridgeo.repair.apply`. Moves without a
    target (``to_code`` empty: no neighbour qualifies) are never applied.
    """
    audit = proposal.audit
    if isinstance(accept, str) and accept in ("small", "all"):
        mask = audit["accepted"].to_numpy(bool) if accept == "small" else np.ones(len(audit), bool)
    elif isinstance(accept, str):
        raise GridgeoError(f"{option('accept', accept)} is not a choice: use 'small' or 'all'.")
    elif callable(accept):
        mask = np.asarray(accept(audit), dtype=bool)
    else:
        mask = audit.index.isin(list(accept))
    chosen = audit[mask & (audit["to_code"] != "")]
    plan = proposal.plan
    if chosen.empty:
        return plan
    _, workload, refinement = (plan.config.role(r) for r in (Role.DISTRICT, Role.WORKLOAD,
                                                               Role.REFINEMENT))  # fmt: skip
    table = plan.units[["unit_id", workload.code_column]
                       + ([refinement.code_column] if refinement is not None else [])].copy()  # fmt: skip
    table = table.set_index("unit_id")
    for r in chosen.itertuples():
        ids = r.unit_ids.split(",")
        if r.refinement:
            table.loc[ids, refinement.code_column] = r.to_code
        else:
            table.loc[ids, workload.code_column] = r.to_code
            if refinement is not None:
                table.loc[ids, refinement.code_column] = ""
    return plan.reassign(table.reset_index(), op="repair", force=True, by=by)


def _district(district_of: pd.Series, code: str) -> str:
    return str(district_of.get(code, ""))


def _groups(graph: nx.Graph, positions: np.ndarray) -> list[np.ndarray]:
    if not len(positions):
        return []
    parts = nx.connected_components(graph.subgraph(positions.tolist()))
    return [np.array(sorted(p)) for p in parts]


def _best(graph: nx.Graph, group: np.ndarray, labels: np.ndarray, allowed) -> str:
    """The allowed label the group shares most unit edges with ('' when none)."""
    votes: dict[str, int] = {}
    inside = set(group.tolist())
    for p in group.tolist():
        for n in graph.neighbors(p):
            if n not in inside and allowed(labels[n]):
                votes[labels[n]] = votes.get(labels[n], 0) + 1
    return max(sorted(votes), key=votes.get) if votes else ""


def _row(plan, kind, code, target, group, refinement=False) -> dict:
    households = int(plan._units.households[group].sum())
    reason = "" if households == 0 else f"moves {households} households"
    if not target:
        reason = "no neighbouring grid qualifies: decide by hand"
    return {
        "kind": kind,
        "from_code": code,
        "to_code": target,
        "units": len(group),
        "households": households,
        "area_m2": float(plan._units.area[group].sum()),
        "unit_ids": ",".join(plan._units.ids[group]),
        "accepted": bool(target) and households == 0,
        "reason": reason,
        "refinement": refinement,
    }
