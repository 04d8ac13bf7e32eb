"""One level's geometric repair, on metric arrays: every change is one piece.

The steps, in order, for the polygons of one level and the (already
repaired) polygons of the level above:

1. ``make_valid`` (polygonal part only; holes the repair itself opens are
   filled back, as :func:`gridgeo.check` treats them);
2. ``cut``: the pieces of a child outside its parent;
3. ``give``: each overlap piece between two children is kept by one of them,
   chosen by a rule, and cut from the other; when losing it would split either
   one, the rule's loser first hands the keeper what the piece cuts off from
   the rest of it (``move``), so nobody ends in pieces;
4. ``fill``: each piece of a parent no child covers (inside, or open to the
   parent's edge: an inlet) goes to the children along it — the longest
   border, or split among them along the gap (:func:`_split`).

Only the widths the audit reports are measured
(:func:`~gridgeo.defects.polygon_width`, a dozen erosions each); "is this part
more than dust?" is one test (:func:`wider_than`), most often no erosion at all.

Why by hand and not ``shapely.coverage_clean``: GEOS settles overlaps and
narrow interior gaps the same way (longest border, largest area, lowest
index), but returns only the cleaned polygons: no piece per change to audit
and accept one by one; it may snap vertices of polygons that had no defect
(they would no longer be bit-identical); it never fills a gap open to the
parent's edge, nor clips children to a parent. The primitives here are GEOS
all the same (overlay, ``make_valid``, ``coverage_invalid_edges``,
``coverage_union_all``, ``delaunay_triangles``), vectorised over pieces.

A change is a :class:`Change`; the repaired geometry of a polygon is always
``base − (cut and given pieces) ∪ (filled pieces)``
(:func:`compose`), both here and when a subset of changes is applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely

from gridgeo.check.steps import contact_lengths, interiors, polygonal
from gridgeo.config import Coverage, Tolerances
from gridgeo.defects import polygon_width, without_dust_holes

__all__ = [
    "FILLS",
    "GAINS",
    "LOSES",
    "RULES",
    "Change",
    "compose",
    "make_valid",
    "real_parts",
    "repair_level",
    "wider_than",
]

RULES = ("longest_border", "largest_area", "lowest_code", "households")
"""Who keeps an overlap piece: the polygon sharing the longest border with it
(the rest of each polygon), the larger polygon, the lower code, or the polygon
most of the piece's households are registered to."""

FILLS = ("auto", "split", "longest_border")
"""How a gap piece is filled: ``split`` among the children along it (each part
to the nearest), whole to the ``longest_border`` one, or ``auto``: slivers
whole to the longest border, wider gaps split."""

LOSES = ("cut", "give", "move")
"""Actions that take a piece from ``source``."""
GAINS = ("fill", "move")
"""Actions that add a piece to ``target``."""

_EPS = 0.05  # metres: contact length is measured as area within this of a piece
_RIM_POINTS = 2000  # at most this many points along a gap's rim (see _split)
_NEAR = 0.01  # a remnant of erosion is true when a vertex lies within 1 % of the depth asked


@dataclass
class Change:
    """One change of one level: ``piece`` moves from ``source`` to ``target``.

    ``source`` and ``target`` are positions in the level (-1: no polygon).
    ``action``: ``make_valid`` (``area`` is the signed area change), ``cut``
    (``source`` loses a piece outside its parent), ``give`` (``source`` loses an
    overlap piece ``target`` keeps), ``fill`` (``target`` gains an uncovered
    piece), ``move`` (``source`` loses a piece of its own to ``target``: what an
    overlap piece would cut off from the rest of it). ``needs``: changes of the
    same level that must be applied first.
    """

    kind: str
    action: str
    rule: str
    source: int
    target: int
    piece: shapely.Geometry
    width: float
    area: float
    params: dict = field(default_factory=dict)
    refused: str = ""
    needs: tuple[Change, ...] = ()


def make_valid(geom: shapely.Geometry, dust: float) -> shapely.Geometry:
    """The polygonal part of ``make_valid(geom)``, the holes the repair opened filled back.

    A ring crossing itself (a bow-tie) makes GEOS cut a hole that was never a
    gap; the check calls it ``repair_hole``, and it is closed here.
    """
    fixed = polygonal(shapely.make_valid(geom))
    opened = shapely.difference(interiors(fixed), interiors(geom))
    if not shapely.is_empty(opened) and wider_than(np.array([opened]), dust)[0]:
        fixed = shapely.union(fixed, opened)
    return fixed


