// Dashboard enhancements: the live prompt character count. Prices, the request preview and
// card updates come from the server through htmx; nothing here computes money.
function updateCount(textarea) {
  const target = document.querySelector(textarea.dataset.charcount);
  if (!target) return;
  const limit = Number(textarea.dataset.charlimit || 0);
  const length = textarea.value.length;
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
