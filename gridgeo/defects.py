"""The defect table: one row per finding, shared by every check.

Columns (in this order):

``kind``
    What is wrong (see :data:`KINDS`).
``severity``
    ``error`` (breaks the "四定" rule: an area with no grid or two, a code
    that cannot be joined), ``warning`` (suspicious, worth a look) or
    ``info`` (noise, reported so it is not mistaken for silence).
``level``
    The level or layer the finding belongs to (``grid``, ``micro_grid``,
    ``dual_grid`` …).
``codes``
    Codes involved, comma-separated (GeoPackage has no list type).
``district``
    Code(s) of the district (the level playing :attr:`Role.DISTRICT
    <gridgeo.config.Role>`: the banner's towns) the finding lies in, comma-separated.
``area_m2``, ``width_m``
    Area of the defect geometry and its width — the diameter of its maximum
    inscribed circle — in the metric CRS (0 for points and lines).
``message_zh``, ``message_en``
    One line each, naming the codes.
``geometry``
    The defect itself: the gap, the overlap, the mismatching edge, the
    self-intersection point — never the whole grid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo.parallel import chunked

__all__ = ["COLUMNS", "KINDS", "defect_frame", "polygon_width", "summarise", "without_dust_holes"]

COLUMNS = (
    "kind",
    "severity",
    "level",
    "codes",
    "district",
    "area_m2",
    "width_m",
    "message_zh",
    "message_en",
    "geometry",
)

# kind → (severity, Chinese template, English template). Templates are
# formatted with the row's fields plus ``detail``.
KINDS: Mapping[str, tuple[str, str, str]] = {
    "invalid_geometry": (
        "error",
        "{codes} 几何无效：{detail}",
        "{codes}: invalid geometry: {detail}",
    ),
    "empty_geometry": ("error", "{codes} 几何为空", "{codes}: empty geometry"),
    "not_polygon": ("error", "{codes} 不是面要素：{detail}", "{codes}: not a polygon: {detail}"),
    "duplicate_code": (
        "error",
        "编码 {codes} 重复 {detail} 次",
        "code {codes} used {detail} times",
    ),
    "bad_code": ("error", "{codes} 编码不合规：{detail}", "{codes}: malformed code: {detail}"),
    "orphan": (
        "error",
        "{codes} 的上级 {detail} 不存在",
        "{codes}: parent {detail} does not exist",
    ),
    "gap": (
        "error",
        "{district} 内有 {area_m2:.0f} m² 无网格覆盖（邻接 {codes}）",
        "{area_m2:.0f} m² of {district} covered by no child (next to {codes})",
    ),
    "overlap": ("error", "{codes} 重叠 {area_m2:.0f} m²", "{codes} overlap by {area_m2:.0f} m²"),
    "sliver": (
        "warning",
        "{codes} 之间有宽 {width_m:.2f} m 的细缝（{detail}）",
        "{width_m:.2f} m wide sliver {detail} between {codes}",
    ),
    "outside_parent": (
        "error",
        "{codes} 有 {area_m2:.0f} m² 超出上级 {detail}",
        "{codes}: {area_m2:.0f} m² outside its parent {detail}",
    ),
    "multipart": (
        "warning",
        "{codes} 分成 {detail} 块不相连的部分",
        "{codes} falls apart into {detail} pieces",
    ),
    "island": (
        "warning",
        "{codes} 与同级任何网格都不相邻",
        "{codes} touches no other polygon of its level",
    ),
    "edge_mismatch": (
        "warning",
        "{codes} 公共边界顶点不一致",
        "{codes}: shared boundary does not match vertex for vertex",
    ),
    "repair_hole": (
        "info",
        "{codes} 自动修复产生的空洞（非真实缺口）",
        "{codes}: hole created by repairing invalid geometry, not a real gap",
    ),
    # The merged dual grid (双网合一) against its two source layers.
    "source_split": (
        "warning",
        "{detail} 被分到多个双网格 {codes}",
        "source grid {detail} split across dual grids {codes}",
    ),
    "source_mismatch": (
        "warning",
        "{area_m2:.0f} m² 仅由 {detail} 覆盖，另一来源图层未覆盖（{codes}）",
        "{area_m2:.0f} m² covered by {detail} only, not by the other source layer ({codes})",
    ),
    "displacement": (
        "warning",
        "{codes} 与来源网格 {detail} 边界偏差 {width_m:.1f} m",
        "{codes}: boundary {width_m:.1f} m from source grid {detail}",
    ),
    "digitising_noise": (
        "info",
        "{district} {level} 数字化误差：{detail}",
        "{district} {level}: digitising noise {detail}",
    ),
}

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def polygon_width(geoms: np.ndarray, tolerance: float = 0.01, rel: float = 0.01) -> np.ndarray:
    """Width of each (multi)polygon: the diameter of its maximum inscribed circle.

    Points, lines and empties have width 0. Vectorised over the array.

    Parameters
    ----------
    geoms : array of shapely geometries
        In a metric CRS.
    tolerance : float, default 0.01
        Absolute precision: a polygon narrower than this (floating-point dust)
        is reported at most ``tolerance`` wide.
    rel : float, default 0.01
        Relative precision of wider polygons: the result lies within
        ``max(tolerance, 2 * rel * width)`` of the true width.

    Returns
    -------
    numpy.ndarray
        One width per geometry, in the CRS's units.

    Notes
    -----
    Every width is settled by negative buffers: "does erosion by d/2 leave
    anything?" is answered in time that depends on the vertices only, and d is
    narrowed between bounds that are certain until they agree to the precision
    asked. From above: the widest circle that fits the bounding box and the
    area, then, after each erosion that leaves something, d plus the room left
    in the remnant (the widest circle shrinks by exactly d/2, so what is left
    of it fits the remnant's bounding box and area). From below: twice the
    distance to the boundary of an interior point of the polygon, and of each
    remnant. Remnants shrink towards the centre of the widest circle, so the
    bounds close in a few erosions; the next probe lies a third of the way up
    from the lower bound, or just above it once the bounds are near, where
    missing settles the width. The round joins of the buffer are drawn with
    chords (16 per quarter circle), which can only make a remnant larger, and
    a piece the erosion leaves counts when one of its vertices is within 1 %
    of the distance asked (GEOS can leave inverted copies of convex parts), so
    a width can be overstated by up to 1 %.

    Examples
    --------
    >>> polygon_width(np.array([shapely.box(0, 0, 10, 2)])).round(2).tolist()
    [2.0]
    >>> strip = shapely.box(0, 0, 50_000, 0.8)  # a sliver along 50 km of border
    >>> polygon_width(np.array([strip, shapely.Point(0, 0)])).round(2).tolist()
    [0.8, 0.0]
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms))
    poly = np.isin(shapely.get_type_id(geoms), (3, 6)) & ~shapely.is_empty(geoms)
    # an overlay's float-dust holes (nm² in a hectare) are no part of the shape
    target = _with_enough_vertices(without_dust_holes(geoms[poly], tolerance))
    area, perimeter = shapely.area(target), shapely.length(target)
    strip = 2 * area / np.maximum(perimeter, 1e-300)  # the width of a long strip
    # Float dust (nanometres wide along kilometres of edge) is settled by one
    # buffer, where it can be dust at all: polygons without holes are at least
    # ``strip`` wide (Sz.-Nagy: area <= width / 2 * perimeter when simply connected).
    _, ring_owner = shapely.get_rings(target, return_index=True)
    holed = np.bincount(ring_owner, minlength=len(target)) > shapely.get_num_geometries(target)
    doubt = (strip <= tolerance) | holed
    dust = np.zeros(len(target), dtype=bool)
    dust[doubt] = _fits(target[doubt], shapely.boundary(target[doubt]), tolerance) == 0
    width = np.minimum(strip, tolerance)
    if not dust.all():
        # Sz.-Nagy again: a simply connected polygon is at least ``strip`` wide.
        floor = np.where(holed | (shapely.get_type_id(target) != 3), 0.0, strip)
        width[~dust] = chunked(
            lambda g, a, f: _measured_width(g, a, f, tolerance, rel),
            target[~dust], area[~dust], floor[~dust], min_chunk=100,
        )  # fmt: skip
    out[poly] = width
    return out


