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
