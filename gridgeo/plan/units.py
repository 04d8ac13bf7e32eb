"""Units: the building blocks a plan reassigns, their adjacency and their checks.

Planners redraw grids by moving whole *units* (小区/楼栋 clusters in towns,
natural-village pieces in the countryside) from one grid to another; grid and
micro-grid polygons are the coverage unions of their units. A unit layer is a
GeoDataFrame in the system's storage CRS with the columns of
:func:`unit_columns`:

``unit_id``
    Text, unique and stable (``"U00001"``).
district, workload and refinement code columns
    Named by the configuration's roles (``town_code``, ``grid_code`` and
    ``micro_grid_code`` for the banner): the district, grid and micro-grid
    the unit lies in; the refinement code is ``""`` where the grid is not
    refined, and the column is absent when the configuration has no
    refinement level.
``households``, ``residents``
    int64, the people living in the unit.
``village``
    The administrative village of a rural unit, else ``""``.
``kind``
    ``"urban"``, ``"rural"``, ``"institution"``, or ``"derived"`` for units
    made by :func:`derive_units`.

The units of a grid tile it: their coverage union is the grid polygon, and
the whole layer is a valid coverage (:func:`shapely.coverage_is_valid`).
:func:`validate_units` checks all of this; :func:`unit_adjacency` gives the
rook adjacency (shared edges) that contiguity rules need;
:func:`derive_units` makes a unit layer for a system that has none. The demo
ships its own (:func:`gridgeo.demo.load_units`).

Example
-------
>>> from gridgeo.demo import load_units
>>> units = load_units()
>>> adjacency = unit_adjacency(units)
>>> len(adjacency.unit_id), round(float(adjacency.length.sum()) / 1000)  # km of shared edge
(16660, 18878)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from numbers import Real

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from gridgeo.config import BANNER, GridConfig, Level, Role
from gridgeo.crs import metric_crs, project, transformer
from gridgeo.errors import CrsError, GeometryError, PlanError, SchemaError, option
from gridgeo.model import GridSystem

__all__ = [
    "SLIVER_M2",
    "UNITS_PER_GRID",
    "UNIT_ID",
    "UNIT_LAYER",
    "UnitAdjacency",
    "derive_units",
    "unit_adjacency",
    "unit_columns",
    "validate_units",
]

UNIT_LAYER = "units"
"""Name of the unit layer among a :class:`~gridgeo.model.GridSystem`'s source layers."""

UNIT_ID = "unit_id"
"""The unit layer's key column."""

UNITS_PER_GRID = 30
"""About how many units :func:`derive_units` makes per grid (20–40 for most grids)."""

SLIVER_M2 = 5.0
"""Pieces of a derived unit layer smaller than this (m²) join a neighbour in their leaf."""

# Pieces per metre of edge per square side (see _square_side): measured on the demo,
# 0.8 gives a median of 29 units per grid (33 in Wulashan), four grids in five
# between 20 and 40.
_EDGE_PIECES = 0.8
_FINEST_M = 10.0  # no lattice cell is smaller, whatever the grid
_MAX_CELLS = 2_000_000  # lattice cells derive_units refuses to go beyond


# -- the layer's columns ----------------------------------------------------------------------
def unit_columns(config: GridConfig = BANNER) -> tuple[str, ...]:
    """The columns of a unit layer under ``config``, in order (geometry aside).

    >>> unit_columns()
    ('unit_id', 'town_code', 'grid_code', 'micro_grid_code', 'households', 'residents', 'village', 'kind')
    """
    return (UNIT_ID, *_code_columns(config), "households", "residents", "village", "kind")


def _code_columns(config: GridConfig) -> tuple[str, ...]:
    """District, workload and (when the configuration has one) refinement code columns."""
    roles = (Role.DISTRICT, Role.WORKLOAD, Role.REFINEMENT)
    return tuple(level.code_column for role in roles if (level := config.role(role)) is not None)


def _workload(config: GridConfig) -> Level:
    level = config.role(Role.WORKLOAD)
    if level is None or config.role(Role.DISTRICT) is None:
        raise PlanError(
            "the configuration has no workload level below a district level, so there are "
            "no grids to plan. Declare the roles in the configuration's [roles] table.",
            rule="unknown",
        )
    return level