def without_dust_holes(polygons: np.ndarray, dust: float) -> np.ndarray:
    """``polygons`` with every hole of less than ``dust²`` area filled.

    An overlay leaves float-dust holes (nm² inside a 10,000 m² piece); they
    are no gap, and a width measured around one would come out as dust.
    Multipolygons are returned unchanged (the check measures their parts).

    >>> ring = [(0, 0), (10, 0), (10, 10), (0, 10)]
    >>> speck = [(5, 5), (5.0001, 5), (5.0001, 5.0001)]
    >>> holed = shapely.Polygon(ring, [speck])
    >>> shapely.get_num_interior_rings(without_dust_holes(np.array([holed]), 0.01)).tolist()
    [0]
    """
    polygons = np.asarray(polygons, dtype=object)
    single = shapely.get_type_id(polygons) == 3
    rings, owner = shapely.get_rings(polygons[single], return_index=True)
    if not len(rings):
        return polygons
    first = np.r_[True, owner[1:] != owner[:-1]]
    tiny = ~first & (shapely.area(shapely.polygons(rings)) < dust**2)
    if not tiny.any():
        return polygons
    out = polygons.copy()
    index = np.flatnonzero(single)
    for i in np.unique(owner[tiny]):  # the few pieces that have any
        mine = np.flatnonzero((owner == i) & ~tiny)
        out[index[i]] = shapely.Polygon(rings[mine[0]], rings[mine[1:]].tolist())
    return out


