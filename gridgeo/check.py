"""Gap and overlap checks: validate every level of a grid system at once.

The "四定" rule says every piece of the banner has exactly one grid at each
level, with a fixed person responsible. :func:`check_system` finds what
breaks it and returns the defects themselves — the gap polygon, the overlap
polygon, the mismatching edge, the self-intersection point — as one
GeoDataFrame (see :mod:`gridgeo.defects` for the columns).

Per level it reports invalid geometry (with GEOS's reason), empty and
non-polygon geometry, duplicate and malformed codes, orphans, overlaps,
gaps (parent area not covered by its children, found by differencing against
the parent, so gaps open to the parent's outer edge are found too), slivers
(by width: the diameter of the maximum inscribed circle), children outside
their parent, grids that fall apart, islands, and shared boundaries that do
not match vertex for vertex (GEOS coverage validation). With the source
layers present it also checks the merged dual grid (:mod:`gridgeo.dual`).

Invalid geometry is reported and checking continues on a repaired copy
(``make_valid``); holes that the repair itself creates are reported as
``repair_hole``, never as a user's gap. All measuring happens in the metric
CRS, with the tolerances of :class:`~gridgeo.config.Tolerances`.

Example
-------
>>> from gridgeo import load_demo
>>> report = check_system(load_demo("dirty"), dual=False)
>>> report.ok
False
>>> sorted(report.defects["kind"].unique())  # doctest: +NORMALIZE_WHITESPACE
['duplicate_code', 'gap', 'invalid_geometry', 'orphan', 'outside_parent',
 'overlap', 'sliver']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from gridgeo.codes import code_width_ok
from gridgeo.config import BANNER, Coverage, GridConfig, Level, Tolerances
from gridgeo.crs import check_coordinates, metric_crs, require_crs
from gridgeo.defects import COLUMNS, defect_frame, polygon_width, summarise
from gridgeo.errors import CrsError
from gridgeo.model import GridSystem

__all__ = ["CheckReport", "check_level", "check_system"]

_POLYGONAL = (3, 6)  # shapely type ids of Polygon and MultiPolygon
_LOCATION = re.compile(r"\[\s*([-+\d.eE]+)\s+([-+\d.eE]+)")


@dataclass
class CheckReport:
    """What :func:`check_system` found.

    Attributes
    ----------
    defects:
        The defect table, in the system's storage CRS.
    crosswalk:
        For the dual grid: which source grids each merged grid came from
        (empty when the source layers were not checked).
    """

    defects: gpd.GeoDataFrame
    crosswalk: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def errors(self) -> int:
        """Number of error-severity findings."""
        return int((self.defects["severity"] == "error").sum())

    @property
    def ok(self) -> bool:
        """True when nothing of severity ``error`` was found."""
        return self.errors == 0

    def summary(self) -> pd.DataFrame:
        """Counts per kind (rows) and town (columns)."""
        return summarise(self.defects)

    def to_dict(self) -> dict:
        """A JSON-ready summary: totals per severity, kind, level and town."""
        d = self.defects
        return {
            "ok": self.ok,
            "total": len(d),
            "by_severity": {k: int(v) for k, v in d["severity"].value_counts().items()},
            "by_kind": {k: int(v) for k, v in d["kind"].value_counts().items()},
            "by_level": {k: int(v) for k, v in d["level"].value_counts().items()},
            "by_town": {
                k: int(v) for k, v in d["town"].str.split(",").explode().value_counts().items() if k
            },
        }


def check_system(
    system: GridSystem, *, dual: bool = True, tolerances: Tolerances | None = None
) -> CheckReport:
    """Check every level of ``system`` against itself and its parent.

    Parameters
    ----------
    system:
        A grid system, loaded with ``strict=False`` if it may carry code
        defects (``gridgeo.read_system(path, strict=False)``).
    dual:
        Also check the merged dual grid against the ``party_grid`` and
        ``sanitation_grid`` source layers when the system has them.
    tolerances:
        Metre tolerances; the configuration's by default.

    Returns
    -------
    CheckReport
        ``report.defects`` is empty for a clean system.

    Examples
    --------
    >>> from gridgeo import load_demo
    >>> check_system(load_demo(), dual=False).defects.empty
    True
    """
    config = system.config
    tol = tolerances or config.tolerances
    frames = []
    parent_frame = None
    for level in config.levels:
        frame = system.levels[level.name]
        frames.append(_check(frame, level, parent_frame, config, tol))
        parent_frame = frame
    crosswalk = pd.DataFrame()
    defects = _concat(frames, metric_crs(config)).to_crs(system.crs)
    if dual and {"party_grid", "sanitation_grid"} <= set(system.sources):
        from gridgeo.dual import check_system_dual

        dual_report = check_system_dual(system, tolerances=tol)
        crosswalk = dual_report.crosswalk
        defects = _concat([defects, dual_report.defects.to_crs(system.crs)], system.crs)
    return CheckReport(defects, crosswalk)


def check_level(
    frame: gpd.GeoDataFrame,
    level: str = "grid",
    parent: gpd.GeoDataFrame | None = None,
    *,
    config: GridConfig = BANNER,
    tolerances: Tolerances | None = None,
) -> gpd.GeoDataFrame:
    """Check one layer (``code``, ``parent_code``, geometry) and its parent layer.

    The layer follows the coverage rule of ``config.level(level)``: a
    ``full`` level must cover each parent, a ``refined`` one each parent it
    has children in. A layer with no rows at all is checked like any other:
    under a ``full`` rule each parent is one ``gap`` named by the parent's
    code; under ``refined`` there is nothing to report. Returns the defect
    table in ``frame``'s CRS.

    Raises
    ------
    CrsError, GeometryError
        A layer has no CRS, the two layers' CRSs differ, or coordinates are
        not numbers or lie outside the CRS's area of use
        (:func:`gridgeo.crs.check_coordinates`).

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
    0  gap  150823100002,150823100001   1000.0

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
    crs = require_crs(frame, f"layer {level!r}")
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
    return _check(frame, config.level(level), parent, config, tol).to_crs(crs)


