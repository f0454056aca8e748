// Small progressive enhancements; the pages work without them. No inline script anywhere,
// so the content security policy can forbid it.
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el.matches("select[data-autosubmit]")) el.form.requestSubmit();
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  event.preventDefault();
  const value = button.dataset.copy.startsWith("#")
    ? document.querySelector(button.dataset.copy).value
    : button.dataset.copy;
  try {
    await navigator.clipboard.writeText(value);
    button.dataset.copied = "true";
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; delete button.dataset.copied; }, 1500);
  } catch (_) {
    window.prompt("Copy this:", value);
  }
});
