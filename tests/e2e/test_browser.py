"""A real browser (Debian chromium via Playwright) through the loop: home, search, open a
record, Remix, watch the rerun finish, and read its "bit-identical" verdict."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from engine.recipe import Recipe
from generator.models import Image, RenderJob
from generator.services.render_jobs import render_job_create
from search.models import ImageEmbedding
from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def rendered_image(owner, model_version, prompt: str, seed: int) -> Image:
    job = render_job_create(
        owner=owner,
        recipe=Recipe(model_version_id=model_version.pk, prompt=prompt, seed=seed, steps=10),
    )
    wait_for(lambda: RenderJob.objects.get(pk=job.pk).is_finished)
    image = Image.objects.get(job=job)
    assert image.status == Image.Status.READY
    wait_for(lambda: ImageEmbedding.objects.filter(image=image).exists())
    return image


def test_search_open_remix_shows_bit_identical(
    live_server, worker_process, model_version, user, browser: Browser
):
    image = rendered_image(user, model_version, "一只猫坐在窗台上看雨 watercolor", seed=7)
    other = rendered_image(user, model_version, "a steampunk airship above London", seed=8)

    page = browser.new_page()
    page.goto(live_server.url + "/")
    expect(page.locator(".grid .card")).to_have_count(2)

    page.get_by_label("Search").fill("cat on a windowsill")
    page.get_by_role("button", name="Search").click()
    # The random tiny CLIP's text→image cosines sit under the default relevance bound: the page
    # says so and links to every match.
    expect(page.get_by_test_id("hidden-count")).to_have_text("2 weaker matches hidden")
    page.get_by_test_id("show-all").click()
    # Each card says why it matched in words, its scores in the label's tooltip.
    relevance = page.get_by_test_id("relevance").first
    expect(relevance).to_have_text("Close in meaning")
    expect(relevance).to_have_attribute("title", re.compile(r"score [\d.]+ · cosine [\d.-]+"))
    expect(page.locator(f'a[href="/images/{image.pk}/"]')).to_be_visible()
    expect(page.locator(f'a[href="/images/{other.pk}/"]')).to_be_visible()

    page.locator(f'a[href="/images/{image.pk}/"]').click()
    expect(page.locator("h1.prompt-full")).to_have_text(image.prompt)
    expect(page.get_by_test_id("pixel-sha256")).to_have_text(image.pixel_sha256)

    page.get_by_role("link", name="Remix").click()
    # Anonymous visitors are sent to sign in first, then back to the remix form.
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("pw-for-tests-1")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Prompt:", exact=True)).to_have_value(image.prompt)
    page.get_by_role("button", name="Remix").click()

    expect(page.get_by_test_id("verdict")).to_have_text("bit-identical", timeout=90_000)
    expect(page.get_by_test_id("rerun-image")).to_be_visible()
    natural_width = page.get_by_test_id("rerun-image").evaluate("img => img.naturalWidth")
    assert natural_width == image.width
    page.close()
