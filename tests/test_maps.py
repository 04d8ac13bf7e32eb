"""Fast checks of the coverage map's HTML (no browser): offline, safe, private, light.

The browser side (the page really draws, offline, and stays safe when
hovered) is in ``test_maps_browser.py``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import shape

from gridgeo.assign import assign, build_index
from gridgeo.check import check_system
from gridgeo.demo import households, incidents, load_demo
from gridgeo.errors import GridgeoError
from gridgeo.maps import (
    HEAT_CELL,
    PALETTE,
    TEXT,
    TILES,
    coverage_map,
    grid_colours,
    render_html,
)
from gridgeo.model import GridSystem
from tests.conftest import tiny_layers

# -- helpers ---------------------------------------------------------------------------
_CALL = re.compile(r"gridgeoMap\((map_[0-9a-f]+),\s*")
_URL = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")


def embedded(html: str) -> tuple[dict, int, int]:
    """The page's JSON configuration, decoded, and where its text sits in ``html``.

    The data is either a ``<script type="application/json">`` block that the
    call reads with ``JSON.parse(….textContent)``, or a literal argument of
    the call; either way [start, end) spans exactly the JSON text.
    """
    calls = list(_CALL.finditer(html))
    assert len(calls) == 1, "expected exactly one gridgeoMap(...) call"
    block = re.match(
        r"JSON\.parse\(document\.getElementById\('([\w-]+)'\)\.textContent\)\);",
        html[calls[0].end() :],
    )
    if block:
        openings = list(re.finditer(rf"<script type=\"application/json\" id=\"{block[1]}\">", html))
        assert len(openings) == 1, "one JSON data element"
        start = openings[0].end()
        end = html.index("</script>", start)
        return json.loads(html[start:end]), start, end
    config, end = json.JSONDecoder().raw_decode(html, calls[0].end())
    assert html[end : end + 2] == ");", "the JSON argument must close the call"
    return config, calls[0].end(), end


def layer(config: dict, key: str) -> dict:
    (spec,) = [s for s in config["layers"] if s["key"] == key]
    return spec


def strings(value):
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


class _Scan(HTMLParser):
    """Elements, attributes and the text of <script>, <style> and <title>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.text: dict[str, list[str]] = {"script": [], "style": [], "title": []}
        self._open: str | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag in self.text:
            self._open, self._buffer = tag, []

    def handle_endtag(self, tag):
        if tag == self._open:
            self.text[tag].append("".join(self._buffer))
            self._open = None

    def handle_data(self, data):
        if self._open:
            self._buffer.append(data)


def scan(html: str) -> _Scan:
    parser = _Scan()
    parser.feed(html)
    parser.close()
    return parser


def linked_urls(html: str) -> set[str]:
    """Absolute URLs the page could fetch: src/href attributes, CSS url() and
    @import, literal L.tileLayer arguments, and URLs in the page's JSON data
    (the tile layer takes its template from there)."""
    page = scan(html)
    urls = set()
    for _, attrs in page.elements:
        for key in ("src", "href", "srcset", "data", "poster", "action"):
            if attrs.get(key) and _URL.match(attrs[key]):
                urls.add(attrs[key].strip())
    css = page.text["style"] + [attrs.get("style") or "" for _, attrs in page.elements]
    for text in css:
        for found in re.findall(r"url\(\s*['\"]?([^'\")\s]+)", text):
            if _URL.match(found):
                urls.add(found)
        urls.update(re.findall(r"@import\s+['\"]([^'\"]+)", text))
    for text in page.text["script"]:
        urls.update(re.findall(r"L\.tileLayer\(\s*(['\"`])(.*?)\1", text))
    urls.update(s for s in strings(embedded(html)[0]) if _URL.match(s))
    return urls


def tiny_system(changes: dict | None = None) -> GridSystem:
    """The conftest system, with ``{(level, column): values}`` replaced."""
    layers = tiny_layers()
    for (level, column), values in (changes or {}).items():
        layers[level][column] = values
    return GridSystem.from_layers(layers, origin="tiny")


