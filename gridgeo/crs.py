"""Coordinate reference systems.

Layers are stored in CGCS2000 (EPSG:4490), which for grid work equals WGS-84
to well under a metre. Anything metric — areas, distances, buffers, widths —
runs in one projected CRS, chosen by :func:`metric_crs` and nowhere else.

Consumer maps in China do not publish WGS-84. AMap (Gaode) and Tencent use
GCJ-02, an obfuscated offset of WGS-84 (about 450–520 m in the banner); Baidu
uses BD-09, a further rotation and scaling of GCJ-02 (about 1.3 km in all).
pyproj knows neither, so household points collected with phone apps go
through :func:`to_wgs84`, and layers drawn over AMap tiles through
:func:`from_wgs84`. The forward formulas are the published ones; the inverses
iterate on them to well under a centimetre. Following the published
convention, points outside the rough bounding box of :func:`in_china` are
returned unchanged.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Transformer
from pyproj.crs import ProjectedCRS
from pyproj.crs.coordinate_operation import AlbersEqualAreaConversion
from pyproj.exceptions import CRSError

from gridgeo.config import BANNER, GridConfig
from gridgeo.errors import CrsError, GeometryError
from gridgeo.parallel import chunked

__all__ = [
    "AUTO",
    "CHINA_BOUNDS",
    "COORDINATE_SYSTEMS",
    "DENSIFY_SPACING_M",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "check_coordinates",
    "densify",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "metric_crs",
    "project",
    "projector",
    "require_crs",
    "require_same_crs",
    "same_crs",
    "to_metric",
    "to_wgs84",
    "transformer",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

CHINA_BOUNDS = (73.66, 3.86, 135.05, 53.55)
"""``(west, south, east, north)`` in degrees: the rough box of China.

The published box of the GCJ-02 convention (see :func:`in_china`); the one
box gridgeo uses wherever it asks "is this in China?".
"""

# Degrees by which a layer may reach beyond its CRS's area of use (zones
# are drawn tightly; data near a zone edge is still fine).
_AREA_MARGIN = 5.0

# Vertices from which a projection is shared between the cores.
_PROJECT_CHUNK = 20_000


AUTO = "auto"
"""The value of :attr:`GridConfig.metric_crs` that picks the metric CRS from the data."""

DENSIFY_SPACING_M = 200.0
"""Longest edge, in metres, that :func:`project` transforms without looking at it.