def wider_than(geoms: np.ndarray, width: float) -> np.ndarray:
    """Does a circle ``width`` across fit in each polygon? One erosion at most, never a measure.

    Where only "narrower than ``width``?" matters (dust, a tolerance), the exact
    width (:func:`~gridgeo.defects.polygon_width`, a dozen erosions of the
    whole polygon) is wasted work: a polygon without holes is at least
    ``2 area / perimeter`` wide (Sz.-Nagy), which settles nearly every one at
    once; the rest are eroded by ``width / 2`` once. As in
    :func:`~gridgeo.defects.polygon_width`, a remnant counts only where one of
    its vertices lies inside, about ``width / 2`` from the rim (GEOS can leave an
    inverted copy of a convex part eroded past its inradius).

    >>> wider_than(np.array([shapely.box(0, 0, 10, 2), shapely.box(0, 0, 10, 0.5)]), 1.0).tolist()
    [True, False]
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms), dtype=bool)
    poly = np.isin(shapely.get_type_id(geoms), (3, 6)) & ~shapely.is_empty(geoms)
    target = without_dust_holes(geoms[poly], width)
    strip = 2 * shapely.area(target) / np.maximum(shapely.length(target), 1e-300)
    plain = (shapely.get_type_id(target) == 3) & (shapely.get_num_interior_rings(target) == 0)
    sure = plain & (strip > width)
    doubt = np.flatnonzero(~sure)
    found = sure.copy()
    if len(doubt):
        g = target[doubt]
        rims = shapely.boundary(g)
        eroded = shapely.buffer(g, -width / 2, quad_segs=16)
        parts, owner = shapely.get_parts(eroded, return_index=True)
        corner = shapely.get_point(shapely.get_exterior_ring(parts), 0)
        real = shapely.contains(g[owner], corner) & (
            2 * shapely.distance(corner, rims[owner]) >= width * (1 - _NEAR)
        )
        found[doubt[np.unique(owner[real])]] = True
    out[poly] = found
    return out


def real_parts(geom: shapely.Geometry, dust: float) -> int:
    """Parts of ``geom`` wider than ``dust``."""
    parts = shapely.get_parts(geom)
    if len(parts) < 2:
        return len(parts)
    return int(wider_than(parts, dust).sum())


def compose(base, removed, added, dust: float) -> shapely.Geometry:
    """``base − removed ∪ added`` with float dust (parts narrower than ``dust``) dropped."""
    out = base
    if removed:
        out = shapely.difference(out, shapely.union_all(removed))
    if added:
        out = shapely.union_all([out, *added])
    out = polygonal(out)
    parts = shapely.get_parts(out)
    if len(parts) > 1:
        keep = wider_than(parts, dust)
        if not keep.all():
            out = shapely.union_all(parts[keep]) if keep.any() else shapely.Polygon()
    return out


def repair_level(
    geoms: np.ndarray,
    parent_of: np.ndarray,
    mothers: np.ndarray,
    coverage: Coverage,
    tol: Tolerances,
    *,
    codes: np.ndarray,
    rule: str = "longest_border",
    fill: str = "auto",
    votes: np.ndarray | None = None,
    homes: np.ndarray | None = None,
) -> tuple[list[Change], np.ndarray]:
    """The changes that repair one level against its repaired parents.

    Parameters
    ----------
    geoms:
        The level's polygons, metric; ``make_valid`` already applied.
    parent_of:
        Each polygon's parent position in ``mothers`` (-1: none: left alone).
    mothers:
        The parent level's repaired metric polygons; ``None`` for the root.
    coverage:
        The level's :class:`~gridgeo.config.Coverage` rule.
    codes:
        The level's codes (after code repairs), for ``lowest_code``.
    rule, fill:
        See :data:`RULES` and :data:`FILLS`.
    votes, homes:
        Household points (metric) and the code each is registered to at this
        level, for ``rule="households"``.

    Returns
    -------
    (changes, geoms):
        The changes, and the polygons with every change applied.
    """
    changes: list[Change] = []
    current = geoms.copy()
    if mothers is None or coverage is Coverage.ROOT:
        return changes, current
    has = parent_of >= 0
    changes += _cut(current, parent_of, mothers, has, tol)
    current = _applied(geoms, changes, tol)
    changes += _give(current, has, codes, tol, rule, votes, homes)
    current = _applied(geoms, changes, tol)
    changes += _fill(current, parent_of, mothers, has, coverage, tol, fill)
    # Refuse what would leave a polygon empty or newly in pieces, then recompose
    # (only when something was refused: composing a county costs its vertices).
    final = _applied(geoms, changes, tol)
    broken = _broken(geoms, final, changes, tol)
    for i in broken:
        _refuse_greedily(i, geoms[i], changes, tol)
    if broken:
        final = _applied(geoms, changes, tol)
        for i in _broken(geoms, final, changes, tol):  # what the fills alone break
            for c in changes:
                if not c.refused and (c.source == i or c.target == i):
                    c.refused = "would split the polygon into pieces"
    refused = sum(bool(c.refused) for c in changes)
    for c in changes:  # a change goes with the changes it needs (they come first)
        if not c.refused and any(n.refused for n in c.needs):
            c.refused = "needs a change that is refused"
    if broken or sum(bool(c.refused) for c in changes) > refused:
        final = _applied(geoms, changes, tol)
    return changes, final


def _broken(geoms, final, changes, tol) -> list[int]:
    """Polygons the changes leave empty or in more pieces than they had."""
    touched = {c.source for c in changes if not c.refused} | {
        c.target for c in changes if not c.refused and c.action in GAINS
    }
    return [
        i
        for i in sorted(touched - {-1})
        if shapely.is_empty(final[i])
        or real_parts(final[i], tol.dust) > max(real_parts(geoms[i], tol.dust), 1)
    ]


def _refuse_greedily(i: int, geom, changes: list[Change], tol: Tolerances) -> None:
    """Cut the pieces polygon ``i`` loses one at a time, smallest first, refusing each
    one that would leave it empty or in more pieces than it had."""
    allowed = max(real_parts(geom, tol.dust), 1)
    mine = [c for c in changes if not c.refused and c.source == i and c.action in LOSES]
    current = geom
    for c in sorted(mine, key=lambda c: c.area):
        trial = polygonal(shapely.difference(current, c.piece))
        if shapely.is_empty(trial):
            c.refused = "would leave the polygon empty"
        elif real_parts(trial, tol.dust) > allowed:
            c.refused = "would split the polygon into pieces"
        else:
            current = trial


def _applied(geoms: np.ndarray, changes: list[Change], tol: Tolerances) -> np.ndarray:
    """``geoms`` with every change not refused applied (:func:`compose`)."""
    out = geoms.copy()
    removed: dict[int, list] = {}
    added: dict[int, list] = {}
    for c in changes:
        if c.refused:
            continue
        if c.action in LOSES:
            removed.setdefault(c.source, []).append(c.piece)
        if c.action in GAINS:
            added.setdefault(c.target, []).append(c.piece)
    for i in set(removed) | set(added):
        out[i] = compose(geoms[i], removed.get(i, []), added.get(i, []), tol.dust)
    return out


# -- the steps --------------------------------------------------------------------
def _pieces(geoms: np.ndarray, dust: float):
    """Polygonal parts of each geometry wider than ``dust``: (pieces, owner, width)."""
    geoms = np.array([polygonal(g) for g in geoms], dtype=object)
    pieces, owner = shapely.get_parts(geoms, return_index=True)
    pieces = without_dust_holes(pieces, dust)
    width = polygon_width(pieces)
    keep = width > dust
    return pieces[keep], owner[keep], width[keep]


def _cut(geoms, parent_of, mothers, has, tol) -> list[Change]:
    """Pieces of children outside their parent."""
    idx = np.flatnonzero(has)
    shapely.prepare(mothers)
    inside = shapely.covered_by(geoms[idx], mothers[parent_of[idx]])
    idx = idx[~inside]
    if not len(idx):
        return []
    pieces, owner, width = _pieces(
        shapely.difference(geoms[idx], mothers[parent_of[idx]]), tol.dust
    )
    # Where the piece lies: it is usually some other child's, which keeps it.
    holder = np.full(len(pieces), -1)
    if len(pieces):
        hit, who = shapely.STRtree(geoms).query(pieces, predicate="intersects")
        share = shapely.area(shapely.intersection(pieces[hit], geoms[who]))
        for k, w, s in zip(hit, who, share, strict=True):
            if w != idx[owner[k]] and s > 0.5 * shapely.area(pieces[k]):
                holder[k] = w
    return [
        Change("outside_parent", "cut", "clip_to_parent", int(idx[o]), int(h), p, float(w),
               float(shapely.area(p)))
        for p, o, w, h in zip(pieces, owner, width, holder, strict=True)
    ]  # fmt: skip


def _give(geoms, has, codes, tol, rule, votes, homes) -> list[Change]:
    """Overlap pieces: one child keeps each, chosen by ``rule``, the other loses it."""
    usable = has & ~shapely.is_empty(geoms)
    idx = np.flatnonzero(usable)
    if len(idx) < 2:
        return []
    # GEOS coverage validation flags every polygon whose edges do not match its
    # neighbours'; only pairs of flagged polygons can overlap.
    edges = shapely.coverage_invalid_edges(geoms[idx])
    flagged = idx[~shapely.is_empty(edges) & ~shapely.is_missing(edges)]
    if len(flagged) < 2:
        return []
    left, right = shapely.STRtree(geoms[flagged]).query(geoms[flagged], predicate="intersects")
    keep = left < right
    a, b = flagged[left[keep]], flagged[right[keep]]
    pieces, pair, width = _pieces(shapely.intersection(geoms[a], geoms[b]), tol.dust)
    if not len(pieces):
        return []
    a, b = a[pair], b[pair]
    winner_is_a, used = _winner(pieces, a, b, geoms, codes, rule, votes, homes)
    out = []
    for k, piece in enumerate(pieces):
        keeper, loser = (a[k], b[k]) if winner_is_a[k] else (b[k], a[k])
        kind = "sliver" if width[k] < tol.sliver else "overlap"
        needs: tuple[Change, ...] = ()
        # A loser left empty or in pieces gives way to the other polygon instead;
        # when both would be, the rule's loser also hands over what the piece cuts
        # off from the rest of it (first, so the give never splits it).
        if not _keeps_shape(geoms[loser], piece, tol):
            if _keeps_shape(geoms[keeper], piece, tol):
                keeper, loser = loser, keeper
            else:
                stranded = _cut_off(loser, keeper, piece, geoms, usable, tol)
                if stranded is not None:
                    move = Change(kind, "move", "cut_off", int(loser), int(keeper), stranded,
                                  float(width[k]), float(shapely.area(stranded)),
                                  {"why": "cut off from the rest by the overlap"})  # fmt: skip
                    out.append(move)
                    needs = (move,)
        out.append(Change(kind, "give", used[k], int(loser), int(keeper), piece, float(width[k]),
                          float(shapely.area(piece)), needs=needs))  # fmt: skip
    return out


def _keeps_shape(geom, piece, tol) -> bool:
    rest = shapely.difference(geom, piece)
    return not shapely.is_empty(rest) and real_parts(rest, tol.dust) <= max(
        real_parts(geom, tol.dust), 1
    )


def _cut_off(loser, keeper, piece, geoms, usable, tol) -> shapely.Geometry | None:
    """What ``loser`` would have left beyond its parts once it loses ``piece``, outside
    every other polygon; ``None`` when nothing is, or it would leave ``loser`` empty.

    These parts touch the piece, so ``keeper``, which keeps the piece, takes them
    whole and stays in one part; only area of ``loser`` alone moves, so no new
    overlap appears.
    """
    geom = geoms[loser]
    parts = shapely.get_parts(shapely.difference(geom, piece))
    parts = parts[wider_than(parts, tol.dust)]
    allowed = max(real_parts(geom, tol.dust), 1)
    if len(parts) <= allowed:
        return None
    stranded = shapely.union_all(parts[np.argsort(-shapely.area(parts))[allowed:]])
    others = np.flatnonzero(usable)
    others = others[(others != loser) & (others != keeper)]
    hit = others[shapely.intersects(geoms[others], stranded)]
    if len(hit):
        stranded = polygonal(shapely.difference(stranded, shapely.union_all(geoms[hit])))
    return None if shapely.is_empty(stranded) else stranded


def _contact(pieces: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Length of border each piece shares with the matching other polygon."""
    grown = shapely.buffer(pieces, _EPS, quad_segs=2)
    return shapely.area(shapely.intersection(grown, others)) / _EPS


