"""Assign households and incidents to grids at every level.

A work order sent to the wrong grid is bounced back, so this is the step the
whole workflow rests on. :func:`assign` takes points (a GeoDataFrame, or a
table read by :func:`gridgeo.io.read_points`) and returns them in their
original order, one row per input row — never duplicated, never dropped —
with one code column per level (``town_code``, ``grid_code``,
``micro_grid_code``) and an ``assign_status`` with an ``assign_reason``
(named so, because incidents carry a ``status`` of their own):

``inside``
    In exactly one grid.
``on_boundary``
    On the shared edge of two or more grids: assigned to the candidate with
    the lowest code (a documented, deterministic rule), candidates listed.
``in_overlap``
    Inside two or more overlapping grids (a data defect): the candidates are
    listed; ``on_overlap="rule"`` assigns the lowest code, ``"review"`` leaves
    the codes empty for a person to decide.
``in_gap``
    Inside the banner but in no grid: the nearest grid within
    ``gap_tolerance`` metres is *suggested* (``suggested``,
    ``suggested_m``), never assigned.
``outside``
    Outside the banner.
``invalid``
    Missing, non-numeric or out-of-range coordinates, or latitude and
    longitude swapped.

How it is fast: a :class:`GridIndex` lays a lattice of cells over the
banner, in the storage CRS. A cell lying wholly inside one lowest-level
polygon (a micro-grid where grids are refined, else a grid) answers every
point in it by an array lookup; only points in cells crossed by a boundary
get an exact test against the polygons (GEOS, through an STRtree). The
lattice is built coarse to fine, testing only the cells still undecided.

Example
-------
>>> import gridgeo
>>> from gridgeo.demo import households
>>> system = gridgeo.load_demo()
>>> out = assign(households(system).head(1000), system)
>>> out["assign_status"].value_counts().to_dict()
{'inside': 1000}
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy import ndimage

from gridgeo.crs import metric_crs, require_crs
from gridgeo.errors import CrsError, GridgeoError
from gridgeo.model import GridSystem

__all__ = ["STATUSES", "GridIndex", "assign", "build_index"]

STATUSES = ("inside", "on_boundary", "in_overlap", "in_gap", "outside", "invalid")

# Rough bounding box of China, for telling swapped or foreign coordinates.
CHINA = (73.5, 3.8, 135.1, 53.6)
# CGCS2000 and WGS-84 agree to well under a metre: grid work treats them as one.
_SAME_DATUM = {4326, 4490}


@dataclass
class GridIndex:
    """A lookup from location to lowest-level polygon, built once per system.

    Attributes
    ----------
    leaves:
        The lowest-level polygons (micro-grids, and grids that no micro-grid
        refines), in the storage CRS, with one code column per level and
        ``leaf_code``.
    lookup:
        ``(ny, nx)`` lattice: ``k >= 0`` the cell lies wholly in leaf ``k``;
        ``-1`` in no leaf; ``-2 - b`` boundary cell ``b``, whose candidate
        leaves are ``candidates[offsets[b]:offsets[b + 1]]``.
    origin, cell:
        Lower-left corner of the lattice and cell size, in storage units.
    """

    system: GridSystem
    leaves: gpd.GeoDataFrame
    code_columns: list[str]
    lookup: np.ndarray
    offsets: np.ndarray
    candidates: np.ndarray
    origin: tuple[float, float]
    cell: float

    @cached_property
    def geoms(self) -> np.ndarray:
        geoms = self.leaves.geometry.to_numpy()
        shapely.prepare(geoms)
        return geoms

    @cached_property
    def outline(self):
        root = self.system[self.system.config.levels[0].name]
        geom = shapely.union_all(root.geometry.make_valid().to_numpy())
        shapely.prepare(geom)
        return geom

    @cached_property
    def level_codes(self) -> dict[str, tuple[np.ndarray, pd.Index]]:
        """Per code column: each leaf's position among that level's codes, and the codes."""
        out = {}
        for column in [*self.code_columns, "leaf_code"]:
            values = self.leaves[column].fillna("").to_numpy(dtype=object)
            categories, position = np.unique(values, return_inverse=True)
            position = np.where(values == "", -1, position)
            out[column] = (position, pd.Index(categories))
        return out

    def cells_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The lattice value of each point's cell (``-1`` beyond the lattice)."""
        ny, nx = self.lookup.shape
        ix = np.floor((x - self.origin[0]) / self.cell).astype(np.int64)
        iy = np.floor((y - self.origin[1]) / self.cell).astype(np.int64)
        ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        out = np.full(len(x), -1, dtype=np.int64)
        out[ok] = self.lookup[iy[ok], ix[ok]]
        return out


