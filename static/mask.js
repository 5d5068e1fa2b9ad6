// Mask painter for inpainting: drag over the init image to paint the area to repaint, or, from
// the keyboard, move the brush with the arrow keys and paint with Space. On submit the canvas
// becomes a black/white PNG in the hidden mask_data field.
(function () {
  const painter = document.querySelector("[data-painter]");
  if (!painter) return;
  const canvas = painter.querySelector("canvas");
  const ring = painter.querySelector(".brush");
  const form = painter.closest("form");
  const context = canvas.getContext("2d");
  let painting = false;
  let painted = false;
  const brush = Math.max(4, canvas.width / 12);
  const cursor = { x: canvas.width / 2, y: canvas.height / 2 };

  function at(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width,
            (event.clientY - box.top) * canvas.height / box.height];
  }
  function dab(x, y) {
    context.fillStyle = "rgba(255, 255, 255, 1)";
    context.beginPath();
    context.arc(x, y, brush, 0, 2 * Math.PI);
    context.fill();
    painted = true;
  }
  function clear() {
    context.clearRect(0, 0, canvas.width, canvas.height);
    painted = false;
  }
  // The keyboard brush is drawn as a ring over the canvas (in CSS pixels of the shown size).
  function showRing() {
    const scale = canvas.getBoundingClientRect().width / canvas.width;
    ring.hidden = false;
    ring.style.width = ring.style.height = `${2 * brush * scale}px`;
    ring.style.left = `${(cursor.x - brush) * scale}px`;
    ring.style.top = `${(cursor.y - brush) * scale}px`;
  }

  canvas.addEventListener("pointerdown", (event) => { painting = true; dab(...at(event)); });
  canvas.addEventListener("pointermove", (event) => { if (painting) dab(...at(event)); });
  window.addEventListener("pointerup", () => { painting = false; });
  canvas.addEventListener("focus", showRing);
  canvas.addEventListener("blur", () => { ring.hidden = true; });
  canvas.addEventListener("keydown", (event) => {
    const step = (event.shiftKey ? 2 : 0.5) * brush;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (event.key in moves) {
      const [dx, dy] = moves[event.key];
      cursor.x = Math.min(canvas.width, Math.max(0, cursor.x + dx));
      cursor.y = Math.min(canvas.height, Math.max(0, cursor.y + dy));
      showRing();
    } else if (event.key === " " || event.key === "Enter") {
      dab(cursor.x, cursor.y);
    } else if (event.key === "Delete" || event.key === "Backspace") {
      clear();
    } else {
      return; // Tab and everything else keep their usual meaning
    }
    event.preventDefault();
  });
  document.querySelector("[data-painter-clear]").addEventListener("click", clear);
  form.addEventListener("submit", () => {
    if (!painted) return;
    const mask = document.createElement("canvas");
    mask.width = canvas.width;
    mask.height = canvas.height;
    const ink = mask.getContext("2d");
    ink.fillStyle = "black";
    ink.fillRect(0, 0, mask.width, mask.height);
    ink.drawImage(canvas, 0, 0);
    form.querySelector("[name=mask_data]").value = mask.toDataURL("image/png");
    form.querySelector("[name=mode]").value = "inpaint";
  });
})();
