"""Plans: redraw grids from building blocks — edit, renumber, compare, keep versions.

A :class:`Plan` is the table unit → grid (→ micro-grid) plus grid
attributes; grid polygons are always derived from it (:mod:`gridgeo.plan.model`).
Operations return new plans and refuse edits that break a rule;
:func:`compare` lists what changed between two plans; :class:`PlanStore`
keeps immutable versions in a GeoPackage or a PostGIS database;
:func:`export_plan` / :func:`import_plan` are the desktop GIS round trip.

>>> from gridgeo import load_demo
>>> from gridgeo.plan import Plan, compare
>>> plan = Plan.from_system(load_demo(units=True))
>>> new = plan.split("150823100017", parts=2, by="doctest")
>>> compare(plan, new).summary["split"]
1
"""

from gridgeo.plan.compare import Comparison, compare
from gridgeo.plan.editor import PlanEditor, edit
from gridgeo.plan.exchange import export_plan, import_plan
from gridgeo.plan.metrics import grid_metrics, plan_metrics
from gridgeo.plan.model import Plan, Step
from gridgeo.plan.rebalance import RebalanceReport, apportion_workers, rebalance
from gridgeo.plan.record import PlanRecord
from gridgeo.plan.scenario import grow, synthetic_town
from gridgeo.plan.store import PlanStore
from gridgeo.plan.units import UNIT_LAYER, derive_units, unit_adjacency

__all__ = [
    "UNIT_LAYER",
    "Comparison",
    "Plan",
    "PlanEditor",
    "PlanRecord",
    "PlanStore",
    "RebalanceReport",
    "Step",
    "apportion_workers",
    "compare",
    "derive_units",
    "edit",
    "export_plan",
    "grid_metrics",
    "grow",
    "import_plan",
    "plan_metrics",
    "rebalance",
    "synthetic_town",
    "unit_adjacency",
]
