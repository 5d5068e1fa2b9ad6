"""Variants in a real browser: a batch of 4 is one card saying "4 variants" on the home grid
and the search page; the badge opens the record page's list of the four, each with its seed.
axe-core finds nothing serious; SEEDBANK_SHOTS=<folder> keeps the screenshots."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from PIL import Image as PILImage
from playwright.sync_api import Browser, expect

from generator.services.records import image_keywords_index
from tests.e2e.conftest import serious_violations, shot
from tests.factories import ImageFactory, ModelVersionFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

COLOURS = ["#c0392b", "#2874a6", "#229954", "#d4ac0d", "#7d3c98", "#ca6f1e"]


def _png(colour: str) -> ContentFile:
    buffer = io.BytesIO()
    PILImage.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="variant.png")


@pytest.mark.parametrize("viewport", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_a_batch_is_one_card_and_its_page_lists_the_four(
    live_server, media_root, tiny_sd_path, browser: Browser, viewport
):
    model = ModelVersionFactory()
    batch = [
        ImageFactory(prompt="a lighthouse in a storm, oil painting", seed=1000 + n,
                     batch_size=4, batch_index=n, model_version=model,
                     image_file=_png(COLOURS[n]))
        for n in range(4)
    ]  # fmt: skip
    others = [
        ImageFactory(prompt=f"a lighthouse at dawn, study {n}", model_version=model,
                     image_file=_png(COLOURS[4 + n % 2]))
        for n in range(3)
    ]  # fmt: skip
    image_keywords_index(image_ids=[image.pk for image in batch + others])
    width, height = viewport
    page = browser.new_page(viewport={"width": width, "height": height})

    page.goto(f"{live_server.url}/")
    expect(page.get_by_test_id("variants")).to_have_count(1)
    expect(page.get_by_test_id("variants")).to_have_text("4 variants")
    expect(page.locator(".grid .card")).to_have_count(4)  # the batch and the three others
    assert serious_violations(page) == []
    shot(page, f"variants-home-{width}.png")

    page.goto(f"{live_server.url}/search/?q=lighthouse&mode=keyword")
    expect(page.get_by_test_id("variants")).to_have_text("4 variants")
    expect(page.locator("#feed .card")).to_have_count(4)
    assert serious_violations(page) == []
    shot(page, f"variants-search-{width}.png")

    page.get_by_test_id("variants").click()
    listed = page.get_by_test_id("variants-list")
    expect(listed).to_be_visible()
    expect(listed.get_by_test_id("variant")).to_have_count(4)
    for image in batch:
        expect(listed).to_contain_text(f"seed {image.seed}")
    assert serious_violations(page) == []
    shot(page, f"variants-record-{width}.png")
    page.close()
