"""Coverage maps for leaders: self-contained, safe, light HTML (folium).

:func:`coverage_map` draws a grid system as switchable layers — towns,
grids, micro-grids; households and incidents as heat (never individual
personal data); defects from :func:`gridgeo.check.check_system` — and as
choropleth *views* (households per grid worker, households against the
300–500 norm, incidents per 1,000 residents, open and overdue incidents).
:func:`render_html` turns it into one HTML file that works with no network.

Three promises, each kept by construction:

- **Offline.** folium's CDN scripts and stylesheets are removed; Leaflet and
  Leaflet.heat are inlined from installed packages (:mod:`gridgeo.assets`).
  The only URL left is an optional tile layer's.
- **Safe.** Grid names, leader names and incident descriptions are user
  text. None of it is ever written into HTML or JavaScript source: it
  travels only inside JSON data (with ``<``, ``>``, ``&`` and line
  separators escaped) and reaches the page through ``textContent``. folium's
  Tooltip, Popup and GeoJsonTooltip, which render HTML from strings, are not
  used.
- **Light.** Boundaries are simplified as a coverage (shared edges stay
  shared: ``shapely.coverage_simplify``), coordinates rounded to about
  0.1 m, only the fields shown are embedded, and points are binned into
  weighted heat cells.

Example
-------
>>> import gridgeo
>>> m = coverage_map(gridgeo.load_demo())
>>> html = render_html(m)
>>> "cdn.jsdelivr" in html, "<script src=" in html
(False, False)
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

import folium
import geopandas as gpd
import mapclassify
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from branca.colormap import LinearColormap
from branca.element import Element, MacroElement
from threadpoolctl import threadpool_limits

from gridgeo.assets import inline_css, inline_js
from gridgeo.crs import from_wgs84, metric_crs
from gridgeo.errors import GridgeoError
from gridgeo.model import GridSystem

__all__ = ["TILES", "coverage_map", "grid_colours", "render_html"]

# Named tile sources. ``gcj02``: the provider publishes GCJ-02 tiles, so the
# vector layers are shifted to line up with them.
TILES: dict[str, dict[str, str]] = {
    "osm": {
        "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "attribution": "© OpenStreetMap contributors",
        "crs": "wgs84",
    },
    "tianditu": {
        "url": "https://t0.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
        "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
        "&TILECOL={x}&tk={key}",
        "attribution": "天地图 Tianditu",
        "crs": "wgs84",
    },
    "amap": {
        "url": "https://webrd01.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
        "attribution": "高德地图 AMap (GCJ-02)",
        "crs": "gcj02",
    },
}

TEXT = {
    "zh": {
        "title": "{root}网格覆盖图",
        "town": "苏木镇",
        "grid": "网格",
        "micro_grid": "微网格",
        "households": "住户热力",
        "incidents": "事件热力",
        "open": "未结事件",
        "defects": "检查发现的问题",
        "code": "编码",
        "name": "名称",
        "leader": "网格长",
        "workers": "网格员",
        "households_n": "户数",
        "residents": "人口",
        "search": "搜索网格编码或名称",
        "fullscreen": "全屏",
        "gcj02": "注：图层已转换为GCJ-02坐标以对齐底图",
        "views": {
            "households_per_worker": "每名网格员户数",
            "norm": "户数与300–500户标准",
            "incidents_per_1000": "每千人事件数",
            "open_overdue": "未结与超期事件",
        },
        "norm": {"below": "低于标准", "within": "符合标准", "above": "高于标准", "n/a": "不适用"},
        "status": "状态",
        "statuses": {
            "reported": "已上报",
            "dispatched": "已派遣",
            "handled": "已处置",
            "closed": "已结案",
            "overdue": "超期",
        },
        "kind": "类型",
        "message": "说明",
    },
    "en": {
        "title": "{root} grid coverage",
        "town": "Towns",
        "grid": "Grids",
        "micro_grid": "Micro-grids",
        "households": "Households (heat)",
        "incidents": "Incidents (heat)",
        "open": "Open incidents",
        "defects": "Defects found by the check",
        "code": "Code",
        "name": "Name",
        "leader": "Grid leader",
        "workers": "Grid workers",
        "households_n": "Households",
        "residents": "Residents",
        "search": "Search grid code or name",
        "fullscreen": "Full screen",
        "gcj02": "Note: layers shifted to GCJ-02 to line up with the base map",
        "views": {
            "households_per_worker": "Households per grid worker",
            "norm": "Households against the 300–500 norm",
            "incidents_per_1000": "Incidents per 1,000 residents",
            "open_overdue": "Open and overdue incidents",
        },
        "norm": {"below": "below", "within": "within", "above": "above", "n/a": "n/a"},
        "status": "Status",
        "statuses": {
            "reported": "reported",
            "dispatched": "dispatched",
            "handled": "handled",
            "closed": "closed",
            "overdue": "overdue",
        },
        "kind": "Kind",
        "message": "Message",
    },
}

HEAT_CELL = 0.002  # degrees
HEAT_MIN = 3  # points a heat cell must hold
PALETTE = ["#8dd3c7", "#ffffb3", "#bebada", "#fdb462", "#b3de69", "#fccde5", "#d9d9d9", "#bc80bd"]
DEFECT_COLOURS = {
    "gap": "#e31a1c",
    "overlap": "#ff7f00",
    "sliver": "#6a3d9a",
    "outside_parent": "#b15928",
}


def grid_colours(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Colour index per polygon so that neighbours differ.

    Greedy colouring (networkx, largest degree first) of the graph of polygons
    sharing an edge; the demo's grids need at most 6 colours.

    >>> import gridgeo
    >>> colours = grid_colours(gridgeo.load_demo()["grid"])
    >>> int(colours.max()) < len(PALETTE)
    True
    """
    geoms = frame.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="touches")
    shared = shapely.length(shapely.intersection(geoms[left], geoms[right])) > 0
    graph = nx.Graph()
    graph.add_nodes_from(range(len(geoms)))
    graph.add_edges_from(zip(left[shared], right[shared], strict=True))
    colouring = nx.greedy_color(graph, strategy="largest_first")
    return np.array([colouring[i] for i in range(len(geoms))])


