// Shared page behaviour (no inline scripts: the CSP forbids them).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// A button with data-check-all="<selector>" ticks every checkbox it selects.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-check-all]");
  if (!button) return;
  document.querySelectorAll(button.dataset.checkAll).forEach((box) => { box.checked = true; });
});
