"""The faces of a polygon layer's arrangement: where it is covered twice, and where not at all.

A plain layer's gaps are the holes of its union and its overlaps the pieces
two polygons share. Computing the union (and intersecting every touching
pair) costs the layer's every vertex several times over. Here the same
pieces come from the linework where the layer does *not* tile:

1. Each polygon's rings, oriented (shells counter-clockwise), are cut into
   segments. A segment walked once each way by two polygons is a matched
   shared edge; it changes how many polygons cover a point by +1 on one side
   and -1 on the other, so it changes nothing and is dropped. What is left
   is the layer's outline and every border where neighbours disagree.
2. GEOS nodes what is left (:func:`shapely.node`) and builds its faces
   (:func:`shapely.polygonize`).
3. How many polygons cover a face is the same all over it (only kept
   segments change it), so one interior point per face says: 0 is a gap,
   2 or more an overlap, 1 the layer itself.

Written here because no library offers it: GEOS's coverage tools assume a
valid coverage, and its overlay computes the whole union.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import shapely

__all__ = ["Arrangement", "arrangement"]


class Arrangement(NamedTuple):
    """Faces of a layer covered by no polygon or by several.

    ``gaps`` are faces no polygon covers that the layer encloses (the holes
    of its union); ``overlaps`` faces two or more polygons cover, with
    ``makers[k]`` the positions of the polygons covering ``overlaps[k]``
    (at one point of it: a face where a third polygon lies across the
    border two others share is named by the polygons on one side).
    """

    gaps: np.ndarray
    overlaps: np.ndarray
    makers: list[np.ndarray]


def arrangement(polygons: np.ndarray) -> Arrangement:
    """Gap and overlap faces of a layer of valid polygons.

    Parameters
    ----------
    polygons : array of shapely Polygon/MultiPolygon
        Valid; empties are ignored.

    Returns
    -------
    Arrangement

    Examples
    --------
    Two squares side by side (their shared edge matches), a third overlapping
    the second by 2 m, and a ring of four around a 10 m hole:

    >>> from shapely import box
    >>> layer = np.array([box(0, 0, 100, 100), box(100, 0, 200, 100), box(198, 0, 300, 100)])
    >>> faces = arrangement(layer)
    >>> len(faces.gaps), [round(f.area) for f in faces.overlaps], faces.makers[0].tolist()
    (0, [200], [1, 2])
    >>> ring = np.array([box(0, 0, 30, 10), box(0, 20, 30, 30), box(0, 10, 10, 20),
    ...                  box(20, 10, 30, 20)])
    >>> [round(f.area) for f in arrangement(ring).gaps]
    [100]
    """
    polygons = np.asarray(polygons, dtype=object)
    live = np.flatnonzero(~shapely.is_empty(polygons) & ~shapely.is_missing(polygons))
    empty = np.empty(0, dtype=object)
    if not len(live):
        return Arrangement(empty, empty, [])
    oriented = shapely.orient_polygons(polygons[live])
    lines = _unmatched_linework(oriented)
    if not len(lines):
        return Arrangement(empty, empty, [])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(_noded(lines))))
    faces = faces[shapely.area(faces) > 0]
    inside, owner = _covering(oriented, faces)
    count = np.bincount(owner, minlength=len(faces))
    order = np.argsort(owner, kind="stable")
    makers = np.split(live[inside[order]], np.cumsum(count)[:-1])
    over = np.flatnonzero(count >= 2)
    return Arrangement(faces[count == 0], faces[over], [makers[k] for k in over])


def _unmatched_linework(oriented: np.ndarray) -> np.ndarray:
    """The rings' segments that no neighbour walks back, joined into runs (LineStrings)."""
    rings = shapely.get_rings(shapely.get_parts(oriented))
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    inner = np.flatnonzero(ring[1:] == ring[:-1])  # segment k runs coords[k] -> coords[k + 1]
    a, b = coords[inner], coords[inner + 1]
    forward = (a[:, 0] < b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] < b[:, 1]))
    lo, hi = np.where(forward[:, None], a, b), np.where(forward[:, None], b, a)
    order = np.lexsort((hi[:, 1], hi[:, 0], lo[:, 1], lo[:, 0]))
    key = np.c_[lo, hi][order]
    new = np.r_[True, (key[1:] != key[:-1]).any(axis=1)]
    group = np.empty(len(order), dtype=np.int64)
    group[order] = np.cumsum(new) - 1
    net = np.bincount(group, weights=np.where(forward, 1.0, -1.0))
    first = np.zeros(len(order), dtype=bool)
    first[order[new]] = True  # one copy of each segment is enough to node
    keep = first & (net[group] != 0) & (lo != hi).any(axis=1)
    # Runs of kept segments along one ring become one line: GEOS nodes long
    # monotone chains far faster than the same segments one by one.
    seg = inner[keep]
    start = np.r_[True, (seg[1:] != seg[:-1] + 1) | (ring[seg[1:]] != ring[seg[:-1]])]
    run = np.cumsum(start) - 1
    if not len(seg):
        return np.empty(0, dtype=object)
    ends = np.r_[start[1:], True]
    xy = np.concatenate([coords[seg], coords[seg[ends] + 1]])
    ids = np.concatenate([run, run[ends]])
    at = np.lexsort((np.r_[seg, seg[ends] + 1], ids))
    return shapely.linestrings(xy[at], indices=ids[at])


