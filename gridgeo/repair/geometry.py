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
   border, or split among them along the gap, each place to the nearest
   (:func:`gridgeo.repair.split.split_pieces`).

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
``coverage_union_all``, ``constrained_delaunay_triangles``, ``polygonize``),
vectorised over pieces.

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
from gridgeo.parallel import chunked, each, started
from gridgeo.repair.split import split_pieces

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
_OVERLAYS = 3  # overlays of whole polygons (a county each) go to both cores from this many
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
        out = shapely.difference(out, _together(removed))
    if added:
        out = shapely.union(out, _together(added))
    out = polygonal(out)
    parts = shapely.get_parts(out)
    if len(parts) > 1:
        keep = wider_than(parts, dust)
        if not keep.all():
            out = shapely.union_all(parts[keep]) if keep.any() else shapely.Polygon()
    return out


def _together(pieces: list) -> shapely.Geometry:
    """The pieces as one geometry: a MultiPolygon where they do not overlap (no
    overlay: the pieces of one polygon's changes rarely do), else their union."""
    parts = shapely.get_parts(np.asarray(pieces, dtype=object))
    if len(parts) == 1:
        return parts[0]
    multi = shapely.multipolygons(parts)
    return multi if shapely.is_valid(multi) else shapely.union_all(parts)


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
    groups = _members(parent_of, has)
    # The gap step needs each parent less the union of its children. A cut takes
    # only what lies outside the parent and a give moves area between children,
    # so inside the parent that union is the children's as they come (dust
    # aside): worked out on a core of its own beside the cut and overlap steps.
    early = started(_unions, geoms, groups, mothers, tol)
    # Each step's changes are applied to the polygons the step before left.
    changes += _cut(current, parent_of, mothers, has, tol)
    current = _applied(geoms, changes, tol)
    done = len(changes)
    changes += _give(current, has, codes, tol, rule, votes, homes)
    current = _applied(current, changes[done:], tol)
    done = len(changes)
    changes += _fill(current, parent_of, mothers, has, coverage, tol, fill, groups, early)
    # Refuse what would leave a polygon empty or newly in pieces, then recompose
    # from the start (only when something was refused: composing a county
    # costs its vertices).
    final = _applied(current, changes[done:], tol)
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
    touched = sorted(set(removed) | set(added))
    composed = each(lambda i: compose(geoms[i], removed.get(i, []), added.get(i, []), tol.dust),
                    touched)  # fmt: skip
    for i, geom in zip(touched, composed, strict=True):
        out[i] = geom
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
        chunked(shapely.difference, geoms[idx], mothers[parent_of[idx]], min_chunk=_OVERLAYS),
        tol.dust,
    )
    # Where the piece lies: it is usually some other child's, which keeps it.
    holder = np.full(len(pieces), -1)
    if len(pieces):
        hit, who = shapely.STRtree(geoms).query(pieces, predicate="intersects")
        other = who != idx[owner[hit]]  # the piece's own polygon holds all of it
        hit, who = hit[other], who[other]
        share = shapely.area(shapely.intersection(pieces[hit], geoms[who]))
        for k, w, s in zip(hit, who, share, strict=True):
            if s > 0.5 * shapely.area(pieces[k]):
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
    both = chunked(shapely.intersection, geoms[a], geoms[b], min_chunk=_OVERLAYS)
    pieces, pair, width = _pieces(both, tol.dust)
    if not len(pieces):
        return []
    a, b = a[pair], b[pair]
    winner_is_a, used = _winner(pieces, a, b, geoms, codes, rule, votes, homes)
    # Most losers keep their shape, as seen near the piece: all judged at once.
    fine = _keeps_shape_near(geoms[np.where(winner_is_a, b, a)], pieces, tol)
    out = []
    for k, piece in enumerate(pieces):
        keeper, loser = (a[k], b[k]) if winner_is_a[k] else (b[k], a[k])
        kind = "sliver" if width[k] < tol.sliver else "overlap"
        needs: tuple[Change, ...] = ()
        # A loser left empty or in pieces gives way to the other polygon instead;
        # when both would be, the rule's loser also hands over what the piece cuts
        # off from the rest of it (first, so the give never splits it).
        if not fine[k] and not _keeps_shape(geoms[loser], piece, tol):
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


