"""Fast checks of the coverage map's HTML (no browser): offline, safe, private, light.

The browser side (the page really draws, offline, and stays safe when
hovered) is in ``test_maps_browser.py``.
"""

from __future__ import annotations

import dataclasses
import html as html_module
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import shape

import gridgeo.maps
from gridgeo.assign import assign, build_index
from gridgeo.check import check_system
from gridgeo.demo import households, incidents, load_demo
from gridgeo.errors import GridgeoError
from gridgeo.maps import (
    DEFECT_COLOURS,
    DEFECT_KINDS,
    HEAT_CELL,
    LAYERS,
    PALETTE,
    SEVERITIES,
    TEXT,
    TILES,
    coverage_map,
    grid_colours,
    needs_network,
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
    grids = [f["properties"] for f in config["workload"]["features"]]
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
    assert len(config["workload"]["features"]) == 662
    assert len(layer(config, "town")["data"]["features"]) == 11
    assert len(layer(config, "micro_grid")["data"]["features"]) == 897
    shown = demo.defects[demo.defects["severity"] != "info"]
    assert len(layer(config, "defects")["data"]["features"]["features"]) == len(shown)
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
    for a, b in zip(plain["workload"]["features"], shifted["workload"]["features"], strict=True):
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
    assert own["workload"] == shifted["workload"]
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
    # the root has no English name in the tiny system: its code stands in for it
    assert config["title"] == "Grid coverage (150823)"
    assert scan(html).text["title"] == ["Grid coverage (150823)"]
    for key, value in config["labels"].items():
        assert value == en[key]
    labels = {s["key"]: s["label"] for s in config["layers"]}
    # level names come from the system's config
    assert labels["grid"] == "Grid" and labels["town"] == "Town"
    assert labels["micro_grid"] == "Micro-grid"
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
    features = demo.config["workload"]["features"]
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
    assert len(config["workload"]["features"]) == len(system["grid"])
    assert len(layer(config, "micro_grid")["data"]["features"]) == len(system["micro_grid"])


# -- light -----------------------------------------------------------------------------
def test_full_demo_map_is_under_5_mb(demo):
    size = len(demo.html.encode("utf-8"))
    assert size < 5_000_000, f"{size / 1e6:.1f} MB"


# -- template injection ----------------------------------------------------------------
# User text must never reach Jinja2 (branca compiles Element(...) strings as
# templates): each payload would run, render or crash if it did.
INJECTIONS = (
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{% for x in range(3) %}x{% endfor %}",
    "{# comment #}",
    "幸福里{#3}号网格",
    "{{ 'gg' ~ 'EXEC' ~ 'UTED' }}",
    "{{ 7 * 191 }}",
    "{% raw %}{{ unbalanced",
    "}}{%",
)


def _marker_payload(marker) -> str:
    """A payload that, rendered as a template, creates ``marker``."""
    return f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}"


def _payload_system(payload: str) -> GridSystem:
    """The tiny system with ``payload`` in every text field a map shows."""
    base = tiny_system(
        {
            ("grid", "name"): [payload] * 4,
            ("grid", "leader"): [payload] * 4,
            ("town", "name"): [payload] * 2,
            ("micro_grid", "name"): [payload] * 3,
        }
    )
    base["town"]["pinyin"] = payload  # the English place labels
    base["banner"]["pinyin"] = payload  # the English title
    return GridSystem(
        base.levels, dataclasses.replace(base.config, root_name=payload), origin="tiny"
    )


def _payload_events(payload: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "incident_id": ["E1", "E2"],
            "event_class": [payload, payload],
            "subclass": [payload, "井盖"],
            "status": ["overdue", "reported"],
            "description": [payload, payload],
        },
        geometry=shapely.points([(108.55, 40.77), (108.65, 40.72)]),
        crs="EPSG:4490",
    )


def _payload_defects(payload: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "kind": ["gap"],
            "severity": ["error"],
            "level": ["grid"],
            "codes": [payload],
            "town": ["150823100"],
            "area_m2": [1.0],
            "width_m": [1.0],
            "message_zh": [payload],
            "message_en": [payload],
        },
        geometry=[shapely.box(108.55, 40.75, 108.5501, 40.7501)],
        crs="EPSG:4490",
    )


def notebook_html(m) -> str:
    """The document a notebook shows: the iframe's srcdoc of ``_repr_html_``."""
    frame = m._repr_html_()
    (srcdoc,) = re.findall(r'srcdoc="([^"]*)"', frame)
    return html_module.unescape(srcdoc)


