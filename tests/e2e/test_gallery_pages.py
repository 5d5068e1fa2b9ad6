"""The gallery as people use it, in a real browser (Debian chromium via Playwright): both
languages, infinite scroll over WebP grid previews, the lineage tree, the job page, keyboard use,
and axe-core's accessibility check on every main page."""

from __future__ import annotations

import io
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from PIL import Image as PILImage
from playwright.sync_api import Browser, Page, expect

from engine.recipe import Recipe
from generator.models import Image, RenderJob
from generator.services.records import image_store_pixels
from generator.services.render_jobs import render_job_create
from tests.e2e.conftest import wait_for
from tests.factories import ImageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ZH = "zh-CN"  # what a browser in China sends; Django maps it to zh-hans


def _png(index: int) -> bytes:
    """A 512×512 picture with detail (PNG compresses flat colour to nothing)."""
    noise = PILImage.effect_noise((512, 512), 40 + index).convert("RGB")
    tint = PILImage.new("RGB", (512, 512), (index * 7 % 255, 90, 200 - index * 5 % 200))
    buffer = io.BytesIO()
    PILImage.blend(noise, tint, 0.5).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def archive(media_root, tiny_sd_path) -> list[Image]:
    """30 public records with stored 512×512 pixels and their grid previews (24 per page)."""
    images = []
    for index in range(30):
        image = ImageFactory(prompt=f"a lighthouse at dusk, study {index}", width=512, height=512)
        image_store_pixels(image=image, png=_png(index), pixel_sha256=f"{index:064x}")
        images.append(image)
    return images


