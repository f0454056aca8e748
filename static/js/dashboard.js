// Dashboard enhancements: the live prompt character count. Prices, the request preview and
// card updates come from the server through htmx; nothing here computes money.
function updateCount(textarea) {
  const target = document.querySelector(textarea.dataset.charcount);
  if (!target) return;
  const limit = Number(textarea.dataset.charlimit || 0);
  // What the server counts: characters (code points, not UTF-16 units) once trimmed.
  const length = [...textarea.value.trim()].length;
  const count = target.querySelector("[data-count]") || target;
  count.textContent = String(length);
  target.classList.toggle("over-limit", limit > 0 && length > limit);
  target.classList.toggle("near-limit", limit > 0 && length <= limit && length > limit * 0.9);
}

document.addEventListener("input", (event) => {
  if (event.target.matches("textarea[data-charcount]")) updateCount(event.target);
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("textarea[data-charcount]").forEach(updateCount);
});

// Ctrl+Enter (⌘+Enter on a Mac) in a prompt sends its form, unless the page has turned the
// form's button off (the preview says the budget would refuse it).
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  const field = event.target;
  if (!field.matches("textarea") || !field.form) return;
  const button = field.form.querySelector("button[type=submit]:not([formaction])");
  event.preventDefault();
  if (button && button.disabled) return;
  field.form.requestSubmit(button || undefined);
});
