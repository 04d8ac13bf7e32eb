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
>>> out["assign_status"].value_counts().to_dict()  # categorical: every status counted
{'inside': 1000, 'on_boundary': 0, 'in_overlap': 0, 'in_gap': 0, 'outside': 0, 'invalid': 0}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy import ndimage

from gridgeo.crs import in_china, metric_crs, require_crs, to_wgs84
from gridgeo.errors import CrsError, GridgeoError, option
from gridgeo.model import GridSystem

__all__ = [
    "MAX_CELLS",
    "STATUSES",
    "GridIndex",
    "Reason",
    "assign",
    "build_index",
    "check_placed",
]

STATUSES = ("inside", "on_boundary", "in_overlap", "in_gap", "outside", "invalid")

MAX_CELLS = 2**24
"""Most cells a :class:`GridIndex` lattice may have (about 200 MB while it is built).

A system spanning more than the default cell allows gets coarser cells
instead: answers stay exact, only more points need the exact test.
"""

# CGCS2000 and WGS-84 agree to well under a metre: grid work treats them as one.
_SAME_DATUM = {4326, 4490}


class Reason(IntEnum):
    """Why a point got its ``assign_status``: the code stored, and :attr:`text` shown.

    ``{root}`` in a text stands for the configuration's root name (乌拉特前旗);
    :func:`assign` fills it in.

    >>> Reason.ON_BOUNDARY.text
    'on a shared boundary; lowest code chosen'
    >>> int(Reason.OUTSIDE), Reason.OUTSIDE.text.format(root="乌拉特前旗")
    (5, 'outside 乌拉特前旗')
    """

    text: str

    def __new__(cls, text: str) -> Reason:
        member = int.__new__(cls, len(cls.__members__))
        member._value_ = len(cls.__members__)
        member.text = text
        return member

    INSIDE = "in exactly one grid"
    ON_BOUNDARY = "on a shared boundary; lowest code chosen"
    OVERLAP_RULE = "inside overlapping grids; lowest code chosen"
    OVERLAP_REVIEW = "inside overlapping grids; left for review"
    IN_GAP = "inside {root} but in no grid"
    OUTSIDE = "outside {root}"
    MISSING = "missing coordinates"
    NOT_POINT = "not a point"
    NON_NUMERIC = "non-numeric coordinates"
    OUT_OF_RANGE = "coordinates out of range"
    SWAPPED = "latitude and longitude swapped"


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

    @cached_property
    def code_rank(self) -> np.ndarray:
        """Each leaf's rank by ``leaf_code``: the order of candidates and of the rule."""
        rank = np.empty(len(self.leaves), dtype=np.int64)
        rank[np.argsort(self.leaves["leaf_code"].to_numpy(dtype=str), kind="stable")] = np.arange(
            len(self.leaves)
        )
        return rank

    def cells_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The lattice value of each point's cell (``-1`` beyond the lattice)."""
        ny, nx = self.lookup.shape
        ix = np.floor((x - self.origin[0]) / self.cell)
        iy = np.floor((y - self.origin[1]) / self.cell)
        ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        # Whole-array take and where: masked fancy indexing costs twice as much.
        flat = np.where(ok, iy * nx + ix, 0).astype(np.intp)  # exact: < MAX_CELLS
        return np.where(ok, self.lookup.reshape(-1)[flat], -1).astype(np.int32, copy=False)