def _keeps_shape_near(geoms: np.ndarray, pieces: np.ndarray, tol) -> np.ndarray:
    """Per pair: is each polygon, less its piece, surely still one part (seen near the piece)?

    An overlay of a county costs its vertices: each polygon is cut to a box a
    little larger than its piece instead. If that, less the piece, is one
    polygon, the whole is too (the piece does not reach the box's edge, where
    the rest of the polygon joins). ``False`` means "look at the whole".
    """
    margin = 2 * max(tol.dust, 1.0)
    box = shapely.bounds(pieces) + np.array([-margin, -margin, margin, margin])
    # GEOS's rectangle clip is a few times faster than an overlay with the box
    # (shapely takes one rectangle per call).
    local = np.empty(len(geoms), dtype=object)
    local[:] = [shapely.clip_by_rect(g, *b) for g, b in zip(geoms, box.tolist(), strict=True)]
    near = chunked(shapely.difference, local, pieces, min_chunk=100)
    return (shapely.get_type_id(near) == 3) & ~shapely.is_empty(near)


def _keeps_shape(geom, piece, tol) -> bool:
    """Is ``geom`` without ``piece`` still not empty, and in no more parts?

    Looked at near the piece first (:func:`_keeps_shape_near`), then whole.
    """
    if _keeps_shape_near(np.array([geom]), np.array([piece]), tol)[0]:
        return True
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
    """Length of border each piece shares with the matching other polygon: the area
    of the piece grown by ``_EPS`` inside it, over ``_EPS``.

    Unlike summing the rim segments along it, a stretch is counted once even
    where a hair-thin spur of the piece runs along it on both sides.
    """
    grown = shapely.buffer(pieces, _EPS, quad_segs=2)
    return shapely.area(shapely.intersection(grown, others)) / _EPS


