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

import math
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from gridgeo.config import BANNER, GridConfig
from gridgeo.errors import CrsError, GeometryError

__all__ = [
    "CHINA_BOUNDS",
    "COORDINATE_SYSTEMS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "check_coordinates",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "metric_crs",
    "require_crs",
    "to_metric",
    "to_wgs84",
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


def metric_crs(config: GridConfig = BANNER) -> CRS:
    """The projected CRS used for every metric computation.

    For the banner this is CGCS2000 / 3-degree Gauss-Kruger CM 108E
    (EPSG:4545): one CRS for the whole banner, worst scale error about 3e-4.

    >>> metric_crs().to_epsg()
    4545
    """
    return CRS.from_user_input(config.metric_crs)


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


def to_metric(frame: gpd.GeoDataFrame, config: GridConfig = BANNER) -> gpd.GeoDataFrame:
    """``frame`` reprojected to :func:`metric_crs` (a no-op when it already is).

    >>> import geopandas as gpd
    >>> from shapely import box
    >>> g = gpd.GeoDataFrame(geometry=[box(108.6, 40.7, 108.61, 40.71)], crs=4490)
    >>> round(float(to_metric(g).area.iloc[0]) / 1e6, 2)  # km²
    0.94
    """
    target = metric_crs(config)
    if CRS.from_user_input(require_crs(frame, "the layer")) == target:
        return frame
    return frame.to_crs(target)


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