def build_index(system: GridSystem, cell: float | None = None) -> GridIndex:
    """Build the :class:`GridIndex` of ``system``.

    ``cell`` is the lattice cell in storage units (default 0.0005° — about
    42 × 55 m here — for a geographic CRS, 40 for a projected one).

    How: every leaf boundary is cut into pieces of half a cell, and the four
    cells around each piece are marked as boundary cells (a superset of the
    cells any edge crosses). The remaining cells fall apart into connected
    regions that no boundary crosses, so each lies wholly in one leaf or in
    none: one point-in-polygon test per region labels all its cells
    (``scipy.ndimage.label``). Each boundary cell keeps the leaves whose
    polygons cross it, for the exact test.

    >>> import gridgeo
    >>> index = build_index(gridgeo.load_demo())
    >>> len(index.leaves)  # 897 micro-grids + the 533 grids they don't refine
    1430
    """
    leaves, code_columns = _leaves(system)
    crs = CRS.from_user_input(system.crs)
    cell = cell or (0.0005 if crs.is_geographic else 40.0)
    geoms = leaves.geometry.to_numpy()
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    minx, miny = minx - cell, miny - cell
    nx = int(np.ceil((maxx - minx) / cell)) + 1
    ny = int(np.ceil((maxy - miny) / cell)) + 1

    # Edges cut to half a cell join neighbouring cells only; marking the four
    # cells around each such piece covers every cell the edge crosses.
    xy = shapely.get_coordinates(shapely.segmentize(shapely.boundary(geoms), cell / 2))
    ix = np.floor((xy[:, 0] - minx) / cell).astype(np.int64)
    iy = np.floor((xy[:, 1] - miny) / cell).astype(np.int64)
    boundary = np.zeros((ny, nx), dtype=bool)
    boundary[iy, ix] = True
    boundary[iy[1:], ix[:-1]] = True
    boundary[iy[:-1], ix[1:]] = True

    regions, count = ndimage.label(~boundary)
    # One cell of each region; its centre decides the whole region.
    first = ndimage.minimum_position(regions, regions, np.arange(1, count + 1))
    cy, cx = np.asarray(first, dtype=np.int64).reshape(-1, 2).T
    tree = shapely.STRtree(geoms)
    region, leaf = tree.query(
        shapely.points(minx + (cx + 0.5) * cell, miny + (cy + 0.5) * cell), predicate="intersects"
    )
    hits = np.bincount(region, minlength=count)
    label = np.full(count + 1, -1, dtype=np.int32)  # label 0: the boundary cells
    single = hits[region] == 1
    label[region[single] + 1] = leaf[single]
    lookup = label[regions]
    # A region inside overlapping leaves (a data defect) is tested exactly too.
    overlapping = np.flatnonzero(hits > 1) + 1
    if len(overlapping):
        boundary |= np.isin(regions, overlapping)

    by, bx = np.nonzero(boundary)
    boxes = shapely.box(
        minx + bx * cell, miny + by * cell, minx + (bx + 1) * cell, miny + (by + 1) * cell
    )
    # Exact candidates (about a third fewer than by bounding box) make every
    # later point test cheaper, for half a second more here.
    cell_of, candidate = tree.query(boxes, predicate="intersects")
    offsets = np.r_[0, np.cumsum(np.bincount(cell_of, minlength=len(boxes)))]
    lookup[by, bx] = -2 - np.arange(len(boxes), dtype=np.int32)
    return GridIndex(
        system,
        leaves,
        code_columns,
        lookup,
        offsets,
        candidate.astype(np.int32),
        (minx, miny),
        cell,
    )