# -- deriving units ---------------------------------------------------------------------------
def derive_units(
    system: GridSystem,
    households: gpd.GeoDataFrame | None = None,
    cell_m: float | None = None,
    *,
    districts: Iterable[str] | None = None,
) -> gpd.GeoDataFrame:
    """A unit layer for a system that has none: its leaves cut by a square lattice.

    Every user can plan, whatever their data: the *leaves* of the system
    (micro-grids, and the grids no micro-grid refines) are cut by a lattice
    of squares drawn in the system's metric CRS.

    Method:

    1. Lattice. With ``cell_m``, one lattice of ``cell_m``-metre squares. By
       default a quadtree: each grid asks for the square side that cuts it
       into about :data:`UNITS_PER_GRID` pieces, counting the squares inside
       its leaves and those their edges cross (rounded to a power of two
       times the smallest side asked for), and a square is split in four
       while a grid it touches asks for smaller ones; so a small urban grid
       and a large rural one both get 20–40 units (four grids in five on the
       demo, median 29).
    2. Cutting. The lattice's corners are projected to the storage CRS, and
       the lattice lines and the leaves' edges are noded together once
       (:func:`shapely.node`) and polygonized: each face is a piece of one
       leaf in one square, and neighbouring faces share identical vertices, so
       the result is a valid coverage. A piece cut in two by a leaf's
       boundary gives two units.
    3. Slivers. A piece smaller than :data:`SLIVER_M2` m², or narrower than
       the configuration's ``sliver`` tolerance, joins the neighbour in its
       leaf it shares the longest edge with.
    4. People. With ``households`` (points, e.g. a household register), each
       unit counts the points inside it, and residents the sum of their
       ``size`` column (one per household without one); points outside every
       unit are not counted. Without them, each leaf's ``households`` and
       ``residents`` attributes are spread over its units by area, as exact
       integers (largest remainder): a micro-grid's own values where the
       micro-grids of its grid carry them and add up to the grid's, else the
       grid's values over all its units.

    A leaf's units keep every vertex of the leaf: their coverage union is the
    leaf, up to the floating-point rounding of the points where lattice lines
    cross its edges (a nanometre off the edge: on the demo, a symmetric
    difference of at most 4e-6 m² per grid). The units themselves are an
    exact coverage, so grids derived from them share their edges exactly.

    Parameters
    ----------
    system:
        The grid system; its polygons should form a clean coverage
        (:func:`gridgeo.check.check_system` finds no gap or overlap).
    households:
        Optional household points, any CRS.
    cell_m:
        Side of the lattice squares in metres, the same everywhere; by
        default chosen per grid as described above.
    districts:
        Derive units for these district codes only (default: all).

    Returns
    -------
    geopandas.GeoDataFrame
        The unit layer (:func:`unit_columns`), ``kind`` ``"derived"``,
        ``village`` the grid's ``community`` for rural grids, in the storage
        CRS, sorted by grid and micro-grid code, then north to south, west
        to east.

    Raises
    ------
    PlanError
        ``cell_m`` is not a positive number of metres, or so small that the
        lattice would have millions of squares; an unknown district code.

    Examples
    --------
    Units for one town of the demo, and what they add up to:

    >>> from gridgeo.demo import load_demo
    >>> system = load_demo()
    >>> units = derive_units(system, districts=["150823107"])  # 小佘太镇
    >>> grids = system["grid"][system["grid"]["parent_code"] == "150823107"]
    >>> len(units), units["grid_code"].nunique() == len(grids)
    (1476, True)
    >>> int(units["households"].sum()) == int(grids["households"].sum())
    True
    >>> float(units.groupby("grid_code").size().median())
    30.0
    """
    _workload(system.config)
    positive = isinstance(cell_m, Real) and not isinstance(cell_m, bool) and 0 < cell_m < np.inf
    if cell_m is not None and not positive:
        raise PlanError(
            f"{option('cell_m', cell_m)} is not a side length in metres; pass a positive "
            f"number such as {option('cell_m', 100)}, or leave it out to size the lattice "
            "per grid.",
            rule="units",
        )
    leaves = _leaves(system, districts)
    lines = _lattice(leaves, cell_m, system)
    faces, owner = _cut(leaves.geometry.to_numpy(), lines)
    faces, owner = _merge_slivers(faces, owner, system)
    units = _unit_frame(faces, owner, leaves, system)
    return _count_people(units, leaves, households, system)


def _leaves(system: GridSystem, districts: Iterable[str] | None) -> gpd.GeoDataFrame:
    """The polygons units are cut from: micro-grids, and the grids none refines."""
    config = system.config
    workload = _workload(config)
    district = config.role(Role.DISTRICT)
    refinement = config.role(Role.REFINEMENT)
    grids = system[workload.name]
    lineage = system.lineage(workload.name)
    district_of = lineage[district.name].groupby(level=0).first()
    frame = pd.DataFrame(
        {
            "district": district_of.reindex(grids["code"]).fillna("").to_numpy(),
            "workload": grids["code"].to_numpy(),
            "refinement": "",
        }
    )
    parts = [gpd.GeoDataFrame(frame, geometry=grids.geometry.to_numpy(), crs=grids.crs)]
    if refinement is not None and len(system[refinement.name]):
        micros = system[refinement.name]
        refined = frame["workload"].isin(set(micros["parent_code"]))
        parts[0] = parts[0][~refined.to_numpy()]
        below = pd.DataFrame(
            {
                "district": district_of.reindex(micros["parent_code"]).fillna("").to_numpy(),
                "workload": micros["parent_code"].to_numpy(),
                "refinement": micros["code"].to_numpy(),
            }
        )
        parts.append(gpd.GeoDataFrame(below, geometry=micros.geometry.to_numpy(), crs=grids.crs))
    leaves = pd.concat(parts, ignore_index=True)
    if districts is not None:
        wanted = [str(d) for d in ([districts] if isinstance(districts, str) else districts)]
        unknown = sorted(set(wanted) - set(leaves["district"]))
        if unknown:
            raise PlanError(
                f"{district.name} code(s) {unknown[:5]} are not in the system; it has "
                f"{sorted(set(leaves['district']))[:5]} …. Pass codes of the "
                f"{district.name} level as {option('districts', [])}.",
                rule="unknown",
                codes=tuple(unknown),
            )
        leaves = leaves[leaves["district"].isin(wanted)].reset_index(drop=True)
    geom = leaves.geometry
    bad = geom.isna() | geom.is_empty | ~geom.geom_type.isin(["Polygon", "MultiPolygon"])
    if bad.any():
        row = leaves[bad.to_numpy()].iloc[0]
        raise GeometryError(
            f"{system.origin}: {row['refinement'] or row['workload']} has no polygon to cut units "
            "from. Fix its geometry (gridgeo.check.check_system shows it) and derive again."
        )
    return leaves


