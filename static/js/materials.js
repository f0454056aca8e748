// The new-video form's materials: pick from the library into the first/last frame or the
// references, reorder, remove, upload by drop, and chips that insert @image1-style names.
// The hidden inputs are what the server reads; it checks everything again.
(() => {
  const picker = document.getElementById("materials-picker");
  if (!picker) return;
  const form = picker.closest("form");

  const changed = () => {
    numberReferences();
    form.dispatchEvent(new Event("change", { bubbles: true }));
  };

  const chooseMode = (mode) => {
    const radio = form.querySelector(`input[name="mode"][value="${mode}"]`);
    if (radio && !radio.checked) radio.checked = true;
  };

  const chosenItem = (card, name) => {
    const li = document.createElement("li");
    li.className = "chosen";
    li.dataset.id = card.dataset.id;
    li.dataset.kind = card.dataset.kind;
    const input = Object.assign(document.createElement("input"), { type: "hidden", name, value: card.dataset.id });
    li.append(input);
    if (card.dataset.thumbnail) {
      li.append(Object.assign(document.createElement("img"), { src: card.dataset.thumbnail, alt: "", width: 64 }));
    } else {
      li.append(Object.assign(document.createElement("span"), { className: "material-icon", textContent: card.dataset.kind }));
    }
    li.append(Object.assign(document.createElement("span"), { className: "material-name", textContent: card.dataset.name }));
    li.append(Object.assign(document.createElement("span"), { className: "reference-tag" }));
    for (const [label, attr, value] of [["↑", "move", "-1"], ["↓", "move", "1"], ["×", "remove", ""]]) {
      const button = Object.assign(document.createElement("button"), { type: "button", className: "btn btn-small", textContent: label });
      button.dataset[attr] = value;
      li.append(button);
    }
    return li;
  };

  const numberReferences = () => {
    const counts = {};
    const chips = document.getElementById("reference-chips");
    chips.replaceChildren();
    for (const li of picker.querySelectorAll('[data-slot="references"] .chosen')) {
      const kind = li.dataset.kind;
      counts[kind] = (counts[kind] || 0) + 1;
      const name = `@${kind}${counts[kind]}`;
      li.querySelector(".reference-tag").textContent = name;
      const chip = Object.assign(document.createElement("button"), { type: "button", className: "chip", textContent: name });
      chip.dataset.insert = name;
      chips.append(chip);
    }
  };

  const use = (card, slotName) => {
    const slot = picker.querySelector(`[data-slot="${slotName}"]`);
    if (!slot.dataset.kinds.split(" ").includes(card.dataset.kind)) return;
    const already = slot.querySelector(`.chosen[data-id="${card.dataset.id}"]`);
    if (already) return;
    const items = slot.querySelectorAll(".chosen");
    if (Number(slot.dataset.max) === 1) items.forEach((li) => li.remove());
    slot.append(chosenItem(card, slotName));
    chooseMode(slotName === "references" ? "reference" : "keyframe");
    changed();
  };

  picker.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.use) {
      use(button.closest(".material-card"), button.dataset.use);
    } else if (button.dataset.move) {
      const li = button.closest(".chosen");
      const sibling = button.dataset.move === "-1" ? li.previousElementSibling : li.nextElementSibling;
      if (sibling && sibling.classList.contains("chosen")) {
        button.dataset.move === "-1" ? sibling.before(li) : sibling.after(li);
        changed();
      }
    } else if (button.hasAttribute("data-remove")) {
      button.closest(".chosen").remove();
      changed();
    } else if (button.dataset.insert) {
      const prompt = form.querySelector('textarea[name="prompt"]');
      const at = prompt.selectionStart ?? prompt.value.length;
      const text = `${button.dataset.insert} `;
      prompt.value = prompt.value.slice(0, at) + text + prompt.value.slice(prompt.selectionEnd ?? at);
      prompt.focus();
      prompt.selectionStart = prompt.selectionEnd = at + text.length;
      prompt.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });

  const addCard = (material) => {
    const grid = document.getElementById("library-grid");
    if (grid.querySelector(`[data-id="${material.id}"]`)) return grid.querySelector(`[data-id="${material.id}"]`);
    const li = document.createElement("li");
    li.className = "material-card";
    Object.assign(li.dataset, { id: material.id, kind: material.kind, name: material.name, thumbnail: material.thumbnail || "" });
    if (material.thumbnail) li.append(Object.assign(document.createElement("img"), { src: material.thumbnail, alt: "", width: 80 }));
    else li.append(Object.assign(document.createElement("span"), { className: "material-icon", textContent: material.kind }));
    li.append(Object.assign(document.createElement("span"), { className: "material-name", textContent: material.name }));
    const actions = Object.assign(document.createElement("span"), { className: "material-actions" });
    const uses = material.kind === "image" ? [["First", "first_frame"], ["Last", "last_frame"], ["Reference", "references"]] : [["Reference", "references"]];
    for (const [label, slot] of uses) {
      const button = Object.assign(document.createElement("button"), { type: "button", className: "btn btn-small", textContent: label });
      button.dataset.use = slot;
      actions.append(button);
    }
    li.append(actions);
    grid.prepend(li);
    return li;
  };

  const upload = async (files) => {
    const error = document.getElementById("material-upload-error");
    error.hidden = true;
    for (const file of files) {
      const data = new FormData();
      data.append("file", file);
      data.append("csrfmiddlewaretoken", form.querySelector('[name="csrfmiddlewaretoken"]').value);
      const response = await fetch(picker.dataset.uploadUrl, { method: "POST", body: data, headers: { Accept: "application/json" } });
      const answer = await response.json().catch(() => ({ message: `Upload failed (HTTP ${response.status}).` }));
      if (!response.ok) {
        error.textContent = answer.message;
        error.hidden = false;
        continue;
      }
      const card = addCard(answer.material);
      // A dropped image starts the video unless a first frame is already chosen.
      const mode = form.querySelector('input[name="mode"]:checked');
      if (mode && mode.value === "reference") use(card, "references");
      else if (card.dataset.kind === "image" && !picker.querySelector('[data-slot="first_frame"] .chosen')) use(card, "first_frame");
    }
  };

  const drop = document.getElementById("material-drop");
  const input = document.getElementById("material-file");
  if (input) input.addEventListener("change", () => { upload([...input.files]); input.value = ""; });
  if (drop) {
    drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("dragging"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("dragging");
      upload([...event.dataTransfer.files]);
    });
  }
  numberReferences();
})();
