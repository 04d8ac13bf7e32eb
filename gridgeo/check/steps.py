"""The steps every check shares, on plain arrays of geometry.

Each step takes the polygons of one layer (by position) and returns
:class:`Finding` values naming polygons by their *positions*; the fronts
(:mod:`gridgeo.check.system`, :mod:`gridgeo.check.layer`) turn positions into
codes or ids. One implementation of each rule, whichever front calls it.

Granularity: every area finding — gap, overlap, sliver, outside_parent — is
one *connected piece*, named by the polygons that border (gap) or make (the
others) it. A piece is one place to fix, with one width that means
something; a pair of polygons can touch in several places, and a parent can
have several gaps. :meth:`gridgeo.check.CheckReport.borders` adds the pieces
up per shared border.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import pandas as pd
import shapely

from gridgeo.check.faces import arrangement
from gridgeo.config import Coverage, Tolerances
from gridgeo.crs import CHINA_BOUNDS, gcj02_to_wgs84, transformer, wgs84_to_gcj02
from gridgeo.defects import polygon_width
from gridgeo.parallel import started

POLYGONAL = (3, 6)  # shapely type ids of Polygon and MultiPolygon
_LOCATION = re.compile(r"\[\s*([-+\d.eE]+)\s+([-+\d.eE]+)")
_EMPTY = np.empty(0, dtype=int)


class Finding(NamedTuple):
    """One finding about the polygons at positions ``members``.

    ``owner`` names the parent when no polygon borders a gap (a parent with no
    child at all); ``width_m`` is NaN when the defect table should measure it.
    """

    kind: str
    members: np.ndarray
    geometry: shapely.Geometry
    detail: str = ""
    width_m: float = float("nan")
    owner: str | None = None


class Repaired(NamedTuple):
    """A layer's geometry repaired and projected, with what the repair found."""

    geoms: np.ndarray  # metric, polygonal where ``usable``
    usable: np.ndarray  # polygons that can be measured
    findings: list[Finding]


class Topology(NamedTuple):
    """What the topology steps found, and the pieces a GCJ-02 hint weighs."""

    findings: list[Finding]
    gaps: np.ndarray  # gap pieces (metric)
    outside: np.ndarray  # pieces of polygons outside their parent (metric)


def repair(geoms: np.ndarray, project, tol: Tolerances) -> Repaired:
    """Report empty, non-polygon and invalid geometry; return a repaired metric copy.

    Validity is judged where the user drew the data (the storage CRS); all
    measuring happens on the repaired copy in the metric CRS.
    """
    geoms = np.asarray(geoms, dtype=object)
    out: list[Finding] = []
    repaired = geoms.copy()
    type_id = shapely.get_type_id(geoms)
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    out += [Finding("empty_geometry", _one(i), shapely.GeometryCollection(), width_m=0.0)
            for i in np.flatnonzero(empty)]  # fmt: skip
    not_poly = ~empty & ~np.isin(type_id, POLYGONAL)
    out += [
        Finding("not_polygon", _one(i), project(shapely.point_on_surface(geoms[i])),
                geoms[i].geom_type, width_m=0.0)
        for i in np.flatnonzero(not_poly)
    ]  # fmt: skip
    usable = ~empty & ~not_poly
    invalid = np.zeros(len(geoms), dtype=bool)
    invalid[usable] = ~shapely.is_valid(geoms[usable])
    for i in np.flatnonzero(invalid):  # invalid rows are few; GEOS reasons are per row
        reason = shapely.is_valid_reason(geoms[i])
        match = _LOCATION.search(reason)
        point = shapely.Point(float(match[1]), float(match[2])) if match else None
        point = point or shapely.point_on_surface(geoms[i])
        out.append(Finding("invalid_geometry", _one(i), project(point), reason, width_m=0.0))
        fixed = polygonal(shapely.make_valid(geoms[i]))
        # Holes the repair opened (a ring crossing itself) are not the user's gaps.
        new_holes = project(shapely.difference(interiors(fixed), interiors(geoms[i])))
        if polygon_width(np.array([new_holes]))[0] > tol.dust:
            out.append(Finding("repair_hole", _one(i), new_holes))
            fixed = shapely.union(fixed, interiors(fixed))
        repaired[i] = fixed
    repaired[usable] = project(repaired[usable])
    # Projection can fold nanometre-scale kinks of valid data; mend them silently.
    folded = np.flatnonzero(usable & ~shapely.is_valid(np.where(usable, repaired, None)))
    repaired[folded] = [polygonal(shapely.make_valid(g)) for g in repaired[folded]]
    usable &= ~shapely.is_empty(np.where(usable, repaired, shapely.Polygon()))
    repaired[~usable] = shapely.Polygon()
    return Repaired(repaired, usable, out)