Longer edges are cut into as many equal pieces as keep each piece's image
within :data:`SAGITTA_M` of its chord (measured at the edge's middle), so an
edge whose image is straight — most of a real layer's — keeps its two
vertices. Why 200 m:

A straight edge drawn in one CRS is a curve in another; projecting only its
end points replaces the curve by its chord, which misses it by ``s² / 8ρ`` for
an edge of length ``s`` whose image bends with radius ``ρ``. Lines of constant
latitude bend the most (``ρ`` ≈ ``N·cot φ``: 7,400 km at 40.8° N, 3,700 km at
60° N), so 200 m pieces stay within 1.4 mm of where they were drawn, seven
times under the 1 cm dust tolerance, anywhere up to 60° of latitude. The
error depends on the piece length only: a spacing derived from the extent
would grow with it and put province-wide work above the dust (2 km pieces:
7 to 14 cm), a finer one would only add vertices (the banner's towns,
densified at 200 m, check 1.5 times slower than corners-only).
"""

# Gauss-Krüger zones of CGCS2000 whose EPSG codes carry only the central
# meridian (EPSG:4534 = CM 75E … EPSG:4554 = CM 135E, every 3 degrees); the
# family with the zone number in the false easting (4513-4533) would make
# every x a 8-digit number.
_GK_FIRST_EPSG, _GK_FIRST_CM, _GK_LAST_CM = 4534, 75, 135
# An extent reaching at most this far from a zone's central meridian counts
# as "county-sized": scale error ≤ 6e-4 (areas ≤ 0.12 %).
_ZONE_REACH = 2.0
_DEGREE_M = 111_320.0  # metres per degree of latitude (and of longitude at the equator)


def metric_crs(config: GridConfig = BANNER, bounds=None) -> CRS:
    """The projected CRS used for every metric computation.

    With an explicit ``config.metric_crs`` (an EPSG code, WKT or PROJ string)
    that CRS, whatever the data. With ``config.metric_crs == "auto"`` it is
    chosen from the data's extent:

    - an extent within 2° of longitude of a Gauss-Krüger central meridian
      (a county, a small city) gets that CGCS2000 3-degree zone, EPSG:4534
      (CM 75E) to EPSG:4554 (CM 135E), nearest to the extent's centre; outside
      China's meridians, the WGS 84 / UTM zone (EPSG:326xx, 327xx);
    - a wider extent (a city like Bayannur, a province) gets an Albers
      equal-area conic fitted to it (standard parallels a sixth of the
      latitude span inside its edges, rounded to 0.5°), so areas are exact.

    For the banner this is CGCS2000 / 3-degree Gauss-Kruger CM 108E
    (EPSG:4545): one CRS for the whole banner, worst scale error about 3e-4.

    Parameters
    ----------
    config : GridConfig
        Supplies ``metric_crs``.
    bounds : tuple of float, GeoDataFrame or GeoSeries, optional
        The data's extent: ``(west, south, east, north)`` in degrees of
        longitude/latitude, or a layer (its total bounds, in its own CRS).
        Required when ``config.metric_crs`` is ``"auto"``.

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    CrsError
        ``config.metric_crs`` is not a CRS pyproj knows, or is ``"auto"``
        without ``bounds``.

    Examples
    --------
    >>> metric_crs().to_epsg()
    4545
    >>> from dataclasses import replace
    >>> auto = replace(BANNER, metric_crs="auto")
    >>> metric_crs(auto, (108.3, 40.5, 109.9, 41.2)).to_epsg()  # the banner
    4545
    >>> metric_crs(auto, (119.7, 29.2, 120.7, 30.5)).to_epsg()  # Hangzhou's core
    4549
    >>> metric_crs(auto, (97.2, 37.4, 126.1, 53.3)).name  # Inner Mongolia
    'Albers equal-area 40N 50.5N, CM 111.5E (CGCS2000)'
    """
    if str(config.metric_crs).strip().lower() != AUTO:
        return _crs(config.metric_crs)
    if bounds is None:
        raise CrsError(
            "metric_crs is 'auto', which picks the metric CRS from the data's extent, "
            "but no extent was given. Pass the layer (metric_crs(config, layer)) or set "
            "an explicit metric CRS in the configuration, e.g. metric_crs = 'EPSG:4545'."
        )
    if hasattr(bounds, "total_bounds"):
        west, south, east, north = _lonlat_extent(bounds)
    else:
        west, south, east, north = map(float, bounds)
    if not all(np.isfinite([west, south, east, north])):
        raise CrsError(
            "the layer has no geometry to take an extent from, so metric_crs='auto' "
            "cannot choose a CRS; set an explicit metric CRS, e.g. 'EPSG:4545'."
        )
    return _fitted_crs(west, south, east, north)


@functools.lru_cache(maxsize=256)
def _fitted_crs(west: float, south: float, east: float, north: float) -> CRS:
    centre = (west + east) / 2
    chinese = bool(in_china(centre, (south + north) / 2))
    if chinese:
        zone = int(np.clip(round((centre - _GK_FIRST_CM) / 3), 0, 20))
        cm, epsg = _GK_FIRST_CM + 3 * zone, _GK_FIRST_EPSG + zone
    else:
        zone = int(np.clip(math.floor((centre + 180) / 6) + 1, 1, 60))
        cm, epsg = zone * 6 - 183, (32600 if south + north >= 0 else 32700) + zone
    if max(abs(west - cm), abs(east - cm)) <= _ZONE_REACH:
        return CRS.from_epsg(epsg)
    span = north - south
    lat_1, lat_2 = (_half(south + span / 6), _half(north - span / 6))
    if lat_1 == lat_2:
        lat_2 += 0.5
    lon_0, lat_0 = _half(centre), _half((south + north) / 2)
    base = CRS.from_epsg(4490 if chinese else 4326)
    conversion = AlbersEqualAreaConversion(lat_1, lat_2, lat_0, lon_0)
    datum = "CGCS2000" if chinese else "WGS 84"
    name = f"Albers equal-area {_lat(lat_1)} {_lat(lat_2)}, CM {_lon(lon_0)} ({datum})"
    return ProjectedCRS(conversion, name=name, geodetic_crs=base)


def _half(value: float) -> float:
    return round(value * 2) / 2


def _lat(v: float) -> str:
    return f"{abs(v):g}{'N' if v >= 0 else 'S'}"


def _lon(v: float) -> str:
    return f"{abs(v):g}{'E' if v >= 0 else 'W'}"


def _lonlat_extent(frame) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a layer in degrees (NaN when it has no geometry)."""
    crs = require_crs(frame, "the layer")
    minx, miny, maxx, maxy = frame.total_bounds
    if crs.is_geographic or not np.isfinite(minx):
        return float(minx), float(miny), float(maxx), float(maxy)
    lon_min, lat_min, lon_max, lat_max = _degree_bounds(crs, np.array([[minx, miny, maxx, maxy]]))
    return float(lon_min[0]), float(lat_min[0]), float(lon_max[0]), float(lat_max[0])


@functools.lru_cache(maxsize=64)
def _crs(value) -> CRS:
    try:
        return CRS.from_user_input(value)
    except CRSError as exc:
        raise CrsError(
            f"metric_crs {value!r} is not a coordinate reference system pyproj knows: "
            f"{exc}. Use an EPSG code such as 'EPSG:4545', or 'auto'."
        ) from exc


@functools.lru_cache(maxsize=64)
def transformer(source: CRS, target: CRS) -> Transformer:
    """The pyproj transformer from ``source`` to ``target`` (x = longitude), built once.

    Cached per pair: building one searches PROJ's database (0.1 s or more).
    Where PROJ's best operation between two datums is a "ballpark" (zero)
    offset — WGS 84 and CGCS2000, which agree to well under a metre — the
    transformer is built on the target's own datum instead: the same numbers,
    without a pipeline step that made EPSG:4326 input six times slower than
    EPSG:4490.

    >>> t = transformer(CRS.from_epsg(4326), CRS.from_epsg(4545))
    >>> [round(v) for v in t.transform(108.0, 40.0)]
    [500000, 4429529]
    >>> t is transformer(CRS.from_epsg(4326), CRS.from_epsg(4545))
    True
    """
    found = Transformer.from_crs(source, target, always_xy=True)
    ballpark = any(
        op.name.startswith("Ballpark geographic offset") for op in (found.operations or ())
    )
    if ballpark and source.is_geographic and not target.is_geographic:
        return Transformer.from_crs(target.geodetic_crs, target, always_xy=True)
    if ballpark and target.is_geographic and not source.is_geographic:
        return Transformer.from_crs(source, source.geodetic_crs, always_xy=True)
    return found


def project(geoms, source, target, *, spacing: float | None = DENSIFY_SPACING_M) -> np.ndarray:
    """Geometries reprojected from ``source`` to ``target``, straight edges kept straight.

    Edges longer than ``spacing`` metres whose image bends are first cut into
    equal pieces in ``source``, as many as keep each piece within
    :data:`SAGITTA_M` of its chord (see :data:`DENSIFY_SPACING_M`), so a long
    straight edge lands where it was drawn, not on the chord between its
    projected end points.
    The cut is symmetric: two neighbours that share an edge, walking it in
    opposite directions, get bit-identical new vertices, so a coverage stays
    a coverage. Points, empties and ``None`` pass through. The one projector
    of gridgeo: every module projects through it.

    Parameters
    ----------
    geoms : array_like of shapely geometries, or one geometry
    source, target : CRS-like
        Anything ``pyproj.CRS.from_user_input`` accepts.
    spacing : float or None
        Longest edge left uncut, in metres; ``None`` transforms the existing
        vertices only.

    Returns
    -------
    numpy.ndarray of geometries (or one geometry for one geometry in)

    Examples
    --------
    A 20 km edge along 40.8° N: its end points alone put its middle 7 m off.

    >>> edge = shapely.LineString([(108.4, 40.8), (108.64, 40.8)])
    >>> middle = shapely.Point(108.52, 40.8)
    >>> far = project([edge, middle], 4490, 4545, spacing=None)
    >>> round(float(far[0].distance(far[1])), 1)
    6.9
    >>> near = project([edge, middle], 4490, 4545)
    >>> float(near[0].distance(near[1])) <= SAGITTA_M
    True
    """
    single = isinstance(geoms, shapely.Geometry)
    array = np.array([geoms] if single else geoms, dtype=object)
    if array.ndim != 1:
        array = array.ravel()
    src, dst = _crs(source), _crs(target)
    if src == dst:
        return array[0] if single else array
    move = _mover(transformer(src, dst))
    if spacing:
        array = densify(array, spacing / _unit_metres(src), bend=functools.partial(_bend, move))
    out = shapely.transform(array, move)
    return out[0] if single else out


def project_xy(xy: ArrayLike, source, target) -> np.ndarray:
    """Coordinates (n × 2) reprojected from ``source`` to ``target``, as :func:`project`
    moves a geometry's vertices (no geometry is made).

    0.1° of longitude at 41° N is 8.4 km (a little more on the Gauss-Krüger grid):

    >>> xy = project_xy([[108.5, 41.0], [108.6, 41.0]], 4490, 4545)
    >>> xy.shape, round(float(np.hypot(*(xy[1] - xy[0]))))
    ((2, 2), 8414)
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    src, dst = _crs(source), _crs(target)
    return xy.copy() if src == dst else _mover(transformer(src, dst))(xy)


def _mover(tr: Transformer) -> Callable[[np.ndarray], np.ndarray]:
    """``xy`` (n × 2) through ``tr``: pyproj frees the GIL while PROJ works, and its
    transformers are thread-safe (one PROJ context per thread), so long runs go
    to both cores."""

    def moved(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return lambda xy: chunked(moved, xy, min_chunk=_PROJECT_CHUNK)


def projector(source, target, *, spacing: float | None = DENSIFY_SPACING_M) -> Callable:
    """:func:`project` with its CRSs fixed: ``projector(a, b)(geoms)``; the identity when equal."""
    if _crs(source) == _crs(target):
        return lambda geoms: geoms
    return functools.partial(project, source=source, target=target, spacing=spacing)


def densify(geoms: ArrayLike, spacing: float, *, bend: Callable | None = None) -> np.ndarray:
    """``geoms`` with every polygon and line edge cut into pieces of at most ``spacing``.

    Like :func:`shapely.segmentize`, but symmetric: the vertices added on a
    segment depend only on its two end points, not on the direction it is
    walked in, so neighbours sharing an edge get identical vertices.
    ``spacing`` is in the geometries' own units. Vectorised through
    :func:`shapely.to_ragged_array`; points and collections are left as they are.

    With ``bend``, only edges longer than ``spacing`` are looked at, and each
    is cut into as many pieces as ``bend(a, b)`` (end points as ``(n, 2)``
    arrays, the smaller end first) says — :func:`project` passes how far the
    edge's image bends, so straight images keep their two vertices.

    >>> ring = shapely.box(0, 0, 2, 1)
    >>> len(densify([ring], 0.5)[0].exterior.coords)
    13
    """
    array = np.array(geoms, dtype=object)
    out = array.copy()
    kind = shapely.get_type_id(array)
    for family in ((3, 6), (1, 5)):
        pick = np.flatnonzero(np.isin(kind, family) & ~shapely.is_empty(array))
        if len(pick):
            out[pick] = _densify_family(array[pick], spacing, bend)
    return out


# The most an edge's projected image may stray from the chord between its
# projected end points: five times under the 1 cm dust tolerance, so a
# straight edge and its neighbour's copy with extra vertices stay within dust.
SAGITTA_M = 0.002


def _bend(move: Callable, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pieces to cut each edge ``a``–``b`` into so its image bends at most :data:`SAGITTA_M`.

    The image of the edge's middle misses the chord of its end points' images
    by the sagitta ``s``; an arc cut into ``n`` equal pieces misses each chord
    by ``s / n²``. Both middles are formed from the ordered end points, so the
    answer does not depend on the direction an edge is walked in. ``n`` is a
    power of two: an edge and its neighbour's halves (a T-junction at the
    middle, as where a town's edge meets two grids) then get the same vertices,
    as their halving sagittas ask for half as many pieces. (Written here:
    pyproj transforms points, and no library sizes pieces by curvature.)
    """
    ends = move(np.concatenate([a, b]))
    chord = (ends[: len(a)] + ends[len(a) :]) / 2
    sagitta = np.hypot(*(move((a + b) / 2) - chord).T)
    need = np.maximum(np.sqrt(sagitta / SAGITTA_M), 1)
    return (2 ** np.ceil(np.log2(need) - 1e-9)).astype(np.int64)


def _densify_family(geoms: np.ndarray, spacing: float, bend: Callable | None) -> np.ndarray:
    """Densify geometries of one family (polygonal or linear), ragged-array style."""
    single = np.isin(shapely.get_type_id(geoms), (1, 3))
    kind, coords, offsets = shapely.to_ragged_array(geoms, include_z=False)
    parts = np.asarray(offsets[0])  # where each ring / line starts in ``coords``
    start, end = coords[:-1], coords[1:]
    last = np.zeros(len(coords), dtype=bool)
    last[parts[1:] - 1] = True  # a part's last vertex starts no segment
    length = np.hypot(*(end - start).T)
    pieces = np.ones(len(coords), dtype=np.int64)
    pieces[:-1] = np.where(last[:-1], 1, np.maximum(np.ceil(length / spacing), 1))
    if bend is not None:
        long = np.flatnonzero(pieces > 1)
        p, q = coords[long], coords[long + 1]
        forward = (p[:, 0] < q[:, 0]) | ((p[:, 0] == q[:, 0]) & (p[:, 1] <= q[:, 1]))
        lo, hi = np.where(forward[:, None], p, q), np.where(forward[:, None], q, p)
        pieces[long] = bend(lo, hi) if len(long) else pieces[long]
    if (pieces == 1).all():
        return geoms
    # Vertex i, then its segment's pieces - 1 new vertices: a + (b - a) * k / n
    # from the segment's lexicographically smaller end a, so both directions agree.
    owner = np.repeat(np.arange(len(coords)), pieces)
    step = np.arange(len(owner)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    n = pieces[owner]
    inner = step > 0
    i = owner[inner]
    p, q = coords[i], coords[i + 1]
    forward = (p[:, 0] < q[:, 0]) | ((p[:, 0] == q[:, 0]) & (p[:, 1] <= q[:, 1]))
    a = np.where(forward[:, None], p, q)
    b = np.where(forward[:, None], q, p)
    k = np.where(forward, step[inner], n[inner] - step[inner])
    new = coords[owner].copy()
    new[inner] = a + (b - a) * (k / n[inner])[:, None]
    ends = np.r_[0, np.cumsum(pieces)]
    offsets = (ends[parts].astype(parts.dtype), *offsets[1:])
    out = shapely.from_ragged_array(kind, new, offsets)
    if single.any():  # to_ragged_array promoted single parts to multi
        out[single] = shapely.get_geometry(out[single], 0)
    return out


def _unit_metres(crs: CRS) -> float:
    """Metres per unit of ``crs``'s horizontal axes (a degree of latitude for degrees)."""
    if crs.is_geographic:
        return _DEGREE_M
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return float(factor or 1.0)


def require_crs(frame: gpd.GeoDataFrame, what: str) -> CRS:
    """The CRS of ``frame``; :class:`CrsError` naming ``what`` if it has none."""
    if frame.crs is None:
        raise CrsError(
            f"{what} has no coordinate reference system. Set one before loading, "
            "e.g. frame.set_crs('EPSG:4490') for CGCS2000 longitude/latitude, or add "
            "a .prj file beside the Shapefile."
        )
    try:
        crs = CRS.from_user_input(frame.crs)
    except CRSError as exc:  # pragma: no cover - geopandas already parsed it
        raise CrsError(f"{what} has an unknown CRS {frame.crs!r}: {exc}") from exc
    if not (crs.is_geographic or crs.is_projected):
        raise CrsError(
            f"{what} has a CRS that is not tied to the earth ({crs.name!r}), so gridgeo "
            "cannot place it. Give the layer its real CRS, e.g. CGCS2000 (EPSG:4490) or "
            "CGCS2000 / 3-degree Gauss-Kruger CM 108E (EPSG:4545)."
        )
    return crs


def same_crs(a, b) -> bool:
    """Whether two CRSs are the same (axis order aside): the one CRS comparison of gridgeo.

    >>> same_crs("EPSG:4490", 4490), same_crs("EPSG:4490", "EPSG:4326")
    (True, False)
    """
    if a is None or b is None:
        return a is None and b is None
    return CRS.from_user_input(a).equals(CRS.from_user_input(b), ignore_axis_order=True)


def require_same_crs(layers: Mapping[str, gpd.GeoDataFrame], where: str) -> CRS:
    """The CRS every layer of ``layers`` shares; :class:`CrsError` listing them if not."""
    crss = {name: require_crs(frame, f"{where}, layer {name!r}") for name, frame in layers.items()}
    first = next(iter(crss.values()))
    if not all(same_crs(crs, first) for crs in crss.values()):
        listing = ", ".join(f"{name}: {crs.to_string()}" for name, crs in crss.items())
        raise CrsError(
            f"{where}: layers are in different CRSs ({listing}). Reproject them to one "
            f"CRS first, e.g. layer.to_crs({first.to_string()!r}); gridgeo never compares "
            "layers across CRSs."
        )
    return first


def to_metric(
    frame: gpd.GeoDataFrame, config: GridConfig = BANNER, target=None
) -> gpd.GeoDataFrame:
    """``frame`` reprojected to the metric CRS through :func:`project` (edges densified).

    A no-op when ``frame`` already is in it.

    Parameters
    ----------
    frame : GeoDataFrame
    config : GridConfig
        Supplies the metric CRS (:func:`metric_crs`; with ``"auto"``, chosen
        from ``frame``'s extent).
    target : CRS-like, optional
        The metric CRS to use instead, e.g. one chosen once for a whole
        system so that all its layers share it.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> g = gpd.GeoDataFrame(geometry=[box(108.6, 40.7, 108.61, 40.71)], crs=4490)
    >>> round(float(to_metric(g).area.iloc[0]) / 1e6, 2)  # km²
    0.94
    """
    source = require_crs(frame, "the layer")
    target = _crs(target) if target is not None else metric_crs(config, frame)
    if source == target:
        return frame
    out = frame.copy()
    geoms = project(frame.geometry.to_numpy(), source, target)
    return out.set_geometry(
        gpd.GeoSeries(geoms, index=frame.index, crs=target, name=frame.geometry.name)
    )


def check_coordinates(frame: gpd.GeoDataFrame, what: str, config: GridConfig = BANNER) -> None:
    """Raise if the coordinates of ``frame`` cannot be where its CRS says.

    Every coordinate must be a finite number, and every geometry must lie
    within the CRS's area of use (``pyproj.CRS.area_of_use``, widened by 5°;
    for a geographic CRS, also within ±180° and ±90°). That catches a layer
    in metres labelled EPSG:4326/4490, longitude and latitude swapped, and
    degrees labelled with a projected CRS, before any computation builds on
    them. Vectorised: one bounding box per row.

    Parameters
    ----------
    frame : GeoDataFrame
        The layer; empty and missing geometries are skipped (the model
        reports those itself).
    what : str
        The layer, as messages name it (``"banner.gpkg, layer 'grid'"``).
    config : GridConfig
        Supplies the metric CRS suggested for coordinates that look like metres.

    Raises
    ------
    GeometryError
        A coordinate is NaN or infinite, or a few rows lie outside the area
        of use while the others do not (mistyped rows); names the row.
    CrsError
        The whole layer lies outside its CRS's area of use; says whether
        the coordinates look like metres, like swapped longitude/latitude or
        like degrees, and which CRS to set.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> check_coordinates(gpd.GeoDataFrame(geometry=[box(108.5, 40.7, 108.6, 40.8)],
    ...                                    crs=4490), "grid")
    >>> metres = gpd.GeoDataFrame(geometry=[box(550000, 4500000, 560000, 4510000)], crs=4490)
    >>> check_coordinates(metres, "grid")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    gridgeo.errors.CrsError: grid: coordinates span x 550000…560000, y 4.5e+06…4.51e+06, ...
    """
    crs = require_crs(frame, what)
    geoms = frame.geometry.to_numpy()
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    broken = ~np.isfinite(xy).all(axis=1)
    if broken.any():
        row = int(owner[broken][0])
        raise GeometryError(
            f"{what}, row {row}{_code_of(frame, row)}: a vertex has coordinates "
            f"({xy[broken][0][0]}, {xy[broken][0][1]}), which are not numbers. Fix the "
            "vertex in a GIS editor or delete the row."
        )
    bounds = shapely.bounds(geoms)
    drawn = np.isfinite(bounds).all(axis=1)
    if not drawn.any():
        return
    west, south, east, north = _allowed_area(crs)
    lon_min, lat_min, lon_max, lat_max = _degree_bounds(crs, bounds[drawn])
    ok = (lon_min >= west) & (lon_max <= east) & (lat_min >= south) & (lat_max <= north)
    if ok.all():
        return
    area = crs.area_of_use
    where = f"{_crs_label(crs)}" + (f" (area of use: {area.name.rstrip('.')})" if area else "")
    if ok.any():  # most rows are fine: the others are typing errors, not a wrong CRS
        row = int(np.flatnonzero(drawn)[~ok][0])
        b = bounds[row]
        raise GeometryError(
            f"{what}, row {row}{_code_of(frame, row)}: coordinates reach x {b[0]:.6g}…"
            f"{b[2]:.6g}, y {b[1]:.6g}…{b[3]:.6g}, outside {where}, while "
            f"{int(ok.sum())} other row(s) lie inside it. Fix the row's coordinates or "
            "delete the row."
        )
    minx, miny = bounds[drawn, :2].min(axis=0).tolist()
    maxx, maxy = bounds[drawn, 2:].max(axis=0).tolist()
    raise CrsError(
        f"{what}: coordinates span x {minx:.6g}…{maxx:.6g}, y {miny:.6g}…{maxy:.6g}, "
        f"which cannot be in {where}: {_diagnosis(crs, (minx, miny, maxx, maxy), config)}"
    )


def _allowed_area(crs: CRS) -> tuple[float, float, float, float]:
    """The CRS's area of use in degrees, widened by :data:`_AREA_MARGIN`.

    A geographic CRS used in China (CGCS2000's area of use stops at 16.7°N)
    also accepts all of :data:`CHINA_BOUNDS`, down to the Nansha Islands.
    """
    area = crs.area_of_use
    if area is None or area.west > area.east:  # unknown, or across the antimeridian
        west, south, east, north = -180.0, -90.0, 180.0, 90.0
    else:
        west, south, east, north = area.bounds
    c_west, c_south, c_east, c_north = CHINA_BOUNDS
    if (
        crs.is_geographic
        and west < c_east
        and c_west < east
        and south < c_north
        and c_south < north
    ):
        west, south = min(west, c_west), min(south, c_south)
        east, north = max(east, c_east), max(north, c_north)
    m = _AREA_MARGIN
    return max(west - m, -180.0), max(south - m, -90.0), min(east + m, 180.0), min(north + m, 90.0)


def _degree_bounds(crs: CRS, bounds: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-row ``(lon_min, lat_min, lon_max, lat_max)`` of ``(n, 4)`` bounds in ``crs``.

    A projected CRS's bounds are mapped corner by corner; coordinates the
    projection cannot invert come back infinite, i.e. outside any area.
    """
    if crs.is_geographic:
        return bounds[:, 0], bounds[:, 1], bounds[:, 2], bounds[:, 3]
    to_degrees = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    x = bounds[:, [0, 2, 0, 2]]
    y = bounds[:, [1, 1, 3, 3]]
    with np.errstate(invalid="ignore"):
        lon, lat = to_degrees.transform(x, y, errcheck=False)
    lon = np.where(np.isfinite(lon), lon, np.inf)
    lat = np.where(np.isfinite(lat), lat, np.inf)
    return lon.min(axis=1), lat.min(axis=1), lon.max(axis=1), lat.max(axis=1)


def _diagnosis(crs: CRS, bounds: tuple[float, float, float, float], config: GridConfig) -> str:
    """What the coordinates of a layer outside its CRS's area of use look like, and the fix."""
    minx, miny, maxx, maxy = bounds
    set_it = (
        "Give the layer its real CRS: fix or add its .prj file, or in Python "
        "layer.set_crs(..., allow_override=True)."
    )
    degrees = minx >= -180 and maxx <= 180 and miny >= -90 and maxy <= 90
    west, south, east, north = _allowed_area(crs) if crs.is_geographic else (-180, -90, 180, 90)
    swapped = west <= miny and maxy <= east and south <= minx and maxx <= north
    if crs.is_geographic and max(abs(minx), abs(maxx), abs(miny), abs(maxy)) > 360:
        metric = metric_crs(config)
        return (
            "the coordinates look like metres of a projected CRS, not degrees. "
            f"{set_it} Here, for example, {_crs_label(metric)} ({metric.name})."
        )
    if crs.is_geographic and swapped:
        return (
            "latitude and longitude look swapped (x holds latitudes, y longitudes). "
            "Export the layer again with x = longitude and y = latitude."
        )
    if not crs.is_geographic and degrees:
        return (
            "the coordinates look like longitude/latitude in degrees, not metres. "
            f"{set_it} For CGCS2000 longitude/latitude that is EPSG:4490."
        )
    return f"check which CRS the coordinates were drawn in. {set_it}"


def _crs_label(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def _code_of(frame: gpd.GeoDataFrame, row: int) -> str:
    return f" (code {frame['code'].iloc[row]})" if "code" in frame.columns else ""


# -- GCJ-02 and BD-09 ------------------------------------------------------------
#
# GCJ-02 adds to WGS-84 a published polynomial-and-sine offset, scaled to degrees
# on the Krasovsky ellipsoid; BD-09 rotates and scales GCJ-02 about the origin and
# shifts it. Every function takes longitudes and latitudes in degrees as scalars
# or arrays of any (broadcastable) shape, and works on whole arrays at once.

Floats = NDArray[np.float64] | np.float64
"""A float array, or a numpy float for scalar input."""

_KRASOVSKY_A = 6378245.0  # semi-major axis, metres
_KRASOVSKY_EE = 0.00669342162296594323  # first eccentricity squared
_BD_X_PI = math.pi * 3000.0 / 180.0
_MAX_ITERATIONS = 30  # 5 rounds take every point in China to 1e-9°

_SYSTEMS = {
    "wgs84": "wgs84",
    "wgs-84": "wgs84",
    "cgcs2000": "wgs84",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "amap": "gcj02",
    "gaode": "gcj02",
    "tencent": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
    "baidu": "bd09",
}
COORDINATE_SYSTEMS: tuple[str, ...] = tuple(_SYSTEMS)
"""Names accepted by :func:`to_wgs84` and :func:`from_wgs84` (any letter case)."""


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_] | np.bool_:
    """Whether points fall in the rough box where the GCJ-02 offset applies.

    The published convention, :data:`CHINA_BOUNDS`: longitude 73.66–135.05 E
    and latitude 3.86–53.55 N, bounds included. It is a box, not China's
    border. gridgeo uses it for GCJ-02/BD-09 and to tell swapped longitude
    and latitude apart.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees.

    Returns
    -------
    numpy.ndarray of bool
        The broadcast shape of the inputs (a numpy bool for scalars). NaN is
        outside.

    Examples
    --------
    >>> in_china([108.6319, 2.35], [40.7364, 48.86]).tolist()
    [True, False]
    """
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    west, south, east, north = CHINA_BOUNDS
    inside = (x >= west) & (x <= east) & (y >= south) & (y <= north)
    return inside[()] if inside.ndim == 0 else inside


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """WGS-84 (or CGCS2000) longitude/latitude to GCJ-02, as on AMap and Tencent.

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 longitude and latitude in degrees; scalars or arrays.

    Returns
    -------
    tuple of numpy.ndarray
        GCJ-02 ``(lon, lat)`` in the broadcast shape of the inputs (numpy floats
        for scalars). Points outside :func:`in_china` and NaN come back unchanged.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.404, 39.915)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.410244, 39.916404)
    """
    return _in_china_only(lon, lat, _wgs84_to_gcj02)


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, *, tolerance: float = 1e-9
) -> tuple[Floats, Floats]:
    """GCJ-02 longitude/latitude (AMap, Tencent) back to WGS-84.

    The offset has no closed-form inverse, so the point ``p`` with
    ``wgs84_to_gcj02(p)`` equal to the input is found by fixed-point iteration,
    all points at once; each step shrinks the error a hundredfold or more, and
    five steps reach 1e-9° everywhere in China.

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitude and latitude in degrees; scalars or arrays.
    tolerance : float, default 1e-9
        Stop once re-applying the forward transform misses the input by at most
        this many degrees in each coordinate (1e-9° is about 0.1 mm), or after
        30 iterations. The result is then closer still.

    Returns
    -------
    tuple of numpy.ndarray
        WGS-84 ``(lon, lat)`` in the broadcast shape of the inputs. Points
        outside :func:`in_china` and NaN come back unchanged.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02(108.6319, 40.7364))
    >>> round(float(lon), 9), round(float(lat), 9)
    (108.6319, 40.7364)
    """
    _check_tolerance(tolerance)
    return _in_china_only(lon, lat, lambda x, y: _gcj02_to_wgs84(x, y, tolerance))


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """GCJ-02 longitude/latitude to BD-09, as on Baidu Maps.

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitude and latitude in degrees; scalars or arrays.

    Returns
    -------
    tuple of numpy.ndarray
        BD-09 ``(lon, lat)`` in the broadcast shape of the inputs. Points
        outside :func:`in_china` and NaN come back unchanged.

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09(116.404, 39.915)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.410369, 39.921337)
    """
    return _in_china_only(lon, lat, _gcj02_to_bd09)


def bd09_to_gcj02(
    lon: ArrayLike, lat: ArrayLike, *, tolerance: float = 1e-9
) -> tuple[Floats, Floats]:
    """BD-09 longitude/latitude (Baidu) back to GCJ-02.

    Starts from the usual closed-form approximate inverse, which misses by up
    to about 20 cm, and refines it by fixed-point iteration against
    :func:`gcj02_to_bd09`.

    Parameters
    ----------
    lon, lat : array_like
        BD-09 longitude and latitude in degrees; scalars or arrays.
    tolerance : float, default 1e-9
        Degrees; as for :func:`gcj02_to_wgs84`.

    Returns
    -------
    tuple of numpy.ndarray
        GCJ-02 ``(lon, lat)`` in the broadcast shape of the inputs. Points
        outside :func:`in_china` and NaN come back unchanged.

    Examples
    --------
    >>> lon, lat = bd09_to_gcj02(*gcj02_to_bd09(108.6319, 40.7364))
    >>> round(float(lon), 9), round(float(lat), 9)
    (108.6319, 40.7364)
    """
    _check_tolerance(tolerance)
    return _in_china_only(lon, lat, lambda x, y: _bd09_to_gcj02(x, y, tolerance))


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """WGS-84 longitude/latitude to BD-09 (through GCJ-02).

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 longitude and latitude in degrees; scalars or arrays.

    Returns
    -------
    tuple of numpy.ndarray
        BD-09 ``(lon, lat)``; points outside :func:`in_china` and NaN unchanged.

    Examples
    --------
    >>> lon, lat = wgs84_to_bd09(121.0917077, 30.6107779)
    >>> round(float(lon), 6), round(float(lat), 6)
    (121.102717, 30.614846)
    """
    return _in_china_only(lon, lat, lambda x, y: _gcj02_to_bd09(*_wgs84_to_gcj02(x, y)))


def bd09_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, *, tolerance: float = 1e-9
) -> tuple[Floats, Floats]:
    """BD-09 longitude/latitude (Baidu) back to WGS-84 (through GCJ-02).

    Parameters
    ----------
    lon, lat : array_like
        BD-09 longitude and latitude in degrees; scalars or arrays.
    tolerance : float, default 1e-9
        Degrees, for each of the two iterative steps; see :func:`gcj02_to_wgs84`.

    Returns
    -------
    tuple of numpy.ndarray
        WGS-84 ``(lon, lat)``; points outside :func:`in_china` and NaN unchanged.

    Examples
    --------
    >>> lon, lat = bd09_to_wgs84(*wgs84_to_bd09(108.6319, 40.7364))
    >>> round(float(lon), 9), round(float(lat), 9)
    (108.6319, 40.7364)
    """
    _check_tolerance(tolerance)

    def inverse(x: NDArray[np.float64], y: NDArray[np.float64]) -> _Pair:
        return _gcj02_to_wgs84(*_bd09_to_gcj02(x, y, tolerance), tolerance)

    return _in_china_only(lon, lat, inverse)


def to_wgs84(lon: ArrayLike, lat: ArrayLike, system: str) -> tuple[Floats, Floats]:
    """Longitude/latitude in ``system`` converted to WGS-84.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees; scalars or arrays.
    system : str
        The system the points are in, any letter case: ``"wgs84"``,
        ``"cgcs2000"`` (taken as WGS-84, as everywhere in gridgeo), ``"gcj02"``
        (also ``"gcj-02"``, ``"amap"``, ``"gaode"``, ``"tencent"``) or ``"bd09"``
        (also ``"bd-09"``, ``"baidu"``).

    Returns
    -------
    tuple of numpy.ndarray
        WGS-84 ``(lon, lat)`` in the broadcast shape of the inputs.

    Raises
    ------
    CrsError
        If ``system`` is not one of the names above.

    Examples
    --------
    >>> lon, lat = to_wgs84([116.41024449916938], [39.91640428150164], "AMap")
    >>> lon.round(6).tolist(), lat.round(6).tolist()
    ([116.404], [39.915])
    """
    canonical = _system(system)
    if canonical == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if canonical == "bd09":
        return bd09_to_wgs84(lon, lat)
    return _in_china_only(lon, lat, lambda x, y: (x, y))


def from_wgs84(lon: ArrayLike, lat: ArrayLike, system: str) -> tuple[Floats, Floats]:
    """WGS-84 longitude/latitude converted to ``system``; the reverse of :func:`to_wgs84`.

    Use it to shift a layer onto AMap or Baidu tiles, which are drawn in
    GCJ-02 and BD-09.

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 longitude and latitude in degrees; scalars or arrays.
    system : str
        The target system; the names of :func:`to_wgs84`.

    Returns
    -------
    tuple of numpy.ndarray
        ``(lon, lat)`` in ``system``, in the broadcast shape of the inputs.

    Raises
    ------
    CrsError
        If ``system`` is not one of the accepted names.

    Examples
    --------
    >>> lon, lat = from_wgs84([116.404], [39.915], "gcj02")
    >>> lon.round(6).tolist(), lat.round(6).tolist()
    ([116.410244], [39.916404])
    """
    canonical = _system(system)
    if canonical == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if canonical == "bd09":
        return wgs84_to_bd09(lon, lat)
    return _in_china_only(lon, lat, lambda x, y: (x, y))


# -- internals: flat float arrays, no masking --------------------------------------

_Pair = tuple[NDArray[np.float64], NDArray[np.float64]]


def _system(system: str) -> str:
    """The canonical name of ``system``; :class:`CrsError` if it is unknown."""
    key = system.strip().lower() if isinstance(system, str) else None
    if key not in _SYSTEMS:
        raise CrsError(
            f"Unknown coordinate system {system!r}. Use one of: "
            f"{', '.join(COORDINATE_SYSTEMS)} (any letter case). CGCS2000 counts as "
            "WGS-84; AMap, Gaode and Tencent publish GCJ-02; Baidu publishes BD-09."
        )
    return _SYSTEMS[key]


def _check_tolerance(tolerance: float) -> None:
    if not tolerance > 0:
        raise ValueError(f"tolerance must be a positive number of degrees, not {tolerance!r}")


def _in_china_only(
    lon: ArrayLike, lat: ArrayLike, transform: Callable[[NDArray, NDArray], _Pair]
) -> tuple[Floats, Floats]:
    """``transform`` applied to the points inside :func:`in_china`; the rest unchanged.

    ``transform`` sees flat float arrays of in-box points only, so NaN and
    infinities (never in the box) pass through untouched and warning-free.
    """
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    shape = x.shape
    x = x.ravel().copy()
    y = y.ravel().copy()
    inside = np.flatnonzero(in_china(x, y))
    if inside.size:
        x[inside], y[inside] = transform(x[inside], y[inside])
    x, y = x.reshape(shape), y.reshape(shape)
    return (x[()], y[()]) if x.ndim == 0 else (x, y)


def _gcj02_offset(lon: NDArray, lat: NDArray) -> _Pair:
    """The published GCJ-02 offset ``(dlon, dlat)`` in degrees at WGS-84 ``lon, lat``."""
    x = lon - 105.0
    y = lat - 35.0
    root = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * np.pi * x) + 20.0 * np.sin(2.0 * np.pi * x)) * 2.0 / 3.0
    # Both "distortions" are in metres-like units on the Krasovsky ellipsoid.
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * root + common
    dlat += (20.0 * np.sin(np.pi * y) + 40.0 * np.sin(np.pi * y / 3.0)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(np.pi * y / 12.0) + 320.0 * np.sin(np.pi * y / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * root + common
    dlon += (20.0 * np.sin(np.pi * x) + 40.0 * np.sin(np.pi * x / 3.0)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(np.pi * x / 12.0) + 300.0 * np.sin(np.pi * x / 30.0)) * 2.0 / 3.0

    phi = np.radians(lat)
    w = 1.0 - _KRASOVSKY_EE * np.sin(phi) ** 2
    meridian = _KRASOVSKY_A * (1.0 - _KRASOVSKY_EE) / (w * np.sqrt(w))  # radius M
    normal = _KRASOVSKY_A / np.sqrt(w)  # radius N
    return np.degrees(dlon / (normal * np.cos(phi))), np.degrees(dlat / meridian)


def _wgs84_to_gcj02(lon: NDArray, lat: NDArray) -> _Pair:
    dlon, dlat = _gcj02_offset(lon, lat)
    return lon + dlon, lat + dlat


def _gcj02_to_bd09(lon: NDArray, lat: NDArray) -> _Pair:
    r = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_X_PI)
    return r * np.cos(theta) + 0.0065, r * np.sin(theta) + 0.006


def _bd09_to_gcj02_approx(lon: NDArray, lat: NDArray) -> _Pair:
    """The usual closed-form inverse of :func:`_gcj02_to_bd09` (good to about 20 cm)."""
    x = lon - 0.0065
    y = lat - 0.006
    r = np.hypot(x, y) - 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_X_PI)
    return r * np.cos(theta), r * np.sin(theta)


