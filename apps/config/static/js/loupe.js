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