def topology(
    repaired: np.ndarray,
    usable: np.ndarray,
    tol: Tolerances,
    *,
    parents: np.ndarray | None = None,
    parent: pd.Series | None = None,
    coverage: Coverage = Coverage.FULL,
    quiet: np.ndarray | None = None,
    holes: bool = False,
) -> Topology:
    """Overlaps, gaps, outside-parent pieces, multiparts, islands, edge mismatches.

    Parameters
    ----------
    repaired, usable:
        From :func:`repair`.
    parents, parent:
        Each polygon's parent key, and the parents' metric geometry by key;
        gaps are the parent area its children leave uncovered (so gaps open to
        the parent's edge are found). Without them, gaps are not looked for
        unless ``holes``.
    coverage:
        ``FULL``: every parent must be covered; ``REFINED``: only parents with
        children; ``ROOT``: no gaps and no islands.
    quiet:
        Polygons not to call islands (orphans, already reported).
    holes:
        Report the holes of the layer's union as gaps (a plain layer).
    """
    if usable.sum() > 1:
        tree = shapely.STRtree(repaired)
        left, right = tree.query(repaired, predicate="intersects")
        keep = (left < right) & usable[left] & usable[right]
        left, right = left[keep], right[keep]
    else:
        left = right = _EMPTY
    plain = holes and (parents is None or parent is None)
    # GEOS coverage validation runs beside the plain layer's arrangement (it
    # only names the edge mismatches at the end); the other paths need it first.
    validation = started(_invalid_edges, repaired, usable)
    if not plain:
        edges = validation.result()
        flagged = ~shapely.is_empty(edges) & ~shapely.is_missing(edges)
    out: list[Finding] = []
    gaps = outside = np.empty(0, dtype=object)
    if plain:
        # A plain layer: one arrangement of its mismatched linework gives the
        # holes of its union and its overlaps at once (see faces.py).
        faces = arrangement(repaired)
        # One width call for both kinds of piece keeps both cores busy longer.
        gaps = np.array([polygonal(g) for g in faces.gaps], dtype=object)
        touching = started(contact_lengths, gaps, repaired)
        width = polygon_width(np.r_[gaps, faces.overlaps])
        out += _overlap_findings(faces.overlaps, faces.makers, tol, width[len(gaps) :])
        key = np.full(len(gaps), "", dtype=object)
        nobody = np.full(len(repaired), "", dtype=object)
        gap_list = _name_gaps(gaps, key, repaired, usable, nobody, tol,
                              width=width[: len(gaps)], touching=touching)  # fmt: skip
        out += gap_list
        gaps = np.array([f.geometry for f in gap_list], dtype=object)
    else:
        out += _overlaps(repaired, flagged, left, right, tol)
    if parents is not None and parent is not None and coverage is not Coverage.ROOT:
        outs, inside = _outside(repaired, usable, parents, parent, tol)
        gap_list = _gaps(repaired, usable & ~flagged, usable & inside, parents, parent,
                         coverage, tol)  # fmt: skip
        out += gap_list + outs
        gaps = np.array([f.geometry for f in gap_list], dtype=object)
        outside = np.array([f.geometry for f in outs], dtype=object)
    if plain:
        edges = validation.result()
        flagged = ~shapely.is_empty(edges) & ~shapely.is_missing(edges)
    found = [f.geometry for f in out]
    out += _multipart(repaired, usable, tol)
    if coverage is not Coverage.ROOT:
        out += _islands(repaired, usable, left, right, quiet)
    out += _edge_mismatch(repaired, edges, flagged, found, tol)
    return Topology(out, gaps, outside)


# -- the steps ---------------------------------------------------------------------
def _invalid_edges(repaired, usable) -> np.ndarray:
    """GEOS coverage validation: edges that do not match their neighbour's."""
    edges = np.full(len(repaired), None, dtype=object)
    if usable.sum() > 1:
        edges[usable] = shapely.coverage_invalid_edges(repaired[usable])
    return edges


