// Polls a job's status while it runs, moving the progress bar; reloads once it finishes so the
// server renders the final images or verdict.
(function () {
  const job = document.querySelector(".job[data-status-url]");
  if (!job || job.dataset.finished === "1") return;
  const bar = job.querySelector("progress");
  const step = job.querySelector("[data-testid=job-step]");
  const status = job.querySelector("[data-testid=job-status]");
  const queue = job.querySelector("[data-testid=job-queue]");
  async function poll() {
    try {
      const response = await fetch(job.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const data = await response.json();
        bar.max = data.progress.total || 1;
        bar.value = data.progress.step;
        step.textContent = data.progress.step;
        status.textContent = data.status;
        if (queue) {
          queue.hidden = !data.queue;
          if (data.queue) {
            const wait = data.queue.estimate_seconds;
            queue.textContent = `${data.queue.ahead} job${data.queue.ahead === 1 ? "" : "s"} ahead` +
              (wait === null ? "" : `, starts in about ${Math.round(wait)} s`);
          }
        }
        if (["done", "failed", "cancelled"].includes(data.status)) {
          window.location.reload();
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