def _sign_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("main button[type=submit]").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def _wait_until(page: Page, expression: str, timeout: float = 30.0) -> None:
    """Poll a JavaScript expression (wait_for_function evaluates strings in the page, which the
    site's Content-Security-Policy forbids; evaluate() runs outside it)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        page.wait_for_timeout(100)


def _media_file(url: str) -> Path:
    return Path(settings.MEDIA_ROOT) / unquote(urlparse(url).path).removeprefix("/media/")


def test_gallery_grid_loads_webp_previews_and_scrolls_to_the_next_page(
    live_server, archive, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server.url + "/")
    cards = page.locator("#feed > li")
    first_page = "#feed > li:nth-child(-n+24)"
    # Bytes of one grid page: load every picture of the first page (lazy ones too) and weigh
    # what the browser chose from srcset against the full PNGs of the same records.
    page.evaluate(
        f"document.querySelectorAll('{first_page} img').forEach(i => i.loading = 'eager')"
    )
    _wait_until(
        page,
        f"Array.from(document.querySelectorAll('{first_page} img'))"
        ".every(i => i.complete && i.currentSrc)",
    )
    chosen = page.evaluate(
        f"Array.from(document.querySelectorAll('{first_page} img'), i => i.currentSrc)"
    )
    assert len(chosen) == 24
    assert all(src.endswith(".webp") for src in chosen), chosen[:3]
    preview_bytes = sum(_media_file(src).stat().st_size for src in chosen)
    shown = {image.pk: image for image in archive}
    ids = page.evaluate(
        # The cards' record links (a visitor's heart links to sign-in).
        f"Array.from(document.querySelectorAll('{first_page} a[href^=\"/images/\"]'), "
        "a => a.pathname.split('/')[2])"
    )
    png_bytes = sum(Path(shown[int(pk)].image_file.path).stat().st_size for pk in ids)
    print(f"\ngrid page of 24: previews {preview_bytes} bytes, full PNGs {png_bytes} bytes")
    assert preview_bytes * 4 < png_bytes
    # The page does not jump as pictures arrive: every <img> reserves its box.
    assert page.evaluate(
        "Array.from(document.querySelectorAll('#feed img')).every(i => i.getAttribute('width'))"
    )

    # The next page arrives as the end of the list comes near (800 px ahead of the viewport).
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    expect(cards).to_have_count(30)
    expect(page.locator("[data-feed-more]")).to_have_count(0)  # that was the last page
    assert "before=" in page.url  # the address follows the page reached
    page.close()


def test_search_results_scroll_to_their_second_page(live_server, archive, browser) -> None:
    from generator.services.records import image_keywords_index

    image_keywords_index(image_ids=[image.pk for image in archive])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server.url + "/search/?q=lighthouse&mode=keyword")
    results = page.locator("#feed > li")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    expect(results).to_have_count(30)
    assert "page=2" in page.url
    links = page.evaluate(
        "Array.from(document.querySelectorAll('#feed > li a[href^=\"/images/\"]'), a => a.href)"
    )
    assert len(set(links)) == 30  # no record twice (a visitor's hearts link to sign-in)
    page.close()


def test_the_interface_speaks_chinese_and_remembers_a_switch_to_english(
    live_server, archive, staff_user, model_version, browser: Browser
) -> None:
    context = browser.new_context(locale=ZH)
    page = context.new_page()
    base = live_server.url
    record = archive[0]
    page.goto(base + "/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_role("heading", name="最新配方")).to_be_visible()
    page.goto(f"{base}/images/{record.pk}/")
    expect(page.get_by_role("link", name="重混")).to_be_visible()
    page.goto(base + "/search/?q=lighthouse")
    expect(page.get_by_role("heading", name="“lighthouse”的图片")).to_be_visible()
    _sign_in(page, base, "grace", "pw-for-tests-2")
    page.goto(base + "/generate/")
    expect(page.get_by_role("heading", name="生成", exact=True)).to_be_visible()
    expect(page.get_by_label("提示词：", exact=True)).to_be_visible()
    job = render_job_create(
        owner=staff_user,
        recipe=Recipe(model_version_id=model_version.pk, prompt="一只红色的猫", steps=2),
    )
    page.goto(f"{base}/jobs/{job.pk}/")
    expect(page.locator(".job .status")).to_contain_text("状态：")
    expect(page.locator(".job-recipe")).to_contain_text("文生图")  # the engine's mode label
    expect(page.get_by_role("button", name="取消此任务")).to_be_visible()
    page.goto(base + "/staff/")
    expect(page.get_by_role("heading", name="管理仪表盘")).to_be_visible()

    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Staff dashboard")).to_be_visible()
    page.goto(base + "/")  # the choice outranks the browser's Accept-Language from now on
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Newest recipes")).to_be_visible()
    context.close()


def test_a_three_level_lineage_tree_with_what_changed(live_server, media_root, browser) -> None:
    root = ImageFactory(prompt="a red circle on a blue background", seed=1)
    child = ImageFactory(prompt="a green circle on a blue background", seed=1, parent=root)
    grandchild = ImageFactory(prompt="a green circle on a blue background", seed=2, parent=child)
    leaf = ImageFactory(
        prompt="a green square on a blue background", seed=2, scheduler="Euler", parent=grandchild
    )
    page = browser.new_page()
    page.goto(f"{live_server.url}/images/{root.pk}/")
    tree = page.get_by_test_id("lineage-tree")
    for level, record in enumerate((child, grandchild, leaf), start=1):
        nested = "ul > li " * level
        node = tree.locator(f"li[data-record='{root.pk}'] > {nested}".strip())
        expect(
            node.filter(has=page.locator(f"a[href='/images/{record.pk}/']")).first
        ).to_be_visible()
    edges = tree.get_by_test_id("lineage-edge")
    expect(edges.nth(0)).to_contain_text("red")
    expect(edges.nth(0)).to_contain_text("green")
    expect(edges.nth(1)).to_contain_text("1 → 2")
    expect(edges.nth(2)).to_contain_text("Euler")

    page.goto(f"{live_server.url}/images/{leaf.pk}/")  # from the leaf: its three ancestors
    expect(page.locator("[aria-current=page]")).to_have_text(f"#{leaf.pk} {leaf.prompt}")
    expect(page.get_by_test_id("lineage-node")).to_have_count(4)
    page.get_by_role("link", name="compare with parent").last.click()
    changed = page.get_by_test_id("changed-row")
    expect(changed.filter(has_text="Scheduler")).to_have_count(1)
    expect(page.locator("del", has_text="circle").first).to_be_visible()
    page.close()


def test_cancel_from_the_job_page(live_server, worker_process, model_version, user, browser):
    # Large enough to be still queued or rendering when the button is pressed (tiny weights).
    recipe = Recipe(
        model_version_id=model_version.pk,
        prompt="a slow one",
        steps=150,
        width=512,
        height=512,
        batch_size=4,
    )
    job = render_job_create(owner=user, recipe=recipe)
    page = browser.new_page()
    _sign_in(page, live_server.url, "ada", "pw-for-tests-1")
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    expect(page.locator("#job-prompt")).to_have_text("a slow one")
    seeds = page.locator("[data-job-images] .prompt")
    expect(seeds).to_have_count(4)  # each seed once
    page.get_by_role("button", name="Cancel this job").click()
    expect(page.get_by_test_id("job-status")).to_have_text("Cancelled")
    wait_for(lambda: RenderJob.objects.get(pk=job.pk).status == RenderJob.Status.CANCELLED)
    assert not Image.objects.filter(job=job, status=Image.Status.READY).exists()
    page.close()


def test_keyboard_alone_searches_and_paints_a_mask(live_server, archive, user, browser) -> None:
    page = browser.new_page()
    page.goto(live_server.url + "/")
    for _ in range(4):  # past "skip to content" and the brand link to the search box
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.type") == "search":
            break
    page.keyboard.type("lighthouse")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search/?q=lighthouse*")
    expect(page.get_by_role("heading", name="Images for “lighthouse”")).to_be_visible()

    _sign_in(page, live_server.url, "ada", "pw-for-tests-1")
    page.goto(f"{live_server.url}/generate/?init={archive[0].pk}")
    canvas = page.locator("[data-painter] canvas")
    canvas.focus()
    for key in ("ArrowLeft", "Space", "ArrowDown", "Space"):
        page.keyboard.press(key)
    painted = canvas.evaluate(
        "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v > 0)"
    )
    assert painted


AXE_PAGES = [
    "/",
    "/search/?q=lighthouse",
    "/images/{record}/",
    "/images/{record}/diff/{other}/",
    "/generate/",
    "/jobs/{job}/",
    "/staff/",
]


@pytest.mark.parametrize("language", ["en", ZH])
def test_no_serious_or_critical_accessibility_violations(
    live_server, archive, staff_user, model_version, browser, language
) -> None:
    job = render_job_create(
        owner=staff_user,
        recipe=Recipe(model_version_id=model_version.pk, prompt="an axe check", steps=2),
    )
    context = browser.new_context(locale=language)
    page = context.new_page()
    _sign_in(page, live_server.url, "grace", "pw-for-tests-2")
    axe = Axe()
    found = {}
    for path in AXE_PAGES:
        address = path.format(record=archive[0].pk, other=archive[1].pk, job=job.pk)
        page.goto(live_server.url + address)
        violations = axe.run(page).response["violations"]
        serious = [v for v in violations if v["impact"] in ("serious", "critical")]
        if serious:
            found[path] = [
                f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
                for v in serious
            ]
    context.close()
    assert not found, found
