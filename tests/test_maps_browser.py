"""The coverage map in a real headless Chromium (Debian's), with the network cut off.

Every request that is not for a local file is aborted and recorded, so a
page that needs a CDN or leaks a request shows up here. The screenshot is
written to pytest's temporary folder (its path is printed when it differs)
and compared with ``tests/data/coverage_map_reference.png``; to re-create the
reference after an intended change of the map's look, run this module once
with ``GRIDGEO_UPDATE_REFERENCE=1`` and review the new image.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import folium
import geopandas as gpd
import numpy as np
import pytest
import shapely
from PIL import Image
from playwright.sync_api import Browser, Page
from shapely.geometry import shape

from gridgeo.assign import assign, build_index
from gridgeo.check import check_system
from gridgeo.config import BANNER
from gridgeo.demo import households, incidents, load_demo
from gridgeo.maps import DEFECT_KINDS, PALETTE, SEVERITIES, TEXT, coverage_map, render_html
from gridgeo.model import GridSystem
from tests.test_maps import embedded, layer

VIEWPORT = {"width": 1200, "height": 800}
ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "coverage_map_reference.png"
ZH = TEXT["zh"]
LEVEL = {level.name: level.label_zh for level in BANNER.levels}  # layer names in Chinese
BACKGROUND = np.array([0xF4, 0xF4, 0xF1])  # the page's background colour
CJK = re.compile(r"[\u3400-\u9fff]")
PATHS = "path.leaflet-interactive"


def map_name(html: str) -> str:
    """The JavaScript variable holding the Leaflet map."""
    return re.search(r"gridgeoMap\((map_[0-9a-f]+),", html)[1]


# -- browser plumbing ------------------------------------------------------------------
@dataclasses.dataclass
class Visit:
    page: Page
    requested: list[str]  # every request the page made (file: ones allowed through)
    external: list[str]  # the aborted ones: anything not file: or data:
    console_errors: list[str]
    page_errors: list[str]
    dialogs: list[str]


@contextmanager
def visit(browser: Browser, path: Path, name: str | None = None):
    """Open ``path`` offline; with ``name``, wait until that Leaflet map is at rest."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    seen = Visit(page, [], [], [], [], [])

    def route(r):
        url = r.request.url
        seen.requested.append(url)
        if url.startswith(("file:", "data:")):
            r.continue_()
        else:
            seen.external.append(url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and seen.console_errors.append(m.text))
    page.on("pageerror", lambda e: seen.page_errors.append(str(e)))
    page.on("dialog", lambda d: (seen.dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(path.as_uri(), wait_until="load")
        if name:
            settle(page, name)
        yield seen
    finally:
        context.close()


def settle(page: Page, name: str) -> None:
    """Wait until no zoom or pan animation is running, then two frames."""
    page.wait_for_function(
        """n => window[n] && !window[n]._animatingZoom
               && !(window[n]._panAnim && window[n]._panAnim._inProgress)""",
        arg=name,
    )
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def paths(page: Page) -> int:
    return page.locator(PATHS).count()


def checkbox(page: Page, label: str):
    return page.get_by_role("checkbox", name=label, exact=True)


def hover(page: Page, name: str, lon: float, lat: float) -> str:
    """Centre the map on (lon, lat), move the real mouse there; the tooltip's text."""
    page.mouse.move(27, 27)  # onto the zoom control, off every feature
    page.evaluate(
        "([n, lat, lon]) => { window[n].setView([lat, lon], window[n].getZoom(), {animate: false}); }",
        [name, lat, lon],
    )
    settle(page, name)
    x, y = page.evaluate(
        """([n, lat, lon]) => { const m = window[n], p = m.latLngToContainerPoint([lat, lon]),
               r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }""",
        [name, lat, lon],
    )
    page.mouse.move(x, y)
    page.mouse.move(x + 1, y)
    # a closed tooltip fades out for 200 ms before it is removed: wait for just one
    page.wait_for_function("() => document.querySelectorAll('.leaflet-tooltip').length === 1")
    tooltip = page.locator(".leaflet-tooltip")
    tooltip.wait_for(state="visible", timeout=5000)
    return tooltip.inner_text()


def inside(geometry: dict) -> tuple[float, float]:
    """A point well inside a drawn polygon (centre of its largest inscribed circle)."""
    circle = shapely.maximum_inscribed_circle(shape(geometry), 1e-6)
    point = shapely.get_point(circle, 0)
    return point.x, point.y


# -- the demo map ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    system = load_demo()
    index = build_index(system)
    homes = households(system)
    events = incidents(system, homes)
    homes = assign(homes, system, index=index)
    events = assign(events, system, index=index)
    defects = check_system(load_demo("dirty"), dual=False).defects
    html = render_html(coverage_map(system, households=homes, incidents=events, defects=defects))
    path = tmp_path_factory.mktemp("maps") / "coverage_map.html"
    path.write_text(html, encoding="utf-8")
    name, (config, _, _) = map_name(html), embedded(html)
    return SimpleNamespace(path=path, config=config, name=name, defects=defects)


def test_demo_map_draws_offline(browser, demo):
    config = demo.config
    grids = len(config["workload"]["features"])
    towns = len(layer(config, "town")["data"]["features"])
    defect_features = layer(config, "defects")["data"]["features"]["features"]
    # each defect row is one path: polygons and multipolygons one <path> each, points
    # one SVG circle marker each (a GeometryCollection or MultiPoint would make more);
    # a defect too small to see gets one more: its circle (a "halo")
    kinds = {f["geometry"]["type"] for f in defect_features}
    assert kinds <= {"Polygon", "MultiPolygon", "Point", "LineString", "MultiLineString"}
    assert (grids, towns, len(defect_features)) == (662, 11, len(demo.defects))

    with visit(browser, demo.path, demo.name) as seen:
        page = seen.page
        assert seen.page_errors == []
        assert seen.console_errors == []
        assert seen.external == []
        assert seen.requested == [demo.path.as_uri()]
        halos = page.locator("path.gg-halo").count()
        assert halos >= 2  # at least the two gaps are 0×0 px at this zoom
        assert paths(page) == grids + towns + len(defect_features) + halos
        assert page.title() == config["title"]
        assert page.locator(".gg-title").first.inner_text() == config["title"]
        boxes = page.locator(".leaflet-control-layers-overlays input[type=checkbox]")
        assert boxes.count() == len(config["layers"])
        for spec in config["layers"]:
            assert checkbox(page, spec["label"]).is_checked() == spec["show"], spec["key"]
        assert seen.dialogs == []


def test_micro_grid_layer_toggles(browser, demo):
    micro = len(layer(demo.config, "micro_grid")["data"]["features"])
    assert micro == 897
    with visit(browser, demo.path, demo.name) as seen:
        page = seen.page
        before = paths(page)
        checkbox(page, LEVEL["micro_grid"]).check()
        assert paths(page) == before + 897
        checkbox(page, LEVEL["micro_grid"]).uncheck()
        assert paths(page) == before
        assert seen.page_errors == [] and seen.console_errors == [] and seen.external == []


def test_view_shows_its_legend(browser, demo):
    legend = demo.config["legends"]["norm"]
    with visit(browser, demo.path, demo.name) as seen:
        page = seen.page
        before = paths(page)
        assert page.locator(".gg-legend").count() == 0
        checkbox(page, ZH["views"]["norm"]).check()
        box = page.locator(".gg-legend")
        box.wait_for(state="visible")
        assert paths(page) == before + 662  # the view is drawn on every grid
        assert box.locator(".gg-title").inner_text() == ZH["views"]["norm"]
        rows = box.locator(":scope > div:not(.gg-title)")
        assert rows.count() == len(legend["items"]) == 4
        assert [r.strip() for r in rows.all_inner_texts()] == [i[1] for i in legend["items"]]
        checkbox(page, ZH["views"]["norm"]).uncheck()
        assert page.locator(".gg-legend").count() == 0
        assert paths(page) == before
        # a numeric view has its own classes
        checkbox(page, ZH["views"]["households_per_worker"]).check()
        assert box.locator(".gg-title").inner_text() == ZH["views"]["households_per_worker"]
        items = demo.config["legends"]["households_per_worker"]["items"]
        assert 2 <= rows.count() == len(items) <= 5
        assert seen.page_errors == [] and seen.console_errors == [] and seen.external == []


def test_search_lists_and_finds_a_grid(browser, demo):
    grids = [f["properties"] for f in demo.config["workload"]["features"]]
    micro_parents = {
        f["properties"]["code"][:12] for f in layer(demo.config, "micro_grid")["data"]["features"]
    }
    target = next(g for g in grids if g["code"] not in micro_parents)
    with visit(browser, demo.path, demo.name) as seen:
        page = seen.page
        zoom = page.evaluate("n => window[n].getZoom()", demo.name)
        search = page.locator(".gg-search input")
        assert search.get_attribute("placeholder") == ZH["search"]
        search.fill(target["code"])
        items = page.locator(".gg-search li")
        assert items.all_inner_texts() == [f"{target['code']} {target['name']}"]
        search.fill(target["code"][:9])  # a town code: the town and its grids
        assert items.count() == 20  # the list stops at 20
        assert all(t.startswith(target["code"][:9]) for t in items.all_inner_texts())
        search.fill(target["name"])
        assert f"{target['code']} {target['name']}" in items.all_inner_texts()
        items.filter(has_text=target["code"]).first.click()
        page.wait_for_function("([n, z]) => window[n].getZoom() > z", arg=[demo.name, zoom])
        settle(page, demo.name)
        widths = page.locator(PATHS).evaluate_all(
            "ps => ps.map(p => p.getAttribute('stroke-width'))"
        )
        assert widths.count("5") == 1  # the found grid is highlighted
        assert seen.page_errors == [] and seen.console_errors == [] and seen.external == []


# -- XSS probe -------------------------------------------------------------------------
P_IMG = '<img src=x onerror="window.__xss=1">'
P_SCRIPT = "<script>window.__xss=1</script>"
P_TICK = "`${window.__xss=1}`"
P_CLOSE = '</script><img src=x onerror="window.__xss=1">'
P_SVG = '<svg onload="window.__xss=1"></svg>'
P_TEMPLATE = "{{ 7 * 191 }}幸福里{#3}号{% if 1 %}"  # a template would print 1337 or fail


@pytest.fixture(scope="module")
def xss(tmp_path_factory):
    """One demo town, with payloads for grid, leader, town and banner names and incidents."""
    demo = load_demo()
    code = "150823104"
    town = demo["town"][demo["town"]["code"] == code].copy()
    grid = demo["grid"][demo["grid"]["parent_code"] == code].copy()
    micro = demo["micro_grid"][demo["micro_grid"]["parent_code"].isin(grid["code"])].copy()
    banner = demo["banner"].copy()
    banner["geometry"] = town.geometry.to_numpy()  # frames the map on the town
    big = grid.geometry.to_crs(32649).area.sort_values(ascending=False).index[:4]
    names = [P_IMG, P_SCRIPT, P_TICK, P_CLOSE]
    leaders = [P_SVG + P_TEMPLATE, P_TICK, P_IMG, P_SCRIPT + P_TEMPLATE]
    grid.loc[big, "name"] = names
    grid.loc[big, "leader"] = leaders
    town["name"] = P_CLOSE
    system = GridSystem.from_layers(
        {"banner": banner, "town": town, "grid": grid, "micro_grid": micro}, origin="xss"
    )
    system = GridSystem(
        system.levels, dataclasses.replace(system.config, root_name=P_IMG), origin="xss"
    )
    spots = shapely.get_point(shapely.maximum_inscribed_circle(grid.loc[big[:2]].geometry, 1e-5), 0)
    events = gpd.GeoDataFrame(
        {
            "incident_id": ["E1", "E2"],
            "event_class": [P_TICK, P_SVG],
            "subclass": ["井盖", "路灯"],
            "status": ["overdue", "reported"],
            "description": [P_IMG, P_SCRIPT],
        },
        geometry=list(spots),
        crs=grid.crs,
    )
    html = render_html(coverage_map(system, incidents=events))
    path = tmp_path_factory.mktemp("xss") / "xss.html"
    path.write_text(html, encoding="utf-8")
    name, (config, _, _) = map_name(html), embedded(html)
    features = {f["properties"]["code"]: f for f in config["workload"]["features"]}
    targets = [features[c] for c in grid.loc[big, "code"]]
    return SimpleNamespace(path=path, name=name, config=config, targets=targets, events=events)


def test_payloads_stay_text(browser, xss):
    with visit(browser, xss.path, xss.name) as seen:
        page = seen.page
        assert page.evaluate("typeof window.__xss") == "undefined"
        assert page.title() == ZH["title"].format(root=P_IMG)
        assert page.locator(".gg-title").first.inner_text() == ZH["title"].format(root=P_IMG)

        for feature in xss.targets:
            text = hover(page, xss.name, *inside(feature["geometry"]))
            assert feature["properties"]["name"] in text
            assert feature["properties"]["leader"] in text
            assert page.locator(".leaflet-tooltip img, .leaflet-tooltip svg").count() == 0
            assert page.locator(".leaflet-tooltip script").count() == 0

        # the search list shows names as text too
        page.locator(".gg-search input").fill(xss.targets[0]["properties"]["code"])
        assert P_IMG in page.locator(".gg-search li").first.inner_text()

        # open incidents (canvas markers; grids hidden so the markers get the mouse)
        checkbox(page, LEVEL["grid"]).uncheck()
        checkbox(page, ZH["open"]).check()
        for _, event in xss.events.iterrows():
            text = hover(page, xss.name, event.geometry.x, event.geometry.y)
            assert event["description"] in text
            assert event["event_class"] in text

        assert page.evaluate("typeof window.__xss") == "undefined"
        assert page.locator("img").count() == 0
        assert page.evaluate("document.scripts.length") == page.evaluate(
            "Array.from(document.scripts).filter(s => !s.src).length"
        )
        assert seen.dialogs == []
        assert seen.page_errors == []
        assert seen.console_errors == []
        assert seen.requested == [xss.path.as_uri()]  # no img src=x was ever fetched


# -- offline contrast: plain folium ----------------------------------------------------
def test_plain_folium_draws_nothing_offline(browser, tmp_path):
    towns = load_demo()["town"].to_crs(4326)
    m = folium.Map(location=[40.86, 109.02], zoom_start=9)  # folium's default: CDN scripts
    folium.GeoJson(towns[["code", "geometry"]].to_json()).add_to(m)
    path = tmp_path / "plain_folium.html"
    path.write_text(m.get_root().render(), encoding="utf-8")
    with visit(browser, path) as seen:
        page = seen.page
        assert any("cdn.jsdelivr.net" in url for url in seen.external)
        assert any("L is not defined" in e for e in seen.page_errors), seen.page_errors
        assert paths(page) == 0
        assert page.locator(".leaflet-container").count() == 0


# -- the picture -----------------------------------------------------------------------
def test_screenshot_matches_reference(browser, demo, tmp_path):
    screenshot = tmp_path / "coverage_map.png"
    with visit(browser, demo.path, demo.name) as seen:
        seen.page.screenshot(path=str(screenshot), animations="disabled")
        assert seen.page_errors == [] and seen.external == []
    shot = np.asarray(Image.open(screenshot).convert("RGB"), dtype=np.int16)
    assert shot.shape == (VIEWPORT["height"], VIEWPORT["width"], 3)

    # What a reader sees, whatever the reference: grid fills (60% over the
    # #f4f4f1 background) in at least five palette colours, and no blank page.
    background = BACKGROUND
    share = []
    for colour in PALETTE:
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        blended = np.round(0.6 * rgb + 0.4 * background)
        share.append((np.abs(shot - blended).max(axis=2) <= 6).mean())
    assert sum(s > 0.01 for s in share) >= 5, share
    assert (np.abs(shot - background).max(axis=2) <= 2).mean() < 0.6

    if os.environ.get("GRIDGEO_UPDATE_REFERENCE") == "1":
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        Image.open(screenshot).convert("RGB").quantize(
            256, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE
        ).save(REFERENCE, optimize=True)
    assert REFERENCE.exists(), f"no reference image {REFERENCE}"
    assert REFERENCE.stat().st_size < 300_000
    reference = np.asarray(Image.open(REFERENCE).convert("RGB"), dtype=np.int16)
    assert reference.shape == shot.shape
    diff = np.abs(shot - reference)
    mean = diff.mean() / 255
    changed = (diff.max(axis=2) > 64).mean()
    assert mean < 0.03, f"mean absolute difference {mean:.2%} (see {screenshot})"
    assert changed < 0.05, f"{changed:.2%} of pixels differ by more than 64 (see {screenshot})"


# -- defects: severity filter, minimum size --------------------------------------------
def drawn_defects(page: Page) -> dict[int, float]:
    """Defect index → largest on-screen extent (px) of its paths (shape and circle)."""
    extents = page.locator("path.gg-defect").evaluate_all(
        """ps => ps.map(p => { const r = p.getBoundingClientRect();
               return [p.getAttribute('class'), Math.max(r.width, r.height)]; })"""
    )
    out: dict[int, float] = {}
    for cls, extent in extents:
        i = int(re.search(r"\bgg-d(\d+)\b", cls)[1])
        out[i] = max(out.get(i, 0.0), extent)
    return out


def test_defects_filter_by_severity_and_stay_visible(browser, demo):
    data = layer(demo.config, "defects")["data"]
    features = data["features"]["features"]
    severity = [f["properties"]["severity"] for f in features]
    counts = {s["key"]: s["count"] for s in data["severities"]}
    assert counts == {"error": severity.count("error"), "warning": severity.count("warning")}
    assert counts["warning"] >= 2
    with visit(browser, demo.path, demo.name) as seen:
        page = seen.page
        panel = page.locator(".gg-defects")
        assert panel.locator(".gg-title").inner_text() == ZH["defects"]
        # every defect is drawn, and none is smaller than the minimum on screen
        extents = drawn_defects(page)
        assert sorted(extents) == list(range(len(features)))
        assert min(extents.values()) >= data["min_px"] - 1, extents
        # the legend names each kind present, in Chinese, with its count
        rows = panel.locator(".gg-kinds > div:not(:first-child)").all_inner_texts()
        assert [r.strip() for r in rows] == [f"{k['label']} ({k['count']})" for k in data["kinds"]]
        assert {k["label"] for k in data["kinds"]} <= {v[0] for v in DEFECT_KINDS.values()}
        # the severity filter
        warnings = page.get_by_role(
            "checkbox", name=f"{SEVERITIES['warning'][0]} ({counts['warning']})", exact=True
        )
        warnings.uncheck()
        assert set(drawn_defects(page)) == {i for i, s in enumerate(severity) if s == "error"}
        warnings.check()
        assert set(drawn_defects(page)) == set(range(len(features)))
        # the panel goes with the layer
        checkbox(page, ZH["defects"]).uncheck()
        assert page.locator(".gg-defects").count() == 0 and drawn_defects(page) == {}
        checkbox(page, ZH["defects"]).check()
        assert page.locator(".gg-defects").count() == 1

        # zoomed in on a gap, it is drawn as itself and its circle goes
        gap = next(i for i, f in enumerate(features) if f["properties"]["fill"] == "#e31a1c")
        assert page.locator(f"path.gg-halo.gg-d{gap}").count() == 1
        west, south, east, north = shape(features[gap]["geometry"]).bounds
        page.evaluate(
            "([n, b]) => { window[n].fitBounds(b, {animate: false}); }",
            [demo.name, [[south, west], [north, east]]],
        )
        settle(page, demo.name)
        assert page.locator(f"path.gg-halo.gg-d{gap}").count() == 0
        assert drawn_defects(page)[gap] > 100
        assert seen.page_errors == [] and seen.console_errors == [] and seen.external == []


# -- views and heat replace the pastel grid fill ---------------------------------------
def grid_fill_opacities(page: Page) -> set[str]:
    return set(
        page.locator("path.gg-grid").evaluate_all(
            "ps => ps.map(p => getComputedStyle(p).fillOpacity)"
        )
    )


def pixel(page: Page, name: str, lon: float, lat: float) -> np.ndarray:
    """The colour on screen at (lon, lat)."""
    x, y = page.evaluate(
        "([n, lat, lon]) => { const p = window[n].latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [name, lat, lon],
    )
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), dtype=int)
    return shot[round(y), round(x)]


