"""The result of a check: the defect table, plus what reads better summed up."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gridgeo.crs import project
from gridgeo.defects import summarise

__all__ = ["AREA_KINDS", "CheckReport"]

AREA_KINDS = ("gap", "overlap", "sliver")
"""Kinds whose pieces lie along a border between polygons, summed by :meth:`CheckReport.borders`."""


@dataclass
class CheckReport:
    """What :func:`~gridgeo.check.check_system` or :func:`~gridgeo.check.check_layer` found.

    Attributes
    ----------
    defects:
        The defect table (:mod:`gridgeo.defects`), in the input's CRS. Every
        gap, overlap, sliver and outside-parent row is one connected piece.
    crosswalk:
        For the dual grid: which source grids each merged grid came from
        (empty when the source layers were not checked).
    hints:
        Sentences about the data as a whole that no single row says, e.g. that
        a layer looks like unconverted GCJ-02 (AMap) coordinates.
    metric_crs:
        The CRS every area, width and length was measured in.
    """

    defects: gpd.GeoDataFrame
    crosswalk: pd.DataFrame = field(default_factory=pd.DataFrame)
    hints: list[str] = field(default_factory=list)
    metric_crs: CRS | None = None

    @property
    def errors(self) -> int:
        """Number of error-severity findings."""
        return int((self.defects["severity"] == "error").sum())

    @property
    def ok(self) -> bool:
        """True when nothing of severity ``error`` was found."""
        return self.errors == 0

    def summary(self) -> pd.DataFrame:
        """Counts per kind (rows) and town (columns)."""
        return summarise(self.defects)

    def borders(self) -> gpd.GeoDataFrame:
        """Gap, overlap and sliver pieces added up per border: one row per level and codes.

        Hundreds of sliver pieces along the shared edge of two grids are one
        problem (two layers digitised apart); this says so, with their total.

        Returns
        -------
        GeoDataFrame
            ``level``, ``codes`` (sorted, comma-separated: two codes for a
            border between two polygons, one for a polygon's border with its
            parent's edge), ``kinds`` (e.g. ``"gap,sliver"``), ``pieces``,
            ``area_m2`` (total), ``length_m`` (the border length the pieces
            run along: half their perimeter, summed), ``width_m`` (the widest
            piece) and ``geometry`` (the pieces, united), largest area first.

        Examples
        --------
        Two notches, 0.5 m deep, along the border of two squares: two sliver
        rows, one border.

        >>> import geopandas as gpd
        >>> from gridgeo.check import check_layer
        >>> from shapely import box
        >>> b = box(100, 0, 200, 100) - box(100, 10, 100.5, 30) - box(100, 60, 100.5, 90)
        >>> cells = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 100), b], crs=4545)
        >>> report = check_layer(cells.translate(500_000, 4_500_000).to_frame("geometry"))
        >>> report.defects[["kind", "codes", "area_m2"]]
             kind codes  area_m2
        0  sliver   0,1     10.0
        1  sliver   0,1     15.0
        >>> report.borders()[["codes", "kinds", "pieces", "area_m2", "length_m"]]
          codes   kinds  pieces  area_m2  length_m
        0   0,1  sliver       2     25.0      51.0
        """
        d = self.defects[self.defects["kind"].isin(AREA_KINDS)]
        columns = ["level", "codes", "kinds", "pieces", "area_m2", "length_m", "width_m"]
        if d.empty:
            return gpd.GeoDataFrame(columns=[*columns, "geometry"], geometry="geometry",
                                    crs=self.defects.crs)  # fmt: skip
        metric = self.metric_crs or d.crs
        geoms = project(d.geometry.to_numpy(), d.crs, metric)
        table = pd.DataFrame(
            {
                "level": d["level"].to_numpy(),
                "codes": d["codes"].map(lambda c: ",".join(sorted(c.split(",")))).to_numpy(),
                "kind": d["kind"].to_numpy(),
                "area_m2": shapely.area(geoms),
                "length_m": shapely.length(geoms) / 2,
                "width_m": d["width_m"].to_numpy(),
                "geometry": d.geometry.to_numpy(),
            }
        )
        grouped = table.groupby(["level", "codes"], sort=False)
        out = grouped.agg(
            kinds=("kind", lambda k: ",".join(sorted(set(k)))),
            pieces=("kind", "size"),
            area_m2=("area_m2", "sum"),
            length_m=("length_m", "sum"),
            width_m=("width_m", "max"),
            geometry=("geometry", lambda g: shapely.union_all(np.asarray(g, dtype=object))),
        ).reset_index()
        out = out.sort_values(["area_m2", "codes"], ascending=[False, True], kind="stable")
        return gpd.GeoDataFrame(out.reset_index(drop=True), geometry="geometry",
                                crs=self.defects.crs)  # fmt: skip

    def to_dict(self) -> dict:
        """A JSON-ready summary: totals per severity, kind, level and town, and the hints."""
        d = self.defects
        out = {
            "ok": self.ok,
            "total": len(d),
            "by_severity": {k: int(v) for k, v in d["severity"].value_counts().items()},
            "by_kind": {k: int(v) for k, v in d["kind"].value_counts().items()},
            "by_level": {k: int(v) for k, v in d["level"].value_counts().items()},
            "by_district": {
                k: int(v)
                for k, v in d["district"].str.split(",").explode().value_counts().items()
                if k
            },
        }
        if self.hints:
            out["hints"] = list(self.hints)
        if self.metric_crs is not None:
            out["metric_crs"] = _label(self.metric_crs)
        return out


def _label(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg} ({crs.name})" if epsg else crs.name
