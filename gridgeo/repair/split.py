"""Gap pieces split among the children along them: each place to the nearest child.

A gap piece's rim runs along its children (and, at an inlet, along the
parent's edge). Every point of the piece goes to the child whose border along
the piece is nearest, as ``maup.smart_repair`` does with the Voronoi cells of
points sampled along the rim. The line dividing two children's shares is the
bisector of their borders; here it is found exactly, not from samples:

1. the piece is triangulated on its own vertices (GEOS's constrained Delaunay
   triangulation), and each corner is labelled by the child it lies on (the
   segment leaving it; a corner on the parent's edge by the nearest child);
2. on each triangle edge joining two labels, the point where both children
   are equally near is found by regula falsi (Illinois) on the difference of
   the two distances;
3. in each triangle these points are joined (through their middle where the
   three corners have three labels), and with the rim, cut at those points,
   they bound the shares (GEOS's ``polygonize``);
4. each share goes to the nearest child; a share touching nobody it is
   nearest to (cut off by the piece's own shape) goes to the longest border.

All pieces are done at once, vectorised: one triangulation call, one tree of
rim segments for every distance (each child's border shifted into a lane of
its own, so one nearest-neighbour query answers "how far is child k" for
every point at once), one ``polygonize``. The rim keeps its own vertices, and
the new lines have a vertex only where they cross a triangle edge.

Written here: GEOS triangulates, polygonizes and measures, but neither it
nor any library returns the bisector of two polylines inside a polygon
(a segment Voronoi diagram, as in Boost.Polygon, has no Python binding
among the dependencies).
"""

from __future__ import annotations

import numpy as np
import shapely

from gridgeo.check.steps import contact_lengths

__all__ = ["split_pieces"]

_TIE = 1e-6  # metres: two distances closer than this are equal
_NUDGE = 1e-3  # metres: an edge's end is judged this far inside it (a corner on two children)
_CLOSE = 1e-4  # metres: a crossing is found to within this along its edge


