"""The coverage map: a grid system, its people and its defects as one HTML page.

:func:`coverage_map` is a thin front: it checks its arguments, then each
step below builds one part of the page's JSON configuration — the levels,
the choropleth views, the heat and point layers, the defects, the place
labels — and :func:`gridgeo.maps.page.build_page` wraps it in a folium map.
The drawing itself is ``assets/gridgeo.js``.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import folium
import geopandas as gpd
import mapclassify
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from branca.colormap import LinearColormap
from threadpoolctl import threadpool_limits

from gridgeo import stats
from gridgeo.config import BANNER, GridConfig, Level, Role
from gridgeo.crs import from_wgs84
from gridgeo.defects import SEVERITY_ORDER
from gridgeo.errors import CrsError, GridgeoError, SchemaError, option
from gridgeo.maps.page import build_page
from gridgeo.maps.text import DEFECT_KINDS, SEVERITIES, TEXT
from gridgeo.model import GridSystem

__all__ = [
    "DEFECT_COLOURS",
    "LAYERS",
    "TILES",
    "coverage_map",
    "grid_colours",
    "needs_network",
]

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

POINT_LAYERS = ("households", "incidents", "open", "defects")
VIEWS = ("households_per_worker", "norm", "incidents_per_1000", "open_overdue")
LAYERS: tuple[str, ...] = (*BANNER.level_names[1:], *POINT_LAYERS, *VIEWS)
"""Layer names ``layers=`` takes for the banner's levels (another system's
levels replace ``town``, ``grid``, ``micro_grid``)."""

HEAT_CELL = 0.002  # degrees
HEAT_MIN = 3  # points a heat cell must hold
PALETTE = ["#8dd3c7", "#ffffb3", "#bebada", "#fdb462", "#b3de69", "#fccde5", "#d9d9d9", "#bc80bd"]
DEFECT_COLOURS: dict[str, str] = {
    "gap": "#e31a1c",
    "overlap": "#ff7f00",
    "sliver": "#6a3d9a",
    "outside_parent": "#b15928",
    "invalid_geometry": "#d01c8b",
    "empty_geometry": "#f781bf",
    "not_polygon": "#8e0152",
    "duplicate_code": "#1b9e77",
    "bad_code": "#4d9221",
    "orphan": "#e6ab02",
    "multipart": "#7570b3",
    "island": "#a6761d",
    "edge_mismatch": "#525252",
    "repair_hole": "#969696",
    "source_split": "#1f78b4",
    "source_mismatch": "#01665e",
    "displacement": "#c51b7d",
    "digitising_noise": "#74add1",
}
"""Colour of each defect kind on the map (unknown kinds: grey)."""
DEFECT_MIN_PX = 12  # a defect smaller than this on screen gets a circle this wide
PLACE_LABEL_MAX_ZOOM = 10  # the top level's names are shown up to this zoom
HOUSEHOLD_SIZE = "size"  # the households' heat weight, if present
LABEL_COLUMNS_EN = ("name_en", "pinyin")  # English place names, first found


def grid_colours(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Colour index per polygon so that neighbours differ.

    Greedy colouring (networkx, largest degree first) of the graph of polygons
    sharing an edge; the demo's grids need at most 6 colours.

    Examples
    --------
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
    return np.array([colouring[i] for i in range(len(geoms))], dtype=int)


def coverage_map(
    system: GridSystem,
    *,
    households: gpd.GeoDataFrame | None = None,
    incidents: gpd.GeoDataFrame | None = None,
    defects: gpd.GeoDataFrame | None = None,
    per_grid: gpd.GeoDataFrame | None = None,
    language: str = "zh",
    title: str | None = None,
    tiles: str | None = None,
    tiles_key: str | None = None,
    tiles_attribution: str | None = None,
    tiles_crs: str = "wgs84",
    simplify_m: float = 5.0,
    layers: Iterable[str] | None = None,
    defect_severities: Iterable[str] = ("error", "warning"),
) -> folium.Map:
    """A folium map of ``system`` with switchable layers and coverage views.

    Parameters
    ----------
    system:
        The grid system. Every level below the root is drawn: the top one
        (towns) as bold outlines with its names as labels at banner zoom,
        the lowest fully covering one (grids) filled so neighbours differ,
        finer ones (micro-grids) dashed and switched off.
    households, incidents:
        Points, best already assigned (:func:`gridgeo.assign.assign`), shown
        as heat only; personal columns are never read. Points with no or
        unusable coordinates (NaN, inf, out of range) are left out. With
        assigned points the choropleth views are computed
        (:mod:`gridgeo.stats`). An incident whose case status is not one of
        :data:`gridgeo.stats.CASE_STATUSES` is mapped as heat but left out
        of the open incidents and the status views, with a warning.
    defects:
        ``check_system(...).defects``: a colour per kind, a legend with the
        kinds' names, and a filter by severity on the page. A defect too
        small to see at the current zoom is marked by a circle.
    per_grid:
        A ready :func:`gridgeo.stats.households_per_grid` table (computed
        from ``households`` otherwise).
    language:
        ``"zh"`` (default) or ``"en"``: the title, labels, legends and
        defect kinds.
    title:
        The map's title (default: ``"<root name>网格覆盖图"``; in English the
        root level's ``name_en`` or ``pinyin`` if it has one, else its code).
    tiles:
        ``None`` (default: no base map; the polygons read on a plain
        background), a name in :data:`TILES` (``"osm"``, ``"tianditu"`` with
        ``tiles_key``, ``"amap"``), or an XYZ URL template (an intranet tile
        server). GCJ-02 tile sources (``"amap"``, or ``tiles_crs="gcj02"``)
        shift the vector layers into GCJ-02, and the map says so.
        :func:`needs_network` tells whether the page then needs the network.
    simplify_m:
        Coverage simplification tolerance in metres (0 keeps every vertex).
    layers:
        Which layers to include (default all available): the level names
        (``town``, ``grid``, ``micro_grid``), ``households``, ``incidents``,
        ``open``, ``defects``, and the views ``households_per_worker``,
        ``norm``, ``incidents_per_1000``, ``open_overdue`` (:data:`LAYERS`).
    defect_severities:
        Severities of the defects drawn (default ``("error", "warning")``;
        add ``"info"`` for digitising noise and other notes).

    Returns
    -------
    folium.Map
        Shown inline in Jupyter; :func:`gridgeo.maps.render_html` makes it
        one offline HTML file.

    Raises
    ------
    GridgeoError
        An unknown language, layer name, severity or tile source, or a tile
        source without its key.

    Examples
    --------
    >>> import gridgeo
    >>> from gridgeo.maps import render_html
    >>> m = coverage_map(gridgeo.load_demo(), language="en")
    >>> html = render_html(m)
    >>> "cdn.jsdelivr" in html, "<script src=" in html, needs_network(m)
    (False, False, False)
    >>> coverage_map(gridgeo.load_demo(), layers=["roads"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridgeo.errors.GridgeoError: unknown layer name(s) ['roads'] in layers=; ...
    """
    text = _text(language)
    tile = _tiles(tiles, tiles_key, tiles_attribution, tiles_crs)
    roles = _roles(system.config)
    want = _wanted(layers, roles)
    severities = _severities(defect_severities)
    shift = tile is not None and tile["crs"] == "gcj02"
    incidents, status = _known_statuses(incidents)

    polygons = _simplified(system, simplify_m, shift)
    grid_data = _features(polygons[roles.grid], grid=True)  # shared by the grid layer and views
    entries = _level_layers(polygons, roles, system.config, language, want)
    views, legends = _view_layers(
        system, roles, polygons[roles.grid], households, incidents, status, per_grid, text, want
    )
    entries += views
    entries += _point_layers(households, incidents, status, shift, text, want)
    if defects is not None and want("defects"):
        entries += _defect_layer(defects, severities, shift, text, language)

    bounds = _bounds(polygons, roles)
    config = {
        "title": _title(system, text, language, title),
        "bounds": [[bounds[1], bounds[0]], [bounds[3], bounds[2]]],
        "labels": {k: text[k] for k in _LABELS},
        "note": text["gcj02"] if shift else "",
        "tiles": tile,
        "layers": [
            {
                "key": e.key,
                "label": e.label,
                "kind": e.kind,
                "role": e.role,
                "show": e.show,
                "data": e.data,
            }
            for e in entries
        ],
        "legends": legends,
        "workload": grid_data,
        "places": _places(polygons[roles.top], language) if want(roles.top) else None,
    }
    m = build_page(config, bounds)
    m._gridgeo_tiles = tile
    return m


def needs_network(m: folium.Map) -> bool:
    """Whether the page of ``m`` loads anything from the network (its base tiles).

    A map from :func:`coverage_map` carries Leaflet and its data inline; only
    a tile layer with an ``http(s)://`` URL needs a connection. Tiles from a
    relative or absolute path come from wherever the page is served.

    Examples
    --------
    >>> import gridgeo
    >>> system = gridgeo.load_demo()
    >>> needs_network(coverage_map(system, layers=("town",)))
    False
    >>> needs_network(coverage_map(system, layers=("town",), tiles="osm"))
    True
    """
    tile = getattr(m, "_gridgeo_tiles", None)
    return bool(tile) and str(tile["url"]).lower().startswith(("http://", "https://", "//"))


# -- arguments ---------------------------------------------------------------------------
_LABELS = (
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
    "severity",
)


def _text(language: str) -> dict:
    if language not in TEXT:
        raise GridgeoError(
            f"{option('language', language)} is not a map language: use one of {sorted(TEXT)}"
        )
    return TEXT[language]


def _tiles(tiles, key, attribution, crs) -> dict | None:
    if tiles is None:
        return None
    if tiles in TILES:
        tile = dict(TILES[tiles])
        if "{key}" in tile["url"]:
            if not key:
                raise GridgeoError(
                    f"{option('tiles', tiles)} needs a key: pass {option('tiles_key', '…')} "
                    "(your Tianditu key)"
                )
            tile["url"] = tile["url"].replace("{key}", key)
        return tile
    if not str(tiles).startswith(("http://", "https://", "/", "./")) or "{z}" not in str(tiles):
        raise GridgeoError(
            f"{option('tiles', str(tiles))} is neither one of {sorted(TILES)} nor an XYZ URL "
            "template with {z}/{x}/{y}"
        )
    if crs not in ("wgs84", "gcj02"):
        raise GridgeoError(f"{option('tiles_crs', str(crs))}: use 'wgs84' or 'gcj02'")
    # Leaflet renders attributions as HTML: escape the caller's text.
    return {"url": str(tiles), "attribution": html.escape(attribution or ""), "crs": crs}


@dataclass(frozen=True)
class _Roles:
    """What each level of the system is on the map, from its config."""

    root: str  # frames the map, not drawn (Role.ROOT)
    top: str  # bold outlines and place labels (towns)
    grid: str  # filled, carries the views (Role.WORKLOAD: grids)
    drawn: tuple[str, ...]  # every level below the root, top to bottom

    def role(self, level: str) -> str:
        if level == self.grid:
            return "workload"
        if level == self.top:
            return "top"
        return "mid" if self.drawn.index(level) < self.drawn.index(self.grid) else "fine"


def _roles(config: GridConfig) -> _Roles:
    """The map's roles from the config's: its root, its workload level (the grids
    that are filled and carry the views), and the first level below the root,
    whose outlines and names frame the map at banner zoom."""
    names = config.level_names
    if len(names) < 2:
        raise GridgeoError(f"the grid system has levels {names}: nothing below the root to draw")
    root = config.role_name(Role.ROOT) or names[0]
    drawn = tuple(n for n in names if n != root)
    grid = config.role_name(Role.WORKLOAD) or drawn[-1]
    return _Roles(root, drawn[0], grid, drawn)


def _wanted(layers: Iterable[str] | None, roles: _Roles) -> Callable[[str], bool]:
    if not layers:
        return lambda key: True
    wanted = tuple(layers.split(",")) if isinstance(layers, str) else tuple(layers)
    valid = (*roles.drawn, *POINT_LAYERS, *VIEWS)
    unknown = [str(k) for k in wanted if k not in valid]
    if unknown:
        raise GridgeoError(
            f"unknown layer name(s) {unknown} in {option('layers')}; "
            f"the map's layers are: {', '.join(valid)}"
        )
    return set(wanted).__contains__


def _severities(severities: Iterable[str]) -> tuple[str, ...]:
    chosen = (severities,) if isinstance(severities, str) else tuple(severities)
    unknown = [s for s in chosen if s not in SEVERITY_ORDER]
    if unknown:
        raise GridgeoError(
            f"unknown severity {unknown} in {option('defect_severities')}: "
            f"use any of {list(SEVERITY_ORDER)}"
        )
    return chosen


def _known_statuses(incidents: pd.DataFrame | None) -> tuple[pd.DataFrame | None, str | None]:
    """The incidents with unknown case statuses blanked (and a warning), and the column."""
    if incidents is None:
        return None, None
    column = next((c for c in ("status", "case_status") if c in incidents), None)
    if column is None:
        return incidents, None
    values = incidents[column]
    unknown = (values.notna() & ~values.astype(str).isin(stats.CASE_STATUSES)).to_numpy()
    if unknown.any():
        found = pd.unique(values[unknown].astype(str))
        first = incidents.index[np.flatnonzero(unknown)[0]]
        warnings.warn(
            f"{int(unknown.sum()):,} incident(s) have a case status the map does not know in "
            f"column {column!r}: {list(found[:10])} (first at row {first!r}). They are drawn "
            f"in the heat but left out of the open incidents and the status views; case "
            f"statuses are {list(stats.CASE_STATUSES)}.",
            UserWarning,
            stacklevel=3,
        )
        incidents = incidents.assign(**{column: values.where(~unknown)})
    return incidents, column


# -- the levels --------------------------------------------------------------------------
@dataclass
class _Layer:
    key: str
    label: str
    kind: str  # "polygons", "view", "heat", "points", "defects"
    data: object
    show: bool
    role: str | None = None  # polygons: "top", "mid", "workload", "fine"


def _simplified(system: GridSystem, tolerance: float, shift: bool) -> dict[str, gpd.GeoDataFrame]:
    """Each level simplified as a coverage in metres, rounded to ~0.1 m, in lon/lat."""
    out = {}
    target = system.metric_crs
    for name, frame in system.items():
        metric = frame.to_crs(target)
        # Polygon parts only: a repaired spike would otherwise leave a line behind.
        geoms = shapely.make_valid(
            metric.geometry.to_numpy(), method="structure", keep_collapsed=False
        )
        if tolerance > 0 and shapely.coverage_is_valid(geoms):
            geoms = shapely.coverage_simplify(geoms, tolerance)
        lonlat = _shifted(gpd.GeoSeries(geoms, crs=metric.crs).to_crs(4326).to_numpy(), shift)
        out[name] = gpd.GeoDataFrame(
            frame.drop(columns=frame.geometry.name),
            geometry=shapely.set_precision(lonlat, 1e-6),
            crs=4326,
        )
    return out


def _shifted(geoms: np.ndarray, shift: bool) -> np.ndarray:
    """Lon/lat geometries moved into GCJ-02 when the tiles are GCJ-02."""
    if not shift:
        return geoms
    return shapely.transform(
        geoms, lambda xy: np.column_stack(from_wgs84(xy[:, 0], xy[:, 1], "gcj02"))
    )


def _level_label(level: Level, language: str) -> str:
    """The level's name from the config: ``网格`` or ``Grid``."""
    if language == "zh":
        return level.label_zh
    return level.label_en[:1].upper() + level.label_en[1:]


def _level_layers(polygons, roles: _Roles, config: GridConfig, language: str, want) -> list:
    """The grid level first, then the others bottom-up: the top level's lines last."""
    order = [roles.grid, *(n for n in reversed(roles.drawn) if n != roles.grid)]
    out = []
    for level in order:
        if not want(level):
            continue
        role = roles.role(level)
        data = None if role == "workload" else _features(polygons[level])
        label = _level_label(config.level(level), language)
        out.append(_Layer(level, label, "polygons", data, role != "fine", role))
    return out


_SHOWN = ("code", "name", "leader", "workers", "households", "residents")


def _features(frame: gpd.GeoDataFrame, grid: bool = False) -> dict:
    """GeoJSON with only the shown fields, and a colour per polygon for grids."""
    props = pd.DataFrame({c: frame[c] for c in _SHOWN if c in frame})
    if grid:
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


def _bounds(polygons, roles: _Roles) -> np.ndarray:
    for level in (roles.root, roles.top, roles.grid):
        bounds = polygons[level].total_bounds
        if np.isfinite(bounds).all():
            return bounds
    raise GridgeoError("the grid system has no geometry to draw")


def _title(system: GridSystem, text, language: str, title: str | None) -> str:
    if title is not None:
        return str(title)
    if language == "zh":
        return text["title"].format(root=system.config.root_name)
    root = system[system.config.level_names[0]]
    for column in LABEL_COLUMNS_EN:
        if column in root and len(root) and pd.notna(root[column].iloc[0]):
            return text["title"].format(root=str(root[column].iloc[0]))
    return text["untitled"].format(code=system.config.root_code)


def _places(frame: gpd.GeoDataFrame, language: str) -> dict:
    """The top level's names at the centre of its largest inscribed circle."""
    names = frame["name"].astype(object)
    if language != "zh":
        for column in LABEL_COLUMNS_EN:
            if column in frame:
                names = frame[column].astype(object).where(frame[column].notna(), names)
                break
    geoms = frame.geometry.to_numpy()
    keep = ~(shapely.is_empty(geoms) | pd.isna(geoms)) & names.notna().to_numpy()
    centre = shapely.get_point(shapely.maximum_inscribed_circle(geoms[keep]), 0)
    items = np.column_stack(
        [
            np.round(shapely.get_y(centre), 5),
            np.round(shapely.get_x(centre), 5),
            names[keep].astype(str).to_numpy(),
        ]
    ).tolist()
    items = [[float(lat), float(lon), name] for lat, lon, name in items]
    return {"max_zoom": PLACE_LABEL_MAX_ZOOM, "items": items}


# -- views ---------------------------------------------------------------------------------
def _view_layers(
    system, roles, grids, households, incidents, status, per_grid, text, want
) -> tuple[list[_Layer], dict]:
    """The choropleth views, when the points are assigned (or ``per_grid`` is given)."""
    code = f"{roles.grid}_code"
    if per_grid is None and (households is None or code not in households):
        return [], {}
    if per_grid is None:
        per_grid = stats.households_per_grid(households, system)
    if incidents is not None and code in incidents:
        needed = [c for c in (status or "status", "deadline", "reported_at") if c not in incidents]
        if needed:
            warnings.warn(
                f"the incidents have no column(s) {needed}: the views of incident rates and "
                "open cases are left out",
                UserWarning,
                stacklevel=3,
            )
        else:
            per_grid = stats.incident_rates(incidents, per_grid, status=status)
    return _views(per_grid, grids, text, want)


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
        norm = per["norm"].astype(object).fillna("n/a").astype(str)
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


# -- points --------------------------------------------------------------------------------
def _point_layers(households, incidents, status, shift, text, want) -> list[_Layer]:
    out = []
    if households is not None and want("households"):
        heat = _heat(households, HOUSEHOLD_SIZE, shift)
        out.append(_Layer("households", text["households"], "heat", heat, False))
    if incidents is not None and want("incidents"):
        heat = _heat(incidents, None, shift)
        out.append(_Layer("incidents", text["incidents"], "heat", heat, False))
    if incidents is not None and status is not None and want("open"):
        open_ = incidents[incidents[status].isin(stats.OPEN_STATUSES).to_numpy()]
        points = _points(open_, status, shift, text)
        out.append(_Layer("open", text["open"], "points", points, False))
    return out


def _usable(points: gpd.GeoDataFrame, shift: bool) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """The rows that are points with real lon/lat coordinates, and those points.

    NaN, inf, absurd (1e300) or missing coordinates are dropped: assign has
    already reported them as invalid, and JSON cannot hold them.
    """
    if points.crs is None:
        raise CrsError(
            "the points have no CRS: set one (points.set_crs(4326) for longitude/latitude), "
            "or read them with gridgeo.io.read_points"
        )
    geoms = points.geometry.to_crs(4326).to_numpy()
    x, y = shapely.get_x(geoms), shapely.get_y(geoms)  # NaN for non-points and None
    with np.errstate(invalid="ignore"):
        ok = (shapely.get_type_id(geoms) == 0) & (np.abs(x) <= 180) & (np.abs(y) <= 90)
    return points[ok], _shifted(geoms[ok], shift)


def _heat(points: gpd.GeoDataFrame, weight: str | None, shift: bool) -> list:
    """Points binned on a lattice of HEAT_CELL degrees (~170 × 220 m here) as
    [lat, lon, weight]: the heat shows where people are, not where anyone lives."""
    pts, geoms = _usable(points, shift)
    x, y = shapely.get_x(geoms), shapely.get_y(geoms)
    w = (
        pd.to_numeric(pts[weight], errors="coerce").fillna(1).clip(lower=0).to_numpy(float)
        if weight in pts
        else np.ones(len(pts))
    )
    if not len(pts):
        return []
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
    if binned.empty:
        return []
    top = binned["w"].quantile(0.99) or 1.0
    return np.column_stack(
        [binned["y"].round(4), binned["x"].round(4), (binned["w"] / top).clip(0, 1).round(3)]
    ).tolist()


def _points(points: gpd.GeoDataFrame, status: str, shift: bool, text) -> dict:
    """Open incidents: class, status and description only (no reporter data)."""
    pts, geoms = _usable(points, shift)
    cols = [c for c in ("incident_id", "event_class", "subclass", "description") if c in pts]
    props = pts[cols].astype("string")
    props["state"] = pts[status].astype("string")  # for the colour; "status" is shown translated
    props["status"] = props["state"].map(text["statuses"]).fillna(props["state"])
    if "grid_code" in pts:
        props["grid_code"] = pts["grid_code"].astype("string")
    return _geojson(shapely.set_precision(geoms, 1e-5), props)


# -- defects -------------------------------------------------------------------------------
_DEFECT_COLUMNS = ("kind", "severity", "codes", "message_zh", "message_en")
_UNKNOWN_KIND_COLOUR = "#737373"


def _defect_layer(defects, severities, shift, text, language) -> list[_Layer]:
    """The defects of the chosen severities, coloured by kind, with their legend."""
    missing = [c for c in _DEFECT_COLUMNS if c not in defects]
    if missing:
        raise SchemaError(
            f"the defects have no column(s) {missing}: pass check_system(...).defects, "
            "or a defects file written by gridgeo check"
        )
    chosen = defects[defects["severity"].isin(severities).to_numpy()]
    geoms = chosen.geometry.to_numpy()
    chosen = chosen[~(pd.isna(geoms) | shapely.is_empty(geoms))]
    if chosen.empty:
        return []
    index = 0 if language == "zh" else 1
    names = {kind: both[index] for kind, both in DEFECT_KINDS.items()}
    data = {
        "features": _defect_features(chosen, names, shift, language),
        **_defect_legend(chosen, names, index),
        "min_px": DEFECT_MIN_PX,
    }
    return [_Layer("defects", text["defects"], "defects", data, True)]


def _defect_features(defects, names: dict, shift: bool, language: str) -> dict:
    """GeoJSON of the defects: kind (named), codes, message, severity, colour, and a
    point on each (``at``) where the page puts its circle when it is too small to see."""
    geoms = _shifted(defects.geometry.to_crs(4326).to_numpy(), shift)
    geoms = shapely.set_precision(geoms, 1e-7)
    at = shapely.point_on_surface(geoms)
    kind = defects["kind"].astype(str)
    props = pd.DataFrame(
        {
            "kind": kind.map(names).fillna(kind).to_numpy(),
            "code": defects["codes"].to_numpy(),
            "message": defects["message_zh" if language == "zh" else "message_en"].to_numpy(),
            "severity": defects["severity"].to_numpy(),
            "fill": kind.map(DEFECT_COLOURS).fillna(_UNKNOWN_KIND_COLOUR).to_numpy(),
            "at": np.column_stack(
                [np.round(shapely.get_y(at), 7), np.round(shapely.get_x(at), 7)]
            ).tolist(),
        }
    )
    return _geojson(geoms, props)


def _defect_legend(defects, names: dict, index: int) -> dict:
    """Severities (for the filter) and kinds (most frequent first), with counts."""
    by_severity = defects["severity"].value_counts()
    by_kind = defects["kind"].astype(str).value_counts()
    return {
        "severities": [
            {"key": s, "label": SEVERITIES[s][index], "count": int(by_severity[s])}
            for s in sorted(by_severity.index, key=SEVERITY_ORDER.get)
        ],
        "kinds": [
            {
                "key": k,
                "label": names.get(k, k),
                "colour": DEFECT_COLOURS.get(k, _UNKNOWN_KIND_COLOUR),
                "count": int(by_kind[k]),
            }
            for k in sorted(by_kind.index, key=lambda k: (-by_kind[k], k))
        ],
    }