def assert_payload_is_text(page: str, payload: str, language: str) -> None:
    """Every field holds ``payload`` exactly, and nothing of it ran as a template."""
    config, _, _ = embedded(page)
    grids = [f["properties"] for f in config["workload"]["features"]]
    assert {g["name"] for g in grids} == {g["leader"] for g in grids} == {payload}
    for key in ("town", "micro_grid"):
        assert {f["properties"]["name"] for f in layer(config, key)["data"]["features"]} == {
            payload
        }
    assert {item[2] for item in config["places"]["items"]} == {payload}
    title = TEXT["zh"]["title"] if language == "zh" else TEXT["en"]["title"]
    assert config["title"] == title.format(root=payload)
    assert scan(page).text["title"] == [config["title"]]
    points = [f["properties"] for f in layer(config, "open")["data"]["features"]]
    assert [p["description"] for p in points] == [payload, payload]
    assert [p["event_class"] for p in points] == [payload, payload]
    assert points[0]["subclass"] == payload
    (defect,) = layer(config, "defects")["data"]["features"]["features"]
    assert defect["properties"]["message"] == payload
    assert defect["properties"]["code"] == payload
    assert config["tiles"]["attribution"] == html_module.escape(payload)
    for trace in ("uid=", "ggEXECUTED", "1337"):
        assert trace not in page


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("payload", INJECTIONS)
def test_template_payloads_stay_text(payload, language, tmp_path):
    marker = tmp_path / "executed"
    for text in (payload, _marker_payload(marker)):
        m = coverage_map(
            _payload_system(text),
            incidents=_payload_events(text),
            defects=_payload_defects(text),
            language=language,
            tiles="https://tiles.example/{z}/{x}/{y}.png",
            tiles_attribution=text,
        )
        for page in (render_html(m), notebook_html(m)):
            assert_payload_is_text(page, text, language)
    assert not marker.exists(), "a payload ran a shell command"


def test_title_argument_stays_text(tmp_path):
    marker = tmp_path / "executed"
    for payload in (*INJECTIONS, _marker_payload(marker)):
        page = render_html(coverage_map(tiny_system(), title=payload))
        assert embedded(page)[0]["title"] == payload
        assert scan(page).text["title"] == [payload]
    assert not marker.exists()


def test_template_payloads_through_the_cli(tmp_path):
    """`gridgeo map` on files holding the payloads: exit 0, the text intact, nothing run."""
    from gridgeo.cli import main
    from gridgeo.io import write_system

    marker = tmp_path / "executed"
    payloads = [*INJECTIONS, _marker_payload(marker)]
    layers = tiny_layers()
    layers["grid"]["name"] = payloads[:4]
    layers["grid"]["leader"] = payloads[4:8]
    layers["town"]["name"] = payloads[:2]
    layers["micro_grid"]["name"] = payloads[6:9]
    data = write_system(GridSystem.from_layers(layers), tmp_path / "system.gpkg")
    events = tmp_path / "incidents.csv"
    pd.DataFrame(
        {
            "incident_id": [f"E{i}" for i in range(len(payloads))],
            "lon": 108.55,
            "lat": 40.77,
            "status": "reported",
            "event_class": payloads,
            "description": payloads[::-1],
        }
    ).to_csv(events, index=False)
    out = tmp_path / "map.html"
    assert main(["map", str(data), "-o", str(out), "--incidents", str(events)]) == 0
    page = out.read_text(encoding="utf-8")
    config, _, _ = embedded(page)
    grids = [f["properties"] for f in config["workload"]["features"]]
    assert [g["name"] for g in grids] == payloads[:4]
    assert [g["leader"] for g in grids] == payloads[4:8]
    assert [f["properties"]["name"] for f in layer(config, "town")["data"]["features"]] == (
        payloads[:2]
    )
    assert [item[2] for item in config["places"]["items"]] == payloads[:2]
    micro = [f["properties"]["name"] for f in layer(config, "micro_grid")["data"]["features"]]
    assert micro == payloads[6:9]
    points = [f["properties"] for f in layer(config, "open")["data"]["features"]]
    assert [p["event_class"] for p in points] == payloads
    assert [p["description"] for p in points] == payloads[::-1]
    assert "uid=" not in page and "ggEXECUTED" not in page
    assert not marker.exists()


# -- defects ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clean_defects(demo_system):
    """The clean banner's own findings: dual-grid warnings and info-level noise."""
    return check_system(demo_system).defects