def _lattice(leaves: gpd.GeoDataFrame, cell_m: float | None, system: GridSystem) -> np.ndarray:
    """Lattice lines (storage CRS) over the leaves: a quadtree of metric squares."""
    metric = system.metric_crs
    leaf_metric = project(leaves.geometry.to_numpy(), system.crs, metric)
    if cell_m is not None:
        smallest = float(cell_m)
        level = np.zeros(len(leaves), dtype=np.int64)
    else:
        side = _square_side(leaves["workload"].to_numpy(), leaf_metric)
        side = np.maximum(side, _FINEST_M)
        smallest = float(side.min())
        level = np.maximum(np.round(np.log2(side / smallest)), 0).astype(np.int64)
    top = int(level.max()) if len(level) else 0
    size = smallest * 2**top
    minx, miny, maxx, maxy = shapely.total_bounds(leaf_metric)
    x0, y0 = np.floor(minx / size) * size, np.floor(miny / size) * size
    nx, ny = int(np.ceil((maxx - x0) / size)) + 1, int(np.ceil((maxy - y0) / size)) + 1
    estimate = (maxx - minx) * (maxy - miny) / smallest**2
    if nx * ny > _MAX_CELLS or (cell_m is not None and estimate > _MAX_CELLS):
        raise PlanError(
            f"{option('cell_m', cell_m)} would cut the system into about "
            f"{estimate:,.0f} squares; pass a larger {option('cell_m')} (metres), or "
            "leave it out to size the lattice per grid.",
            rule="units",
        )
    # Squares as integer corners in units of the smallest side: every corner of
    # every square is then an exact lattice point, shared bit for bit.
    ix, iy = (a.ravel() * 2**top for a in np.meshgrid(np.arange(nx), np.arange(ny)))
    span = np.full(len(ix), 2**top, dtype=np.int64)
    tree = shapely.STRtree(leaf_metric)
    done = []
    for depth in range(top, -1, -1):
        boxes = shapely.box(
            x0 + ix * smallest, y0 + iy * smallest, x0 + (ix + span) * smallest,
            y0 + (iy + span) * smallest,
        )  # fmt: skip
        box, leaf = tree.query(boxes, predicate="intersects")
        wanted = np.full(len(ix), np.iinfo(np.int64).max)
        np.minimum.at(wanted, box, level[leaf])
        touched = wanted < np.iinfo(np.int64).max
        split = touched & (wanted < depth)
        keep = touched & ~split
        done.append(np.column_stack([ix[keep], iy[keep], span[keep]]))
        half = span[split] // 2
        ix = np.concatenate([ix[split], ix[split] + half, ix[split], ix[split] + half])
        iy = np.concatenate([iy[split], iy[split], iy[split] + half, iy[split] + half])
        span = np.concatenate([half] * 4)
    squares = np.vstack(done).astype(float)
    x, y, s = squares.T
    sides = np.stack(
        [
            np.column_stack([x, y, x + s, y]),
            np.column_stack([x + s, y, x + s, y + s]),
            np.column_stack([x, y + s, x + s, y + s]),
            np.column_stack([x, y, x, y + s]),
        ]
    ).reshape(-1, 2, 2)
    # Exact in integers: the union dissolves shared sides and nodes the corners of
    # small squares on the sides of big ones, so no line is drawn twice.
    network = shapely.get_parts(shapely.union_all(shapely.linestrings(sides)))
    coords, index = shapely.get_coordinates(network, return_index=True)
    lon, lat = transformer(CRS.from_user_input(metric), system.crs).transform(
        x0 + coords[:, 0] * smallest, y0 + coords[:, 1] * smallest
    )
    return shapely.linestrings(np.column_stack([lon, lat]), indices=index)


def _square_side(grid: np.ndarray, leaves: np.ndarray) -> np.ndarray:
    """Per leaf, the side of the squares that cut its grid into about UNITS_PER_GRID pieces.

    A leaf of area A and perimeter P cut by squares of side s falls into about
    A / s² + k P / s + 1 pieces (the squares inside, those its edge crosses, and
    itself); summed over a grid's leaves, that is a quadratic in 1 / s.
    """
    frame = pd.DataFrame({"code": grid, "a": shapely.area(leaves), "p": shapely.length(leaves)})
    sums = frame.groupby("code").agg(a=("a", "sum"), p=("p", "sum"), n=("a", "size"))
    a, b, c = sums["a"], _EDGE_PIECES * sums["p"], sums["n"] - UNITS_PER_GRID
    inverse = (-b + np.sqrt(b**2 - 4 * a * np.minimum(c, -1))) / (2 * a)
    return (1 / inverse).reindex(grid).to_numpy()