def _fits(geoms: np.ndarray, rims: np.ndarray, width) -> np.ndarray:
    """Diameter of a circle found in each polygon if one of ``width`` fits there, else 0.

    Erosion by ``width / 2`` (a negative buffer) is empty where the polygon is
    narrower — except that GEOS, eroding a convex part a little beyond its
    inradius, can leave a small inverted copy of it. So each piece left is
    checked: a vertex of a true piece lies inside, ``width / 2`` from the rim
    (a little nearer where two chords cross), every vertex of an inverted one
    nearer.
    """
    eroded = shapely.buffer(geoms, -np.asarray(width) / 2, quad_segs=16)
    parts, owner = shapely.get_parts(eroded, return_index=True)
    corner = shapely.get_point(shapely.get_exterior_ring(parts), 0)
    reach = 2 * shapely.distance(corner, rims[owner])
    reach[~shapely.contains(geoms[owner], corner)] = 0.0
    found = np.zeros(len(geoms))
    np.maximum.at(found, owner, reach)
    return np.where(found >= np.broadcast_to(width, found.shape) * (1 - _NEAR), found, 0.0)


# A piece left by erosion is true when a vertex lies this close to ``width / 2``
# from the rim (where two chords cross it can sit ~0.2 % nearer): a circle
# 1 % narrower than asked then certainly fits.
_NEAR = 0.01


def _with_enough_vertices(geoms: np.ndarray) -> np.ndarray:
    """``geoms`` with every ring of fewer than 9 points split into 10 or more segments.

    GEOS drops a negative buffer's curve around a ring of fewer than 9 points
    as "inverted" when all its raw vertices lie a little nearer the ring than
    the distance — which also happens to a true, small remnant (an 8-vertex
    piece 145 m wide came out "narrower than 139 m"). Extra vertices on the
    edges change no shape and switch that shortcut off.
    """
    rings, owner = shapely.get_rings(geoms, return_index=True)
    few = shapely.get_num_coordinates(rings) < 9
    if not few.any():
        return geoms
    shortest = np.full(len(geoms), np.inf)
    np.minimum.at(shortest, owner[few], shapely.length(rings[few]))
    out = geoms.copy()
    split = np.flatnonzero(np.isfinite(shortest) & (shortest > 0))
    cut = shapely.segmentize(geoms[split], shortest[split] / 10)
    # New vertices are rounded onto their edges: along a spike's two nearly
    # touching edges they can cross, and GEOS then "fixes" the result with a
    # zero buffer (an empty polygon, a lost area). Keep those as they were.
    before, after = shapely.area(geoms[split]), shapely.area(cut)
    fine = shapely.is_valid(cut) & (np.abs(after - before) <= 1e-9 * np.abs(before))
    out[split[fine]] = cut[fine]
    return out


def _measured_width(geoms, area, floor, tolerance: float, rel: float) -> np.ndarray:
    """Widths of polygons at least ``tolerance`` wide, between certain bounds closed by erosion.

    ``floor`` is a width each polygon certainly has (0 where none is known).
    """
    rims = shapely.boundary(geoms)
    # From above: the circle fits the area, and the narrower side of the
    # smallest rectangle around the polygon (any orientation).
    rectangle = shapely.get_coordinates(
        shapely.get_exterior_ring(shapely.minimum_rotated_rectangle(geoms))
    )
    ok = len(rectangle) == 5 * len(geoms)  # a degenerate rectangle is a line: skip the bound
    side = np.full(len(geoms), np.inf)
    if ok:
        corner = rectangle.reshape(-1, 5, 2)
        side = np.minimum(*(np.hypot(*(corner[:, k + 1] - corner[:, k]).T) for k in (0, 1)))
    hi = np.maximum(np.minimum(side, 2 * np.sqrt(area / np.pi)) * 1.001, 2 * tolerance)
    # From below: the best of two interior points, and the floor.
    lo = np.maximum(_inner_width(geoms, shapely.point_on_surface(geoms), rims), tolerance)
    lo = np.maximum(np.maximum(lo, floor), _inner_width(geoms, shapely.centroid(geoms), rims))
    hi = np.maximum(hi, lo)
    open_ = np.ones(len(geoms), dtype=bool)
    while True:
        precision = np.maximum(tolerance, rel * lo)
        open_ &= hi - lo > precision
        if not open_.any():
            return (lo + hi) / 2
        # Near the answer a probe just above the lower bound settles it when it
        # misses; further off, a third of the way up keeps the remnants small.
        near = hi - lo <= 3 * precision
        probe = np.where(near, lo + 0.6 * precision, lo + (hi - lo) / 3)
        i = np.flatnonzero(open_)
        fits, lower, upper = _erode(geoms[i], rims[i], probe[i])
        hi[i] = np.minimum(hi[i], np.where(fits, upper, probe[i]))
        lo[i] = np.where(fits, np.maximum(lo[i], np.maximum(probe[i], lower)), lo[i])