def _overlaps(repaired, flagged, left, right, tol) -> list[Finding]:
    """Overlap pieces; only pairs GEOS coverage validation flags are intersected."""
    pick = flagged[left] & flagged[right]
    a, b = left[pick], right[pick]
    if not len(a):
        return []
    inter = np.array([polygonal(g) for g in shapely.intersection(repaired[a], repaired[b])])
    pieces, pair = shapely.get_parts(inter, return_index=True)
    return _overlap_findings(pieces, list(np.c_[a[pair], b[pair]]), tol)


def _overlap_findings(pieces, makers, tol, width=None) -> list[Finding]:
    """Overlap (or, narrower than the sliver tolerance, sliver) findings; dust is dropped."""
    width = polygon_width(pieces) if width is None else width
    out = []
    for k in np.flatnonzero(width > tol.dust):
        sliver = width[k] < tol.sliver
        out.append(
            Finding("sliver" if sliver else "overlap", np.asarray(makers[k]), pieces[k],
                    "overlap 重叠" if sliver else "", width[k])
        )  # fmt: skip
    return out


def _gaps(repaired, matched, inside, parents, parent, coverage, tol) -> list[Finding]:
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
    wanted = parent.index if coverage is Coverage.FULL else keys
    groups = [members.get(code, _EMPTY) for code in wanted]
    mothers = parent.reindex(wanted).to_numpy()
    area = shapely.area(repaired)
    todo = np.array(
        [
            not (len(g) and inside[g].all() and abs(area[g].sum() - m.area) < tol.dust**2)
            for g, m in zip(groups, mothers, strict=True)
        ],
        dtype=bool,
    )
    if not todo.any():
        return []
    unions = np.array(
        [union(repaired[g], matched[g]) for g, t in zip(groups, todo, strict=True) if t],
        dtype=object,
    )
    wanted = np.asarray(wanted)[todo]
    pieces, owner = shapely.get_parts(shapely.difference(mothers[todo], unions), return_index=True)
    return _name_gaps(pieces, wanted[owner], repaired, usable, parents, tol)


def _name_gaps(
    pieces, owner_key, repaired, usable, parents, tol, *, width=None, touching=None
) -> list[Finding]:
    """Gap and sliver findings for gap ``pieces``, named by the children along their edge.

    ``width`` (the pieces' widths) and ``touching`` (a started :func:`contact_lengths`
    of the pieces) may come from the caller.
    """
    pieces = np.array([polygonal(g) for g in pieces], dtype=object)
    # Which children border each piece (contact length along the piece's edge),
    # measured beside the widths; dust pieces are dropped from both after.
    if touching is None:
        touching = started(contact_lengths, pieces, repaired)
    width = polygon_width(pieces) if width is None else width
    wide = width > tol.dust
    pi, ci, contact = touching.result()
    renumber = np.cumsum(wide) - 1
    keep = wide[pi]
    pi, ci, contact = renumber[pi[keep]], ci[keep], contact[keep]
    pieces, owner_key, width = pieces[wide], owner_key[wide], width[wide]
    if not len(pieces):
        return []
    perimeter = shapely.length(pieces)
    near = (contact >= np.maximum(tol.sliver, 0.05 * perimeter[pi])) & usable[ci]
    near &= parents[ci] == owner_key[pi]  # the parent's own children
    kids = _members(pi[near], ci[near], len(pieces))
    out = []
    for k in range(len(pieces)):
        sliver = width[k] < tol.sliver
        members = kids[k]
        out.append(
            Finding("sliver" if sliver else "gap", members, pieces[k],
                    "gap 缺口" if sliver else "", width[k],
                    None if len(members) else str(owner_key[k]))
        )  # fmt: skip
    return out