def neighbour_pairs(geoms: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of polygons sharing a stretch of boundary (not just a corner),
    found independently of grid_colours: boundary within ``tol`` of the other's
    boundary over more than 10·tol."""
    left, right = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=tol)
    keep = left < right
    left, right = left[keep], right[keep]
    near = shapely.intersection(
        shapely.boundary(geoms[left]), shapely.buffer(shapely.boundary(geoms[right]), tol)
    )
    shared = shapely.length(near) > 10 * tol
    return left[shared], right[shared]


# -- fixtures --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(demo_system):
    """The full demo map: assigned households and incidents, the dirty variant's defects."""
    index = build_index(demo_system)
    homes = households(demo_system)
    events = incidents(demo_system, homes)
    homes = assign(homes, demo_system, index=index)
    events = assign(events, demo_system, index=index)
    defects = check_system(load_demo("dirty"), dual=False).defects
    html = render_html(
        coverage_map(demo_system, households=homes, incidents=events, defects=defects)
    )
    config, _, _ = embedded(html)
    return SimpleNamespace(
        system=demo_system, homes=homes, events=events, defects=defects, html=html, config=config
    )


# -- offline ---------------------------------------------------------------------------
def test_nothing_is_loaded_from_a_network(demo):
    html = demo.html
    page = scan(html)
    assert not [a for tag, a in page.elements if tag == "script" and "src" in a]
    assert not re.search(r"<script[^>]*\ssrc\s*=", html, re.IGNORECASE)
    assert not [
        a
        for tag, a in page.elements
        if tag == "link" and _URL.match(a.get("href", "") or "") is not None
    ]
    assert not re.search(r"<link[^>]*href\s*=\s*['\"]?(https?:)?//", html, re.IGNORECASE)
    for css in page.text["style"]:
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", css, re.IGNORECASE)
        assert "@import" not in css
    assert page.text["script"] and page.text["style"], "Leaflet must be inlined"
    # base64 data may spell anything ("cdN…"); words are looked for outside it
    words = _DATA_URI.sub("", html).lower()
    for cdn in ("cdn", "jsdelivr", "cdnjs", "unpkg", "bootstrap", "fontawesome", "font-awesome"):
        assert cdn not in words, cdn
    assert "jquery" not in words
    assert linked_urls(html) == set()


def test_only_url_is_the_tile_template():
    html = render_html(coverage_map(tiny_system(), tiles="osm"))
    assert linked_urls(html) == {TILES["osm"]["url"]}
    config, _, _ = embedded(html)
    assert config["tiles"]["url"] == TILES["osm"]["url"]
    assert "L.tileLayer(cfg.tiles.url" in html  # the template reaches Leaflet from the data

    own = "https://tiles.example.gov.cn/{z}/{x}/{y}.png"
    assert linked_urls(render_html(coverage_map(tiny_system(), tiles=own))) == {own}
    assert linked_urls(render_html(coverage_map(tiny_system()))) == set()


# -- safe ------------------------------------------------------------------------------
PAYLOADS = (
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(1)</script>",
    "`${alert(1)}`",
    "${alert(1)}",
    "反引号`名称",
    "</ScRiPt\t><!--\u2028\u2029",
    "&lt;b&gt; & \"double\" 'single' \\ backslash",
    "巴特尔<b>加粗</b>",
)


@pytest.fixture(scope="module")
def xss():
    grid_names = list(PAYLOADS[:4])
    leaders = list(PAYLOADS[4:])
    town_names = [PAYLOADS[1], PAYLOADS[0]]
    micro_names = [PAYLOADS[2], PAYLOADS[5], PAYLOADS[7]]
    system = tiny_system(
        {
            ("grid", "name"): grid_names,
            ("grid", "leader"): leaders,
            ("town", "name"): town_names,
            ("micro_grid", "name"): micro_names,
        }
    )
    events = gpd.GeoDataFrame(
        {
            "incident_id": ["E1", "E2"],
            "event_class": [PAYLOADS[0], "市容环境"],
            "subclass": ["井盖", PAYLOADS[3]],
            "status": ["overdue", "reported"],
            "description": [PAYLOADS[1], PAYLOADS[2]],
        },
        geometry=shapely.points([(108.55, 40.77), (108.65, 40.72)]),
        crs="EPSG:4490",
    )
    html = render_html(coverage_map(system, incidents=events))
    plain = render_html(coverage_map(tiny_system(), incidents=events.assign(description="x")))
    return SimpleNamespace(
        html=html,
        plain=plain,
        grid_names=grid_names,
        leaders=leaders,
        town_names=town_names,
        micro_names=micro_names,
        events=events,
    )


def test_user_text_never_appears_raw(xss):
    html = xss.html
    _, start, end = embedded(html)
    for payload in PAYLOADS:
        if set(payload) & set("<>&\u2028\u2029"):
            assert payload not in html, payload
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in html[start:end]
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in html[start:end]
    assert "\u2028" not in html and "\u2029" not in html
    # Payloads without <, > or & (the backtick and ${…}) stay as JSON string
    # text: every occurrence lies inside the page's JSON data, which is parsed
    # as data (JSON.parse, or a plain object literal), never evaluated as code.
    for marker in ("alert(1)", "onerror=alert", "${", "`"):
        spots = [m.start() for m in re.finditer(re.escape(marker), html)]
        assert spots, marker
        outside = [i for i in spots if not start <= i < end]
        assert not outside, (marker, [html[i - 40 : i + 40] for i in outside[:3]])
    # The document has the same elements as one without payloads: nothing was injected.
    assert [t for t, _ in scan(html).elements] == [t for t, _ in scan(xss.plain).elements]


def test_user_text_decodes_to_the_exact_original(xss):
    config, _, _ = embedded(xss.html)
    grids = [f["properties"] for f in config["grid"]["features"]]
    assert [g["name"] for g in grids] == xss.grid_names
    assert [g["leader"] for g in grids] == xss.leaders
    towns = [f["properties"]["name"] for f in layer(config, "town")["data"]["features"]]
    assert towns == xss.town_names
    micro = [f["properties"]["name"] for f in layer(config, "micro_grid")["data"]["features"]]
    assert micro == xss.micro_names
    points = [f["properties"] for f in layer(config, "open")["data"]["features"]]
    assert [p["description"] for p in points] == list(xss.events["description"])
    assert [p["event_class"] for p in points] == list(xss.events["event_class"])
    assert [p["subclass"] for p in points] == list(xss.events["subclass"])


def test_title_is_escaped():
    payload = "<img src=x onerror=alert(1)>旗"
    base = tiny_system()
    system = GridSystem(
        base.levels, dataclasses.replace(base.config, root_name=payload), origin="tiny"
    )
    html = render_html(coverage_map(system))
    assert payload not in html
    title = TEXT["zh"]["title"].format(root=payload)
    assert scan(html).text["title"] == [title]
    assert embedded(html)[0]["title"] == title


# -- private ---------------------------------------------------------------------------
def test_no_personal_data(demo):
    homes, html = demo.homes, demo.html
    assert {"head_name", "phone", "id_number"} <= set(homes.columns)
    digit_runs = set(re.findall(r"\d+", html))
    assert not digit_runs & set(homes["phone"])
    assert not set(re.findall(r"\d{17}[\dX]", html)) & set(homes["id_number"])
    assert not set(re.findall(r"[A-Z]\d{6}", html)) & set(homes["household_id"])

    # Head names are 2–3 character Chinese names drawn like the grid leaders'
    # (public officials, shown on purpose), so the same names occur. Every
    # head name found in the page must be explained by the grid system's own
    # names and leaders.
    def pieces(texts) -> set[str]:
        return {t[i : i + k] for t in texts for k in (2, 3, 4) for i in range(len(t) - k + 1)}

    in_page = pieces(re.findall(r"[\u3400-\u9fff]+", html))
    public = pieces(
        str(v)
        for _, frame in demo.system.items()
        for column in ("name", "leader")
        if column in frame
        for v in frame[column].dropna()
    )
    found = set(homes["head_name"]) & in_page
    assert not found - public, sorted(found - public)[:20]


def test_heat_is_binned(demo):
    for key, points in (("households", demo.homes), ("incidents", demo.events)):
        heat = np.array(layer(demo.config, key)["data"], dtype=float)
        assert heat.ndim == 2 and heat.shape[1] == 3
        assert len(heat) < len(points), (key, len(heat), len(points))
        lattice = heat[:, :2] / HEAT_CELL
        assert np.allclose(lattice, np.round(lattice), atol=1e-3), (
            f"not on the {HEAT_CELL}° lattice"
        )
        assert len(np.unique(heat[:, :2], axis=0)) == len(heat), "cells must be merged"
        assert (heat[:, 2] > 0).all() and (heat[:, 2] <= 1).all()
    # Open incidents are points, but carry no reporter data and ~1 m coordinates.
    shown = layer(demo.config, "open")["data"]["features"]
    assert shown
    allowed = {
        "incident_id",
        "event_class",
        "subclass",
        "status",
        "state",
        "description",
        "grid_code",
    }
    for feature in shown:
        assert set(feature["properties"]) <= allowed
        lon, lat = feature["geometry"]["coordinates"]
        assert round(lon, 5) == lon and round(lat, 5) == lat


# -- correct ---------------------------------------------------------------------------
def test_default_layers_and_counts(demo):
    config = demo.config
    shown = {s["key"]: s["show"] for s in config["layers"]}
    assert {k for k, v in shown.items() if v} == {"grid", "town", "defects"}
    assert {
        "micro_grid",
        "households",
        "incidents",
        "open",
        "households_per_worker",
        "norm",
        "incidents_per_1000",
        "open_overdue",
    } <= set(shown)
    assert len(config["grid"]["features"]) == 662
    assert len(layer(config, "town")["data"]["features"]) == 11
    assert len(layer(config, "micro_grid")["data"]["features"]) == 897
    assert len(layer(config, "defects")["data"]["features"]) == len(demo.defects)
    for spec in config["layers"]:
        if spec["kind"] == "view":
            assert len(spec["data"]["fill"]) == len(spec["data"]["value"]) == 662
            assert spec["key"] in config["legends"]


def test_amap_shifts_to_gcj02():
    system = tiny_system()
    plain, _, _ = embedded(render_html(coverage_map(system)))
    html = render_html(coverage_map(system, tiles="amap"))
    shifted, _, _ = embedded(html)
    geod = Geod(ellps="WGS84")
    for a, b in zip(plain["grid"]["features"], shifted["grid"]["features"], strict=True):
        (lon1, lat1), (lon2, lat2) = (f["geometry"]["coordinates"][0][0] for f in (a, b))
        metres = geod.inv(lon1, lat1, lon2, lat2)[2]
        assert 400 < metres < 600, metres
    assert TEXT["zh"]["gcj02"] in html
    assert shifted["note"] == TEXT["zh"]["gcj02"] and plain["note"] == ""
    assert TEXT["zh"]["gcj02"] not in render_html(coverage_map(system, tiles="osm"))
    # a custom GCJ-02 tile server shifts the same way
    own, _, _ = embedded(
        render_html(
            coverage_map(system, tiles="https://t.example/{z}/{x}/{y}.png", tiles_crs="gcj02")
        )
    )
    assert own["grid"] == shifted["grid"]
    assert TEXT["en"]["gcj02"] in render_html(coverage_map(system, tiles="amap", language="en"))


def test_english_labels():
    system = tiny_system()
    homes = gpd.GeoDataFrame(
        {"grid_code": ["150823100001"] * 3 + ["150823101002"], "size": [3, 2, 4, 1]},
        geometry=shapely.points([(108.55, 40.77)] * 3 + [(108.65, 40.72)]),
        crs="EPSG:4490",
    )
    html = render_html(coverage_map(system, households=homes, language="en"))
    config, _, _ = embedded(html)
    en, zh = TEXT["en"], TEXT["zh"]
    assert config["title"] == "乌拉特前旗 grid coverage"
    assert scan(html).text["title"] == ["乌拉特前旗 grid coverage"]
    for key, value in config["labels"].items():
        assert value == en[key]
    labels = {s["key"]: s["label"] for s in config["layers"]}
    assert labels["grid"] == "Grids" and labels["town"] == "Towns"
    assert labels["micro_grid"] == "Micro-grids"
    assert labels["households"] == en["households"]
    assert labels["norm"] == en["views"]["norm"]
    assert config["legends"]["norm"]["title"] == en["views"]["norm"]
    assert {item[1] for item in config["legends"]["norm"]["items"]} == set(en["norm"].values())
    for chinese in (zh["leader"], zh["search"], zh["views"]["norm"], zh["households"]):
        assert chinese not in html
    chinese_config, _, _ = embedded(render_html(coverage_map(system, households=homes)))
    assert chinese_config["labels"]["leader"] == zh["leader"]


def test_neighbours_get_different_colours(demo):
    grid = demo.system["grid"]
    colours = grid_colours(grid)
    assert len(colours) == len(grid) and colours.max() < len(PALETTE)
    metric = grid.to_crs(32649).geometry.to_numpy()
    left, right = neighbour_pairs(metric, 0.01)
    assert len(left) > 1500  # 662 grids tiling a banner share ~1,900 edges
    assert not (colours[left] == colours[right]).any()

    # and on the simplified, rounded geometry the page actually draws
    features = demo.config["grid"]["features"]
    drawn = np.array([shape(f["geometry"]) for f in features])
    fills = np.array([f["properties"]["fill"] for f in features])
    left, right = neighbour_pairs(drawn, 1e-6)
    assert len(left) > 1500
    assert not (fills[left] == fills[right]).any()
    assert set(fills) <= set(PALETTE)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tiles": "google"},
        {"tiles": "tianditu"},  # needs tiles_key
        {"tiles": "https://tiles.example/tile.png"},  # no {z}/{x}/{y}
        {"tiles": "javascript:alert(1)//{z}/{x}/{y}"},
        {"tiles": "ftp://tiles.example/{z}/{x}/{y}.png"},
        {"tiles": "https://tiles.example/{z}/{x}/{y}.png", "tiles_crs": "bd09"},
        {"language": "fr"},
        {"language": "ZH"},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(GridgeoError):
        coverage_map(tiny_system(), **kwargs)


def test_tianditu_key_goes_into_the_template():
    html = render_html(coverage_map(tiny_system(), tiles="tianditu", tiles_key="abc123"))
    (url,) = linked_urls(html)
    assert url.startswith("https://t0.tianditu.gov.cn/") and url.endswith("&tk=abc123")


def test_render_is_repeatable():
    m = coverage_map(tiny_system())
    first = render_html(m)
    assert render_html(m) == first
    assert first.count("charset") == 1
    assert first.count("gridgeoMap(map_") == 1


def test_dirty_system_draws():
    """The dirty demo — the data a defect map is for — can itself be drawn.

    Its spiked micro-grid turns into a GeometryCollection under make_valid;
    every level must still reach the page with one feature per polygon.
    """
    system = load_demo("dirty")
    config, _, _ = embedded(render_html(coverage_map(system)))
    assert len(config["grid"]["features"]) == len(system["grid"])
    assert len(layer(config, "micro_grid")["data"]["features"]) == len(system["micro_grid"])


# -- light -----------------------------------------------------------------------------
def test_full_demo_map_is_under_5_mb(demo):
    size = len(demo.html.encode("utf-8"))
    assert size < 5_000_000, f"{size / 1e6:.1f} MB"
