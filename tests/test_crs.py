"""gridgeo.crs: GCJ-02 and BD-09 against published values, round trips, edge cases."""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

import gridgeo.crs
from gridgeo.crs import (
    COORDINATE_SYSTEMS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_china,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from gridgeo.errors import CrsError

GEOD = Geod(ellps="WGS84")
WULASHAN = (108.6319, 40.7364)  # the banner seat, WGS-84
CENTIMETRE = 0.01


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance in metres, elementwise."""
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def close(got, expected, abs_deg: float) -> bool:
    return bool(np.allclose(np.asarray(got, dtype=float), expected, rtol=0, atol=abs_deg))


# -- published reference values ---------------------------------------------------
#
# wandergis/coordtransform, test/app.js (https://github.com/wandergis/coordtransform):
# the widely copied JavaScript implementation, results printed to full double precision
# for the input (116.404, 39.915).
WANDERGIS_IN = (116.404, 39.915)
WANDERGIS_WGS_TO_GCJ = (116.41024449916938, 39.91640428150164)
WANDERGIS_GCJ_TO_BD = (116.41036949371029, 39.92133699351021)
WANDERGIS_BD_TO_GCJ = (116.39762729119315, 39.90865673957631)  # closed-form approximation


def test_wandergis_forward_values():
    assert close(wgs84_to_gcj02(*WANDERGIS_IN), WANDERGIS_WGS_TO_GCJ, 1e-10)
    assert close(gcj02_to_bd09(*WANDERGIS_IN), WANDERGIS_GCJ_TO_BD, 1e-10)


def test_wandergis_bd09_inverse_refines_the_closed_form():
    # wandergis publishes the one-step closed-form inverse; ours iterates it to exactness,
    # so the two differ by a few centimetres only, and ours maps back onto the input.
    lon, lat = bd09_to_gcj02(*WANDERGIS_IN)
    assert close((lon, lat), WANDERGIS_BD_TO_GCJ, 1e-6)
    assert metres(lon, lat, *WANDERGIS_BD_TO_GCJ) < 0.2
    assert close(gcj02_to_bd09(lon, lat), WANDERGIS_IN, 1e-10)


# googollee/eviltransform, python/test.py (https://github.com/googollee/eviltransform):
# (wgs lat, wgs lng, gcj lat, gcj lng) for Shanghai, Shenzhen and Beijing.
EVILTRANSFORM = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
]


@pytest.mark.parametrize(("wgs_lat", "wgs_lon", "gcj_lat", "gcj_lon"), EVILTRANSFORM)
def test_eviltransform_pairs(wgs_lat, wgs_lon, gcj_lat, gcj_lon):
    assert close(wgs84_to_gcj02(wgs_lon, wgs_lat), (gcj_lon, gcj_lat), 1e-10)
    assert close(gcj02_to_wgs84(gcj_lon, gcj_lat), (wgs_lon, wgs_lat), 1e-10)


def test_eviltransform_pairs_vectorised():
    wgs_lat, wgs_lon, gcj_lat, gcj_lon = map(np.array, zip(*EVILTRANSFORM, strict=True))
    lon, lat = wgs84_to_gcj02(wgs_lon, wgs_lat)
    assert close(lon, gcj_lon, 1e-10) and close(lat, gcj_lat, 1e-10)
    lon, lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert close(lon, wgs_lon, 1e-10) and close(lat, wgs_lat, 1e-10)


# hujiulong/gcoord, test/unit/crs/WGS84.spec.ts and GCJ02.spec.ts
# (https://github.com/hujiulong/gcoord): values at (123, 45), cut to 8 (BD-09 from
# WGS-84: 7) decimals; gcoord checks them to 5 decimals.
def test_gcoord_values_at_123_45():
    assert close(wgs84_to_gcj02(123, 45), (123.00607541, 45.00197815), 1e-8)
    assert close(gcj02_to_bd09(123, 45), (123.00636499, 45.00636899), 1e-8)
    assert close(wgs84_to_bd09(123, 45), (123.0124491, 45.0083293), 1e-7)
    # gcoord's own GCJ-02 -> WGS-84 is approximate (1.6 cm off); to its 5 decimals:
    assert close(gcj02_to_wgs84(123, 45), (122.99395597, 44.99804071), 5e-6)
    assert close(wgs84_to_gcj02(*gcj02_to_wgs84(123, 45)), (123, 45), 1e-10)


# hujiulong/gcoord, test/fixtures/china-cities.json: the same place in WGS-84, GCJ-02 and
# BD-09, 7 decimals. GCJ-02 <-> BD-09 agree with the formula to those 7 decimals. The
# fixture's GCJ-02 sits a steady ~0.5 m from the published WGS-84 formula (map-provider
# values, presumably), which gcoord itself tolerates: it checks them to 4 decimals.
GCOORD_CITIES = {
    "Xilinhot (Inner Mongolia)": (
        (116.0414035, 43.9312805),
        (116.0482308, 43.9334573),
        (116.0546232, 43.9397782),
    ),
    "Jiuquan": ((98.4937175, 39.7319946), (98.4943595, 39.7328234), (98.5008441, 39.7388949)),
    "Shenyang": ((123.4253306, 41.8032629), (123.4314787, 41.8057023), (123.438095, 41.8114013)),
    "Nagqu": ((92.0499619, 31.4784436), (92.0512438, 31.4762063), (92.0576832, 31.4824421)),
    "Zhumadian": (
        (114.0164322, 33.0133556),
        (114.022306, 33.0115324),
        (114.0287781, 33.0176697),
    ),
}


@pytest.mark.parametrize("city", sorted(GCOORD_CITIES))
def test_gcoord_china_cities(city):
    wgs, gcj, bd = GCOORD_CITIES[city]
    assert close(gcj02_to_bd09(*gcj), bd, 5e-8)  # 7 decimals, rounded
    assert close(bd09_to_gcj02(*bd), gcj, 5e-8)
    assert close(wgs84_to_gcj02(*wgs), gcj, 1e-5)
    assert close(gcj02_to_wgs84(*gcj), wgs, 1e-5)
    assert metres(*wgs84_to_gcj02(*wgs), *gcj) < 1.0


# -- the banner ---------------------------------------------------------------------
def test_offset_at_wulashan():
    gcj_shift = metres(*WULASHAN, *wgs84_to_gcj02(*WULASHAN))
    bd_shift = metres(*WULASHAN, *wgs84_to_bd09(*WULASHAN))
    assert 400 < gcj_shift < 600
    assert 1000 < bd_shift < 1600


# -- round trips ----------------------------------------------------------------------
LON = st.floats(74, 134, allow_nan=False)
LAT = st.floats(18, 53, allow_nan=False)
POINTS = st.lists(st.tuples(LON, LAT), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(POINTS)
def test_gcj02_round_trip_within_a_centimetre(points):
    lon, lat = map(np.array, zip(*points, strict=True))
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres(lon, lat, *back).max() < CENTIMETRE
    # and the other way round: the inverse really inverts the forward transform
    assert metres(lon, lat, *wgs84_to_gcj02(*gcj02_to_wgs84(lon, lat))).max() < CENTIMETRE


@settings(max_examples=300, deadline=None)
@given(POINTS)
def test_bd09_round_trip_within_a_centimetre(points):
    lon, lat = map(np.array, zip(*points, strict=True))
    assert metres(lon, lat, *bd09_to_wgs84(*wgs84_to_bd09(lon, lat))).max() < CENTIMETRE
    assert metres(lon, lat, *bd09_to_gcj02(*gcj02_to_bd09(lon, lat))).max() < CENTIMETRE
    assert metres(lon, lat, *gcj02_to_bd09(*bd09_to_gcj02(lon, lat))).max() < CENTIMETRE


@settings(max_examples=200, deadline=None)
@given(LON, LAT)
def test_scalar_round_trip(lon, lat):
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert isinstance(back_lon, np.float64) and isinstance(back_lat, np.float64)
    assert metres(lon, lat, back_lon, back_lat) < CENTIMETRE


def test_hundred_thousand_points_at_once():
    rng = np.random.default_rng(20240601)
    lon = rng.uniform(74, 134, 100_000)
    lat = rng.uniform(18, 53, 100_000)
    gcj_error = metres(lon, lat, *gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat)))
    bd_error = metres(lon, lat, *bd09_to_wgs84(*wgs84_to_bd09(lon, lat)))
    assert gcj_error.max() < 1e-4  # 0.1 mm
    assert bd_error.max() < 1e-4


def test_shape_is_kept_and_scalars_broadcast():
    lon = np.full((3, 4), 108.6319)
    got_lon, got_lat = wgs84_to_bd09(lon, 40.7364)
    assert got_lon.shape == got_lat.shape == (3, 4)
    assert close(got_lon, wgs84_to_bd09(*WULASHAN)[0], 1e-12)
    got_lon, got_lat = to_wgs84([[108.6, 108.7]], [[40.7, 40.8]], "wgs84")
    assert got_lon.tolist() == [[108.6, 108.7]] and got_lat.tolist() == [[40.7, 40.8]]


def test_inputs_are_not_modified():
    lon = np.array([108.6319, 108.7])
    lat = np.array([40.7364, 40.8])
    out_lon, _ = gcj02_to_wgs84(lon, lat)
    assert lon.tolist() == [108.6319, 108.7] and lat.tolist() == [40.7364, 40.8]
    assert out_lon is not lon


# -- outside China, NaN ----------------------------------------------------------------
OUTSIDE = {
    "Paris": (2.3522, 48.8566),
    "Tokyo": (139.6917, 35.6895),
    "Singapore": (103.8198, 1.3521),
    "New York": (-74.006, 40.7128),
    "Moscow": (37.6173, 55.7558),
}
TRANSFORMS = [
    wgs84_to_gcj02,
    gcj02_to_wgs84,
    gcj02_to_bd09,
    bd09_to_gcj02,
    wgs84_to_bd09,
    bd09_to_wgs84,
]


@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda f: f.__name__)
def test_identity_outside_china(transform):
    lon, lat = map(np.array, zip(*OUTSIDE.values(), strict=True))
    assert not in_china(lon, lat).any()
    got_lon, got_lat = transform(lon, lat)
    assert got_lon.tolist() == lon.tolist() and got_lat.tolist() == lat.tolist()
    for system in ("gcj02", "bd09"):
        assert to_wgs84(lon, lat, system)[0].tolist() == lon.tolist()
        assert from_wgs84(lon, lat, system)[1].tolist() == lat.tolist()


def test_in_china_box():
    assert in_china(*WULASHAN)
    assert isinstance(in_china(*WULASHAN), np.bool_)
    # the published box is rough: it holds Ulaanbaatar, and its bounds are included
    assert in_china(106.9057, 47.8864)
    assert in_china([73.66, 135.05, 73.65, 135.06], [3.86, 53.55, 40, 40]).tolist() == [
        True,
        True,
        False,
        False,
    ]
    assert not in_china(np.nan, 40.0) and not in_china(108.0, np.nan)


@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda f: f.__name__)
def test_nan_propagates_quietly(transform):
    lon = np.array([108.6319, np.nan, np.nan, 108.7, np.inf])
    lat = np.array([40.7364, 40.7, np.nan, np.nan, 40.7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got_lon, got_lat = transform(lon, lat)
        scalar = transform(np.nan, np.nan)
    assert np.isnan(got_lon[[1, 2]]).all() and np.isnan(got_lat[[2, 3]]).all()
    assert np.isfinite(got_lon[0]) and np.isfinite(got_lat[0]) and got_lon[0] != lon[0]
    assert got_lon[4] == np.inf
    assert np.isnan(scalar).all()


# -- system names -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("system", "inverse"),
    [
        ("wgs84", None),
        ("WGS84", None),
        ("CGCS2000", None),
        ("gcj02", gcj02_to_wgs84),
        ("GCJ-02", gcj02_to_wgs84),
        ("AMap", gcj02_to_wgs84),
        ("gaode", gcj02_to_wgs84),
        ("Tencent", gcj02_to_wgs84),
        ("bd09", bd09_to_wgs84),
        ("BD-09", bd09_to_wgs84),
        (" Baidu ", bd09_to_wgs84),
    ],
)
def test_system_names(system, inverse):
    lon = np.array([108.6319, 108.9])
    lat = np.array([40.7364, 41.1])
    got = to_wgs84(lon, lat, system)
    expected = (lon, lat) if inverse is None else inverse(lon, lat)
    assert close(got, expected, 1e-12)
    assert metres(lon, lat, *to_wgs84(*from_wgs84(lon, lat, system), system)).max() < 1e-4


@pytest.mark.parametrize("bad", ["utm", "EPSG:4326", "", "gcj2", None])
def test_unknown_system_raises_crs_error(bad):
    with pytest.raises(CrsError) as info:
        to_wgs84(108.6, 40.7, bad)
    message = str(info.value)
    assert repr(bad) in message
    assert all(name in message for name in ("wgs84", "cgcs2000", "gcj02", "bd09", "baidu"))
    with pytest.raises(CrsError):
        from_wgs84(108.6, 40.7, bad)


def test_accepted_names_are_listed():
    assert {"wgs84", "cgcs2000", "gcj02", "bd09", "amap", "gaode", "tencent", "baidu"} <= set(
        COORDINATE_SYSTEMS
    )


@pytest.mark.parametrize("tolerance", [0, -1e-9, float("nan")])
def test_tolerance_must_be_positive(tolerance):
    with pytest.raises(ValueError, match="tolerance"):
        gcj02_to_wgs84(108.6, 40.7, tolerance=tolerance)


def test_looser_tolerance_is_still_close():
    exact = gcj02_to_wgs84(*WULASHAN)
    rough = gcj02_to_wgs84(*WULASHAN, tolerance=1e-6)
    assert metres(*exact, *rough) < 0.1


def test_docstring_examples_run():
    result = doctest.testmod(gridgeo.crs, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10 and result.failed == 0


# -- one China box; coordinates against the CRS ---------------------------------------
def test_one_china_box_used_by_assign_too():
    import gridgeo.assign
    import gridgeo.crs

    assert not hasattr(gridgeo.assign, "CHINA") and not hasattr(gridgeo.crs, "_CHINA_LON")
    west, south, east, north = gridgeo.crs.CHINA_BOUNDS
    assert in_china([west, east], [south, north]).all()
    assert not in_china([west - 0.01, east + 0.01], [30, 30]).any()


@settings(max_examples=40, deadline=None)
@given(st.floats(74, 134), st.floats(5, 53))
def test_check_coordinates_accepts_china_and_names_swaps_and_metres(lon, lat):
    import geopandas as gpd
    from shapely import box

    from gridgeo.crs import check_coordinates
    from gridgeo.errors import CrsError

    ok = gpd.GeoDataFrame(geometry=[box(lon, lat, lon + 0.1, lat + 0.1)], crs=4490)
    check_coordinates(ok, "layer 'grid'")  # all of China, the Nansha Islands too
    for crs in (4490, 4326) if lon > 90 else (4490,):  # (lat, lon) north of 90°: swapped
        swapped = gpd.GeoDataFrame(geometry=[box(lat, lon, lat + 0.1, lon + 0.1)], crs=crs)
        with pytest.raises(CrsError, match=f"layer 'grid'.*EPSG:{crs}.*look swapped"):
            check_coordinates(swapped, "layer 'grid'")
    metres = ok.to_crs(ok.estimate_utm_crs()).set_crs(4490, allow_override=True)
    with pytest.raises(CrsError, match="look like metres"):
        check_coordinates(metres, "layer 'grid'")


# -- the one projector ---------------------------------------------------------------
def _banner_auto():
    from dataclasses import replace

    from gridgeo.config import BANNER

    return replace(BANNER, metric_crs="auto")


def test_auto_metric_crs_picks_cm_108_for_the_banner():
    import sys
    from pathlib import Path

    from gridgeo.crs import metric_crs

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import tiny_layers

    crs = metric_crs(_banner_auto(), tiny_layers()["banner"])
    assert crs.to_epsg() == 4545 and "CM 108E" in crs.name
    # The demo banner's own extent, and the same extent given in metres.
    from gridgeo import load_demo

    root = load_demo().levels["banner"]
    assert metric_crs(_banner_auto(), root).to_epsg() == 4545
    assert metric_crs(_banner_auto(), root.to_crs(3857)).to_epsg() == 4545


@pytest.mark.parametrize(
    ("bounds", "epsg", "cm"),
    [
        ((119.7, 29.2, 120.7, 30.5), 4549, 120),  # Hangzhou: CM 120E, not 108E
        ((87.2, 43.6, 87.9, 44.1), 4538, 87),  # Urumqi
        ((134.0, 47.0, 134.9, 48.3), 4554, 135),  # the east end of the family
        ((-88.3, 41.6, -87.5, 42.2), 32616, -87),  # Chicago: WGS 84 / UTM 16N
    ],
)
def test_auto_metric_crs_is_the_nearest_zone_for_a_county(bounds, epsg, cm):
    from gridgeo.crs import metric_crs

    crs = metric_crs(_banner_auto(), bounds)
    assert crs.to_epsg() == epsg
    assert crs.coordinate_operation.params[1].value == cm  # the central meridian


def test_auto_metric_crs_is_equal_area_for_a_province():
    from shapely import box

    from gridgeo.crs import metric_crs, project

    bounds = (97.2, 37.4, 126.1, 53.3)  # Inner Mongolia
    crs = metric_crs(_banner_auto(), bounds)
    assert crs.to_epsg() is None and "Albers" in crs.name
    assert crs.coordinate_operation.method_name == "Albers Equal Area"
    cell = box(98.0, 38.0, 98.5, 38.5)  # a far corner: Albers keeps its area exact
    geodesic = abs(Geod(ellps="GRS80").geometry_area_perimeter(cell)[0])
    assert project(cell, 4490, crs).area == pytest.approx(geodesic, rel=1e-5)
    # CM 108E there would be 2 % off: the reason for "auto".
    assert abs(project(cell, 4490, 4545).area / geodesic - 1) > 0.01


def test_explicit_and_bad_metric_crs():
    from dataclasses import replace

    from gridgeo.config import BANNER
    from gridgeo.crs import metric_crs

    assert metric_crs(replace(BANNER, metric_crs="EPSG:4549"), (108, 40, 109, 41)).to_epsg() == 4549
    with pytest.raises(CrsError, match="no extent"):
        metric_crs(_banner_auto())
    with pytest.raises(CrsError, match=r"'EPSG:99999'.*not a coordinate reference system"):
        metric_crs(replace(BANNER, metric_crs="EPSG:99999"))


def test_long_straight_edges_land_where_they_were_drawn():
    from shapely import LineString, Point

    from gridgeo.crs import project

    edge = LineString([(108.0, 41.0), (109.0, 41.0)])  # 84 km along a parallel
    middle = Point(108.5, 41.0)
    chord = project([edge, middle], 4490, 4545, spacing=None)
    assert chord[0].distance(chord[1]) > 50  # the old projection: 80 m off
    curve = project([edge, middle], 4490, 4545)
    assert curve[0].distance(curve[1]) < 0.001


def test_projected_long_shared_edges_leave_no_false_gap():
    import geopandas as gpd
    from shapely import box

    from gridgeo.check import check_level

    # A 0.5° town split into four grids; the town's edges have only its corners,
    # the grids add vertices along them.
    town = gpd.GeoDataFrame({"code": ["150823100"], "parent_code": ["150823"]},
                            geometry=[box(108.0, 40.5, 108.5, 41.0)], crs=4490)  # fmt: skip
    cells = [box(108.0 + 0.25 * i, 40.5 + 0.25 * j, 108.25 + 0.25 * i, 40.75 + 0.25 * j)
             for i in range(2) for j in range(2)]  # fmt: skip
    grids = gpd.GeoDataFrame(
        {"code": [f"150823100{k:03d}" for k in range(1, 5)], "parent_code": ["150823100"] * 4},
        geometry=cells,
        crs=4490,
    )
    assert check_level(grids, "grid", town).empty
    # The same in metres: projecting corners only would open metres-wide gaps.
    from gridgeo.crs import project

    chord_town = project(town.geometry.iloc[0], 4490, 4545, spacing=None)
    chord_cells = project(grids.geometry.to_numpy(), 4490, 4545, spacing=None)
    import shapely

    assert chord_town.difference(shapely.union_all(chord_cells)).area > 10_000


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=4, max_size=4),
    st.floats(0.5, 400),
)
def test_densify_is_symmetric(xy, spacing):
    from shapely import LineString, get_coordinates

    from gridgeo.crs import densify

    p, q = tuple(xy[:2]), tuple(xy[2:])
    forward, backward = densify([LineString([p, q]), LineString([q, p])], spacing)
    a, b = get_coordinates(forward), get_coordinates(backward)[::-1]
    assert np.array_equal(a, b)  # bit for bit
    steps = np.hypot(*np.diff(a, axis=0).T)
    assert (steps <= spacing * (1 + 1e-9)).all()


def test_densify_keeps_types_holes_and_empties():
    from shapely import MultiPolygon, Point, Polygon, box

    from gridgeo.crs import densify

    donut = box(0, 0, 10, 10).difference(box(2, 2, 8, 8))
    multi = MultiPolygon([box(20, 0, 30, 10), box(40, 0, 50, 10)])
    out = densify([donut, multi, Point(1, 1), Polygon(), None], 1.0)
    assert [g.geom_type if g is not None else None for g in out] == [
        "Polygon", "MultiPolygon", "Point", "Polygon", None]  # fmt: skip
    assert out[0].equals(donut) and out[1].equals(multi)
    assert len(out[0].interiors) == 1 and len(out[0].exterior.coords) == 41


def test_transformers_are_cached_and_4326_is_as_fast_and_the_same_as_4490():
    import time

    from pyproj import CRS

    from gridgeo.crs import transformer

    wgs, cgcs, gk = CRS.from_epsg(4326), CRS.from_epsg(4490), CRS.from_epsg(4545)
    assert transformer(wgs, gk) is transformer(wgs, gk)
    lon = np.random.default_rng(1).uniform(108, 109, 200_000)
    lat = np.random.default_rng(2).uniform(40, 41, 200_000)
    assert np.array_equal(transformer(wgs, gk).transform(lon, lat),
                          transformer(cgcs, gk).transform(lon, lat))  # fmt: skip
    timings = {}
    for crs in (wgs, cgcs):
        start = time.perf_counter()
        for _ in range(3):
            transformer(crs, gk).transform(lon, lat)
        timings[crs.to_epsg()] = time.perf_counter() - start
    assert timings[4326] < 2 * timings[4490]  # it was 6.5 x before


def test_a_long_projection_shared_between_the_cores_equals_one_call(monkeypatch):
    import shapely

    from gridgeo import parallel
    from gridgeo.crs import _PROJECT_CHUNK, project

    rng = np.random.default_rng(5)
    # Scribbles: only the vertices matter.
    xy = np.c_[108 + rng.uniform(0, 1, 48_000), 40 + rng.uniform(0, 1, 48_000)]
    rings = shapely.linestrings(xy, indices=np.repeat(np.arange(4), 12_000))
    assert sum(shapely.get_num_coordinates(rings)) > 2 * _PROJECT_CHUNK  # two chunks at least
    shared = project(rings, 4490, 4545, spacing=None)
    monkeypatch.setattr(parallel, "WORKERS", 1)
    alone = project(rings, 4490, 4545, spacing=None)
    assert all(shapely.equals_exact(shared, alone, tolerance=0))
