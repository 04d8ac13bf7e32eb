"""The dual grid (双网合一) against the two source layers it was merged from.

Before the merge the party-building side (党建网格, the banner's layer
``party_grid``) and the sanitation side (卫生网格, ``sanitation_grid``) each drew
their own grids. Which two layers they are, and which level is their merge
(the workload level), the configuration says
(:attr:`~gridgeo.config.GridConfig.dual_sources`,
:meth:`~gridgeo.config.GridConfig.role`). :func:`check_dual_grid` relates every merged grid to the source grids
it came from and reports where the layers really disagree, as opposed to
where they were merely digitised a few metres apart:

``crosswalk``
    One row per (dual grid, source layer, source grid) whose overlap is wider
    than digitising noise, with the area and its share of either grid.
``source_split`` (warning)
    A source grid whose area lies in two or more dual grids, each piece wider
    than ``tolerances.defect``: a village redrawn into another grid, or one
    sanitation grid covering two dual grids.
``displacement`` (warning)
    A dual grid whose boundary lies farther than ``tolerances.noise`` from
    that of its main source grid (Hausdorff distance).
``digitising_noise`` (info)
    The Hausdorff distances at or below ``tolerances.noise``, summarised per
    district (the banner's towns) and source layer instead of one row per grid.
``source_mismatch`` (warning)
    Area covered by one source layer and not by the other, wider than
    ``tolerances.noise``.

How "wider than" is decided
---------------------------
A piece is wider than ``w`` when its maximum inscribed circle has a diameter
above ``w``, i.e. when the piece eroded by ``w / 2`` (a negative buffer) is
not empty. Erosion distributes over intersection, ``(A ∩ B) ⊖ r = (A ⊖ r) ∩
(B ⊖ r)``, so whether the overlap of a dual grid and a source grid is wider
than noise is a single STRtree ``intersects`` query between the eroded
layers, without computing the thousands of noise slivers along every shared
edge. (Measuring those slivers with :func:`~gridgeo.defects.polygon_width`
takes tens of seconds on the demo; the erosion test takes milliseconds.)
:func:`~gridgeo.defects.polygon_width` still measures the few pieces that
become defect rows.

Example
-------
>>> from gridgeo.demo import load_demo
>>> report = check_system_dual(load_demo())
>>> report.defects.query("kind == 'source_split'")["level"].value_counts().sort_index()
level
party_grid          6
sanitation_grid    26
Name: count, dtype: int64
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gridgeo.config import BANNER, GridConfig, Role, Tolerances
from gridgeo.crs import metric_crs, require_same_crs, to_metric
from gridgeo.defects import defect_frame, polygon_width
from gridgeo.errors import ConfigError, LayerError, SchemaError
from gridgeo.model import GridSystem

__all__ = ["CROSSWALK_COLUMNS", "DualGridReport", "check_dual_grid", "check_system_dual"]

CROSSWALK_COLUMNS = (
    "dual_code",
    "layer",
    "source_code",
    "area_m2",
    "share_of_dual",
    "share_of_source",
)
"""Columns of :attr:`DualGridReport.crosswalk`, in this order."""

# Arc segments per quarter circle in the erosion tests: the exact erosion has
# round corners at reflex vertices; two segments put the test within a few
# centimetres of the maximum-inscribed-circle width, far below any tolerance.
_QUAD_SEGS = 2
# Tolerance of the maximum inscribed circle when measuring defect widths (m).
_WIDTH_TOLERANCE = 0.1
# The defect table's district column (gridgeo.defects.COLUMNS), not a level name.
_DISTRICT = "district"


@dataclass
class DualGridReport:
    """What :func:`check_dual_grid` found.

    Attributes
    ----------
    crosswalk:
        One row per (dual grid, source layer, source grid) whose overlap is
        wider than digitising noise: ``dual_code``, ``layer``,
        ``source_code``, ``area_m2`` (metric), ``share_of_dual`` and
        ``share_of_source`` (that area over the dual grid's and the source
        grid's area). Sorted by dual code, layer and decreasing area, so the
        first row of each (dual grid, layer) is its main source grid.
    defects:
        The defect table (:data:`gridgeo.defects.COLUMNS`) with the kinds
        ``source_split``, ``displacement``, ``source_mismatch`` and
        ``digitising_noise``; ``level`` is the source layer. In the CRS of
        the input layers.
    """

    crosswalk: pd.DataFrame
    defects: gpd.GeoDataFrame

    def main_sources(self, layer: str) -> pd.Series:
        """Dual code → code of its main source grid (largest overlap) in ``layer``.

        >>> from gridgeo.demo import load_demo
        >>> main = check_system_dual(load_demo()).main_sources("party_grid")
        >>> bool((main.index == main).mean() > 0.98)  # party codes are the dual codes
        True
        """
        rows = self.crosswalk[self.crosswalk["layer"] == layer]
        return rows.drop_duplicates("dual_code").set_index("dual_code")["source_code"]


def check_dual_grid(
    merged: gpd.GeoDataFrame,
    party: gpd.GeoDataFrame,
    sanitation: gpd.GeoDataFrame,
    *,
    tolerances: Tolerances | None = None,
    config: GridConfig = BANNER,
) -> DualGridReport:
    """Compare the merged dual grid with its party-building and sanitation source layers.

    Parameters
    ----------
    merged:
        The dual grids (the workload level of ``config``, the banner's
        ``grid``), with ``code`` and, for the district column of the findings,
        ``parent_code``.
    party, sanitation:
        The source layers, named ``config.dual_sources`` in the findings (the
        banner's ``party_grid`` and ``sanitation_grid``), with ``code``.
    tolerances:
        Distances in metres; ``config.tolerances`` by default. Overlaps no
        wider than ``noise`` are digitising noise; a source grid is split when
        two or more of its pieces are wider than ``defect``.
    config:
        Supplies the layer names, the metric CRS and the default tolerances.

    Returns
    -------
    DualGridReport
        The crosswalk and the defect table, in the input CRS.

    Raises
    ------
    CrsError
        A layer has no CRS, or the three layers are not in the same CRS
        (nothing is compared across CRSs, so there is never a silent zero
        overlap).
    SchemaError
        A layer has no ``code`` column.

    Example
    -------
    >>> from gridgeo.demo import load_demo
    >>> system = load_demo()
    >>> report = check_dual_grid(
    ...     system["grid"], system.sources["party_grid"], system.sources["sanitation_grid"]
    ... )
    >>> report.defects["kind"].value_counts().sort_index().to_dict()
    {'digitising_noise': 22, 'displacement': 64, 'source_split': 32}
    """
    tol = tolerances or config.tolerances
    names = _source_names(config, "<memory>")
    workload = config.role_name(Role.WORKLOAD) or "merged"
    layers = {workload: merged, names[0]: party, names[1]: sanitation}
    storage = require_same_crs(layers, "the dual grid and its source layers")
    for name, frame in layers.items():
        if "code" not in frame.columns:
            raise SchemaError(
                f"layer {name!r} has no 'code' column; found {list(frame.columns)}. "
                "Rename the code column, e.g. frame.rename(columns={'网格编码': 'code'})."
            )
    # GEOS releases the GIL: the layers are prepared, then compared, two at a time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        target = metric_crs(config, merged)  # one CRS for all three ("auto": from the dual grid)
        dual, *found = pool.map(lambda f: _Layer.of(f, config, tol, target), layers.values())
        sources = dict(zip(names, found, strict=True))
        compared = list(pool.map(lambda n: _compare(dual, sources[n], n, tol), names))
    crosswalks = [c for c, _, _ in compared]
    rows = [row for _, found_rows, _ in compared for row in found_rows]
    unions = {name: union for name, (_, _, union) in zip(names, compared, strict=True)}
    rows += _mismatches(dual, sources, unions, tol)

    crosswalk = pd.concat(crosswalks, ignore_index=True)
    crosswalk = crosswalk.sort_values(
        ["dual_code", "layer", "area_m2"], ascending=[True, True, False], kind="stable"
    ).reset_index(drop=True)
    defects = defect_frame(rows, dual.crs).to_crs(storage)
    return DualGridReport(crosswalk=crosswalk, defects=defects)


def check_system_dual(
    system: GridSystem, *, tolerances: Tolerances | None = None
) -> DualGridReport:
    """:func:`check_dual_grid` on a system's workload level and its two source layers.

    The layers are those the system's configuration names: its
    :attr:`~gridgeo.config.GridConfig.dual_sources` and the level playing
    :attr:`Role.WORKLOAD <gridgeo.config.Role.WORKLOAD>`.

    Raises
    ------
    LayerError
        A source layer (the banner's ``party_grid`` or ``sanitation_grid``) is
        not among ``system.sources``.
    ConfigError
        The configuration names no dual sources or no workload level.

    Example
    -------
    >>> from gridgeo.demo import load_demo
    >>> report = check_system_dual(load_demo())
    >>> cw = report.crosswalk.query("dual_code == '150823100141'")  # lost a village
    >>> print(cw[["layer", "source_code", "share_of_dual"]].round(2).to_string(index=False))
              layer  source_code  share_of_dual
         party_grid 150823100141           0.77
         party_grid 150823100136           0.23
    sanitation_grid 150823100141           1.00
    """
    config = system.config
    names = _source_names(config, system.origin)
    workload = config.role_name(Role.WORKLOAD)
    if workload is None:
        raise ConfigError(
            f"{system.origin}: the configuration names no workload level to compare with "
            f"{list(names)}; set one under [roles] (workload = 'level name')."
        )
    missing = [name for name in names if name not in system.sources]
    if missing:
        raise LayerError(
            f"{system.origin}: source layer(s) {missing} missing; the system has "
            f"source layers {sorted(system.sources)}. The dual-grid check needs "
            f"{list(names)} next to the levels (e.g. {names[0]}.shp and "
            f"{names[1]}.shp in the same folder), or other names under [dual] sources "
            "in the configuration file."
        )
    return check_dual_grid(
        system[workload],
        system.sources[names[0]],
        system.sources[names[1]],
        tolerances=tolerances,
        config=system.config,
    )


# -- internals --------------------------------------------------------------------
@dataclass
class _Layer:
    """A layer's non-empty polygons in the metric CRS, as plain arrays.

    ``core`` is each polygon eroded by half the noise tolerance.
    """

    codes: np.ndarray
    geoms: np.ndarray
    towns: np.ndarray
    area: np.ndarray
    core: np.ndarray
    crs: CRS

    @classmethod
    def of(cls, frame: gpd.GeoDataFrame, config: GridConfig, tol: Tolerances, target) -> _Layer:
        metric = to_metric(frame, config, target)
        geoms = np.asarray(metric.geometry.to_numpy(), dtype=object)
        keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        geoms = geoms[keep]
        bad = ~shapely.is_valid(geoms)
        if bad.any():  # a self-intersection must not stop the comparison
            geoms = geoms.copy()
            geoms[bad] = _polygonal(shapely.make_valid(geoms[bad]))
        codes = metric["code"].astype(str).to_numpy()[keep]
        if "parent_code" in metric.columns:
            towns = metric["parent_code"].fillna("").astype(str).to_numpy()[keep]
        else:  # the district's code is the first digits of the unit's
            parent = config.role(Role.DISTRICT)
            keep = parent.code_length if parent is not None else 0
            towns = pd.Series(codes, dtype=object).str.slice(0, keep).to_numpy(dtype=object)
        return cls(
            codes,
            geoms,
            towns,
            shapely.area(geoms),
            _erode(geoms, tol.noise),
            CRS.from_user_input(metric.crs),
        )


@dataclass
class _Pairs:
    """Overlaps wider than noise between dual grids ``i`` and source grids ``j``."""

    i: np.ndarray
    j: np.ndarray
    piece: np.ndarray
    area: np.ndarray

    def main_of_dual(self) -> np.ndarray:
        """Pair index of each dual grid's largest overlap."""
        return _largest(self.i, self.area)

    def main_of_source(self) -> np.ndarray:
        """Pair index of each source grid's largest overlap."""
        return _largest(self.j, self.area)


def _source_names(config: GridConfig, origin: str) -> tuple[str, str]:
    """The two source layers of the dual grid, from the configuration."""
    if len(config.dual_sources) != 2:
        raise ConfigError(
            f"{origin}: the configuration of {config.root_name} names no dual-grid source "
            "layers; list the two layers merged into the workload level under [dual] "
            'sources in the configuration file (sources = ["layer a", "layer b"]).'
        )
    first, second = config.dual_sources
    return first, second


def _erode(geoms: np.ndarray, width: float) -> np.ndarray:
    """Each polygon shrunk by ``width / 2``: empty where it is no wider than ``width``."""
    return shapely.buffer(geoms, -width / 2, quad_segs=_QUAD_SEGS)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """The polygonal parts of each geometry (lines and points of a collection dropped)."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    keep = shapely.get_type_id(parts) == 3
    return _gather(parts[keep], index[keep], len(geoms))


def _gather(parts: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """``n`` geometries from polygon ``parts`` grouped by ``index``.

    A Polygon where a group has one part, a MultiPolygon where it has
    several, an empty MultiPolygon where it has none.
    """
    out = np.empty(n, dtype=object)
    out[:] = shapely.MultiPolygon()
    if len(parts):
        order = np.argsort(index, kind="stable")
        grouped = shapely.multipolygons(parts[order], indices=index[order])
        out[: len(grouped)] = np.where(shapely.is_empty(grouped), out[: len(grouped)], grouped)
    single = shapely.get_num_geometries(out) == 1
    out[single] = shapely.get_geometry(out[single], 0)
    return out


def _largest(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of the largest value for each distinct key (in key order)."""
    order = np.lexsort((-values, keys))
    sorted_keys = keys[order]
    first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]] if len(keys) else np.array([], bool)
    return order[first]


def _compare(
    dual: _Layer, src: _Layer, name: str, tol: Tolerances
) -> tuple[pd.DataFrame, list[dict], shapely.Geometry]:
    """Crosswalk, split and displacement rows, and the union of one source layer."""
    pairs = _overlaps(dual, src)
    rows = _splits(dual, src, name, pairs, tol) + _displacements(dual, src, name, pairs, tol)
    return _crosswalk(dual, src, name, pairs), rows, _union(src.geoms, src.area)


def _overlaps(dual: _Layer, src: _Layer) -> _Pairs:
    """Dual/source pairs whose overlap is wider than noise, with the overlap itself.

    The overlap is wider than noise exactly when the eroded polygons intersect.
    """
    i, j = shapely.STRtree(src.core).query(dual.core, predicate="intersects")
    order = np.lexsort((j, i))
    i, j = i[order], j[order]
    piece = _polygonal(shapely.intersection(dual.geoms[i], src.geoms[j]))
    return _Pairs(i, j, piece, shapely.area(piece))


def _crosswalk(dual: _Layer, src: _Layer, name: str, pairs: _Pairs) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dual_code": dual.codes[pairs.i],
            "layer": name,
            "source_code": src.codes[pairs.j],
            "area_m2": pairs.area,
            "share_of_dual": pairs.area / dual.area[pairs.i],
            "share_of_source": pairs.area / src.area[pairs.j],
        },
        columns=list(CROSSWALK_COLUMNS),
    )