def _gcj02_to_wgs84(lon: NDArray, lat: NDArray, tolerance: float) -> _Pair:
    return _invert(_wgs84_to_gcj02, lon, lat, lon, lat, tolerance)


def _bd09_to_gcj02(lon: NDArray, lat: NDArray, tolerance: float) -> _Pair:
    start_lon, start_lat = _bd09_to_gcj02_approx(lon, lat)
    return _invert(_gcj02_to_bd09, lon, lat, start_lon, start_lat, tolerance)


def _invert(
    forward: Callable[[NDArray, NDArray], _Pair],
    lon: NDArray,
    lat: NDArray,
    start_lon: NDArray,
    start_lat: NDArray,
    tolerance: float,
) -> _Pair:
    """Solve ``forward(p) == (lon, lat)`` by the fixed-point step ``p -= forward(p) - target``.

    Both transforms are the identity plus a slowly varying shift (its
    derivative is a few thousandths), so each step divides the error by a hundred or more.
    Only points still missing by more than ``tolerance`` degrees are stepped
    again, for at most ``_MAX_ITERATIONS`` rounds.
    """
    x = np.array(start_lon, dtype=float)
    y = np.array(start_lat, dtype=float)
    active = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    for _ in range(_MAX_ITERATIONS):
        if active.size == 0:
            break
        fx, fy = forward(x[active], y[active])
        miss_x = fx - lon[active]
        miss_y = fy - lat[active]
        x[active] -= miss_x
        y[active] -= miss_y
        active = active[(np.abs(miss_x) > tolerance) | (np.abs(miss_y) > tolerance)]
    return x, y