def _noded(lines: np.ndarray) -> shapely.Geometry:
    """``lines`` cut at every crossing (GEOS noding; its overlay where noding fails)."""
    merged = shapely.multilinestrings(lines)
    try:
        return shapely.node(merged)
    except shapely.errors.GEOSException:  # pragma: no cover - GEOS's robust fallback
        return shapely.union_all(lines)


def _covering(oriented: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(polygon, face)`` pairs: polygon covers face, judged at one interior point per face.

    The point must lie inside its face (GEOS's interior point of a thin face
    can come back on its rim) and on no polygon's edge (a dropped shared edge
    can cross a face, and counting the polygons around a point on it fails).
    Where the first point fails either test, points inside the face's
    triangles (GEOS's constrained Delaunay), largest first, are tried instead.
    """
    point = shapely.point_on_surface(faces)
    todo = np.arange(len(faces))
    pairs = []
    for attempt in range(_TRIES):
        if attempt:
            point[todo] = [_candidate(faces[k], attempt - 1) for k in todo]
        probe = point[todo]
        tree = shapely.STRtree(probe)
        hold, hit = tree.query(oriented, predicate="contains")
        _, near = tree.query(oriented, predicate="intersects")
        clean = np.bincount(hit, minlength=len(todo)) == np.bincount(near, minlength=len(todo))
        clean &= shapely.contains(faces[todo], probe)
        pairs.append((hold[clean[hit]], todo[hit[clean[hit]]]))
        todo = todo[~clean]
        if not len(todo):
            break
    if len(todo):  # pragma: no cover - no clean point in a face: count what the last one touches
        hold, hit = shapely.STRtree(point[todo]).query(oriented, predicate="intersects")
        pairs.append((hold, todo[hit]))
    polygon = np.concatenate([p for p, _ in pairs])
    face = np.concatenate([f for _, f in pairs])
    return polygon, face


# Interior points tried per face: GEOS's, then one in each of its largest triangles.
_TRIES = 6


def _candidate(face, rank: int) -> shapely.Geometry:
    """A point inside the ``rank``-th largest triangle of ``face`` (its last, past the end).

    Not the centroid: on a regular lattice that falls on the grid lines. The
    weights are irrational, so the point lies on no line the corners do not force.
    """
    triangles = shapely.get_parts(shapely.constrained_delaunay_triangles(face))
    order = np.argsort(-shapely.area(triangles), kind="stable")
    corner = shapely.get_coordinates(triangles[order[min(rank, len(order) - 1)]])[:3]
    return shapely.Point(_WEIGHTS @ corner)


_WEIGHTS = np.array([np.sqrt(2) - 1, 1 / np.pi, 2 - np.sqrt(2) - 1 / np.pi])
