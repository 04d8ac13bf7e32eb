"""The defect table: one row per finding, shared by every check.

Columns (in this order):

``kind``
    What is wrong (see :data:`KINDS`).
``severity``
    ``error`` (breaks the "四定" rule: an area with no grid or two, a code
    that cannot be joined), ``warning`` (suspicious, worth a look) or
    ``info`` (noise, reported so it is not mistaken for silence).
``level``
    The level or layer the finding belongs to (``grid``, ``micro_grid``,
    ``dual_grid`` …).
``codes``
    Codes involved, comma-separated (GeoPackage has no list type).
``town``
    Town code(s) the finding lies in, comma-separated.
``area_m2``, ``width_m``
    Area of the defect geometry and its width — the diameter of its maximum
    inscribed circle — in the metric CRS (0 for points and lines).
``message_zh``, ``message_en``
    One line each, naming the codes.
``geometry``
    The defect itself: the gap, the overlap, the mismatching edge, the
    self-intersection point — never the whole grid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["COLUMNS", "KINDS", "defect_frame", "polygon_width", "summarise"]

COLUMNS = (
    "kind",
    "severity",
    "level",
    "codes",
    "town",
    "area_m2",
    "width_m",
    "message_zh",
    "message_en",
    "geometry",
)

# kind → (severity, Chinese template, English template). Templates are
# formatted with the row's fields plus ``detail``.
KINDS: Mapping[str, tuple[str, str, str]] = {
    "invalid_geometry": (
        "error",
        "{codes} 几何无效：{detail}",
        "{codes}: invalid geometry: {detail}",
    ),
    "empty_geometry": ("error", "{codes} 几何为空", "{codes}: empty geometry"),
    "not_polygon": ("error", "{codes} 不是面要素：{detail}", "{codes}: not a polygon: {detail}"),
    "duplicate_code": (
        "error",
        "编码 {codes} 重复 {detail} 次",
        "code {codes} used {detail} times",
    ),
    "bad_code": ("error", "{codes} 编码不合规：{detail}", "{codes}: malformed code: {detail}"),
    "orphan": (
        "error",
        "{codes} 的上级 {detail} 不存在",
        "{codes}: parent {detail} does not exist",
    ),
    "gap": (
        "error",
        "{town} 内有 {area_m2:.0f} m² 无网格覆盖（邻接 {codes}）",
        "{area_m2:.0f} m² of {town} covered by no child (next to {codes})",
    ),
    "overlap": ("error", "{codes} 重叠 {area_m2:.0f} m²", "{codes} overlap by {area_m2:.0f} m²"),
    "sliver": (
        "warning",
        "{codes} 之间有宽 {width_m:.2f} m 的细缝（{detail}）",
        "{width_m:.2f} m wide sliver {detail} between {codes}",
    ),
    "outside_parent": (
        "error",
        "{codes} 有 {area_m2:.0f} m² 超出上级 {detail}",
        "{codes}: {area_m2:.0f} m² outside its parent {detail}",
    ),
    "multipart": (
        "warning",
        "{codes} 分成 {detail} 块不相连的部分",
        "{codes} falls apart into {detail} pieces",
    ),
    "island": (
        "warning",
        "{codes} 与同级任何网格都不相邻",
        "{codes} touches no other polygon of its level",
    ),
    "edge_mismatch": (
        "warning",
        "{codes} 公共边界顶点不一致",
        "{codes}: shared boundary does not match vertex for vertex",
    ),
    "repair_hole": (
        "info",
        "{codes} 自动修复产生的空洞（非真实缺口）",
        "{codes}: hole created by repairing invalid geometry, not a real gap",
    ),
    # The merged dual grid (双网合一) against its two source layers.
    "source_split": (
        "warning",
        "{detail} 被分到多个双网格 {codes}",
        "source grid {detail} split across dual grids {codes}",
    ),
    "source_mismatch": (
        "warning",
        "{area_m2:.0f} m² 仅由 {detail} 覆盖，另一来源图层未覆盖（{codes}）",
        "{area_m2:.0f} m² covered by {detail} only, not by the other source layer ({codes})",
    ),
    "displacement": (
        "warning",
        "{codes} 与来源网格 {detail} 边界偏差 {width_m:.1f} m",
        "{codes}: boundary {width_m:.1f} m from source grid {detail}",
    ),
    "digitising_noise": (
        "info",
        "{town} {level} 数字化误差：{detail}",
        "{town} {level}: digitising noise {detail}",
    ),
}

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def polygon_width(geoms: np.ndarray, tolerance: float = 0.01) -> np.ndarray:
    """Width of each (multi)polygon: the diameter of its maximum inscribed circle.

    Points, lines and empties have width 0. Vectorised over the array.

    >>> polygon_width(np.array([shapely.box(0, 0, 10, 2)])).round(2).tolist()
    [2.0]
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms))
    poly = np.isin(shapely.get_type_id(geoms), (3, 6)) & ~shapely.is_empty(geoms)
    if not poly.any():
        return out
    target = geoms[poly]
    width = np.zeros(len(target))
    # Three regimes, each as cheap as it can be. Float dust (nanometres wide
    # along kilometres of edge) and slivers make the circle search crawl, but
    # a negative buffer answers "narrower than d?" at once: dust is settled by
    # one, slivers (narrower than 100 tolerances) by bisection to the
    # tolerance. Only wider polygons get the circle search, with a tolerance
    # relative to their size.
    shrink = partial(shapely.buffer, quad_segs=2, join_style="mitre")
    dust = shapely.is_empty(shrink(target, -tolerance / 2))
    area, perimeter = shapely.area(target[dust]), shapely.length(target[dust])
    width[dust] = np.minimum(2 * area / np.maximum(perimeter, 1e-300), tolerance)
    narrow = ~dust & shapely.is_empty(shrink(target, -50 * tolerance))
    if narrow.any():
        lo = np.full(narrow.sum(), tolerance)
        hi = np.full(narrow.sum(), 100 * tolerance)
        while (hi - lo).max() > tolerance:
            mid = (lo + hi) / 2
            gone = shapely.is_empty(shrink(target[narrow], -mid / 2))
            hi = np.where(gone, mid, hi)
            lo = np.where(gone, lo, mid)
        width[narrow] = (lo + hi) / 2
    wide = ~dust & ~narrow
    if wide.any():
        size = np.sqrt(shapely.area(target[wide]))
        circle = shapely.maximum_inscribed_circle(target[wide], np.maximum(size / 500, tolerance))
        width[wide] = 2 * shapely.length(circle)
    out[poly] = width
    return out


