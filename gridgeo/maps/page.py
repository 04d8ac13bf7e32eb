"""The page around a coverage map: one HTML document, offline and safe.

folium builds the document with Jinja2 templates. Anything handed to
branca's ``Element(...)`` is compiled as a template, so text from users
(a grid named ``{{ … }}`` or ``幸福里{#3}号网格``) would run as template code
or break the page. Here nothing but folium's own constant templates is
ever compiled: the page's script, stylesheet, title and data are
:class:`_Raw` elements, whose ``render`` returns their text as it is.
"""

from __future__ import annotations

import html
import json

import folium
import numpy as np
from branca.element import Element, MacroElement

from gridgeo.assets import inline_css, inline_js

__all__ = ["build_page", "render_html"]


class _Raw(Element):
    """An element whose text is written out verbatim, never compiled as a template."""

    def __init__(self, text: str):
        super().__init__()  # no template: nothing of ``text`` reaches Jinja2
        self._name = "Raw"
        self.text = text

    def render(self, **kwargs) -> str:
        return self.text


def build_page(config: dict, bounds) -> folium.Map:
    """A folium map framed on ``bounds`` (lon/lat) that draws ``config`` with gridgeo.js."""
    m = folium.Map(
        location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2],
        zoom_start=9,
        tiles=None,
        control_scale=False,
        prefer_canvas=False,
        zoom_snap=0.25,
    )
    # No CDN: folium's default scripts and stylesheets are dropped, ours inlined.
    m.default_js = []
    m.default_css = []
    header = m.get_root().header
    header.add_child(_Raw(inline_css("leaflet.css", "gridgeo.css")), name="gridgeo_css")
    header.add_child(_Raw(inline_js("leaflet.js", "leaflet-heat.js")), name="gridgeo_js")
    m.add_child(_Script(config))
    return m


def render_html(m: folium.Map) -> str:
    """The map as one self-contained HTML document (UTF-8 text).

    Examples
    --------
    >>> import gridgeo
    >>> from gridgeo.maps import coverage_map
    >>> html = render_html(coverage_map(gridgeo.load_demo(), layers=("town",)))
    >>> html.count("charset"), html.count("function gridgeoMap(")
    (1, 1)
    """
    text = m.get_root().render()
    if "charset" in text[:500]:
        return text
    return text.replace("<head>", '<head>\n<meta charset="utf-8">', 1)


def safe_json(value) -> str:
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
        return float(value) if np.isfinite(value) else None
    return str(value)


class _Script(MacroElement):
    """The page's own script, title and data, added to the document when it renders.

    User text reaches the page only inside the JSON data block, and the
    script sets it with ``textContent``.
    """

    def __init__(self, config: dict):
        super().__init__()
        self._name = "GridgeoScript"
        self.title = config["title"]
        self.data = safe_json(config)

    def render(self, **kwargs):
        figure = self.get_root()
        figure.header.add_child(
            _Raw(f"<title>{html.escape(self.title)}</title>"), name="gridgeo_title"
        )
        figure.header.add_child(_Raw(inline_js("gridgeo.js")), name="gridgeo_lib")
        # A JSON block, not a JS literal: parsed faster, never executed.
        # safe_json escapes "<", so nothing inside can close the element.
        data_id = f"{self.get_name()}_data"
        figure.html.add_child(
            _Raw(f'<script type="application/json" id="{data_id}">{self.data}</script>'),
            name=data_id,
        )
        call = (
            f"gridgeoMap({self._parent.get_name()}, "
            f"JSON.parse(document.getElementById('{data_id}').textContent));"
        )
        figure.script.add_child(_Raw(call), name=self.get_name())