def test_a_view_replaces_the_grid_fill(browser, demo):
    spec = layer(demo.config, "households_per_worker")
    grids = demo.config["workload"]["features"]
    # the largest grids, of a pastel far enough from the background for the
    # pastel's contribution under the view (0.2 × 0.6 of it) to show
    radius = [shapely.maximum_inscribed_circle(shape(g["geometry"]), 1e-5).length for g in grids]
    pastel = np.array(
        [[int(g["properties"]["fill"][i : i + 2], 16) for i in (1, 3, 5)] for g in grids]
    )
    visible = np.abs(pastel - BACKGROUND).max(axis=1) * 0.12 > 8
    target = max((i for i in range(len(grids)) if visible[i]), key=radius.__getitem__)
    lon, lat = inside(grids[target]["geometry"])
    view = np.array([int(spec["data"]["fill"][target][i : i + 2], 16) for i in (1, 3, 5)])
    with visit(browser, demo.path, demo.name) as seen:
        page = seen.page
        checkbox(page, LEVEL["town"]).uncheck()  # no town line or label on the pixel
        checkbox(page, ZH["defects"]).uncheck()
        page.mouse.move(27, 27)
        assert grid_fill_opacities(page) == {"0.6"}
        before = pixel(page, demo.name, lon, lat)
        assert np.abs(before - np.round(0.6 * pastel[target] + 0.4 * BACKGROUND)).max() <= 3

        checkbox(page, ZH["views"]["households_per_worker"]).check()
        page.mouse.move(27, 27)
        assert grid_fill_opacities(page) == {"0"}  # outlines stay: only the fill goes
        assert set(
            page.locator("path.gg-grid").evaluate_all(
                "ps => ps.map(p => getComputedStyle(p).strokeOpacity)"
            )
        ) == {"1"}
        # the colour seen is the view's over the background, as the legend shows it
        assert (
            np.abs(pixel(page, demo.name, lon, lat) - np.round(0.8 * view + 0.2 * BACKGROUND)).max()
            <= 3
        )
        swatch = page.locator(".gg-legend i").first.evaluate("i => getComputedStyle(i).opacity")
        assert swatch == "0.8"
        checkbox(page, ZH["views"]["norm"]).check()
        checkbox(page, ZH["views"]["households_per_worker"]).uncheck()
        assert grid_fill_opacities(page) == {"0"}  # one view is still on
        checkbox(page, ZH["views"]["norm"]).uncheck()
        assert grid_fill_opacities(page) == {"0.6"}
        assert seen.page_errors == [] and seen.console_errors == [] and seen.external == []