def _splits(dual: _Layer, src: _Layer, name: str, pairs: _Pairs, tol: Tolerances) -> list[dict]:
    """``source_split`` rows: source grids with pieces wider than ``defect`` in 2+ dual grids."""
    counts = np.bincount(pairs.j, minlength=len(src.codes))
    candidate = np.flatnonzero(counts[pairs.j] >= 2)  # pairs of sources in 2+ dual grids
    if not len(candidate):
        return []
    wide = candidate[
        shapely.intersects(
            _erode(dual.geoms[pairs.i[candidate]], tol.defect),
            _erode(src.geoms[pairs.j[candidate]], tol.defect),
        )
    ]
    split = np.flatnonzero(np.bincount(pairs.j[wide], minlength=len(src.codes)) >= 2)
    if not len(split):
        return []
    main = np.full(len(src.codes), -1)
    main[pairs.j[pairs.main_of_source()]] = pairs.main_of_source()
    wide = wide[np.isin(pairs.j[wide], split)]
    away = wide[wide != main[pairs.j[wide]]]  # the wide pieces outside the main dual grid
    # Each piece without its noise slivers: the parts wider than noise.
    parts, index = shapely.get_parts(pairs.piece[away], return_index=True)
    keep = ~shapely.is_empty(_erode(parts, tol.noise))
    slot = np.searchsorted(split, pairs.j[away][index[keep]])
    geom = _gather(parts[keep], slot, len(split))
    width = polygon_width(geom, _WIDTH_TOLERANCE)

    involved = pd.DataFrame(
        {
            "source": pairs.j[wide],
            "is_main": wide == main[pairs.j[wide]],
            "area": pairs.area[wide],
            "dual": dual.codes[pairs.i[wide]],
            "district": dual.towns[pairs.i[wide]],
        }
    ).sort_values(["source", "is_main", "area"], ascending=[True, False, False])
    by_source = involved.groupby("source", sort=True)
    codes = by_source["dual"].agg(list)
    towns = by_source["district"].agg(lambda t: sorted(set(t)))
    return [
        {
            "kind": "source_split",
            "level": name,
            "codes": codes[k],
            _DISTRICT: towns[k],
            "detail": f"{name} {src.codes[k]}",
            "width_m": w,
            "geometry": g,
        }
        for k, g, w in zip(split, geom, width, strict=True)
    ]


