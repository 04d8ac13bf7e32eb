"""Check one plain polygon layer: no codes, no hierarchy, just the polygons."""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo.check import steps
from gridgeo.check.report import CheckReport
from gridgeo.check.system import hint_for
from gridgeo.config import BANNER, Coverage, Tolerances
from gridgeo.crs import AUTO, check_coordinates, metric_crs, projector, require_crs
from gridgeo.defects import defect_frame
from gridgeo.errors import GeometryError, SchemaError, option

__all__ = ["check_layer"]

_OUTLINE = "outline"


def check_layer(
    gdf: gpd.GeoDataFrame,
    within=None,
    id: str | None = None,
    *,
    name: str = "layer",
    metric: str | None = None,
    tolerances: Tolerances | None = None,
) -> CheckReport:
    """Check one plain polygon layer, as maup.doctor or QGIS's Topology Checker would.

    No codes and no hierarchy: any polygon layer (precincts, parcels, a
    county's towns drawn by someone else). It reports, in the defect table
    of :func:`~gridgeo.check.check_system`:

    - ``invalid_geometry`` (GEOS's reason, at the place it names),
      ``empty_geometry``, ``not_polygon`` (checking goes on with a repaired copy;
      holes the repair itself opens are ``repair_hole``, not gaps);
    - ``overlap`` pieces (``sliver`` when narrower than the sliver tolerance);
    - ``gap`` pieces: area the layer encloses that no polygon covers (the
      holes of its union) — and, with ``within``, every part of the outline
      no polygon covers, gaps open to the outline's edge included; with
      ``within``, also ``outside_parent`` pieces of polygons beyond it;
    - ``multipart`` polygons, ``island`` polygons touching no other,
      ``edge_mismatch`` where shared borders do not match vertex for vertex
      (GEOS coverage validation).

    Every gap, overlap and sliver row is one connected piece;
    :meth:`CheckReport.borders` adds them up per pair of polygons. Areas and
    widths are measured in a metric CRS chosen from the layer's extent
    (``report.metric_crs``), after densifying long edges.

    Parameters
    ----------
    gdf : GeoDataFrame
        The polygons, in any CRS pyproj knows.
    within : GeoDataFrame, GeoSeries or shapely geometry, optional
        The outline the layer should cover exactly (a county's border). Its
        rows are united. A geometry without CRS is taken to be in ``gdf``'s.
    id : str, optional
        Column naming the polygons in the ``codes`` column; the row labels
        of ``gdf`` (row numbers of a file just read) otherwise.
    name : str
        What the ``level`` column and messages call the layer.
    metric : str, optional
        Metric CRS (an EPSG code …); by default chosen from the extent.
    tolerances : Tolerances, optional
        Metre tolerances (dust 1 cm, sliver 1 m by default).

    Returns
    -------
    CheckReport
        ``report.defects`` (in ``gdf``'s CRS) is empty for a clean layer;
        ``report.hints`` says when the layer looks like unconverted GCJ-02.

    Raises
    ------
    CrsError, GeometryError
        No CRS, or coordinates that cannot be where the CRS says.
    SchemaError
        ``id`` is not a column of ``gdf``.

    Examples
    --------
    Three 100 m squares; the third is drawn 2 m too far east: a 2 m gap, 2 m
    beyond a 300 m outline, and it touches no other square (an island).

    >>> import geopandas as gpd
    >>> from shapely import box
    >>> cells = gpd.GeoDataFrame(
    ...     {"name": ["a", "b", "c"]},
    ...     geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100), box(202, 0, 302, 100)],
    ...     crs=4545).translate(500_000, 4_500_000)
    >>> report = check_layer(gpd.GeoDataFrame({"name": ["a", "b", "c"]}, geometry=cells),
    ...                      within=box(500_000, 4_500_000, 500_300, 4_500_100), id="name")
    >>> report.defects[["kind", "codes", "area_m2", "width_m"]].round(1)
                 kind codes  area_m2  width_m
    0             gap   b,c    200.0      2.0
    1  outside_parent     c    200.0      2.0
    2          island     c      0.0      0.0
    >>> report.metric_crs.to_epsg()
    4545
    """
    crs = require_crs(gdf, f"layer {name!r}")
    check_coordinates(gdf, f"layer {name!r}")
    labels = _labels(gdf, id, name)
    tol = tolerances or BANNER.tolerances
    outline = _outline(within, crs, name)
    config = replace(BANNER, metric_crs=metric or AUTO)
    target = metric_crs(config, gdf if outline is None else outline)
    fixed = steps.repair(gdf.geometry.to_numpy(), projector(crs, target), tol)
    keys = np.full(len(gdf), _OUTLINE, dtype=object)
    parent = None
    if outline is not None:
        shape = steps.repair(outline.geometry.to_numpy(), projector(outline.crs, target), tol)
        parent = pd.Series([shapely.union_all(shape.geoms[shape.usable])], index=[_OUTLINE])
    topo = steps.topology(fixed.geoms, fixed.usable, tol, parents=keys if parent is not None
                          else None, parent=parent, coverage=Coverage.FULL,
                          holes=parent is None)  # fmt: skip
    rows = [_row(f, name, labels) for f in fixed.findings + topo.findings]
    defects = defect_frame(rows, target).to_crs(crs)
    hints = []
    if parent is not None:
        hints = hint_for(topo, fixed.geoms[fixed.usable], parent.to_numpy(), name, _OUTLINE, target)
    return CheckReport(defects, hints=hints, metric_crs=target)


def _labels(gdf: gpd.GeoDataFrame, id: str | None, name: str) -> np.ndarray:
    if id is None:
        return gdf.index.astype(str).to_numpy(dtype=object)
    if id not in gdf.columns:
        columns = [c for c in gdf.columns if c != gdf.geometry.name]
        raise SchemaError(
            f"layer {name!r} has no column {id!r} to name its polygons by; its columns are "
            f"{columns}. Set {option('id', 'one of them')}, or leave it out to use row numbers."
        )
    return gdf[id].astype(str).to_numpy(dtype=object)


def _outline(within, crs, name: str) -> gpd.GeoDataFrame | None:
    """``within`` as a GeoDataFrame with a CRS (the layer's when it has none)."""
    if within is None:
        return None
    if isinstance(within, shapely.Geometry):
        within = gpd.GeoSeries([within])
    if isinstance(within, gpd.GeoSeries):
        within = gpd.GeoDataFrame(geometry=within)
    if not isinstance(within, gpd.GeoDataFrame):
        raise GeometryError(
            f"the outline of layer {name!r} must be a GeoDataFrame, GeoSeries or shapely "
            f"geometry, not {type(within).__name__}."
        )
    if within.crs is None:
        within = within.set_crs(crs)
    check_coordinates(within, f"the outline of layer {name!r}")
    return within


def _row(f: steps.Finding, name: str, labels: np.ndarray) -> dict:
    codes = sorted(labels[f.members], key=_natural) if len(f.members) else []
    return {"kind": f.kind, "level": name, "codes": codes, "district": [name],
            "geometry": f.geometry, "detail": _OUTLINE if f.kind == "outside_parent" else f.detail,
            "width_m": f.width_m}  # fmt: skip


def _natural(label: str):
    """Row numbers sort as numbers (2 before 10), other labels as text."""
    return (0, int(label), "") if label.isdigit() else (1, 0, label)
