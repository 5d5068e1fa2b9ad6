"""The search box's filters in a real browser: the help popover opens from the keyboard without
JavaScript's help, a filter narrows the grid, an unknown field reads as an error, and axe-core
finds nothing serious on the page with the popover open."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from engine.search_query import FIELDS
from tests.e2e.conftest import serious_violations, shot
from tests.factories import ImageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_help_popover_filters_and_errors(live_server, media_root, browser: Browser, viewport):
    target = ImageFactory(prompt="a red kite over the sea", seed=1010, steps=40)
    ImageFactory(prompt="a red kite over the sea", seed=7, steps=20)
    width, height = viewport
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(live_server.url + "/search/?q=" + "seed%3A1010")
    expect(page.locator(".grid .card")).to_have_count(1)
    assert f"/images/{target.pk}/" in page.locator(".grid .card a").first.get_attribute("href")

    summary = page.locator("[data-testid=query-help] summary")
    summary.focus()
    page.keyboard.press("Enter")
    body = page.locator(".query-help-body")
    expect(body).to_be_visible()
    for example in FIELDS.values():
        expect(body.get_by_text(example, exact=True)).to_be_visible()
    box = body.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1
    assert serious_violations(page) == []
    shot(page, f"search-help-{width}.png")

    page.goto(live_server.url + "/search/?q=colour%3Ared+kite")
    expect(page.get_by_test_id("query-error")).to_contain_text("colour:")
    shot(page, f"search-error-{width}.png")
    page.close()