def _displacements(
    dual: _Layer, src: _Layer, name: str, pairs: _Pairs, tol: Tolerances
) -> list[dict]:
    """``displacement`` rows above noise; one ``digitising_noise`` row per town below it."""
    main = pairs.main_of_dual()
    if not len(main):
        return []
    i, j = pairs.i[main], pairs.j[main]
    distance = shapely.hausdorff_distance(dual.geoms[i], src.geoms[j])
    far = distance > tol.noise
    rows = [
        {
            "kind": "displacement",
            "level": name,
            "codes": [dual.codes[a]],
            _DISTRICT: [dual.towns[a]],
            "detail": f"{name} {src.codes[b]}",
            "width_m": d,
            "geometry": line,
        }
        for a, b, d, line in zip(
            i[far],
            j[far],
            distance[far],
            _farthest_lines(dual.geoms[i[far]], src.geoms[j[far]]),
            strict=True,
        )
    ]
    near = pd.DataFrame({"district": dual.towns[i[~far]], "distance": distance[~far], "k": i[~far]})
    if near.empty:
        return rows
    stats = near.groupby("district", sort=True)["distance"].agg(["median", "max", "count"])
    town_index = near["district"].map({t: n for n, t in enumerate(stats.index)}).to_numpy()
    points = shapely.multipoints(
        shapely.point_on_surface(dual.geoms[near["k"].to_numpy()]), indices=town_index
    )
    for (town, s), where in zip(stats.iterrows(), points, strict=True):  # one per town
        rows.append(
            {
                "kind": "digitising_noise",
                "level": name,
                "codes": [],
                _DISTRICT: [town],
                "detail": f"median {s['median']:.1f} m, max {s['max']:.1f} m "
                f"over {int(s['count'])} grids",
                "width_m": s["max"],
                "geometry": where,
            }
        )
    return rows


