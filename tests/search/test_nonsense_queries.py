"""Words with no meaning for the CLIP find no images by meaning (issue #27): the shipped scene
CLIP's nonsense bound, on records embedded with it, in the selector, the page and the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import embedder
from engine.scenes import scene_at
from generator.services.records import image_keywords_index
from search.models import EMBEDDING_DIM, ImageEmbedding
from search.selectors import active_embedding_model, search_images
from search.services import embedding_model_ensure_registered
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db

SHIPPED_CLIP = Path(__file__).resolve().parents[2] / "models" / "seedbank-scenes-clip"
NONSENSE = "qwxzv florbin gnark"


@pytest.fixture
def scenes(settings, media_root):
    """24 held-out scenes as records, captioned in both languages, embedded by the shipped CLIP."""
    settings.SEEDBANK_CLIP_PATH = str(SHIPPED_CLIP)
    model = embedding_model_ensure_registered(model=active_embedding_model())
    drawn = [scene_at("heldout", index) for index in range(24)]
    vectors = embedder.embed_images(str(SHIPPED_CLIP), [scene.render() for scene in drawn])
    records = []
    for n, (scene, vector) in enumerate(zip(drawn, vectors, strict=True)):
        image = ImageFactory(prompt=scene.caption("en" if n % 2 == 0 else "zh"))
        ImageEmbedding.objects.create(
            image=image, model_name=model.name, dim=EMBEDDING_DIM, embedding=vector
        )
        records.append(image)
    image_keywords_index(image_ids=[image.pk for image in records])
    return model


def test_the_shipped_clip_stores_a_nonsense_bound_that_search_uses(scenes) -> None:
    assert scenes.nonsense_cosine is not None
    assert scenes.relevance_cosine is not None
    assert scenes.relevance_cosine < scenes.nonsense_cosine < 1.0


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_nonsense_finds_nothing_and_real_words_still_find_pictures(scenes, mode: str) -> None:
    nonsense = search_images(query=NONSENSE, mode=mode)
    assert nonsense.hits == [] and nonsense.no_meaning
    for words in ("cat", "猫", "red circle", "红色"):
        found = search_images(query=words, mode=mode)
        assert found.hits and not found.no_meaning, words
    # Asking for every match (min_score -1) still shows the nearest pictures.
    assert search_images(query=NONSENSE, mode=mode, min_score=-1).hits


def test_the_page_says_no_images_match_and_offers_keyword_matches(scenes, client) -> None:
    page = client.get("/search/", {"q": NONSENSE, "mode": "vector"}).content.decode()
    assert 'data-testid="no-meaning"' in page and "No images match" in page
    assert 'data-testid="keyword-offer"' not in page  # no record has these words
    real = client.get("/search/", {"q": "red circle", "mode": "vector"}).content.decode()
    assert 'data-testid="no-meaning"' not in real and 'class="card' in real

    poster = ImageFactory(prompt=f"a poster saying {NONSENSE}")
    image_keywords_index(image_ids=[poster.pk])
    vector = client.get("/search/", {"q": NONSENSE, "mode": "vector"}).content.decode()
    assert 'data-testid="no-meaning"' in vector and 'data-testid="keyword-offer"' in vector
    assert "mode=keyword" in vector and "Show the 1 keyword match<" in vector
    # Counted, not ranked, and counted the same: the poster only.
    assert search_images(query=NONSENSE, mode="vector").keyword_matches == 1
    hybrid = search_images(query=NONSENSE, mode="hybrid")
    assert [hit.image.pk for hit in hybrid.hits] == [poster.pk] and hybrid.no_meaning
    page = client.get("/search/", {"q": NONSENSE, "mode": "hybrid"}).content.decode()
    assert 'data-testid="no-meaning"' in page and f"/images/{poster.pk}/" in page


def test_the_api_returns_an_empty_list_with_a_reason(scenes, client) -> None:
    nonsense = client.get("/api/v1/images", {"q": NONSENSE, "mode": "vector"}).json()
    assert nonsense["results"] == [] and nonsense["reason"] == "no_meaning"
    real = client.get("/api/v1/images", {"q": "red circle", "mode": "vector"}).json()
    assert real["results"] and real["reason"] is None
