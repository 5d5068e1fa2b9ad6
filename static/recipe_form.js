// The recipe form follows its model and its mode. Each model option carries what a recipe with
// it starts from (data-sampling: scheduler, steps, guidance, size), the words it knows and
// example prompts; fields only some modes read carry data-modes. Without scripts every field
// shows and the server fills blank fields from the chosen model, so the form works the same.
(function () {
  "use strict";
  const form = document.querySelector("form.recipe-form");
  if (!form) return;

  // Strength, init image and mask show only in the modes that read them.
  const mode = form.elements.namedItem("mode");
  function showForMode() {
    for (const input of form.querySelectorAll("[data-modes]")) {
      const box = input.closest(".field");
      if (box) box.hidden = !input.dataset.modes.split(" ").includes(mode.value);
    }
  }
  if (mode) {
    mode.addEventListener("change", showForMode);
    showForMode();
  }

  const select = form.elements.namedItem("model_version");
  if (!select || !select.options) return;
  const prompt = form.elements.namedItem("prompt");
  const chosen = () => select.options[select.selectedIndex] || { dataset: {} };
  function parsed(text, fallback) {
    try { return JSON.parse(text || ""); } catch (error) { return fallback; }
  }
  function same(a, b) {
    const x = Number(a), y = Number(b);
    return a !== "" && !isNaN(x) && !isNaN(y) ? x === y : String(a) === String(b);
  }

  const hint = form.querySelector("[data-vocabulary-hint]");
  function showVocabulary() {
    if (!hint) return;
    const text = chosen().dataset.vocabulary || "";
    hint.querySelector("[data-vocabulary-words]").textContent = text;
    hint.hidden = !text;
  }

  const examples = form.querySelector("[data-example-box]");
  function showExamples() {
    if (!examples || !prompt) return;
    const list = examples.querySelector("[data-example-list]");
    list.replaceChildren();
    for (const text of parsed(chosen().dataset.examples, [])) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary example";
      button.textContent = text;
      button.addEventListener("click", function () {
        prompt.value = text;
        prompt.focus();
      });
      list.append(button, " ");
    }
    examples.hidden = !list.children.length;
  }

  // A new model brings its own sampling: a field still holding what the last model offered
  // (or blank) takes the new model's value; one the person changed keeps it. Only where the
  // form asks for it (the generate page): a remix keeps its record's values.
  let offered = parsed(chosen().dataset.sampling, {});
  select.addEventListener("change", function () {
    const next = parsed(chosen().dataset.sampling, {});
    if (form.hasAttribute("data-follow-model")) {
      for (const [name, value] of Object.entries(next)) {
        const input = form.elements.namedItem(name);
        if (!input || !("value" in input)) continue;
        if (input.value === "" || !(name in offered) || same(input.value, offered[name])) {
          input.value = String(value);
        }
      }
    }
    offered = next;
    showVocabulary();
    showExamples();
  });
  showVocabulary();
  showExamples();
})();