def _cut(leaves: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Faces of the leaves' edges and the lattice noded together, with the leaf of each."""
    edges = shapely.get_parts(shapely.boundary(leaves))
    noded = shapely.node(shapely.multilinestrings(np.concatenate([edges, lines])))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    tree = shapely.STRtree(leaves)
    face, leaf = tree.query(shapely.point_on_surface(faces), predicate="within")
    owner = np.full(len(faces), -1)
    owner[face[::-1]] = leaf[::-1]  # a face on two leaves (an overlap): the first
    # A face thin enough for its inner point to round onto an edge: by area.
    lost = np.flatnonzero(owner < 0)
    if len(lost):
        face, leaf = tree.query(faces[lost], predicate="intersects")
        share = shapely.area(shapely.intersection(faces[lost][face], leaves[leaf]))
        share = share / np.maximum(shapely.area(faces[lost][face]), 1e-300)
        best = pd.DataFrame({"face": face, "leaf": leaf, "share": share})
        best = best[best["share"] > 0.5].sort_values("share").drop_duplicates("face", keep="last")
        owner[lost[best["face"].to_numpy()]] = best["leaf"].to_numpy()
    inside = owner >= 0  # faces outside every leaf: the lattice beyond the outline
    return faces[inside], owner[inside]


def _merge_slivers(
    faces: np.ndarray, owner: np.ndarray, system: GridSystem
) -> tuple[np.ndarray, np.ndarray]:
    """Faces too small or too narrow joined to their longest-edge neighbour in the same leaf."""
    metric = project(faces, system.crs, system.metric_crs, spacing=None)
    area = shapely.area(metric)
    width = 2 * area / np.maximum(shapely.length(metric), 1e-300)
    small = (area < SLIVER_M2) | (width < system.config.tolerances.sliver)
    if not small.any():
        return faces, owner
    pairs = _shared_edges(faces, system.crs, system.metric_crs)
    i, j, length = pairs.i, pairs.j, pairs.length
    same = owner[i] == owner[j]
    i, j, length = i[same], j[same], length[same]
    # Each small face picks one neighbour: the longest shared edge, big ones first.
    pick = pd.DataFrame(
        {
            "small": np.r_[i, j],
            "other": np.r_[j, i],
            "big": ~small[np.r_[j, i]],
            "length": np.r_[length, length],
        }
    )
    pick = pick[small[pick["small"].to_numpy()]]
    pick = pick.sort_values(["small", "big", "length"]).drop_duplicates("small", keep="last")
    n = len(faces)
    graph = sparse.coo_matrix(
        (np.ones(len(pick)), (pick["small"].to_numpy(), pick["other"].to_numpy())), shape=(n, n)
    )
    _, label = connected_components(graph, directed=False)
    order = np.argsort(label, kind="stable")
    start = np.flatnonzero(np.r_[True, np.diff(label[order]) != 0])
    groups = np.split(order, start[1:])
    merged = faces.copy()
    keep = np.ones(n, dtype=bool)
    for members in (g for g in groups if len(g) > 1):  # one per sliver: a few per grid
        merged[members[0]] = shapely.coverage_union_all(faces[members])
        keep[members[1:]] = False
    return merged[keep], owner[keep]


def _unit_frame(
    faces: np.ndarray, owner: np.ndarray, leaves: gpd.GeoDataFrame, system: GridSystem
) -> gpd.GeoDataFrame:
    """The units' columns (people still zero), sorted and numbered."""
    config = system.config
    workload = config.role(Role.WORKLOAD)
    columns = _code_columns(config)
    grids = system[workload.name].drop_duplicates("code").set_index("code")
    grid = leaves["workload"].to_numpy()[owner]
    settlement = (
        grids["settlement"].reindex(grid).fillna("").to_numpy()
        if "settlement" in grids
        else np.full(len(grid), "")
    )
    community = (
        grids["community"].reindex(grid).fillna("").astype(str).to_numpy()
        if "community" in grids
        else np.full(len(grid), "")
    )
    values = {
        columns[0]: leaves["district"].to_numpy()[owner],
        columns[1]: grid,
    }
    if len(columns) > 2:
        values[columns[2]] = leaves["refinement"].to_numpy()[owner]
    values["households"] = np.zeros(len(faces), dtype=np.int64)
    values["residents"] = np.zeros(len(faces), dtype=np.int64)
    values["village"] = np.where(settlement == "rural", community, "")
    values["kind"] = "derived"
    frame = pd.DataFrame(values)
    frame["_leaf"] = owner
    metric = project(faces, system.crs, system.metric_crs, spacing=None)
    centre = shapely.get_coordinates(shapely.point_on_surface(metric))
    # Reading order: rows of about a unit's height, north to south, then west to east.
    row = np.floor(-centre[:, 1] / max(float(np.median(np.sqrt(shapely.area(metric)))), 1.0))
    order = np.lexsort((centre[:, 0], row, leaves["refinement"].to_numpy()[owner], grid))
    units = gpd.GeoDataFrame(frame, geometry=faces, crs=system.crs).iloc[order]
    units = units.reset_index(drop=True)
    width = max(5, len(str(len(units))))
    ids = np.char.add("U", np.char.zfill(np.arange(1, len(units) + 1).astype(str), width))
    units.insert(0, UNIT_ID, ids)
    return units


def _count_people(
    units: gpd.GeoDataFrame,
    leaves: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame | None,
    system: GridSystem,
) -> gpd.GeoDataFrame:
    """``households`` and ``residents`` per unit: counted from points, or spread by area."""
    units = units.copy()
    if households is not None:
        if not isinstance(households, gpd.GeoDataFrame) or households.crs is None:
            raise SchemaError(
                "households: expected a GeoDataFrame of points with a CRS; read a table "
                "of coordinates with gridgeo.io.read_points."
            )
        points = households.geometry.to_crs(system.crs).to_numpy()
        point, unit = shapely.STRtree(units.geometry.to_numpy()).query(points, predicate="within")
        first = np.unique(point, return_index=True)[1]  # a point on a shared edge: once
        point, unit = point[first], unit[first]
        size = (
            pd.to_numeric(households["size"], errors="coerce").fillna(1).to_numpy()[point]
            if "size" in households
            else np.ones(len(point))
        )
        units["households"] = np.bincount(unit, minlength=len(units)).astype(np.int64)
        units["residents"] = (
            np.bincount(unit, weights=size, minlength=len(units)).round().astype(np.int64)
        )
        return units.drop(columns="_leaf")
    config = system.config
    grids = system[config.role(Role.WORKLOAD).name].drop_duplicates("code").set_index("code")
    refinement = config.role(Role.REFINEMENT)
    micros = (
        system[refinement.name].drop_duplicates("code").set_index("code")
        if refinement is not None
        else None
    )
    area = shapely.area(project(units.geometry.to_numpy(), system.crs, system.metric_crs))
    grid = units[config.role(Role.WORKLOAD).code_column].to_numpy()
    micro = leaves["refinement"].to_numpy()[units["_leaf"].to_numpy()]
    for column in ("households", "residents"):
        grid_total = _whole(grids, column).reindex(grid).fillna(0).to_numpy()
        group, total = grid.astype(object), grid_total
        if micros is not None and column in micros:
            own = _whole(micros, column)
            per_grid = own.groupby(micros["parent_code"]).sum()
            complete = micros[column].notna().groupby(micros["parent_code"]).all()
            usable = complete & per_grid.eq(_whole(grids, column).reindex(per_grid.index))
            use = (micro != "") & pd.Series(grid).map(usable).fillna(False).to_numpy(bool)
            group = np.where(use, micro, group)
            total = np.where(use, own.reindex(micro).fillna(0).to_numpy(), total)
        units[column] = _largest_remainder(group, total, area)
    return units.drop(columns="_leaf")


def _whole(frame: pd.DataFrame, column: str) -> pd.Series:
    """``frame[column]`` as whole numbers (missing: 0), indexed like ``frame``."""
    if column not in frame:
        return pd.Series(0, index=frame.index, dtype=np.int64)
    values = pd.to_numeric(frame[column], errors="coerce").fillna(0)
    return values.round().astype(np.int64)


def _largest_remainder(group: np.ndarray, total: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Integers per row, summing to ``total`` within each ``group``, proportional to ``weight``.

    >>> _largest_remainder(np.array(["a", "a", "a", "b"]), np.array([10, 10, 10, 3]),
    ...                    np.array([1.0, 1.0, 1.0, 5.0])).tolist()
    [4, 3, 3, 3]
    """
    codes, key = np.unique(group.astype(str), return_inverse=True)
    weight = np.asarray(weight, dtype=float)
    sums = np.bincount(key, weights=weight, minlength=len(codes))
    even = sums[key] <= 0  # a group without area: equal shares
    share = np.where(even, 1.0 / np.bincount(key)[key], weight / np.where(even, 1, sums[key]))
    exact = total * share
    floor = np.floor(exact).astype(np.int64)
    short = total - np.bincount(key, weights=floor, minlength=len(codes))[key].round()
    order = np.lexsort((np.arange(len(key)), -(exact - floor), key))
    rank = np.empty(len(key), dtype=np.int64)
    start = np.r_[0, np.flatnonzero(np.diff(key[order])) + 1]
    rank[order] = np.arange(len(key)) - np.repeat(start, np.diff(np.r_[start, len(key)]))
    return floor + (rank < short).astype(np.int64)


# -- adjacency ------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitAdjacency:
    """Rook adjacency of a unit layer: pairs of units that share an edge.

    Attributes
    ----------
    unit_id:
        The layer's unit ids, in row order; ``i`` and ``j`` index it.
    i, j:
        Row positions of each adjacent pair, ``i < j``, sorted.
    length:
        The length of the shared edge of each pair, in metres.
    """

    unit_id: np.ndarray
    i: np.ndarray
    j: np.ndarray
    length: np.ndarray

    def __len__(self) -> int:
        return len(self.i)

    def to_csr(self) -> sparse.csr_array:
        """The symmetric adjacency matrix (rows: units), shared lengths as values."""
        n = len(self.unit_id)
        data = np.r_[self.length, self.length]
        return sparse.csr_array(
            (data, (np.r_[self.i, self.j], np.r_[self.j, self.i])), shape=(n, n)
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per adjacent pair: ``unit_a``, ``unit_b`` (ids), ``length_m``."""
        return pd.DataFrame(
            {
                "unit_a": self.unit_id[self.i],
                "unit_b": self.unit_id[self.j],
                "length_m": self.length,
            }
        )

    def to_graph(self, rows: Iterable[int] | None = None):
        """A :class:`networkx.Graph` on row positions (all, or ``rows`` only).

        Edges carry ``length`` (metres). Every row in ``rows`` is a node, also
        one without neighbours among them.
        """
        import networkx as nx

        graph = nx.Graph()
        if rows is None:
            graph.add_nodes_from(range(len(self.unit_id)))
            keep = np.ones(len(self.i), dtype=bool)
        else:
            rows = np.asarray(list(rows), dtype=np.int64)
            graph.add_nodes_from(rows.tolist())
            member = np.zeros(len(self.unit_id), dtype=bool)
            member[rows] = True
            keep = member[self.i] & member[self.j]
        graph.add_weighted_edges_from(
            zip(
                self.i[keep].tolist(),
                self.j[keep].tolist(),
                self.length[keep].tolist(),
                strict=True,
            ),
            weight="length",
        )
        return graph


def unit_adjacency(units: gpd.GeoDataFrame, *, crs=None, method: str = "auto") -> UnitAdjacency:
    """Which units share an edge (of positive length, not just a corner), and how long.

    Parameters
    ----------
    units:
        A unit layer (any polygons with a CRS and a ``unit_id`` column; row
        numbers stand in for missing ids).
    crs:
        The metric CRS shared lengths are measured in; by default the units'
        own CRS when it is projected, else the one
        :func:`gridgeo.crs.metric_crs` fits to their extent.
    method : {"auto", "edges", "overlay"}
        ``"edges"``: match identical edges (segment by segment); exact and
        fast, and complete when the units are a valid coverage, as every
        unit layer gridgeo makes is. ``"overlay"``: intersect the boundaries
        of every pair whose polygons touch (an STRtree query), for layers
        whose neighbours do not share vertices. ``"auto"`` (default):
        ``"edges"`` when :func:`shapely.coverage_is_valid`, else ``"overlay"``.

    Returns
    -------
    UnitAdjacency
        Pairs ``i < j`` (row positions) with their shared length in metres;
        ``.to_csr()``, ``.to_frame()``, ``.to_graph(rows)``.

    Notes
    -----
    ``"edges"`` sorts every segment of every ring once: O(s log s) for ``s``
    segments, about 0.2 s for the demo's 16,660 units; ``"auto"`` adds the
    coverage check (about as long).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> units = gpd.GeoDataFrame({"unit_id": ["a", "b", "c", "d"]},
    ...     geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 1, 2), box(1, 1, 2, 2)],
    ...     crs="EPSG:4545")
    >>> adjacency = unit_adjacency(units)  # a–d and b–c touch at a corner only
    >>> adjacency.to_frame()
      unit_a unit_b  length_m
    0      a      b       1.0
    1      a      c       1.0
    2      b      d       1.0
    3      c      d       1.0
    """
    if method not in ("auto", "edges", "overlay"):
        raise ValueError(f"method must be 'auto', 'edges' or 'overlay', not {method!r}")
    if units.crs is None:
        raise CrsError("the unit layer has no CRS; set the one its coordinates are in.")
    geoms = units.geometry.to_numpy()
    target = _metric_for(units, crs)
    if method == "auto":
        method = "edges" if len(geoms) == 0 or shapely.coverage_is_valid(geoms) else "overlay"
    pairs = (
        _shared_edges(geoms, units.crs, target)
        if method == "edges"
        else _touching(geoms, units.crs, target)
    )
    ids = (
        units[UNIT_ID].to_numpy().astype(str)
        if UNIT_ID in units
        else np.arange(len(units)).astype(str)
    )
    return UnitAdjacency(ids, pairs.i, pairs.j, pairs.length)


@dataclass(frozen=True)
class _Pairs:
    i: np.ndarray
    j: np.ndarray
    length: np.ndarray


def _metric_for(units: gpd.GeoDataFrame, crs) -> CRS:
    if crs is not None:
        return CRS.from_user_input(crs)
    own = CRS.from_user_input(units.crs)
    if own.is_projected:
        return own
    return metric_crs(replace(BANNER, metric_crs="auto"), units)


def _shared_edges(geoms: np.ndarray, source, target) -> _Pairs:
    """Pairs of polygons with identical segments, and the length they share in ``target``."""
    rings, owner = shapely.get_rings(geoms, return_index=True)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[:-1] == ring[1:]
    a, b = coords[:-1][same], coords[1:][same]
    who = owner[ring[:-1][same]]
    source, target = CRS.from_user_input(source), CRS.from_user_input(target)
    moved = coords
    if source != target:  # vertices only: segments are short, their chords are their length
        moved = np.column_stack(transformer(source, target).transform(coords[:, 0], coords[:, 1]))
    ma, mb = moved[:-1][same], moved[1:][same]
    length = np.hypot(*(mb - ma).T)
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    key = np.column_stack([np.where(swap[:, None], b, a), np.where(swap[:, None], a, b)])
    order = np.lexsort(key.T[::-1])
    key, who, length = key[order], who[order], length[order]
    equal = (key[1:] == key[:-1]).all(axis=1) & (who[1:] != who[:-1])
    i, j, seg = who[:-1][equal], who[1:][equal], length[:-1][equal]
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    frame = pd.DataFrame({"i": lo, "j": hi, "length": seg})
    frame = frame.groupby(["i", "j"], sort=True)["length"].sum().reset_index()
    return _Pairs(
        frame["i"].to_numpy(np.int64), frame["j"].to_numpy(np.int64), frame["length"].to_numpy()
    )


def _touching(geoms: np.ndarray, source, target) -> _Pairs:
    """Pairs of polygons whose boundaries overlap along a line, with its metric length."""
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    edges = shapely.boundary(geoms)
    shared = shapely.intersection(edges[a], edges[b])
    length = shapely.length(project(shared, source, target, spacing=None))
    line = np.flatnonzero(length > 0)
    line = line[np.lexsort((b[line], a[line]))]
    return _Pairs(a[line].astype(np.int64), b[line].astype(np.int64), length[line])


# -- validation -----------------------------------------------------------------------------
def validate_units(
    units: gpd.GeoDataFrame, system: GridSystem, *, tolerance_m2: float | None = None
) -> None:
    """Raise if ``units`` is not a unit layer of ``system``; return ``None`` if it is.

    Checks, in this order: the columns (:func:`unit_columns`), unique
    ``unit_id`` values, one valid polygon per unit, whole non-negative
    ``households`` and ``residents``, codes that exist and nest (the unit's
    micro-grid belongs to its grid, its grid to its district, a refined grid's
    units name their micro-grid), every unit inside a grid and inside the one
    it names, no two units overlapping, and each grid and micro-grid tiled by
    its units with no gap and nothing outside.

    Parameters
    ----------
    units:
        The unit layer, in ``system``'s CRS.
    system:
        The grid system the units should tile.
    tolerance_m2:
        Gaps, overlaps and overhangs up to this area (m²) are floating-point
        dust, not defects; default: the square of the configuration's
        ``dust`` tolerance (1 cm² for the banner).

    Raises
    ------
    SchemaError
        A column is missing, a ``unit_id`` is empty or repeated, people
        counts are not whole non-negative numbers.
    CrsError
        The units are not in the system's CRS.
    GeometryError
        A unit is not one valid polygon, lies outside every grid or in
        another grid than it names, two units overlap, or a grid's units
        leave a gap or reach outside it (with the area).
    PlanError
        A unit names a grid or micro-grid that does not exist
        (``rule="unknown"``), a micro-grid of another grid or none in a
        refined grid (``"refinement"``), or a district its grid is not in
        (``"district"``).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from gridgeo.demo import load_demo, load_units
    >>> system, units = load_demo(), load_units()
    >>> validate_units(units, system)
    >>> validate_units(units.drop(index=[5]), system)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    gridgeo.errors.GeometryError: units: grid 150823100001 is not covered by its units: a gap of ...
    """
    config = system.config
    workload = _workload(config)
    tolerance = config.tolerances.dust**2 if tolerance_m2 is None else float(tolerance_m2)
    units = _check_table(units, system)
    ids = units[UNIT_ID].to_numpy()
    geoms = units.geometry.to_numpy()
    _check_codes(units, system)
    grids = system[workload.name].drop_duplicates("code").reset_index(drop=True)
    column = workload.code_column
    # Where each unit lies: the grid holding a point inside it.
    point = shapely.point_on_surface(geoms)
    unit, grid = shapely.STRtree(grids.geometry.to_numpy()).query(point, predicate="within")
    inside = np.full(len(units), "", dtype=object)
    inside[unit[::-1]] = grids["code"].to_numpy()[grid[::-1]]
    outside = np.flatnonzero(inside == "")
    if len(outside):
        k = outside[0]
        x, y = shapely.get_coordinates(point[k])[0]
        raise GeometryError(
            f"{UNIT_LAYER}: unit {ids[k]} lies outside every {workload.name} (a point inside "
            f"it, ({x:.6f}, {y:.6f}), is in none); {len(outside)} unit(s) do. Delete it, "
            f"or redraw it inside the {workload.name} named in {column}."
        )
    wrong = np.flatnonzero(inside != units[column].to_numpy())
    if len(wrong):
        k = wrong[0]
        raise GeometryError(
            f"{UNIT_LAYER}: unit {ids[k]} names {workload.name} {units[column].iloc[k]} but "
            f"lies in {workload.name} {inside[k]}; {len(wrong)} unit(s) do. Set its {column} "
            f"to {inside[k]}, or redraw it."
        )
    metric = system.metric_crs
    if not shapely.coverage_is_valid(geoms):
        _check_overlaps(units, metric, tolerance)
    levels = [(workload, grids)]
    refinement = config.role(Role.REFINEMENT)
    if refinement is not None and len(system[refinement.name]):
        levels.append((refinement, system[refinement.name].drop_duplicates("code")))
    for level, polygons in levels:
        _check_tiling(units, level, polygons, system, tolerance)


def _check_table(units: gpd.GeoDataFrame, system: GridSystem) -> gpd.GeoDataFrame:
    """Columns, CRS, ids, geometry types and people counts; ``units`` with a fresh index."""
    if not isinstance(units, gpd.GeoDataFrame):
        raise SchemaError(
            f"{UNIT_LAYER}: expected a GeoDataFrame, got {type(units).__name__}. Read the "
            "layer with gridgeo.io.read_layer, or make one with derive_units(system)."
        )
    wanted = (UNIT_ID, *_code_columns(system.config), "households", "residents")
    missing = [c for c in wanted if c not in units.columns]
    if missing:
        raise SchemaError(
            f"{UNIT_LAYER}: column(s) {missing} missing; found {list(units.columns)}. A unit "
            f"layer has {list(wanted)}; rename your columns, or make one with "
            "derive_units(system)."
        )
    if units.crs is None or CRS.from_user_input(units.crs) != system.crs:
        raise CrsError(
            f"{UNIT_LAYER}: the units are in {units.crs or 'no CRS'}, the grid system in "
            f"{system.crs.to_string()}. Reproject them first: units.to_crs(system.crs)."
        )
    units = units.reset_index(drop=True)
    ids = units[UNIT_ID]
    empty = ids.isna() | (ids.astype(str).str.strip() == "")
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0])
        raise SchemaError(
            f"{UNIT_LAYER}, row {row}: the unit has no {UNIT_ID}. Give every unit its own "
            f"id (text, e.g. 'U00001')."
        )
    dup = ids.duplicated(keep=False)
    if dup.any():
        shown = sorted(set(ids[dup].astype(str)))[:5]
        raise SchemaError(
            f"{UNIT_LAYER}: {UNIT_ID} {shown} used by more than one unit "
            f"({int(dup.sum())} rows). Every unit needs its own id; renumber the copies."
        )
    geom = units.geometry
    bad = geom.isna() | geom.is_empty
    if bad.any():
        k = int(np.flatnonzero(bad.to_numpy())[0])
        raise GeometryError(
            f"{UNIT_LAYER}: unit {ids.iloc[k]} has no geometry. Draw its polygon or delete it."
        )
    kind = geom.geom_type.to_numpy()
    if (kind != "Polygon").any():
        k = int(np.flatnonzero(kind != "Polygon")[0])
        raise GeometryError(
            f"{UNIT_LAYER}: unit {ids.iloc[k]} is a {kind[k]}, not a Polygon. A unit is one "
            "piece of land: split a multi-part unit into one unit per part "
            "(units.explode(index_parts=False), then give each part its own id)."
        )
    invalid = ~shapely.is_valid(geom.to_numpy())
    if invalid.any():
        k = int(np.flatnonzero(invalid)[0])
        raise GeometryError(
            f"{UNIT_LAYER}: unit {ids.iloc[k]} is not a valid polygon "
            f"({shapely.is_valid_reason(geom.iloc[k])}). Fix it in a GIS editor, or with "
            "shapely.make_valid."
        )
    for column in ("households", "residents"):
        values = pd.to_numeric(units[column], errors="coerce")
        whole = values.notna() & (values == values.round())
        if not whole.all():
            k = int(np.flatnonzero(~whole.to_numpy())[0])
            raise SchemaError(
                f"{UNIT_LAYER}: unit {ids.iloc[k]} has {column} {units[column].iloc[k]!r}, not "
                "a whole number. Enter a count (0 where nobody lives)."
            )
        if (values < 0).any():
            k = int(np.flatnonzero((values < 0).to_numpy())[0])
            raise SchemaError(
                f"{UNIT_LAYER}: unit {ids.iloc[k]} has {column} {int(values.iloc[k])}, a "
                "negative count. Enter the number of people living there (0 or more)."
            )
    return units


