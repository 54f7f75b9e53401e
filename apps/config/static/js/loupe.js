// Small behaviours shared by every page. No inline scripts: the CSP allows only files from 'self'.
document.addEventListener("click", (event) => {
  const menu = document.querySelector("details.usermenu[open]");
  if (menu && !menu.contains(event.target)) menu.removeAttribute("open");
});
// htmx swaps error responses (400) too: they carry the form with its field messages.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status === 400) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
// Upload progress for file forms posted by htmx.
document.addEventListener("htmx:xhr:progress", (event) => {
  const bar = event.target.querySelector && event.target.querySelector("progress.upload");
  if (bar && event.detail.lengthComputable) {
    bar.hidden = false;
    bar.value = Math.round((100 * event.detail.loaded) / event.detail.total);
  }
});
// Keyboard shortcuts, declared by the page itself: a link with data-key is followed, a button
// with data-vote-key is pressed, a field with data-focus-key takes the focus (data-key-label
// names what each does). The arrows step like j / k. None acts while the user types in a field
// or while a dialog is open; ? lists them all.
const ARROWS = { ArrowRight: "j", ArrowLeft: "k" };
function keyTarget(key) {
  const quoted = CSS.escape(key);
  return document.querySelector(
    `a[data-key="${quoted}"], #vote-form button[data-vote-key="${quoted}"], #label-form button[data-vote-key="${quoted}"], [data-focus-key="${quoted}"]`,
  );
}
document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.metaKey || event.ctrlKey || event.altKey) return;
  if (event.target.closest("input, textarea, select, [contenteditable]") || document.querySelector("dialog[open]")) return;
  if (event.key === "?") { event.preventDefault(); openShortcuts(); return; }
  const target = keyTarget(ARROWS[event.key] || event.key);
  if (!target || target.closest("[hidden]") || target.disabled) return;
  event.preventDefault();
  if (target.dataset.focusKey !== undefined) target.focus();
  else target.click();
});
// The list of shortcuts: read from the page each time it opens, so it is always the page's own.
function shortcutLabel(el) {
  if (el.dataset.keyLabel) return el.dataset.keyLabel;
  const copy = el.cloneNode(true);
  copy.querySelectorAll("kbd").forEach((k) => k.remove());
  const text = copy.textContent.replace(/[←→]/g, "").trim();
  return text || el.getAttribute("aria-label") || (el.labels && el.labels[0] ? el.labels[0].textContent.trim() : "");
}
function openShortcuts() {
  const dialog = document.getElementById("shortcuts");
  if (!dialog || dialog.open) return;
  const list = dialog.querySelector("#shortcuts-page");
  const rows = [];
  const seen = new Set();
  document.querySelectorAll("main a[data-key], main button[data-vote-key], main [data-focus-key]").forEach((el) => {
    const key = el.dataset.key || el.dataset.voteKey || el.dataset.focusKey;
    if (seen.has(key) || el.closest("[hidden]") || el.disabled) return;
    seen.add(key);
    const arrow = Object.keys(ARROWS).find((a) => ARROWS[a] === key && el.matches("a"));
    rows.push([arrow ? [key, arrow === "ArrowRight" ? "→" : "←"] : [key], shortcutLabel(el)]);
  });
  // Keys a page's own script handles, described by data-key-doc (the gallery's arrows, space…).
  document.querySelectorAll("main [data-key-doc]").forEach((el) => {
    rows.push([[el.dataset.keyDoc], el.dataset.keyLabel || ""]);
  });
  list.replaceChildren(...rows.map(([keys, label]) => {
    const row = document.createElement("div");
    const dt = document.createElement("dt");
    keys.forEach((k, i) => {
      if (i) dt.append(" or ");
      const kbd = document.createElement("kbd");
      kbd.textContent = k;
      dt.append(kbd);
    });
    const dd = document.createElement("dd");
    dd.textContent = label;
    row.append(dt, dd);
    return row;
  }));
  dialog.querySelector("#shortcuts-none").hidden = rows.length > 0;
  dialog.showModal();
}
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-shortcuts]")) openShortcuts();
});
// A select that navigates: the sample table's sort order.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-navigate]");
  if (select) window.location.assign(select.dataset.navigate + encodeURIComponent(select.value));
});
// The sample table's selection: tick rows, the whole page, or every sample that matches.
function updateSelection(form) {
  const boxes = [...form.querySelectorAll('input[name="ids"]')];
  const all = form.querySelector("#select-all-matching");
  const count = form.querySelector("#selected-count");
  if (!count) return;
  const ticked = boxes.filter((b) => b.checked).length;
  count.textContent = all && all.checked ? "All matching" : String(ticked);
  form.querySelector("#bulkbar").classList.toggle("active", ticked > 0 || (all && all.checked));
}
document.addEventListener("change", (event) => {
  const form = event.target.closest("form#bulk");
  if (!form) return;
  if (event.target.id === "pick-page") {
    form.querySelectorAll('input[name="ids"]').forEach((b) => { b.checked = event.target.checked; });
  }
  if (event.target.id === "select-all-matching") {
    form.querySelectorAll('input[name="ids"], #pick-page').forEach((b) => { b.checked = event.target.checked; });
  }
  if (event.target.name === "ids" && !event.target.checked) {
    const all = form.querySelector("#select-all-matching");
    if (all) all.checked = false;
  }
  updateSelection(form);
});
// A review queue: a relabel button carries its label (its key, a, 1-9, r, u, votes: see above).
document.addEventListener("click", (event) => {
  const button = event.target.closest("#vote-form button[data-label]");
  if (button) button.form.elements.label.value = button.dataset.label;
});
// A select with data-shows reveals the parts of its form marked data-show-for="NAME=VALUE" for
// its value, and disables the others so that only the chosen settings are sent.
function applyShows(form) {
  form.querySelectorAll("[data-show-for]").forEach((part) => {
    const [name, value] = part.dataset.showFor.split("=");
    const select = form.querySelector(`select[data-shows][name="${name}"]`);
    const shown = !select || select.value === value;
    part.hidden = !shown;
    if (part.tagName === "FIELDSET") part.disabled = !shown;
    else part.querySelectorAll("input, select, textarea").forEach((el) => { el.disabled = !shown; });
  });
}
document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-shows]")) applyShows(event.target.form);
});
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form").forEach((form) => {
    if (form.querySelector("select[data-shows]")) applyShows(form);
  });
});
// A "Go back" button (error pages) returns to the previous page; inline scripts are not allowed.
document.addEventListener("click", (event) => {
  if (event.target.closest("button[data-back]")) history.back();
});
// @mentions in a comment box: typing @ and the start of a name offers the project's members
// (from the section's data-mentions address); arrows and Enter or Tab, or a click, insert
// "@username ", the form the server reads to notify them. Escape closes the list.
const MENTION_BEFORE_CARET = /(?:^|[^\w@])@([\w.+-]*)$/;
const mention = { box: null, list: null, start: 0, active: 0, members: [], asked: 0 };
function mentionClose() {
  if (mention.list) mention.list.remove();
  if (mention.box) { mention.box.removeAttribute("aria-activedescendant"); mention.box.removeAttribute("aria-controls"); }
  mention.list = null;
  mention.members = [];
}
function mentionShowActive() {
  mention.list.querySelectorAll("[role=option]").forEach((option, i) => {
    option.setAttribute("aria-selected", String(i === mention.active));
    if (i === mention.active) mention.box.setAttribute("aria-activedescendant", option.id);
  });
}
function mentionInsert(username) {
  const box = mention.box;
  const text = `@${username} `;
  box.setRangeText(text, mention.start, box.selectionStart, "end");
  mentionClose();
  box.focus();
}
function mentionRender(box) {
  if (!mention.members.length) { mentionClose(); return; }
  if (!mention.list) {
    mention.list = document.createElement("ul");
    mention.list.id = "mention-list";
    mention.list.className = "mentions";
    mention.list.setAttribute("role", "listbox");
    mention.list.setAttribute("aria-label", "Members to mention");
    box.after(mention.list);
    box.setAttribute("aria-controls", mention.list.id);
  }
  mention.list.replaceChildren(...mention.members.map((m, i) => {
    const option = document.createElement("li");
    option.id = `mention-${i}`;
    option.setAttribute("role", "option");
    option.dataset.username = m.username;
    const name = document.createElement("strong");
    name.textContent = `@${m.username}`;
    option.append(name);
    if (m.name) { const full = document.createElement("span"); full.className = "muted"; full.textContent = ` ${m.name}`; option.append(full); }
    return option;
  }));
  mention.active = Math.min(mention.active, mention.members.length - 1);
  mentionShowActive();
}
document.addEventListener("input", async (event) => {
  const box = event.target;
  const section = box.closest && box.closest("[data-mentions]");
  if (!section || box.tagName !== "TEXTAREA") return;
  const found = MENTION_BEFORE_CARET.exec(box.value.slice(0, box.selectionStart));
  if (!found) { mentionClose(); return; }
  if (mention.box !== box) mentionClose();
  mention.box = box;
  mention.start = box.selectionStart - found[1].length - 1;
  const asked = ++mention.asked;
  const response = await fetch(`${section.dataset.mentions}?q=${encodeURIComponent(found[1])}`, {
    headers: { Accept: "application/json" },
  });
  if (asked !== mention.asked || !response.ok) return; // a later keystroke has asked again
  mention.members = (await response.json()).members;
  mention.active = 0;
  mentionRender(box);
});
document.addEventListener("keydown", (event) => {
  if (!mention.list || event.target !== mention.box) return;
  const n = mention.members.length;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    mention.active = (mention.active + (event.key === "ArrowDown" ? 1 : n - 1)) % n;
    mentionShowActive();
  } else if (event.key === "Enter" || event.key === "Tab") {
    mentionInsert(mention.members[mention.active].username);
  } else if (event.key === "Escape") {
    mentionClose();
  } else return;
  event.preventDefault();
  event.stopPropagation();
});
// mousedown, not click: the box keeps the focus and its caret.
document.addEventListener("mousedown", (event) => {
  const option = event.target.closest("#mention-list [role=option]");
  if (!option) return;
  event.preventDefault();
  mentionInsert(option.dataset.username);
});
document.addEventListener("focusout", (event) => {
  if (event.target === mention.box) mentionClose();
});
// A file dropped on a form marked data-drop goes into its file field, as if chosen.
function dropZone(event) {
  const zone = event.target.closest && event.target.closest("form[data-drop]");
  return zone && event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files") ? zone : null;
}
document.addEventListener("dragover", (event) => {
  const zone = dropZone(event);
  if (!zone) return;
  event.preventDefault();
  zone.classList.add("dropping");
});
document.addEventListener("dragleave", (event) => {
  const zone = dropZone(event);
  if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dropping");
});
document.addEventListener("drop", (event) => {
  const zone = dropZone(event);
  if (!zone || !event.dataTransfer.files.length) return;
  event.preventDefault();
  zone.classList.remove("dropping");
  const input = zone.querySelector("input[type=file]");
  input.files = event.dataTransfer.files;
  input.dispatchEvent(new Event("change", { bubbles: true }));
});
// Once the preview keeps the chosen file, the import form sends its roles, not the file again.
document.addEventListener("htmx:afterSettle", () => {
  const input = document.querySelector("#import-form input[type=file]");
  if (input && input.value && document.querySelector("#import-preview input[name=upload]")) {
    input.value = "";
  }
});