# -- the checks -------------------------------------------------------------------
def _check(
    frame: gpd.GeoDataFrame,
    level: Level,
    parent: gpd.GeoDataFrame | None,
    config: GridConfig,
    tol: Tolerances,
) -> gpd.GeoDataFrame:
    codes = frame["code"].astype(str).to_numpy()
    parents = frame["parent_code"].astype(str).to_numpy() if "parent_code" in frame else None
    town_len = config.levels[1].code_length if len(config.levels) > 1 else len(config.root_code)
    text = pd.Series(codes, dtype=object)
    towns = text.str.slice(0, town_len).where(text.str.len() >= town_len, "").to_numpy(dtype=object)
    rows: list[dict] = []

    def add(kind, idx, geometry, detail="", *, codes_=None, town=None, **extra):
        """One finding about the polygons at positions ``idx`` (or explicit codes)."""
        idx = np.atleast_1d(np.asarray(idx, dtype=int))
        rows.append(
            {
                "kind": kind,
                "level": level.name,
                "codes": list(codes[idx]) if codes_ is None else codes_,
                "town": list(towns[idx]) if town is None else town,
                "geometry": geometry,
                "detail": detail,
                **extra,
            }
        )

    # Validity is judged where the user drew the data (the storage CRS); all
    # measuring happens on the repaired copy in the metric CRS.
    project = _projector(frame.crs, config)
    repaired, usable = _repair(frame.geometry.to_numpy(), project, add, tol)
    orphans = _codes(codes, parents, level, parent, config, repaired, add)
    if parent is not None:
        parent = _parent_geoms(parent, project)

    if len(frame) > 1:
        tree = shapely.STRtree(repaired)
        left, right = tree.query(repaired, predicate="intersects")
        keep = (left < right) & usable[left] & usable[right]
        left, right = left[keep], right[keep]
    else:
        left = right = np.empty(0, dtype=int)

    invalid_edges = _invalid_edges(repaired, usable)
    found: list[shapely.Geometry] = []
    found += _overlaps(repaired, invalid_edges, left, right, tol, add)
    if parent is not None and parents is not None and level.coverage is not Coverage.ROOT:
        outside, inside = _outside(repaired, usable, parents, parent, tol, add)
        clean = shapely.is_empty(invalid_edges) | shapely.is_missing(invalid_edges)
        found += _gaps(
            repaired, usable & clean, usable & inside, parents, parent, level, tol, town_len, add
        )
        found += outside
    _multipart(repaired, usable, tol, add)
    if level.coverage is not Coverage.ROOT:
        _islands(repaired, usable, left, right, orphans, add)
    _edge_mismatch(repaired, invalid_edges, found, tol, add)
    return defect_frame(rows, metric_crs(config))


