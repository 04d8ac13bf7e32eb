// gridgeo plan editor: the browser side of gridgeo.plan.editor.PlanEditor.
//
// `L` (Leaflet 1.9.3, gridgeo's own copy) is defined by the code the kernel puts
// before this file. The kernel owns the plan: a click sends {op, ...} with
// model.send(); the kernel answers by replacing the `state` trait (assignment,
// grids, panel), and this script only restyles the units and rewrites the panel.
// Every piece of text is set with textContent: names never become HTML.

const NS = "gridgeo-editor";

function el(tag, className, parent) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (parent) parent.appendChild(node);
  return node;
}

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
}

// Delta-coded micro-degrees → Leaflet lat/lng arrays, one per unit.
function decodeUnits(units) {
  const n = units.ids.length;
  const lon = new Float64Array(units.x.length);
  const lat = new Float64Array(units.y.length);
  let x = 0, y = 0;
  for (let k = 0; k < lon.length; k++) {
    x += units.x[k];
    y += units.y[k];
    lon[k] = x / 1e6;
    lat[k] = y / 1e6;
  }
  const shapes = new Array(n);
  for (let u = 0; u < n; u++) {
    const rings = [];
    for (let r = units.parts[u]; r < units.parts[u + 1]; r++) {
      const ring = [];
      for (let k = units.rings[r]; k < units.rings[r + 1]; k++) ring.push([lat[k], lon[k]]);
      rings.push(ring);
    }
    shapes[u] = rings;
  }
  const points = new Array(n);
  x = 0; y = 0;
  for (let u = 0; u < n; u++) {
    x += units.px[u];
    y += units.py[u];
    points[u] = [y / 1e6, x / 1e6];
  }
  return { shapes, points };
}