def build_index(system: GridSystem, cell: float | None = None) -> GridIndex:
    """Build the :class:`GridIndex` of ``system``.

    ``cell`` is the lattice cell in storage units (default 0.0005° — about
    42 × 55 m here — for a geographic CRS, 40 for a projected one). Cells
    are made coarser where the lattice would exceed :data:`MAX_CELLS`, so
    memory stays bounded however large the system.

    How: every leaf boundary is cut into pieces of half a cell, and the four
    cells around each piece are marked as boundary cells (a superset of the
    cells any edge crosses). The remaining cells fall apart into connected
    regions that no boundary crosses, so each lies wholly in one leaf or in
    none: one point-in-polygon test per region labels all its cells
    (``scipy.ndimage.label``). Each boundary cell keeps the leaves that meet
    it, for the exact test: those whose cut boundary passes through it, and
    those holding its centre (found without making a geometry per cell).

    >>> import gridgeo
    >>> index = build_index(gridgeo.load_demo())
    >>> len(index.leaves)  # 897 micro-grids + the 533 grids they don't refine
    1430
    """
    leaves, code_columns = _leaves(system)
    crs = CRS.from_user_input(system.crs)
    cell = cell or (0.0005 if crs.is_geographic else 40.0)
    geoms = leaves.geometry.to_numpy()
    if not len(geoms):  # no leaf at all: every point is tested against the outline
        empty = np.empty(0, dtype=np.int32)
        lookup = np.full((1, 1), -1, dtype=np.int32)
        return GridIndex(system, leaves, code_columns, lookup, np.zeros(1, int), empty, (0, 0), 1)
    bounds = shapely.total_bounds(geoms)
    cell, (minx, miny), (ny, nx) = _lattice(bounds, cell)

    # Edges cut to half a cell join neighbouring cells only; marking the four
    # cells around each such piece covers every cell the edge crosses.
    ix, iy, part = _edge_cells(geoms, (minx, miny), cell)
    boundary = np.zeros((ny, nx), dtype=bool)
    boundary[iy, ix] = True
    boundary[iy[1:], ix[:-1]] = True
    boundary[iy[:-1], ix[1:]] = True

    regions, count = ndimage.label(~boundary)
    # One cell of each region, any: no boundary crosses a region, so every
    # cell centre in it lies in the same leaf (or none). Scattering the cell
    # numbers by label keeps one per region in one linear pass, where
    # ndimage.minimum_position sorts all cells (2 s and 130 MB over a city);
    # a band of rows at a time keeps the temporaries small.
    some = np.empty(count + 1, dtype=np.int64)
    for top, band in _bands(regions):
        cells = np.flatnonzero(band)
        some[band.ravel()[cells]] = cells + top * nx
    cy, cx = np.divmod(some[1:], nx)
    del some
    tree = shapely.STRtree(geoms)
    region, leaf = tree.query(
        shapely.points(minx + (cx + 0.5) * cell, miny + (cy + 0.5) * cell), predicate="intersects"
    )
    hits = np.bincount(region, minlength=count)
    label = np.full(count + 1, -1, dtype=np.int32)  # label 0: the boundary cells
    single = hits[region] == 1
    label[region[single] + 1] = leaf[single]
    # A region inside overlapping leaves (a data defect) is tested exactly too.
    overlapping = np.zeros(count + 1, dtype=bool)
    overlapping[np.flatnonzero(hits > 1) + 1] = True
    for top, band in _bands(regions):  # the labels become the lookup, in place
        if overlapping.any():
            boundary[top : top + len(band)] |= overlapping[band]
        band[...] = label[band]
    lookup = regions

    by, bx = np.nonzero(boundary)
    del boundary
    lookup[by, bx] = -2 - np.arange(len(by), dtype=np.int32)
    edges = _edge_keys(lookup, ix, iy, part, len(geoms))
    del ix, iy, part
    cell_of, candidate = _candidates(geoms, edges, by, bx, (minx, miny), cell)
    del edges
    offsets = np.r_[0, np.cumsum(np.bincount(cell_of, minlength=len(by)))]
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


# Lattice cells scanned a band of rows at a time: a city has millions of cells.
_CELL_CHUNK = 1 << 16

# Leaves cut into boundary pieces, and matched to boundary-cell centres, at a time.
_LEAF_CHUNK = 2_000