@dataclass
class _Layer:
    key: str
    label: str
    kind: str  # "polygons", "heat", "points"
    data: object
    show: bool


def coverage_map(
    system: GridSystem,
    *,
    households: gpd.GeoDataFrame | None = None,
    incidents: gpd.GeoDataFrame | None = None,
    defects: gpd.GeoDataFrame | None = None,
    per_grid: gpd.GeoDataFrame | None = None,
    language: str = "zh",
    tiles: str | None = None,
    tiles_key: str | None = None,
    tiles_attribution: str | None = None,
    tiles_crs: str = "wgs84",
    simplify_m: float = 5.0,
    layers: tuple[str, ...] | None = None,
) -> folium.Map:
    """A folium map of ``system`` with switchable layers and coverage views.

    Parameters
    ----------
    system:
        The grid system (towns, grids, micro-grids are drawn).
    households, incidents:
        Points, best already assigned (:func:`gridgeo.assign.assign`), shown
        as heat only; personal columns are never read. With assigned points
        the choropleth views are computed (:mod:`gridgeo.stats`).
    defects:
        ``check_system(...).defects``: gaps in red, overlaps in orange, the
        rest by kind, with their messages.
    per_grid:
        A ready :func:`gridgeo.stats.households_per_grid` table (computed
        from ``households`` otherwise).
    language:
        ``"zh"`` (default) or ``"en"``.
    tiles:
        ``None`` (default: no base map; the polygons read on a plain
        background), a name in :data:`TILES` (``"osm"``, ``"tianditu"`` with
        ``tiles_key``, ``"amap"``), or an XYZ URL template (an intranet tile
        server). GCJ-02 tile sources (``"amap"``, or ``tiles_crs="gcj02"``)
        shift the vector layers into GCJ-02, and the map says so.
    simplify_m:
        Coverage simplification tolerance in metres (0 keeps every vertex).
    layers:
        Which layers to include (default all available): ``town``, ``grid``,
        ``micro_grid``, ``households``, ``incidents``, ``open``, ``defects``,
        and the views ``households_per_worker``, ``norm``,
        ``incidents_per_1000``, ``open_overdue``.
    """
    if language not in TEXT:
        raise GridgeoError(f"language must be one of {sorted(TEXT)}, not {language!r}")
    text = TEXT[language]
    tile = _tiles(tiles, tiles_key, tiles_attribution, tiles_crs)
    shift = tile is not None and tile["crs"] == "gcj02"
    wanted = set(layers) if layers else None

    def want(key: str) -> bool:
        return wanted is None or key in wanted

    polygons = _simplified(system, simplify_m, shift)
    entries: list[_Layer] = []
    grid_data = _features(polygons["grid"], "grid", text)  # shared by the grid layer and views
    for level in ("grid", "micro_grid", "town"):  # town lines drawn last, on top
        if want(level):
            data = None if level == "grid" else _features(polygons[level], level, text)
            entries.append(_Layer(level, text[level], "polygons", data, level != "micro_grid"))

    views, legends = {}, {}
    assigned = households is not None and "grid_code" in households
    if assigned or per_grid is not None:
        from gridgeo import stats

        if per_grid is None:
            per_grid = stats.households_per_grid(households, system)
        if incidents is not None and "grid_code" in incidents:
            per_grid = stats.incident_rates(incidents, per_grid)
        views, legends = _views(per_grid, polygons["grid"], text, want)
    entries.extend(views)

    if households is not None and want("households"):
        entries.append(
            _Layer(
                "households", text["households"], "heat", _heat(households, "size", shift), False
            )
        )
    if incidents is not None:
        if want("incidents"):
            entries.append(
                _Layer("incidents", text["incidents"], "heat", _heat(incidents, None, shift), False)
            )
        if want("open") and "status" in incidents:
            open_ = incidents[
                incidents["status"].isin(["reported", "dispatched", "handled", "overdue"])
            ]
            entries.append(
                _Layer("open", text["open"], "points", _points(open_, shift, text), False)
            )
    if defects is not None and len(defects) and want("defects"):
        entries.append(
            _Layer(
                "defects",
                text["defects"],
                "polygons",
                _defect_features(defects, shift, text, language),
                True,
            )
        )

    bounds = (
        polygons["banner"].total_bounds if "banner" in polygons else polygons["town"].total_bounds
    )
    m = folium.Map(
        location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2],
        zoom_start=9,
        tiles=None,
        control_scale=False,
        prefer_canvas=False,
        zoom_snap=0.25,
    )
    _strip_cdn(m)
    config = {
        "title": text["title"].format(root=system.config.root_name),
        "bounds": [[bounds[1], bounds[0]], [bounds[3], bounds[2]]],
        "labels": {
            k: text[k]
            for k in (
                "code",
                "name",
                "leader",
                "workers",
                "households_n",
                "residents",
                "search",
                "fullscreen",
                "status",
                "kind",
                "message",
            )
        },
        "note": text["gcj02"] if shift else "",
        "tiles": tile,
        "layers": [
            {"key": e.key, "label": e.label, "kind": e.kind, "data": e.data, "show": e.show}
            for e in entries
        ],
        "legends": legends,
        "grid": grid_data,
    }
    m.get_root().header.add_child(
        Element(inline_css("leaflet.css") + f"<style>{_CSS}</style>"), name="gridgeo_css"
    )
    m.get_root().header.add_child(
        Element(inline_js("leaflet.js", "leaflet-heat.js")), name="gridgeo_js"
    )
    m.add_child(_Script(config))
    return m