function render({ model, el: host }) {
  const text = model.get("text");
  const units = model.get("units");
  const tiles = model.get("tiles");
  const root = el("div", NS, host);
  root.style.height = `${model.get("height")}px`;

  // -- layout: map on the left, toolbar and panel on the right --
  const mapBox = el("div", `${NS}-map`, root);
  const side = el("div", `${NS}-side`, root);
  const tools = el("div", `${NS}-tools`, side);
  const targetLabel = el("label", "", tools);
  targetLabel.textContent = text.target;
  const targetSelect = el("select", `${NS}-target`, targetLabel);
  const row = el("div", `${NS}-buttons`, tools);
  const button = (key, cls) => {
    const b = el("button", `${NS}-${cls}`, row);
    b.type = "button";
    b.textContent = text[key];
    return b;
  };
  const undoButton = button("undo", "undo");
  const redoButton = button("redo", "redo");
  const lockButton = button("lock", "lock");
  const splitButton = button("split", "split");
  const mergeRow = el("div", `${NS}-buttons`, tools);
  const neighbourLabel = el("label", "", mergeRow);
  neighbourLabel.textContent = text.neighbour;
  const neighbourSelect = el("select", `${NS}-neighbour`, neighbourLabel);
  const mergeButton = el("button", `${NS}-merge`, mergeRow);
  mergeButton.type = "button";
  mergeButton.textContent = text.merge;
  const hint = el("div", `${NS}-hint`, tools);
  hint.textContent = text.hint;

  const panel = el("div", `${NS}-panel`, side);
  const title = el("div", `${NS}-title`, panel);
  const targetLine = el("div", `${NS}-target-line`, panel);
  const message = el("div", `${NS}-message`, panel);
  const detail = el("div", `${NS}-detail`, panel);
  const table = el("table", `${NS}-table`, panel);
  const warningList = el("ul", `${NS}-warnings`, panel);
  const normsOk = el("div", `${NS}-norms-ok`, panel);
  const summary = el("div", `${NS}-summary`, panel);
  const info = el("div", `${NS}-info`, side);

  // -- the map --
  const map = L.map(mapBox, {
    boxZoom: false, // Shift+drag selects units instead
    zoomSnap: 0.25,
    attributionControl: Boolean(tiles && tiles.url),
    preferCanvas: false, // SVG: restyling a few paths does not redraw 5,000
  });
  if (tiles && tiles.url) {
    L.tileLayer(tiles.url, { attribution: tiles.attribution || "", maxZoom: 18 }).addTo(map);
  }
  const { shapes, points } = decodeUnits(units);
  const group = L.featureGroup().addTo(map);
  const layers = shapes.map((rings, i) => {
    const layer = L.polygon(rings, { weight: 0.6, color: "#ffffff", fillOpacity: 0.8 });
    layer._ggUnit = i;
    return layer.addTo(group);
  });
  const bounds = group.getBounds();

  let state = null;
  let codes = [];
  let grids = [];
  let keys = new Array(layers.length).fill("");
  let pending = null; // a local note ("choose a target first") until the next state

  // performance marks: where the time between a click and the new panel goes
  const send = (content) => {
    performance.mark("gridgeo-editor-send");
    // on the panel, not the root: a class on the map's ancestors restyles 5,000 paths
    panel.classList.add(`${NS}-busy`);
    model.send(content);
  };

  const styleOf = (g) => {
    const grid = grids[g];
    if (!grid) return ["#999999", false, false];
    return [grid.colour, grid.locked, grid.code === state.target];
  };

  function restyle() {
    const assign = state.assign;
    for (let i = 0; i < layers.length; i++) {
      const [colour, locked, target] = styleOf(assign[i]);
      const key = `${colour}|${locked}|${target}`;
      if (key === keys[i]) continue;
      keys[i] = key;
      layers[i].setStyle({
        fillColor: colour,
        fillOpacity: locked ? 0.35 : target ? 0.95 : 0.8,
        color: target ? "#1f1f1f" : locked ? "#777777" : "#ffffff",
        weight: target ? 1.2 : 0.6,
        dashArray: locked ? "2 3" : null,
      });
    }
  }

  function options(select, items, chosen) {
    const signature = items.map((g) => `${g.code}\u0000${g.name}`).join("\u0001");
    if (select._ggSignature !== signature) {
      select._ggSignature = signature;
      select.replaceChildren();
      const none = el("option", "", select);
      none.value = "";
      none.textContent = text.none;
      for (const g of items) {
        const option = el("option", "", select);
        option.value = g.code;
        option.textContent = g.name ? `${g.code} ${g.name}` : g.code;
      }
    }
    select.value = chosen || "";
  }

  function writePanel(p) {
    title.textContent = p.title;
    targetLine.textContent = p.target;
    const note = pending || p.message;
    message.textContent = note.text || "";
    message.dataset.kind = note.kind || "";
    detail.textContent = (pending ? "" : note.detail) || "";
    table.replaceChildren();
    if (p.rows.length) {
      const head = el("tr", "", el("thead", "", table));
      for (const h of p.headers) el("th", "", head).textContent = h;
      const body = el("tbody", "", table);
      for (const cells of p.rows) {
        const tr = el("tr", "", body);
        tr.dataset.code = cells[0];
        for (const c of cells) el("td", "", tr).textContent = c;
      }
    }
    warningList.replaceChildren();
    for (const w of p.warnings) el("li", "", warningList).textContent = w;
    normsOk.textContent = p.norms_ok;
    summary.textContent = p.summary;
  }

  function apply() {
    performance.mark("gridgeo-editor-state");
    state = model.get("state");
    panel.classList.remove(`${NS}-busy`);
    pending = null;
    grids = state.grids;
    codes = grids.map((g) => g.code);
    restyle();
    options(targetSelect, grids, state.target);
    const byCode = new Map(grids.map((g) => [g.code, g]));
    options(neighbourSelect, state.neighbours.map((c) => byCode.get(c)).filter(Boolean), neighbourSelect.value);
    undoButton.disabled = !state.can_undo;
    redoButton.disabled = !state.can_redo;
    lockButton.textContent = state.target_locked ? text.unlock : text.lock;
    const noTarget = !state.target;
    lockButton.disabled = noTarget;
    splitButton.disabled = noTarget;
    mergeButton.disabled = noTarget;
    writePanel(state.panel);
    root.dataset.seq = String(state.seq);
    performance.mark("gridgeo-editor-applied");
  }

  function localNote(words) {
    pending = { kind: "refused", text: words, detail: "" };
    writePanel(state.panel);
  }

  // -- clicks --
  group.on("click", (e) => {
    const i = e.layer._ggUnit;
    const code = codes[state.assign[i]];
    const mouse = e.originalEvent || {};
    if (mouse.ctrlKey || mouse.metaKey) {
      send({ op: "target", code });
    } else if (!state.target) {
      localNote(text.pick_target);
    } else if (code !== state.target) {
      send({ op: "move", units: [i], to: state.target });
    }
  });
  group.on("mouseover", (e) => {
    const i = e.layer._ggUnit;
    info.textContent = fill(text.unit_info, {
      id: units.ids[i],
      hh: units.households[i],
      code: codes[state.assign[i]] || "",
    });
  });
  targetSelect.addEventListener("change", () => send({ op: "target", code: targetSelect.value }));
  undoButton.addEventListener("click", () => send({ op: "undo" }));
  redoButton.addEventListener("click", () => send({ op: "redo" }));
  lockButton.addEventListener("click", () =>
    send({ op: state.target_locked ? "unlock" : "lock", code: state.target }));
  splitButton.addEventListener("click", () => send({ op: "split", code: state.target }));
  mergeButton.addEventListener("click", () => {
    if (!neighbourSelect.value) localNote(text.pick_neighbour);
    else send({ op: "merge", code: state.target, other: neighbourSelect.value });
  });

  // -- Shift+drag: box selection --
  let box = null;
  let start = null;
  const container = map.getContainer();
  const onMove = (e) => {
    const corner = map.mouseEventToLatLng(e);
    box.setBounds(L.latLngBounds(start, corner));
  };
  const onUp = (e) => {
    document.removeEventListener("mousemove", onMove);
    document.removeEventListener("mouseup", onUp);
    map.dragging.enable();
    const area = L.latLngBounds(start, map.mouseEventToLatLng(e));
    box.remove();
    box = null;
    if (!state.target) return localNote(text.pick_target);
    const target = codes.indexOf(state.target);
    const chosen = [];
    for (let i = 0; i < points.length; i++) {
      if (state.assign[i] !== target && area.contains(points[i])) chosen.push(i);
    }
    if (chosen.length) send({ op: "move", units: chosen, to: state.target });
  };
  container.addEventListener("mousedown", (e) => {
    if (!e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    e.stopPropagation();
    map.dragging.disable();
    start = map.mouseEventToLatLng(e);
    box = L.rectangle(L.latLngBounds(start, start), {
      color: "#1f1f1f", weight: 1, dashArray: "4 3", fillOpacity: 0.05, interactive: false,
    }).addTo(map);
    document.addEventListener("mousemove", onMove);
    document.addEventListener("mouseup", onUp);
  }, true);

  // -- size: the output area may still be detached or hidden when this runs --
  let framed = false;
  const observer = new ResizeObserver(() => {
    if (!mapBox.clientWidth || !mapBox.clientHeight) return;
    map.invalidateSize({ animate: false });
    if (!framed) {
      framed = true;
      map.fitBounds(bounds, { animate: false, padding: [8, 8] });
    }
  });
  observer.observe(mapBox);

  model.on("change:state", apply);
  apply();
  // For people and tests poking at the widget from the page's console.
  root.gridgeo = {
    map,
    bounds,
    layer: (i) => layers[i],
    unitIndex: (id) => units.ids.indexOf(id),
    unitPoint: (i) => points[i],
  };
  return () => {
    observer.disconnect();
    model.off("change:state", apply);
    map.remove();
  };
}

export default { render };
