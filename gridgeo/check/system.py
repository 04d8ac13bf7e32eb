"""Check a grid system level by level: codes, geometry, coverage of each parent."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gridgeo.check import steps
from gridgeo.check.report import CheckReport
from gridgeo.codes import code_width_ok
from gridgeo.config import BANNER, Coverage, GridConfig, Level, Role, Tolerances
from gridgeo.crs import check_coordinates, metric_crs, projector, require_crs
from gridgeo.defects import COLUMNS, defect_frame
from gridgeo.errors import CrsError, option
from gridgeo.model import GridSystem

__all__ = ["check_level", "check_system"]


def check_system(
    system: GridSystem, *, dual: bool = True, tolerances: Tolerances | None = None
) -> CheckReport:
    """Check every level of ``system`` against itself and its parent.

    Each level is projected once (edges densified, :func:`gridgeo.crs.project`)
    and its repaired metric copy is the next level's parent. With
    ``metric_crs="auto"`` in the configuration the metric CRS is chosen once,
    from the extent of all levels (``report.metric_crs``).

    Parameters
    ----------
    system:
        A grid system, loaded with ``strict=False`` if it may carry code
        defects (``gridgeo.read_system(path, strict=False)``).
    dual:
        Also check the merged dual grid against the configuration's
        ``dual_sources`` layers when the system has them.
    tolerances:
        Metre tolerances; the configuration's by default.

    Returns
    -------
    CheckReport
        ``report.defects`` is empty for a clean system.

    Examples
    --------
    >>> from gridgeo import load_demo
    >>> report = check_system(load_demo(), dual=False)
    >>> report.defects.empty, report.metric_crs.to_epsg()
    (True, 4545)
    """
    config = system.config
    tol = tolerances or config.tolerances
    metric = system.metric_crs
    frames, hints = [], []
    parent = None
    for level in config.levels:
        frame = system.levels[level.name]
        defects, repaired = _check(frame, level, parent, config, tol, metric)
        frames.append(defects)
        hints += defects.attrs.get("hints", [])
        parent = steps.metric_parents(repaired, frame["code"].astype(str).to_numpy())
    crosswalk = pd.DataFrame()
    defects = _concat(frames, metric).to_crs(system.crs)
    sources = tuple(config.dual_sources)
    if dual and sources and set(sources) <= set(system.sources):
        from gridgeo.dual import check_system_dual

        dual_report = check_system_dual(system, tolerances=tol)
        crosswalk = dual_report.crosswalk
        defects = _concat([defects, dual_report.defects.to_crs(system.crs)], system.crs)
    return CheckReport(defects, crosswalk, hints, metric)


def check_level(
    frame: gpd.GeoDataFrame,
    level: str | None = None,
    parent: gpd.GeoDataFrame | None = None,
    *,
    config: GridConfig = BANNER,
    tolerances: Tolerances | None = None,
) -> gpd.GeoDataFrame:
    """Check one layer (``code``, ``parent_code``, geometry) and its parent layer.

    The layer follows the coverage rule of ``config.level(level)`` (the
    configuration's workload level by default): a ``full`` level must cover
    each parent, a ``refined`` one each parent it has children in. A layer
    with no rows at all is checked like any other: under a ``full`` rule each
    parent is one ``gap`` named by the parent's code; under ``refined`` there
    is nothing to report. Returns the defect table in ``frame``'s CRS; a
    GCJ-02 hint, if any, is in ``.attrs["hints"]``. For a layer without
    codes, use :func:`gridgeo.check.check_layer`.

    Raises
    ------
    CrsError, GeometryError
        A layer has no CRS, the two layers' CRSs differ, or coordinates are
        not numbers or lie outside the CRS's area of use
        (:func:`gridgeo.crs.check_coordinates`).
    SchemaError
        The layer has no ``code`` column.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> town = gpd.GeoDataFrame({"code": ["150823100"], "parent_code": ["150823"]},
    ...                         geometry=[box(500_000, 4_500_000, 500_100, 4_500_100)], crs=4545)
    >>> grids = gpd.GeoDataFrame(
    ...     {"code": ["150823100001", "150823100002"], "parent_code": ["150823100"] * 2},
    ...     geometry=[box(500_000, 4_500_000, 500_050, 4_500_100),
    ...               box(500_050, 4_500_000, 500_100, 4_500_080)], crs=4545)
    >>> check_level(grids, "grid", town)[["kind", "codes", "area_m2"]]
      kind                      codes  area_m2
    0  gap  150823100001,150823100002   1000.0

    Two grids with a strip between them touch no neighbour: each is also an
    ``island``.

    >>> grids.geometry = [box(500_000, 4_500_000, 500_050, 4_500_100),
    ...                   box(500_060, 4_500_000, 500_100, 4_500_100)]
    >>> check_level(grids, "grid", town)[["kind", "codes", "area_m2"]]
         kind                      codes  area_m2
    0     gap  150823100001,150823100002   1000.0
    1  island               150823100001      0.0
    2  island               150823100002      0.0
    """
    level = level or config.role_name(Role.WORKLOAD) or config.levels[-1].name
    crs = require_crs(frame, f"layer {level!r}")
    if "code" not in frame.columns:
        from gridgeo.errors import SchemaError

        raise SchemaError(
            f"layer {level!r} has no 'code' column, which check_level needs to join it to "
            f"its parent. To check a plain polygon layer, use gridgeo.check.check_layer "
            f"(optionally with {option('id', 'your id column')})."
        )
    if parent is not None and CRS.from_user_input(require_crs(parent, "parent layer")) != crs:
        raise CrsError(
            f"layer {level!r} is in {crs.to_string()} but its parent layer is in "
            f"{CRS.from_user_input(parent.crs).to_string()}; reproject one with "
            ".to_crs(...) so both share a CRS."
        )
    check_coordinates(frame, f"layer {level!r}", config)
    if parent is not None:
        check_coordinates(parent, "parent layer", config)
    tol = tolerances or config.tolerances
    metric = metric_crs(config, parent if parent is not None and len(parent) else frame)
    if parent is not None:
        parent = _parent_series(parent, metric, tol)
    defects, _ = _check(frame, config.level(level), parent, config, tol, metric)
    out = defects.to_crs(crs)
    out.attrs["hints"] = defects.attrs.get("hints", [])
    return out


# -- one level ---------------------------------------------------------------------
def _check(
    frame: gpd.GeoDataFrame,
    level: Level,
    parent: pd.Series | None,
    config: GridConfig,
    tol: Tolerances,
    metric: CRS,
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """The defects of one level (metric CRS) and its repaired metric geometry."""
    codes = frame["code"].astype(str).to_numpy()
    parents = frame["parent_code"].astype(str).to_numpy() if "parent_code" in frame else None
    district = _district_length(config)
    text = pd.Series(codes, dtype=object)
    towns = text.str.slice(0, district).where(text.str.len() >= district, "").to_numpy(dtype=object)

    fixed = steps.repair(frame.geometry.to_numpy(), projector(frame.crs, metric), tol)
    findings, orphans = _codes(codes, parents, level, parent, config, fixed.geoms)
    findings = fixed.findings + findings
    coverage = level.coverage if parents is not None else Coverage.ROOT
    topo = steps.topology(fixed.geoms, fixed.usable, tol, parents=parents, parent=parent,
                          coverage=coverage, quiet=orphans)  # fmt: skip
    findings += topo.findings
    rows = [_row(f, level.name, codes, towns, district) for f in findings]
    defects = defect_frame(rows, metric)
    defects.attrs["hints"] = _gcj_hint(topo, fixed, parents, parent, level, config, tol, metric)
    return defects, fixed.geoms


def _row(f: steps.Finding, level: str, codes, towns, district: int) -> dict:
    members = np.sort(f.members) if len(f.members) > 1 else f.members
    if f.owner is not None and not len(members):  # a parent with no child at all
        named, town = [f.owner], [f.owner[:district]]
    else:
        named, town = sorted(codes[members]), sorted(towns[members])
    return {"kind": f.kind, "level": level, "codes": named, "district": town,
            "geometry": f.geometry, "detail": f.detail, "width_m": f.width_m}  # fmt: skip


def _codes(codes, parents, level, parent, config, geoms) -> tuple[list, np.ndarray]:
    """Duplicate, malformed and orphan codes; returns the findings and the orphan mask."""
    out = []
    series = pd.Series(codes)
    dup = series[series.duplicated(keep=False)]
    for idx in dup.groupby(dup).groups.values():
        members = idx.to_numpy()
        out.append(
            steps.Finding(
                "duplicate_code", members[:1], shapely.union_all(geoms[members]), str(len(idx)), 0.0
            )
        )
    width_bad = ~code_width_ok(series, level.code_width).to_numpy()
    out += [
        steps.Finding("bad_code", np.array([i]), shapely.point_on_surface(geoms[i]),
                      f"not {level.code_width} digits", 0.0)
        for i in np.flatnonzero(width_bad)
    ]  # fmt: skip
    orphan = np.zeros(len(codes), dtype=bool)
    if parent is None or parents is None:
        return out, orphan
    plen = config.parent(level.name).code_length
    orphan = ~np.isin(parents, parent.index)
    out += [steps.Finding("orphan", np.array([i]), geoms[i], parents[i], 0.0)
            for i in np.flatnonzero(orphan)]  # fmt: skip
    # A child extends the first code_length digits of its parent's code (a root code
    # with trailing zeros, 150800, is extended by 1508…: see gridgeo.config).
    prefix = pd.Series(parents, dtype=object).str.slice(0, plen).to_numpy()
    extends = (pd.Series(codes, dtype=object).str.slice(0, plen).to_numpy() == prefix).astype(bool)
    out += [
        steps.Finding("bad_code", np.array([i]), shapely.point_on_surface(geoms[i]),
                      f"does not extend parent {parents[i]}", 0.0)
        for i in np.flatnonzero(~extends & ~orphan & ~width_bad)
    ]  # fmt: skip
    return out, orphan


def _gcj_hint(topo, fixed, parents, parent, level, config, tol, metric) -> list[str]:
    """A sentence when the level's gaps and outside pieces are one GCJ-02 shift."""
    if parent is None or parents is None:
        return []
    mine = np.isin(parents, parent.index) & fixed.usable
    mothers = parent.reindex(np.unique(parents[mine])).to_numpy()
    return hint_for(topo, fixed.geoms[mine], mothers, level.name,
                    config.parent(level.name).name, metric)  # fmt: skip


# A GCJ-02 layer is off by 300-700 m: over a parent of perimeter P its gaps and
# outside pieces add up to at least about P x 300 m / 2. Below a third of that
# no shift of that size can be the cause, and the union below is not computed.
_GCJ_MIN_SHIFT_M, _GCJ_MAX_SHIFT_M = 300.0, 700.0


def hint_for(
    topo: steps.Topology, layer: np.ndarray, parents: np.ndarray, name: str, against: str, metric
) -> list[str]:
    """The GCJ-02 hint for layer ``name`` (its metric polygons) checked against ``against``.

    Given when the gaps and outside pieces of ``topo`` are large enough to be a
    300–700 m shift and converting ``layer`` from GCJ-02 removes at least
    half of its mismatch with the ``parents``.
    """
    if not (len(topo.gaps) and len(topo.outside)):
        return []
    misfit = shapely.area(topo.gaps).sum() + shapely.area(topo.outside).sum()
    if misfit < _GCJ_MIN_SHIFT_M / 6 * shapely.length(parents).sum():
        return []
    whole = steps.union(layer, np.zeros(len(layer), dtype=bool))
    shift, explained = steps.gcj02_shift(whole, shapely.union_all(parents), metric)
    if not (_GCJ_MIN_SHIFT_M <= shift <= _GCJ_MAX_SHIFT_M and explained >= 0.5):
        return []
    return [
        f"layer {name!r}: its gaps and the parts outside {against!r} line up with a "
        f"{shift:.0f} m shift, the signature of GCJ-02 (AMap, Tencent) coordinates checked "
        f"against WGS-84/CGCS2000 ones; converting the layer from GCJ-02 removes "
        f"{explained:.0%} of the mismatch. Read it with {option('coords', 'gcj02')}. "
        f"图层 {name!r} 的缺口与超出部分呈约 {shift:.0f} m 的整体偏移，疑似未转换的 GCJ-02"
        "（高德/腾讯）坐标。"
    ]


# -- helpers ---------------------------------------------------------------------
def _parent_series(parent: gpd.GeoDataFrame, metric: CRS, tol: Tolerances) -> pd.Series:
    """Parent polygons by code, repaired and projected once."""
    fixed = steps.repair(parent.geometry.to_numpy(), projector(parent.crs, metric), tol)
    return steps.metric_parents(fixed.geoms, parent["code"].astype(str).to_numpy())


def _district_length(config: GridConfig) -> int:
    district = config.role(Role.DISTRICT)
    if district is not None:
        return district.code_length
    return config.levels[1].code_length if len(config.levels) > 1 else len(config.root_code)


def _concat(frames, crs) -> gpd.GeoDataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return gpd.GeoDataFrame(columns=list(COLUMNS), geometry="geometry", crs=crs)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs)
