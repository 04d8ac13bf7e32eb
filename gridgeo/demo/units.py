"""The demo's unit layer: its mesh cells, with the households that live in each.

The demo's levels are unions of whole Voronoi mesh cells (:mod:`gridgeo.demo.mesh`),
so the cells are the natural building blocks a planner reassigns: each lies in
exactly one town, one grid and, where the grid is refined, one micro-grid, and
the cells of a grid tile it exactly. :func:`build_units` turns them into the
unit layer (:mod:`gridgeo.plan.units` describes its columns) and counts the
generated households (:func:`gridgeo.demo.people.households`) in each, so unit
totals add up to every grid's and micro-grid's ``households`` and ``residents``.

Example
-------
>>> from gridgeo.demo import load_units
>>> units = load_units()
>>> len(units), int(units["households"].sum()), int(units["residents"].sum())
(16660, 100099, 257826)
"""

from __future__ import annotations

import io
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo.config import Role
from gridgeo.io.atomic import write_bytes
from gridgeo.model import GridSystem

__all__ = ["build_units", "write_units"]


def build_units(
    cells: np.ndarray,
    district: np.ndarray,
    workload: np.ndarray,
    refinement: np.ndarray,
    system: GridSystem,
    homes: gpd.GeoDataFrame,
) -> gpd.GeoDataFrame:
    """The unit layer of the demo: one unit per mesh cell, in the storage CRS.

    Parameters
    ----------
    cells:
        The mesh cells (polygons in the metric CRS the demo is drawn in).
    district, workload, refinement:
        Per cell, the code of its town, grid and micro-grid (``""`` where the
        grid is not refined).
    system:
        The demo grid system built from the same cells.
    homes:
        Its households (:func:`gridgeo.demo.people.households`), counted per
        cell where they stand in the metric CRS, as they were placed.

    Returns
    -------
    geopandas.GeoDataFrame
        ``unit_id`` (``U00001`` …, by grid code, micro-grid code, then cell
        order), the configuration's district, workload and refinement code
        columns, ``households``, ``residents``, ``village``, ``kind``, geometry.

    Raises
    ------
    RuntimeError
        The counts do not add up to a grid's or micro-grid's attributes (the
        generator is broken, not the user's input).
    """
    config = system.config
    grid_level = config.role(Role.WORKLOAD)
    micro_level = config.role(Role.REFINEMENT)
    grids = system[grid_level.name].set_index("code")
    # Same projection as the levels got (GeoSeries.to_crs, vertex by vertex), so
    # a grid's cells union to exactly the stored grid polygon.
    metric = gpd.GeoSeries(cells, crs=system.metric_crs)
    storage = metric.to_crs(system.crs)
    order = np.lexsort((np.arange(len(cells)), refinement, workload))
    settlement = grids["settlement"].reindex(workload).to_numpy()
    village = np.where(settlement == "rural", grids["community"].reindex(workload).to_numpy(), "")
    frame = pd.DataFrame(
        {
            config.role(Role.DISTRICT).code_column: district,
            grid_level.code_column: workload,
            micro_level.code_column: refinement,
            "village": village.astype(str),
            "kind": settlement.astype(str),
        }
    )
    counted = _count_households(storage.to_crs(system.metric_crs).to_numpy(), homes, system)
    frame.insert(3, "households", counted[0])
    frame.insert(4, "residents", counted[1])
    units = gpd.GeoDataFrame(frame, geometry=storage.to_numpy(), crs=system.crs)
    units = units.iloc[order].reset_index(drop=True)
    units.insert(
        0, "unit_id", np.char.add("U", np.char.zfill(np.arange(1, len(units) + 1).astype(str), 5))
    )
    _check_totals(units, system)
    return units


def _count_households(
    cells: np.ndarray, homes: gpd.GeoDataFrame, system: GridSystem
) -> tuple[np.ndarray, np.ndarray]:
    """Households and residents standing in each cell (metric CRS)."""
    points = homes.geometry.to_crs(system.metric_crs).to_numpy()
    point, cell = shapely.STRtree(cells).query(points, predicate="within")
    if len(point) != len(homes) or len(np.unique(point)) != len(homes):  # pragma: no cover
        raise RuntimeError("a demo household stands in no mesh cell, or in two")
    size = homes["size"].to_numpy()[point]
    households = np.bincount(cell, minlength=len(cells)).astype(np.int64)
    residents = np.bincount(cell, weights=size, minlength=len(cells)).round().astype(np.int64)
    return households, residents


def _check_totals(units: gpd.GeoDataFrame, system: GridSystem) -> None:
    """Unit sums equal every grid's and micro-grid's ``households`` and ``residents``."""
    for role in (Role.WORKLOAD, Role.REFINEMENT):
        level = system.config.role(role)
        polygons = system[level.name].set_index("code")
        totals = (
            units[units[level.code_column] != ""]
            .groupby(level.code_column)[["households", "residents"]]
            .sum()
        )
        expected = polygons[["households", "residents"]]
        got = totals.reindex(expected.index, fill_value=0)
        if not got.equals(expected.astype(np.int64)):  # pragma: no cover - fixed seed
            bad = got.index[(got != expected).any(axis=1)].tolist()
            raise RuntimeError(f"unit totals differ from the {level.name} attributes: {bad[:5]}")


def write_units(units: gpd.GeoDataFrame, path: Path | str) -> Path:
    """Write the unit layer as GeoParquet (zstd), atomically and byte-reproducibly.

    Coordinates are stored as they are (nothing rounded), as WKB; zstd at
    its highest useful level keeps the demo's 16,660 units to about 0.7 MB
    (snappy, the default, 1.1 MB; GeoArrow coordinates compress worse).
    Nothing in the file depends on the time of writing, so the same units
    give the same bytes with the same pyarrow and geopandas.
    """
    buffer = io.BytesIO()
    units.to_parquet(buffer, index=False, compression="zstd", compression_level=19)
    return write_bytes(buffer.getvalue(), path)
