// The gallery of an image dataset (templates/explorer/gallery.html). The grid receives the ids
// of every match in order, lays them out in lines (a scroll space as tall as all of them), and
// draws only the lines near the viewport, reusing their nodes as it scrolls; the cells' data
// come in pages from the cells endpoint, the pictures from the thumbnail endpoint. Selection
// (ctrl/cmd-click, shift-click, a rubber band, the keyboard) fills the bulk form's `ids`, so the
// table's bulk actions act on it. A lightbox shows the full image with zoom and steps through
// the order. In duplicate groups mode each group is a block: a heading, its members side by side.
(() => {
  const grid = document.getElementById("gallery");
  if (!grid) return;
  const space = document.getElementById("gallery-space");
  const band = document.getElementById("rubberband");
  const idsField = document.getElementById("gallery-ids");
  const countLine = document.getElementById("gallery-count");
  const selectedCount = document.getElementById("selected-count");
  const allBox = document.getElementById("select-all-matching");
  const bulkbar = document.getElementById("bulkbar");
  const empty = document.getElementById("gallery-empty");
  const selectable = grid.dataset.selectable === "1";
  const groupsMode = grid.dataset.mode === "groups";
  const thumbBase = grid.dataset.thumbUrl.replace(/0\/$/, "");
  const sampleBase = grid.dataset.sampleUrl.replace(/0\/$/, "");
  const state = grid.dataset.state;
  const cellsUrl = grid.dataset.cellsUrl;
  const GAP = 8;
  const CAPTION = 48;
  const HEAD = 30; // a duplicate group's heading
  const OVERSCAN = 600; // pixels drawn beyond the viewport, above and below, once it scrolls
  let overscan = 0; // none on the first screen: its own thumbnails load first
  const PAGE = 200; // cells per request

  let ids = [];
  let groupSizes = null;
  const cells = new Map(); // sample id -> its cell data
  const pending = new Set();
  let fetching = false;
  const selected = new Set(); // sample ids
  let anchor = null; // position a shift-click or shift-arrow extends from
  let focus = 0;
  // The layout: lines (a row of cells, or a group's heading), each {y, h, start, count, group}.
  let cols = 1;
  let cellW = 100;
  let lines = [];
  let posLine = new Int32Array(0);
  let posCol = new Int32Array(0);
  const nodes = new Map(); // position -> node on screen
  const heads = new Map(); // line index -> heading node on screen
  const freeNodes = [];
  const freeHeads = [];

  const sampleUrl = (id) => `${sampleBase}${id}/${state ? `?${state}` : ""}`;

  // --- Layout -------------------------------------------------------------------------------------
  function layout() {
    const width = space.clientWidth;
    const min = width < 600 ? 92 : 168;
    cols = Math.max(1, Math.floor((width + GAP) / (min + GAP)));
    cellW = Math.floor((width - GAP * (cols - 1)) / cols);
    const rowH = cellW + CAPTION + GAP;
    grid.style.setProperty("--cell-w", `${cellW}px`);
    grid.style.setProperty("--cell-h", `${cellW + CAPTION}px`);
    lines = [];
    posLine = new Int32Array(ids.length);
    posCol = new Int32Array(ids.length);
    let y = 0;
    const addCells = (start, count, group) => {
      for (let s = 0; s < count; s += cols) {
        const n = Math.min(cols, count - s);
        const line = lines.length;
        for (let c = 0; c < n; c++) { posLine[start + s + c] = line; posCol[start + s + c] = c; }
        lines.push({ y, h: rowH, start: start + s, count: n, group });
        y += rowH;
      }
    };
    if (groupSizes) {
      let start = 0;
      groupSizes.forEach((size, g) => {
        lines.push({ y, h: HEAD, start, count: size, group: g, head: true });
        y += HEAD;
        addCells(start, size, g);
        start += size;
      });
    } else {
      addCells(0, ids.length, null);
    }
    space.style.height = `${y}px`;
  }

  function lineAt(y) {
    let lo = 0;
    let hi = lines.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lines[mid].y <= y) lo = mid; else hi = mid - 1;
    }
    return Math.max(0, lo);
  }

  // --- Drawing ------------------------------------------------------------------------------------
  function makeNode() {
    const node = document.createElement("div");
    node.className = "gcell";
    node.setAttribute("role", "gridcell");
    const link = document.createElement("a");
    link.className = "gthumb";
    link.draggable = false;
    link.tabIndex = -1;
    const img = document.createElement("img");
    img.draggable = false;
    img.decoding = "async";
    img.addEventListener("load", () => node.classList.add("loaded"));
    link.append(img);
    const zoom = document.createElement("button");
    zoom.type = "button";
    zoom.className = "gzoom";
    zoom.tabIndex = -1;
    zoom.setAttribute("aria-label", "View larger");
    zoom.textContent = "⤢";
    const pick = document.createElement("span");
    pick.className = "gpick";
    pick.setAttribute("aria-hidden", "true");
    const caption = document.createElement("div");
    caption.className = "gcap";
    node.append(link, selectable ? pick : "", zoom, caption);
    return node;
  }

  function badge(text, tone, title) {
    const b = document.createElement("span");
    b.className = `badge${tone ? ` ${tone}` : ""}`;
    b.textContent = text;
    if (title) b.title = title;
    return b;
  }

  function badgesOf(cell) {
    const out = [];
    out.push(badge(cell.label ?? "unlabelled", cell.label ? "" : "muted-badge", "Label"));
    // Side by side in a group, each member's split shows where a copy leaked.
    if (groupsMode) out.push(badge(cell.split, cell.split === "train" ? "" : "tone-out", "Split"));
    if (cell.mislabel !== null && cell.mislabel !== undefined) {
      out.push(badge(cell.mislabel.toFixed(2), cell.likely ? "alert" : "", cell.likely ? "Likely mislabelled: mislabel score" : "Mislabel score"));
    }
    if (cell.likely && cell.suggested && cell.suggested !== cell.label) out.push(badge(`→ ${cell.suggested}`, "suggest", "Suggested label"));
    if (cell.outlier) out.push(badge("outlier", "tone-out", "Flagged as an outlier"));
    if (cell.group !== null && cell.group !== undefined) out.push(badge(`dup ${cell.group}`, "tag", "Near-duplicate group"));
    if (cell.draft) out.push(badge(cell.draft.removed ? "draft: removal" : `draft → ${cell.draft.label ?? "unlabelled"}`, "draft", "In the draft, not yet committed"));
    return out;
  }

  function fill(node, pos) {
    const id = ids[pos];
    node.id = `gcell-${pos}`;
    node.dataset.pos = pos;
    const link = node.firstChild;
    const img = link.firstChild;
    if (node.dataset.id !== String(id)) {
      node.dataset.id = id;
      node.classList.remove("loaded");
      img.removeAttribute("src");
      img.src = `${thumbBase}${id}/`;
      link.href = sampleUrl(id);
      node.dataset.filled = "";
    }
    const cell = cells.get(id);
    if (cell && node.dataset.filled !== "1") {
      node.dataset.filled = "1";
      img.alt = `${cell.ext}, labelled ${cell.label ?? "unlabelled"}`;
      node.querySelector(".gcap").replaceChildren(...badgesOf(cell));
    } else if (!cell) {
      img.alt = "Sample image";
      node.querySelector(".gcap").replaceChildren();
    }
    const on = (allBox && allBox.checked) || selected.has(id);
    node.classList.toggle("selected", on);
    node.setAttribute("aria-selected", on ? "true" : "false");
    node.classList.toggle("focused", pos === focus);
    const line = lines[posLine[pos]];
    node.style.transform = `translate(${posCol[pos] * (cellW + GAP)}px, ${line.y}px)`;
  }

  function fillHead(node, index) {
    const line = lines[index];
    node.style.transform = `translate(0, ${line.y}px)`;
    const members = ids.slice(line.start, line.start + line.count).map((id) => cells.get(id));
    const known = members.filter(Boolean);
    const splits = [...new Set(known.map((c) => c.split))];
    const labels = [...new Set(known.map((c) => c.label ?? "unlabelled"))];
    const parts = [document.createTextNode(`Group ${known[0] && known[0].group !== null ? known[0].group : line.group + 1} · ${line.count} images `)];
    if (known.length === members.length) {
      parts.push(badge(splits.join(" + "), splits.length > 1 ? "alert" : "", "Splits"));
      if (splits.length > 1 && splits.some((s) => s !== "train") && splits.includes("train")) parts.push(badge("leakage", "alert", "In training and in another split"));
      parts.push(badge(labels.join(" ≠ "), labels.length > 1 ? "alert" : "", "Labels"));
      if (labels.length > 1) parts.push(badge("conflicting labels", "alert"));
    }
    node.replaceChildren(...parts);
  }

  let drawQueued = false;
  function draw() {
    drawQueued = false;
    if (!lines.length) return;
    const top = grid.scrollTop - overscan;
    const bottom = grid.scrollTop + grid.clientHeight + overscan;
    const wanted = new Set();
    const wantedHeads = new Set();
    for (let i = lineAt(Math.max(0, top)); i < lines.length && lines[i].y < bottom; i++) {
      const line = lines[i];
      if (line.head) { wantedHeads.add(i); continue; }
      for (let p = line.start; p < line.start + line.count; p++) wanted.add(p);
    }
    for (const [pos, node] of nodes) {
      if (!wanted.has(pos)) { nodes.delete(pos); node.hidden = true; freeNodes.push(node); }
    }
    for (const [i, node] of heads) {
      if (!wantedHeads.has(i)) { heads.delete(i); node.hidden = true; freeHeads.push(node); }
    }
    const missing = [];
    for (const pos of wanted) {
      let node = nodes.get(pos);
      if (!node) {
        node = freeNodes.pop() || space.appendChild(makeNode());
        node.hidden = false;
        nodes.set(pos, node);
      }
      fill(node, pos);
      const id = ids[pos];
      if (!cells.has(id) && !pending.has(id)) missing.push(id);
    }
    for (const i of wantedHeads) {
      let node = heads.get(i);
      if (!node) {
        node = freeHeads.pop();
        if (!node) { node = document.createElement("div"); node.className = "ghead"; space.appendChild(node); }
        node.hidden = false;
        heads.set(i, node);
      }
      fillHead(node, i);
      const line = lines[i];
      for (let p = line.start; p < line.start + line.count; p++) {
        const id = ids[p];
        if (!cells.has(id) && !pending.has(id) && !missing.includes(id)) missing.push(id);
      }
    }
    grid.dataset.drawn = String(nodes.size);
    if (missing.length) fetchCells(missing);
  }
  function schedule() {
    if (!drawQueued) { drawQueued = true; requestAnimationFrame(draw); }
  }

  // --- Data ---------------------------------------------------------------------------------------
  function take(list) {
    list.forEach((cell) => cells.set(cell.id, cell));
  }

  async function fetchCells(missing) {
    missing.forEach((id) => pending.add(id));
    if (fetching) return;
    fetching = true;
    try {
      while (pending.size) {
        const batch = [...pending].slice(0, PAGE);
        const url = `${cellsUrl}${cellsUrl.includes("?") ? "&" : "?"}ids=${batch.join(",")}`;
        const response = await fetch(url, { headers: { Accept: "application/json" } });
        batch.forEach((id) => pending.delete(id));
        if (!response.ok) break;
        take((await response.json()).cells);
        // Those scrolled away meanwhile are not fetched: draw() asks again for what shows.
        pending.clear();
        draw();
      }
    } finally {
      fetching = false;
    }
  }

  async function cellOf(id) {
    if (!cells.has(id)) {
      const url = `${cellsUrl}${cellsUrl.includes("?") ? "&" : "?"}ids=${id}`;
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (response.ok) take((await response.json()).cells);
    }
    return cells.get(id);
  }

  // The first screen's cells come with the page: drawn at once, while the order of every match
  // (for 100,000 samples, 700 KB) is fetched.
  function startFirst() {
    const embedded = document.getElementById("gallery-first");
    const first = embedded ? JSON.parse(embedded.textContent) : null;
    if (!first || !first.ids.length) return;
    ids = first.ids;
    take(first.cells);
    layout();
    draw();
    grid.dataset.shown = "1";
  }

  async function start() {
    startFirst();
    layoutEstimate();
    const first = ids.length ? 0 : Math.min(500, Math.max(1, cols * (Math.ceil(grid.clientHeight / (cellW + CAPTION + GAP)) + 1)));
    const url = grid.dataset.orderUrl;
    const response = await fetch(`${url}${url.includes("?") ? "&" : "?"}cells=${first}`, { headers: { Accept: "application/json" } });
    const data = await response.json();
    if (!response.ok) {
      countLine.textContent = data.error || "The gallery could not be loaded.";
      return;
    }
    ids = data.ids;
    groupSizes = data.groups || null;
    take(data.cells);
    const n = ids.length;
    let said = groupsMode
      ? `${groupSizes.length.toLocaleString()} group${groupSizes.length === 1 ? "" : "s"}, ${n.toLocaleString()} images`
      : `${n.toLocaleString()} sample${n === 1 ? "" : "s"}`;
    if (data.truncated) said += ` (the first ${data.limit.toLocaleString()}: narrow the filter to see the rest)`;
    countLine.textContent = said;
    grid.dataset.count = String(n);
    if (empty) empty.hidden = n > 0;
    grid.hidden = n === 0;
    layout();
    draw();
    grid.dataset.shown = "1";
    grid.dataset.ready = "1";
  }
  function layoutEstimate() {
    const width = space.clientWidth;
    const min = width < 600 ? 92 : 168;
    cols = Math.max(1, Math.floor((width + GAP) / (min + GAP)));
    cellW = Math.floor((width - GAP * (cols - 1)) / cols);
  }

  grid.addEventListener("scroll", () => { overscan = OVERSCAN; schedule(); }, { passive: true });
  let lastWidth = 0;
  new ResizeObserver(() => {
    if (!ids.length || space.clientWidth === lastWidth) return;
    lastWidth = space.clientWidth;
    const keep = focus;
    layout();
    nodes.forEach((node) => { node.dataset.filled = ""; });
    if (keep) reveal(keep);
    draw();
  }).observe(grid);

  // --- Selection ----------------------------------------------------------------------------------
  function showSelection() {
    if (selectedCount) selectedCount.textContent = allBox && allBox.checked ? "All matching" : selected.size.toLocaleString();
    if (idsField) idsField.value = [...selected].join(",");
    if (bulkbar) bulkbar.classList.toggle("active", selected.size > 0 || (allBox && allBox.checked));
    grid.dataset.selected = String(selected.size);
    nodes.forEach((node, pos) => fill(node, pos));
  }
  function toggle(pos) {
    const id = ids[pos];
    if (selected.has(id)) selected.delete(id); else selected.add(id);
    anchor = pos;
  }
  function selectRange(from, to, keep) {
    if (!keep) selected.clear();
    const [a, b] = from <= to ? [from, to] : [to, from];
    for (let p = a; p <= b; p++) selected.add(ids[p]);
  }
  function clearAll() {
    selected.clear();
    if (allBox) allBox.checked = false;
    anchor = null;
    showSelection();
  }
  if (allBox) allBox.addEventListener("change", showSelection);
  const clearButton = document.getElementById("clear-selection");
  if (clearButton) clearButton.addEventListener("click", clearAll);

  function posOf(target) {
    const node = target.closest(".gcell");
    return node && node.dataset.pos !== undefined ? Number(node.dataset.pos) : null;
  }
  function setFocus(pos) {
    const old = nodes.get(focus);
    focus = Math.max(0, Math.min(ids.length - 1, pos));
    if (old) old.classList.remove("focused");
    reveal(focus);
    const node = nodes.get(focus);
    if (node) node.classList.add("focused");
    grid.setAttribute("aria-activedescendant", `gcell-${focus}`);
  }
  function reveal(pos) {
    const line = lines[posLine[pos]];
    if (!line) return;
    // A group's heading stays in view with its first line.
    const top = line.y - (groupSizes && posLine[pos] > 0 && lines[posLine[pos] - 1].head ? HEAD : 0);
    if (top < grid.scrollTop) grid.scrollTop = top;
    else if (line.y + line.h > grid.scrollTop + grid.clientHeight) grid.scrollTop = line.y + line.h - grid.clientHeight;
    draw();
  }

  let dragged = false;
  grid.addEventListener("click", (event) => {
    const pos = posOf(event.target);
    if (dragged) { event.preventDefault(); dragged = false; return; }
    if (pos === null) return;
    if (event.target.closest(".gzoom")) { event.preventDefault(); setFocus(pos); openLightbox(pos); return; }
    if (selectable && (event.shiftKey || event.ctrlKey || event.metaKey || event.target.closest(".gpick"))) {
      event.preventDefault();
      if (allBox) allBox.checked = false;
      if (event.shiftKey) selectRange(anchor ?? pos, pos, true);
      else toggle(pos);
      if (!event.shiftKey) anchor = pos;
      setFocus(pos);
      showSelection();
      return;
    }
    if (!event.target.closest("a")) window.location.assign(sampleUrl(ids[pos]));
  });

  // The rubber band: a drag over the grid selects every cell it touches (with ctrl, cmd or
  // shift, adds them to the selection). Positions come from the layout, so it works however far
  // the grid scrolls under it.
  let drag = null;
  function spacePoint(event) {
    const box = space.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  }
  function positionsIn(x0, y0, x1, y1) {
    const found = [];
    const c0 = Math.max(0, Math.floor(x0 / (cellW + GAP)));
    const c1 = Math.min(cols - 1, Math.floor(x1 / (cellW + GAP)));
    for (let i = lineAt(y0); i < lines.length && lines[i].y <= y1; i++) {
      const line = lines[i];
      if (line.head || line.y + line.h < y0) continue;
      for (let c = c0; c <= Math.min(c1, line.count - 1); c++) found.push(line.start + c);
    }
    return found;
  }
  grid.addEventListener("pointerdown", (event) => {
    if (!selectable || event.button !== 0 || event.pointerType !== "mouse" || !ids.length) return;
    if (event.target.closest(".gzoom") || event.target === grid && event.offsetX > grid.clientWidth) return; // the scroll bar
    event.preventDefault(); // no text selection or image drag; the click still comes
    grid.focus({ preventScroll: true });
    const at = spacePoint(event);
    drag = { at, moved: false, keep: event.ctrlKey || event.metaKey || event.shiftKey, before: new Set(selected) };
    dragged = false;
  });
  window.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const now = spacePoint(event);
    if (!drag.moved && Math.hypot(now.x - drag.at.x, now.y - drag.at.y) < 6) return;
    drag.moved = true;
    const box = grid.getBoundingClientRect();
    if (event.clientY > box.bottom - 20) grid.scrollTop += 20;
    else if (event.clientY < box.top + 20) grid.scrollTop -= 20;
    const [x0, x1] = [Math.min(drag.at.x, now.x), Math.max(drag.at.x, now.x)];
    const [y0, y1] = [Math.min(drag.at.y, now.y), Math.max(drag.at.y, now.y)];
    band.hidden = false;
    band.style.transform = `translate(${x0}px, ${y0}px)`;
    band.style.width = `${x1 - x0}px`;
    band.style.height = `${y1 - y0}px`;
    selected.clear();
    if (drag.keep) drag.before.forEach((id) => selected.add(id));
    positionsIn(x0, y0, x1, y1).forEach((p) => selected.add(ids[p]));
    if (allBox) allBox.checked = false;
    showSelection();
  });
  window.addEventListener("pointerup", () => {
    if (!drag) return;
    dragged = drag.moved;
    band.hidden = true;
    drag = null;
    // A drag that ends outside the grid sends no click to clear the flag.
    setTimeout(() => { dragged = false; }, 0);
  });

  // --- Keyboard -----------------------------------------------------------------------------------
  function lineStep(pos, delta) {
    let i = posLine[pos] + delta;
    while (lines[i] && lines[i].head) i += delta;
    const line = lines[i];
    if (!line) return pos;
    return line.start + Math.min(posCol[pos], line.count - 1);
  }
  grid.addEventListener("keydown", (event) => {
    if (!ids.length || event.altKey) return;
    const pageLines = Math.max(1, Math.floor(grid.clientHeight / (cellW + CAPTION + GAP)));
    let to = null;
    switch (event.key) {
      case "ArrowRight": to = focus + 1; break;
      case "ArrowLeft": to = focus - 1; break;
      case "ArrowDown": to = lineStep(focus, 1); break;
      case "ArrowUp": to = lineStep(focus, -1); break;
      case "PageDown": to = lineStep(focus, pageLines); break;
      case "PageUp": to = lineStep(focus, -pageLines); break;
      case "Home": to = 0; break;
      case "End": to = ids.length - 1; break;
      case " ":
        if (!selectable) return;
        event.preventDefault();
        if (allBox) allBox.checked = false;
        toggle(focus);
        showSelection();
        return;
      case "Enter":
        event.preventDefault();
        window.location.assign(sampleUrl(ids[focus]));
        return;
      case "z":
        if (event.ctrlKey || event.metaKey) return;
        event.preventDefault();
        openLightbox(focus);
        return;
      case "Escape":
        if (selectable) { event.preventDefault(); clearAll(); }
        return;
      case "a":
        if (!selectable || !(event.ctrlKey || event.metaKey) || !allBox) return;
        event.preventDefault();
        allBox.checked = true;
        showSelection();
        return;
      default:
        return;
    }
    event.preventDefault();
    if (event.ctrlKey || event.metaKey) return;
    to = Math.max(0, Math.min(ids.length - 1, to));
    if (event.shiftKey && selectable) {
      if (anchor === null) anchor = focus;
      if (allBox) allBox.checked = false;
      selectRange(anchor, to, true);
      showSelection();
    }
    setFocus(to);
  });
  grid.addEventListener("focus", () => { if (ids.length) setFocus(focus); });

  // --- Lightbox -----------------------------------------------------------------------------------
  const box = document.getElementById("lightbox");
  const stage = document.getElementById("lightbox-stage");
  const picture = document.getElementById("lightbox-img");
  const view = { pos: 0, scale: 1, x: 0, y: 0 };
  function applyZoom() {
    picture.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
    box.dataset.scale = view.scale.toFixed(2);
    stage.classList.toggle("zoomed", view.scale > 1);
  }
  function zoomAt(factor, cx, cy) {
    const rect = stage.getBoundingClientRect();
    const px = (cx ?? rect.left + rect.width / 2) - rect.left - rect.width / 2;
    const py = (cy ?? rect.top + rect.height / 2) - rect.top - rect.height / 2;
    const scale = Math.max(1, Math.min(16, view.scale * factor));
    const k = scale / view.scale;
    // The point under the cursor stays where it is.
    view.x = px - (px - view.x) * k;
    view.y = py - (py - view.y) * k;
    view.scale = scale;
    if (scale === 1) { view.x = 0; view.y = 0; }
    applyZoom();
  }
  async function openLightbox(pos) {
    view.pos = pos;
    view.scale = 1; view.x = 0; view.y = 0;
    applyZoom();
    if (!box.open) box.showModal();
    const id = ids[pos];
    box.dataset.sample = String(id);
    const cell = await cellOf(id);
    if (view.pos !== pos || !cell) return;
    picture.src = cell.image || `${thumbBase}${id}/`;
    picture.alt = `${cell.ext}, labelled ${cell.label ?? "unlabelled"}`;
    document.getElementById("lightbox-title").textContent = `${cell.ext} · ${pos + 1} of ${ids.length.toLocaleString()}`;
    document.getElementById("lightbox-badges").replaceChildren(...badgesOf(cell));
    document.getElementById("lightbox-open").href = sampleUrl(id);
    const reasons = document.getElementById("lightbox-reasons");
    reasons.replaceChildren(...cell.reasons.map((r) => { const li = document.createElement("li"); li.textContent = r; return li; }));
    if (!cell.scored) { const li = document.createElement("li"); li.className = "muted"; li.textContent = "Not scored."; reasons.append(li); }
    else if (!cell.reasons.length) { const li = document.createElement("li"); li.className = "muted"; li.textContent = "Nothing was flagged about this sample."; reasons.append(li); }
  }
  function step(delta) {
    const to = view.pos + delta;
    if (to < 0 || to >= ids.length) return;
    setFocus(to);
    openLightbox(to);
  }
  document.getElementById("lightbox-prev").addEventListener("click", () => step(-1));
  document.getElementById("lightbox-next").addEventListener("click", () => step(1));
  document.getElementById("lightbox-in").addEventListener("click", () => zoomAt(1.5));
  document.getElementById("lightbox-out").addEventListener("click", () => zoomAt(1 / 1.5));
  document.getElementById("lightbox-reset").addEventListener("click", () => { view.scale = 1; view.x = 0; view.y = 0; applyZoom(); });
  document.getElementById("lightbox-close").addEventListener("click", () => box.close());
  box.addEventListener("close", () => grid.focus({ preventScroll: true }));
  box.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, select")) return;
    const keys = { ArrowRight: () => step(1), ArrowLeft: () => step(-1), "+": () => zoomAt(1.5), "=": () => zoomAt(1.5), "-": () => zoomAt(1 / 1.5), 0: () => { view.scale = 1; view.x = 0; view.y = 0; applyZoom(); } };
    const act = keys[event.key];
    if (act) { event.preventDefault(); event.stopPropagation(); act(); }
  });
  stage.addEventListener("wheel", (event) => {
    event.preventDefault();
    zoomAt(Math.exp(-event.deltaY * 0.0015), event.clientX, event.clientY);
  }, { passive: false });
  stage.addEventListener("dblclick", (event) => {
    if (view.scale > 1) { view.scale = 1; view.x = 0; view.y = 0; applyZoom(); } else zoomAt(3, event.clientX, event.clientY);
  });
  let pan = null;
  stage.addEventListener("pointerdown", (event) => {
    if (view.scale <= 1) return;
    event.preventDefault();
    pan = { x: event.clientX - view.x, y: event.clientY - view.y };
    stage.setPointerCapture(event.pointerId);
  });
  stage.addEventListener("pointermove", (event) => {
    if (!pan) return;
    view.x = event.clientX - pan.x;
    view.y = event.clientY - pan.y;
    applyZoom();
  });
  stage.addEventListener("pointerup", () => { pan = null; });
  // A click on the backdrop (outside the dialog's box) closes it.
  box.addEventListener("click", (event) => { if (event.target === box) box.close(); });

  start();
})();