def render_html(m: folium.Map) -> str:
    """The map as one self-contained HTML document (UTF-8 text)."""
    html = m.get_root().render()
    return (
        html.replace("<head>", '<head>\n<meta charset="utf-8">', 1)
        if "charset" not in html[:500]
        else html
    )


# -- data preparation ------------------------------------------------------------------
def _tiles(tiles, key, attribution, crs) -> dict | None:
    if tiles is None:
        return None
    if tiles in TILES:
        tile = dict(TILES[tiles])
        if "{key}" in tile["url"]:
            if not key:
                raise GridgeoError(
                    f"tiles={tiles!r} needs a key: pass tiles_key='…' (your Tianditu key)"
                )
            tile["url"] = tile["url"].replace("{key}", key)
        return tile
    if not str(tiles).startswith(("http://", "https://", "/", "./")) or "{z}" not in str(tiles):
        raise GridgeoError(
            f"tiles={tiles!r} is neither one of {sorted(TILES)} nor an XYZ URL template with {{z}}/{{x}}/{{y}}"
        )
    if crs not in ("wgs84", "gcj02"):
        raise GridgeoError(f"tiles_crs must be 'wgs84' or 'gcj02', not {crs!r}")
    # Leaflet renders attributions as HTML: escape the caller's text.
    return {"url": str(tiles), "attribution": html.escape(attribution or ""), "crs": crs}


