"""Variants on the pages: a batch of 4 is one card saying "4 variants" on the search page, the
home grid, a user's page and in GET /api/v1/images; each member's record page lists the four."""

from __future__ import annotations

import re

import numpy as np
import pytest

from generator.models import Image
from generator.services.records import image_keywords_index
from search.models import EMBEDDING_DIM, ImageEmbedding
from search.selectors import active_model_name
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def record(prompt: str, model_version, axis: int, **fields) -> Image:
    image = ImageFactory(prompt=prompt, model_version=model_version, **fields)
    image_keywords_index(image_ids=[image.pk])
    vector = np.zeros(EMBEDDING_DIM, np.float32)
    vector[axis] = 1.0
    ImageEmbedding.objects.create(
        image=image, model_name=active_model_name(), dim=EMBEDDING_DIM, embedding=vector
    )
    return image


@pytest.fixture
def archive(media_root, tiny_sd_path, model_version, user) -> list[Image]:
    batch = [
        record("a lighthouse in a storm", model_version, axis=0, seed=40 + n, batch_size=4,
               batch_index=n, owner=user)
        for n in range(4)
    ]  # fmt: skip
    record("a lighthouse at dawn", model_version, axis=1, seed=40, owner=user)
    return batch


def cards(body: str) -> list[str]:
    return re.findall(r'<li class="card[^"]*">(.*?)</li>', body, re.S)


def variant_badges(body: str) -> list[str]:
    return re.findall(r'data-testid="variants">([^<]*)<', body)


def test_search_page_shows_the_batch_as_one_card(client, archive, english) -> None:
    body = client.get("/search/", {"q": "lighthouse", "mode": "keyword"}).content.decode()
    assert len(cards(body)) == 2
    assert variant_badges(body) == ["4 variants"]
    shown = [pk for pk in (image.pk for image in archive) if f'href="/images/{pk}/"' in body]
    assert len(shown) == 1
    assert f'href="/images/{shown[0]}/#variants"' in body


@pytest.mark.parametrize("path", ["/", "/users/{username}/"])
def test_browse_grids_show_the_batch_as_one_card(client, archive, user, english, path) -> None:
    body = client.get(path.format(username=user.username)).content.decode()
    assert variant_badges(body) == ["4 variants"]
    newest = max(archive, key=lambda image: (image.created_at, image.pk))
    assert f'href="/images/{newest.pk}/#variants"' in body
    assert sum(f'href="/images/{image.pk}/"' in body for image in archive) == 1


def test_the_api_counts_variants(client, archive) -> None:
    response = client.get("/api/v1/images", {"q": "lighthouse", "mode": "keyword"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert sorted(item["variants"] for item in results) == [1, 4]
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["ImageResult"]
    assert "variants" in schema["properties"]


def test_the_record_page_lists_the_four_by_seed(client, archive, english) -> None:
    body = client.get(f"/images/{archive[1].pk}/").content.decode()
    start = body.index('id="variants"')
    section = body[start : body.index("</section>", start)]
    assert "4 variants" in section
    for image in archive:
        assert f'href="/images/{image.pk}/"' in section
    assert [int(seed) for seed in re.findall(r"seed (\d+)", section)] == [40, 41, 42, 43]
    assert 'aria-current="page"' in section


def test_a_record_without_variants_has_no_list(client, archive) -> None:
    alone = Image.objects.get(prompt="a lighthouse at dawn")
    assert 'id="variants"' not in client.get(f"/images/{alone.pk}/").content.decode()


def test_the_badge_in_chinese(client, archive) -> None:
    body = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert variant_badges(body) == ["4 个变体"]