def _winner(pieces, a, b, geoms, codes, rule, votes, homes):
    """Per overlap piece: does ``a`` keep it? And the rule that decided."""
    used = np.full(len(pieces), rule, dtype=object)
    if rule == "largest_area":
        return shapely.area(geoms[a]) >= shapely.area(geoms[b]), used
    if rule == "lowest_code":
        return codes[a].astype(str) <= codes[b].astype(str), used
    rest_a = shapely.difference(geoms[a], pieces)
    rest_b = shapely.difference(geoms[b], pieces)
    border = _contact(pieces, rest_a) >= _contact(pieces, rest_b)
    if rule != "households":
        return border, used
    used[:] = "longest_border"  # where no household settles it
    if homes is None or not len(homes):
        return border, used
    hit, who = shapely.STRtree(pieces).query(homes, predicate="within")
    out = border.copy()
    for k in np.unique(who):
        registered = votes[hit[who == k]]
        n_a = int((registered == codes[a[k]]).sum())
        n_b = int((registered == codes[b[k]]).sum())
        if n_a != n_b:
            out[k] = n_a > n_b
            used[k] = "households"
    return out, used


def _fill(geoms, parent_of, mothers, has, coverage, tol, fill) -> list[Change]:
    """Parent area no child covers, given to the children along it."""
    order = np.flatnonzero(has)
    order = order[np.argsort(parent_of[order], kind="stable")]
    keys, starts = np.unique(parent_of[order], return_index=True)
    groups = dict(zip(keys.tolist(), np.split(order, starts[1:]) if len(keys) else [], strict=True))
    wanted = range(len(mothers)) if coverage is Coverage.FULL else keys.tolist()
    area = shapely.area(geoms)
    todo, unions = [], []
    for k in wanted:
        members = groups.get(k, np.empty(0, dtype=int))
        if not len(members):
            continue  # nothing to give a parent with no child at all
        # Children inside their parent (cut above) that add up to it leave no gap.
        if abs(area[members].sum() - shapely.area(mothers[k])) < tol.dust**2:
            continue
        todo.append(k)
        unions.append(_union(geoms[members]))
    if not todo:
        return []
    pieces, owner, width = _pieces(
        shapely.difference(mothers[np.array(todo)], np.array(unions, dtype=object)), tol.dust
    )
    if not len(pieces):
        return []
    parent = np.array(todo)[owner]
    # The children along each piece, and how long a border each shares with it.
    pi, ci, contact = contact_lengths(pieces, geoms, _EPS)
    mine = has[ci] & (parent_of[ci] == parent[pi])
    pi, ci, contact = pi[mine], ci[mine], contact[mine]
    touch = contact > 0
    pi, ci, contact = pi[touch], ci[touch], contact[touch]
    out = []
    for k, piece in enumerate(pieces):
        along = pi == k
        kids, length = ci[along], contact[along]
        if not len(kids):
            continue  # an enclave no child touches: nobody to give it to
        # Children along the piece; a speck shorter than _EPS everywhere (a few
        # centimetres where a repaired edge meets the parent's) goes to the
        # child it touches most.
        along = length > _EPS
        if not along.any():
            along = length == length.max()
        kids, length = kids[along], length[along]
        kind = "sliver" if width[k] < tol.sliver else "gap"
        split = len(kids) > 1 and (fill == "split" or (fill == "auto" and kind == "gap"))
        params = {"neighbours": len(kids)}
        if not split:
            best = int(kids[np.argmax(length)])
            out.append(Change(kind, "fill", "longest_border", -1, best, piece, float(width[k]),
                              float(shapely.area(piece)), params))  # fmt: skip
            continue
        for who, part in _split(piece, width[k], kids, length, geoms, tol):
            out.append(Change(kind, "fill", "split", -1, int(who), part, float(width[k]),
                              float(shapely.area(part)), params))  # fmt: skip
    return out