def _simplified(system: GridSystem, tolerance: float, shift: bool) -> dict[str, gpd.GeoDataFrame]:
    """Each level simplified as a coverage in metres, rounded to ~0.1 m, in lon/lat."""
    out = {}
    for name, frame in system.items():
        metric = frame.to_crs(metric_crs(system.config))
        # Polygon parts only: a repaired spike would otherwise leave a line behind.
        geoms = shapely.make_valid(
            metric.geometry.to_numpy(), method="structure", keep_collapsed=False
        )
        if tolerance > 0 and shapely.coverage_is_valid(geoms):
            geoms = shapely.coverage_simplify(geoms, tolerance)
        lonlat = gpd.GeoSeries(geoms, crs=metric.crs).to_crs(4326).to_numpy()
        if shift:
            lonlat = shapely.transform(
                lonlat, lambda xy: np.column_stack(from_wgs84(xy[:, 0], xy[:, 1], "gcj02"))
            )
        out[name] = frame.drop(columns=frame.geometry.name).assign(
            geometry=shapely.set_precision(lonlat, 1e-6)
        )
        out[name] = gpd.GeoDataFrame(out[name], geometry="geometry", crs=4326)
    return out


_SHOWN = ("code", "name", "leader", "workers", "households", "residents")


def _features(frame: gpd.GeoDataFrame, level: str, text) -> dict:
    """GeoJSON with only the shown fields, and a colour per polygon for grids."""
    props = pd.DataFrame({c: frame[c] for c in _SHOWN if c in frame})
    if level == "grid":
        props["fill"] = [PALETTE[i % len(PALETTE)] for i in grid_colours(frame)]
        props["i"] = np.arange(len(frame))
    return _geojson(frame.geometry.to_numpy(), props)