def _check_codes(units: gpd.GeoDataFrame, system: GridSystem) -> None:
    """Every code exists and the unit's codes nest as the system's do."""
    config = system.config
    workload = config.role(Role.WORKLOAD)
    district = config.role(Role.DISTRICT)
    refinement = config.role(Role.REFINEMENT)
    ids = units[UNIT_ID].astype(str).to_numpy()
    grid = units[workload.code_column].astype(str).to_numpy()
    lineage = system.lineage(workload.name)
    district_of = lineage[district.name].groupby(level=0).first()
    unknown = ~pd.Series(grid).isin(set(district_of.index)).to_numpy()
    if unknown.any():
        k = int(np.flatnonzero(unknown)[0])
        codes = tuple(sorted(set(grid[unknown])))
        raise PlanError(
            f"{UNIT_LAYER}: unit {ids[k]} names {workload.name} {grid[k]!r}, which does not "
            f"exist ({len(codes)} unknown code(s): {list(codes[:5])}). Set "
            f"{workload.code_column} to the code of the {workload.name} the unit lies in.",
            rule="unknown",
            codes=codes,
        )
    expected = district_of.reindex(grid).to_numpy()
    named = units[district.code_column].astype(str).to_numpy()
    off = named != expected
    if off.any():
        k = int(np.flatnonzero(off)[0])
        raise PlanError(
            f"{UNIT_LAYER}: unit {ids[k]} names {district.name} {named[k]!r}, but its "
            f"{workload.name} {grid[k]} lies in {district.name} {expected[k]}. Set "
            f"{district.code_column} to {expected[k]}.",
            rule="district",
            codes=(grid[k],),
        )
    if refinement is None:
        return
    micros = system[refinement.name]
    parent = micros.drop_duplicates("code").set_index("code")["parent_code"]
    micro = units[refinement.code_column].fillna("").astype(str).to_numpy()
    given = micro != ""
    unknown = given & ~pd.Series(micro).isin(set(parent.index)).to_numpy()
    if unknown.any():
        k = int(np.flatnonzero(unknown)[0])
        raise PlanError(
            f"{UNIT_LAYER}: unit {ids[k]} names {refinement.name} {micro[k]!r}, which does not "
            f"exist. Set {refinement.code_column} to the {refinement.name} the unit lies in, "
            f"or to '' where its {workload.name} is not refined.",
            rule="unknown",
            codes=(micro[k],),
        )
    foreign = given & (parent.reindex(micro).to_numpy() != grid)
    if foreign.any():
        k = int(np.flatnonzero(foreign)[0])
        raise PlanError(
            f"{UNIT_LAYER}: unit {ids[k]} names {refinement.name} {micro[k]}, which refines "
            f"{workload.name} {parent[micro[k]]}, not its own {workload.name} {grid[k]}. A "
            f"{refinement.name} never crosses its {workload.name}: fix "
            f"{refinement.code_column} or {workload.code_column}.",
            rule="refinement",
            codes=(grid[k], micro[k]),
        )
    refined = pd.Series(grid).isin(set(parent.to_numpy())).to_numpy() & ~given
    if refined.any():
        k = int(np.flatnonzero(refined)[0])
        raise PlanError(
            f"{UNIT_LAYER}: unit {ids[k]} names no {refinement.name}, but its {workload.name} "
            f"{grid[k]} is refined into {refinement.name}s. Set {refinement.code_column} to "
            f"the one it lies in.",
            rule="refinement",
            codes=(grid[k],),
        )