def _union(geoms: np.ndarray):
    """Union of children: as a coverage (fast) when their edges match, else the overlay."""
    if len(geoms) > 1:
        edges = shapely.coverage_invalid_edges(geoms)
        if (shapely.is_empty(edges) | shapely.is_missing(edges)).all():
            return shapely.coverage_union_all(geoms)
    return shapely.union_all(geoms)


def _split(piece, width, kids, length, geoms, tol) -> list[tuple[int, shapely.Geometry]]:
    """``piece`` split among ``kids`` along it: each place to the nearest child.

    Points along the piece's rim, every ``width / 20``, are labelled by the
    child nearest each, as ``maup.smart_repair`` labels its Voronoi sites;
    the line dividing the regions nearest each child is the set of Voronoi
    edges between differently labelled points. They are read straight off
    GEOS's Delaunay triangulation of the points (:func:`_voronoi_cuts`)
    instead of building every cell and merging them. Simplified by half a
    step, these dividing lines and the piece's own rim bound the shares (so
    the rim keeps its own vertices); each share goes to the child nearest it.
    Points a hair (1 cm) either side of each place where the rim passes from
    one child to the next make a line start there. A part touching nobody's
    polygon goes to the longest border instead.

    Written here: GEOS triangulates, but neither it nor any library returns
    only the Voronoi edges between labelled groups of sites.
    """
    fallback = int(kids[np.argmax(length)])
    # Only the children's parts near the piece matter: a rectangle clip is linear.
    x0, y0, x1, y1 = shapely.bounds(piece)
    near = shapely.clip_by_rect(geoms[kids], x0 - 1.0, y0 - 1.0, x1 + 1.0, y1 + 1.0)
    # Rim points every width / 20: the dividing line stays within step² / (4 width)
    # of the true one.
    step = max(max(width, tol.dust) / 20, float(shapely.length(piece)) / _RIM_POINTS, 0.25)
    xy, nearest = _rim_points(_with_junctions(piece, near), near, step)
    present = np.unique(nearest)
    if len(present) < 2:
        return [(fallback, piece)]
    triangles = shapely.get_parts(shapely.delaunay_triangles(shapely.multipoints(xy)))
    corner = shapely.get_coordinates(triangles).reshape(len(triangles), 4, 2)[:, :3]
    # Each corner is one of the points: find its label by exact position.
    order = np.lexsort((xy[:, 1], xy[:, 0]))
    flat = corner.reshape(-1, 2)
    keys = np.lexsort((flat[:, 1], flat[:, 0]))
    at = np.empty(len(flat), dtype=np.int64)
    at[keys] = order[np.searchsorted(_rank(xy[order]), _rank(flat[keys]))]
    reach = float(np.hypot(x1 - x0, y1 - y0)) + 1.0
    cuts = _voronoi_cuts(corner, at.reshape(-1, 3), nearest[at].reshape(-1, 3), reach)
    # The cuts join into dividing lines; simplified by half a step, they and
    # the piece's own rim (its own vertices) bound the shares.
    lines = shapely.simplify(shapely.line_merge(shapely.multilinestrings(cuts)), step / 2)
    cut = shapely.multilinestrings(_reaching(lines, step))
    edges = shapely.get_parts(shapely.union(shapely.boundary(piece), cut))
    faces = shapely.get_parts(shapely.polygonize(edges))
    inner = shapely.point_on_surface(faces)
    faces, inner = faces[shapely.contains(piece, inner)], inner[shapely.contains(piece, inner)]
    owner = _nearest(inner, near)
    present = np.unique(owner)
    shares = np.array([shapely.union_all(faces[owner == j]) for j in present])
    frags, which = shapely.get_parts(shares, return_index=True)
    grown = shapely.buffer(frags, _EPS, quad_segs=1)
    touches = shapely.area(shapely.intersection(grown, near[present[which]])) > _EPS * _EPS
    # Give every fragment to a child it touches; the longest border takes the rest.
    who = np.where(touches, kids[present[which]], fallback)
    out: list[tuple[int, shapely.Geometry]] = []
    for k in np.unique(who):
        mine = frags[who == k]
        merged = mine[0] if len(mine) == 1 else polygonal(shapely.union_all(mine))
        if not shapely.is_empty(merged):
            out.append((int(k), merged))
    return out


