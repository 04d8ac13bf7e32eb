"""Scenarios for planning: new housing in a plan, and synthetic towns to test on.

:func:`grow` is "a development of 3,000 households went up here": it returns
a plan whose units carry the new households, so the imbalance it causes can
be measured (:mod:`gridgeo.plan.metrics`) and fixed
(:func:`~gridgeo.plan.rebalance.rebalance`). :func:`synthetic_town` builds a
lattice grid system with units of any size, the input of the rebalancing
tests and benchmark.

A plan's unit layer is shared, unchanged, by every plan of its lineage
(households are a fixed attribute of a unit: only grid codes change). A
grown plan therefore gets a *new* unit layer: same ids, geometry and
adjacency graph (shared, not copied), new household and resident counts. It
is still comparable with its parent (:func:`~gridgeo.plan.compare` matches
units by id), and a plan store keeps its unit layer as a new layer, since
the layer's fingerprint changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo.config import BANNER, GridConfig, Role
from gridgeo.errors import PlanError, option
from gridgeo.model import GridSystem
from gridgeo.plan.model import Plan, Step, _now
from gridgeo.plan.units import UNIT_LAYER

__all__ = ["grow", "synthetic_town"]


def grow(
    plan: Plan,
    where: Iterable[str] | shapely.Geometry | gpd.GeoSeries | gpd.GeoDataFrame,
    households: int,
    *,
    residents_per_household: float | None = None,
    seed: int = 0,
    by: str | None = None,
) -> Plan:
    """A plan whose units in ``where`` hold ``households`` more households.

    The new households are spread over the chosen units in proportion to
    their area (a development fills land), drawn with a seeded generator so
    the result is reproducible. Residents grow with them, at the plan's
    residents per household (or ``residents_per_household``).

    Parameters
    ----------
    plan : Plan
    where : list of unit ids, or a polygon
        The units that get the new households: their ids, or a polygon
        (shapely in the plan's CRS, or a GeoSeries/GeoDataFrame in any CRS)
        holding their representative points.
    households : int
        New households in total (positive).
    residents_per_household : float, optional
        Default: the plan's residents over its households.
    seed : int
    by : str, optional
        Author of the ``grow`` step in the history.

    Returns
    -------
    Plan
        Same grids and codes; a new unit layer (ids, geometry and adjacency
        shared with ``plan``) with the new counts; one ``grow`` step more in
        its history. :meth:`Plan.undo` returns ``plan``.

    Raises
    ------
    PlanError
        ``households`` is not positive, or ``where`` holds no unit.

    Examples
    --------
    >>> from gridgeo import load_demo
    >>> plan = Plan.from_system(load_demo(units=True))
    >>> units = plan.units.query("grid_code == '150823100017'")["unit_id"]
    >>> grown = grow(plan, units, 600)
    >>> grown.households_of(["150823100017"])["150823100017"] - plan.households_of(
    ...     ["150823100017"]
    ... )["150823100017"]
    600
    >>> grown.history["op"].tolist()
    ['grow']
    """
    if int(households) != households or households <= 0:
        raise PlanError(
            f"{option('households', households)}: new households must be a positive whole number.",
            "unknown",
        )
    shared = plan._units
    chosen = _chosen(plan, where)
    area = shared.area[chosen]
    weight = area / area.sum() if area.sum() > 0 else np.full(len(chosen), 1 / len(chosen))
    rng = np.random.default_rng(seed)
    extra = rng.multinomial(int(households), weight)
    ratio = residents_per_household
    if ratio is None:
        total = shared.households.sum()
        ratio = shared.residents.sum() / total if total else 1.0
    new_hh = shared.households.copy()
    new_res = shared.residents.copy()
    new_hh[chosen] += extra
    # residents rounded per unit, so every unit stays whole
    new_res[chosen] += np.rint(extra * ratio).astype(np.int64)
    frame = shared.frame.copy()
    frame["households"] = new_hh
    frame["residents"] = new_res
    units = replace(shared, frame=frame, households=new_hh, residents=new_res)
    touched = sorted(set(plan.workload[chosen[extra > 0]]))
    step = Step(
        op="grow",
        params={"units": len(chosen), "households": int(households), "seed": seed},
        when=_now(),
        by=by or plan.author,
        touched=tuple(touched),
    )
    return replace(
        plan,
        _units=units,
        steps=(*plan.steps, step),
        _previous=plan,
        _undone=(),
        _shapes=dict(plan._shapes),
    )


def _chosen(plan: Plan, where) -> np.ndarray:
    """Positions of the units ``where`` names or covers."""
    shared = plan._units
    if isinstance(where, gpd.GeoDataFrame | gpd.GeoSeries):
        series = where.geometry if isinstance(where, gpd.GeoDataFrame) else where
        if series.crs is not None and series.crs != shared.frame.crs:
            series = series.to_crs(shared.frame.crs)
        where = shapely.union_all(series.to_numpy())
    if isinstance(where, shapely.Geometry):
        points = shapely.point_on_surface(shared.geoms)
        chosen = np.flatnonzero(shapely.contains(where, points))
        if len(chosen) == 0:
            raise PlanError(
                f"the polygon given as {option('where')} holds no unit of the plan; draw it "
                f"over the units, in the plan's CRS ({shared.frame.crs}).",
                "unknown",
            )
        return chosen
    return plan._unit_positions(list(where))


def synthetic_town(
    rows: int,
    cols: int,
    *,
    size: int = 5,
    towns: int = 1,
    households: int = 400,
    spread: float = 0.25,
    seed: int = 0,
    config: GridConfig = BANNER,
) -> GridSystem:
    """A lattice grid system with a unit layer: ``towns`` × ``rows`` × ``cols`` grids of size² units.

    Towns sit side by side (west → east); each grid is a square of ``size`` ×
    ``size`` square units (0.001° a side, ~85 × 111 m at 40.7°N). Each
    grid's households are drawn uniformly within ``households`` × (1 ±
    ``spread``) and shared by its units with a seeded Dirichlet draw, so
    some grids start outside a ±10 % window and units differ in size. Grids
    carry the attributes of the configuration's first norm with a household
    window (urban comprehensive for the banner) and 3 workers; there are no
    micro-grids.

    A district holds at most ``10 ** code_digits - 1`` grids (999 for the
    banner), so larger systems need more ``towns``.

    Examples
    --------
    >>> system = synthetic_town(2, 3, size=3, seed=1)
    >>> len(system["grid"]), len(system.sources["units"])
    (6, 54)
    """
    district, workload, refinement = (
        config.role(r) for r in (Role.DISTRICT, Role.WORKLOAD, Role.REFINEMENT)
    )
    root = config.role(Role.ROOT)
    if rows * cols >= 10**workload.code_digits:
        raise PlanError(
            f"{rows} × {cols} grids do not fit the {workload.code_digits}-digit grid codes of one "
            f"district; use more {option('towns')}.",
            "unknown",
        )
    rng = np.random.default_rng(seed)
    d, x0, y0 = 0.001, 108.5, 40.7
    window = next(
        (n for n in config.norms if n.households_min is not None and n.households_max is not None),
        None,
    )
    attributes = dict(window.where) if window is not None else {}
    n = size * rows
    m = size * cols
    i, j = np.meshgrid(np.arange(m * towns), np.arange(n), indexing="ij")
    i, j = i.ravel(), j.ravel()
    town = i // m
    gi = (n - 1 - j) // size * cols + (i % m) // size  # reading order: north row first
    prefix = root.code_width
    town_codes = np.array(
        [config.root_code[:prefix] + str(100 + t).zfill(district.code_digits) for t in range(towns)]
    )
    town_code = town_codes[town]
    grid_code = np.char.add(
        town_code.astype(str), np.char.zfill((gi + 1).astype(str), workload.code_digits)
    )
    totals = rng.uniform(households * (1 - spread), households * (1 + spread), rows * cols * towns)
    hh = np.zeros(len(i), dtype=np.int64)
    key = town * rows * cols + gi
    order = np.argsort(key, kind="stable")
    for g, members in enumerate(
        np.split(order, np.cumsum(np.bincount(key, minlength=rows * cols * towns))[:-1])
    ):
        share = rng.dirichlet(np.full(len(members), 2.0))
        raw = share * round(totals[g])
        whole = np.floor(raw).astype(np.int64)
        # largest remainders, so the grid holds exactly its drawn total
        rest = round(totals[g]) - int(whole.sum())
        whole[np.argsort(-(raw - whole), kind="stable")[:rest]] += 1
        hh[members] = whole
    geoms = shapely.box(x0 + i * d, y0 + j * d, x0 + (i + 1) * d, y0 + (j + 1) * d)
    crs = "EPSG:4490"
    units = gpd.GeoDataFrame(
        {
            "unit_id": [f"S{k:06d}" for k in range(len(i))],
            district.code_column: town_code,
            workload.code_column: grid_code,
            "households": hh,
            "residents": hh * 2 + (hh > 0),
            "village": "",
            "kind": attributes.get("settlement", ""),
        },
        geometry=geoms,
        crs=crs,
    )
    if refinement is not None:
        units[refinement.code_column] = ""

    def level(codes: np.ndarray, parents: np.ndarray) -> gpd.GeoDataFrame:
        frame = pd.DataFrame({"code": codes, "parent_code": parents, "geom": list(geoms)})
        out = frame.groupby(["code", "parent_code"], sort=True)["geom"].agg(
            lambda g: shapely.coverage_union_all(np.asarray(g, dtype=object))
        )
        out = out.reset_index()
        return gpd.GeoDataFrame(
            {"code": out["code"], "name": out["code"], "parent_code": out["parent_code"]},
            geometry=out["geom"].to_numpy(),
            crs=crs,
        )

    top = gpd.GeoDataFrame(
        {"code": [config.root_code], "name": [config.root_name], "parent_code": [""]},
        geometry=[shapely.coverage_union_all(geoms)],
        crs=crs,
    )
    layers = {
        root.name: top,
        district.name: level(town_code, np.full(len(i), config.root_code)),
        workload.name: level(grid_code, town_code),
    }
    grids = layers[workload.name]
    for column, value in attributes.items():
        grids[column] = value
    grids["workers"] = 3
    grids["leader"] = ""
    if refinement is not None:
        layers[refinement.name] = gpd.GeoDataFrame(
            {"code": [], "name": [], "parent_code": []}, geometry=[], crs=crs
        )
    layers[UNIT_LAYER] = units
    return GridSystem.from_layers(layers, config, origin="synthetic")
