"""Favourites: the heart on cards and record pages (a plain POST form), the count, most liked
first in the gallery and in search, the favourites page, and the API's like/unlike."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from gallery.models import Favourite, ImageLikes
from gallery.selectors import favourites_page, most_liked_page
from gallery.services import favourite_add, favourite_remove, favourite_toggle
from generator.models import Image
from generator.services.records import image_keywords_index
from tests.factories import ImageFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(media_root, tiny_sd_path):
    return media_root


def like_counts(body: str) -> list[str]:
    return re.findall(r'data-testid="like-count">([^<]*)<', body)


def hearts_pressed(body: str) -> list[str]:
    return re.findall(r'aria-pressed="(true|false)"', body)


def test_the_heart_toggles_a_like_and_goes_back_to_the_page(client, media, user, english):
    image = ImageFactory()
    client.force_login(user)
    response = client.post(f"/images/{image.pk}/like/", {"next": "/?before=x"})
    assert response.status_code == 302
    assert response["Location"] == f"/?before=x#like-{image.pk}"
    body = client.get(f"/images/{image.pk}/").content.decode()
    assert like_counts(body) == ["1 like"] and hearts_pressed(body) == ["true"]
    assert 'name="csrfmiddlewaretoken"' in body

    client.post(f"/images/{image.pk}/like/", {"next": "/"})
    body = client.get(f"/images/{image.pk}/").content.decode()
    assert like_counts(body) == ["0 likes"] and hearts_pressed(body) == ["false"]
    assert ImageLikes.objects.get(pk=image.pk).count == 0


def test_the_heart_never_sends_anyone_to_another_site(client, media, user) -> None:
    image = ImageFactory()
    client.force_login(user)
    response = client.post(f"/images/{image.pk}/like/", {"next": "https://evil.example/"})
    assert response["Location"] == f"/images/{image.pk}/"


def test_the_heart_needs_the_csrf_token_and_a_signed_in_user(media, user) -> None:
    image = ImageFactory()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(f"/images/{image.pk}/like/").status_code == 403
    anonymous = Client()
    response = anonymous.post(f"/images/{image.pk}/like/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not Favourite.objects.exists()


def test_visitors_see_the_count_and_a_sign_in_link_without_a_token(client, media, english):
    image = ImageFactory()
    for liker in UserFactory.create_batch(2):
        favourite_add(user=liker, image=image)
    for url in ("/", f"/images/{image.pk}/"):
        body = client.get(url).content.decode()
        assert like_counts(body) == ["2 likes"], url
        assert "csrfmiddlewaretoken" not in body  # the anonymous page stays cacheable
        assert "/accounts/login/?next=" in body


def test_hidden_and_missing_records_cannot_be_liked(client, media, user) -> None:
    hidden = ImageFactory(hidden=True)
    client.force_login(user)
    assert client.post(f"/images/{hidden.pk}/like/").status_code == 404
    assert client.post("/images/99999999999999999999999/like/").status_code == 404
    assert not Favourite.objects.exists()


def test_liking_twice_is_one_like_and_unliking_never_goes_below_zero(media, user) -> None:
    image = ImageFactory()
    assert favourite_add(user=user, image=image) is True
    assert favourite_add(user=user, image=image) is False
    assert ImageLikes.objects.get(pk=image.pk).count == 1
    assert favourite_remove(user=user, image=image) is True
    assert favourite_remove(user=user, image=image) is False
    assert ImageLikes.objects.get(pk=image.pk).count == 0
    assert favourite_toggle(user=user, image=image) is True
    assert favourite_toggle(user=user, image=image) is False


def test_likes_are_rate_limited_like_other_posts(client, media, user, settings) -> None:
    settings.SEEDBANK_RATE_LIKE_PER_MINUTE = 2
    image = ImageFactory()
    client.force_login(user)
    assert [client.post(f"/images/{image.pk}/like/").status_code for _ in range(3)] == [
        302,
        302,
        429,
    ]


def _liked(counts: list[int]) -> list[Image]:
    """Records liked by that many users each (in creation order, the last newest)."""
    images = ImageFactory.create_batch(len(counts))
    likers = UserFactory.create_batch(max(counts or [0]))
    for image, count in zip(images, counts, strict=True):
        for liker in likers[:count]:
            favourite_add(user=liker, image=image)
    return images


def test_most_liked_walks_every_record_once_liked_first(media) -> None:
    images = _liked([1, 3, 0, 2, 0, 1, 0])
    ImageFactory(hidden=True)
    seen, cursor = [], None
    for _ in range(10):
        page = most_liked_page(cursor=cursor, page_size=2)
        seen += [image.pk for image in page.images]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    a, b, c, d, e, f, g = (image.pk for image in images)
    # Most liked first, the newer first among equals; then the rest, newest first.
    assert seen == [b, d, f, a, g, e, c]


def test_the_home_page_sorts_by_likes_and_pages_on(client, media, settings, english) -> None:
    settings.SEEDBANK_GALLERY_PAGE_SIZE = 2
    images = _liked([2, 0, 3])
    body = client.get("/", {"sort": "likes"}).content.decode()
    assert "Most liked" in body and 'aria-current="page" data-testid="sort-likes"' in body
    order = [
        int(pk) for pk in re.findall(r'<li class="card[^"]*">\s*<a href="/images/(\d+)/', body)
    ]
    assert order == [images[2].pk, images[0].pk]
    assert like_counts(body) == ["3 likes", "2 likes"]
    following = re.search(r'href="([^"]*)" rel="next"', body)
    assert following and "sort=likes" in following.group(1)
    rest = client.get(following.group(1).replace("&amp;", "&")).content.decode()
    assert f'href="/images/{images[1].pk}/"' in rest and like_counts(rest) == ["0 likes"]


def test_search_orders_the_relevant_results_by_likes(client, media, english) -> None:
    # Other prompts: one recipe but the seed would be one card (variants).
    plain, loved, liked = (
        ImageFactory(prompt=f"a lighthouse {when}") for when in ("at dawn", "at dusk", "at noon")
    )
    ImageFactory(prompt="a teapot")  # not relevant: never listed, however liked
    image_keywords_index(image_ids=Image.objects.values_list("pk", flat=True))
    for count, image in ((3, loved), (1, liked)):
        for liker in UserFactory.create_batch(count):
            favourite_add(user=liker, image=image)
    for teapot_liker in UserFactory.create_batch(5):
        favourite_add(user=teapot_liker, image=Image.objects.get(prompt="a teapot"))
    body = client.get(
        "/search/", {"q": "lighthouse", "mode": "keyword", "sort": "likes"}
    ).content.decode()
    order = [
        int(pk) for pk in re.findall(r'<li class="card[^"]*">\s*<a href="/images/(\d+)/', body)
    ]
    assert order == [loved.pk, liked.pk, plain.pk]
    assert like_counts(body) == ["3 likes", "1 like", "0 likes"]
    assert "a teapot" not in body
    assert 'value="likes" selected' in body  # the order is a field of the search form


def test_the_favourites_page_lists_what_you_like_last_liked_first(client, media, user, english):
    first, second, hidden = ImageFactory.create_batch(3)
    favourite_add(user=user, image=first)
    favourite_add(user=user, image=second)
    favourite_add(user=user, image=hidden)
    Image.objects.filter(pk=hidden.pk).update(hidden=True)
    favourite_add(user=UserFactory(), image=ImageFactory())  # someone else's
    client.force_login(user)
    mine = client.get(f"/users/{user.username}/").content.decode()
    assert 'href="/favourites/"' in mine
    body = client.get("/favourites/").content.decode()
    order = [
        int(pk) for pk in re.findall(r'<li class="card[^"]*">\s*<a href="/images/(\d+)/', body)
    ]
    assert order == [second.pk, first.pk]
    assert hearts_pressed(body) == ["true", "true"]
    assert Client().get("/favourites/").status_code == 302  # signed in only


def test_favourites_page_by_keyset(media, user) -> None:
    images = ImageFactory.create_batch(5)
    for image in images:
        favourite_add(user=user, image=image)
    seen, cursor = [], None
    for _ in range(5):
        page = favourites_page(user=user, cursor=cursor, page_size=2)
        seen += [image.pk for image in page.images]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [image.pk for image in reversed(images)]
    assert favourites_page(user=user, cursor="garbage", page_size=2).images  # starts over


def test_signed_in_grids_read_likes_in_a_fixed_number_of_queries(
    client, media, user, django_assert_max_num_queries
) -> None:
    for image in ImageFactory.create_batch(30):
        favourite_add(user=user, image=image)
    client.force_login(user)
    client.get("/")
    # Session, user, the page (likes joined in), the viewer's hearts, their NSFW choice,
    # the collections: however many cards.
    with django_assert_max_num_queries(7):
        body = client.get("/").content.decode()
    assert hearts_pressed(body).count("true") == 24


# --- the API -----------------------------------------------------------------------------------


def test_api_like_and_unlike(client, media, user) -> None:
    image = ImageFactory()
    client.force_login(user)
    liked = client.post(f"/api/v1/images/{image.pk}/like")
    assert liked.status_code == 200 and liked.json() == {"id": image.pk, "likes": 1, "liked": True}
    assert client.post(f"/api/v1/images/{image.pk}/like").json()["likes"] == 1  # idempotent
    record = client.get(f"/api/v1/images/{image.pk}").json()
    assert record["likes"] == 1 and record["liked"] is True and record["nsfw"] is False
    assert record["recipe"]["seed"] == image.seed
    unliked = client.delete(f"/api/v1/images/{image.pk}/like")
    assert unliked.json() == {"id": image.pk, "likes": 0, "liked": False}
    assert client.post("/api/v1/images/999999/like").status_code == 404


def test_api_likes_need_an_account_and_the_csrf_token(media, user) -> None:
    image = ImageFactory()
    response = Client().post(f"/api/v1/images/{image.pk}/like")
    assert response.status_code == 401
    assert response.json() == {"error": "Sign in to like images."}
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(f"/api/v1/images/{image.pk}/like").status_code in (401, 403)
    assert not Favourite.objects.exists()
    anonymous = Client().get(f"/api/v1/images/{image.pk}").json()
    assert anonymous["likes"] == 0 and anonymous["liked"] is False


def test_api_search_results_carry_likes_and_sort_by_them(client, media) -> None:
    plain, loved = (ImageFactory(prompt=f"a lighthouse {when}") for when in ("at dawn", "at dusk"))
    image_keywords_index(image_ids=[plain.pk, loved.pk])
    for liker in UserFactory.create_batch(2):
        favourite_add(user=liker, image=loved)
    ranked = client.get("/api/v1/images", {"q": "lighthouse", "mode": "keyword"}).json()
    assert {item["id"]: item["likes"] for item in ranked["results"]} == {plain.pk: 0, loved.pk: 2}
    by_likes = client.get(
        "/api/v1/images", {"q": "lighthouse", "mode": "keyword", "sort": "likes", "limit": 1}
    ).json()
    assert [item["id"] for item in by_likes["results"]] == [loved.pk]
    following = client.get(
        "/api/v1/images",
        {"q": "lighthouse", "mode": "keyword", "sort": "likes", "limit": 1, "cursor": "1"},
    ).json()
    assert [item["id"] for item in following["results"]] == [plain.pk]
    assert following["next_cursor"] is None


def test_api_favourites(client, media, user) -> None:
    image = ImageFactory()
    favourite_add(user=user, image=image)
    assert Client().get("/api/v1/favourites").status_code == 401
    client.force_login(user)
    body = client.get("/api/v1/favourites").json()
    assert [item["id"] for item in body["results"]] == [image.pk]
    assert body["results"][0]["liked"] is True and body["next_cursor"] is None
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/images/{image_id}/like", "/api/v1/favourites"} <= set(paths)
    assert {"post", "delete"} <= set(paths["/api/v1/images/{image_id}/like"])