def _reaching(lines, reach: float) -> np.ndarray:
    """The parts of ``lines`` with each loose end pushed ``reach`` further on.

    A dividing line ends at the middle of a rim segment, on the rim only to
    within rounding; pushed across it, the overlay cannot miss the crossing.
    Ends shared by two lines (where three children meet) stay.
    """
    parts = shapely.get_parts(lines)
    xy, owner = shapely.get_coordinates(parts, return_index=True)
    first = np.r_[0, np.flatnonzero(owner[1:] != owner[:-1]) + 1]
    last = np.r_[first[1:] - 1, len(xy) - 1]
    ends = np.r_[first, last]
    _, where, count = np.unique(xy[ends], axis=0, return_inverse=True, return_counts=True)
    loose = ends[count[where.ravel()] == 1]
    inward = np.where(np.isin(loose, first), loose + 1, loose - 1)
    step = xy[loose] - xy[inward]
    size = np.hypot(*step.T)
    ok = size > 0
    xy[loose[ok]] += step[ok] * (reach / size[ok])[:, None]
    return shapely.linestrings(xy, indices=owner)


def _within(point: np.ndarray, middle: np.ndarray, reach: float) -> np.ndarray:
    """``point`` moved towards ``middle`` (along their line) to at most ``reach`` from it.

    The circumcentre of three nearly collinear rim points lies kilometres
    off; it stays on its edge's bisector, just no further than the piece needs.
    """
    offset = point - middle
    size = np.hypot(*offset.T)
    scale = np.where(size > reach, reach / np.maximum(size, 1e-300), 1.0)
    return middle + offset * scale[:, None]


