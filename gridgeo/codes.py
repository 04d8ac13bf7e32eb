"""Hierarchical grid codes.

A code is the parent's code followed by a fixed-width sequence number
(GB/T 30428.1 practice): ``150823`` (county) + ``100`` (town) + ``001``
(grid) + ``001`` (micro-grid). Children are numbered in reading order inside
their parent: row by row from north to south, and west to east within a row.
Rows are bands of equal height, as many as the square root of the number of
children, so a compact parent reads like a page.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

__all__ = ["code_width_ok", "number_children", "reading_order"]


def reading_order(points: gpd.GeoSeries, groups: pd.Series) -> np.ndarray:
    """Rank (0-based) of each point inside its group, north→south then west→east.

    ``points`` are representative points in any CRS whose y grows northwards;
    ``groups`` labels each point's parent. Vectorised over all groups.

    >>> from shapely import points
    >>> pts = gpd.GeoSeries(points([[0, 10], [5, 10], [0, 0], [5, 0]]))
    >>> reading_order(pts, pd.Series(["a"] * 4)).tolist()
    [0, 1, 2, 3]
    """
    x = points.x.to_numpy()
    y = points.y.to_numpy()
    frame = pd.DataFrame({"g": groups.to_numpy(), "x": x, "y": y})
    by = frame.groupby("g", sort=False)
    n = by["y"].transform("size").to_numpy()
    top = by["y"].transform("max").to_numpy()
    bottom = by["y"].transform("min").to_numpy()
    rows = np.ceil(np.sqrt(n))
    height = np.where(top > bottom, (top - bottom) / rows, 1.0)
    band = np.minimum(np.floor((top - y) / height), rows - 1)
    frame["band"] = band
    order = frame.sort_values(["g", "band", "x", "y"], kind="stable")
    rank = np.empty(len(frame), dtype=np.int64)
    rank[order.index.to_numpy()] = order.groupby("g", sort=False).cumcount().to_numpy()
    return rank


def number_children(children: gpd.GeoDataFrame, parent_codes: pd.Series, digits: int) -> pd.Series:
    """Codes for ``children``: each parent's code plus a ``digits``-wide sequence.

    Numbering follows :func:`reading_order` of each child's representative
    point, so it is stable: the same polygons always get the same codes,
    whatever their row order.

    >>> from shapely import box
    >>> kids = gpd.GeoDataFrame(geometry=[box(1, 0, 2, 1), box(0, 0, 1, 1)])
    >>> number_children(kids, pd.Series(["150823100"] * 2), 3).tolist()
    ['150823100002', '150823100001']
    """
    limit = 10**digits - 1
    counts = parent_codes.value_counts()
    if len(counts) and counts.max() > limit:
        raise ValueError(
            f"parent {counts.idxmax()} has {counts.max()} children; "
            f"{digits} digits number at most {limit}"
        )
    rank = reading_order(children.geometry.representative_point(), parent_codes)
    seq = pd.Series(rank + 1, index=children.index).astype(str).str.zfill(digits)
    return parent_codes.astype(str).set_axis(children.index) + seq


def code_width_ok(codes: pd.Series, length: int) -> pd.Series:
    """Boolean mask: ``codes`` that are exactly ``length`` decimal digits."""
    text = codes.astype("string")
    return (text.str.len() == length) & text.str.fullmatch(r"\d+").fillna(False)
