"""Coverage maps for leaders: self-contained, safe, light HTML (folium).

:func:`coverage_map` draws a grid system as switchable layers — towns,
grids, micro-grids; households and incidents as heat (never individual
personal data); defects from :func:`gridgeo.check.check_system`, coloured
by kind with a severity filter — and as choropleth *views* (households per
grid worker, households against the 300–500 norm, incidents per 1,000
residents, open and overdue incidents). :func:`render_html` turns it into
one HTML file that works with no network.

Three promises, each kept by construction:

- **Offline.** folium's CDN scripts and stylesheets are removed; Leaflet and
  Leaflet.heat are inlined from installed packages, the map's own script
  and styles from ``gridgeo/maps/assets`` (:mod:`gridgeo.assets`). The only
  URL left is an optional tile layer's (:func:`needs_network`).
- **Safe.** Grid names, leader names and incident descriptions are user
  text. None of it is ever written into HTML or JavaScript source, nor
  compiled as a template: it travels only inside a JSON data block (with
  ``<``, ``>``, ``&`` and line separators escaped) that is added to the page
  verbatim, and reaches the page through ``textContent``. folium's Tooltip,
  Popup and GeoJsonTooltip, which render HTML from strings, are not used.
- **Light.** Boundaries are simplified as a coverage (shared edges stay
  shared: ``shapely.coverage_simplify``), coordinates rounded to about
  0.1 m, only the fields shown are embedded, and points are binned into
  weighted heat cells.

Modules: :mod:`~gridgeo.maps.coverage` (the data of the page),
:mod:`~gridgeo.maps.page` (the HTML document), :mod:`~gridgeo.maps.text`
(the words, in Chinese and English), ``assets/gridgeo.js`` and
``assets/gridgeo.css`` (the drawing).

Examples
--------
>>> import gridgeo
>>> m = coverage_map(gridgeo.load_demo())
>>> html = render_html(m)
>>> "cdn.jsdelivr" in html, "<script src=" in html
(False, False)
"""

from gridgeo.maps.coverage import (
    DEFECT_COLOURS,
    HEAT_CELL,
    HEAT_MIN,
    LAYERS,
    PALETTE,
    TILES,
    coverage_map,
    grid_colours,
    needs_network,
)
from gridgeo.maps.page import render_html
from gridgeo.maps.text import DEFECT_KINDS, SEVERITIES, TEXT

__all__ = [
    "DEFECT_COLOURS",
    "DEFECT_KINDS",
    "HEAT_CELL",
    "HEAT_MIN",
    "LAYERS",
    "PALETTE",
    "SEVERITIES",
    "TEXT",
    "TILES",
    "coverage_map",
    "grid_colours",
    "needs_network",
    "render_html",
]
