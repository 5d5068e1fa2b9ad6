"""Hybrid search's two lists at once, on two pooled connections, against the real database:
the same results as one after the other, the side connection back in the pool, errors carried,
and a caller's transaction keeping both reads in it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from threading import Event

import numpy as np
import pytest
from django.db import connection, transaction

from generator.services.records import image_keywords_index
from search.models import EMBEDDING_DIM, ImageEmbedding
from search.selectors import active_model_name, search_images
from search.selectors import side_by_side as side_module
from search.selectors.side_by_side import side_by_side
from tests.factories import ImageFactory


def backend() -> tuple[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return threading.current_thread().name, cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_second_read_runs_on_another_connection() -> None:
    (here, here_pid), (there, there_pid) = side_by_side(backend, backend)
    assert here == threading.current_thread().name
    assert there.startswith("search-side")
    assert here_pid != there_pid
    pool = connection.pool
    assert pool is not None
    # The side thread's connection went back to the pool: nothing is left checked out by it.
    stats = pool.get_stats()
    assert stats["pool_size"] - stats["pool_available"] <= 1  # only this thread's own


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_both_reads_run_in_it() -> None:
    with transaction.atomic():
        (here, here_pid), (there, there_pid) = side_by_side(backend, backend)
    assert here == there == threading.current_thread().name
    assert here_pid == there_pid


@pytest.mark.django_db(transaction=True)
def test_an_error_in_either_read_reaches_the_caller() -> None:
    def broken() -> None:
        raise ValueError("side read failed")

    with pytest.raises(ValueError, match="side read failed"):
        side_by_side(backend, broken)
    with pytest.raises(ValueError, match="side read failed"):
        side_by_side(broken, backend)
    assert side_by_side(backend, backend)[1][0].startswith("search-side")  # still usable


@pytest.mark.django_db(transaction=True)
def test_a_side_read_not_started_in_time_runs_here(monkeypatch) -> None:
    """Every side thread busy with other requests' reads: this request does not wait for them."""
    release = Event()
    busy = ThreadPoolExecutor(max_workers=1, thread_name_prefix="busy-side")
    monkeypatch.setattr(side_module, "_side", busy)
    blocker = busy.submit(release.wait)
    try:
        (_, here_pid), (there, there_pid) = side_by_side(backend, backend)
    finally:
        release.set()
        blocker.result()
        busy.shutdown()
    assert there == threading.current_thread().name
    assert here_pid == there_pid


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


@pytest.mark.django_db(transaction=True)
def test_hybrid_search_gives_the_same_results_either_way() -> None:
    rng = np.random.default_rng(5)
    name = active_model_name()
    for index in range(30):
        words = "lighthouse at dusk" if index % 3 == 0 else "a red fox in snow"
        image = ImageFactory(prompt=f"{words} {index}")
        image_keywords_index(image_ids=[image.pk])
        ImageEmbedding.objects.create(
            image=image,
            model_name=name,
            dim=EMBEDDING_DIM,
            embedding=unit(rng.standard_normal(EMBEDDING_DIM).astype(np.float32)),
        )

    def ranked() -> list[tuple[int, float, float | None, float | None]]:
        results = search_images(query="lighthouse", mode="hybrid", limit=12, min_score=-1)
        return [(h.image.pk, h.score, h.vector_score, h.keyword_score) for h in results.hits]

    parallel = ranked()
    with transaction.atomic():
        sequential = ranked()
    assert len(parallel) == 12
    assert any(keyword is not None for *_, keyword in parallel)  # both lists took part
    assert any(vector is not None for *_, vector, _ in parallel)
    assert parallel == sequential