def defect_frame(rows: Iterable[Mapping], crs) -> gpd.GeoDataFrame:
    """The defect table from ``rows``: dicts with kind, level, codes, town, geometry, detail.

    Geometries must be in ``crs``, a metric CRS: area and width (unless a row
    gives ``width_m``) are measured here, severity and both messages filled in
    from :data:`KINDS`, and rows sorted by severity, level, kind and codes.
    ``codes`` and ``town`` may be strings or lists of strings.
    """
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        frame = pd.DataFrame(columns=[*COLUMNS, "detail"])
    frame["codes"] = frame["codes"].map(_join)
    frame["town"] = frame["town"].map(_join)
    geoms = np.asarray(frame["geometry"].to_numpy(), dtype=object)
    frame["area_m2"] = shapely.area(geoms) if len(geoms) else []
    if "width_m" not in frame:
        frame["width_m"] = np.nan
    missing = frame["width_m"].isna().to_numpy()
    if missing.any():  # measure only the rows whose check did not
        frame.loc[missing, "width_m"] = polygon_width(geoms[missing])
    if "detail" not in frame:
        frame["detail"] = ""
    frame["detail"] = frame["detail"].fillna("")
    frame["severity"] = frame["kind"].map(lambda k: KINDS[k][0])
    records = frame.to_dict("records")
    frame["message_zh"] = [KINDS[r["kind"]][1].format(**r) for r in records]
    frame["message_en"] = [KINDS[r["kind"]][2].format(**r) for r in records]
    frame["_s"] = frame["severity"].map(SEVERITY_ORDER)
    frame = frame.sort_values(["_s", "level", "kind", "codes"], kind="stable")
    out = gpd.GeoDataFrame(frame[list(COLUMNS)], geometry="geometry", crs=crs)
    return out.reset_index(drop=True)


def summarise(defects: gpd.GeoDataFrame) -> pd.DataFrame:
    """Counts of defects per kind (rows) and town (columns), with totals."""
    if defects.empty:
        return pd.DataFrame()
    towns = defects.assign(town=defects["town"].str.split(",")).explode("town")
    table = pd.crosstab(towns["kind"], towns["town"])
    table["total"] = defects["kind"].value_counts().reindex(table.index)
    return table


def _join(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, str):
        return value
    return ",".join(dict.fromkeys(str(v) for v in value if str(v)))