def _farthest_lines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each pair, the line realising the (discrete) Hausdorff distance.

    The vertex of either polygon farthest from the other's boundary, joined
    to the nearest point of that boundary.
    """
    if not len(a):
        return np.array([], dtype=object)
    xy_a, ia = shapely.get_coordinates(a, return_index=True)
    xy_b, ib = shapely.get_coordinates(b, return_index=True)
    points = shapely.points(np.vstack([xy_a, xy_b]))
    owner = np.r_[ia, ib]
    other = np.r_[shapely.boundary(b)[ia], shapely.boundary(a)[ib]]
    far = _largest(owner, shapely.distance(points, other))
    lines = np.empty(len(a), dtype=object)
    lines[owner[far]] = shapely.shortest_line(points[far], other[far])
    return lines


def _mismatches(
    dual: _Layer, sources: dict[str, _Layer], unions: dict[str, shapely.Geometry], tol: Tolerances
) -> list[dict]:
    """``source_mismatch`` rows: area wider than noise covered by one source layer only."""
    (name_a, a), (name_b, b) = sources.items()
    union_a, union_b = unions[name_a], unions[name_b]
    rows = []
    dual_tree = shapely.STRtree(dual.geoms)
    for name, layer, only in (
        (name_a, a, shapely.difference(union_a, union_b)),
        (name_b, b, shapely.difference(union_b, union_a)),
    ):
        parts = shapely.get_parts(_polygonal(np.array([only]))[0])
        core = _erode(parts, tol.noise)
        wide = ~shapely.is_empty(core)
        parts, core = parts[wide], core[wide]
        if not len(parts):
            continue
        # Source grids (and towns) whose area, not just their edge, is involved.
        p, s = shapely.STRtree(layer.geoms).query(core, predicate="intersects")
        q, d = dual_tree.query(core, predicate="intersects")
        width = polygon_width(parts, _WIDTH_TOLERANCE)
        for k, (part, w) in enumerate(zip(parts, width, strict=True)):
            towns = sorted(set(dual.towns[d[q == k]]) or set(layer.towns[s[p == k]]))
            rows.append(
                {
                    "kind": "source_mismatch",
                    "level": name,
                    "codes": sorted(layer.codes[s[p == k]]),
                    _DISTRICT: towns,
                    "detail": name,
                    "width_m": w,
                    "geometry": part,
                }
            )
    return rows


def _union(geoms: np.ndarray, area: np.ndarray):
    """Union of a layer's polygons.

    The coverage union is exact and fast when the layer is a valid coverage
    (no overlaps, shared edges vertex for vertex); otherwise its result is
    invalid or loses area, and the robust (slower) union is used instead.
    """
    try:
        union = shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:
        union = None
    total = float(area.sum())
    if union is None or not union.is_valid or abs(union.area - total) > 1e-9 * max(total, 1.0):
        union = shapely.union_all(geoms)
    return union
