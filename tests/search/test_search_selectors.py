"""Text→image and image→image search against the real pgvector index and the real tiny CLIP."""

from __future__ import annotations

import numpy as np
import pytest
from django.conf import settings
from django.test import override_settings

from engine import embedder
from search.models import EMBEDDING_DIM, ImageEmbedding
from search.selectors import active_model_name, image_neighbours, search_images
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


@pytest.fixture
def indexed(media_root, tiny_sd_path):
    """Six ready images with known vectors under the active model."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(6):
        image = ImageFactory()
        vector = unit(rng.normal(size=EMBEDDING_DIM)).astype(np.float32)
        ImageEmbedding.objects.create(
            image=image, model_name=active_model_name(), dim=EMBEDDING_DIM, embedding=vector
        )
        rows.append((image, vector))
    return rows


def test_text_search_ranks_by_exact_cosine_and_reports_it(indexed) -> None:
    query = "a lighthouse at sunset"
    (q,) = embedder.embed_texts(str(settings.SEEDBANK_CLIP_PATH), [query])
    expected = sorted(((float(v @ q), image.pk) for image, v in indexed), reverse=True)

    # Every match (-1): the random tiny CLIP's text→image cosines sit under any default bound.
    hits = search_images(query=query, mode="vector", limit=4, min_score=-1.0).hits

    assert [hit.image.pk for hit in hits] == [pk for _, pk in expected[:4]]
    for hit, (score, _) in zip(hits, expected, strict=False):
        assert hit.score == pytest.approx(score, abs=1e-5)


def test_other_models_and_hidden_images_never_appear(indexed) -> None:
    stranger = ImageFactory()
    ImageEmbedding.objects.create(
        image=stranger,
        model_name="another-clip",
        dim=EMBEDDING_DIM,
        embedding=np.ones(EMBEDDING_DIM, np.float32) / np.sqrt(EMBEDDING_DIM),
    )
    hidden_image, _ = indexed[0]
    hidden_image.hidden = True
    hidden_image.save(update_fields=["hidden"])

    hits = search_images(query="anything", mode="vector", limit=50, min_score=-1.0).hits
    found = {hit.image.pk for hit in hits}

    assert stranger.pk not in found and hidden_image.pk not in found
    assert len(found) == 5


def test_similar_images_exclude_the_record_and_rank_by_cosine(indexed) -> None:
    image, vector = indexed[2]
    expected = sorted(
        ((float(v @ vector), other.pk) for other, v in indexed if other.pk != image.pk),
        reverse=True,
    )
    hits = image_neighbours(image=image, similar=3).similar
    assert [hit.image.pk for hit in hits] == [pk for _, pk in expected[:3]]


def test_unindexed_record_has_no_similar_images(media_root, tiny_sd_path) -> None:
    neighbours = image_neighbours(image=ImageFactory())
    assert neighbours.similar == [] and neighbours.near_duplicates == []


@override_settings(SEEDBANK_CACHE_SHARED=True)  # one process: its memory cache is shared
def test_the_backlog_is_embedded_in_batches_with_the_real_images(
    media_root, tiny_sd_path, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from celery import current_app

    from search.models import PendingEmbedding
    from search.services import embeddings_drain, images_embedding_enqueue

    drains: list[str] = []
    monkeypatch.setattr(current_app, "send_task", lambda name, **options: drains.append(name))
    images = ImageFactory.create_batch(5)
    not_ready = ImageFactory(status="pending")
    with django_capture_on_commit_callbacks(execute=True):
        images_embedding_enqueue(image_ids=[i.pk for i in images] + [not_ready.pk])
        images_embedding_enqueue(image_ids=[images[0].pk])  # twice: still one backlog row
    # One drain waits in the queue at a time: the second enqueue needs none of its own.
    assert drains == ["search.tasks.embed_pending"]
    assert PendingEmbedding.objects.count() == 6

    assert embeddings_drain(batch_size=2) == 5  # three batches of two, one not embeddable
    assert not PendingEmbedding.objects.exists()
    vectors = dict(ImageEmbedding.objects.values_list("image_id", "embedding"))
    assert set(vectors) == {i.pk for i in images}
    (expected,) = embedder.embed_images(
        str(settings.SEEDBANK_CLIP_PATH), [_pixels(media_root, images[3])]
    )
    assert np.allclose(np.asarray(vectors[images[3].pk]), expected, atol=1e-5)
    assert ImageEmbedding.objects.first().model_name == active_model_name()
    # Each record carries its vector's signs for the filtered sketch scan.
    from generator.models import Image

    sketches = dict(Image.objects.filter(pk__in=vectors).values_list("pk", "sketch"))
    for pk, vector in vectors.items():
        assert sketches[pk] == "".join("1" if x > 0 else "0" for x in vector), pk

    with django_capture_on_commit_callbacks(execute=True):  # the drain ran: a new one is sent
        images_embedding_enqueue(image_ids=[images[3].pk])  # a re-embed overwrites, never adds
    assert drains == ["search.tasks.embed_pending"] * 2
    assert embeddings_drain() == 1 and ImageEmbedding.objects.count() == 5


def _pixels(media_root, image):
    from PIL import Image as PILImage

    with PILImage.open(media_root / image.image_file.name) as decoded:
        return decoded.convert("RGB")


def test_connections_start_with_the_configured_hnsw_ef_search() -> None:
    """An unfiltered search relies on it instead of a transaction with SET LOCAL."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW hnsw.ef_search")
        assert cursor.fetchone()[0] == str(settings.SEEDBANK_HNSW_EF_SEARCH)
