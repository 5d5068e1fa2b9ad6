"""A first visit to the home page (issue #29), as the demo leaves it: at 390×844 and 1280×900, in
English and Chinese, a visitor reads the introduction, its example searches work, the demo's
featured collections show, and on a phone the grid still starts on the first screen. The page
scrolls only down and axe-core finds nothing serious. SEEDBANK_SHOTS=<folder> keeps a
first-screen and a full-page screenshot of each."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, expect

from gallery.demo import DEMO_MODEL_PROMPT_INDEXES, DEMO_PROMPTS, DEMO_REMIX_PROMPTS, DEMO_REMIXES
from gallery.management.commands.seed_demo import DEMO_USERNAME
from gallery.services import staff_user_ensure
from generator.services.records import image_keywords_index, image_store_pixels
from tests.e2e.conftest import SHOTS, serious_violations, shot
from tests.e2e.test_screens import LANGUAGES, VIEWPORTS, WIDTH, _png
from tests.factories import ImageFactory, ModelVersionFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_gallery(media_root, tiny_sd_path) -> None:
    """The demo's records (pictures of noise, not rendered) and its featured collections."""
    user = staff_user_ensure(username=DEMO_USERNAME, password="pw-for-tests-9")
    base, outline, blend = (ModelVersionFactory() for _ in range(3))
    records = [(prompt, base, None) for prompt in DEMO_PROMPTS]
    records += [
        (DEMO_PROMPTS[i], m, None) for m in (outline, blend) for i in DEMO_MODEL_PROMPT_INDEXES
    ]
    records += [(p, base, i) for (i, _, _), p in zip(DEMO_REMIXES, DEMO_REMIX_PROMPTS, strict=True)]
    made = []
    for index, (prompt, model, parent) in enumerate(records):
        image = ImageFactory(prompt=prompt, model_version=model, owner=user, width=64, height=64,
                             parent=None if parent is None else made[parent])  # fmt: skip
        image_store_pixels(image=image, png=_png(index % 12, size=64), pixel_sha256=f"{index:064x}")
        made.append(image)
    image_keywords_index(image_ids=[image.pk for image in made])
    call_command("seed_demo", stdout=io.StringIO())


def test_a_first_visit_on_a_phone_and_a_wide_screen(
    live_server, demo_gallery, browser: Browser
) -> None:
    problems: dict[str, list[str]] = {}
    for language, locale in LANGUAGES.items():
        for width, height in VIEWPORTS:
            key = f"home-first-visit-{language}-{width}"
            context = browser.new_context(
                locale=locale, viewport={"width": width, "height": height}
            )
            page = context.new_page()
            page.goto(live_server.url + "/")
            intro = page.get_by_test_id("intro")
            expect(intro).to_be_visible()
            expect(intro.get_by_test_id("intro-search")).to_have_count(3)
            expect(page.locator(".collections .card.featured")).to_have_count(3)
            found = []
            scroll_width, inner_width = page.evaluate(WIDTH)
            if scroll_width > inner_width:
                found.append(f"{scroll_width} px wide in {inner_width}")
            found += serious_violations(page)
            # The introduction stays short, and the grid's first row starts on the first
            # screen (a phone sees the pictures without scrolling past a wall of text).
            box = intro.bounding_box()
            assert box is not None
            if box["height"] > (200 if width < 600 else 120):
                found.append(f"introduction {box['height']:.0f} px tall")
            card = page.locator("#feed .card").first.bounding_box()
            assert card is not None
            if card["y"] > height * 0.75:
                found.append(f"the grid starts at {card['y']:.0f} px of {height}")
            if SHOTS:
                page.screenshot(path=str(Path(SHOTS) / f"{key}-screen.png"))
            shot(page, f"{key}.png")
            if found:
                problems[key] = found

            # An example search leads to results.
            intro.get_by_test_id("intro-search").first.click()
            page.wait_for_url("**/search/?q=*")
            expect(page.locator("#feed .card").first).to_be_visible()
            context.close()
    assert not problems, "\n".join(f"{key}: {found}" for key, found in problems.items())
