"""A plan as plain tables: what a :class:`~gridgeo.plan.PlanStore` saves and loads.

A :class:`PlanRecord` is the storage contract between the plan model and every
store backend (GeoPackage, PostGIS) and the desktop export. It holds nothing
but tables and text, so a backend never needs to know how a plan computes.

Column names are role names (``workload``, ``refinement``), never the
configuration's level names, so one store schema serves every county.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["ASSIGNMENT_COLUMNS", "PlanRecord", "fingerprint"]

ASSIGNMENT_COLUMNS = ("unit_id", "workload", "refinement")
"""Columns of :attr:`PlanRecord.assignment`: the unit, its workload grid's code and
its refinement (micro-grid) code, ``""`` where the grid is not refined."""


@dataclass
class PlanRecord:
    """Everything needed to rebuild a :class:`~gridgeo.plan.Plan`, as tables.

    Attributes
    ----------
    config_toml:
        The plan's :class:`~gridgeo.config.GridConfig` as TOML text
        (:meth:`GridConfig.to_toml <gridgeo.config.GridConfig.to_toml>`).
    frame:
        Level name → GeoDataFrame of the fixed levels above the workload level
        (root … district), storage CRS, as in the grid system.
    units:
        The unit layer's fixed part: ``unit_id`` (text, unique), ``district``
        (the district code the unit lies in), ``households``, ``residents``
        (int), optional ``village`` and ``kind`` (text), geometry (polygons,
        storage CRS). Shared by every version built on the same units.
    assignment:
        :data:`ASSIGNMENT_COLUMNS`: one row per unit, in the order of ``units``.
    grids:
        One row per workload grid: ``code``, ``parent_code``, ``name``,
        ``locked`` (bool) and any other attributes (``leader``, ``workers``,
        ``grid_type``, ``settlement``, …).
    micros:
        One row per refinement (micro-grid): ``code``, ``parent_code``,
        ``name`` and any other attributes.
    history:
        The plan's operations, oldest first, each a JSON-serialisable dict.
    retired:
        Codes retired in this plan's lineage (never reused).
    """

    config_toml: str
    frame: dict[str, gpd.GeoDataFrame]
    units: gpd.GeoDataFrame
    assignment: pd.DataFrame
    grids: pd.DataFrame
    micros: pd.DataFrame
    history: list[dict] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)

    @property
    def units_fingerprint(self) -> str:
        """:func:`fingerprint` of :attr:`units` (a store keeps each unit layer once)."""
        return fingerprint(self.units)


def fingerprint(units: gpd.GeoDataFrame) -> str:
    """A short hash of a unit layer's ids, counts and geometry (WKB).

    Two unit layers with the same fingerprint are the same layer, so a store
    saves the geometry once and every version refers to it.

    >>> import geopandas as gpd
    >>> from shapely import box
    >>> u = gpd.GeoDataFrame({"unit_id": ["a"], "households": [3], "residents": [7]},
    ...                      geometry=[box(0, 0, 1, 1)], crs=4490)
    >>> len(fingerprint(u)), fingerprint(u) == fingerprint(u.copy())
    (16, True)
    """
    digest = hashlib.sha256()
    for column in ("unit_id", "households", "residents"):
        values = units[column].to_numpy() if column in units else np.array([])
        digest.update("\x1f".join(map(str, values)).encode())
    for blob in shapely.to_wkb(units.geometry.to_numpy(), hex=False, output_dimension=2):
        digest.update(blob)
    return digest.hexdigest()[:16]