def test_heat_is_drawn_above_the_grids(browser, demo):
    with visit(browser, demo.path, demo.name) as seen:
        page = seen.page
        checkbox(page, ZH["households"]).check()
        settle(page, demo.name)
        assert grid_fill_opacities(page) == {"0"}
        painted, above = page.evaluate(
            """() => {
                 const c = document.querySelector('.leaflet-ggHeat-pane canvas');
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 64) n++;
                 const z = s => +getComputedStyle(document.querySelector(s)).zIndex;
                 return [n, z('.leaflet-ggHeat-pane') > z('.leaflet-overlay-pane')];
               }"""
        )
        assert above and painted > 20_000, painted
        checkbox(page, ZH["households"]).uncheck()
        assert grid_fill_opacities(page) == {"0.6"}
        assert seen.page_errors == [] and seen.console_errors == [] and seen.external == []


# -- language and place labels ---------------------------------------------------------
def placeholder_room(page: Page) -> tuple[float, float]:
    """Width of the search box's placeholder text and the room the box has for it."""
    return page.evaluate(
        """() => { const i = document.querySelector('.gg-search input'), s = getComputedStyle(i);
                   const c = document.createElement('canvas').getContext('2d'); c.font = s.font;
                   return [c.measureText(i.placeholder).width,
                           i.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight)]; }"""
    )


