"""Compare two plans: what changed, for whom, and which work orders to reroute.

Two plans built on the same unit layer differ only in which grid each unit
belongs to and in grid attributes, so every comparison is a cross-tabulation
of units (vectorised, banner-wide in well under a second).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from gridgeo.errors import PlanError
from gridgeo.plan.model import Plan

__all__ = ["Comparison", "compare"]

RELATIONS = ("unchanged", "redrawn", "split", "merged", "renumbered", "new", "retired")
"""How a grid of the second plan relates to the first (``retired``: gone from the second).

``unchanged``: same code, same units. ``redrawn``: same code, units gained or
lost. ``split``: a new code whose units all came from one grid that lives on.
``merged``: a grid that absorbed the whole of a grid retired by the second
plan. ``renumbered``: a new code for exactly the units of a grid whose code
is gone. ``new``: any other new code. ``retired``: a code of the first plan
absent from the second."""


@dataclass
class Comparison:
    """The result of :func:`compare`.

    Attributes
    ----------
    grids : pandas.DataFrame
        One row per grid code of either plan: ``relation`` (:data:`RELATIONS`),
        units/households/area before and after, gained and lost, ``from_codes``
        (first-plan grids its units came from) and ``to_codes`` (second-plan
        grids a first-plan grid's units went to), workers and households per
        worker before and after.
    units : geopandas.GeoDataFrame
        The units whose grid or micro-grid changed (``old_code``, ``new_code``,
        ``old_micro``, ``new_micro``, households), for the map.
    households, incidents : geopandas.GeoDataFrame or None
        The given points that change grid, with ``old_code`` and ``new_code``
        (for incidents: open cases only) — the list a dispatcher needs.
    """

    grids: pd.DataFrame
    units: gpd.GeoDataFrame
    households: gpd.GeoDataFrame | None = None
    incidents: gpd.GeoDataFrame | None = None

    @property
    def summary(self) -> dict[str, int]:
        """Counts: grids per relation, units and households that change grid."""
        out = {r: int((self.grids["relation"] == r).sum()) for r in RELATIONS}
        out["units_moved"] = int((self.units["old_code"] != self.units["new_code"]).sum())
        moved = self.units["old_code"] != self.units["new_code"]
        out["households_moved"] = int(self.units.loc[moved, "households"].sum())
        if self.households is not None:
            out["household_points_moved"] = len(self.households)
        if self.incidents is not None:
            out["open_incidents_rerouted"] = len(self.incidents)
        return out

    def __repr__(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.summary.items() if v)
        return f"Comparison({parts or 'no change'})"


def compare(
    a: Plan,
    b: Plan,
    *,
    households: gpd.GeoDataFrame | None = None,
    incidents: gpd.GeoDataFrame | None = None,
) -> Comparison:
    """Compare plan ``b`` with plan ``a`` (both on the same unit layer).

    Parameters
    ----------
    a, b : Plan
        Before and after.
    households, incidents : GeoDataFrame, optional
        Points to place in units (``within``); those whose grid changes are
        listed. Incidents are limited to open cases (:func:`gridgeo.stats.case_status`).

    Returns
    -------
    Comparison

    Examples
    --------
    >>> from gridgeo import load_demo
    >>> plan = Plan.from_system(load_demo(units=True))
    >>> new = plan.merge(["150823104003", "150823104004"], by="doctest")
    >>> c = compare(plan, new)
    >>> c.summary["merged"], c.summary["retired"]
    (1, 1)
    """
    if len(a._units) != len(b._units) or not np.array_equal(a._units.ids, b._units.ids):
        raise PlanError(
            "the two plans are built on different unit layers, so their units cannot be "
            "matched; compare plans of one lineage (Plan.from_system on the same units).",
            "unknown",
        )
    ua = a._units
    before, after = a.workload, b.workload
    geo_a, geo_b = a.grids, b.grids
    table = _grid_table(a, b, geo_a, geo_b)
    changed = (before != after) | (a.refinement != b.refinement)
    units = gpd.GeoDataFrame(
        {
            "unit_id": ua.ids[changed],
            "old_code": before[changed],
            "new_code": after[changed],
            "old_micro": a.refinement[changed],
            "new_micro": b.refinement[changed],
            "households": ua.households[changed],
            "residents": ua.residents[changed],
        },
        geometry=ua.geoms[changed],
        crs=ua.frame.crs,
    )
    out = Comparison(table, units)
    if households is not None:
        out.households = _points(households, a, b)
    if incidents is not None:
        from gridgeo.stats import OPEN_STATUSES, case_status

        open_ = case_status(incidents).isin(OPEN_STATUSES).to_numpy()
        out.incidents = _points(incidents[open_], a, b)
    return out


def _grid_table(a: Plan, b: Plan, geo_a: gpd.GeoDataFrame, geo_b: gpd.GeoDataFrame) -> pd.DataFrame:
    units = a._units
    cross = pd.DataFrame(
        {
            "old": a.workload,
            "new": b.workload,
            "households": units.households,
            "area": units.area,
            "n": 1,
        }
    )
    moved = cross[cross["old"] != cross["new"]]
    lost = moved.groupby("old")[["n", "households", "area"]].sum()
    gained = moved.groupby("new")[["n", "households", "area"]].sum()
    went = cross.groupby("old")["new"].agg(lambda s: ", ".join(sorted(set(s))))
    came = cross.groupby("new")["old"].agg(lambda s: ", ".join(sorted(set(s))))
    codes = sorted(set(geo_a["code"]) | set(geo_b["code"]))
    t = pd.DataFrame(index=pd.Index(codes, name="code"))
    ia = geo_a.set_index("code")
    ib = geo_b.set_index("code")
    t["in_a"] = t.index.isin(ia.index)
    t["in_b"] = t.index.isin(ib.index)
    for side, frame in (("before", ia), ("after", ib)):
        t[f"units_{side}"] = frame["units"].reindex(t.index).fillna(0).astype(np.int64)
        t[f"households_{side}"] = frame["households"].reindex(t.index).fillna(0).astype(np.int64)
        if "workers" in frame:
            t[f"workers_{side}"] = frame["workers"].reindex(t.index).fillna(0).astype(np.int64)
    for name, frame in (("gained", gained), ("lost", lost)):
        t[f"units_{name}"] = frame["n"].reindex(t.index).fillna(0).astype(np.int64)
        t[f"households_{name}"] = frame["households"].reindex(t.index).fillna(0).astype(np.int64)
        t[f"area_{name}_m2"] = frame["area"].reindex(t.index).fillna(0.0)
    t["from_codes"] = came.reindex(t.index).fillna("")
    t["to_codes"] = went.reindex(t.index).fillna("")
    for side in ("before", "after"):
        if f"workers_{side}" in t:
            t[f"households_per_worker_{side}"] = t[f"households_{side}"] / t[
                f"workers_{side}"
            ].where(t[f"workers_{side}"] > 0)
    t["relation"] = _relations(t, cross)
    t["name"] = ib["name"].reindex(t.index).fillna(ia["name"].reindex(t.index)).fillna("")
    first = ["name", "relation", "in_a", "in_b"]
    return t[first + [c for c in t.columns if c not in first]].reset_index()


def _relations(t: pd.DataFrame, cross: pd.DataFrame) -> pd.Series:
    retired = set(t.index[t["in_a"] & ~t["in_b"]])
    new = t["in_b"] & ~t["in_a"]
    sets_a = cross.groupby("old").groups
    sets_b = cross.groupby("new").groups
    out = pd.Series("unchanged", index=t.index, dtype=object)
    for code in t.index:
        if code in retired:
            out[code] = "retired"
            continue
        units_b = set(sets_b[code])
        sources = set(cross.loc[list(units_b), "old"])
        if new[code]:
            if len(sources) == 1:
                (src,) = sources
                if src in retired and units_b == set(sets_a[src]):
                    out[code] = "renumbered"
                elif src not in retired:
                    out[code] = "split"
                else:
                    out[code] = "new"
            else:
                out[code] = "new"
            continue
        if units_b == set(sets_a[code]):
            continue
        whole = [s for s in sources - {code} if s in retired and set(sets_a[s]) <= units_b]
        out[code] = "merged" if whole else "redrawn"
    return out


def _points(points: gpd.GeoDataFrame, a: Plan, b: Plan) -> gpd.GeoDataFrame:
    """Points whose grid changes from ``a`` to ``b`` (placed in units with ``within``)."""
    units = a._units.frame[["geometry"]]
    pts = points.to_crs(units.crs) if points.crs != units.crs else points
    hit = gpd.sjoin(pts[[pts.geometry.name]], units, predicate="within", how="inner")
    hit = hit[~hit.index.duplicated()]
    pos = hit["index_right"].to_numpy()
    old, new = a.workload[pos], b.workload[pos]
    moved = old != new
    out = points.loc[hit.index[moved]].copy()
    out["old_code"] = old[moved]
    out["new_code"] = new[moved]
    return out
