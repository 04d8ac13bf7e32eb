"""Bayannur's real county polygons (Tianditu and AMap, see tests/data/counties/README.md).

gridgeo's gap and overlap areas must equal a direct GEOS computation on the same
coordinates: every layer is first put in the metric CRS the check measures in,
so both sides see identical geometry.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridgeo.check import check_layer
from gridgeo.crs import wgs84_to_gcj02

DATA = Path(__file__).parent / "data" / "counties"
METRIC = "EPSG:4545"  # CGCS2000 3-degree Gauss-Krüger, CM 108°E: Bayannur's middle
DUST = 0.01  # m: gridgeo's default dust tolerance


def source(name: str) -> gpd.GeoDataFrame:
    return gpd.read_file(DATA / f"bayannur_{name}.geojson").to_crs(METRIC)


def mixed() -> gpd.GeoDataFrame:
    """Even codes from Tianditu, odd from AMap (as benchmarks/real_counties.py mixes)."""
    tdt, amp = source("tianditu"), source("amap")
    even = tdt["code"].astype(int).to_numpy() % 2 == 0
    return tdt.set_geometry(np.where(even, tdt.geometry.to_numpy(), amp.geometry.to_numpy()))


def _polygonal(geoms) -> np.ndarray:
    """The polygon pieces of each geometry (lines and points of contact dropped)."""
    parts = shapely.get_parts(geoms)
    return parts[np.isin(shapely.get_type_id(parts), (3, 6))]


def _wide_area(pieces) -> float:
    """Area of the connected pieces at least the dust tolerance wide (as the check reports)."""
    pieces = _polygonal(pieces)
    wide = ~shapely.is_empty(shapely.buffer(pieces, -DUST / 2, quad_segs=16))
    return float(shapely.area(pieces[wide]).sum())


def geos_areas(frame: gpd.GeoDataFrame) -> tuple[float, float]:
    """(gap, overlap) m² by plain GEOS: holes of the union; pairwise intersections."""
    geoms = frame.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    overlap = shapely.intersection(geoms[left[keep]], geoms[right[keep]])
    parts = shapely.get_parts(shapely.union_all(geoms))
    holes = [shapely.Polygon(ring) for part in parts for ring in part.interiors]
    return _wide_area(np.array(holes, dtype=object)), _wide_area(overlap)


def gridgeo_areas(frame: gpd.GeoDataFrame) -> tuple[float, float]:
    defects = check_layer(frame, id="code", metric=METRIC).defects
    gap_like = defects["kind"].eq("gap") | (
        defects["kind"].eq("sliver") & defects["message_en"].astype(str).str.contains("gap")
    )
    overlap_like = defects["kind"].eq("overlap") | (
        defects["kind"].eq("sliver") & defects["message_en"].astype(str).str.contains("overlap")
    )
    return (
        float(defects.loc[gap_like, "area_m2"].sum()),
        float(defects.loc[overlap_like, "area_m2"].sum()),
    )


@pytest.mark.parametrize("layer", ["tianditu", "amap", "mixed"])
def test_gap_and_overlap_areas_match_geos(layer):
    frame = mixed() if layer == "mixed" else source(layer)
    assert len(frame) == 7
    expected = geos_areas(frame)
    got = gridgeo_areas(frame)
    for g, e in zip(got, expected, strict=True):
        assert abs(g - e) <= max(1.0, 1e-6 * e), (layer, got, expected)
    if layer == "mixed":  # the two sources disagree along every border they share
        assert expected[0] > 1e6 and expected[1] > 1e6


def test_amap_fixture_is_converted_from_gcj02():
    # Converted, AMap's counties sit on Tianditu's to within digitising
    # differences (median centroid distance ~100 m); shifted back into GCJ-02
    # they would be ~440 m off, the datum shift of unconverted AMap data.
    tdt, amp = source("tianditu"), source("amap")

    def shifted(xy):
        return np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1]))

    raw = gpd.GeoSeries(
        shapely.transform(amp.to_crs(4490).geometry.to_numpy(), shifted), crs=4490
    ).to_crs(METRIC)
    centre = tdt.geometry.centroid.to_numpy()
    converted = np.median(shapely.distance(centre, amp.geometry.centroid.to_numpy()))
    unconverted = np.median(shapely.distance(centre, raw.centroid.to_numpy()))
    assert converted < 150 < 300 < unconverted
    assert np.allclose(amp.geometry.area / tdt.geometry.area, 1, atol=0.02)


@pytest.mark.parametrize("layer, outline", [("tianditu", "amap"), ("amap", "tianditu")])
def test_one_source_against_the_other_sources_city_outline(layer, outline):
    # Each source alone is a clean coverage; against the other source's
    # outline of the city it leaves gaps and sticks out, by the same areas as
    # plain GEOS differences.
    frame = source(layer)
    city = shapely.union_all(source(outline).geometry.to_numpy())
    union = shapely.union_all(frame.geometry.to_numpy())
    defects = check_layer(frame, within=city, id="code", metric=METRIC).defects
    gap = defects["kind"].eq("gap") | (
        defects["kind"].eq("sliver") & defects["message_en"].astype(str).str.contains("gap")
    )
    expected_gap = _wide_area(shapely.difference(city, union))
    expected_out = _wide_area(shapely.difference(frame.geometry.to_numpy(), city))
    got_out = defects.loc[defects["kind"].eq("outside_parent"), "area_m2"].sum()
    assert expected_gap > 1e6 and expected_out > 1e6
    assert abs(defects.loc[gap, "area_m2"].sum() - expected_gap) <= max(1.0, 1e-6 * expected_gap)
    assert abs(got_out - expected_out) <= max(1.0, 1e-6 * expected_out)