def _along_rest(pieces: np.ndarray, a: np.ndarray, b: np.ndarray, geoms: np.ndarray):
    """How long a border each overlap piece of ``a`` and ``b`` shares with the rest of each.

    Each segment of a piece's rim borders whatever lies just outside it: a
    point ``_EPS`` out from its middle (rims oriented, the outside on the
    right) is looked up in ``a`` and ``b`` (one prepared query per polygon,
    no overlay). A hair-thin spur of the piece counts for the polygon on
    each side of it, as the overlay did.
    """
    rings, owner = shapely.get_rings(shapely.orient_polygons(pieces), return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    seg = np.flatnonzero(ring[1:] == ring[:-1])
    d = xy[seg + 1] - xy[seg]
    length = np.hypot(*d.T)
    right = np.c_[d[:, 1], -d[:, 0]] / np.maximum(length, 1e-300)[:, None]
    probe = shapely.points((xy[seg] + xy[seg + 1]) / 2 + right * _EPS)
    piece_of = owner[ring[seg]]
    used = np.unique(np.r_[a, b])
    gi, si = shapely.STRtree(probe).query(geoms[used], predicate="contains")
    who = used[gi]
    rest_a, rest_b = np.zeros(len(pieces)), np.zeros(len(pieces))
    k = piece_of[si]
    np.add.at(rest_a, k[who == a[k]], length[si][who == a[k]])
    np.add.at(rest_b, k[who == b[k]], length[si][who == b[k]])
    return rest_a, rest_b


def _winner(pieces, a, b, geoms, codes, rule, votes, homes):
    """Per overlap piece: does ``a`` keep it? And the rule that decided."""
    used = np.full(len(pieces), rule, dtype=object)
    if rule == "largest_area":
        return shapely.area(geoms[a]) >= shapely.area(geoms[b]), used
    if rule == "lowest_code":
        return codes[a].astype(str) <= codes[b].astype(str), used
    rest_a, rest_b = _along_rest(pieces, a, b, geoms)
    border = rest_a >= rest_b
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


def _fill(geoms, parent_of, mothers, has, coverage, tol, fill, groups, early) -> list[Change]:
    """Parent area no child covers, given to the children along it.

    ``groups``: each parent's children (:func:`_members`); ``early``: a future
    of :func:`_unions`, each parent's children's union as they came.
    """
    wanted = range(len(mothers)) if coverage is Coverage.FULL else list(groups)
    area = shapely.area(geoms)
    todo = []
    for k in wanted:
        members = groups.get(k, np.empty(0, dtype=int))
        if not len(members):
            continue  # nothing to give a parent with no child at all
        # Children inside their parent (cut above) that add up to it leave no gap.
        if _adds_up(area[members], mothers[k], tol):
            continue
        todo.append(k)
    union_of = early.result()  # (a parent its children added up to before: now)
    unions = [union_of[k] if k in union_of else _union(geoms[groups[k]]) for k in todo]
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
    out: dict[int, list[Change]] = {}  # per piece, in the pieces' order
    splits: list[tuple[int, np.ndarray, int, dict]] = []
    order = np.argsort(pi, kind="stable")  # each piece's children, in one pass
    bounds = np.searchsorted(pi[order], np.arange(len(pieces) + 1))
    for k, piece in enumerate(pieces):
        along = order[bounds[k] : bounds[k + 1]]
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
        if split:
            splits.append((k, kids, int(kids[np.argmax(length)]), params))
            continue
        if len(kids) > 1:  # who takes it whole: the border measured as the overlay does
            length = _contact(np.full(len(kids), piece, dtype=object), geoms[kids])
        best = int(kids[np.argmax(length)])
        out[k] = [Change(kind, "fill", "longest_border", -1, best, piece, float(width[k]),
                         float(shapely.area(piece)), params)]  # fmt: skip
    if splits:
        which = np.array([k for k, *_ in splits])
        kids_of = np.empty(len(splits), dtype=object)
        kids_of[:] = [kids for _, kids, *_ in splits]
        best_of = np.array([best for _, _, best, _ in splits])

        def split(part: np.ndarray, kids: np.ndarray, best: np.ndarray) -> np.ndarray:
            got = np.empty(len(part), dtype=object)
            got[:] = split_pieces(part, list(kids), best, geoms, _EPS)
            return got

        # Pieces are split independently of each other: on every core.
        shares = chunked(split, pieces[which], kids_of, best_of, min_chunk=50)
        for (k, _, _, params), parts in zip(splits, shares, strict=True):
            kind = "sliver" if width[k] < tol.sliver else "gap"
            out[k] = [Change(kind, "fill", "split", -1, int(who), part, float(width[k]),
                             float(shapely.area(part)), params) for who, part in parts]  # fmt: skip
    return [c for k in sorted(out) for c in out[k]]


def _members(parent_of: np.ndarray, has: np.ndarray) -> dict[int, np.ndarray]:
    """Each parent's children: positions, by parent position."""
    order = np.flatnonzero(has)
    order = order[np.argsort(parent_of[order], kind="stable")]
    keys, starts = np.unique(parent_of[order], return_index=True)
    return dict(zip(keys.tolist(), np.split(order, starts[1:]) if len(keys) else [], strict=True))


def _unions(geoms, groups: dict[int, np.ndarray], mothers, tol) -> dict[int, shapely.Geometry]:
    """The union of each parent's children, where they do not add up to the parent."""
    area = shapely.area(geoms)
    return {k: _union(geoms[members]) for k, members in groups.items()
            if not _adds_up(area[members], mothers[k], tol)}  # fmt: skip


def _adds_up(areas: np.ndarray, mother, tol) -> bool:
    """Do children of these areas add up to their parent's (within dust²)?"""
    return abs(areas.sum() - shapely.area(mother)) < tol.dust**2


def _union(geoms: np.ndarray):
    """Union of children: as a coverage (fast) when their edges match, else the overlay."""
    if len(geoms) > 1:
        edges = shapely.coverage_invalid_edges(geoms)
        if (shapely.is_empty(edges) | shapely.is_missing(edges)).all():
            return shapely.coverage_union_all(geoms)
    return shapely.union_all(geoms)