def _repair(geoms, project, add, tol) -> tuple[np.ndarray, np.ndarray]:
    """Report empty, non-polygon and invalid geometry; return a repaired metric copy."""
    repaired = geoms.copy()
    type_id = shapely.get_type_id(geoms)
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for i in np.flatnonzero(empty):
        add("empty_geometry", i, shapely.GeometryCollection(), width_m=0.0)
    not_poly = ~empty & ~np.isin(type_id, _POLYGONAL)
    for i in np.flatnonzero(not_poly):
        add("not_polygon", i, project(shapely.point_on_surface(geoms[i])), geoms[i].geom_type)
    usable = ~empty & ~not_poly
    invalid = np.zeros(len(geoms), dtype=bool)
    invalid[usable] = ~shapely.is_valid(geoms[usable])
    for i in np.flatnonzero(invalid):
        reason = shapely.is_valid_reason(geoms[i])
        match = _LOCATION.search(reason)
        point = shapely.Point(float(match[1]), float(match[2])) if match else None
        point = point or shapely.point_on_surface(geoms[i])
        add("invalid_geometry", i, project(point), reason, width_m=0.0)
        fixed = _polygonal(shapely.make_valid(geoms[i]))
        # Holes the repair opened (a ring crossing itself) are not the user's gaps.
        new_holes = project(shapely.difference(_interiors(fixed), _interiors(geoms[i])))
        if polygon_width(np.array([new_holes]))[0] > tol.dust:
            add("repair_hole", i, new_holes)
            fixed = shapely.union(fixed, _interiors(fixed))
        repaired[i] = fixed
    repaired[usable] = project(repaired[usable])
    # Projection can fold nanometre-scale kinks of valid data; mend them silently.
    folded = np.flatnonzero(usable & ~shapely.is_valid(np.where(usable, repaired, None)))
    for i in folded:
        repaired[i] = _polygonal(shapely.make_valid(repaired[i]))
    usable &= ~shapely.is_empty(np.where(usable, repaired, shapely.Polygon()))
    return repaired, usable


def _codes(codes, parents, level, parent, config, geoms, add) -> np.ndarray:
    """Duplicate, malformed and orphan codes. Returns the orphan mask."""
    series = pd.Series(codes)
    dup = series[series.duplicated(keep=False)]
    for idx in dup.groupby(dup).groups.values():
        add(
            "duplicate_code",
            idx.to_numpy()[:1],
            shapely.union_all(geoms[idx]),
            len(idx),
            width_m=0.0,
        )
    width_bad = ~code_width_ok(series, level.code_length).to_numpy()
    for i in np.flatnonzero(width_bad):
        add(
            "bad_code",
            i,
            shapely.point_on_surface(geoms[i]),
            f"not {level.code_length} digits",
            width_m=0.0,
        )
    orphan = np.zeros(len(codes), dtype=bool)
    if parent is None or parents is None:
        return orphan
    plen = config.parent(level.name).code_length
    orphan = ~np.isin(parents, parent["code"].astype(str).to_numpy())
    for i in np.flatnonzero(orphan):
        add("orphan", i, geoms[i], parents[i], width_m=0.0)
    extends = (pd.Series(codes, dtype=object).str.slice(0, plen) == parents).to_numpy(dtype=bool)
    for i in np.flatnonzero(~extends & ~orphan & ~width_bad):
        add(
            "bad_code",
            i,
            shapely.point_on_surface(geoms[i]),
            f"does not extend parent {parents[i]}",
            width_m=0.0,
        )
    return orphan


def _invalid_edges(repaired, usable) -> np.ndarray:
    """GEOS coverage validation: edges that do not match their neighbour's."""
    edges = np.full(len(repaired), None, dtype=object)
    if usable.sum() > 1:
        edges[usable] = shapely.coverage_invalid_edges(repaired[usable])
    return edges


def _overlaps(repaired, invalid_edges, left, right, tol, add) -> list:
    """Overlaps between polygons of the level; only pairs GEOS flags are intersected."""
    flagged = ~shapely.is_empty(invalid_edges) & ~shapely.is_missing(invalid_edges)
    pick = flagged[left] & flagged[right]
    a, b = left[pick], right[pick]
    if not len(a):
        return []
    inter = shapely.intersection(repaired[a], repaired[b])
    inter = np.array([_polygonal(g) for g in inter], dtype=object)
    width = polygon_width(inter)
    found = []
    for k in np.flatnonzero(width > tol.dust):
        kind = "sliver" if width[k] < tol.sliver else "overlap"
        add(
            kind,
            [a[k], b[k]],
            inter[k],
            "overlap 重叠" if kind == "sliver" else "",
            width_m=width[k],
        )
        found.append(inter[k])
    return found


