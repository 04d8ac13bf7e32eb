/* gridgeo coverage map: layers, tooltips, legends, the defect panel with its
 * severity filter, place labels, search and full screen.
 *
 * gridgeoMap(map, cfg) draws the page's JSON configuration cfg (built by
 * gridgeo.maps.coverage) on a Leaflet map. User text (names, leaders,
 * incident descriptions) arrives only inside cfg and is set with
 * textContent or as text nodes, never as HTML.
 */
function gridgeoMap(map, cfg) {
  'use strict';
  var lab = cfg.labels;
  var GRID_FILL = 0.6;   // the pastel fill of the grid level
  var VIEW_FILL = 0.8;   // choropleth views (legend swatches use the same)

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function box(position, build) {
    var C = L.Control.extend({
      onAdd: function () {
        var d = el('div', 'gg-box');
        L.DomEvent.disableClickPropagation(d);
        L.DomEvent.disableScrollPropagation(d);
        build(d);
        return d;
      }
    });
    return new C({ position: position });
  }
  function pane(name, z, passive) {
    var p = map.createPane(name);
    p.style.zIndex = z;
    if (passive) p.style.pointerEvents = 'none';
    return name;
  }
  function swatch(colour, opacity) {
    var i = el('i');
    i.style.background = colour;
    if (opacity !== undefined) i.style.opacity = opacity;
    return i;
  }

  map.attributionControl.setPrefix(false);
  if (cfg.tiles) L.tileLayer(cfg.tiles.url, { attribution: cfg.tiles.attribution, maxZoom: 18 }).addTo(map);
  box('topleft', function (d) {
    d.appendChild(el('div', 'gg-title', cfg.title));
    if (cfg.note) d.appendChild(el('div', 'gg-note', cfg.note));
  }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);

  // Panes, bottom to top: grid fill and views (overlayPane, 400), heat,
  // outlines of the other levels, defects, open incidents, place labels.
  // Heat and outlines stay visible whatever view is switched on.
  var svg = L.svg();
  var heatPane = pane('ggHeat', 410, true);
  var outlines = L.svg({ pane: pane('ggOutlines', 420) });
  var defectSvg = L.svg({ pane: pane('ggDefects', 430) });
  var canvas = L.canvas({ pane: pane('ggPoints', 450) });
  pane('ggLabels', 460, true);

  function tip(props, valueLabel) {
    var t = el('table', 'gg-tip');
    var rows = [['code', lab.code], ['name', lab.name], ['leader', lab.leader], ['workers', lab.workers],
      ['households', lab.households_n], ['residents', lab.residents], ['value', valueLabel || ''],
      ['kind', lab.kind], ['message', lab.message], ['event_class', lab.kind], ['status', lab.status],
      ['description', lab.message]];
    rows.forEach(function (r) {
      if (props[r[0]] === undefined || props[r[0]] === null) return;
      var tr = el('tr');
      tr.appendChild(el('td', '', r[1]));
      tr.appendChild(el('td', '', props[r[0]]));
      t.appendChild(tr);
    });
    return t;
  }

  // -- layers ---------------------------------------------------------------
  var searchable = [], gridLayer = null;
  var roles = {
    top: function () { return { color: '#222', weight: 2.5, fill: false, className: 'gg-top' }; },
    mid: function () { return { color: '#444', weight: 1.4, fill: false, className: 'gg-mid' }; },
    workload: function (f) { return { color: '#555', weight: 0.8, fillColor: f.properties.fill, fillOpacity: GRID_FILL, className: 'gg-grid' }; },
    fine: function () { return { color: '#2166ac', weight: 0.6, dashArray: '3', fill: false, className: 'gg-fine' }; }
  };

  function polygons(spec) {
    var layer = L.geoJSON(spec.data || cfg.workload, {
      renderer: spec.role === 'workload' ? svg : outlines,
      style: roles[spec.role],
      onEachFeature: function (f, l) {
        l.bindTooltip(function () { return tip(f.properties); }, { sticky: true });
        searchable.push({ props: f.properties, layer: l });
      }
    });
    if (spec.role === 'workload') gridLayer = layer;
    return layer;
  }

  function view(spec) {
    return L.geoJSON(cfg.workload, {
      renderer: svg,
      style: function (f) {
        return { color: '#777', weight: 0.6, fillColor: spec.data.fill[f.properties.i], fillOpacity: VIEW_FILL, className: 'gg-view' };
      },
      onEachFeature: function (f, l) {
        l.bindTooltip(function () {
          return tip({ code: f.properties.code, name: f.properties.name, value: spec.data.value[f.properties.i] }, spec.label);
        }, { sticky: true });
      }
    });
  }

  function heat(spec) {
    // Leaflet.heat scales by the densest spot on screen, which leaves the
    // villages all but invisible beside the towns: minOpacity keeps them seen.
    return L.heatLayer(spec.data, { radius: 12, blur: 15, minOpacity: 0.35, pane: heatPane });
  }

  function points(spec) {
    return L.geoJSON(spec.data, {
      pointToLayer: function (f, ll) {
        return L.circleMarker(ll, { radius: 4, renderer: canvas, color: f.properties.state === 'overdue' ? '#d7191c' : '#2b83ba', weight: 1, fillOpacity: 0.8 });
      },
      onEachFeature: function (f, l) { l.bindTooltip(function () { return tip(f.properties); }); }
    });
  }

  // Defects: one group per severity (the panel's filter switches them), and
  // a circle of fixed pixel size on any defect smaller than that on screen.
  var defectPanel = null;
  function defects(spec) {
    var d = spec.data, parent = L.featureGroup(), groups = {}, small = [];
    d.severities.forEach(function (s) { groups[s.key] = L.featureGroup().addTo(parent); });
    d.features.features.forEach(function (f, i) {
      var p = f.properties, cls = 'gg-defect gg-d' + i;
      var style = { renderer: defectSvg, color: p.fill, weight: 2.5, fillColor: p.fill, fillOpacity: 0.6, className: cls };
      var shape = L.geoJSON(f, {
        style: function () { return style; },
        pointToLayer: function (g, ll) { return L.circleMarker(ll, L.extend({}, style, { radius: d.min_px / 2 })); }
      });
      var show = function () { return tip(p); };
      shape.bindTooltip(show, { sticky: true });
      groups[p.severity].addLayer(shape);
      if (f.geometry.type.indexOf('Point') < 0) {
        var halo = L.circleMarker([p.at[0], p.at[1]], L.extend({}, style, { radius: d.min_px / 2, fillOpacity: 0.35, className: cls + ' gg-halo' }));
        halo.bindTooltip(show, { sticky: true });
        small.push({ shape: shape, halo: halo, group: groups[p.severity] });
      }
    });
    function resize() {
      small.forEach(function (s) {
        var b = s.shape.getBounds(), a = map.latLngToLayerPoint(b.getSouthWest()), c = map.latLngToLayerPoint(b.getNorthEast());
        var tiny = Math.max(Math.abs(c.x - a.x), Math.abs(c.y - a.y)) < d.min_px;
        if (tiny) s.group.addLayer(s.halo); else s.group.removeLayer(s.halo);
      });
    }
    map.on('zoomend', resize);
    resize();
    defectPanel = box('bottomleft', function (div) {
      div.classList.add('gg-defects');
      div.appendChild(el('div', 'gg-title', spec.label));
      div.appendChild(el('div', '', lab.severity));
      d.severities.forEach(function (s) {
        var row = el('label'), input = el('input');
        input.type = 'checkbox';
        input.checked = true;
        input.value = s.key;
        input.addEventListener('change', function () {
          if (input.checked) parent.addLayer(groups[s.key]); else parent.removeLayer(groups[s.key]);
        });
        row.appendChild(input);
        row.appendChild(document.createTextNode(s.label + ' (' + s.count + ')'));
        div.appendChild(row);
      });
      var kinds = el('div', 'gg-kinds');
      kinds.appendChild(el('div', '', lab.kind));
      d.kinds.forEach(function (k) {
        var row = el('div');
        row.appendChild(swatch(k.colour));
        row.appendChild(document.createTextNode(k.label + ' (' + k.count + ')'));
        kinds.appendChild(row);
      });
      div.appendChild(kinds);
    });
    return parent;
  }

  // Place labels: the top level's names, shown with it at banner zoom.
  var places = null, topShown = false;
  if (cfg.places) {
    places = L.layerGroup(cfg.places.items.map(function (it) {
      var icon = L.divIcon({ html: el('span', '', it[2]), className: 'gg-label', iconSize: null });
      return L.marker([it[0], it[1]], { icon: icon, pane: 'ggLabels', interactive: false, keyboard: false });
    }));
  }
  function updatePlaces() {
    if (!places) return;
    var show = topShown && map.getZoom() <= cfg.places.max_zoom;
    if (show && !map.hasLayer(places)) places.addTo(map);
    else if (!show && map.hasLayer(places)) map.removeLayer(places);
  }

  // -- what a layer switched on or off changes ------------------------------
  var legendBox = null, shownViews = [], covering = {};
  function showLegend(key) {
    if (legendBox) { map.removeControl(legendBox); legendBox = null; }
    var spec = cfg.legends[key];
    if (!spec) return;
    legendBox = box('bottomright', function (d) {
      d.classList.add('gg-legend');
      d.appendChild(el('div', 'gg-title', spec.title));
      spec.items.forEach(function (it) {
        var row = el('div');
        row.appendChild(swatch(it[0], VIEW_FILL));
        row.appendChild(document.createTextNode(it[1]));
        d.appendChild(row);
      });
    }).addTo(map);
  }
  function switched(spec, on) {
    if (spec.kind === 'view' || spec.kind === 'heat') {
      // a view or heat replaces the pastel grid fill; the grid outlines stay
      if (on) covering[spec.key] = true; else delete covering[spec.key];
      if (gridLayer) gridLayer.setStyle({ fillOpacity: Object.keys(covering).length ? 0 : GRID_FILL });
    }
    if (cfg.legends[spec.key]) {
      shownViews = shownViews.filter(function (k) { return k !== spec.key; });
      if (on) shownViews.push(spec.key);
      if (shownViews.length) showLegend(shownViews[shownViews.length - 1]); else showLegend(null);
    }
    if (spec.kind === 'defects' && defectPanel) {
      if (on) defectPanel.addTo(map); else defectPanel.remove();
    }
    if (spec.role === 'top') { topShown = on; updatePlaces(); }
  }

  var overlays = {};
  cfg.layers.forEach(function (spec) {
    var make = { polygons: polygons, view: view, heat: heat, points: points, defects: defects }[spec.kind];
    var layer = make(spec);
    layer._ggKey = spec.key;
    layer.on('add', function () { switched(spec, true); });
    layer.on('remove', function () { switched(spec, false); });
    overlays[spec.label] = layer;
    if (spec.show) layer.addTo(map);
  });
  L.control.layers(null, overlays, { collapsed: false }).addTo(map);
  map.on('zoomend', updatePlaces);

  // -- search and full screen -----------------------------------------------
  box('topright', function (d) {
    d.classList.add('gg-search');
    var input = el('input'), list = el('ul'), highlighted = null;
    input.type = 'search';
    input.placeholder = lab.search;
    d.appendChild(input);
    d.appendChild(list);
    input.addEventListener('input', function () {
      while (list.firstChild) list.removeChild(list.firstChild);
      var q = input.value.trim();
      if (!q) return;
      searchable.filter(function (s) {
        return String(s.props.code).indexOf(q) === 0 || String(s.props.name || '').indexOf(q) >= 0;
      }).slice(0, 20).forEach(function (s) {
        var li = el('li', '', s.props.code + ' ' + (s.props.name || ''));
        li.addEventListener('click', function () {
          if (highlighted) highlighted.setStyle({ weight: highlighted._ggWeight });
          highlighted = s.layer;
          s.layer._ggWeight = s.layer.options.weight;
          s.layer.setStyle({ weight: 5 });
          map.fitBounds(s.layer.getBounds());
        });
        list.appendChild(li);
      });
    });
  }).addTo(map);
  box('topleft', function (d) {
    d.classList.add('gg-fs');
    d.title = lab.fullscreen;
    d.textContent = lab.fullscreen;
    d.addEventListener('click', function () {
      var c = map.getContainer();
      if (document.fullscreenElement) document.exitFullscreen(); else if (c.requestFullscreen) c.requestFullscreen();
    });
  }).addTo(map);
  map.fitBounds(cfg.bounds);
  updatePlaces();
}
