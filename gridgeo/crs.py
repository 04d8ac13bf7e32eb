"""Coordinate reference systems.

Layers are stored in CGCS2000 (EPSG:4490), which for grid work equals WGS-84
to well under a metre. Anything metric — areas, distances, buffers, widths —
runs in one projected CRS, chosen by :func:`metric_crs` and nowhere else.
"""

from __future__ import annotations

import geopandas as gpd
from pyproj import CRS
from pyproj.exceptions import CRSError

from gridgeo.config import BANNER, GridConfig
from gridgeo.errors import CrsError

__all__ = ["metric_crs", "require_crs", "to_metric"]


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