def test_town_labels_at_banner_zoom(browser, demo):
    towns = layer(demo.config, "town")["data"]["features"]
    with visit(browser, demo.path, demo.name) as seen:
        page = seen.page
        assert page.evaluate("n => window[n].getZoom()", demo.name) <= 10
        labels = page.locator(".gg-label span")
        assert sorted(labels.all_inner_texts()) == sorted(t["properties"]["name"] for t in towns)
        width, room = placeholder_room(page)
        assert width <= room, (width, room)
        page.evaluate("n => { window[n].setZoom(12, {animate: false}); }", demo.name)
        settle(page, demo.name)
        assert labels.count() == 0
        page.evaluate("n => { window[n].setZoom(9, {animate: false}); }", demo.name)
        settle(page, demo.name)
        assert labels.count() == len(towns)
        checkbox(page, LEVEL["town"]).uncheck()
        assert labels.count() == 0
        assert seen.page_errors == [] and seen.console_errors == [] and seen.external == []


def test_english_map(browser, demo, tmp_path):
    system = load_demo()
    html = render_html(coverage_map(system, defects=demo.defects, language="en"))
    path = tmp_path / "coverage_map_en.html"
    path.write_text(html, encoding="utf-8")
    config = embedded(html)[0]
    with visit(browser, path, map_name(html)) as seen:
        page = seen.page
        assert page.title() == config["title"] and not CJK.search(page.title())
        assert page.locator(".gg-title").first.inner_text() == config["title"]
        search = page.locator(".gg-search input")
        assert search.get_attribute("placeholder") == TEXT["en"]["search"]
        width, room = placeholder_room(page)
        assert width <= room, (width, room)
        labels = page.locator(".gg-label span").all_inner_texts()
        assert sorted(labels) == sorted(system["town"]["pinyin"])
        controls = page.locator(".leaflet-control-layers, .gg-defects").all_inner_texts()
        assert controls and not any(CJK.search(text) for text in controls), controls
        assert seen.page_errors == [] and seen.console_errors == [] and seen.external == []
