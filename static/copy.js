// "Copy recipe": puts the JSON recipe on the clipboard. What the button then says comes from
// its data-copied-label / data-press-label, rendered in the page's language.
document.querySelectorAll("[data-copy]").forEach(function (button) {
  button.addEventListener("click", async function () {
    const source = document.querySelector(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(source.textContent);
      button.textContent = button.dataset.copiedLabel || "Copied";
    } catch (error) {
      window.getSelection().selectAllChildren(source);
      button.textContent = button.dataset.pressLabel || "Press Ctrl+C";
    }
  });
});