def _gaps(repaired, matched, inside, parents, parent, level, tol, town_len, add) -> list:
    """Parent area that no child covers, found by differencing against the parent.

    ``matched`` marks children whose edges all match their neighbours' (GEOS
    can then union them as a coverage, much faster); ``inside`` those lying
    within their parent. A parent whose children all lie inside it and add up
    to its area has no gap, and is not differenced at all.
    """
    usable = ~shapely.is_empty(repaired) & np.isin(parents, parent.index)
    order = np.flatnonzero(usable)
    order = order[np.argsort(parents[order], kind="stable")]
    keys, starts = np.unique(parents[order], return_index=True)
    members = dict(zip(keys, np.split(order, starts[1:]) if len(keys) else [], strict=True))
    wanted = parent.index if level.coverage is Coverage.FULL else keys
    empty = np.empty(0, dtype=int)
    groups = [members.get(code, empty) for code in wanted]
    mothers = parent.reindex(wanted).to_numpy()
    area = shapely.area(repaired)
    todo = np.array(
        [
            not (inside[g].all() and abs(area[g].sum() - m.area) < tol.dust**2 and len(g))
            for g, m in zip(groups, mothers, strict=True)
        ],
        dtype=bool,
    )
    if not todo.any():
        return []
    unions = [_union(repaired[g], matched[g]) for g, t in zip(groups, todo, strict=True) if t]
    unions = np.array(unions, dtype=object)
    wanted = np.asarray(wanted)[todo]
    gaps = shapely.difference(mothers[todo], unions)
    pieces, owner = shapely.get_parts(gaps, return_index=True)
    pieces = np.array([_polygonal(g) for g in pieces], dtype=object)
    width = polygon_width(pieces)
    wide = width > tol.dust
    pieces, owner, width = pieces[wide], owner[wide], width[wide]
    if not len(pieces):
        return []
    # Which children border each piece: contact length along the piece's edge.
    tree = shapely.STRtree(repaired)
    eps = 0.05
    grown = shapely.buffer(pieces, eps, quad_segs=2)
    pi, ci = tree.query(grown, predicate="intersects")
    contact = shapely.area(shapely.intersection(grown[pi], repaired[ci])) / eps
    perimeter = shapely.length(pieces)
    near = (contact >= np.maximum(tol.sliver, 0.05 * perimeter[pi])) & usable[ci]
    near &= parents[ci] == wanted[owner[pi]]  # the parent's own children
    for k in range(len(pieces)):
        kids = ci[near & (pi == k)]
        kind = "sliver" if width[k] < tol.sliver else "gap"
        detail = "gap 缺口" if kind == "sliver" else ""
        if len(kids):
            add(kind, kids, pieces[k], detail, width_m=width[k])
        else:  # a parent with no child at all: name the parent
            mother = str(wanted[owner[k]])
            add(
                kind,
                [],
                pieces[k],
                detail,
                codes_=[mother],
                town=[mother[:town_len]],
                width_m=width[k],
            )
    return list(pieces)


def _outside(repaired, usable, parents, parent, tol, add) -> tuple[list, np.ndarray]:
    """Parts of children lying outside the parent their code names.

    Returns the outside pieces and a mask of children lying within their parent.
    """
    shapely.prepare(parent.to_numpy())
    idx = np.flatnonzero(usable & np.isin(parents, parent.index))
    mother = parent.reindex(parents[idx]).to_numpy()
    inside = shapely.covered_by(repaired[idx], mother)
    within = np.ones(len(repaired), dtype=bool)
    within[idx[~inside]] = False
    idx, mother = idx[~inside], mother[~inside]
    outside = shapely.difference(repaired[idx], mother)
    outside = np.array([_polygonal(g) for g in outside], dtype=object)
    width = polygon_width(outside)
    found = []
    for k in np.flatnonzero(width > tol.dust):
        add("outside_parent", idx[k], outside[k], parents[idx[k]], width_m=width[k])
        found.append(outside[k])
    return found, within


def _multipart(repaired, usable, tol, add) -> None:
    multi = np.flatnonzero(usable & (shapely.get_num_geometries(repaired) > 1))
    if not len(multi):
        return
    parts, owner = shapely.get_parts(repaired[multi], return_index=True)
    owner = multi[owner]
    real = polygon_width(parts) > tol.dust
    counts = np.bincount(owner[real], minlength=len(repaired))
    for i in np.flatnonzero(counts > 1):
        mine = parts[(owner == i) & real]
        largest = np.argmax(shapely.area(mine))
        add("multipart", i, shapely.union_all(np.delete(mine, largest)), int(counts[i]))