def defect_layer(config: dict) -> dict:
    return layer(config, "defects")["data"]


def test_info_defects_stay_off_the_map_by_default(demo_system, clean_defects):
    info = clean_defects["severity"] == "info"
    assert info.sum() > 0 and (clean_defects.loc[info, "kind"] == "digitising_noise").all()
    tiny = tiny_system()  # the geometry of the defects does not need to lie in it
    config = embedded(render_html(coverage_map(tiny, defects=clean_defects)))[0]
    drawn = defect_layer(config)
    assert len(drawn["features"]["features"]) == (~info).sum()
    assert {f["properties"]["severity"] for f in drawn["features"]["features"]} == {"warning"}
    assert "MultiPoint" not in {f["geometry"]["type"] for f in drawn["features"]["features"]}
    assert [s["key"] for s in drawn["severities"]] == ["warning"]

    everything = coverage_map(
        tiny, defects=clean_defects, defect_severities=("error", "warning", "info")
    )
    drawn = defect_layer(embedded(render_html(everything))[0])
    assert len(drawn["features"]["features"]) == len(clean_defects)
    counts = {s["key"]: s["count"] for s in drawn["severities"]}
    assert counts == {"warning": (~info).sum(), "info": info.sum()}

    only_info = coverage_map(tiny, defects=clean_defects, defect_severities="info")
    assert {
        f["properties"]["severity"]
        for f in defect_layer(embedded(render_html(only_info))[0])["features"]["features"]
    } == {"info"}
    with pytest.raises(GridgeoError, match=r"'fatal'.*defect_severities="):
        coverage_map(tiny, defects=clean_defects, defect_severities=("error", "fatal"))
    # no defect of the chosen severities: no layer at all
    config = embedded(render_html(coverage_map(tiny, defects=clean_defects.iloc[:0])))[0]
    assert "defects" not in {s["key"] for s in config["layers"]}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_defects_have_a_colour_and_a_name_per_kind(demo, language):
    defects = demo.defects
    html = render_html(coverage_map(demo.system, defects=defects, language=language))
    drawn = defect_layer(embedded(html)[0])
    index = 0 if language == "zh" else 1
    features = drawn["features"]["features"]
    # feature by feature: the kind's own colour and its name in the map's language
    assert [f["properties"]["fill"] for f in features] == [
        DEFECT_COLOURS[k] for k in defects["kind"]
    ]
    assert [f["properties"]["kind"] for f in features] == [
        DEFECT_KINDS[k][index] for k in defects["kind"]
    ]
    message = defects["message_zh" if language == "zh" else "message_en"]
    assert [f["properties"]["message"] for f in features] == list(message)
    # the legend: every kind present, once, with its count, most frequent first
    counts = defects["kind"].value_counts()
    legend = {k["key"]: k for k in drawn["kinds"]}
    assert set(legend) == set(counts.index)
    for kind, entry in legend.items():
        assert entry["count"] == counts[kind]
        assert entry["label"] == DEFECT_KINDS[kind][index]
        assert entry["colour"] == DEFECT_COLOURS[kind]
    assert [k["count"] for k in drawn["kinds"]] == sorted(counts, reverse=True)
    assert [s["label"] for s in drawn["severities"]] == [
        SEVERITIES[s][index] for s in ("error", "warning")
    ]
    # the marker point of each defect lies on it
    for feature in features:
        lat, lon = feature["properties"]["at"]
        assert shape(feature["geometry"]).distance(shapely.Point(lon, lat)) < 1e-6
    assert drawn["min_px"] >= 8


def test_every_defect_kind_has_names_and_a_colour():
    from gridgeo.defects import KINDS

    assert set(DEFECT_KINDS) == set(KINDS) == set(DEFECT_COLOURS)
    assert len(set(DEFECT_COLOURS.values())) == len(DEFECT_COLOURS), "one colour per kind"
    for zh, en in DEFECT_KINDS.values():
        assert re.search(r"[\u4e00-\u9fff]", zh) and not re.search(r"[\u4e00-\u9fff]", en)
    assert set(SEVERITIES) == {"error", "warning", "info"}