def _edge_cells(geoms, origin, cell) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column, row and leaf of every end of the leaves' boundaries cut to half a cell.

    A chunk of leaves at a time, kept as int32: the cut boundaries of a city
    hold millions of vertices (about 100 MB of GEOS geometry at once).
    """
    minx, miny = origin
    columns, rows, parts = [], [], []
    for start in range(0, len(geoms), _LEAF_CHUNK):
        edges, leaf = _edges(geoms[start : start + _LEAF_CHUNK])
        xy, piece = shapely.get_coordinates(shapely.segmentize(edges, cell / 2), return_index=True)
        columns.append(np.floor((xy[:, 0] - minx) / cell).astype(np.int32))
        rows.append(np.floor((xy[:, 1] - miny) / cell).astype(np.int32))
        parts.append((leaf[piece] + start).astype(np.int32))
    return np.concatenate(columns), np.concatenate(rows), np.concatenate(parts)


def _edges(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each leaf's extent ends: the boundary of its polygons, its lines and points.

    A repaired leaf may be a geometry collection (``make_valid`` keeps the
    lines and points of a collapsed ring), whose ``boundary`` is ``None``:
    its parts are taken one by one. Returns the edges and each one's leaf.
    """
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    edges, leaf = [shapely.boundary(geoms[polygonal])], [np.flatnonzero(polygonal)]
    rest, owner = geoms[~polygonal], np.flatnonzero(~polygonal)
    while len(rest):
        rest, which = shapely.get_parts(rest, return_index=True)
        owner = owner[which]
        kind = shapely.get_type_id(rest)
        area = np.isin(kind, (3, 6))
        line_or_point = np.isin(kind, (0, 1, 2, 4, 5))
        edges += [shapely.boundary(rest[area]), rest[line_or_point]]
        leaf += [owner[area], owner[line_or_point]]
        rest, owner = rest[kind == 7], owner[kind == 7]
    return np.concatenate(edges), np.concatenate(leaf)


