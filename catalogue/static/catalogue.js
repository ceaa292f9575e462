// Copy buttons for API examples; the page works without JavaScript.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const code = document.getElementById(button.dataset.copy);
  if (code && navigator.clipboard) navigator.clipboard.writeText(code.textContent);
});
