"""The vector index rebuild: sized memory, parallel workers, concurrent, and searches after."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from search.models import EMBEDDING_DIM, ImageEmbedding
from search.selectors import active_model_name, search_images
from search.services import hnsw_build_memory_mb
from tests.factories import ImageFactory


def test_build_memory_holds_the_graph_up_to_the_ceiling() -> None:
    assert hnsw_build_memory_mb(0) == 256  # a floor for small archives
    assert 2_900 <= hnsw_build_memory_mb(1_000_000) <= 3_100  # ~2.6 KB a row, +20 %
    with override_settings(SEEDBANK_INDEX_BUILD_MEMORY_MB=1024):
        assert hnsw_build_memory_mb(10_000_000) == 1024


@pytest.mark.django_db(transaction=True)  # REINDEX CONCURRENTLY refuses a transaction block
def test_search_reindex_rebuilds_a_valid_index_that_searches_use(media_root, tiny_sd_path):
    rng = np.random.default_rng(5)
    images = ImageFactory.create_batch(40)
    vectors = rng.normal(size=(40, EMBEDDING_DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ImageEmbedding.objects.bulk_create(
        ImageEmbedding(image=image, model_name=active_model_name(), dim=EMBEDDING_DIM,
                       embedding=vector)
        for image, vector in zip(images, vectors, strict=True)
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE search_imageembedding")

    out = io.StringIO()
    call_command("search_reindex", "--workers", "1", stdout=out)

    said = out.getvalue()
    assert "Vector index rebuilt" in said and "maintenance_work_mem 256 MB" in said
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid, c.reloptions, x.reloptions FROM pg_index i "
            "JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid "
            "WHERE x.relname = 'embedding_hnsw_cosine'"
        )
        valid, options, index_options = cursor.fetchone()
        cursor.execute("SHOW maintenance_work_mem")  # the session's setting was put back
        (memory,) = cursor.fetchone()
    assert valid and "parallel_workers=1" in options and memory != "256MB"
    assert "ef_construction=128" in index_options  # search 0010's, kept by the rebuild
    hits = search_images(vector=vectors[7].tolist(), mode="vector", limit=5).hits
    assert hits[0].image.pk == images[7].pk and hits[0].vector_score == pytest.approx(1.0)
