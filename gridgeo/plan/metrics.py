"""Workload and shape of a plan's grids: how full, how compact, how many villages cut.

Per grid (:func:`grid_metrics`): households against the grid's window (the
configuration's norms, :func:`windows`), the deviation from the window's
centre, households per worker, two compactness scores and the natural
villages the grid shares with other grids. Per plan (:func:`plan_metrics`):
the same, summed up. Everything is computed on whole arrays: shapely for the
shapes, pandas group-bys for the counts.

Compactness, both 1 for a circle and lower for a stretched or ragged grid:

- **Polsby-Popper** ``4πA / P²`` (area against the perimeter: a square scores
  π/4 ≈ 0.785; a ragged edge lowers it);
- **Reock** ``A / (π r²)`` with ``r`` the radius of the minimum bounding
  circle (``shapely.minimum_bounding_radius``, exact; a square scores 2/π ≈
  0.637; an elongated grid lowers it).

Both are measured in the plan's metric CRS, so they do not depend on the
latitude.

Examples
--------
>>> from gridgeo import load_demo
>>> from gridgeo.plan import Plan
>>> plan = Plan.from_system(load_demo(units=True))
>>> m = grid_metrics(plan, towns=["150823100"])
>>> m.loc["150823100001", ["households", "polsby_popper"]].round(2).tolist()
[74.0, 0.71]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import shapely

from gridgeo.config import Role
from gridgeo.errors import PlanError, option
from gridgeo.plan.model import Plan

__all__ = ["grid_metrics", "plan_metrics", "polsby_popper", "reock", "windows"]


def polsby_popper(geoms) -> np.ndarray:
    """Polsby-Popper compactness ``4πA / P²`` of polygons in a metric CRS (NaN when empty).

    Examples
    --------
    >>> from shapely import box, Point
    >>> polsby_popper([box(0, 0, 1, 1), Point(0, 0).buffer(1, quad_segs=256)]).round(3).tolist()
    [0.785, 1.0]
    """
    geoms = np.asarray(geoms, dtype=object)
    area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(perimeter > 0, 4 * np.pi * area / perimeter**2, np.nan)


def reock(geoms) -> np.ndarray:
    """Reock compactness: area over the area of the minimum bounding circle (NaN when empty).

    Examples
    --------
    >>> from shapely import box
    >>> reock([box(0, 0, 1, 1), box(0, 0, 4, 1)]).round(3).tolist()
    [0.637, 0.3]
    """
    geoms = np.asarray(geoms, dtype=object)
    radius = shapely.minimum_bounding_radius(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(radius > 0, shapely.area(geoms) / (np.pi * radius**2), np.nan)


def windows(
    plan: Plan,
    households: tuple[int, int] | None = None,
    per_worker: float | None = None,
) -> pd.DataFrame:
    """The household window of every grid, from the configuration's norms.

    A grid takes the tightest bounds of the norms that apply to it
    (:meth:`gridgeo.config.Norm.applies`): for the banner, an urban
    comprehensive grid 300–500 households, a rural grid at most 300, a
    dedicated grid none. ``households=(min, max)`` replaces the window of
    every norm that has both bounds (the urban one); ``per_worker`` (and a
    norm's ``per_worker_max``) caps households at that many per worker.

    Returns
    -------
    pandas.DataFrame
        Indexed by grid code: ``norm`` (names of the norms that apply, ``""``
        for none), ``low`` and ``high`` (households; ``0`` and ``inf`` where
        there is no bound), ``target`` (the window's centre, NaN without both
        bounds).

    Examples
    --------
    >>> from gridgeo import load_demo
    >>> plan = Plan.from_system(load_demo(units=True))
    >>> w = windows(plan)
    >>> w.groupby("norm")[["low", "high"]].first()
                         low   high
    norm
                         0.0    inf
    rural                0.0  300.0
    urban comprehensive  300.0  500.0
    """
    table = plan.grid_table
    if households is not None:
        households = _window(households)
    low = np.zeros(len(table))
    high = np.full(len(table), np.inf)
    names = np.full(len(table), "", dtype=object)
    workers = (
        pd.to_numeric(table["workers"], errors="coerce").fillna(1).clip(lower=1).to_numpy(float)
        if "workers" in table
        else np.ones(len(table))
    )
    for norm in plan.config.norms:
        hit = norm.applies(table)
        if not hit.any():
            continue
        lo, hi = norm.households_min, norm.households_max
        if households is not None and lo is not None and hi is not None:
            lo, hi = households
        if lo is not None:
            low[hit] = np.maximum(low[hit], lo)
        if hi is not None:
            high[hit] = np.minimum(high[hit], hi)
        if norm.per_worker_max is not None:
            high[hit] = np.minimum(high[hit], norm.per_worker_max * workers[hit])
        names[hit] = np.where(names[hit] == "", norm.name, names[hit] + " + " + norm.name)
    if per_worker is not None:
        if not per_worker > 0:
            raise PlanError(
                f"{option('per_worker', per_worker)}: households per worker must be positive.",
                "unknown",
            )
        ruled = names != ""
        high[ruled] = np.minimum(high[ruled], per_worker * workers[ruled])
    out = pd.DataFrame({"norm": names, "low": low, "high": high}, index=table.index)
    both = (out["low"] > 0) & np.isfinite(out["high"])
    out["target"] = ((out["low"] + out["high"]) / 2).where(both)
    return out


def _window(households) -> tuple[int, int]:
    """``(min, max)`` households, checked."""
    try:
        lo, hi = (int(v) for v in households)
    except (TypeError, ValueError):
        raise PlanError(
            f"{option('households', str(households))}: give the window as two whole numbers "
            "(min, max), e.g. (300, 500).",
            "unknown",
        ) from None
    if not 0 <= lo <= hi or hi == 0:
        raise PlanError(
            f"{option('households', f'{lo}:{hi}')}: the window needs 0 ≤ min ≤ max and max > 0.",
            "unknown",
        )
    return lo, hi


def _scope(plan: Plan, towns: Iterable[str] | str | None) -> np.ndarray:
    """Which rows of ``plan.grid_table`` lie in ``towns`` (all when None), checked."""
    parents = plan.grid_table["parent_code"].astype(str).to_numpy()
    if towns is None:
        return np.ones(len(parents), dtype=bool)
    towns = [towns] if isinstance(towns, str) else [str(t) for t in towns]
    unknown = sorted(set(towns) - set(parents))
    if unknown:
        label = plan.config.role(Role.DISTRICT).label_en
        known = sorted(set(parents))
        raise PlanError(
            f"{option('towns', ','.join(unknown))}: no {label} of that code has grids in this "
            f"plan (it has {len(known)}, e.g. {', '.join(known[:3])}).",
            "unknown",
            tuple(unknown),
        )
    return np.isin(parents, towns)


def _metric_shapes(plan: Plan, codes: list[str]) -> np.ndarray:
    """Grid polygons of ``codes`` in the plan's metric CRS (cached unions, one reprojection)."""
    import geopandas as gpd

    geoms = plan._geometry(codes, plan.workload)
    return gpd.GeoSeries(geoms, crs=plan._units.frame.crs).to_crs(plan.metric_crs).to_numpy()


def _villages(plan: Plan) -> pd.DataFrame:
    """Per grid: natural villages it holds, and how many of them other grids share."""
    village = plan._units.frame["village"].fillna("").astype(str).to_numpy()
    named = village != ""
    pairs = pd.DataFrame({"code": plan.workload[named], "village": village[named]})
    pairs = pairs.drop_duplicates()
    spread = pairs.groupby("village")["code"].transform("size")
    pairs["split"] = spread > 1
    return pairs.groupby("code").agg(villages=("village", "size"), villages_split=("split", "sum"))


def grid_metrics(
    plan: Plan,
    towns: Iterable[str] | str | None = None,
    *,
    households: tuple[int, int] | None = None,
    per_worker: float | None = None,
) -> pd.DataFrame:
    """Households, window, deviation, households per worker, compactness and villages per grid.

    Parameters
    ----------
    plan : Plan
    towns : str or list of str, optional
        District codes (the banner's towns) to measure; default every grid.
    households, per_worker
        Override the configuration's window (see :func:`windows`).

    Returns
    -------
    pandas.DataFrame
        Indexed by grid code: ``parent_code``, ``households``, ``residents``,
        ``units``, ``norm``, ``low``, ``high``, ``target``, ``deviation``
        (households over the target, minus 1; NaN without a window),
        ``outside`` (households beyond the window, negative below it, 0
        inside), ``workers`` and ``households_per_worker`` (when the grids
        carry workers), ``area_m2``, ``polsby_popper``, ``reock``,
        ``villages`` (natural villages in the grid) and ``villages_split``
        (those of them that other grids share too).

    Examples
    --------
    >>> from gridgeo import load_demo
    >>> plan = Plan.from_system(load_demo(units=True))
    >>> m = grid_metrics(plan, "150823100")
    >>> int((m["outside"] != 0).sum()), round(float(m["polsby_popper"].median()), 2)
    (6, 0.49)
    """
    keep = _scope(plan, towns)
    table = plan.grid_table[keep]
    codes = table.index.tolist()
    totals = plan._totals(plan.workload).reindex(table.index, fill_value=0)
    out = pd.DataFrame(index=table.index)
    out["parent_code"] = table["parent_code"].astype(str)
    for column in ("households", "residents", "units"):
        out[column] = totals[column].astype(np.int64)
    out = out.join(windows(plan, households, per_worker))
    h = out["households"].to_numpy(float)
    out["deviation"] = h / out["target"] - 1
    out["outside"] = np.where(
        h > out["high"], h - out["high"], np.where(h < out["low"], h - out["low"], 0.0)
    )
    if "workers" in table:
        workers = pd.to_numeric(table["workers"], errors="coerce")
        out["workers"] = workers.fillna(0).astype(np.int64)
        out["households_per_worker"] = out["households"] / workers.where(workers > 0)
    shapes = _metric_shapes(plan, codes)
    out["area_m2"] = shapely.area(shapes)
    out["polsby_popper"] = polsby_popper(shapes)
    out["reock"] = reock(shapes)
    villages = _villages(plan).reindex(table.index, fill_value=0)
    out["villages"] = villages["villages"].astype(np.int64)
    out["villages_split"] = villages["villages_split"].astype(np.int64)
    return out


def plan_metrics(
    plan: Plan,
    towns: Iterable[str] | str | None = None,
    *,
    households: tuple[int, int] | None = None,
    per_worker: float | None = None,
) -> dict[str, float]:
    """One line of numbers for a plan (or some of its towns): :func:`grid_metrics` summed up.

    Returns
    -------
    dict
        ``grids``, ``households``, ``with_window`` (grids a norm applies to),
        ``outside_window`` (of those, grids beyond it), ``households_outside``
        (households beyond the windows, summed), ``max_abs_deviation``
        (over grids with a target), ``median_polsby_popper``,
        ``median_reock``, ``villages_split`` (natural villages spread over
        more than one grid), ``households_per_worker`` (overall) and
        ``max_households_per_worker``.

    Examples
    --------
    >>> from gridgeo import load_demo
    >>> plan = Plan.from_system(load_demo(units=True))
    >>> plan_metrics(plan, "150823100")["outside_window"]
    6
    """
    m = grid_metrics(plan, towns, households=households, per_worker=per_worker)
    ruled = m["norm"] != ""
    village = plan._units.frame["village"].fillna("").astype(str).to_numpy()
    in_scope = np.isin(plan.workload, m.index.to_numpy())
    named = (village != "") & in_scope
    spread = pd.Series(plan.workload[named]).groupby(village[named]).nunique()
    out: dict[str, float] = {
        "grids": len(m),
        "households": int(m["households"].sum()),
        "with_window": int(ruled.sum()),
        "outside_window": int((ruled & (m["outside"] != 0)).sum()),
        "households_outside": int(m["outside"].abs().sum()),
        "max_abs_deviation": float(m["deviation"].abs().max())
        if m["target"].notna().any()
        else 0.0,
        "median_polsby_popper": float(m["polsby_popper"].median()),
        "median_reock": float(m["reock"].median()),
        "villages_split": int((spread > 1).sum()),
    }
    if "workers" in m:
        workers = int(m["workers"].sum())
        out["households_per_worker"] = out["households"] / workers if workers else float("nan")
        out["max_households_per_worker"] = float(m["households_per_worker"].max())
    return out
