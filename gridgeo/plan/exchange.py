"""The desktop GIS round trip: a plan as a GeoPackage, and back.

Planners also edit in QGIS: :func:`export_plan` writes the units (each with
its grid and micro-grid code), the derived grids and micro-grids, the
district and root layers and the crosswalk into one GeoPackage;
the planner changes units' grid codes there (the attribute table, or the
field calculator on a selection); :func:`import_plan` reads the codes back,
validates them like a plan operation and returns the new plan, whose
differences :func:`~gridgeo.plan.compare` lists.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyogrio

from gridgeo.config import Role
from gridgeo.errors import DataFileError, SchemaError
from gridgeo.io import read_layer, write_system
from gridgeo.io.atomic import commit, staging
from gridgeo.plan.model import Plan
from gridgeo.plan.units import UNIT_LAYER

__all__ = ["CROSSWALK_LAYER", "export_plan", "import_plan"]

CROSSWALK_LAYER = "crosswalk"
"""The attribute table of code changes in an exported plan (:meth:`Plan.crosswalk`)."""


def export_plan(plan: Plan, path: str | os.PathLike[str]) -> Path:
    """Write ``plan`` as a GeoPackage a desktop GIS opens: levels, units, crosswalk.

    Layers are named after the configuration's levels (``town``, ``grid``,
    ``micro_grid`` for the banner) plus ``units`` and the attribute table
    ``crosswalk``. Written atomically: ``path`` holds the old file or the
    new one, never a mixture.

    Examples
    --------
    >>> import tempfile
    >>> from gridgeo import load_demo
    >>> plan = Plan.from_system(load_demo(units=True))
    >>> path = export_plan(plan, Path(tempfile.mkdtemp()) / "plan.gpkg")
    >>> sorted(pyogrio.list_layers(path)[:, 0])[:3]
    ['banner', 'crosswalk', 'grid']
    """
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise DataFileError(f"{path}: a plan is exported as a GeoPackage; name the file ….gpkg.")
    system = plan.to_system()
    with staging(path) as stage:
        temp = stage / path.name
        write_system(system, temp)
        crosswalk = plan.crosswalk().astype({"step": "int64"})
        pyogrio.write_dataframe(crosswalk, temp, layer=CROSSWALK_LAYER, append=True)
        commit(temp, path)
    return path


def import_plan(
    path: str | os.PathLike[str], base: Plan, *, force: bool = False, by: str | None = None
) -> Plan:
    """Read a plan exported by :func:`export_plan` and edited in desktop GIS.

    Only the units' codes are read (the ``units`` layer's ``unit_id`` and the
    workload and refinement code columns; geometry edits are ignored, since
    units are the truth), plus the attributes of new grid codes from the
    workload layer. The changes are applied to ``base`` with
    :meth:`Plan.reassign`, so every rule of an edit holds: a grid that falls
    apart, leaves its district or was locked is refused with a
    :class:`~gridgeo.errors.PlanError` (or recorded with ``force=True``).

    Returns
    -------
    Plan
        ``base`` plus one ``import`` step; ``compare(base, result)`` shows the diff.

    Examples
    --------
    >>> import tempfile
    >>> from gridgeo import load_demo
    >>> plan = Plan.from_system(load_demo(units=True))
    >>> path = export_plan(plan, Path(tempfile.mkdtemp()) / "plan.gpkg")
    >>> import_plan(path, plan).steps[-1].units_moved
    0
    """
    path = Path(path)
    workload = base.config.role(Role.WORKLOAD)
    refinement = base.config.role(Role.REFINEMENT)
    try:
        layers = set(pyogrio.list_layers(path)[:, 0])
    except Exception as exc:  # pyogrio raises DataSourceError and OSError subclasses
        raise DataFileError(
            f"{path}: cannot open it as a GeoPackage ({exc}). Pass the file export_plan wrote."
        ) from exc
    if UNIT_LAYER not in layers:
        raise SchemaError(
            f"{path}: no layer {UNIT_LAYER!r} (found {sorted(layers)}). Import the GeoPackage "
            "export_plan wrote, with its units layer."
        )
    units = read_layer(path, layer=UNIT_LAYER, config=base.config)
    needed = ["unit_id", workload.code_column]
    absent = [c for c in needed if c not in units.columns]
    if absent:
        raise SchemaError(
            f"{path}, layer {UNIT_LAYER!r}: column(s) {absent} missing; found "
            f"{list(units.columns)}. Keep unit_id and {workload.code_column} when editing."
        )
    columns = needed + (
        [refinement.code_column]
        if refinement is not None and refinement.code_column in units
        else []
    )
    table = pd.DataFrame(units[columns])
    missing = set(base._units.ids) - set(table["unit_id"].astype(str))
    if missing:
        raise SchemaError(
            f"{path}, layer {UNIT_LAYER!r}: {len(missing)} unit(s) missing (e.g. "
            f"{sorted(missing)[:3]}). Do not delete units; change their {workload.code_column} instead."
        )
    grids = None
    if workload.name in layers:
        grids = pd.DataFrame(
            read_layer(path, layer=workload.name, config=base.config).drop(columns="geometry")
        )
    return base.reassign(table, grids=grids, op="import", force=force, by=by)