def split_pieces(pieces: np.ndarray, kids: list[np.ndarray], fallback: np.ndarray,
                 geoms: np.ndarray, eps: float = 0.05) -> list[list[tuple[int, shapely.Geometry]]]:  # fmt: skip
    """Each piece split among its ``kids``: for each piece, ``(child, share)`` pairs.

    Parameters
    ----------
    pieces:
        Gap pieces (metric polygons), each along two or more children.
    kids:
        Per piece, the positions in ``geoms`` of the children along it.
    fallback:
        Per piece, the child that takes what touches none of the children it
        is nearest to (the longest border).
    geoms:
        The level's polygons, metric.
    eps:
        A rim segment runs along a child when its middle lies within ``eps``.

    Examples
    --------
    A 2 m gap between a square below and two squares above, the left one
    10 m wide: each child gets the part nearest it.

    >>> gap = shapely.Polygon([(0, 0), (20, 0), (20, 2), (10, 2), (0, 2)])
    >>> below = shapely.box(0, -10, 20, 0)
    >>> left, right = shapely.box(0, 2, 10, 12), shapely.box(10, 2, 20, 12)
    >>> out = split_pieces(np.array([gap]), [np.array([0, 1, 2])], np.array([0]),
    ...                    np.array([below, left, right]))
    >>> sorted((k, round(g.area, 3)) for k, g in out[0])
    [(0, 20.0), (1, 10.0), (2, 10.0)]
    """
    pieces = np.asarray(pieces, dtype=object)
    out: list[list[tuple[int, shapely.Geometry]]] = [[] for _ in pieces]
    if not len(pieces):
        return out
    slots = _Slots(pieces, kids, geoms)
    rim = _Rim(pieces, slots, geoms, eps)
    vertex_label = rim.vertex_labels()
    # 1. Triangles on the pieces' own vertices; each corner is a rim vertex.
    tris, tri_piece = shapely.get_parts(shapely.constrained_delaunay_triangles(pieces),
                                        return_index=True)  # fmt: skip
    corner = shapely.get_coordinates(tris).reshape(len(tris), 4, 2)[:, :3]
    cid = rim.ids(np.repeat(tri_piece, 3), corner.reshape(-1, 2)).reshape(-1, 3)
    label = vertex_label[cid]
    # 2. Each edge joining two labels, once, and the point on it equally near both.
    a, b = cid, np.roll(cid, -1, axis=1)
    mixed = label != np.roll(label, -1, axis=1)
    tri_of, k_of = np.nonzero(mixed)
    lo = np.minimum(a[tri_of, k_of], b[tri_of, k_of])
    hi = np.maximum(a[tri_of, k_of], b[tri_of, k_of])
    keys, edge_of = np.unique(np.c_[lo, hi], axis=0, return_inverse=True)
    edge_of = edge_of.ravel()
    first, second, between = rim.crossings(keys[:, 0], keys[:, 1], vertex_label)
    # 3. Dividing lines inside the triangles, and the rim cut where they meet it.
    at = np.full(mixed.shape, -1, dtype=np.int64)
    at[tri_of, k_of] = edge_of
    present = np.c_[label, np.where(at >= 0, between[at], -1)]
    cuts = _cuts(at, first, second, corner, present, rim)
    edges = np.concatenate([cuts, rim.segments(keys, first, second)])
    keep = (edges[:, 0] != edges[:, 1]).any(axis=1)
    faces = shapely.get_parts(shapely.polygonize(shapely.linestrings(edges[keep])))
    inner = shapely.point_on_surface(faces)
    face_i, piece_i = shapely.STRtree(pieces).query(inner, predicate="within")
    faces, inner = faces[face_i], inner[face_i]
    # 4. Each share to the nearest child; a share touching nobody near it to the fallback.
    near = slots.nearest(piece_i, inner, rim)
    kid = slots.kid[near]
    fi, gi, length = contact_lengths(faces, geoms, eps)
    touching = np.zeros(len(faces), dtype=bool)
    touching[fi[(gi == kid[fi]) & (length > eps)]] = True
    kid = np.where(touching, kid, fallback[piece_i])
    order = np.lexsort((kid, piece_i))
    groups = np.c_[piece_i[order], kid[order]]
    starts = np.r_[0, np.flatnonzero((groups[1:] != groups[:-1]).any(axis=1)) + 1]
    for s, e in zip(starts, np.r_[starts[1:], len(order)], strict=True):
        mine = faces[order[s:e]]
        share = mine[0] if len(mine) == 1 else shapely.coverage_union_all(mine)
        out[int(groups[s, 0])].append((int(groups[s, 1]), share))
    return out


class _Slots:
    """The (piece, child) pairs: ``piece``, ``kid`` and, per piece, its first slot."""

    def __init__(self, pieces: np.ndarray, kids: list[np.ndarray], geoms: np.ndarray) -> None:
        count = np.array([len(k) for k in kids], dtype=np.int64)
        self.piece = np.repeat(np.arange(len(pieces)), count)
        self.kid = np.concatenate([np.asarray(k, dtype=np.int64) for k in kids])
        self.first = np.r_[0, np.cumsum(count)[:-1]]
        self.count = count
        self.geoms = geoms

    def pairs(self, piece: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, slot) for every slot of each row's piece."""
        n = self.count[piece]
        row = np.repeat(np.arange(len(piece)), n)
        slot = np.repeat(self.first[piece], n) + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
        return row, slot

    def nearest(self, piece: np.ndarray, points: np.ndarray, rim: _Rim) -> np.ndarray:
        """The slot of each point's piece whose border is nearest it."""
        row, slot = self.pairs(piece)
        dist = rim.distance(shapely.get_coordinates(points)[row], slot)
        best = np.full(len(points), np.inf)
        np.minimum.at(best, row, dist)
        hit = dist <= best[row]
        out = np.empty(len(points), dtype=np.int64)
        out[row[hit][::-1]] = slot[hit][::-1]  # the first slot among equals
        return out


