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

// The phone header's menu button opens and closes the panel of links.
document.addEventListener("click", (event) => {
  const button = event.target.closest("#menu-button");
  if (!button) return;
  const open = button.getAttribute("aria-expanded") !== "true";
  button.setAttribute("aria-expanded", String(open));
  document.getElementById("topbar").classList.toggle("open", open);
});

// Header dropdowns (<details>) close on a click elsewhere, on Escape, and when another opens.
function closeDropdowns(except) {
  document.querySelectorAll("details.dropdown[open]").forEach((menu) => {
    if (menu !== except) menu.removeAttribute("open");
  });
}
document.addEventListener("click", (event) => {
  closeDropdowns(event.target.closest("details.dropdown"));
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const open = document.querySelector("details.dropdown[open]");
  if (!open) return;
  open.removeAttribute("open");
  open.querySelector("summary").focus();
});

// Forms marked data-confirm ask first in a <dialog>: leave a team, remove a member, revoke a
// key. The form submits only when "Confirm" closes the dialog. The dialog is built on first
// use, so pages without such a form carry no extra markup.
function confirmDialog() {
  let dialog = document.getElementById("confirm-dialog");
  if (dialog) return dialog;
  dialog = document.createElement("dialog");
  dialog.id = "confirm-dialog";
  dialog.className = "confirm-dialog";
  dialog.setAttribute("aria-labelledby", "confirm-title");
  const form = document.createElement("form");
  form.method = "dialog";
  const title = document.createElement("h2");
  title.id = "confirm-title";
  const text = document.createElement("p");
  text.id = "confirm-text";
  const row = document.createElement("div");
  row.className = "row";
  const cancel = document.createElement("button");
  Object.assign(cancel, { type: "submit", value: "cancel", className: "btn", textContent: "Cancel" });
  cancel.autofocus = true;
  const ok = document.createElement("button");
  Object.assign(ok, { type: "submit", value: "confirm", className: "btn btn-danger-solid", id: "confirm-ok" });
  row.append(cancel, ok);
  form.append(title, text, row);
  dialog.append(form);
  document.body.append(dialog);
  return dialog;
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("form[data-confirm]") || form.dataset.confirmed) return;
  event.preventDefault();
  const dialog = confirmDialog();
  dialog.querySelector("#confirm-title").textContent = form.dataset.confirmTitle || "Are you sure?";
  dialog.querySelector("#confirm-text").textContent = form.dataset.confirm;
  dialog.querySelector("#confirm-ok").textContent = form.dataset.confirmButton || "Confirm";
  dialog.returnValue = "";
  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "confirm") return;
    form.dataset.confirmed = "true";
    form.requestSubmit();
  }, { once: true });
  dialog.showModal();
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
