"""Favourites and the NSFW preference in a real browser: a visitor sees an NSFW card blurred and
reveals it with a click; a signed-in user presses a heart (a plain form POST) and sees the
count change on the card and on the record page. axe-core finds nothing serious;
SEEDBANK_SHOTS=<folder> keeps the screenshots."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from PIL import Image as PILImage
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import serious_violations, shot
from tests.factories import ImageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _png(colour: str) -> ContentFile:
    buffer = io.BytesIO()
    PILImage.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="card.png")


def _filter(page: Page, selector: str) -> str:
    return str(page.locator(selector).evaluate("element => getComputedStyle(element).filter"))


def test_a_visitor_sees_nsfw_blurred_and_a_user_likes_a_record(
    live_server, media_root, tiny_sd_path, browser: Browser, django_user_model
):
    safe = ImageFactory(prompt="a lighthouse at dawn", image_file=_png("#2874a6"))
    flagged = ImageFactory(prompt="a lighthouse at dusk", nsfw=True, image_file=_png("#c0392b"))
    django_user_model.objects.create_user(username="liker", password="liker-password-1")
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    # A visitor: the NSFW card is blurred until its label is clicked; hearts only count.
    page.goto(f"{live_server.url}/")
    nsfw_card = page.locator(".card.nsfw")
    expect(nsfw_card).to_have_count(1)
    expect(nsfw_card.locator(f'a[href="/images/{flagged.pk}/"]')).to_have_count(1)
    assert "blur" in _filter(page, ".card.nsfw img")
    assert _filter(page, f'.card:not(.nsfw) a[href="/images/{safe.pk}/"] img') == "none"
    expect(page.locator(f"#like-{safe.pk} [data-testid=like-count]")).to_have_text("0 likes")
    expect(page.get_by_test_id("like")).to_have_count(0)  # no form without an account
    assert serious_violations(page) == []
    shot(page, "favourites-visitor-blurred.png")
    nsfw_card.get_by_test_id("nsfw-reveal").click()
    assert _filter(page, ".card.nsfw img") == "none"
    expect(page).to_have_url(f"{live_server.url}/")  # revealed in place, not opened

    # Signed in: press the heart on the safe card; the page comes back with the count.
    page.goto(f"{live_server.url}/accounts/login/?next=/")
    page.locator("input[name=username]").fill("liker")
    page.locator("input[name=password]").fill("liker-password-1")
    page.locator("main button[type=submit]").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    heart = page.locator(f"#like-{safe.pk} [data-testid=like]")
    expect(heart).to_have_attribute("aria-pressed", "false")
    heart.click()
    expect(page.locator(f"#like-{safe.pk} [data-testid=like-count]")).to_have_text("1 like")
    expect(page.locator(f"#like-{safe.pk} [data-testid=like]")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert page.url.endswith(f"/#like-{safe.pk}")
    assert serious_violations(page) == []
    shot(page, "favourites-liked-card.png")

    # On the record page: the same count, and pressing again takes the like back.
    page.goto(f"{live_server.url}/images/{safe.pk}/")
    count = page.locator(f"#like-{safe.pk} [data-testid=like-count]")
    expect(count).to_have_text("1 like")
    page.locator(f"#like-{safe.pk} [data-testid=like]").click()
    expect(count).to_have_text("0 likes")

    # Most liked first, and the favourites page (from the user's page) lists it.
    page.locator(f"#like-{safe.pk} [data-testid=like]").click()
    page.goto(f"{live_server.url}/?sort=likes")
    expect(page.locator(".grid .card").first.locator("a").first).to_have_attribute(
        "href", f"/images/{safe.pk}/"
    )
    page.goto(f"{live_server.url}/users/liker/")
    page.get_by_test_id("favourites-link").click()
    expect(page.locator(".grid .card")).to_have_count(1)
    shot(page, "favourites-page.png")
    page.close()