def _geojson(geoms, props: pd.DataFrame) -> dict:
    records = props.astype(object).where(props.notna(), None).to_dict("records")
    features = [
        {"type": "Feature", "properties": p, "geometry": shapely.geometry.mapping(g)}
        for p, g in zip(records, geoms, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}


def _views(per_grid, grids, text, want) -> tuple[list[_Layer], dict]:
    """Choropleth views of the grids, with breaks from mapclassify, and legends.

    A view carries only a colour and a value per grid, in the order of the
    grid layer's features; the page draws it on the grid geometry it already
    has, so the geometry is embedded once however many views there are.
    """
    grid = grids.set_index("code")
    per = per_grid.set_index("code").reindex(grid.index)
    layers, legends = [], {}

    def numeric(key, values, colours):
        values = pd.to_numeric(values, errors="coerce")
        finite = values.dropna()
        if finite.empty or not want(key):
            return
        k = int(min(5, finite.nunique()))
        # NaturalBreaks runs k-means; its OpenMP threads fight on a small
        # machine (0.03 s on one thread, over 1 s on two busy cores).
        with threadpool_limits(1):
            bins = (
                mapclassify.NaturalBreaks(finite.to_numpy(), k=k).bins
                if k > 1
                else np.array([finite.max()])
            )
        scale = LinearColormap(colours, vmin=0, vmax=max(len(bins) - 1, 1))
        klass = np.searchsorted(bins, values.fillna(-1).to_numpy(), side="left").clip(
            0, len(bins) - 1
        )
        fill = [
            scale(int(c)) if not np.isnan(v) else "#ffffff"
            for c, v in zip(klass, values, strict=True)
        ]
        lower = np.r_[finite.min(), bins[:-1]]
        legends[key] = {
            "title": text["views"][key],
            "items": [
                [scale(i), f"{lo:,.1f} – {hi:,.1f}"]
                for i, (lo, hi) in enumerate(zip(lower, bins, strict=True))
            ],
        }
        data = {
            "fill": fill,
            "value": [None if np.isnan(v) else round(float(v), 2) for v in values],
        }
        layers.append(_Layer(key, text["views"][key], "view", data, False))

    if "households_per_worker" in per:
        numeric("households_per_worker", per["households_per_worker"], ["#f7fbff", "#08306b"])
    if "norm" in per and want("norm"):
        colours = {"below": "#fdae61", "within": "#a6d96a", "above": "#d7191c", "n/a": "#f0f0f0"}
        norm = per["norm"].fillna("n/a").astype(str)
        data = {"fill": norm.map(colours).tolist(), "value": norm.map(text["norm"]).tolist()}
        legends["norm"] = {
            "title": text["views"]["norm"],
            "items": [[c, text["norm"][k]] for k, c in colours.items()],
        }
        layers.append(_Layer("norm", text["views"]["norm"], "view", data, False))
    if "per_1000_residents" in per:
        numeric("incidents_per_1000", per["per_1000_residents"], ["#fff5eb", "#7f2704"])
    if {"open", "overdue"} <= set(per.columns):
        numeric("open_overdue", per["open"] + per["overdue"], ["#fcfbfd", "#3f007d"])
    return layers, legends


def _heat(points: gpd.GeoDataFrame, weight: str | None, shift: bool) -> list:
    """Points binned on a lattice of HEAT_CELL degrees (~170 × 220 m here) as
    [lat, lon, weight]: the heat shows where people are, not where anyone lives."""
    pts = points[~(points.geometry.isna() | points.geometry.is_empty)].to_crs(4326)
    x, y = pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy()
    if shift:
        x, y = from_wgs84(x, y, "gcj02")
    w = pts[weight].to_numpy(dtype=float) if weight else np.ones(len(pts))
    # k-anonymity: a cell holding fewer than HEAT_MIN points is merged into a
    # 5× coarser cell, and one still that small is left out, so no cell
    # stands for one or two households (or gives away a household's size).
    binned = []
    for size in (HEAT_CELL, 5 * HEAT_CELL):
        cells = pd.DataFrame(
            {"x": np.round(x / size) * size, "y": np.round(y / size) * size, "w": w}
        )
        grouped = cells.groupby(["y", "x"], sort=True)["w"].agg(["sum", "size"]).reset_index()
        binned.append(grouped[grouped["size"] >= HEAT_MIN])
        small = cells.set_index(["y", "x"]).index.isin(
            grouped.loc[grouped["size"] < HEAT_MIN].set_index(["y", "x"]).index
        )
        x, y, w = x[small], y[small], w[small]
    # A coarse cell's centre is also a fine one's: add them up.
    binned = pd.concat(binned).groupby(["y", "x"], sort=True)["sum"].sum().rename("w").reset_index()
    top = binned["w"].quantile(0.99) or 1.0
    return np.column_stack(
        [binned["y"].round(4), binned["x"].round(4), (binned["w"] / top).clip(0, 1).round(3)]
    ).tolist()


def _points(points: gpd.GeoDataFrame, shift: bool, text) -> dict:
    """Open incidents: class, status and description only (no reporter data)."""
    pts = points[~(points.geometry.isna() | points.geometry.is_empty)].to_crs(4326)
    geoms = shapely.set_precision(pts.geometry.to_numpy(), 1e-5)
    if shift:
        geoms = shapely.transform(
            geoms, lambda xy: np.column_stack(from_wgs84(xy[:, 0], xy[:, 1], "gcj02"))
        )
    cols = [
        c
        for c in ("incident_id", "event_class", "subclass", "status", "description", "grid_code")
        if c in pts
    ]
    props = pts[cols].astype(str)
    if "status" in props:
        props["state"] = props["status"]  # for the colour; "status" is shown translated
        props["status"] = props["status"].map(text["statuses"]).fillna(props["status"])
    return _geojson(geoms, props)


def _defect_features(defects: gpd.GeoDataFrame, shift: bool, text, language: str) -> dict:
    d = defects.to_crs(4326)
    geoms = d.geometry.to_numpy()
    if shift:
        geoms = shapely.transform(
            geoms, lambda xy: np.column_stack(from_wgs84(xy[:, 0], xy[:, 1], "gcj02"))
        )
    message = d["message_zh" if language == "zh" else "message_en"]
    props = pd.DataFrame(
        {
            "kind": d["kind"].to_numpy(),
            "code": d["codes"].to_numpy(),
            "message": message.to_numpy(),
            "fill": d["kind"].map(DEFECT_COLOURS).fillna("#1f78b4").to_numpy(),
        }
    )
    return _geojson(shapely.set_precision(geoms, 1e-7), props)


# -- page plumbing --------------------------------------------------------------------------
def _strip_cdn(m: folium.Map) -> None:
    """No CDN: folium's default scripts and stylesheets are dropped (inlined ones added)."""
    m.default_js = []
    m.default_css = []


def _safe_json(value) -> str:
    """JSON that cannot end a <script> element or break a JS string."""
    text = json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_jsonable
    )
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def _jsonable(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    return str(value)


class _Script(MacroElement):
    """The page's own script: layers, tooltips, legend, search, full screen.

    User text reaches the page only inside JSON data, set with textContent.
    """

    def __init__(self, config: dict):
        super().__init__()
        self._name = "GridgeoScript"
        self.title = config["title"]
        self.config = _safe_json(config)

    def render(self, **kwargs):
        figure = self.get_root()
        figure.header.add_child(
            Element(f"<title>{html.escape(self.title)}</title>"), name="gridgeo_title"
        )
        figure.header.add_child(Element(f"<script>{_LIBRARY}</script>"), name="gridgeo_lib")
        # The data as a JSON block, not a JS literal: parsed faster, never executed.
        # _safe_json escapes "<", so nothing inside can close the element.
        data_id = f"{self.get_name()}_data"
        figure.html.add_child(
            Element(f'<script type="application/json" id="{data_id}">{self.config}</script>'),
            name=data_id,
        )
        call = (
            f"gridgeoMap({self._parent.get_name()}, "
            f"JSON.parse(document.getElementById('{data_id}').textContent));"
        )
        figure.script.add_child(Element(call), name=self.get_name())


_CSS = """
html, body { background: #f4f4f1; }
.leaflet-container { background: #f4f4f1; font: 13px/1.4 "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }
.gg-box { background: rgba(255,255,255,.95); padding: 6px 8px; border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.3); }
.gg-title { font-size: 16px; font-weight: bold; }
.gg-note { font-size: 12px; color: #a50f15; }
.gg-legend i { display: inline-block; width: 14px; height: 10px; margin-right: 6px; border: 1px solid #999; }
.gg-search input { width: 180px; }
.gg-search ul { list-style: none; margin: 4px 0 0; padding: 0; max-height: 200px; overflow-y: auto; }
.gg-search li { cursor: pointer; padding: 1px 2px; }
.gg-search li:hover { background: #eef; }
.gg-tip td { padding: 0 4px; }
.gg-fs { cursor: pointer; white-space: nowrap; }
"""

# Written by hand: a few small controls no package ships (fullscreen, search
# over the grid features, legend) and the data-driven layers; all text is set
# with textContent, never innerHTML.
_LIBRARY = r"""
function gridgeoMap(map, cfg) {
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined && text !== null) e.textContent = String(text); return e; }
  function box(position, build) { var C = L.Control.extend({ onAdd: function () { var d = el('div', 'gg-box'); L.DomEvent.disableClickPropagation(d); build(d); return d; } }); return new C({ position: position }).addTo(map); }
  map.attributionControl.setPrefix(false);
  if (cfg.tiles) { L.tileLayer(cfg.tiles.url, { attribution: cfg.tiles.attribution, maxZoom: 18 }).addTo(map); }
  box('topleft', function (d) { d.appendChild(el('div', 'gg-title', cfg.title)); if (cfg.note) d.appendChild(el('div', 'gg-note', cfg.note)); });
  L.control.scale({ imperial: false }).addTo(map);
  map.createPane('ggPoints'); map.getPane('ggPoints').style.zIndex = 450;  // above the polygons
  var svg = L.svg(), canvas = L.canvas({ pane: 'ggPoints' });
  var overlays = {}, searchable = [], legendBox = null;
  var lab = cfg.labels;
  function tip(props, valueLabel) {
    var t = el('table', 'gg-tip');
    var rows = [['code', lab.code], ['name', lab.name], ['leader', lab.leader], ['workers', lab.workers], ['households', lab.households_n], ['residents', lab.residents], ['value', valueLabel || ''], ['kind', lab.kind], ['message', lab.message], ['event_class', lab.kind], ['status', lab.status], ['description', lab.message]];
    rows.forEach(function (r) { if (props[r[0]] === undefined || props[r[0]] === null) return; var tr = el('tr'); tr.appendChild(el('td', '', r[1])); tr.appendChild(el('td', '', props[r[0]])); t.appendChild(tr); });
    return t;
  }
  var styles = {
    town: function () { return { color: '#222', weight: 2.5, fill: false }; },
    grid: function (f) { return { color: '#555', weight: 0.8, fillColor: f.properties.fill, fillOpacity: 0.6 }; },
    micro_grid: function () { return { color: '#2166ac', weight: 0.6, dashArray: '3', fill: false }; },
    defects: function (f) { return { color: f.properties.fill, weight: 3, fillColor: f.properties.fill, fillOpacity: 0.7 }; }
  };
  cfg.layers.forEach(function (spec) {
    var layer;
    if (spec.kind === 'view') {
      layer = L.geoJSON(cfg.grid, {
        renderer: svg,
        style: function (f) { return { color: '#777', weight: 0.6, fillColor: spec.data.fill[f.properties.i], fillOpacity: 0.8 }; },
        onEachFeature: function (f, l) { l.bindTooltip(function () { var p = { code: f.properties.code, name: f.properties.name, value: spec.data.value[f.properties.i] }; return tip(p, spec.label); }, { sticky: true }); }
      });
    } else if (spec.kind === 'polygons') {
      var style = styles[spec.key] || function (f) { return { color: '#777', weight: 0.6, fillColor: f.properties.fill, fillOpacity: 0.8 }; };
      layer = L.geoJSON(spec.data || cfg.grid, {
        renderer: svg, style: style,
        pointToLayer: function (f, ll) { return L.circleMarker(ll, { radius: 8, renderer: svg }); },
        onEachFeature: function (f, l) { l.bindTooltip(function () { return tip(f.properties); }, { sticky: true }); if (spec.key === 'grid' || spec.key === 'town' || spec.key === 'micro_grid') searchable.push({ props: f.properties, layer: l }); }
      });
    } else if (spec.kind === 'heat') {
      layer = L.heatLayer(spec.data, { radius: 12, blur: 15, maxZoom: 14 });
    } else {
      layer = L.geoJSON(spec.data, { pointToLayer: function (f, ll) { return L.circleMarker(ll, { radius: 4, renderer: canvas, pane: 'ggPoints', color: f.properties.state === 'overdue' ? '#d7191c' : '#2b83ba', weight: 1, fillOpacity: 0.8 }); }, onEachFeature: function (f, l) { l.bindTooltip(function () { return tip(f.properties); }); } });
    }
    overlays[spec.label] = layer;
    layer._ggKey = spec.key;
    if (spec.show) layer.addTo(map);
  });
  L.control.layers(null, overlays, { collapsed: false }).addTo(map);
  function showLegend(key) {
    if (legendBox) { map.removeControl(legendBox); legendBox = null; }
    var spec = cfg.legends[key]; if (!spec) return;
    legendBox = box('bottomright', function (d) { d.classList.add('gg-legend'); d.appendChild(el('div', 'gg-title', spec.title)); spec.items.forEach(function (it) { var row = el('div'); var sw = el('i'); sw.style.background = it[0]; row.appendChild(sw); row.appendChild(document.createTextNode(it[1])); d.appendChild(row); }); });
  }
  var shown = [];  // views switched on, latest last: its legend is the one shown
  map.on('overlayadd', function (e) { var k = e.layer._ggKey; if (!cfg.legends[k]) return; shown.push(k); showLegend(k); });
  map.on('overlayremove', function (e) {
    var k = e.layer._ggKey; if (!cfg.legends[k]) return;
    shown = shown.filter(function (x) { return x !== k; });
    if (shown.length) showLegend(shown[shown.length - 1]); else if (legendBox) { map.removeControl(legendBox); legendBox = null; }
  });
  box('topright', function (d) {
    d.classList.add('gg-search');
    var input = el('input'); input.type = 'search'; input.placeholder = lab.search; var list = el('ul');
    d.appendChild(input); d.appendChild(list);
    var highlighted = null;
    input.addEventListener('input', function () {
      while (list.firstChild) list.removeChild(list.firstChild);
      var q = input.value.trim(); if (!q) return;
      searchable.filter(function (s) { return String(s.props.code).indexOf(q) === 0 || String(s.props.name || '').indexOf(q) >= 0; }).slice(0, 20).forEach(function (s) {
        var li = el('li', '', s.props.code + ' ' + (s.props.name || ''));
        li.addEventListener('click', function () { if (highlighted) highlighted.setStyle({ weight: highlighted._ggWeight }); highlighted = s.layer; s.layer._ggWeight = s.layer.options.weight; s.layer.setStyle({ weight: 5 }); map.fitBounds(s.layer.getBounds()); });
        list.appendChild(li);
      });
    });
  });
  box('topleft', function (d) { d.classList.add('gg-fs'); d.title = lab.fullscreen; d.textContent = lab.fullscreen; d.addEventListener('click', function () { var c = map.getContainer(); if (document.fullscreenElement) document.exitFullscreen(); else if (c.requestFullscreen) c.requestFullscreen(); }); });
  map.fitBounds(cfg.bounds);
}
"""