class _Rim:
    """The pieces' rim vertices and segments, and each child's border in a lane of its own."""

    def __init__(self, pieces: np.ndarray, slots: _Slots, geoms: np.ndarray, eps: float) -> None:
        rings, ring_piece = shapely.get_rings(pieces, return_index=True)
        xy, ring = shapely.get_coordinates(rings, return_index=True)
        start = np.flatnonzero(ring[1:] == ring[:-1])  # segment start -> start + 1
        self.slots = slots
        self.piece_of_xy = ring_piece[ring]
        # Vertex ids: one per distinct position within a piece.
        self._keys = np.c_[self.piece_of_xy.astype(float), xy]
        self._table, inverse = np.unique(self._keys, axis=0, return_inverse=True)
        self.xy_id = inverse.ravel()
        self.xy = self._table[:, 1:]
        self.vertex_piece = self._table[:, 0].astype(np.int64)
        self.seg = np.c_[self.xy_id[start], self.xy_id[start + 1]]
        seg_piece = self.piece_of_xy[start]
        # Which child each segment runs along: its middle lies within eps of it.
        middle = shapely.points((xy[start] + xy[start + 1]) / 2)
        # One query per child (each prepared once), then matched to the slots.
        kid, back = np.unique(slots.kid, return_inverse=True)
        which, hit = shapely.STRtree(middle).query(geoms[kid], predicate="dwithin", distance=eps)
        slot_of = {(int(p), int(k)): i for i, (p, k) in enumerate(zip(slots.piece, back.ravel()))}
        hold = np.array([slot_of.get((int(seg_piece[h]), int(w)), -1) for h, w in zip(hit, which)],
                        dtype=np.int64)  # fmt: skip
        own = hold >= 0
        hold, hit = hold[own], hit[own]
        count = np.bincount(hit, minlength=len(start))
        gap = np.zeros(len(hit))
        several = count[hit] > 1  # a segment near two children: the nearer one
        gap[several] = shapely.distance(middle[hit[several]], geoms[slots.kid[hold[several]]])
        order = np.lexsort((gap, hit))
        hold, hit = hold[order], hit[order]
        first = np.r_[True, hit[1:] != hit[:-1]] if len(hit) else np.zeros(0, dtype=bool)
        self.seg_slot = np.full(len(start), -1, dtype=np.int64)
        self.seg_slot[hit[first]] = hold[first]
        # Each slot's border, shifted into a lane of its own: x + lane * slot.
        box = shapely.bounds(pieces)
        self.origin = box[:, :2]
        self.lane = 4.0 * float(np.max(box[:, 2:] - box[:, :2])) + 100.0
        along = self.seg_slot >= 0
        ends = self.xy[self.seg[along]]  # (n, 2, 2)
        shifted = self._shift(ends, np.repeat(self.seg_slot[along], 2).reshape(-1, 2))
        self.tree = shapely.STRtree(shapely.linestrings(shifted))

    def _shift(self, xy: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """``xy`` in the lane of ``slot`` (same leading shape)."""
        out = xy - self.origin[self.slots.piece[slot]]
        out[..., 0] += self.lane * slot
        return out

    def ids(self, piece: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """Vertex id of each position (exact) in its piece."""
        out = _rows_in(np.c_[piece.astype(float), xy], self._table)
        if (out < 0).any():
            raise ValueError("a triangle corner is not a vertex of its piece")
        return out

    def distance(self, xy: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """Distance from each point to the border of its slot's child along the piece."""
        points = shapely.points(self._shift(xy.copy(), slot))
        (row, _), dist = self.tree.query_nearest(points, return_distance=True,
                                                 max_distance=self.lane / 2)  # fmt: skip
        out = np.full(len(xy), np.inf)
        out[row] = dist
        return out

    def vertex_labels(self) -> np.ndarray:
        """Each vertex's slot: the child along the segment leaving it; else the nearest."""
        label = np.full(len(self.xy), -1, dtype=np.int64)
        along = self.seg_slot >= 0
        label[self.seg[along, 0]] = self.seg_slot[along]
        loose = np.flatnonzero(label < 0)
        if len(loose):
            label[loose] = self.slots.nearest(self.vertex_piece[loose],
                                              shapely.points(self.xy[loose]), self)  # fmt: skip
        return label

    def nearest_margin(self, xy: np.ndarray, piece: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """How much nearer ``slot``'s child is than any other child of the piece (< 0: farther)."""
        row, other = self.slots.pairs(piece)
        dist = self.distance(xy[row], other)
        mine = other == slot[row]
        best = np.full(len(xy), np.inf)
        np.minimum.at(best, row[~mine], dist[~mine])
        own = np.full(len(xy), np.inf)
        own[row[mine]] = dist[mine]
        return best - own

    def last_nearest(self, p: np.ndarray, q: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """Along each edge ``p -> q``: how far (0..1) ``slot``'s child stays the nearest.

        The child of ``p`` is nearest at ``p``; the answer is where another
        child becomes strictly nearer, found by regula falsi (Illinois) to
        ``_CLOSE``. An end on two children (a junction) is judged a millimetre
        inside the edge, so an edge leaving a junction into the other child's
        side crosses at the junction itself.
        """
        piece = self.slots.piece[slot]
        size = np.maximum(np.hypot(*(q - p).T), 1e-300)

        def margin(t: np.ndarray, idx: np.ndarray) -> np.ndarray:
            x = p[idx] + (q[idx] - p[idx]) * t[:, None]
            return self.nearest_margin(x, piece[idx], slot[idx])

        every = np.arange(len(p))
        t0 = np.minimum(_NUDGE / size, 0.5)
        t1 = 1.0 - t0
        m0, m1 = margin(t0, every), margin(t1, every)
        t = np.where(m0 < -_TIE, 0.0, 1.0)  # lost at once, or kept to the end
        todo = np.flatnonzero((m0 >= -_TIE) & (m1 < -_TIE))
        # Bracket [a, b]: the child still nearest at a (margin >= -tie), not at b.
        a, b, ga, gb = t0[todo], t1[todo], m0[todo], m1[todo]
        side = np.zeros(len(todo), dtype=np.int8)  # Illinois: which end moved last
        for _ in range(60):
            if not len(todo):
                break
            m = np.clip(a - ga * (b - a) / (gb - ga), a, b)
            gm = margin(m, todo)
            kept = gm >= -_TIE
            # Illinois: halve the value kept at an end that stays twice in a row.
            gb = np.where(kept & (side == 1), gb / 2, gb)
            ga = np.where(~kept & (side == -1), ga / 2, ga)
            a, ga = np.where(kept, m, a), np.where(kept, gm, ga)
            b, gb = np.where(kept, b, m), np.where(kept, gb, gm)
            side = np.where(kept, 1, -1).astype(np.int8)
            done = ((b - a) * size[todo] <= _CLOSE) | (np.abs(gm) <= _TIE)
            t[todo[done]] = a[done]
            todo, a, b, ga, gb, side = (x[~done] for x in (todo, a, b, ga, gb, side))
        t[todo] = (a + b) / 2
        return t

    def crossings(self, start: np.ndarray, end: np.ndarray, label: np.ndarray):
        """On each edge (vertex ids), where its start's child stops and its end's begins.

        Returns two points per edge, equal unless a third child is nearest
        between them (only where a piece has three children or more), and
        that child's slot (-1 where none).
        """
        p, q = self.xy[start], self.xy[end]
        u, v = label[start], label[end]
        t_u = self.last_nearest(p, q, u)
        t_v = t_u.copy()
        more = np.flatnonzero(self.slots.count[self.slots.piece[u]] > 2)
        if len(more):
            t_v[more] = 1.0 - self.last_nearest(q[more], p[more], v[more])
        t_v = np.maximum(t_u, t_v)
        first, second = _along(p, q, t_u), _along(p, q, t_v)
        between = np.full(len(p), -1, dtype=np.int64)
        apart = np.flatnonzero((first != second).any(axis=1))
        if len(apart):
            middle = shapely.points((first[apart] + second[apart]) / 2)
            between[apart] = self.slots.nearest(self.slots.piece[u[apart]], middle, self)
        return first, second, between

    def segments(self, keys: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The rim as segments (n × 2 × 2), cut at the crossings that lie on it."""
        lo, hi = self.seg.min(axis=1), self.seg.max(axis=1)
        on = _rows_in(np.c_[lo, hi], keys)
        plain = on < 0
        p, q = self.xy[lo[~plain]], self.xy[hi[~plain]]
        c, d = first[on[~plain]], second[on[~plain]]
        return np.concatenate([
            self.xy[self.seg[plain]],
            np.stack([p, c], axis=1), np.stack([c, d], axis=1), np.stack([d, q], axis=1),
        ])  # fmt: skip


def _along(p: np.ndarray, q: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points at ``t`` (0..1) along ``p -> q``; the ends exactly."""
    out = p + (q - p) * t[:, None]
    out[t >= 1.0] = q[t >= 1.0]
    return out


def _rows_in(rows: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Position in ``table`` of each row of ``rows`` (exact match), or -1."""
    both = np.concatenate([table, rows])
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    lookup = np.full(inverse.max() + 1, -1, dtype=np.int64)
    lookup[inverse[: len(table)]] = np.arange(len(table))
    return lookup[inverse[len(table) :]]


def _cuts(at, first, second, corner, present, rim: _Rim) -> np.ndarray:
    """Segments (n × 2 × 2) joining each triangle's crossings.

    Two crossings are joined directly; three or more (three children meet
    in the triangle) through the point inside it where the children present
    are most nearly equally near (:func:`_centres`).
    """
    tri, k = np.nonzero(at >= 0)
    e = at[tri, k]
    apart = (first[e] != second[e]).any(axis=1)
    points = np.concatenate([first[e], second[e][apart]])
    rows, count = np.unique(np.c_[np.r_[tri, tri[apart]].astype(float), points], axis=0,
                            return_counts=True)  # fmt: skip
    # A corner both its edges cross at: its child has only that point here.
    spent = rows[count > 1]
    at_corner = (corner[spent[:, 0].astype(np.int64)] == spent[:, None, 1:]).all(axis=2)
    t, c = np.nonzero(at_corner)
    present = present.copy()
    present[spent[t, 0].astype(np.int64), c] = -1
    rows = rows[count == 1]
    tri, points = rows[:, 0].astype(np.int64), rows[:, 1:]
    n = np.bincount(tri, minlength=len(at))[tri]
    two = points[n == 2].reshape(-1, 2, 2)
    many = n > 2
    if not many.any():
        return two
    which, back = np.unique(tri[many], return_inverse=True)
    centre = _centres(corner[which], present[which], rim)
    return np.concatenate([two, np.stack([points[many], centre[back.ravel()]], axis=1)])


def _centres(corner: np.ndarray, present: np.ndarray, rim: _Rim, order: int = 9) -> np.ndarray:
    """Per triangle, the point inside it where its children are most nearly equally near.

    ``present`` (m × k) holds the slots present in each triangle (-1: none).
    The point is searched on a lattice of points strictly inside the
    triangle, then on the same lattice in a triangle a quarter the size
    around the best point, twice: to 1/600 of the triangle's size. (Where
    two children's nearest places coincide the distances are not smooth, so
    a Newton step has no gradient to follow.)
    """
    i, j = np.meshgrid(np.arange(1, order), np.arange(1, order), indexing="ij")
    keep = (i + j) < order
    w = np.c_[i[keep], j[keep], order - i[keep] - j[keep]] / order  # (L, 3)
    row, col = np.nonzero(present >= 0)
    pairs = np.unique(np.c_[row, present[row, col]], axis=0)
    row, slot = pairs[:, 0], pairs[:, 1]
    tri = corner.copy()
    best = tri.mean(axis=1)
    for _ in range(3):
        points = np.einsum("lk,mkd->mld", w, tri)  # (m, L, 2)
        n = points.shape[1]
        # Each lattice point against each slot of its triangle.
        pr = np.repeat(row, n)
        pl = np.tile(np.arange(n), len(row))
        dist = rim.distance(points[pr, pl], np.repeat(slot, n))
        hi = np.full((len(tri), n), -np.inf)
        lo = np.full((len(tri), n), np.inf)
        np.maximum.at(hi, (pr, pl), dist)
        np.minimum.at(lo, (pr, pl), dist)
        pick = np.argmin(hi - lo, axis=1)
        best = points[np.arange(len(tri)), pick]
        tri = best[:, None, :] + (tri - best[:, None, :]) / 4
    return best
