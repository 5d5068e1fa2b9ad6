// Infinite scroll. A list ends with a plain "next page" link ([data-feed-more]); when it comes
// near the viewport this fetches that page, appends its cards to #feed, moves the link on and
// puts the page's URL in the address bar. Without JavaScript (or on error) the link still works.
(function () {
  const feed = document.getElementById("feed");
  const more = document.querySelector("[data-feed-more]");
  const status = document.querySelector("[data-feed-status]");
  if (!feed || !more || !("IntersectionObserver" in window)) return;
  let loading = false;

  async function loadNext() {
    const link = more.querySelector("a[rel=next]");
    if (!link || loading) return;
    loading = true;
    try {
      const response = await fetch(link.href, { headers: { Accept: "text/html" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const cards = Array.from(page.querySelectorAll("#feed > li"));
      feed.append(...cards.map((card) => document.adoptNode(card)));
      history.replaceState(history.state, "", link.href);
      const following = page.querySelector("[data-feed-more]");
      if (status) status.textContent = more.dataset.loadedLabel;
      if (following) {
        more.replaceChildren(...Array.from(following.childNodes).map((n) => document.adoptNode(n)));
        // Re-observing reports at once whether the new link is still in view (a short page).
        observer.unobserve(more);
        observer.observe(more);
      } else {
        observer.disconnect();
        more.remove();
      }
    } catch (error) {
      observer.disconnect(); // the plain link stays for the reader to follow
      if (status) status.textContent = more.dataset.failedLabel;
    } finally {
      loading = false;
    }
  }

  const observer = new IntersectionObserver(
    (entries) => { if (entries.some((entry) => entry.isIntersecting)) loadNext(); },
    { rootMargin: "800px 0px" },
  );
  observer.observe(more);
})();