def _leaves(system: GridSystem) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Lowest-level polygons with the code of every level they belong to.

    A polygon is a leaf when no polygon of the level below names it as
    parent (a grid no micro-grid refines); orphans, whose chain of parent
    codes breaks, are left out. ``leaf_code`` is the leaf's own code.
    """
    names = system.config.level_names[1:]  # the root has one polygon: not a column
    columns = [f"{name}_code" for name in names]
    frames = []
    for depth, name in enumerate(names):
        frame = system[name][_known(system, name)]
        if depth + 1 < len(names):
            frame = frame[~frame["code"].isin(set(system[names[depth + 1]]["parent_code"]))]
        lineage = system.lineage(name)
        lineage = lineage[~lineage.index.duplicated()].reindex(frame["code"].to_numpy())
        out = gpd.GeoDataFrame(
            {f"{n}_code": lineage[n].to_numpy() if n in lineage else "" for n in names},
            geometry=frame.geometry.to_numpy(),
            crs=system.crs,
        )
        out["leaf_code"] = frame["code"].to_numpy()
        frames.append(out)
    leaves = gpd.GeoDataFrame(
        pd.concat(frames, ignore_index=True), geometry="geometry", crs=system.crs
    )
    valid = leaves.is_valid
    if not valid.all():
        leaves.loc[~valid, "geometry"] = leaves.geometry[~valid].make_valid()
    return leaves, columns


def _known(system: GridSystem, level: str) -> pd.Series:
    """Polygons whose chain of parent codes reaches the root (orphans excluded)."""
    lineage = system.lineage(level)
    frame = system[level]
    return (
        frame["code"]
        .map(lineage.notna().all(axis=1).groupby(level=0).all())
        .fillna(False)
        .astype(bool)
    )


def assign(
    points: gpd.GeoDataFrame,
    system: GridSystem,
    *,
    coords: str | None = None,
    on_overlap: Literal["rule", "review"] = "rule",
    gap_tolerance: float = 200.0,
    index: GridIndex | None = None,
) -> gpd.GeoDataFrame:
    """Assign each point to its micro-grid, grid and town.

    Parameters
    ----------
    points:
        Points with a CRS (any pyproj knows). Rows with missing or empty
        geometry are kept and marked ``invalid``; a ``coord_error`` column
        (written by :func:`gridgeo.io.read_points`) gives their reason.
    system:
        The grid system.
    coords:
        ``"gcj02"`` or ``"bd09"`` when the longitudes/latitudes come from
        AMap/Tencent or Baidu based apps (shifted ~0.5 km and ~1.3 km here);
        they are converted to WGS-84 first. ``None``: trust the CRS.
    on_overlap:
        ``"rule"`` assigns a point in overlapping grids to the lowest code;
        ``"review"`` leaves it unassigned with its candidates listed.
    gap_tolerance:
        Metres within which the nearest grid is suggested for a point in a gap.
    index:
        A prebuilt :func:`build_index` of ``system`` (built here otherwise;
        reuse one to assign many batches).

    Returns
    -------
    GeoDataFrame
        ``points`` in their original order and index, plus one code column
        per level below the root (``town_code``, ``grid_code``,
        ``micro_grid_code``; missing where none), ``assign_status``, ``assign_reason``,
        ``candidates`` (comma-separated, for boundary and overlap points),
        ``suggested`` and ``suggested_m`` (for points in gaps). The text
        columns are categorical.

    Raises
    ------
    CrsError
        The points have no CRS, or not one valid point falls in or near the
        banner (a wrong CRS or swapped columns, never a silent empty result).
    """
    if on_overlap not in ("rule", "review"):
        raise GridgeoError(f"on_overlap must be 'rule' or 'review', not {on_overlap!r}")
    index = index or build_index(system)
    require_crs(points, "the points")
    x, y, status, reason = _coordinates(points, system, coords)
    n = len(points)
    leaf = np.full(n, -1, dtype=np.int64)
    cand = np.full(n, -1, dtype=np.int64)  # row into candidate_text
    candidate_text: list[str] = []
    valid = status == _UNSET

    cell = np.full(n, -1, dtype=np.int64)
    cell[valid] = index.cells_of(x[valid], y[valid])
    fast = cell >= 0
    leaf[fast] = cell[fast]
    status[fast] = _STATUS["inside"]
    reason[fast] = _REASON["inside"]
    exact = np.flatnonzero(valid & ~fast)
    if len(exact):
        _exact(
            index, x, y, exact, cell[exact], leaf, status, reason, cand, candidate_text, on_overlap
        )

    suggested = np.full(n, -1, dtype=np.int64)
    suggested_m = np.full(n, np.nan)
    gap = np.flatnonzero(status == _STATUS["in_gap"])
    if len(gap):
        _suggest(index, system, x, y, gap, gap_tolerance, suggested, suggested_m)

    placed = np.isin(
        status, [_STATUS[s] for s in ("inside", "on_boundary", "in_overlap", "in_gap")]
    )
    if valid.any() and not placed.any():
        raise CrsError(
            f"none of the {int(valid.sum())} valid points falls inside {system.config.root_name}; "
            f"the points' CRS is {points.crs.to_string()}. Check the CRS, whether the "
            "coordinates are GCJ-02/BD-09 (coords='gcj02' or 'bd09'), and whether the "
            "longitude and latitude columns are swapped."
        )

    out = points.copy(deep=False)  # new columns only: the input is never modified
    for column in index.code_columns:
        position, categories = index.level_codes[column]
        codes = np.where(leaf >= 0, position[np.maximum(leaf, 0)], -1)
        out[column] = pd.Categorical.from_codes(codes, categories=categories)
    out["assign_status"] = pd.Categorical.from_codes(status, categories=list(STATUSES))
    out["assign_reason"] = pd.Categorical.from_codes(
        reason, categories=list(REASONS) + _extra_reasons(points)
    )
    texts, position = np.unique(np.asarray(candidate_text, dtype=str), return_inverse=True)
    out["candidates"] = pd.Categorical.from_codes(
        np.where(cand >= 0, position[np.maximum(cand, 0)] if len(texts) else -1, -1),
        categories=pd.Index(texts),
    )
    leaf_position, leaf_codes = index.level_codes["leaf_code"]
    out["suggested"] = pd.Categorical.from_codes(
        np.where(suggested >= 0, leaf_position[np.maximum(suggested, 0)], -1), categories=leaf_codes
    )
    out["suggested_m"] = suggested_m
    return out


# Status and reason codes; text only at the end, as categoricals.
_STATUS = {name: code for code, name in enumerate(STATUSES)}
_UNSET = -1
REASONS = (
    "in exactly one grid",
    "on a shared boundary; lowest code chosen",
    "inside overlapping grids; lowest code chosen",
    "inside overlapping grids; left for review",
    "inside the banner but in no grid",
    "outside the banner",
    "missing coordinates",
    "not a point",
    "non-numeric coordinates",
    "coordinates out of range",
    "latitude and longitude swapped",
)
_REASON = {
    "inside": 0,
    "on_boundary": 1,
    "overlap_rule": 2,
    "overlap_review": 3,
    "in_gap": 4,
    "outside": 5,
    "missing": 6,
    "not_point": 7,
    "non_numeric": 8,
    "out_of_range": 9,
    "swapped": 10,
}


def _extra_reasons(points) -> list[str]:
    """Reasons given by the reader (``coord_error``), after the fixed ones."""
    if "coord_error" not in points:
        return []
    told = points["coord_error"].dropna().astype(str)
    return [t for t in dict.fromkeys(told[told != ""]) if t not in REASONS]


def _coordinates(points, system, coords):
    """Points as x, y in the storage CRS, plus status/reason codes of invalid rows."""
    n = len(points)
    status = np.full(n, _UNSET, dtype=np.int64)
    reason = np.full(n, -1, dtype=np.int64)
    invalid = _STATUS["invalid"]

    def mark(mask, why):
        status[mask] = invalid
        reason[mask] = _REASON[why]

    geoms = points.geometry.to_numpy()
    type_id = shapely.get_type_id(geoms)  # -1: missing
    missing = (type_id == -1) | shapely.is_empty(geoms)
    mark(missing, "missing")
    if "coord_error" in points:
        told = points["coord_error"].fillna("").astype(str).to_numpy()
        extra = {t: len(REASONS) + k for k, t in enumerate(_extra_reasons(points))}
        for text, code in extra.items():
            rows = told == text
            status[rows] = invalid
            reason[rows] = code
        missing |= told != ""
    not_point = ~missing & (type_id != 0)
    mark(not_point, "not_point")
    ok = ~missing & ~not_point
    if ok.all():  # the usual case: one pass, no copy of the geometry array
        xy = shapely.get_coordinates(geoms)
        x, y = xy[:, 0].copy(), xy[:, 1].copy()
    else:
        x = np.full(n, np.nan)
        y = np.full(n, np.nan)
        x[ok], y[ok] = shapely.get_x(geoms[ok]), shapely.get_y(geoms[ok])
    bad = ok & ~(np.isfinite(x) & np.isfinite(y))
    mark(bad, "non_numeric")
    ok &= ~bad

    source = CRS.from_user_input(points.crs)
    if source.is_geographic:
        # Swapped first: a swapped latitude of 108 is also "out of range".
        swapped = ok & ~_in_box(x, y, CHINA) & _in_box(y, x, CHINA)
        mark(swapped, "swapped")
        ok &= ~swapped
        out_of_range = ok & ((np.abs(x) > 180) | (np.abs(y) > 90))
        mark(out_of_range, "out_of_range")
        ok &= ~out_of_range
        if coords is not None:
            from gridgeo.crs import to_wgs84

            x[ok], y[ok] = to_wgs84(x[ok], y[ok], coords)
    elif coords is not None:
        raise CrsError(
            f"coords={coords!r} applies to longitude/latitude, but the points are in {source.name}"
        )
    target = CRS.from_user_input(system.crs)
    if source != target and not {source.to_epsg(), target.to_epsg()} <= _SAME_DATUM:
        transformer = Transformer.from_crs(source, target, always_xy=True)
        x[ok], y[ok] = transformer.transform(x[ok], y[ok])
    return x, y, status, reason


def _in_box(x, y, box) -> np.ndarray:
    return (x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])


def _exact(
    index, x, y, rows, cells, leaf, status, reason, cand, candidate_text, on_overlap
) -> None:
    """Points in boundary cells: exact tests against the cell's candidate leaves."""
    boundary = cells <= -2
    b = -cells[boundary] - 2
    starts, ends = index.offsets[b], index.offsets[b + 1]
    lengths = ends - starts
    point = np.repeat(np.flatnonzero(boundary), lengths)
    pos = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
    polygon = index.candidates[pos]
    px, py = x[rows[point]], y[rows[point]]
    inside = shapely.contains_xy(index.geoms[polygon], px, py)
    n_in = np.bincount(point[inside], minlength=len(rows))
    touch = np.zeros(len(point), dtype=bool)
    maybe = n_in[point] == 0
    touch[maybe] = shapely.intersects_xy(index.geoms[polygon[maybe]], px[maybe], py[maybe])
    n_touch = np.bincount(point[touch], minlength=len(rows))

    one = n_in == 1
    chosen = np.full(len(rows), -1)
    chosen[point[inside]] = polygon[inside]
    leaf[rows[one]] = chosen[one]
    status[rows[one]] = _STATUS["inside"]
    reason[rows[one]] = _REASON["inside"]

    codes = index.leaves["leaf_code"].to_numpy()
    for k in np.flatnonzero((n_in > 1) | ((n_in == 0) & (n_touch > 0))):
        row = rows[k]
        mine = point == k
        members = polygon[mine & (inside if n_in[k] else touch)]
        members = members[np.argsort(codes[members], kind="stable")]
        cand[row] = len(candidate_text)
        candidate_text.append(",".join(codes[members]))
        if n_in[k] > 1:
            status[row] = _STATUS["in_overlap"]
            if on_overlap == "rule":
                leaf[row] = members[0]
                reason[row] = _REASON["overlap_rule"]
            else:
                reason[row] = _REASON["overlap_review"]
        else:
            status[row] = _STATUS["on_boundary"]
            reason[row] = _REASON["on_boundary"]
            leaf[row] = members[0]

    none = rows[(n_in == 0) & (n_touch == 0)]
    if len(none):
        within = shapely.contains_xy(index.outline, x[none], y[none])
        status[none] = np.where(within, _STATUS["in_gap"], _STATUS["outside"])
        reason[none] = np.where(within, _REASON["in_gap"], _REASON["outside"])


def _suggest(index, system, x, y, rows, tolerance, suggested, suggested_m) -> None:
    """Nearest leaf within ``tolerance`` metres of each point in a gap."""
    metric = metric_crs(system.config)
    to_metric = Transformer.from_crs(system.crs, metric, always_xy=True)
    mx, my = to_metric.transform(x[rows], y[rows])
    leaves = index.leaves.to_crs(metric)
    tree = shapely.STRtree(leaves.geometry.to_numpy())
    (p, g), dist = tree.query_nearest(
        shapely.points(mx, my), max_distance=tolerance, return_distance=True, all_matches=False
    )
    suggested[rows[p]] = g
    suggested_m[rows[p]] = dist
