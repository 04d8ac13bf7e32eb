"""Repair gaps, overlaps and code defects: propose, review, apply — with an audit trail.

:func:`propose_repair` finds what :func:`gridgeo.check.check_system` finds
and proposes one change per piece: a polygon made valid, a piece outside its
parent cut off, an overlap piece kept by one polygon (a rule decides which),
a gap piece given to the polygons along it, a duplicate code renumbered, an
orphan given the parent that holds it. Nothing is applied until
:func:`apply`, which takes the rows accepted by default (small changes), all
of them, a list, or a function of the audit table. Gaps and overlaps at least
the ``defect`` tolerance wide (10 m) are never accepted by default: a person
decides. Polygons no applied row touches stay bit-identical.

For a plan (:class:`gridgeo.plan.Plan`), :func:`propose_plan_repair` repairs
the units' assignment instead of polygon edges, so the plan stays the truth.

The modules: :mod:`~gridgeo.repair.propose` (the proposal, the audit,
applying), :mod:`~gridgeo.repair.geometry` (one level's steps),
:mod:`~gridgeo.repair.split` (gap pieces split among the children along them),
:mod:`~gridgeo.repair.codes` (duplicates and orphans),
:mod:`~gridgeo.repair.plan` (plans).

Example
-------
>>> from gridgeo import load_demo
>>> from gridgeo.check import check_system
>>> proposal = propose_repair(load_demo("dirty"))
>>> int(proposal.audit["accepted"].sum()), len(proposal.audit)
(6, 12)
>>> check_system(apply(proposal, "all"), dual=False).ok
True
"""

from gridgeo.repair.geometry import FILLS, RULES
from gridgeo.repair.plan import PlanProposal, apply_plan_repair, propose_plan_repair
from gridgeo.repair.propose import AUDIT_COLUMNS, Proposal, apply, propose_repair

__all__ = [
    "AUDIT_COLUMNS",
    "FILLS",
    "RULES",
    "PlanProposal",
    "Proposal",
    "apply",
    "apply_plan_repair",
    "propose_plan_repair",
    "propose_repair",
]