def _area_m2(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    """Areas in m², from the storage CRS itself (dust polygons do not survive a projection).

    Degrees² are scaled at each geometry's latitude on the sphere of the
    ellipsoid's mean radius: about 0.3 % off, plenty for reporting a gap.
    """
    area = shapely.area(geoms)
    if not crs.is_geographic:
        return area
    radius = crs.ellipsoid.semi_major_metre if crs.ellipsoid is not None else 6_378_137.0
    bounds = shapely.bounds(geoms)
    lat = np.radians(np.nan_to_num((bounds[:, 1] + bounds[:, 3]) / 2))  # empty: area 0 anyway
    metres = np.pi / 180 * radius
    return area * metres**2 * np.cos(lat)


def _check_overlaps(units: gpd.GeoDataFrame, metric: CRS, tolerance: float) -> None:
    """Raise for the largest overlap between two units above ``tolerance`` m²."""
    geoms = units.geometry.to_numpy()
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    area = _area_m2(shapely.intersection(geoms[a], geoms[b]), CRS.from_user_input(units.crs))
    over = area > tolerance
    if over.any():
        k = np.flatnonzero(over)[np.argmax(area[over])]
        ids = units[UNIT_ID].astype(str).to_numpy()
        raise GeometryError(
            f"{UNIT_LAYER}: units {ids[a[k]]} and {ids[b[k]]} overlap by {area[k]:.4g} m² "
            f"({int(over.sum())} overlapping pair(s)). Units must not overlap: redraw one of "
            "them so they share an edge, or rebuild the layer with derive_units(system)."
        )


def _check_tiling(
    units: gpd.GeoDataFrame,
    level: Level,
    polygons: gpd.GeoDataFrame,
    system: GridSystem,
    tolerance: float,
) -> None:
    """Each polygon of ``level`` is the union of the units naming it, to ``tolerance`` m²."""
    column = level.code_column
    crs = system.crs
    named = units[units[column].astype(str) != ""]
    geoms = named.geometry.to_numpy()
    order = np.argsort(named[column].to_numpy(), kind="stable")
    codes, start = np.unique(named[column].to_numpy()[order], return_index=True)
    bounds = np.r_[start, len(order)]
    union = {
        code: shapely.coverage_union_all(geoms[order[bounds[k] : bounds[k + 1]]])
        for k, code in enumerate(codes)  # one per grid: hundreds, not thousands
    }
    empty = shapely.Polygon()
    own = polygons.geometry.to_numpy()
    made = np.array([union.get(code, empty) for code in polygons["code"]], dtype=object)
    gap = _area_m2(shapely.difference(own, made), crs)
    extra = _area_m2(shapely.difference(made, own), crs)
    bad = np.flatnonzero((gap > tolerance) | (extra > tolerance))
    if not len(bad):
        return
    k = bad[np.argmax(np.maximum(gap, extra)[bad])]
    code = polygons["code"].iloc[k]
    if gap[k] >= extra[k]:
        hole = shapely.difference(own[k], made[k])
        x, y = shapely.get_coordinates(shapely.point_on_surface(hole))[0]
        raise GeometryError(
            f"{UNIT_LAYER}: {level.name} {code} is not covered by its units: a gap of "
            f"{gap[k]:.4g} m² near ({x:.6f}, {y:.6f}) ({len(bad)} {level.name}(s) not tiled). "
            f"Add a unit there with {column} {code}, or rebuild the layer with "
            "derive_units(system)."
        )
    mine = named[named[column] == code]
    reach = _area_m2(shapely.difference(mine.geometry.to_numpy(), own[k]), crs)
    shown = mine[UNIT_ID].astype(str).to_numpy()[np.argsort(-reach)[:3]].tolist()
    raise GeometryError(
        f"{UNIT_LAYER}: the units of {level.name} {code} reach {extra[k]:.4g} m² outside it "
        f"(most: {shown}; {len(bad)} {level.name}(s) not tiled). Redraw those units inside "
        f"{level.name} {code}, or rebuild the layer with derive_units(system)."
    )