def _inner_width(geoms: np.ndarray, points: np.ndarray, rims: np.ndarray) -> np.ndarray:
    """Twice the distance of each point to its polygon's rim (0 for a point outside)."""
    reach = 2 * shapely.distance(points, rims)
    reach[~shapely.contains(geoms, points)] = 0.0
    return reach


def _erode(geoms: np.ndarray, rims: np.ndarray, width: np.ndarray):
    """``(fits, lower, upper)``: does a circle ``width`` wide fit, and bounds on the width.

    ``lower`` comes from a point inside each remnant of the erosion, ``upper``
    (where it fits) from the remnants' size; as in :func:`_fits`, inverted
    copies GEOS leaves are no remnant.
    """
    eroded = shapely.buffer(geoms, -width / 2, quad_segs=16)
    parts, owner = shapely.get_parts(eroded, return_index=True)
    corner = shapely.get_point(shapely.get_exterior_ring(parts), 0)
    real = _inner_width(geoms[owner], corner, rims[owner]) >= width[owner] * (1 - _NEAR)
    parts, owner = parts[real], owner[real]
    fits = np.zeros(len(geoms), dtype=bool)
    fits[owner] = True
    lower = np.zeros(len(geoms))
    np.maximum.at(lower, owner, _inner_width(geoms[owner], shapely.point_on_surface(parts),
                                            rims[owner]))  # fmt: skip
    # What is left of the widest circle fits in one remnant: its box and its area.
    box = shapely.bounds(parts)
    room = np.minimum(np.minimum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]),
                      2 * np.sqrt(shapely.area(parts) / np.pi))  # fmt: skip
    widest = np.zeros(len(geoms))
    np.maximum.at(widest, owner, room)
    upper = np.where(fits, width + widest, np.inf)
    return fits, lower, upper


def defect_frame(rows: Iterable[Mapping], crs) -> gpd.GeoDataFrame:
    """The defect table from ``rows``: dicts with kind, level, codes, district, geometry, detail.

    Geometries must be in ``crs``, a metric CRS: area and width (unless a row
    gives ``width_m``) are measured here, severity and both messages filled in
    from :data:`KINDS`, and rows sorted by severity, level, kind and codes.
    ``codes`` and ``district`` may be strings or lists of strings.
    """
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        frame = pd.DataFrame(columns=[*COLUMNS, "detail"])
    frame["codes"] = frame["codes"].map(_join)
    frame["district"] = frame["district"].map(_join)
    geoms = np.asarray(frame["geometry"].to_numpy(), dtype=object)
    frame["area_m2"] = shapely.area(geoms) if len(geoms) else []
    if "width_m" not in frame:
        frame["width_m"] = np.nan
    missing = frame["width_m"].isna().to_numpy()
    if missing.any():  # measure only the rows whose check did not
        frame.loc[missing, "width_m"] = polygon_width(geoms[missing])
    if "detail" not in frame:
        frame["detail"] = ""
    frame["detail"] = frame["detail"].fillna("")
    frame["severity"] = frame["kind"].map(lambda k: KINDS[k][0])
    records = frame.to_dict("records")
    frame["message_zh"] = [KINDS[r["kind"]][1].format(**r) for r in records]
    frame["message_en"] = [KINDS[r["kind"]][2].format(**r) for r in records]
    frame["_s"] = frame["severity"].map(SEVERITY_ORDER)
    frame = frame.sort_values(["_s", "level", "kind", "codes"], kind="stable")
    out = gpd.GeoDataFrame(frame[list(COLUMNS)], geometry="geometry", crs=crs)
    return out.reset_index(drop=True)


def summarise(defects: gpd.GeoDataFrame) -> pd.DataFrame:
    """Counts of defects per kind (rows) and district (columns), with totals."""
    if defects.empty:
        return pd.DataFrame()
    parts = defects.assign(district=defects["district"].str.split(",")).explode("district")
    table = pd.crosstab(parts["kind"], parts["district"])
    table["total"] = defects["kind"].value_counts().reindex(table.index)
    return table


def _join(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, str):
        return value
    return ",".join(dict.fromkeys(str(v) for v in value if str(v)))
