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

// The fast model has no 1080p: its radio is disabled while fast is chosen (the server refuses
// it anyway); a 1080p choice moves to 720p so the live price stays truthful.
document.addEventListener("change", (event) => {
  const el = event.target;
  if (!el.matches('input[name="model"]')) return;
  const hd = el.form && el.form.querySelector('input[name="output_resolution"][value="1080p"]');
  if (!hd) return;
  const fast = el.value === "seedance2-fast";
  hd.disabled = fast;
  if (fast && hd.checked) {
    const fallback = el.form.querySelector('input[name="output_resolution"][value="720p"]');
    fallback.checked = true;
    // The preview already left with 1080p; this change replaces that request (hx-sync).
    fallback.dispatchEvent(new Event("change", { bubbles: true }));
  }
});