# -- incidents and points --------------------------------------------------------------
def test_an_unknown_case_status_is_flagged_not_fatal(demo):
    events = demo.events.copy()
    statuses = events["status"].astype(object).copy()
    rows = [17, 2045]
    statuses.iloc[rows] = "已结案"
    events["status"] = statuses
    with pytest.warns(UserWarning) as caught:
        m = coverage_map(demo.system, households=demo.homes, incidents=events)
    (warning,) = [w for w in caught if "case status" in str(w.message)]
    text = str(warning.message)
    assert "2 incident(s)" in text and "'已结案'" in text
    assert f"row {events.index[rows[0]]!r}" in text
    config = embedded(render_html(m))[0]
    # the rest is mapped: the open incidents lose only the flagged rows, if they were open
    open_before = events["status"].isin(["reported", "dispatched", "handled", "overdue"])
    assert len(layer(config, "open")["data"]["features"]) == open_before.sum()
    assert {"incidents_per_1000", "open_overdue"} <= {s["key"] for s in config["layers"]}
    heat = np.array(layer(config, "incidents")["data"])
    reference = np.array(layer(demo.config, "incidents")["data"])
    assert np.array_equal(heat, reference), "flagged incidents still count in the heat"


def test_garbage_coordinates_are_left_out(demo):
    homes = demo.homes.iloc[:3000]
    garbage = gpd.GeoDataFrame(
        {"size": [3, 2, 4, 1, 5], "grid_code": [None] * 5},
        geometry=[
            shapely.Point(np.nan, 40.8),
            shapely.Point(np.inf, 40.8),
            shapely.Point(1e300, 1e300),
            None,
            shapely.Point(108.9, -np.inf),
        ],
        crs=homes.crs,
    )
    dirty = pd.concat([homes, garbage], ignore_index=True)
    events = pd.concat([demo.events.iloc[:500], garbage.assign(status="reported")])
    clean_map = coverage_map(demo.system, households=homes, incidents=demo.events.iloc[:500])
    dirty_map = coverage_map(demo.system, households=dirty, incidents=events)
    clean, dirty_config = (embedded(render_html(m))[0] for m in (clean_map, dirty_map))
    for key in ("households", "incidents", "open"):
        assert layer(dirty_config, key)["data"] == layer(clean, key)["data"], key


def test_heat_without_a_size_column_counts_rows():
    points = gpd.GeoDataFrame(geometry=shapely.points([(108.55, 40.77)] * 4), crs="EPSG:4490")
    config = embedded(render_html(coverage_map(tiny_system(), households=points)))[0]
    assert layer(config, "households")["data"] == [[40.77, 108.55, 1.0]]


# -- layers, levels, language, network -------------------------------------------------
def test_unknown_layer_names_are_refused():
    assert LAYERS == (
        "town",
        "grid",
        "micro_grid",
        "households",
        "incidents",
        "open",
        "defects",
        "households_per_worker",
        "norm",
        "incidents_per_1000",
        "open_overdue",
    )
    with pytest.raises(GridgeoError) as caught:
        coverage_map(tiny_system(), layers=("nonsense",))
    message = str(caught.value)
    assert "'nonsense'" in message and "layers=" in message
    assert all(name in message for name in LAYERS)
    from gridgeo.errors import cli_voice

    with cli_voice(), pytest.raises(GridgeoError, match="--layers"):
        coverage_map(tiny_system(), layers=("grid", "roads"))
    config = embedded(render_html(coverage_map(tiny_system(), layers="town,grid")))[0]
    assert [s["key"] for s in config["layers"]] == ["grid", "town"]


