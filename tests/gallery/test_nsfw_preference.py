"""The NSFW preference: each signed-in user shows, blurs or hides records flagged NSFW (visitors
see them blurred), on the grids, record pages, search results and in the API."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from gallery.models import Collection, UserPreferences
from gallery.selectors import viewer_nsfw_mode
from gallery.services import collection_add_images, favourite_add, preferences_set
from generator.models import Image
from generator.services.records import image_keywords_index
from search.selectors import Neighbours, SearchHit
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(media_root, tiny_sd_path, user) -> tuple[Image, Image]:
    """A safe record and an NSFW one, both by `user`, both found by "lighthouse"."""
    safe = ImageFactory(prompt="a lighthouse at dawn", owner=user)
    flagged = ImageFactory(prompt="a lighthouse at dusk", owner=user, nsfw=True)
    image_keywords_index(image_ids=[safe.pk, flagged.pk])
    return safe, flagged


def card_of(body: str, image: Image) -> str | None:
    """The grid card linking to the record (its <li> tag and contents), if shown."""
    for card in re.findall(r'(<li class="card[^"]*">.*?</li>)', body, re.S):
        if f'href="/images/{image.pk}/"' in card:
            return card  # type: ignore[no-any-return]
    return None


def blurred(card: str | None) -> bool:
    assert card is not None
    return 'class="card nsfw"' in card and 'data-testid="nsfw-reveal"' in card


def signed_in(user, mode: str | None) -> Client:
    if mode is not None:
        preferences_set(user=user, nsfw=mode)
    client = Client()
    client.force_login(user)
    return client


def pages(user) -> list[str]:
    return ["/", "/?sort=likes", f"/users/{user.username}/", "/collections/picks/", "/favourites/",
            "/search/?q=lighthouse&mode=keyword"]  # fmt: skip


@pytest.fixture
def everywhere(records, staff_user, user) -> tuple[Image, Image]:
    """Both records in a public collection and in the user's favourites."""
    collection = Collection.objects.create(title="Picks", slug="picks", is_public=True)
    collection_add_images(actor=staff_user, collection=collection, images=records)
    for image in records:
        favourite_add(user=user, image=image)
    return records


def test_visitors_see_nsfw_records_blurred_with_a_way_to_reveal(client, records, user) -> None:
    safe, flagged = records
    for url in ("/", f"/users/{user.username}/", "/search/?q=lighthouse&mode=keyword"):
        body = client.get(url).content.decode()
        assert blurred(card_of(body, flagged)), url
        assert 'class="card"' in (card_of(body, safe) or ""), url
    page = client.get(f"/images/{flagged.pk}/").content.decode()
    assert 'class="hero-picture nsfw"' in page and 'data-testid="nsfw-reveal"' in page
    assert 'class="hero-picture"' in client.get(f"/images/{safe.pk}/").content.decode()


@pytest.mark.parametrize("mode", [None, "blur"])
def test_signed_in_users_blur_by_default(everywhere, user, mode) -> None:
    _safe, flagged = everywhere
    client = signed_in(user, mode)
    for url in pages(user):
        assert blurred(card_of(client.get(url).content.decode(), flagged)), url


def test_show_shows_them_plainly(everywhere, user) -> None:
    _safe, flagged = everywhere
    client = signed_in(user, "show")
    for url in pages(user):
        card = card_of(client.get(url).content.decode(), flagged)
        assert card is not None and 'class="card"' in card and "nsfw-reveal" not in card, url
    page = client.get(f"/images/{flagged.pk}/").content.decode()
    assert 'class="hero-picture"' in page and "nsfw-reveal" not in page


