"""Screenshots of Seedbank's main pages in English and Chinese, for the README.

    make screenshots            # against a running `make run` (http://127.0.0.1:8000)
    python tools/screenshots.py --url URL --out docs/screenshots --user demo --password …

Signs in as the demo staff user, opens each page in a browser whose language is English, then
Chinese (Accept-Language, as a visitor's browser sends it), waits for every picture (lazy ones
too) and writes docs/screenshots/<language>/<page>.jpg. Submitting the generate form queues one
small render, so the job page shows a real job.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urljoin

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.chromium import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = {"en": "en-GB", "zh-hans": "zh-CN"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("SEEDBANK_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--user", default="demo")
    parser.add_argument(
        "--password", default=os.environ.get("SEEDBANK_DEMO_PASSWORD", "seedbank-demo")
    )
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for language, locale in LANGUAGES.items():
            context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            written = shoot_all(page, args.url, args.out / language, args.user, args.password)
            print(f"{language}: {len(written)} screenshots in {args.out / language}")
            context.close()
        browser.close()
    return 0


def shoot_all(page: Page, base: str, out: Path, user: str, password: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []

    def shoot(name: str, path: str | None = None) -> None:
        if path is not None:
            page.goto(urljoin(base, path))
        _load_every_picture(page)
        target = out / f"{name}.jpg"
        page.screenshot(path=target, full_page=True, type="jpeg", quality=70)
        shots.append(target)

    shoot("home", "/")
    shoot("search", "/search/?q=red+circle")
    records = page.eval_on_selector_all(
        "#feed > li a", "links => links.map(a => a.getAttribute('href'))"
    )
    shoot("record", records[0])
    remix = _a_record_with_lineage(page, base, records)
    if remix is not None:
        shoot("lineage", remix)
        page.get_by_test_id("lineage-edge").locator("a").first.click()
        shoot("diff")
    page.goto(urljoin(base, "/accounts/login/"))
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    page.locator("main button[type=submit]").click()
    page.wait_for_load_state()
    shoot("generate", "/generate/")
    page.locator("textarea[name=prompt]").fill("a small red star on a yellow background")
    page.locator("main form.recipe-form button[type=submit]").last.click()
    page.wait_for_url("**/jobs/**")
    page.wait_for_timeout(1500)  # a few steps in
    shoot("job")
    shoot("staff", "/staff/")
    return shots


def _a_record_with_lineage(page: Page, base: str, records: list[str]) -> str | None:
    """The first record on the home page whose lineage shows more than itself."""
    for path in records:
        page.goto(urljoin(base, path))
        if page.get_by_test_id("lineage-node").count() >= 2:
            return path
    return None


def _load_every_picture(page: Page) -> None:
    page.evaluate(
        "document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')"
    )
    # Polled from here: wait_for_function evaluates a string in the page, which the site's
    # Content-Security-Policy forbids.
    for _ in range(300):
        if page.evaluate("Array.from(document.images).every(i => i.complete)"):
            return
        page.wait_for_timeout(100)


if __name__ == "__main__":
    sys.exit(main())