def test_levels_come_from_the_config():
    from gridgeo.config import Coverage, GridConfig, Level

    config = GridConfig(
        root_name="某县",
        levels=(
            Level("county", "县", "county", 6, Coverage.ROOT),
            Level("township", "乡镇", "township", 3, Coverage.FULL),
            Level("village", "村", "village", 3, Coverage.FULL),
            Level("cell", "单元", "cell", 3, Coverage.FULL),
            Level("plot", "小区", "plot", 3, Coverage.REFINED),
        ),
    )
    layers = tiny_layers()
    # assign() evaluates in order: parent codes first, from the unchanged codes
    village = layers["town"].assign(
        parent_code=lambda f: f["code"], code=lambda f: f["code"] + "001"
    )
    cell = layers["grid"].assign(
        code=lambda f: f["parent_code"] + "001" + f["code"].str[-3:],
        parent_code=lambda f: f["parent_code"] + "001",
    )
    plot = layers["micro_grid"].assign(
        code=lambda f: cell["code"].iloc[0] + f["code"].str[-3:],
        parent_code=cell["code"].iloc[0],
    )
    system = GridSystem.from_layers(
        {
            "county": layers["banner"],
            "township": layers["town"],
            "village": village,
            "cell": cell,
            "plot": plot,
        },
        config,
    )
    page = embedded(render_html(coverage_map(system, language="en")))[0]
    specs = {s["key"]: s for s in page["layers"]}
    assert [s["key"] for s in page["layers"] if s["kind"] == "polygons"] == [
        "cell",
        "plot",
        "village",
        "township",
    ]
    roles = {k: (specs[k]["role"], specs[k]["label"], specs[k]["show"]) for k in specs}
    assert roles["cell"] == ("workload", "Cell", True)
    assert roles["township"] == ("top", "Township", True)
    assert roles["village"] == ("mid", "Village", True)
    assert roles["plot"] == ("fine", "Plot", False)
    assert [f["properties"]["code"] for f in page["workload"]["features"]] == list(cell["code"])
    assert [item[2] for item in page["places"]["items"]] == list(layers["town"]["name"])
    with pytest.raises(GridgeoError, match="'grid'"):
        coverage_map(system, layers=("grid",))
    # a declared role wins over the default by position
    declared = GridSystem(
        system.levels, dataclasses.replace(config, roles=(("workload", "village"),))
    )
    page = embedded(render_html(coverage_map(declared)))[0]
    assert [f["properties"]["code"] for f in page["workload"]["features"]] == list(village["code"])
    assert {s["key"]: s["role"] for s in page["layers"]} == {
        "village": "workload",
        "plot": "fine",
        "cell": "fine",
        "township": "top",
    }
    assert [
        s["key"] for s in embedded(render_html(coverage_map(system, layers=("plot",))))[0]["layers"]
    ] == ["plot"]


def test_english_map_speaks_english(demo):
    m = coverage_map(demo.system, defects=demo.defects, language="en")
    page = render_html(m)
    config = embedded(page)[0]
    cjk = re.compile(r"[\u3400-\u9fff]")
    assert not cjk.search(config["title"]) and not cjk.search(scan(page).text["title"][0])
    assert not any(cjk.search(v) for v in config["labels"].values())
    assert not any(cjk.search(s["label"]) for s in config["layers"])
    drawn = defect_layer(config)
    assert not any(cjk.search(k["label"]) for k in drawn["kinds"] + drawn["severities"])
    # towns are labelled with their pinyin in English, their names in Chinese
    towns = demo.system["town"]
    assert [i[2] for i in config["places"]["items"]] == list(towns["pinyin"])
    chinese = embedded(render_html(coverage_map(demo.system, layers=("town",))))[0]
    assert [i[2] for i in chinese["places"]["items"]] == list(towns["name"])
    assert chinese["places"]["max_zoom"] >= 9
    # each label sits inside its town
    for (lat, lon, _), geometry in zip(
        chinese["places"]["items"], towns.to_crs(4326).geometry, strict=True
    ):
        assert geometry.buffer(0.005).contains(shapely.Point(lon, lat))


def test_needs_network():
    system = tiny_system()
    assert not needs_network(coverage_map(system))
    assert needs_network(coverage_map(system, tiles="osm"))
    assert needs_network(coverage_map(system, tiles="tianditu", tiles_key="k"))
    assert needs_network(coverage_map(system, tiles="https://t.example/{z}/{x}/{y}.png"))
    assert not needs_network(coverage_map(system, tiles="/tiles/{z}/{x}/{y}.png"))
    assert not needs_network(coverage_map(system, tiles="./tiles/{z}/{x}/{y}.png"))


def test_the_script_is_a_static_asset():
    from gridgeo.assets import asset_text

    script = asset_text("gridgeo.js")
    assert "function gridgeoMap(map, cfg)" in script
    assert "innerHTML" not in script  # text reaches the page via textContent only
    page = render_html(coverage_map(tiny_system()))
    assert page.count(script.strip()[:200]) == 1
    assert page.count("function gridgeoMap(") == 1
    assert asset_text("gridgeo.css").strip()[:120] in page
    sources = (Path(gridgeo.maps.__file__).parent).glob("*.py")
    assert not any("L.geoJSON" in p.read_text(encoding="utf-8") for p in sources)


def test_points_without_a_crs_and_defects_without_columns_are_named_errors():
    from gridgeo.errors import CrsError, SchemaError

    naive = gpd.GeoDataFrame(geometry=shapely.points([(108.55, 40.77)] * 3))
    with pytest.raises(CrsError, match="no CRS"):
        coverage_map(tiny_system(), households=naive)
    with pytest.raises(SchemaError, match=r"\['severity'\]"):
        coverage_map(tiny_system(), defects=_payload_defects("x").drop(columns="severity"))