def test_hide_leaves_them_out_of_every_list(everywhere, user) -> None:
    safe, flagged = everywhere
    client = signed_in(user, "hide")
    for url in pages(user):
        body = client.get(url).content.decode()
        assert card_of(body, safe) is not None, url
        assert card_of(body, flagged) is None, url
    # Asking for NSFW only finds nothing rather than overriding the choice.
    only = client.get("/search/", {"q": "lighthouse", "mode": "keyword", "nsfw": "only"})
    assert card_of(only.content.decode(), flagged) is None
    # Its own page still opens (a link someone followed), without the picture.
    page = client.get(f"/images/{flagged.pk}/").content.decode()
    assert 'data-testid="nsfw-hidden"' in page and 'class="hero-picture' not in page
    assert 'href="/accounts/preferences/"' in page


def test_hide_leaves_them_out_of_the_similar_records(records, user, monkeypatch) -> None:
    safe, flagged = records

    def neighbours(*, image):
        return Neighbours(
            similar=[SearchHit(image=flagged, score=0.9)], near_duplicates=[], bound=0.97
        )

    monkeypatch.setattr("gallery.views.records.image_neighbours", neighbours)
    assert (
        f'href="/images/{flagged.pk}/"'
        in signed_in(user, "blur").get(f"/images/{safe.pk}/").content.decode()
    )
    assert (
        f'href="/images/{flagged.pk}/"'
        not in signed_in(user, "hide").get(f"/images/{safe.pk}/").content.decode()
    )


def test_the_preferences_page_stores_the_choice(records, user, english) -> None:
    client = signed_in(user, None)
    form = client.get("/accounts/preferences/").content.decode()
    assert re.search(r'value="blur"[^>]*checked', form)
    assert (
        'href="/accounts/preferences/"' in client.get(f"/users/{user.username}/").content.decode()
    )
    response = client.post("/accounts/preferences/", {"nsfw": "hide"})
    assert response.status_code == 302
    assert UserPreferences.objects.get(user=user).nsfw == "hide"
    assert "Preferences saved." in client.get(response["Location"]).content.decode()
    assert client.post("/accounts/preferences/", {"nsfw": "nude"}).status_code == 400
    assert UserPreferences.objects.get(user=user).nsfw == "hide"
    assert Client().get("/accounts/preferences/").status_code == 302  # sign in first


def test_the_choice_is_read_once_per_request(records, user, django_assert_max_num_queries):
    assert viewer_nsfw_mode(viewer=None) == "blur"
    preferences_set(user=user, nsfw="show")
    fresh = type(user).objects.get(pk=user.pk)
    with django_assert_max_num_queries(1):
        assert viewer_nsfw_mode(viewer=fresh) == "show"
        assert viewer_nsfw_mode(viewer=fresh) == "show"


# --- the API -----------------------------------------------------------------------------------


def test_api_leaves_nsfw_records_out_for_those_who_hide_them(records, user) -> None:
    safe, flagged = records
    search = {"q": "lighthouse", "mode": "keyword"}
    anonymous = Client().get("/api/v1/images", search).json()["results"]
    assert {item["id"]: item["nsfw"] for item in anonymous} == {safe.pk: False, flagged.pk: True}
    client = signed_in(user, "hide")
    assert [item["id"] for item in client.get("/api/v1/images", search).json()["results"]] == [
        safe.pk
    ]
    lexica = client.get("/api/v1/search", {"q": "lighthouse"}).json()["images"]
    assert str(flagged.pk) not in {item["id"] for item in lexica}
    assert client.get(f"/api/v1/images/{flagged.pk}").json()["nsfw"] is True  # asked by id


def test_api_preferences(records, user) -> None:
    assert Client().get("/api/v1/preferences").status_code == 401
    client = signed_in(user, None)
    assert client.get("/api/v1/preferences").json() == {"nsfw": "blur"}
    response = client.put("/api/v1/preferences", {"nsfw": "show"}, content_type="application/json")
    assert response.status_code == 200 and response.json() == {"nsfw": "show"}
    assert UserPreferences.objects.get(user=user).nsfw == "show"
    bad = client.put("/api/v1/preferences", {"nsfw": "maybe"}, content_type="application/json")
    assert bad.status_code == 400