def contact_lengths(pieces: np.ndarray, geoms: np.ndarray, eps: float = 0.05):
    """``(piece, geom, length)``: how much of each piece's edge runs along each of ``geoms``.

    A piece's edge is made of its polygons' edges (an overlay or a noding
    cuts them at every vertex), so each segment runs along one neighbour: it
    counts for every geometry within ``eps`` of its middle. The tree holds the
    middles, so each geometry is prepared once and asked about many points.

    A gap between a square below and one above that starts 2 m in (its rim,
    as an overlay returns it, has a vertex where the square above begins):

    >>> gap = shapely.Polygon([(0, 0), (10, 0), (10, 2), (2, 2), (0, 2)])
    >>> below, above = shapely.box(0, -10, 10, 0), shapely.box(2, 2, 12, 12)
    >>> piece, geom, length = contact_lengths(np.array([gap]), np.array([below, above]))
    >>> geom.tolist(), length.round(2).tolist()
    ([0, 1], [10.0, 8.0])
    """
    parts, part_owner = shapely.get_parts(pieces, return_index=True)
    rings, ring_owner = shapely.get_rings(parts, return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    seg = np.flatnonzero(ring[1:] == ring[:-1])
    middle = shapely.points((xy[seg] + xy[seg + 1]) / 2)
    length = np.hypot(*(xy[seg + 1] - xy[seg]).T)
    owner = part_owner[ring_owner[ring[seg]]]
    gi, si = shapely.STRtree(middle).query(geoms, predicate="dwithin", distance=eps)
    # One integer key per (piece, geometry) pair: np.unique on rows is several times slower.
    key, where = np.unique(owner[si] * len(geoms) + gi, return_inverse=True)
    total = np.bincount(where.ravel(), weights=length[si], minlength=len(key))
    return key // len(geoms), key % len(geoms), total


def _outside(repaired, usable, parents, parent, tol) -> tuple[list[Finding], np.ndarray]:
    """Pieces of children lying outside the parent their code names.

    Returns the findings and a mask of children lying within their parent.
    """
    shapely.prepare(parent.to_numpy())
    idx = np.flatnonzero(usable & np.isin(parents, parent.index))
    mother = parent.reindex(parents[idx]).to_numpy()
    inside = shapely.covered_by(repaired[idx], mother)
    within = np.ones(len(repaired), dtype=bool)
    within[idx[~inside]] = False
    idx, mother = idx[~inside], mother[~inside]
    outside = np.array([polygonal(g) for g in shapely.difference(repaired[idx], mother)])
    pieces, owner = shapely.get_parts(outside, return_index=True)
    width = polygon_width(pieces)
    out = [
        Finding("outside_parent", _one(idx[owner[k]]), pieces[k], str(parents[idx[owner[k]]]),
                width[k])
        for k in np.flatnonzero(width > tol.dust)
    ]  # fmt: skip
    return out, within


def _multipart(repaired, usable, tol) -> list[Finding]:
    multi = np.flatnonzero(usable & (shapely.get_num_geometries(repaired) > 1))
    if not len(multi):
        return []
    parts, owner = shapely.get_parts(repaired[multi], return_index=True)
    owner = multi[owner]
    real = polygon_width(parts) > tol.dust
    counts = np.bincount(owner[real], minlength=len(repaired))
    out = []
    for i in np.flatnonzero(counts > 1):
        mine = parts[(owner == i) & real]
        largest = np.argmax(shapely.area(mine))
        out.append(Finding("multipart", _one(i), shapely.union_all(np.delete(mine, largest)),
                           str(int(counts[i]))))  # fmt: skip
    return out


def _islands(repaired, usable, left, right, quiet) -> list[Finding]:
    if usable.sum() < 2:
        return []
    degree = np.bincount(np.r_[left, right], minlength=len(repaired))
    lone = (degree == 0) & usable
    if quiet is not None:
        lone &= ~quiet
    return [Finding("island", _one(i), shapely.boundary(repaired[i])) for i in np.flatnonzero(lone)]


def _edge_mismatch(repaired, edges, flagged, found, tol) -> list[Finding]:
    """Invalid edges that no overlap, gap or crossing found above explains."""
    flagged = np.flatnonzero(flagged)
    if not len(flagged):
        return []
    # GEOS returns whole invalid edge chains; a chain touching a defect found
    # above is that defect's outline, not a mismatch of its own.
    parts, owner = shapely.get_parts(edges[flagged], return_index=True)
    owner = flagged[owner]
    if found:
        defects = shapely.STRtree(np.asarray(found, dtype=object))
        hit, _ = defects.query(parts, predicate="dwithin", distance=tol.noise)
        keep = np.ones(len(parts), dtype=bool)
        keep[hit] = False
        parts, owner = parts[keep], owner[keep]
    if not len(parts) or shapely.length(parts).sum() <= tol.dust:
        return []
    lines = shapely.get_parts(shapely.line_merge(shapely.union_all(parts)))
    tree = shapely.STRtree(parts)
    near, hit = tree.query(lines, predicate="dwithin", distance=tol.dust)
    members = _members(near, owner[hit], len(lines))
    return [Finding("edge_mismatch", members[k], line, width_m=0.0) for k, line in enumerate(lines)]


# -- the GCJ-02 hint -----------------------------------------------------------------
def gcj02_shift(
    layer: shapely.Geometry, reference: shapely.Geometry, metric
) -> tuple[float, float]:
    """How well converting ``layer`` from GCJ-02 explains its mismatch with ``reference``.

    Both are metric polygons (``metric``: their CRS). Returns ``(shift_m,
    explained)``: the GCJ-02 offset at the layer's centre in metres, and the
    share of the symmetric difference between the two that the conversion
    removes (1 = all of it; 0 or less = none, or the layer is in WGS-84 already).
    A layer in GCJ-02 laid over a WGS-84/CGCS2000 parent is off by that
    offset, 300–700 m across China: its gaps and outside-parent pieces are the
    two sides of one shift.
    """
    before = shapely.area(shapely.symmetric_difference(layer, reference))
    if not before > 0:
        return 0.0, 0.0
    to_deg = transformer(metric, metric.geodetic_crs)
    to_metric = transformer(metric.geodetic_crs, metric)
    centre = shapely.get_coordinates(shapely.centroid(layer))[0]
    lon, lat = to_deg.transform(*centre)
    west, south, east, north = CHINA_BOUNDS
    if not (west <= lon <= east and south <= lat <= north):
        return 0.0, 0.0
    moved = np.array(to_metric.transform(*wgs84_to_gcj02(lon, lat)))
    shift = float(np.hypot(*(moved - centre)))

    def convert(xy):
        x, y = gcj02_to_wgs84(*to_deg.transform(xy[:, 0], xy[:, 1]))
        return np.column_stack(to_metric.transform(x, y))

    fixed = shapely.make_valid(shapely.transform(layer, convert))
    after = shapely.area(shapely.symmetric_difference(fixed, reference))
    return shift, float(1 - after / before)


# -- helpers ---------------------------------------------------------------------
def _members(group: np.ndarray, value: np.ndarray, n: int) -> list[np.ndarray]:
    """For each group ``0 … n-1``, the sorted distinct ``value`` paired with it."""
    if not n:
        return []
    pairs = np.unique(np.c_[np.asarray(group, dtype=int), np.asarray(value, dtype=int)], axis=0)
    starts = np.searchsorted(pairs[:, 0], np.arange(n + 1))
    return np.split(pairs[:, 1], starts[1:-1])


def _one(i) -> np.ndarray:
    return np.array([int(i)])


def polygonal(geom) -> shapely.Geometry:
    """The polygonal part of ``geom`` (a MultiPolygon, Polygon or empty)."""
    if geom is None or shapely.is_empty(geom):
        return shapely.Polygon()
    if shapely.get_type_id(geom) in POLYGONAL:
        return geom
    parts = shapely.get_parts(geom)
    polys = parts[np.isin(shapely.get_type_id(parts), POLYGONAL)]
    return shapely.union_all(polys) if len(polys) else shapely.Polygon()


def union(geoms: np.ndarray, matched: np.ndarray):
    """Union of ``geoms``: the edge-matched ones as a coverage (fast), then the rest."""
    if not len(geoms):
        return shapely.Polygon()
    if matched.all():
        return shapely.coverage_union_all(geoms)
    if not matched.any():
        return shapely.union_all(geoms)
    return shapely.union_all(np.r_[shapely.coverage_union_all(geoms[matched]), geoms[~matched]])


def interior_rings(polygons: np.ndarray) -> list:
    """All interior rings of an array of polygons."""
    polygons = polygons[shapely.get_type_id(polygons) == 3]
    counts = shapely.get_num_interior_rings(polygons)
    if not counts.sum():
        return []
    owner = np.repeat(np.arange(len(polygons)), counts)
    index = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return list(shapely.get_interior_ring(polygons[owner], index))


def interiors(geom) -> shapely.Geometry:
    """The holes of a (multi)polygon, as one polygonal geometry."""
    rings = interior_rings(shapely.get_parts(geom))
    return (
        shapely.union_all(shapely.polygons(np.array(rings, dtype=object)))
        if rings
        else shapely.Polygon()
    )


def metric_parents(geoms: np.ndarray, keys: np.ndarray) -> pd.Series:
    """Parent polygons by key (already metric); repaired, a duplicated key gets their union."""
    geoms = np.asarray(geoms, dtype=object).copy()
    bad = ~shapely.is_valid(geoms)
    geoms[bad] = [polygonal(shapely.make_valid(g)) for g in geoms[bad]]
    series = pd.Series(geoms, index=np.asarray(keys, dtype=object))
    if series.index.is_unique:
        return series
    return series.groupby(level=0).agg(lambda g: shapely.union_all(g.to_numpy()))
