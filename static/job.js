// A job page while its job runs: polls the status, moves the progress bar and the queue place,
// and shows each image as soon as it is stored. A reproduction or a restore (or any job that
// failed or was cancelled) reloads once it ends, so the server renders the verdict, the image or
// the reason. Every text shown comes from the page's data- attributes, in the reader's language.
(function () {
  const job = document.querySelector(".job[data-status-url]");
  if (!job || job.dataset.finished === "1") return;
  const bar = job.querySelector("progress");
  const step = job.querySelector("[data-testid=job-step]");
  const total = job.querySelector("[data-testid=job-total]");
  const status = job.querySelector("[data-testid=job-status]");
  const queue = job.querySelector("[data-testid=job-queue]");
  const cancel = job.querySelector("[data-testid=cancel-form]");
  const grid = job.querySelector("[data-job-images]");

  function statusLabel(code) {
    const key = "label" + code.charAt(0).toUpperCase() + code.slice(1);
    return status.dataset[key] || code;
  }

  // The running jobs count as ahead (place.ahead includes them), as the server writes it.
  function queueText(place) {
    let text = place.ahead === 0
      ? queue.dataset.next
      : place.ahead === 1
        ? queue.dataset.aheadOne
        : queue.dataset.aheadMany.replace("%(ahead)s", place.ahead);
    if (place.running) text += queue.dataset.rendering.replace("%(running)s", place.running);
    if (place.estimate_seconds !== null) {
      text += ", " + queue.dataset.starts.replace("%(seconds)s", Math.round(place.estimate_seconds));
    }
    return text;
  }

  function showImages(images) {
    if (!grid) return;
    for (const image of images) {
      const card = grid.querySelector(`[data-image-id="${image.id}"]`);
      const placeholder = card && card.querySelector(".placeholder");
      if (!image.src || !placeholder) continue;
      const link = document.createElement("a");
      link.href = image.url;
      const picture = document.createElement("img");
      picture.src = image.src;
      picture.alt = grid.dataset.alt || "";
      picture.dataset.testid = "result-image";
      link.append(picture);
      placeholder.replaceWith(link);
    }
  }

  async function poll() {
    try {
      const response = await fetch(job.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const data = await response.json();
        bar.max = data.progress.total || 1;
        bar.value = data.progress.step;
        step.textContent = data.progress.step;
        if (total) total.textContent = data.progress.total;
        status.textContent = statusLabel(data.status);
        if (queue) {
          queue.hidden = !data.queue;
          if (data.queue) queue.textContent = queueText(data.queue);
        }
        showImages(data.images);
        if (["done", "failed", "cancelled"].includes(data.status)) {
          if (data.status !== "done" || job.dataset.kind !== "render") {
            window.location.reload();
          } else {
            if (cancel) cancel.remove();
            const heading = job.querySelector("h1[data-done-heading]");
            if (heading) heading.textContent = heading.dataset.doneHeading;
            const records = job.querySelector("[data-testid=job-records]");
            if (records) records.hidden = false;
          }
          return;
        }
      }
    } catch (error) {
      // A missed poll is harmless: try again on the next tick.
    }
    setTimeout(poll, 500);
  }
  setTimeout(poll, 300);
})();
