"""Benchmark gridgeo's coverage map against the plain folium map a user would write.

Run from the repository root::

    python benchmarks/bench_maps.py               # full run, ~3 minutes on 2 cores
    python benchmarks/bench_maps.py --quick       # smoke run: gridgeo only, one build, one draw
    python benchmarks/bench_maps.py --keep out/   # keep the HTML files in out/

Needs ``playwright`` (the ``test`` extra) and a Chromium binary
(``--chromium``, default ``/usr/bin/chromium``); ``playwright install`` is
never needed, the browser is launched from that path.

All in one run, on the full demo banner (11 towns, 662 grids, 897
micro-grids), the ~100k demo households and one year of demo incidents (both
assigned with :func:`gridgeo.assign.assign`) and the defects
:func:`gridgeo.check.check_system` finds in the dirty variant:

1. **Build**: time and HTML size of
   ``render_html(coverage_map(system, households=…, incidents=…, defects=…))``
   and of the plain folium map a user would otherwise write: ``folium.Map``
   (default tiles and CDN assets), one ``folium.GeoJson`` per raw level (all
   columns, unsimplified), a ``MarkerCluster`` holding one ``folium.Marker``
   per household, and a ``HeatMap`` of the incidents. A second plain variant
   uses ``FastMarkerCluster`` instead (the lighter option folium offers).
   Best of 3 (a tool whose first run takes more than 20 s runs once).
2. **Drawn**: each file opened via ``file://`` in headless Chromium with every
   non-file request aborted (an offline intranet), timed from navigation start
   (``performance.now()`` in the page) until the polygons are in the DOM and one
   more animation frame has passed: for gridgeo ``path.leaflet-interactive`` ≥
   towns + grids (the layers shown at start), for plain folium ≥ towns + grids +
   micro-grids (its GeoJson layers). Up to ``--timeout`` seconds; a page that
   never draws is reported with the page errors it raised.
3. **Where the bytes are**: each page's size split by part (gridgeo: the JSON
   data of each layer; plain folium: rebuilt without households, and without
   households and heat).

Targets: gridgeo's HTML < 5 MB, plain / gridgeo size ≥ 3×, drawn < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import shapely
from _report import ratio, say, secs, table  # benchmarks/_report.py

from gridgeo.assign import assign, build_index
from gridgeo.check import check_system
from gridgeo.demo import households, incidents, load_demo
from gridgeo.maps import coverage_map, render_html

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_S = 20.0  # how long a page may take to draw before it "does not draw"
BUDGET_S = 20.0  # best of 3, unless the first run already took longer than this
SIZE_TARGET_MB = 5.0
RATIO_TARGET = 3.0
DRAWN_TARGET_S = 2.0

# Installed before any page script: on every animation frame, count the drawn
# polygons; once there are enough, note the time, and again one frame later
# (by then the frame holding them has been painted).
WATCH = """
(() => {
  const need = %d;
  function tick() {
    if (document.querySelectorAll('path.leaflet-interactive').length >= need) {
      const seen = performance.now();
      requestAnimationFrame(() => { window.__benchDrawn = { seen: seen, painted: performance.now() }; });
      return;
    }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""


# -- helpers -----------------------------------------------------------------------


def timed(fn: Callable):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best_of(fn: Callable, repeat: int = 3, budget: float = BUDGET_S):
    """(every run's time, last result); stops repeating once ``budget`` s are spent."""
    times, result = [], None
    for _ in range(repeat):
        t, result = timed(fn)
        times.append(t)
        if sum(times) > budget:
            break
    return times, result


def megabytes(text: str) -> float:
    return len(text.encode("utf-8")) / 1e6


# -- the inputs --------------------------------------------------------------------
@dataclass
class Inputs:
    system: object
    households: gpd.GeoDataFrame  # assigned
    incidents: gpd.GeoDataFrame  # assigned
    defects: gpd.GeoDataFrame  # check_system(load_demo("dirty")).defects


def prepare() -> Inputs:
    t_load, system = timed(load_demo)
    t_hh, homes = timed(lambda: households(system))
    t_ev, events = timed(lambda: incidents(system, homes))
    t_index, index = timed(lambda: build_index(system))
    t_assign, (homes, events) = timed(
        lambda: (assign(homes, system, index=index), assign(events, system, index=index))
    )
    t_check, report = timed(lambda: check_system(load_demo("dirty")))
    counts = system.counts()
    say(
        f"Demo system loaded in {t_load:.2f} s ({counts['town']} towns, {counts['grid']} grids, "
        f"{counts['micro_grid']} micro-grids); {len(homes):,} households in {t_hh:.2f} s, "
        f"{len(events):,} incidents in {t_ev:.2f} s; index {t_index:.2f} s, both assigned in "
        f"{t_assign:.2f} s; dirty variant checked in {t_check:.2f} s "
        f"({len(report.defects)} defects)"
    )
    return Inputs(system, homes, events, report.defects)


# -- the two maps --------------------------------------------------------------------
def gridgeo_html(data: Inputs) -> str:
    m = coverage_map(
        data.system, households=data.households, incidents=data.incidents, defects=data.defects
    )
    return render_html(m)


def plain_html(data: Inputs, markers: str | None = "markers", heat: bool = True) -> str:
    """What a user writes with folium alone (default tiles, CDN assets, raw layers).

    ``markers``: ``"markers"`` (a MarkerCluster of one ``folium.Marker`` per
    household), ``"fast"`` (``FastMarkerCluster``) or ``None`` (no households:
    only for the size breakdown, as is ``heat=False``).
    """
    system = data.system
    minx, miny, maxx, maxy = system["town"].total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=9)
    for level in ("town", "grid", "micro_grid"):
        folium.GeoJson(system[level], name=level).add_to(m)
    xy = shapely.get_coordinates(data.households.to_crs(4326).geometry.to_numpy())
    if markers == "fast":
        folium.plugins.FastMarkerCluster(xy[:, ::-1].tolist(), name="households").add_to(m)
    elif markers == "markers":
        cluster = folium.plugins.MarkerCluster(name="households").add_to(m)
        for x, y in xy:
            folium.Marker([y, x]).add_to(cluster)
    if heat:
        ev = shapely.get_coordinates(data.incidents.to_crs(4326).geometry.to_numpy())
        folium.plugins.HeatMap(ev[:, ::-1].tolist(), name="incidents").add_to(m)
    folium.LayerControl().add_to(m)
    return m.get_root().render()


def gridgeo_parts(text: str) -> dict[str, float]:
    """MB of each part of gridgeo's page: inlined libraries, each layer's data, the rest."""
    # The page data sits in a <script type="application/json"> block.
    start = text.index('<script type="application/json"')
    at = text.index(">", start) + 1
    config, _ = json.JSONDecoder().raw_decode(text, at)
    total = megabytes(text)

    def mb(value) -> float:
        return megabytes(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    parts = {"grid polygons (shared by the views)": mb(config["grid"])}
    for layer in config["layers"]:
        if layer["data"] is not None:
            parts[f"{layer['key']} ({layer['kind']})"] = mb(layer["data"])
    parts["page (Leaflet, Leaflet.heat, CSS, script, labels)"] = total - sum(parts.values())
    return parts


def plain_parts(data: Inputs, total: float, markers: str) -> dict[str, float]:
    """MB of the plain page: raw GeoJson layers + folium page, heat, households."""
    base = megabytes(plain_html(data, markers=None, heat=False))
    with_heat = megabytes(plain_html(data, markers=None, heat=True))
    return {
        "GeoJson town + grid + micro_grid (raw) and the folium page": base,
        "HeatMap of incidents": with_heat - base,
        f"households ({'FastMarkerCluster' if markers == 'fast' else 'Markers'})": total
        - with_heat,
    }


# -- drawing in Chromium -------------------------------------------------------------
@dataclass
class Drawn:
    seconds: float | None  # navigation start → painted, or None: did not draw in time
    paths: int = 0  # path.leaflet-interactive in the page at the end
    load_s: float | None = None  # navigation start → load event end
    errors: list[str] = field(default_factory=list)  # distinct page errors
    aborted: int = 0  # non-file requests aborted
    hosts: set[str] = field(default_factory=set)


def draw(browser, path: Path, need: int, timeout: float) -> Drawn:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    aborted: list[str] = []

    def route(r):
        url = r.request.url
        if url.startswith(("file:", "data:", "blob:")):
            r.continue_()
        else:
            aborted.append(url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e).splitlines()[0]))
    page.add_init_script(WATCH % need)
    start = time.perf_counter()
    seconds = None
    try:
        page.goto(path.resolve().as_uri(), wait_until="commit", timeout=timeout * 1000)
        left = max(timeout - (time.perf_counter() - start), 0.1)
        page.wait_for_function("window.__benchDrawn", timeout=left * 1000, polling=50)
        seconds = page.evaluate("window.__benchDrawn.painted") / 1000
    except Exception as exc:  # playwright's TimeoutError: did not draw in time
        if "Timeout" not in type(exc).__name__:
            raise
    page.wait_for_load_state("load", timeout=timeout * 1000)
    info = page.evaluate(
        "[document.querySelectorAll('path.leaflet-interactive').length,"
        " performance.getEntriesByType('navigation')[0].loadEventEnd]"
    )
    context.close()
    return Drawn(
        seconds,
        int(info[0]),
        info[1] / 1000 if info[1] else None,
        list(dict.fromkeys(errors)),
        len(aborted),
        {urlsplit(u).netloc for u in aborted},
    )


def drawn_text(d: Drawn | None) -> str:
    if d is None:
        return "not run"
    if d.seconds is not None:
        return secs(d.seconds)
    why = "; ".join(d.errors[:2]) or "no page error"
    return f"never (offline): {why}"


# -- main --------------------------------------------------------------------------
@dataclass
class Row:
    tool: str
    build: list[float]
    mb: float
    drawn: list[Drawn]
    path: Path
    parts: dict[str, float]

    @property
    def best_build(self) -> float:
        return min(self.build)

    @property
    def best_drawn(self) -> Drawn | None:
        ok = [d for d in self.drawn if d.seconds is not None]
        return min(ok, key=lambda d: d.seconds) if ok else (self.drawn[0] if self.drawn else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="gridgeo only, one build, one draw")
    parser.add_argument("--keep", type=Path, help="write the HTML files to this folder")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds to draw")
    parser.add_argument("--chromium", default=CHROMIUM, help="Chromium executable")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    import gridgeo

    say(
        f"gridgeo ({gridgeo.__file__}); folium {folium.__version__}; shapely "
        f"{shapely.__version__}; geopandas {gpd.__version__}; numpy {np.__version__}; "
        f"playwright {metadata.version('playwright')}; python {sys.version.split()[0]}"
    )
    say(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}")
    start = time.perf_counter()
    data = prepare()
    counts = data.system.counts()
    need_gridgeo = counts["town"] + counts["grid"]
    need_plain = counts["town"] + counts["grid"] + counts["micro_grid"]
    repeat = 1 if args.quick else 3

    with tempfile.TemporaryDirectory(prefix="bench_maps_") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)

        say("\n" + "=" * 78)
        say("1. Build: map + HTML, same inputs")
        say("=" * 78)
        builds = [("gridgeo coverage_map + render_html", "gridgeo.html", None)]
        if not args.quick:
            builds += [
                ("plain folium, MarkerCluster of Markers", "folium_markercluster.html", "markers"),
                ("plain folium, FastMarkerCluster", "folium_fastmarkercluster.html", "fast"),
            ]
        rows: list[Row] = []
        for tool, name, markers in builds:
            say(f"  {tool} …")
            if markers is None:
                times, text = best_of(lambda: gridgeo_html(data), repeat=repeat)
            else:
                times, text = best_of(
                    lambda markers=markers: plain_html(data, markers=markers), repeat=repeat
                )
            path = folder / name
            path.write_text(text, encoding="utf-8")
            mb = megabytes(text)
            parts = gridgeo_parts(text) if markers is None else plain_parts(data, mb, markers)
            rows.append(Row(tool, times, mb, [], path, parts))
            say(f"  {tool}: runs {', '.join(secs(t) for t in times)} s; {mb:.2f} MB -> {path}")
            del text

        say("\n" + "=" * 78)
        say(f"2. Drawn in headless Chromium, offline (timeout {args.timeout:.0f} s)")
        say("=" * 78)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True
            )
            say(f"Chromium {browser.version} ({args.chromium})")
            for row in rows:
                is_gridgeo = row.tool.startswith("gridgeo")
                need = need_gridgeo if is_gridgeo else need_plain
                for _ in range(repeat if is_gridgeo else 1):
                    d = draw(browser, row.path, need, args.timeout)
                    row.drawn.append(d)
                    say(
                        f"  {row.tool}: drawn {drawn_text(d)}; {d.paths} paths (need {need}); "
                        f"load event {secs(d.load_s)} s; {d.aborted} requests aborted"
                        + (f" ({', '.join(sorted(d.hosts))})" if d.hosts else "")
                        + (f"; page errors: {' | '.join(d.errors)}" if d.errors else "")
                    )
            browser.close()

    say("\n" + "=" * 78)
    say("Results")
    say("=" * 78)
    gg = rows[0]
    table(
        ["tool", "build s (best)", "HTML MB", "drawn in s (best)", "size / gridgeo"],
        [
            [
                r.tool,
                secs(r.best_build),
                f"{r.mb:.2f}",
                drawn_text(r.best_drawn),
                ratio(r.mb, gg.mb),
            ]
            for r in rows
        ],
    )
    for r in rows:
        table(
            ["part", "MB", "share"],
            [[k, f"{v:.2f}", f"{v / r.mb:.0%}"] for k, v in r.parts.items()],
            f"Where the bytes are: {r.tool} ({r.mb:.2f} MB)",
        )
    say("")
    size_ok = gg.mb < SIZE_TARGET_MB
    say(
        f"gridgeo HTML {gg.mb:.2f} MB (target < {SIZE_TARGET_MB:.0f} MB: "
        f"{'met' if size_ok else 'NOT met'})"
    )
    d = gg.best_drawn
    if d is not None and d.seconds is not None:
        verdict = "met" if d.seconds < DRAWN_TARGET_S else "NOT met"
        runs = ", ".join(secs(x.seconds) for x in gg.drawn)
        say(
            f"gridgeo drawn in {d.seconds:.3f} s (runs {runs}; target < {DRAWN_TARGET_S:.0f} s: {verdict})"
        )
    else:
        say(
            f"gridgeo did not draw within {args.timeout:.0f} s: target < {DRAWN_TARGET_S:.0f} s NOT met"
        )
    for r in rows[1:]:
        verdict = "met" if r.mb / gg.mb >= RATIO_TARGET else "NOT met"
        say(
            f"{r.tool}: size {r.mb / gg.mb:.1f}× gridgeo's (target ≥ {RATIO_TARGET:.0f}×: "
            f"{verdict}); build {ratio(r.best_build, gg.best_build)} gridgeo's"
        )
    say(
        "\nNotes:\n"
        "  * gridgeo's page holds more: 4 choropleth views, open incidents as points, the\n"
        "    dirty variant's defects, search, legend; households and incidents as binned heat\n"
        "    (no household is placed exactly), geometry simplified to 5 m and rounded to ~0.1 m.\n"
        "    The plain map embeds every raw column and vertex and one marker per household.\n"
        "  * Offline, folium's page loads Leaflet from a CDN that cannot be reached, so nothing\n"
        "    is drawn ('L is not defined'); its draw time online is not measured here (no network).\n"
        "  * MB = 10^6 bytes of UTF-8. Build = the library calls + rendering the HTML string;\n"
        "    writing the file is not timed. Wall-clock times vary by ±30 % on a shared machine."
    )
    say(f"\nTotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
