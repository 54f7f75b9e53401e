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
// j / k step through samples on a sample page, unless the user is typing.
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, textarea, select") || event.metaKey || event.ctrlKey || event.altKey) return;
  const link = document.querySelector(`a[data-key="${event.key}"]`);
  if (link) link.click();
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
// A review queue: a relabel button carries its label; keys vote (a, 1-9, r, u) and c comments.
document.addEventListener("click", (event) => {
  const button = event.target.closest("#vote-form button[data-label]");
  if (button) button.form.elements.label.value = button.dataset.label;
});
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, textarea, select") || event.metaKey || event.ctrlKey || event.altKey) return;
  const vote = document.querySelector(
    `#vote-form button[data-vote-key="${event.key}"], #label-form button[data-vote-key="${event.key}"]`,
  );
  if (vote) { event.preventDefault(); vote.click(); return; }
  const arrows = { ArrowRight: "j", ArrowLeft: "k" };
  if (arrows[event.key]) { const link = document.querySelector(`a[data-key="${arrows[event.key]}"]`); if (link) link.click(); }
  if (event.key === "c") { const box = document.querySelector("#comment-body"); if (box) { event.preventDefault(); box.focus(); } }
});
// The vendor labelling page: s moves to the skip reason.
document.addEventListener("keydown", (event) => {
  if (event.key !== "s" || event.target.closest("input, textarea, select") || event.metaKey || event.ctrlKey) return;
  const reason = document.querySelector("#skip-reason");
  if (reason) { event.preventDefault(); reason.focus(); }
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
