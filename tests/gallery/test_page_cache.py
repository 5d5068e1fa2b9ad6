"""Anonymous pages are cached for a few seconds; signed-in users and CSRF-bearing pages never."""

from __future__ import annotations

import io
import time

import pytest
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory, override_settings
from PIL import Image as PILImage

from gallery.page_cache import anonymous_page_cache
from tests.factories import ImageFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root", "tiny_sd_path")]


@pytest.fixture(autouse=True)
def page_cache():
    with override_settings(SEEDBANK_PAGE_CACHE_SECONDS=1):
        yield


def test_anonymous_home_is_served_from_the_cache_until_it_expires(client) -> None:
    first = ImageFactory(prompt="the first record")
    assert client.get("/").headers["X-Page-Cache"] == "miss"
    second = ImageFactory(prompt="a record made after the page was cached")
    cached = client.get("/")
    assert cached.headers["X-Page-Cache"] == "hit"
    assert first.prompt in cached.content.decode() and second.prompt not in cached.content.decode()
    time.sleep(1.1)
    fresh = client.get("/")
    assert fresh.headers["X-Page-Cache"] == "miss" and second.prompt in fresh.content.decode()


def test_hiding_a_record_reaches_anonymous_pages_within_the_cache_time(client) -> None:
    image = ImageFactory()
    assert client.get(f"/images/{image.pk}/").status_code == 200
    image.hidden = True
    image.save(update_fields=["hidden"])
    time.sleep(1.1)
    assert client.get(f"/images/{image.pk}/").status_code == 404


def test_signed_in_users_never_get_a_cached_page(client, user) -> None:
    ImageFactory()
    Client().get("/")  # an anonymous visitor fills the cache
    client.force_login(user)
    response = client.get("/")
    assert "X-Page-Cache" not in response.headers
    assert user.get_username() in response.content.decode()


def test_a_page_holding_a_csrf_token_is_never_stored() -> None:
    calls = []

    @anonymous_page_cache
    def with_form(request):
        calls.append(1)
        return HttpResponse(f"<input value='{get_token(request)}'>")

    factory = RequestFactory()
    for _ in range(2):
        request = factory.get("/form/")
        request.user = type("Anonymous", (), {"is_authenticated": False})()
        with_form(request)
    assert len(calls) == 2


def test_errors_and_other_queries_are_not_shared(client) -> None:
    ImageFactory()
    assert client.get("/images/999999/").status_code == 404
    assert "X-Page-Cache" not in client.get("/images/999999/").headers
    client.get("/search/?q=cat")
    assert client.get("/search/?q=dog").headers["X-Page-Cache"] == "miss"


def test_image_search_upload_needs_no_csrf_token() -> None:
    """The search page carries no token (so it can be cached); its upload form must still work
    from a browser that enforces CSRF checks."""
    buffer = io.BytesIO()
    PILImage.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "query.png"
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/search/")
    assert "csrfmiddlewaretoken" not in page.content.decode()
    assert browser.post("/search/", {"image": buffer}).status_code == 200


def test_a_view_handing_over_to_another_stores_the_page_once(client, monkeypatch) -> None:
    from django.core.cache import cache

    ImageFactory(prompt="a fox")
    writes: list[str] = []
    real_set = cache.set
    monkeypatch.setattr(
        cache, "set", lambda key, *a, **k: (writes.append(key), real_set(key, *a, **k))
    )
    assert client.get("/?q=fox").headers["X-Page-Cache"] == "miss"
    assert len([key for key in writes if key.startswith("page:")]) == 1
    assert client.get("/?q=fox").headers["X-Page-Cache"] == "hit"
