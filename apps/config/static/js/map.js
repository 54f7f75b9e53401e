// The embedding map: each sample of a scoring run is a point (regl-scatterplot, WebGL), coloured by
// label, suggested label, cluster, split or a score. A lasso or a box becomes a `within` query on
// the run's x/y, which the sample table opens. No inline script: settings come as data- attributes.
(() => {
  "use strict";

  const root = document.getElementById("map");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const message = $("map-message");
  const status = $("map-status");
  const tooltip = $("map-tooltip");
  const colorSelect = $("map-color");
  const legend = $("map-legend");
  const legendTitle = $("legend-title");

  const config = {
    pointsUrl: root.dataset.pointsUrl,
    tableUrl: root.dataset.tableUrl,
    sampleApi: root.dataset.sampleApi,
    mediaUrl: root.dataset.mediaUrl.replace(/x$/, ""),
    modality: root.dataset.modality,
    run: root.dataset.run,
    runPinned: root.dataset.runPinned === "true",
    query: root.dataset.query ? JSON.parse(root.dataset.query) : null,
  };

  // Observable 10 without its grey, then golden-angle hues: distinct for the first ten classes.
  const CATEGORICAL = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e", "#1b9e77"];
  const NONE = "#c6cad6"; // no label, no suggestion, no score
  // Viridis, cut before its palest yellow so high values still show on the light background.
  const RAMP = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b"];
  const RAMP_STEPS = 32;
  const MAX_CORNERS = 60; // a lasso is simplified to this many corners: the URL stays short
  const HOVER_DELAY = 120;

  const fmt = (n) => Number(n).toLocaleString("en-US");

  function categoricalColors(n) {
    const colors = [];
    for (let i = 0; i < n; i++) {
      if (i < CATEGORICAL.length) colors.push(CATEGORICAL[i]);
      else colors.push(hslToHex((i * 137.508) % 360, 62, 52));
    }
    return colors;
  }

  function hslToHex(h, s, l) {
    s /= 100;
    l /= 100;
    const k = (n) => (n + h / 30) % 12;
    const a = s * Math.min(l, 1 - l);
    const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
    return "#" + [f(0), f(8), f(4)].map((v) => Math.round(v * 255).toString(16).padStart(2, "0")).join("");
  }

  function rampColors(steps) {
    const rgb = RAMP.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
    const colors = [];
    for (let s = 0; s < steps; s++) {
      const t = (s / (steps - 1)) * (rgb.length - 1);
      const i = Math.min(Math.floor(t), rgb.length - 2);
      const u = t - i;
      const c = rgb[i].map((v, k) => Math.round(v + (rgb[i + 1][k] - v) * u));
      colors.push("#" + c.map((v) => v.toString(16).padStart(2, "0")).join(""));
    }
    return colors;
  }
  const rampCss = () => `linear-gradient(to right, ${rampColors(9).join(", ")})`;

  // --- State -----------------------------------------------------------------------------------

  let data = null; // the points endpoint's columns
  let nx = null; // positions normalised to [-1, 1] (one scale for both axes: the map keeps its shape)
  let ny = null;
  let frame = null; // {cx, cy, half}: normalised <-> data coordinates
  let scatterplot = null;
  const scores = new Map(); // score name -> {values, range}
  let selection = { indices: [], polygon: null };
  let lassoing = false;
  let drawing = Promise.resolve();

  // --- Loading ---------------------------------------------------------------------------------

  function pointsUrl(extra) {
    const params = new URLSearchParams({ run: config.run, ...extra });
    if (config.query) params.set("q", JSON.stringify(config.query));
    return `${config.pointsUrl}?${params}`;
  }

  async function getJson(url, options = {}) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, ...options });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
    return body;
  }

  function say(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  async function start() {
    try {
      data = await getJson(pointsUrl());
    } catch (error) {
      say(`The map could not be loaded: ${error.message}.`);
      if (status) status.textContent = "not loaded";
      return;
    }
    if (status) {
      status.textContent = data.sampled
        ? `Showing ${fmt(data.count)} of ${fmt(data.total)} samples, a sample stratified by label`
        : `${fmt(data.count)} sample${data.count === 1 ? "" : "s"}`;
    }
    if (!data.count) {
      say(config.query ? "No sample of this query has a place on the map." : "The run placed no sample on the map.");
      return;
    }
    const { x: [x0, x1], y: [y0, y1] } = data.bounds;
    frame = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, half: (Math.max(x1 - x0, y1 - y0) / 2) * 1.04 || 1 };
    nx = Float32Array.from(data.x, (v) => (v - frame.cx) / frame.half);
    ny = Float32Array.from(data.y, (v) => (v - frame.cy) / frame.half);
    try {
      createPlot();
    } catch (error) {
      say("This browser cannot draw the map: it needs WebGL, which is off or unavailable.");
      return;
    }
    say("");
    await recolor();
  }

  function createPlot() {
    const canvas = document.createElement("canvas");
    canvas.className = "map-gl";
    root.prepend(canvas);
    const n = data.count;
    scatterplot = window.createScatterplot({
      canvas,
      width: "auto",
      height: "auto",
      backgroundColor: "#fbfcff",
      // The camera shows [-1, 1] across the canvas's height; a canvas taller than wide (a phone)
      // steps back so that the width holds it too.
      cameraDistance: Math.max(1, canvas.clientHeight / (canvas.clientWidth || 1)),
      pointSize: n > 50000 ? 2 : n > 10000 ? 3 : n > 2000 ? 5 : 7,
      pointSizeSelected: 1,
      pointOutlineWidth: 1,
      pointColorActive: "#1c2033",
      pointColorHover: "#1c2033",
      opacityInactiveMax: 0.3,
      lassoColor: "#4f46e5",
      lassoLineWidth: 2,
      lassoMinDelay: 10,
      lassoMinDist: 3,
      // Shift lassos; no merge, remove or rotate keys: a selection is one shape, one query.
      actionKeyMap: { lasso: "shift" },
      deselectOnDblClick: true,
      deselectOnEscape: true,
      showReticle: false,
      // A spatial index built in a blob: worker would need `worker-src blob:` in the CSP.
      spatialIndexUseWorker: false,
    });
    scatterplot.subscribe("pointover", onPointOver);
    scatterplot.subscribe("pointout", onPointOut);
    scatterplot.subscribe("lassoStart", () => {
      lassoing = true;
    });
    scatterplot.subscribe("lassoEnd", ({ coordinates }) => {
      lassoing = false;
      selectPolygon(coordinates);
    });
    scatterplot.subscribe("select", ({ points }) => {
      if (!lassoing) selectPoints(points); // a click on a point
    });
    scatterplot.subscribe("deselect", () => {
      if (!lassoing) setSelection([], null);
    });
    // For tests and the console: the plot and the ids behind its point indices.
    root.scatterplot = scatterplot;
    root.pointIds = data.ids;
  }

  // --- Colour ------------------------------------------------------------------------------------

  async function colorColumn(mode) {
    const none = (n) => (v) => (v < 0 ? n : v);
    if (mode === "label" || mode === "suggested") {
      const names = data.labels;
      const column = data[mode];
      const empty = mode === "label" ? "unlabelled" : "no suggestion";
      return { codes: Float32Array.from(column, none(names.length)), names: [...names, empty], colors: [...categoricalColors(names.length), NONE] };
    }
    if (mode === "split") {
      return { codes: Float32Array.from(data.split, none(data.splits.length)), names: [...data.splits, "no split"], colors: [...categoricalColors(data.splits.length), NONE] };
    }
    if (mode === "cluster") {
      const ids = [...new Set(data.cluster)].filter((c) => c >= 0).sort((a, b) => a - b);
      const index = new Map(ids.map((c, i) => [c, i]));
      return {
        codes: Float32Array.from(data.cluster, (c) => (c < 0 ? ids.length : index.get(c))),
        names: [...ids.map((c) => `Cluster ${c}`), "no cluster"],
        colors: [...categoricalColors(ids.length), NONE],
      };
    }
    // A numeric score: RAMP_STEPS bins between its smallest and largest value, and one for none.
    if (!scores.has(mode)) {
      const found = await getJson(pointsUrl({ color: mode, only: "color" }));
      if (found.ids.length !== data.ids.length) throw new Error("the samples changed: reload the page");
      scores.set(mode, { values: found.score, range: found.score_range });
    }
    const { values, range } = scores.get(mode);
    const [low, high] = range || [0, 1];
    const span = high - low || 1;
    const codes = Float32Array.from(values, (v) => (v === null ? RAMP_STEPS : Math.min(RAMP_STEPS - 1, Math.floor(((v - low) / span) * RAMP_STEPS))));
    return { codes, colors: [...rampColors(RAMP_STEPS), NONE], numeric: true, range };
  }

  async function recolor() {
    const mode = colorSelect.value;
    root.classList.add("busy");
    try {
      const column = await colorColumn(mode);
      // Draws one at a time: regl-scatterplot refuses a draw while another is under way.
      drawing = drawing.then(() => {
        scatterplot.set({ colorBy: "valueA", pointColor: column.colors });
        return scatterplot.draw(
          { x: nx, y: ny, valueA: column.codes },
          { zDataType: "categorical", preventFilterReset: true, select: selection.indices.length ? selection.indices : undefined },
        );
      });
      await drawing;
      showLegend(mode, column);
    } catch (error) {
      say(`Cannot colour by ${colorSelect.selectedOptions[0].textContent.toLowerCase()}: ${error.message}.`);
    } finally {
      root.classList.remove("busy");
    }
  }

  function showLegend(mode, column) {
    legendTitle.textContent = colorSelect.selectedOptions[0].textContent;
    legend.replaceChildren();
    const counts = new Map();
    for (const c of column.codes) counts.set(c, (counts.get(c) || 0) + 1);
    if (column.numeric) {
      const item = document.createElement("li");
      item.className = "ramp";
      const bar = document.createElement("span");
      bar.className = "ramp-bar";
      bar.style.backgroundImage = rampCss(); // CSSOM, not an inline style attribute: the CSP allows it
      const ends = document.createElement("span");
      ends.className = "ramp-ends num";
      const [low, high] = column.range || [null, null];
      ends.append(span(low === null ? "—" : low.toFixed(3)), span(high === null ? "—" : high.toFixed(3)));
      item.append(bar, ends);
      legend.append(item);
      const missing = counts.get(RAMP_STEPS) || 0;
      if (missing) legend.append(legendItem(NONE, "no value", missing));
      return;
    }
    column.names.forEach((name, code) => {
      const n = counts.get(code) || 0;
      if (n) legend.append(legendItem(column.colors[code], name, n));
    });
  }

  function span(text, className) {
    const el = document.createElement("span");
    el.textContent = text;
    if (className) el.className = className;
    return el;
  }

  function legendItem(color, name, count) {
    const item = document.createElement("li");
    const swatch = span("", "swatch");
    swatch.style.backgroundColor = color;
    item.append(swatch, span(name, "name"), span(fmt(count), "n num"));
    return item;
  }

  // --- Selection -------------------------------------------------------------------------------

  function toData([x, y]) {
    return [frame.cx + x * frame.half, frame.cy + y * frame.half];
  }

  // Corners rounded finer than the points' own precision: the polygon the server tests is the one
  // this page tested, up to a distance no point is likely to sit within of an edge.
  function roundTo(span) {
    const decimals = Math.max(0, 5 - Math.floor(Math.log10(span || 1)));
    return (v) => Number(v.toFixed(Math.min(decimals, 12)));
  }

  function simplify(points, tolerance) {
    // Ramer-Douglas-Peucker on the open path; the polygon closes itself.
    if (points.length <= 3) return points;
    const keep = new Uint8Array(points.length);
    keep[0] = keep[points.length - 1] = 1;
    const stack = [[0, points.length - 1]];
    while (stack.length) {
      const [a, b] = stack.pop();
      let worst = 0;
      let at = -1;
      for (let i = a + 1; i < b; i++) {
        const d = segmentDistance(points[i], points[a], points[b]);
        if (d > worst) {
          worst = d;
          at = i;
        }
      }
      if (at > 0 && worst > tolerance) {
        keep[at] = 1;
        stack.push([a, at], [at, b]);
      }
    }
    return points.filter((_, i) => keep[i]);
  }

  function segmentDistance([px, py], [ax, ay], [bx, by]) {
    const dx = bx - ax;
    const dy = by - ay;
    const length = dx * dx + dy * dy;
    const t = length ? Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / length)) : 0;
    return Math.hypot(px - ax - t * dx, py - ay - t * dy);
  }

  function inside(x, y, polygon) {
    let hit = false;
    for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
      const [xi, yi] = polygon[i];
      const [xj, yj] = polygon[j];
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
    }
    return hit;
  }

  function selectPolygon(coordinates) {
    let corners = coordinates.map(([x, y]) => [x, y]);
    const xs = corners.map((p) => p[0]);
    const ys = corners.map((p) => p[1]);
    const size = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys));
    for (let tolerance = size * 0.002; corners.length > MAX_CORNERS; tolerance *= 1.6) {
      corners = simplify(coordinates, tolerance);
    }
    if (corners.length < 3 || !size) {
      scatterplot.deselect({ preventEvent: true });
      setSelection([], null);
      return;
    }
    const round = roundTo(frame.half * 2);
    const polygon = corners.map((p) => toData(p).map(round));
    // Select what the server will: the points of this polygon, in data coordinates.
    const px = polygon.map((p) => p[0]);
    const py = polygon.map((p) => p[1]);
    const [minX, maxX, minY, maxY] = [Math.min(...px), Math.max(...px), Math.min(...py), Math.max(...py)];
    const indices = [];
    for (let i = 0; i < data.count; i++) {
      const x = data.x[i];
      const y = data.y[i];
      if (x >= minX && x <= maxX && y >= minY && y <= maxY && inside(x, y, polygon)) indices.push(i);
    }
    scatterplot.select(indices, { preventEvent: true });
    setSelection(indices, polygon);
  }

  function selectPoints(indices) {
    setSelection([...indices], null);
  }

  function setSelection(indices, polygon) {
    selection = { indices, polygon };
    const body = $("selection-body");
    const count = indices.length;
    $("selection-empty").hidden = count > 0 || polygon !== null;
    body.hidden = !(count > 0 || polygon !== null);
    $("selection-count").textContent = fmt(count);
    $("selection-noun").textContent = count === 1 ? "sample selected" : "samples selected";
    const table = $("selection-table");
    const single = $("selection-sample");
    if (polygon && count) {
      const within = { within: polygon };
      const q = config.query ? { all: [config.query, within] } : within;
      const params = new URLSearchParams({ q: JSON.stringify(q) });
      if (config.runPinned) params.set("run", config.run);
      table.href = `${config.tableUrl}?${params}`;
      table.hidden = false;
    } else {
      table.hidden = true;
    }
    single.hidden = !(count === 1 && !polygon);
    showSelectionLabels(indices);
    if (!single.hidden) single.href = `${config.tableUrl}${data.ids[indices[0]]}/`;
    if (data && data.sampled && polygon) {
      $("selection-noun").textContent += " on the map (the table lists every matching sample)";
    }
  }

  // What the selection holds, by given label, and how often the run suggests another one.
  function showSelectionLabels(indices) {
    const list = $("selection-labels");
    const disagree = $("selection-disagree");
    list.replaceChildren();
    if (!data || !indices.length) {
      disagree.hidden = true;
      return;
    }
    const counts = new Map();
    let other = 0;
    for (const i of indices) {
      const label = data.label[i];
      counts.set(label, (counts.get(label) || 0) + 1);
      if (data.suggested[i] >= 0 && data.suggested[i] !== label) other += 1;
    }
    const colors = categoricalColors(data.labels.length);
    [...counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .forEach(([label, n]) => list.append(legendItem(label >= 0 ? colors[label] : NONE, label >= 0 ? data.labels[label] : "unlabelled", n)));
    disagree.textContent = other ? `${fmt(other)} with another suggested label` : "The run suggests no other label here.";
    disagree.hidden = false;
  }

  // --- Hover preview ---------------------------------------------------------------------------

  const previews = new Map(); // sample id -> API answer
  let hovered = -1;
  let hoverTimer = 0;
  let hoverAbort = null;
  let mouse = [0, 0];

  root.addEventListener("mousemove", (event) => {
    const box = root.getBoundingClientRect();
    mouse = [event.clientX - box.left, event.clientY - box.top];
    if (!tooltip.hidden) placeTooltip();
  });
  root.addEventListener("mouseleave", () => onPointOut());

  function onPointOver(index) {
    hovered = index;
    renderTooltip(index, previews.get(data.ids[index]));
    clearTimeout(hoverTimer);
    if (!previews.has(data.ids[index])) hoverTimer = setTimeout(() => fetchPreview(index), HOVER_DELAY);
  }

  function onPointOut() {
    hovered = -1;
    clearTimeout(hoverTimer);
    tooltip.hidden = true;
  }

  async function fetchPreview(index) {
    const id = data.ids[index];
    if (hoverAbort) hoverAbort.abort();
    hoverAbort = new AbortController();
    try {
      const sample = await getJson(`${config.sampleApi}${id}/?run=${encodeURIComponent(config.run)}`, { signal: hoverAbort.signal });
      previews.set(id, sample);
      if (hovered === index) renderTooltip(index, sample);
    } catch (error) {
      if (error.name !== "AbortError" && hovered === index) renderTooltip(index, { error: error.message });
    }
  }

  function renderTooltip(index, sample) {
    const labelName = (i, empty) => (i >= 0 ? data.labels[i] : empty);
    const label = labelName(data.label[index], "unlabelled");
    const suggested = data.suggested[index];
    tooltip.replaceChildren();
    const head = document.createElement("div");
    head.className = "tip-head";
    head.append(span(sample && sample.external_id ? sample.external_id : `sample ${data.ids[index]}`, "mono"));
    head.append(span(data.splits[data.split[index]] || "", "muted small"));
    const labels = document.createElement("div");
    labels.className = "tip-labels";
    labels.append(span(label, "badge"));
    if (suggested >= 0 && suggested !== data.label[index]) {
      labels.append(span("→", "muted"), span(data.labels[suggested], "badge suggest"));
    }
    const score = sample && sample.scores && sample.scores.mislabel_score;
    if (typeof score === "number") labels.append(span(`mislabel ${score.toFixed(2)}`, "muted small"));
    tooltip.append(head, labels);
    if (!sample) {
      tooltip.append(span("Loading…", "muted small tip-text"));
    } else if (sample.error) {
      tooltip.append(span(`Not loaded: ${sample.error}`, "muted small tip-text"));
    } else if (sample.image) {
      const img = document.createElement("img");
      img.className = "tip-image";
      img.alt = sample.external_id;
      img.src = config.mediaUrl + sample.image.split("/").map(encodeURIComponent).join("/");
      tooltip.append(img);
    } else {
      const text = sample.text || (sample.fields ? JSON.stringify(sample.fields) : "");
      tooltip.append(span(text.length > 220 ? `${text.slice(0, 220)}…` : text || "(no text)", "tip-text"));
    }
    tooltip.hidden = false;
    placeTooltip();
  }

  function placeTooltip() {
    const gap = 14;
    const width = tooltip.offsetWidth;
    const height = tooltip.offsetHeight;
    let [left, top] = [mouse[0] + gap, mouse[1] + gap];
    if (left + width > root.clientWidth - 4) left = Math.max(4, mouse[0] - gap - width);
    if (top + height > root.clientHeight - 4) top = Math.max(4, mouse[1] - gap - height);
    tooltip.style.transform = `translate(${left}px, ${top}px)`;
  }

  // --- Controls --------------------------------------------------------------------------------

  colorSelect.addEventListener("change", () => {
    if (scatterplot) recolor();
  });
  for (const button of document.querySelectorAll(".segmented [data-mode]")) {
    button.addEventListener("click", () => {
      if (!scatterplot) return;
      const mode = button.dataset.mode;
      scatterplot.set(mode === "pan" ? { mouseMode: "panZoom", lassoType: "freeform" } : { mouseMode: "lasso", lassoType: mode === "box" ? "rectangle" : "freeform" });
      for (const other of document.querySelectorAll(".segmented [data-mode]")) other.setAttribute("aria-pressed", String(other === button));
      root.dataset.mode = mode;
    });
  }
  $("map-reset").addEventListener("click", () => scatterplot && scatterplot.reset());
  $("selection-clear").addEventListener("click", () => {
    if (scatterplot) scatterplot.deselect({ preventEvent: true });
    setSelection([], null);
  });

  if (typeof window.createScatterplot !== "function") {
    say("The map's drawing library did not load.");
    return;
  }
  start();
})();
