// Mask painter for inpainting: drag over the init image to paint the area to repaint. On
// submit the canvas becomes a black/white PNG in the hidden mask_data field.
(function () {
  const painter = document.querySelector("[data-painter]");
  if (!painter) return;
  const canvas = painter.querySelector("canvas");
  const form = painter.closest("form");
  const context = canvas.getContext("2d");
  let painting = false;
  let painted = false;
  const brush = Math.max(4, canvas.width / 12);

  function at(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width,
            (event.clientY - box.top) * canvas.height / box.height];
  }
  function paint(event) {
    if (!painting) return;
    const [x, y] = at(event);
    context.fillStyle = "rgba(255, 255, 255, 1)";
    context.beginPath();
    context.arc(x, y, brush, 0, 2 * Math.PI);
    context.fill();
    painted = true;
  }
  canvas.addEventListener("pointerdown", (event) => { painting = true; paint(event); });
  canvas.addEventListener("pointermove", paint);
  window.addEventListener("pointerup", () => { painting = false; });
  document.querySelector("[data-painter-clear]").addEventListener("click", () => {
    context.clearRect(0, 0, canvas.width, canvas.height);
    painted = false;
  });
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
