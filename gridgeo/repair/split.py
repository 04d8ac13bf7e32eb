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

All pieces are done at once, vectorised: one triangulation call; every
distance to a child's border measured against each of its segments in flat
numpy columns (a border of more than ``_BRUTE`` segments through one tree of
rim segments, each child's border shifted into a lane of its own, so one
nearest-neighbour query answers "how far is child k" for every point at
once); the linework joined into runs by pointer jumping (:func:`_runs`) and
handed to one ``polygonize``. The rim keeps its own vertices, and the new
lines have a vertex only where they cross a triangle edge (or bend).

Written here: GEOS triangulates, polygonizes and measures, but neither it
nor any library returns the bisector of two polylines inside a polygon
(a segment Voronoi diagram, as in Boost.Polygon, has no Python binding
among the dependencies).
"""

from __future__ import annotations

import numpy as np
import shapely

from gridgeo.check.steps import contact_lengths
from gridgeo.parallel import chunked

__all__ = ["split_pieces"]

_TIE = 1e-6  # metres: two distances closer than this are equal
_NUDGE = 1e-3  # metres: an edge's end is judged this far inside it (a corner on two children)
_CLOSE = 1e-4  # metres: a crossing is found to within this along its edge
_RIM = 150  # a rim is given at most about this many vertices
_BRUTE = 96  # a child's border of at most this many segments is measured without a tree


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
    # Overlays leave vertices a few ulps apart: one each (see _along).
    pieces = np.asarray(pieces, dtype=object)
    clean = shapely.remove_repeated_points(pieces, _TIE)
    pieces = np.where(shapely.is_valid(clean), clean, pieces)
    out: list[list[tuple[int, shapely.Geometry]]] = [[] for _ in pieces]
    if not len(pieces):
        return out
    slots = _Slots(pieces, kids, geoms)
    rim = _Rim(pieces, slots, geoms, eps)
    # A vertex at least every eight strip widths (2 area / perimeter) along a
    # child: on Bayannur, as accurate as every three (bench_repair's split
    # accuracy, 0.065 %), with a third fewer triangles; every ten is not (0.094 %).
    perimeter = shapely.length(pieces)
    strip = 2 * shapely.area(pieces) / np.maximum(perimeter, 1e-300)
    finer, along = rim.densified(np.maximum(8 * strip, perimeter / _RIM))
    if finer is not None:
        pieces = finer
        rim = _Rim(pieces, slots, geoms, eps, along, borders=rim)
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
    keys, _, edge_of, _ = _unique_rows(np.c_[lo, hi])
    first, second, between = rim.crossings(keys[:, 0], keys[:, 1], vertex_label)
    # Flat triangles (three rim vertices on a line): their edges' crossings merged.
    e1, e2 = corner[:, 1] - corner[:, 0], corner[:, 2] - corner[:, 0]
    twice = np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    flat = twice <= 1e-9 * np.maximum(np.einsum("ij,ij->i", e1, e1), np.einsum("ij,ij->i", e2, e2))
    on_flat = np.unique(edge_of[flat[tri_of]])
    first, second = rim.merged(first, second, on_flat)
    # 3. Dividing lines inside the triangles, and the rim cut where they meet it.
    at = np.full(mixed.shape, -1, dtype=np.int64)
    at[tri_of, k_of] = edge_of
    cuts = _cuts(at, first, second, between, vertex_label[keys], corner, rim)
    edges = np.concatenate([cuts, rim.segments(keys, first, second)])
    edges = edges[(edges[:, 0] != edges[:, 1]).any(axis=1)]
    # Each segment once (a cut can run along the rim): GEOS's polygonize
    # returns nothing at all for a ring with a segment twice.
    swap = (edges[:, 0, 0] > edges[:, 1, 0]) | (
        (edges[:, 0, 0] == edges[:, 1, 0]) & (edges[:, 0, 1] > edges[:, 1, 1])
    )
    edges[swap] = edges[swap, ::-1]
    edges = _unique_rows(edges.reshape(-1, 4))[0].reshape(-1, 2, 2)
    # Runs of segments joined first (fewer, longer edges for GEOS to sort).
    faces = shapely.get_parts(shapely.polygonize(_runs(edges)))
    inner = shapely.point_on_surface(faces)
    face_i, piece_i = shapely.STRtree(pieces).query(inner, predicate="within")
    faces, inner = faces[face_i], inner[face_i]
    # 4. Each share to the nearest child; a share touching nobody near it to the fallback.
    near = slots.nearest(piece_i, inner, rim)
    kid = slots.kid[near]
    # The one face nearest a child holds that child's border (the places by
    # it are nearest it): only a second face, or a child with no border here,
    # needs its contact measured.
    _, where, count = np.unique(near, return_inverse=True, return_counts=True)
    doubt = np.flatnonzero((count[where.ravel()] > 1) | (rim.count[near] == 0))
    touching = np.ones(len(faces), dtype=bool)
    if len(doubt):
        fi, gi, length = contact_lengths(faces[doubt], geoms, eps)
        touching[doubt] = False
        touching[doubt[fi[(gi == kid[doubt][fi]) & (length > eps)]]] = True
    kid = np.where(touching, kid, fallback[piece_i])
    order = np.lexsort((kid, piece_i))
    groups = np.c_[piece_i[order], kid[order]]
    starts = np.r_[0, np.flatnonzero((groups[1:] != groups[:-1]).any(axis=1)) + 1]
    for s, e in zip(starts, np.r_[starts[1:], len(order)], strict=True) if len(order) else ():
        mine = faces[order[s:e]]
        share = mine[0] if len(mine) == 1 else shapely.coverage_union_all(mine)
        out[int(groups[s, 0])].append((int(groups[s, 1]), share))
    # The shares must add up to the piece: where they do not (linework GEOS
    # could not close), the whole piece goes to the fallback, as unsplit.
    share_of = np.array([k for k, shares in enumerate(out) for _ in shares], dtype=np.int64)
    areas = shapely.area(np.array([g for shares in out for _, g in shares], dtype=object))
    total = (
        np.bincount(share_of, weights=areas, minlength=len(out))
        if len(areas)
        else np.zeros(len(out))
    )
    whole = shapely.area(pieces)
    for k in np.flatnonzero(np.abs(total - whole) > 1e-6 * whole):
        out[k] = [(int(fallback[k]), pieces[k])]
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
        slot = np.repeat(self.first[piece], n) + (
            np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        )
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

    def __init__(self, pieces: np.ndarray, slots: _Slots, geoms: np.ndarray, eps: float,
                 along: np.ndarray | None = None, borders: _Rim | None = None) -> None:  # fmt: skip
        """``along``: each rim segment's slot, when known (-1: the parent's edge);
        ``borders``: a rim of the same pieces, fewer vertices on the same lines,
        whose borders serve for every distance."""
        rings, ring_piece = shapely.get_rings(pieces, return_index=True)
        xy, ring = shapely.get_coordinates(rings, return_index=True)
        start = np.flatnonzero(ring[1:] == ring[:-1])  # segment start -> start + 1
        self._raw = xy, ring, ring_piece, start
        self._pieces = pieces
        self.slots = slots
        self.piece_of_xy = ring_piece[ring]
        # Vertex ids: one per distinct position within a piece.
        self._keys = np.c_[self.piece_of_xy.astype(float), xy]
        self._table, _, self.xy_id, _ = _unique_rows(self._keys)
        self.xy = self._table[:, 1:]
        self.vertex_piece = self._table[:, 0].astype(np.int64)
        self.seg = np.c_[self.xy_id[start], self.xy_id[start + 1]]
        seg_piece = self.piece_of_xy[start]
        if along is None:
            along = self._children(xy, start, seg_piece, slots, geoms, eps)
        self.seg_slot = along
        # A clean vertex: every segment at it runs along the same child.
        low = np.full(len(self.xy), np.iinfo(np.int64).max)
        high = np.full(len(self.xy), -2)
        for end in (self.seg[:, 0], self.seg[:, 1]):
            np.minimum.at(low, end, self.seg_slot)
            np.maximum.at(high, end, self.seg_slot)
        self.clean = (low == high) & (low >= 0)
        if borders is None:
            self._borders(pieces)
        else:  # the same lines: fewer segments to measure against
            for name in ("origin", "lane", "_ax", "_ay", "_bx", "_by", "_inv", "count",
                         "_first", "tree"):  # fmt: skip
                setattr(self, name, getattr(borders, name))

    def _borders(self, pieces: np.ndarray) -> None:
        """Each slot's border, for :meth:`distance`."""
        # Shifted into a lane of its own for the tree: x + lane * slot.
        box = shapely.bounds(pieces)
        self.origin = box[:, :2]
        self.lane = 4.0 * float(np.max(box[:, 2:] - box[:, :2])) + 100.0
        along = np.flatnonzero(self.seg_slot >= 0)
        along = along[np.argsort(self.seg_slot[along], kind="stable")]
        ends = self.xy[self.seg[along]]  # (n, 2, 2), grouped by slot
        # Each as a contiguous column: gathered per (point, segment) pair below.
        ab = ends[:, 1] - ends[:, 0]
        self._ax, self._ay = ends[:, 0, 0].copy(), ends[:, 0, 1].copy()
        self._bx, self._by = ab[:, 0].copy(), ab[:, 1].copy()
        self._inv = 1.0 / np.maximum(self._bx**2 + self._by**2, 1e-300)
        self.count = np.bincount(self.seg_slot[along], minlength=len(self.slots.piece))
        self._first = np.cumsum(self.count) - self.count
        long = np.isin(self.seg_slot[along], np.flatnonzero(self.count > _BRUTE))
        shifted = self._shift(ends[long], np.repeat(self.seg_slot[along][long], 2).reshape(-1, 2))
        self.tree = shapely.STRtree(shapely.linestrings(shifted)) if long.any() else None

    @staticmethod
    def _children(xy, start, seg_piece, slots: _Slots, geoms, eps) -> np.ndarray:
        """Which child each segment runs along: its middle lies within ``eps`` of it."""
        middle = shapely.points((xy[start] + xy[start + 1]) / 2)
        # One query per child (each prepared once), then matched to the slots.
        kid, back = np.unique(slots.kid, return_inverse=True)
        which, hit = shapely.STRtree(middle).query(geoms[kid], predicate="dwithin", distance=eps)
        slot_of = np.full((len(slots.count), len(kid)), -1, dtype=np.int64)
        slot_of[slots.piece, back.ravel()] = np.arange(len(slots.piece))
        hold = slot_of[seg_piece[hit], which]
        own = hold >= 0
        hold, hit = hold[own], hit[own]
        count = np.bincount(hit, minlength=len(start))
        gap = np.zeros(len(hit))
        several = count[hit] > 1  # a segment near two children: the nearer one
        gap[several] = shapely.distance(middle[hit[several]], geoms[slots.kid[hold[several]]])
        order = np.lexsort((gap, hit))
        hold, hit = hold[order], hit[order]
        first = np.r_[True, hit[1:] != hit[:-1]] if len(hit) else np.zeros(0, dtype=bool)
        out = np.full(len(start), -1, dtype=np.int64)
        out[hit[first]] = hold[first]
        return out

    def densified(self, step: np.ndarray | None = None, least: int = 4):
        """The pieces with each child's border along them given more vertices.

        Each segment along a child is cut into parts at most ``step`` long
        (per piece), and each child's border into ``least`` segments at
        least. A child whose border along a piece is one long segment has no
        corner of its own for the triangulation to reach its side from: its
        share would shrink towards that edge. The new vertices lie on
        children's borders only, where the shares join their children, so
        none is left in the result; the parent's edge keeps its own vertices.

        Returns the pieces and each new segment's slot (``None`` when a
        piece had to stay as it was), or ``(None, None)`` when nothing is cut.
        """
        xy, ring, ring_piece, start = self._raw
        a, b = xy[start], xy[start + 1]
        slot, of = self.seg_slot, ring[start]
        # Runs of segments along one child, a ring's last run joined to its first.
        new = np.r_[True, (slot[1:] != slot[:-1]) | (of[1:] != of[:-1])]
        run = np.cumsum(new) - 1
        first = np.r_[0, np.flatnonzero(of[1:] != of[:-1]) + 1]
        last = np.r_[first[1:] - 1, len(of) - 1]
        wrap = (slot[first] == slot[last]) & (run[first] != run[last])
        remap = np.arange(run.max() + 1)
        remap[run[last[wrap]]] = run[first[wrap]]
        run = remap[run]
        count = np.bincount(run)[run]
        parts = np.where((slot >= 0) & (count < least), -(-least // count), 1).astype(np.int64)
        if step is not None:
            size = np.hypot(*(b - a).T)
            fine = np.ceil(size / step[ring_piece[of]]).astype(np.int64)
            parts = np.where(slot >= 0, np.maximum(parts, fine), parts)
        if (parts == 1).all():
            return None, None
        seg = np.repeat(np.arange(len(start)), parts)
        k = np.arange(len(seg)) - np.repeat(np.cumsum(parts) - parts, parts)
        points = a[seg] + (b - a)[seg] * (k / parts[seg])[:, None]
        # Each ring closes on its first point.
        owner = ring[start[seg]]
        last = np.r_[np.flatnonzero(owner[1:] != owner[:-1]), len(owner) - 1]
        coords = np.insert(points, last + 1, points[np.r_[0, last[:-1] + 1]], axis=0)
        ids = np.insert(owner, last + 1, owner[last])
        rings = shapely.linearrings(coords, indices=ids)
        finer = shapely.polygons(rings, indices=ring_piece[np.unique(ids)])
        # A needle (two edges a hair apart) can come out crossing itself: kept as it was.
        valid = shapely.is_valid(finer)
        if valid.all():  # each new segment runs along its old one's child
            return finer, np.repeat(self.seg_slot, parts)
        return np.where(valid, finer, self._pieces), None

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
        return chunked(self._distance, xy, slot, min_chunk=4000)

    def _distance(self, xy: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """:meth:`distance` on one thread.

        A border of a few segments is measured against each of them in numpy
        (a tree query costs as much as a hundred segments); a longer one
        through one tree of every long border, each shifted into a lane of
        its own, so one nearest-neighbour query answers for all points.
        """
        out = np.full(len(xy), np.inf)
        n = self.count[slot]
        short = np.flatnonzero((n > 0) & (n <= _BRUTE))
        if len(short):
            # One row per (point, segment) pair, in flat columns and in place:
            # four times faster than the same sums on (n, 2) arrays.
            k = n[short]
            starts = np.cumsum(k) - k
            seg = np.arange(starts[-1] + k[-1]) + np.repeat(self._first[slot[short]] - starts, k)
            bx, by = self._bx[seg], self._by[seg]
            dx = np.repeat(xy[short, 0], k)
            dx -= self._ax[seg]
            dy = np.repeat(xy[short, 1], k)
            dy -= self._ay[seg]
            t = dx * bx
            t += dy * by
            t *= self._inv[seg]
            np.clip(t, 0.0, 1.0, out=t)
            bx *= t
            dx -= bx
            by *= t
            dy -= by
            dx *= dx
            dy *= dy
            dx += dy
            out[short] = np.sqrt(np.minimum.reduceat(dx, starts))
        long = np.flatnonzero(n > _BRUTE)
        if len(long):
            points = shapely.points(self._shift(xy[long].copy(), slot[long]))
            (row, _), dist = self.tree.query_nearest(points, return_distance=True,
                                                     max_distance=self.lane / 2)  # fmt: skip
            out[long[row]] = dist
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

    def last_nearest(self, p: np.ndarray, q: np.ndarray, slot: np.ndarray,
                     clean: np.ndarray) -> np.ndarray:  # fmt: skip
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

        t0 = np.minimum(_NUDGE / size, 0.5)
        t1 = 1.0 - t0
        m0, m1 = np.empty(len(p)), np.empty(len(p))
        # Between two children, from a clean vertex of one to a clean vertex
        # of the other, each end lies on its own child only: no nudge, and
        # one distance each (the other is 0).
        first = self.slots.first[piece]
        fast = np.flatnonzero((self.slots.count[piece] == 2) & clean)
        other = 2 * first[fast] + 1 - slot[fast]
        t0[fast], t1[fast] = 0.0, 1.0
        m0[fast] = self.distance(p[fast], other)
        m1[fast] = -self.distance(q[fast], slot[fast])
        slow = np.setdiff1d(np.arange(len(p)), fast)
        m0[slow], m1[slow] = margin(t0[slow], slow), margin(t1[slow], slow)
        t = np.where(m0 < -_TIE, 0.0, 1.0)  # lost at once, or kept to the end
        todo = np.flatnonzero((m0 >= -_TIE) & (m1 < -_TIE))
        t[todo] = _switch(margin, todo, t0[todo], t1[todo], m0[todo], m1[todo], size[todo])
        return t

    def crossings(self, start: np.ndarray, end: np.ndarray, label: np.ndarray):
        """On each edge (vertex ids), where its start's child stops and its end's begins.

        Returns two points per edge, equal unless a third child is nearest
        between them (only where a piece has three children or more), and
        that child's slot (-1 where none).
        """
        p, q = self.xy[start], self.xy[end]
        u, v = label[start], label[end]
        clean = self.clean[start] & self.clean[end] & (u != v)
        t_u = self.last_nearest(p, q, u, clean)
        t_v = t_u.copy()
        more = np.flatnonzero(self.slots.count[self.slots.piece[u]] > 2)
        if len(more):
            t_v[more] = 1.0 - self.last_nearest(q[more], p[more], v[more], clean[more])
        size = np.hypot(*(q - p).T)
        t_v = np.where((t_v - t_u) * size <= 2 * _CLOSE, t_u, np.maximum(t_u, t_v))
        first, second = _along(p, q, t_u), _along(p, q, t_v)
        between = np.full(len(p), -1, dtype=np.int64)
        apart = np.flatnonzero((first != second).any(axis=1))
        if len(apart):
            middle = shapely.points((first[apart] + second[apart]) / 2)
            between[apart] = self.slots.nearest(self.slots.piece[u[apart]], middle, self)
        return first, second, between

    def merged(self, first: np.ndarray, second: np.ndarray, flat: np.ndarray):
        """Crossings on the edges ``flat`` within ``_TIE`` of a rim vertex, or of each other,
        made one point.

        A flat triangle (collinear rim vertices) has two edges along the
        same line: two crossings of the same place on them come out an ulp
        apart; left so, the linework would not close there.
        """
        if not len(flat):
            return first, second
        points = np.concatenate([first[flat], second[flat]])
        vertex, hit = shapely.STRtree(shapely.points(self.xy)).query(
            shapely.points(points), predicate="dwithin", distance=_TIE
        )
        points[vertex] = self.xy[hit]
        left, right = shapely.STRtree(shapely.points(points)).query(
            shapely.points(points), predicate="dwithin", distance=_TIE
        )
        root = np.arange(len(points))
        while True:  # each cluster to its lowest member (clusters are tiny)
            low = root.copy()
            np.minimum.at(low, left, root[right])
            low = low[low]
            if (low == root).all():
                break
            root = low
        points = points[root]
        first, second = first.copy(), second.copy()
        first[flat], second[flat] = points[: len(flat)], points[len(flat) :]
        return first, second

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


def _switch(func, idx, a, b, fa, fb, size) -> np.ndarray:
    """Where ``func`` (of positions 0..1 and row indices) stops being >= -_TIE, between ``a`` and ``b``.

    ``func(a) >= -_TIE > func(b)`` for every row; regula falsi with the
    Illinois modification, vectorised over rows, to ``_CLOSE`` metres
    (``size``: each row's length per unit). Returns the last position found
    where ``func`` still holds.
    """
    out = np.empty(len(idx))
    todo = np.arange(len(idx))
    side = np.zeros(len(idx), dtype=np.int8)  # which end moved last
    for _ in range(60):
        if not len(todo):
            break
        m = a - fa * (b - a) / (fb - fa)
        # Bisect from a tie (f = 0 at a: the secant would stay there).
        m = np.where(np.abs(fa) <= _TIE, (a + b) / 2, m)
        fm = func(m, idx[todo])
        kept = fm >= -_TIE
        # A clean crossing (not inside a run of ties, where f stays 0): m itself.
        clean = (np.abs(fm) <= _CLOSE) & (np.abs(fa) > _TIE)
        # Illinois: halve the value kept at an end that stays twice in a row.
        fb = np.where(kept & (side == 1), fb / 2, fb)
        fa = np.where(~kept & (side == -1), fa / 2, fa)
        a, fa = np.where(kept, m, a), np.where(kept, fm, fa)
        b, fb = np.where(kept, b, m), np.where(kept, fb, fm)
        side = np.where(kept, 1, -1).astype(np.int8)
        done = clean | ((b - a) * size[todo] <= _CLOSE)
        out[todo[done]] = np.where(clean, m, a)[done]
        keep = ~done
        todo, a, b, fa, fb, side = todo[keep], a[keep], b[keep], fa[keep], fb[keep], side[keep]
    out[todo] = (a + b) / 2
    return out


def _along(p: np.ndarray, q: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points at ``t`` (0..1) along ``p -> q``; within ``_TIE`` of an end, the end exactly.

    (A segment a few ulps long has no direction GEOS's ``polygonize`` can
    sort edges around a node by.)
    """
    size = np.hypot(*(q - p).T)
    out = p + (q - p) * t[:, None]
    start, end = t * size <= _TIE, (1.0 - t) * size <= _TIE
    out[start] = p[start]
    out[end] = q[end]
    return out


def _unique_rows(rows: np.ndarray):
    """``np.unique(rows, axis=0)`` with index, inverse and counts, by one lexsort.

    (``np.unique`` on rows sorts them as opaque byte strings: several times
    slower on the tens of thousands of rows here.)
    """
    order = np.lexsort(rows.T[::-1])
    ranked = rows[order]
    start = np.r_[True, (ranked[1:] != ranked[:-1]).any(axis=1)] if len(rows) else np.zeros(0, bool)
    group = np.cumsum(start) - 1
    inverse = np.empty(len(rows), dtype=np.int64)
    inverse[order] = group
    count = np.diff(np.r_[np.flatnonzero(start), len(rows)])
    return ranked[start], order[start], inverse, count


def _runs(edges: np.ndarray) -> np.ndarray:
    """Segments (n × 2 × 2, each once) joined into linestrings through every point
    that exactly two of them share, as ``shapely.line_merge`` joins them.

    Each segment is walked both ways: an *entry* is a segment's end it is walked
    in at (``2 s`` or ``2 s + 1``). Every entry's first entry and place along its
    walk come from pointer jumping (a few passes over all entries); a closed
    walk is first opened at its smallest entry. Of each walk's two directions,
    the one starting at the smaller entry is kept. (Written here: GEOS's line
    merger builds its graph node by node, and took a sixth of the split.)
    """
    n = len(edges)
    if not n:
        return np.empty(0, dtype=object)
    ends = edges.reshape(-1, 2)
    node = _unique_rows(ends)[2]
    count = np.bincount(node)
    order = np.argsort(node, kind="stable")
    ranked = node[order]
    pair = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]] & (count[ranked] == 2))
    partner = np.full(2 * n, -1)
    partner[order[pair]], partner[order[pair + 1]] = order[pair + 1], order[pair]
    entry = np.arange(2 * n)
    # The entry walked before each one: in at e, out at e ^ 1, in again at its partner.
    before = np.where(partner >= 0, partner ^ 1, -1)
    rounds = int(np.ceil(np.log2(2 * n))) + 1

    def walked(before):
        """Each entry's first entry and how many steps after it it comes."""
        up = np.where(before >= 0, before, entry)
        depth = (before >= 0).astype(np.int64)
        for _ in range(rounds):
            depth, up = depth + depth[up], up[up]
        return up, depth

    first, depth = walked(before)
    closed = before[first] >= 0  # no first entry: a closed walk
    if closed.any():
        low, up = entry.copy(), np.where(closed, before, entry)
        for _ in range(rounds):
            low, up = np.minimum(low, low[up]), up[up]
        before = np.where(closed & (entry == low), -1, before)
        first, depth = walked(before)
    keep = np.flatnonzero(first < first[entry ^ 1])
    keep = keep[np.lexsort((depth[keep], first[keep]))]
    walk = np.cumsum(np.r_[True, first[keep][1:] != first[keep][:-1]]) - 1
    last = np.r_[walk[1:] != walk[:-1], True]
    # Each entry's point, and after each walk's last entry the point it leaves at.
    points = np.insert(ends[keep], np.flatnonzero(last) + 1, ends[keep[last] ^ 1], axis=0)
    ids = np.insert(walk, np.flatnonzero(last) + 1, walk[last])
    return shapely.linestrings(points, indices=ids)


def _rows_in(rows: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Position in ``table`` of each row of ``rows`` (exact match), or -1."""
    both = np.concatenate([table, rows])
    inverse = _unique_rows(both)[2]
    lookup = np.full(inverse.max() + 1, -1, dtype=np.int64)
    lookup[inverse[: len(table)]] = np.arange(len(table))
    return lookup[inverse[len(table) :]]


def _cuts(at, first, second, between, ends, corner, rim: _Rim) -> np.ndarray:
    """Segments (n × 2 × 2) joining each triangle's crossings.

    Each crossing divides two children (``ends``: the children of each edge's
    ends; ``between``: a third child between its two crossings, or -1).
    Crossings of the same two children in a triangle are joined, and bent
    onto their true dividing line (:func:`_bent`); the rest (where three
    children meet in the triangle) through the point where those children
    are most nearly equally near (:func:`_centres`).
    """
    tri, k = np.nonzero(at >= 0)
    e = at[tri, k]
    apart = (first[e] != second[e]).any(axis=1)
    mid = np.where(apart, between[e], ends[e, 1])
    points = np.concatenate([first[e], second[e][apart]])
    pair = np.sort(np.c_[np.r_[ends[e, 0], mid[apart]], np.r_[mid, ends[e, 1][apart]]], axis=1)
    rows, once, _, count = _unique_rows(np.c_[np.r_[tri, tri[apart]].astype(float), points])
    # A corner both its edges cross at: its child has only that point here.
    keep = count == 1
    tri, points, pair = rows[keep, 0].astype(np.int64), rows[keep, 1:], pair[once[keep]]
    # Crossings of the same two children, two in a triangle: joined and bent.
    order = np.lexsort((pair[:, 1], pair[:, 0], tri))
    tri, points, pair = tri[order], points[order], pair[order]
    key = np.c_[tri, pair]
    start = np.r_[True, (key[1:] != key[:-1]).any(axis=1)]
    group = np.cumsum(start) - 1
    size = np.bincount(group)[group]
    two = np.flatnonzero((size == 2) & start)
    out = [_bent(np.stack([points[two], points[two + 1]], axis=1), tri[two], pair[two, 0],
                 pair[two, 1], corner, rim)]  # fmt: skip
    rest = size != 2
    tri, points, pair = tri[rest], points[rest], pair[rest]
    n = np.bincount(tri, minlength=len(at))[tri]
    out.append(points[n == 2].reshape(-1, 2, 2))
    many = n > 2
    if many.any():
        which, back = np.unique(tri[many], return_inverse=True)
        back = back.ravel()
        rank = np.arange(len(back)) - np.searchsorted(back, back)
        present = np.full((len(which), 2 * (rank.max() + 1)), -1, dtype=np.int64)
        present[back, 2 * rank] = pair[many, 0]
        present[back, 2 * rank + 1] = pair[many, 1]
        centre = _centres(corner[which], present, rim, points[many], back)
        out.append(np.stack([points[many], centre[back]], axis=1))
    return np.concatenate(out)


def _bent(cuts, tri, u, v, corner, rim: _Rim, depth: int = 4) -> np.ndarray:
    """Cuts between children ``u`` and ``v`` bent, inside their triangles, onto their dividing line.

    Both ends of a cut lie on the line dividing the two children, but
    between them the line may bend (where a child's border turns). The
    point of the line across each cut's middle is found (regula falsi along
    the perpendicular, inside the triangle); where it lies further than 2 %
    of the distance to the children from the middle, the cut is bent
    through it and both halves are looked at again, ``depth`` times at most.
    """
    done = [np.empty((0, 2, 2))]
    a, b = cuts[:, 0], cuts[:, 1]
    for _ in range(depth):
        if not len(a):
            break
        m = (a + b) / 2
        d = b - a
        size = np.maximum(np.hypot(*d.T), 1e-300)
        n = np.c_[-d[:, 1], d[:, 0]] / size[:, None]
        lo, hi = _span(m, n, corner[tri])

        def f(s, idx, m=m, n=n, u=u, v=v):
            x = m[idx] + n[idx] * s[:, None]
            return rim.distance(x, u[idx]) - rim.distance(x, v[idx])

        du, dv = rim.distance(m, u), rim.distance(m, v)
        f0 = du - dv
        # Off the line by about |f0| / |grad f| (1 to 2 across a gap): near enough?
        tol = np.maximum(0.02 * np.minimum(du, dv), 10 * _CLOSE)
        off = np.flatnonzero(np.abs(f0) > tol)
        f_lo, f_hi = f(lo[off], off), f(hi[off], off)
        # Towards the end where the other child is nearer (or as near: the
        # line may run along the triangle's edge); sign * f >= 0 at the middle.
        sign = np.where(f0[off] <= 0, -1.0, 1.0)
        end = np.where(sign * f_hi <= _TIE, hi[off], np.where(sign * f_lo <= _TIE, lo[off], 0.0))
        f_end = np.where(end == hi[off], f_hi, f_lo)
        moved = np.zeros(len(a))
        moved[off] = np.where(np.abs(f_end) <= _TIE, end, 0.0)
        go = np.flatnonzero((end != 0) & (np.abs(f_end) > _TIE))
        if len(go):
            sign_all, end_all = np.zeros(len(a)), np.zeros(len(a))
            sign_all[off], end_all[off] = sign, end

            def h(t, idx, end=end_all, sign=sign_all, f=f):
                return sign[idx] * f(t * end[idx], idx)

            rows = off[go]
            t = _switch(h, rows, np.zeros(len(go)), np.ones(len(go)), sign[go] * f0[rows],
                        sign[go] * f_end[go], np.abs(end[go]))  # fmt: skip
            moved[rows] = t * end[go]
        point = m + n * moved[:, None]
        bend = np.abs(moved) > tol
        done.append(np.stack([a[~bend], b[~bend]], axis=1))
        a, b = np.r_[a[bend], point[bend]], np.r_[point[bend], b[bend]]
        tri, u, v = np.r_[tri[bend], tri[bend]], np.r_[u[bend], u[bend]], np.r_[v[bend], v[bend]]
    done.append(np.stack([a, b], axis=1))
    return np.concatenate(done)


def _span(m: np.ndarray, n: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The range of ``s`` with ``m + s n`` strictly inside each triangle (``m`` inside it)."""
    p, q = tri, np.roll(tri, -1, axis=1)
    e = q - p  # (k, 3, 2)
    turn = np.sign(e[:, 0, 0] * e[:, 1, 1] - e[:, 0, 1] * e[:, 1, 0])[:, None]
    c = turn * (e[..., 0] * (m[:, None, 1] - p[..., 1]) - e[..., 1] * (m[:, None, 0] - p[..., 0]))
    g = turn * (e[..., 0] * n[:, None, 1] - e[..., 1] * n[:, None, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = -c / g
    lo = np.where(g > 0, bound, -np.inf).max(axis=1)
    hi = np.where(g < 0, bound, np.inf).min(axis=1)
    shrink = 1 - 1e-7
    return np.minimum(lo * shrink, 0.0), np.maximum(hi * shrink, 0.0)


def _centres(corner: np.ndarray, present: np.ndarray, rim: _Rim, crossing: np.ndarray,
             owner: np.ndarray, order: int = 9) -> np.ndarray:  # fmt: skip
    """Per triangle, the point where its children are most nearly equally near.

    ``present`` (m × k) holds the slots present in each triangle (-1: none);
    ``crossing`` the triangle's crossings, ``owner`` the triangle of each.
    The point is searched on a lattice of points strictly inside the
    triangle, then on the same lattice in a triangle a quarter the size
    around the best point, twice: to 1/600 of the triangle's size. A
    crossing does better where the children meet on the triangle's edge.
    (Where two children's nearest places coincide the distances are not
    smooth, so a Newton step has no gradient to follow.)
    """
    row, col = np.nonzero(present >= 0)
    pairs = _unique_rows(np.c_[row, present[row, col]])[0]
    row, slot = pairs[:, 0], pairs[:, 1]

    def spread(points: np.ndarray) -> np.ndarray:
        """(m, n) points -> how far apart the children present are from each."""
        n = points.shape[1]
        pr, pl = np.repeat(row, n), np.tile(np.arange(n), len(row))
        dist = rim.distance(points[pr, pl], np.repeat(slot, n))
        hi, lo = np.full((len(points), n), -np.inf), np.full((len(points), n), np.inf)
        np.maximum.at(hi, (pr, pl), dist)
        np.minimum.at(lo, (pr, pl), dist)
        return hi - lo

    i, j = np.meshgrid(np.arange(1, order), np.arange(1, order), indexing="ij")
    keep = (i + j) < order
    w = np.c_[i[keep], j[keep], order - i[keep] - j[keep]] / order  # (L, 3)
    tri = corner.copy()
    every = np.arange(len(tri))
    for _ in range(3):
        points = np.einsum("lk,mkd->mld", w, tri)  # (m, L, 2)
        gap = spread(points)
        pick = np.argmin(gap, axis=1)
        best, least = points[every, pick], gap[every, pick]
        tri = best[:, None, :] + (tri - best[:, None, :]) / 4
    # The crossings, padded to one row per triangle.
    rank = np.arange(len(owner)) - np.searchsorted(owner, owner)
    padded = np.repeat(best[:, None, :], rank.max() + 1, axis=1)
    padded[owner, rank] = crossing
    gap = spread(padded)
    pick = np.argmin(gap, axis=1)
    better = gap[every, pick] < least
    best[better] = padded[every, pick][better]
    return best