def _rim_points(piece, near: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step`` along ``piece``'s rim, each with the position in ``near`` nearest it.

    A rim segment lies along one child (the overlay cut it at every vertex),
    so its middle's label is every point's on it; only the points of segments
    along no child, or several (an inlet's mouth, a junction), are measured
    one by one. The points are cut in numpy, without a geometry each.
    """
    rings = shapely.get_rings(piece)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    seg = np.flatnonzero(ring[1:] == ring[:-1])
    a, b = xy[seg], xy[seg + 1]
    pieces = np.maximum(np.ceil(np.hypot(*(b - a).T) / step), 1).astype(np.int64)
    owner = np.repeat(np.arange(len(seg)), pieces)
    k = np.arange(len(owner)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    points = a[owner] + (b - a)[owner] * (k / pieces[owner])[:, None]
    middle = shapely.points((a + b) / 2)
    hold, hit = shapely.STRtree(middle).query(near, predicate="dwithin", distance=_EPS)
    count = np.bincount(hit, minlength=len(seg))
    label = np.full(len(seg), -1, dtype=np.int64)
    label[hit[count[hit] == 1]] = hold[count[hit] == 1]
    out = label[owner]
    doubt = np.flatnonzero(out < 0)
    if len(doubt):
        out[doubt] = _nearest(shapely.points(points[doubt]), near)
    return points, out


def _nearest(points: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Position in ``near`` of the geometry nearest each point.

    Rim points lie on a child's edge: one prepared query finds the children
    within a hair of each, and only points on none or several are measured
    against every child.
    """
    hold, hit = shapely.STRtree(points).query(near, predicate="dwithin", distance=_EPS)
    count = np.bincount(hit, minlength=len(points))
    out = np.zeros(len(points), dtype=np.int64)
    out[hit[count[hit] == 1]] = hold[count[hit] == 1]
    doubt = np.flatnonzero(count != 1)
    if len(doubt):
        out[doubt] = np.argmin(shapely.distance(points[doubt][None, :], near[:, None]), axis=0)
    return out


def _rank(xy: np.ndarray) -> np.ndarray:
    """Rows of ``xy`` (sorted by x, then y) as one sortable complex key each."""
    return xy[:, 0] + 1j * xy[:, 1]


def _with_junctions(piece, near: np.ndarray, hair: float = 0.01):
    """``piece`` with a vertex ``hair`` either side of each rim vertex on two or more of ``near``."""
    count = shapely.get_num_interior_rings(piece)
    rings = [shapely.get_exterior_ring(piece)]
    rings += [shapely.get_interior_ring(piece, k) for k in range(count)]
    out, changed = [], False
    for ring in rings:
        xy = shapely.get_coordinates(ring)[:-1]
        on = shapely.distance(shapely.points(xy)[None, :], near[:, None]) <= _EPS
        junction = on.sum(axis=0) > 1
        if not junction.any():
            out.append(xy)
            continue
        changed = True
        before, after = np.roll(xy, 1, axis=0), np.roll(xy, -1, axis=0)
        rows: list[np.ndarray] = []
        for k, point in enumerate(xy):
            if junction[k]:
                rows += _towards(point, before[k], hair)
            rows.append(point)
            if junction[k]:
                rows += _towards(point, after[k], hair)
        out.append(np.array(rows))
    return shapely.Polygon(out[0], out[1:]) if changed else piece


def _towards(point: np.ndarray, other: np.ndarray, hair: float) -> list[np.ndarray]:
    """The point ``hair`` from ``point`` towards ``other`` (none on a short segment)."""
    gap = float(np.hypot(*(other - point)))
    return [point + (other - point) * (hair / gap)] if gap > 3 * hair else []


def _voronoi_cuts(corner: np.ndarray, vertex: np.ndarray, label: np.ndarray, reach: float):
    """The Voronoi edges between differently labelled points, from their Delaunay triangles.

    ``corner`` (T × 3 × 2) are the triangles, ``vertex`` (T × 3) the point
    each corner is, ``label`` (T × 3) its child. The Voronoi edge dual to a
    Delaunay edge joining two labels runs between the circumcentres of the two
    triangles sharing it (from the one triangle outwards, ``reach`` far, on the
    hull): together they are the line dividing the regions nearest each
    child — the merged cells' border, without building the cells.
    """
    origin = corner.reshape(-1, 2).mean(axis=0)
    a, b, c = (corner[:, k] - origin for k in range(3))
    d = 2 * (a[:, 0] * (b[:, 1] - c[:, 1]) + b[:, 0] * (c[:, 1] - a[:, 1])
             + c[:, 0] * (a[:, 1] - b[:, 1]))  # fmt: skip
    sa, sb, sc = (np.einsum("ij,ij->i", p, p) for p in (a, b, c))
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = (
            np.c_[
                sa * (b[:, 1] - c[:, 1]) + sb * (c[:, 1] - a[:, 1]) + sc * (a[:, 1] - b[:, 1]),
                sa * (c[:, 0] - b[:, 0]) + sb * (a[:, 0] - c[:, 0]) + sc * (b[:, 0] - a[:, 0]),
            ]
            / d[:, None]
            + origin
        )
    flat = ~np.isfinite(centre).all(axis=1)  # collinear corners: use the centroid
    centre[flat] = corner[flat].mean(axis=1)
    # Every edge joining two labels, once per triangle: (triangle, k) for edge k -> k + 1.
    tri, k = np.nonzero(label != np.roll(label, -1, axis=1))
    ends = np.sort(np.c_[vertex[tri, k], vertex[tri, (k + 1) % 3]], axis=1)
    order = np.lexsort((ends[:, 1], ends[:, 0]))
    tri, k, ends = tri[order], k[order], ends[order]
    pair = np.r_[(ends[1:] == ends[:-1]).all(axis=1), False]
    first = np.flatnonzero(pair)
    t, e = tri[first], k[first]
    middle = (corner[t, e] + corner[t, (e + 1) % 3]) / 2
    inner = np.stack([_within(centre[t], middle, reach),
                      _within(centre[tri[first + 1]], middle, reach)], axis=1)  # fmt: skip
    lone = np.ones(len(tri), dtype=bool)
    lone[first] = lone[first + 1] = False
    t, e = tri[lone], k[lone]
    p, q = corner[t, e], corner[t, (e + 1) % 3]
    w = corner[t, (e + 2) % 3]
    normal = np.c_[q[:, 1] - p[:, 1], p[:, 0] - q[:, 0]]
    middle = (p + q) / 2
    normal *= np.where(np.einsum("ij,ij->i", normal, middle - w) < 0, -1.0, 1.0)[:, None]
    normal /= np.maximum(np.hypot(*normal.T), 1e-300)[:, None]
    outer = np.stack([_within(centre[t], middle, reach), middle + normal * reach], axis=1)
    segments = np.concatenate([inner, outer])
    keep = (segments[:, 0] != segments[:, 1]).any(axis=1)
    return shapely.linestrings(segments[keep])
