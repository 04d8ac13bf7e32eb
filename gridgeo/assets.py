"""JavaScript and CSS for offline maps, from ordinary package dependencies.

A folium map loads Leaflet and its plugins from CDNs; on an offline
government intranet that is a blank page. gridgeo inlines what its maps use
instead, read from installed packages so ``pip install`` is enough. Each
asset is read once per process (:func:`asset_text` is cached):

========================  ======================================  ==========
asset                     package (version pinned in pyproject)   licence
========================  ======================================  ==========
Leaflet 1.9.3 JS + CSS    ``xstatic-leaflet`` 1.9.3.x             BSD-2
Leaflet.heat              ``folium`` (ships leaflet_heat.min.js)  BSD-2
gridgeo.js, gridgeo.css   gridgeo (``gridgeo/maps/assets/``)      MIT
========================  ======================================  ==========

Images the Leaflet CSS refers to are inlined as ``data:`` URIs. jQuery,
Bootstrap, Font Awesome, awesome-markers and marker clusters are not used by
gridgeo's maps (points are binned into heat) and are not shipped.
"""

from __future__ import annotations

import base64
import re
from functools import cache
from importlib import import_module
from pathlib import Path

__all__ = ["ASSETS", "asset_text", "inline_css", "inline_js"]

# name → (module whose folder holds it, path inside that folder)
ASSETS: dict[str, tuple[str, str]] = {
    "leaflet.js": ("xstatic.pkg.leaflet", "data/leaflet.js"),
    "leaflet.css": ("xstatic.pkg.leaflet", "data/leaflet.css"),
    "leaflet-heat.js": ("folium", "templates/leaflet_heat.min.js"),
    # The map's own controls and styles (package data of gridgeo.maps).
    "gridgeo.js": ("gridgeo.maps", "assets/gridgeo.js"),
    "gridgeo.css": ("gridgeo.maps", "assets/gridgeo.css"),
}


def _path(name: str) -> Path:
    module, inner = ASSETS[name]
    return Path(import_module(module).__file__).parent / inner


@cache
def asset_text(name: str) -> str:
    """The text of one asset, with CSS ``url(images/…)`` inlined as data URIs.

    >>> "L.version" in asset_text("leaflet.js") or "1.9.3" in asset_text("leaflet.js")
    True
    """
    path = _path(name)
    text = path.read_text(encoding="utf-8")
    if name.endswith(".css"):
        text = re.sub(
            r"url\((['\"]?)(images/[^)'\"]+)\1\)", lambda m: _data_uri(path.parent / m[2]), text
        )
    # Source-map comments would make a browser ask for a file that is not there.
    return re.sub(r"/[/*]# sourceMappingURL=\S+", "", text)


def _data_uri(path: Path) -> str:
    mime = "image/svg+xml" if path.suffix == ".svg" else f"image/{path.suffix.lstrip('.')}"
    return f"url(data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')})"


def _no_closing_tag(text: str, tag: str) -> str:
    # A literal "</script" inside inlined code would end the element early.
    return re.sub(f"</({tag})", r"<\\/\1", text, flags=re.IGNORECASE)


def inline_js(*names: str) -> str:
    """``<script>`` elements holding the named assets."""
    return "\n".join(f"<script>{_no_closing_tag(asset_text(n), 'script')}</script>" for n in names)


def inline_css(*names: str) -> str:
    """``<style>`` elements holding the named assets."""
    return "\n".join(f"<style>{_no_closing_tag(asset_text(n), 'style')}</style>" for n in names)