def _islands(repaired, usable, left, right, orphans, add) -> None:
    if usable.sum() < 2:
        return
    degree = np.bincount(np.r_[left, right], minlength=len(repaired))
    for i in np.flatnonzero((degree == 0) & usable & ~orphans):
        add("island", i, shapely.boundary(repaired[i]))


def _edge_mismatch(repaired, invalid_edges, found, tol, add) -> None:
    """Invalid edges that no overlap, gap or crossing found above explains."""
    flagged = np.flatnonzero(~shapely.is_empty(invalid_edges) & ~shapely.is_missing(invalid_edges))
    if not len(flagged):
        return
    # GEOS returns whole invalid edge chains; a chain touching a defect found
    # above is that defect's outline, not a mismatch of its own.
    parts, owner = shapely.get_parts(invalid_edges[flagged], return_index=True)
    owner = flagged[owner]
    if found:
        defects = shapely.STRtree(np.asarray(found, dtype=object))
        hit, _ = defects.query(parts, predicate="dwithin", distance=tol.noise)
        keep = np.ones(len(parts), dtype=bool)
        keep[hit] = False
        parts, owner = parts[keep], owner[keep]
    if not len(parts) or shapely.length(parts).sum() <= tol.dust:
        return
    lines = shapely.get_parts(shapely.line_merge(shapely.union_all(parts)))
    tree = shapely.STRtree(parts)
    for line in lines:
        hit = np.unique(owner[tree.query(line, predicate="dwithin", distance=tol.dust)])
        add("edge_mismatch", hit, line, width_m=0.0)


# -- helpers ---------------------------------------------------------------------
def _polygonal(geom) -> shapely.Geometry:
    """The polygonal part of ``geom`` (a MultiPolygon, Polygon or empty)."""
    if geom is None or shapely.is_empty(geom):
        return shapely.Polygon()
    if shapely.get_type_id(geom) in _POLYGONAL:
        return geom
    parts = shapely.get_parts(geom)
    polys = parts[np.isin(shapely.get_type_id(parts), _POLYGONAL)]
    return shapely.union_all(polys) if len(polys) else shapely.Polygon()


def _union(geoms: np.ndarray, matched: np.ndarray):
    """Union of ``geoms``: the edge-matched ones as a coverage (fast), then the rest."""
    if matched.all():
        return shapely.coverage_union_all(geoms)
    if not matched.any():
        return shapely.union_all(geoms)
    return shapely.union_all(np.r_[shapely.coverage_union_all(geoms[matched]), geoms[~matched]])


def _parent_geoms(parent: gpd.GeoDataFrame, project) -> pd.Series:
    """Parent polygons by code, repaired and projected; a duplicated code gets their union."""
    geoms = parent.geometry.to_numpy().copy()
    valid = shapely.is_valid(geoms)
    geoms[~valid] = [_polygonal(shapely.make_valid(g)) for g in geoms[~valid]]
    geoms = project(geoms)
    valid = shapely.is_valid(geoms)
    geoms[~valid] = [_polygonal(shapely.make_valid(g)) for g in geoms[~valid]]
    codes = parent["code"].astype(str).to_numpy()
    series = pd.Series(geoms, index=codes)
    if series.index.is_unique:
        return series
    return series.groupby(level=0).agg(lambda g: shapely.union_all(g.to_numpy()))


def _projector(crs, config: GridConfig):
    """A function projecting geometries (or arrays of them) to the metric CRS."""
    target = metric_crs(config)
    if CRS.from_user_input(crs) == target:
        return lambda g: g
    transformer = Transformer.from_crs(crs, target, always_xy=True)

    def project(geoms):
        return shapely.transform(
            geoms, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
        )

    return project


def _interiors(geom) -> shapely.Geometry:
    """The holes of a (multi)polygon, as one polygonal geometry."""
    parts = shapely.get_parts(geom)
    rings = [r for p in parts if shapely.get_type_id(p) == 3 for r in p.interiors]
    return shapely.union_all([shapely.Polygon(r) for r in rings]) if rings else shapely.Polygon()


def _concat(frames, crs) -> gpd.GeoDataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return gpd.GeoDataFrame(columns=list(COLUMNS), geometry="geometry", crs=crs)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs)