def _bands(array: np.ndarray):
    """(first row, rows) of ``array`` in bands of about :data:`_CELL_CHUNK` cells."""
    rows = max(1, _CELL_CHUNK // max(1, array.shape[1]))
    for top in range(0, array.shape[0], rows):
        yield top, array[top : top + rows]


def _edge_keys(lookup, ix, iy, part, n_leaves) -> list[np.ndarray]:
    """``boundary cell * n_leaves + leaf`` of every leaf whose boundary passes through a cell.

    ``ix``, ``iy``: the cell of each end of the boundary pieces, ``part``: its
    leaf. A diagonal step between two ends also passes near the other two
    cells around it, which are marked as for the lattice: a few extra leaves
    that only cost a quick exact test, never change an answer.
    """
    nx = lookup.shape[1]
    flat = lookup.reshape(-1)
    n_leaves = max(n_leaves, 1)
    same = part[1:] == part[:-1]
    diagonal = same & (ix[1:] != ix[:-1]) & (iy[1:] != iy[:-1])

    def key(y, x, leaf):  # boundary cell number * n_leaves + leaf, as int64
        return (-2 - flat[y.astype(np.int64) * nx + x].astype(np.int64)) * n_leaves + leaf

    return [
        key(iy, ix, part),
        key(iy[1:][diagonal], ix[:-1][diagonal], part[1:][diagonal]),
        key(iy[:-1][diagonal], ix[1:][diagonal], part[1:][diagonal]),
    ]


def _candidates(geoms, edges, by, bx, origin, cell) -> tuple[np.ndarray, np.ndarray]:
    """(boundary cell, leaf) pairs, sorted: every leaf that meets each boundary cell.

    A leaf meets a cell when its boundary passes through the cell (``edges``,
    from :func:`_edge_keys`) or it holds the whole cell: then it holds the
    cell's centre. Boxing every boundary cell and querying a tree gives the
    same leaves (but for a few extra from diagonal steps) at about twice the
    time and memory.
    """
    n_leaves = max(len(geoms), 1)
    centres = [
        cell_of * n_leaves + leaf for cell_of, leaf in _centres_in(geoms, by, bx, origin, cell)
    ]
    keys = np.concatenate(edges + centres)
    edges.clear()  # the caller's list: its arrays are copied into keys
    del centres
    keys.sort()  # np.unique hashes int64 keys: several times slower here
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    return keys // n_leaves, keys % n_leaves


def _centres_in(geoms, by, bx, origin, cell):
    """Yield (boundary cell, leaf) pairs, a chunk of leaves at a time: the centre meets the leaf.

    The boundary cells (``by``, ``bx``, in row-major order) whose centres lie
    in each leaf's bounding box (widened by a cell) are found by binary search
    row by row, then tested exactly with ``intersects_xy``: no point geometry
    is made for the millions of cells of a city.
    """
    minx, miny = origin
    nx = int(bx.max()) + 2 if len(bx) else 1
    flat = by.astype(np.int64) * nx + bx
    shapely.prepare(geoms)
    box = shapely.bounds(geoms)
    ix0 = np.floor((box[:, 0] - minx) / cell).astype(np.int64) - 1
    iy0 = np.floor((box[:, 1] - miny) / cell).astype(np.int64) - 1
    ix1 = np.floor((box[:, 2] - minx) / cell).astype(np.int64) + 1
    iy1 = np.floor((box[:, 3] - miny) / cell).astype(np.int64) + 1
    ix0, ix1 = np.clip(ix0, 0, nx - 1), np.clip(ix1, 0, nx - 1)
    iy0 = np.maximum(iy0, 0)
    leaves = np.flatnonzero(np.isfinite(box).all(axis=1))  # an empty leaf has nan bounds
    for start in range(0, len(leaves), _LEAF_CHUNK):
        leaf = leaves[start : start + _LEAF_CHUNK]
        heights = iy1[leaf] - iy0[leaf] + 1
        owner = np.repeat(leaf, heights)
        row = np.repeat(iy0[leaf] - np.r_[0, np.cumsum(heights)[:-1]], heights) + np.arange(
            heights.sum()
        )
        lo = np.searchsorted(flat, row * nx + ix0[owner])
        hi = np.searchsorted(flat, row * nx + ix1[owner], side="right")
        counts = hi - lo
        owner = np.repeat(owner, counts)
        cell_of = np.repeat(lo - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())
        cx = minx + (bx[cell_of] + 0.5) * cell
        cy = miny + (by[cell_of] + 0.5) * cell
        hit = shapely.intersects_xy(geoms[owner], cx, cy)
        yield cell_of[hit], owner[hit]


def _lattice(bounds: np.ndarray, cell: float) -> tuple[float, tuple[float, float], tuple[int, int]]:
    """Cell size, lower-left corner and shape of a lattice over ``bounds``.

    One cell of margin on every side; the cell grows until the lattice has at
    most :data:`MAX_CELLS` cells.
    """
    minx, miny, maxx, maxy = bounds
    while True:
        nx = int(np.ceil((maxx - minx) / cell)) + 2
        ny = int(np.ceil((maxy - miny) / cell)) + 2
        if nx * ny <= MAX_CELLS:
            return cell, (minx - cell, miny - cell), (ny, nx)
        cell *= math.sqrt(nx * ny / MAX_CELLS) * 1.01


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
    require_placed: bool = True,
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
    require_placed:
        Raise a :class:`~gridgeo.errors.CrsError` when valid points exist
        but not one of them falls in or near the banner (the default). Pass
        ``False`` when ``points`` is one chunk of a bigger table: a chunk may
        lie wholly outside the banner (a file sorted by place) while the
        table does not. Then check the whole table with
        :func:`check_placed` once every chunk is assigned, as
        ``gridgeo assign`` does.

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
        banner (a wrong CRS or swapped columns, never a silent empty result;
        unless ``require_placed=False``).
    """
    if on_overlap not in ("rule", "review"):
        raise GridgeoError(
            f"{option('on_overlap', on_overlap)} is not a choice: use "
            f"{option('on_overlap', 'rule')} or {option('on_overlap', 'review')}."
        )
    index = index or build_index(system)
    require_crs(points, "the points")
    texts = _reason_texts(system, points)
    x, y, status, reason = _coordinates(points, system, coords, texts)
    n = len(points)
    leaf = np.full(n, -1, dtype=np.int32)
    valid = status == _UNSET

    cell = np.full(n, -1, dtype=np.int32)
    cell[valid] = index.cells_of(x[valid], y[valid])
    fast = cell >= 0
    leaf[fast] = cell[fast]
    status[fast] = _STATUS["inside"]
    reason[fast] = Reason.INSIDE
    exact = _exact(index, x, y, np.flatnonzero(valid & ~fast), cell, on_overlap)
    leaf[exact.rows] = exact.leaf
    status[exact.rows] = exact.status
    reason[exact.rows] = exact.reason
    candidate = np.full(n, -1, dtype=np.int32)
    candidate[exact.rows] = exact.candidate

    gap = np.flatnonzero(status == _STATUS["in_gap"])
    near, suggested_leaf, distance = _suggest(index, system, x[gap], y[gap], gap_tolerance)
    suggested = np.full(n, -1, dtype=np.int32)
    suggested_m = np.full(n, np.nan)
    suggested[gap[near]] = suggested_leaf
    suggested_m[gap[near]] = distance

    if require_placed:
        counts = np.bincount(status, minlength=len(STATUSES))
        check_placed(dict(zip(STATUSES, counts.tolist(), strict=True)), system, points.crs)

    out = points.copy(deep=False)  # new columns only: the input is never modified
    for column in index.code_columns:
        position, categories = index.level_codes[column]
        out[column] = pd.Categorical.from_codes(_take(position, leaf), categories=categories)
    out["assign_status"] = pd.Categorical.from_codes(status, categories=list(STATUSES))
    out["assign_reason"] = pd.Categorical.from_codes(reason, categories=texts)
    out["candidates"] = pd.Categorical.from_codes(candidate, categories=exact.texts)
    leaf_position, leaf_codes = index.level_codes["leaf_code"]
    out["suggested"] = pd.Categorical.from_codes(
        _take(leaf_position, suggested), categories=leaf_codes
    )
    out["suggested_m"] = suggested_m
    return out


def check_placed(counts: Mapping[str, int], system: GridSystem, crs: object) -> None:
    """Raise a :class:`~gridgeo.errors.CrsError` if valid points exist but none was placed.

    Not one valid point in or near the banner means the points' CRS is wrong
    or their columns are swapped, never a real result. :func:`assign` checks
    this for the points of one call; a table assigned in chunks
    (``require_placed=False``) is checked once, with the statuses of all
    chunks summed.

    Parameters
    ----------
    counts:
        Rows per ``assign_status`` (a dict or a Series, e.g.
        ``result["assign_status"].value_counts()``); absent statuses count 0.
    system:
        The grid system the points were assigned to.
    crs:
        The points' CRS (anything pyproj takes), named in the message.

    Raises
    ------
    CrsError
        Some rows are not ``invalid``, but every one of them is ``outside``.

    Examples
    --------
    >>> import gridgeo
    >>> system = gridgeo.load_demo()
    >>> check_placed({"inside": 3, "outside": 1, "invalid": 2}, system, "EPSG:4326")
    >>> check_placed({"outside": 4, "invalid": 2}, system, "EPSG:4326")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridgeo.errors.CrsError: none of the 4 valid points falls inside 乌拉特前旗; ...
    """
    valid = sum(int(counts.get(s, 0)) for s in STATUSES if s != "invalid")
    placed = valid - int(counts.get("outside", 0))
    if valid and not placed:
        raise CrsError(
            f"none of the {valid} valid points falls inside {system.config.root_name}; "
            f"the points' CRS is {CRS.from_user_input(crs).to_string()}. Check the CRS, "
            f"whether the coordinates are GCJ-02/BD-09 ({option('coords', 'gcj02')} or "
            f"{option('coords', 'bd09')}), and whether the longitude and latitude columns "
            "are swapped."
        )


def _take(position: np.ndarray, leaf: np.ndarray) -> np.ndarray:
    """``position[leaf]`` where ``leaf >= 0``, else -1 (a missing categorical code)."""
    out = np.full(len(leaf), -1, dtype=np.int32)
    has = leaf >= 0
    out[has] = position[leaf[has]]
    return out


# Status codes; text only at the end, as categoricals.
_STATUS = {name: code for code, name in enumerate(STATUSES)}
_UNSET = -1


def _reason_texts(system: GridSystem, points: gpd.GeoDataFrame) -> list[str]:
    """Categories of ``assign_reason``: :class:`Reason` texts, then the reader's own.

    The reader's reasons (``coord_error``, from :func:`gridgeo.io.read_points`)
    follow the fixed ones, so their codes are ``len(Reason) + k``.
    """
    fixed = [r.text.format(root=system.config.root_name) for r in Reason]
    if "coord_error" not in points:
        return fixed
    told = points["coord_error"].dropna().astype(str)
    return fixed + [t for t in dict.fromkeys(told[told != ""]) if t not in fixed]


def _coordinates(points, system, coords, texts):
    """Points as x, y in the storage CRS, plus status/reason codes of invalid rows."""
    n = len(points)
    status = np.full(n, _UNSET, dtype=np.int8)
    reason = np.full(n, -1, dtype=np.int32)
    invalid = _STATUS["invalid"]

    def mark(mask, why: Reason):
        status[mask] = invalid
        reason[mask] = why

    geoms = points.geometry.to_numpy()
    type_id = shapely.get_type_id(geoms)  # -1: missing
    xy = shapely.get_coordinates(geoms) if (type_id == 0).all() else None
    if xy is not None and len(xy) == n:  # all points, none empty: no is_empty pass
        missing = np.zeros(n, dtype=bool)
    else:
        missing = (type_id == -1) | shapely.is_empty(geoms)
    mark(missing, Reason.MISSING)
    if "coord_error" in points:
        told = points["coord_error"].fillna("").astype(str).to_numpy()
        for code, text in enumerate(texts[len(Reason) :], start=len(Reason)):
            rows = told == text
            status[rows] = invalid
            reason[rows] = code
        missing |= told != ""
    not_point = ~missing & (type_id != 0)
    mark(not_point, Reason.NOT_POINT)
    ok = ~missing & ~not_point
    if ok.all():  # the usual case: one pass, no copy of the geometry array (xy above)
        x, y = xy[:, 0].copy(), xy[:, 1].copy()
    else:
        x = np.full(n, np.nan)
        y = np.full(n, np.nan)
        x[ok], y[ok] = shapely.get_x(geoms[ok]), shapely.get_y(geoms[ok])
    bad = ok & ~(np.isfinite(x) & np.isfinite(y))
    mark(bad, Reason.NON_NUMERIC)
    ok &= ~bad

    source = CRS.from_user_input(points.crs)
    if source.is_geographic:
        # Swapped first: a swapped latitude of 108 is also "out of range".
        swapped = ok & ~in_china(x, y) & in_china(y, x)
        mark(swapped, Reason.SWAPPED)
        ok &= ~swapped
        out_of_range = ok & ((np.abs(x) > 180) | (np.abs(y) > 90))
        mark(out_of_range, Reason.OUT_OF_RANGE)
        ok &= ~out_of_range
        if coords is not None:
            x[ok], y[ok] = to_wgs84(x[ok], y[ok], coords)
    elif coords is not None:
        raise CrsError(
            f"{option('coords', coords)} applies to longitude/latitude, but the points are "
            f"in {source.name}; leave it out for projected coordinates."
        )
    target = CRS.from_user_input(system.crs)
    if source != target and not {source.to_epsg(), target.to_epsg()} <= _SAME_DATUM:
        transformer = Transformer.from_crs(source, target, always_xy=True)
        x[ok], y[ok] = transformer.transform(x[ok], y[ok])
    return x, y, status, reason


@dataclass
class _Exact:
    """Outcome of the exact test for the points at positions ``rows``.

    ``leaf`` is the chosen leaf (-1: none); ``candidate`` indexes ``texts``,
    the comma-separated candidate codes of boundary and overlap points (-1:
    none).
    """

    rows: np.ndarray
    leaf: np.ndarray
    status: np.ndarray
    reason: np.ndarray
    candidate: np.ndarray
    texts: pd.Index


def _exact(index: GridIndex, x, y, rows: np.ndarray, cells: np.ndarray, on_overlap) -> _Exact:
    """Points not answered by the lattice: exact tests against their cell's candidate leaves.

    Vectorised over (point, candidate leaf) pairs: ``contains`` first, and
    for points in no interior, ``intersects`` (on an edge or a vertex). A
    point inside one leaf is ``inside``; inside two or more ``in_overlap``;
    on edges only ``on_boundary``; in no leaf ``in_gap`` or ``outside``.
    Candidates are listed, and the rule picks, by lowest code.
    """
    m = len(rows)
    cells = cells[rows]
    boundary = cells <= -2
    b = -cells[boundary] - 2
    starts, ends = index.offsets[b], index.offsets[b + 1]
    lengths = ends - starts
    point = np.repeat(np.flatnonzero(boundary), lengths)
    pos = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
    polygon = index.candidates[pos].astype(np.int64)
    px, py = x[rows[point]], y[rows[point]]
    inside = shapely.contains_xy(index.geoms[polygon], px, py)
    n_in = np.bincount(point[inside], minlength=m)
    touch = np.zeros(len(point), dtype=bool)
    maybe = n_in[point] == 0
    touch[maybe] = shapely.intersects_xy(index.geoms[polygon[maybe]], px[maybe], py[maybe])
    n_touch = np.bincount(point[touch], minlength=m)

    leaf = np.full(m, -1, dtype=np.int64)
    status = np.full(m, _STATUS["inside"], dtype=np.int64)
    reason = np.full(m, int(Reason.INSIDE), dtype=np.int64)
    leaf[point[inside & (n_in[point] == 1)]] = polygon[inside & (n_in[point] == 1)]

    # Overlap and boundary points: their member leaves sorted by code, lowest first.
    members = (inside & (n_in[point] > 1)) | touch
    p, g = point[members], polygon[members]
    order = np.lexsort((index.code_rank[g], p))
    p, g = p[order], g[order]
    first = np.r_[True, p[1:] != p[:-1]] if len(p) else np.zeros(0, dtype=bool)
    codes = index.leaves["leaf_code"].to_numpy(dtype=object)[g]
    pieces = np.where(first, codes, "," + codes.astype(str)).astype(object)
    joined = np.add.reduceat(pieces, np.flatnonzero(first)) if len(p) else pieces
    texts, which = np.unique(joined.astype(str), return_inverse=True)
    candidate = np.full(m, -1, dtype=np.int64)
    candidate[p[first]] = which
    lowest = np.full(m, -1, dtype=np.int64)
    lowest[p[first]] = g[first]

    overlap = n_in > 1
    status[overlap] = _STATUS["in_overlap"]
    if on_overlap == "rule":
        leaf[overlap] = lowest[overlap]
        reason[overlap] = Reason.OVERLAP_RULE
    else:
        reason[overlap] = Reason.OVERLAP_REVIEW
    edge = (n_in == 0) & (n_touch > 0)
    status[edge] = _STATUS["on_boundary"]
    reason[edge] = Reason.ON_BOUNDARY
    leaf[edge] = lowest[edge]

    none = np.flatnonzero((n_in == 0) & (n_touch == 0))
    if len(none):
        within = shapely.contains_xy(index.outline, x[rows[none]], y[rows[none]])
        status[none] = np.where(within, _STATUS["in_gap"], _STATUS["outside"])
        reason[none] = np.where(within, Reason.IN_GAP, Reason.OUTSIDE)
    return _Exact(rows, leaf, status, reason, candidate, pd.Index(texts))


def _suggest(index, system, x, y, tolerance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest leaf within ``tolerance`` metres of each point (storage CRS ``x``, ``y``).

    Returns the positions of the points that have one, that leaf and the distance.
    """
    if not len(x) or not len(index.leaves):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
    metric = metric_crs(system.config)
    to_metric = Transformer.from_crs(system.crs, metric, always_xy=True)
    mx, my = to_metric.transform(x, y)
    leaves = index.leaves.to_crs(metric)
    tree = shapely.STRtree(leaves.geometry.to_numpy())
    (p, g), dist = tree.query_nearest(
        shapely.points(mx, my), max_distance=tolerance, return_distance=True, all_matches=False
    )
    return p, g, dist
