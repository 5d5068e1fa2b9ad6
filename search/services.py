"""Writes for search: CLIP embeddings of records, and the embedding model registry."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import connection, transaction
from PIL import Image as PILImage

from generator.services.queue import BROKER_ERRORS
from search.models import (
    CHINESE_HNSW_INDEX,
    EMBEDDING_DIM,
    HNSW_INDEX,
    EmbeddingModel,
    ImageEmbedding,
    PendingEmbedding,
)
from search.selectors import (
    active_embedding_model,
    embedding_model_bounds,
    embedding_model_name,
    images_for_embedding,
    images_without_embedding,
)
from search.signals import embedding_model_activated

EMBED_TASK = "search.tasks.embed_pending"
# One forward pass per this many images: large enough that per-batch costs vanish, small enough
# that a real CLIP on a CPU answers within seconds and the row locks are held briefly.
EMBED_BATCH = 64

DRAIN_QUEUED = "search:embedding-drain-queued"
DRAIN_FLAG_SECONDS = 60

logger = logging.getLogger(__name__)


def images_embedding_enqueue(*, image_ids: list[int]) -> None:
    """Add records to the embedding backlog and send a drain task once this commits (by task
    name: see tasks.py). Adding a record twice is harmless."""
    PendingEmbedding.objects.bulk_create(
        [PendingEmbedding(image_id=image_id) for image_id in image_ids], ignore_conflicts=True
    )
    transaction.on_commit(_send_drain)


def _send_drain() -> None:
    # One drain waiting in the queue is enough: it will find everything added before it starts
    # (it clears the flag first). The flag expires, so a lost drain blocks nothing for long.
    # Only with a cache every process shares: a per-process flag would never be cleared by the
    # cpu worker's drain.
    shared = settings.SEEDBANK_CACHE_SHARED
    if shared and not cache.add(DRAIN_QUEUED, True, timeout=DRAIN_FLAG_SECONDS):
        return
    try:
        current_app.send_task(EMBED_TASK)
    except BROKER_ERRORS as exc:  # the backlog keeps the records; beat's next drain finds them
        if shared:
            cache.delete(DRAIN_QUEUED)
        logger.warning("could not queue an embedding drain (%s)", exc)


def embeddings_drain(*, batch_size: int = EMBED_BATCH) -> int:
    """Embed the backlog with the active model, a batch at a time, until it is empty; returns
    how many records got a vector. Concurrent drains split the backlog (SKIP LOCKED)."""
    model = embedding_model_ensure_registered(model=active_embedding_model())
    cache.delete(DRAIN_QUEUED)  # records added from now on need (and will send) another drain
    embedded = 0
    while True:
        with transaction.atomic():
            claimed = list(
                PendingEmbedding.objects.select_for_update(skip_locked=True)
                .order_by("queued_at")
                .values_list("image_id", flat=True)[:batch_size]
            )
            if not claimed:
                return embedded
            images = images_for_embedding(image_ids=claimed)  # ready, with pixels on disk
            if images:
                ImageEmbedding.objects.bulk_create(
                    _embeddings(
                        model, [(image.pk, str(image.image_file.name)) for image in images]
                    ),
                    update_conflicts=True,  # a re-render's new pixels replace the old vector
                    unique_fields=["image", "model_name"],
                    update_fields=["embedding", "dim"],
                )
                image_sketches_update(image_ids=[image.pk for image in images])
            # Records that are not (or no longer) embeddable leave the backlog too.
            PendingEmbedding.objects.filter(image_id__in=claimed).delete()
            embedded += len(images)


def _embeddings(model: EmbeddingModel, files: list[tuple[int, str]]) -> list[ImageEmbedding]:
    """Unsaved vectors of `model` for (image id, stored file) pairs, in one forward pass."""
    # Imported here: torch and open_clip cost seconds; only workers and commands need them.
    from engine import embedder

    pictures = []
    for _, name in files:
        with default_storage.open(name, "rb") as handle, PILImage.open(handle) as decoded:
            pictures.append(decoded.convert("RGB"))
    vectors = embedder.embed_images(model.path, pictures)
    return [
        ImageEmbedding(image_id=pk, model_name=model.name, dim=model.dim, embedding=vector)
        for (pk, _), vector in zip(files, vectors, strict=True)
    ]


def embedding_model_ensure_registered(*, model: EmbeddingModel) -> EmbeddingModel:
    """Save the configured default model (the selector describes it unsaved until a vector
    exists) and make it active when nothing else is."""
    if model.pk is not None:
        return model
    saved, _ = EmbeddingModel.objects.get_or_create(
        name=model.name,
        defaults={
            "path": model.path,
            "dim": model.dim,
            "near_duplicate_cosine": model.near_duplicate_cosine,
            "relevance_cosine": model.relevance_cosine,
            "nonsense_cosine": model.nonsense_cosine,
        },
    )
    with transaction.atomic():
        if not EmbeddingModel.objects.filter(is_active=True).exists():
            EmbeddingModel.objects.filter(pk=saved.pk).update(is_active=True)
    return EmbeddingModel.objects.get(is_active=True)


def embedding_model_register(*, path: Path) -> EmbeddingModel:
    """Register a CLIP folder (inactive) so vectors can be built for it beside the active ones."""
    # Imported here: torch and open_clip cost seconds; only the reembed command needs them.
    from engine import embedder

    info = embedder.info(str(path))
    if info.dim != EMBEDDING_DIM:
        raise ValueError(
            f"{path} makes {info.dim}-d vectors; the index column holds {EMBEDDING_DIM}-d ones "
            "(a new width needs a new column and migration)."
        )
    model, _ = EmbeddingModel.objects.get_or_create(
        name=embedding_model_name(path),
        defaults={"path": str(path), "dim": info.dim, **embedding_model_bounds(path)},
    )
    return model


def embeddings_build(
    *, model: EmbeddingModel, batch_size: int = 32, progress: Callable[[int], None] | None = None
) -> int:
    """Embed every public record that has no vector from `model` yet. Resumable: a rerun
    continues where an interrupted one stopped. Returns how many were embedded."""
    todo = images_without_embedding(model_name=model.name)
    done = 0
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        ImageEmbedding.objects.bulk_create(
            _embeddings(model, batch),
            ignore_conflicts=True,  # a concurrent embed task may have written one already
        )
        image_sketches_update(image_ids=[pk for pk, _ in batch])  # if `model` is the active one
        done += len(batch)
        if progress is not None:
            progress(len(batch))
    return done


def embedding_model_activate(*, model: EmbeddingModel) -> None:
    """Switch every query to `model` at once (one transaction; never two active models).
    A real switch tells other apps once it has committed (search.signals)."""
    with transaction.atomic():
        switched = not EmbeddingModel.objects.filter(pk=model.pk, is_active=True).exists()
        EmbeddingModel.objects.filter(is_active=True).exclude(pk=model.pk).update(is_active=False)
        EmbeddingModel.objects.filter(pk=model.pk).update(is_active=True)
        if switched:
            # Every record's sketch from the new model's vectors, in the same transaction: a
            # query never compares its sketch with another model's (1M records: minutes, rows
            # locked). Re-activating the active model changes none: the drain keeps them.
            image_sketches_update()
            transaction.on_commit(
                lambda: embedding_model_activated.send(sender=EmbeddingModel, model=model)
            )


# The active model's vectors' signs onto their records (generator.models.Image.sketch), only
# where they differ: reruns and unchanged vectors write nothing.
_SKETCHES = """
UPDATE generator_image AS image
SET sketch = binary_quantize(embedding.embedding)::bit(512)
FROM search_imageembedding AS embedding
WHERE embedding.image_id = image.id
    AND embedding.model_name = (SELECT name FROM search_embeddingmodel WHERE is_active)
    AND image.sketch IS DISTINCT FROM binary_quantize(embedding.embedding)::bit(512)
"""


def image_sketches_update(*, image_ids: list[int] | None = None) -> int:
    """Write the sketches of `image_ids` (None: every record) from the active model's vectors;
    returns how many changed. Records with no vector from it keep theirs until they get one
    (a filtered search sorts records without a sketch last)."""
    with connection.cursor() as cursor:
        if image_ids is None:
            cursor.execute(_SKETCHES)
        else:
            cursor.execute(_SKETCHES + " AND image.id = ANY(%s)", [image_ids])
        return int(cursor.rowcount)


# --- the HNSW index ----------------------------------------------------------------------------

# Bytes per row of the graph in memory while it is built: the 512-d float vector (2 KB) plus
# m = 16 neighbours on two layers and tuple overhead (measured: 1M rows build in ~2.5 GB).
HNSW_BYTES_PER_ROW = 2_600


def hnsw_build_memory_mb(rows: int) -> int:
    """maintenance_work_mem that holds the whole graph (with 20 % headroom), capped by
    SEEDBANK_INDEX_BUILD_MEMORY_MB. Past it pgvector writes the graph out as it goes and the
    build slows several times (it says so in the server log)."""
    wanted = max(256, int(rows * HNSW_BYTES_PER_ROW * 1.2 / 2**20))
    return min(wanted, settings.SEEDBANK_INDEX_BUILD_MEMORY_MB)


@contextmanager
def hnsw_build_session(*, rows: int, workers: int | None = None) -> Iterator[tuple[Any, int]]:
    """A cursor set up to build the vector index over `rows` vectors: maintenance memory for
    the whole graph and parallel workers (cores - 1 unless given); put back afterwards.
    Yields the cursor and the memory (MB)."""
    workers = max(0, (os.cpu_count() or 2) - 1) if workers is None else int(workers)
    memory = hnsw_build_memory_mb(max(rows, 0))
    with connection.cursor() as cursor:
        cursor.execute(f"SET maintenance_work_mem = '{memory}MB'")
        cursor.execute(f"SET max_parallel_maintenance_workers = {workers}")
        # Postgres plans parallel workers from the heap's size, and the heap holds only TOAST
        # pointers (a vector is 2 KB, stored out of line): without this it plans none.
        cursor.execute(f"ALTER TABLE search_imageembedding SET (parallel_workers = {workers})")
        try:
            yield cursor, memory
        finally:
            cursor.execute("RESET maintenance_work_mem")
            cursor.execute("RESET max_parallel_maintenance_workers")


def embedding_graph_sql(name: str) -> str:
    """The CREATE INDEX statement of one of the vectors' graphs as search/models.py declares it
    (HNSW_INDEX, CHINESE_HNSW_INDEX), for what builds one by hand (the benchmarks' and tests'
    archives drop it, load their vectors, then build it once)."""
    (index,) = [index for index in ImageEmbedding._meta.indexes if index.name == name]
    return str(index.create_sql(ImageEmbedding, connection.schema_editor(collect_sql=True)))


def embedding_index_rebuild(*, workers: int | None = None) -> int:
    """Rebuild the HNSW index without blocking searches (REINDEX CONCURRENTLY), with enough
    maintenance memory and parallel workers: after a bulk import or a large re-embed, one
    build beats a million single-row inserts' worth of graph. Returns the memory used (MB)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE relname = 'search_imageembedding'"
        )
        (rows,) = cursor.fetchone() or (0,)
    with hnsw_build_session(rows=int(rows), workers=workers) as (cursor, memory):
        cursor.execute(f"REINDEX INDEX CONCURRENTLY {HNSW_INDEX}")
        cursor.execute(f"REINDEX INDEX CONCURRENTLY {CHINESE_HNSW_INDEX}")  # lang:zh's graph
    return memory


def embedding_index_progress() -> tuple[str, int, int] | None:
    """(phase, tuples done, tuples in all) of an index build in progress on the vectors."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT phase, tuples_done, tuples_total FROM pg_stat_progress_create_index "
            "WHERE relid = 'search_imageembedding'::regclass"
        )
        row = cursor.fetchone()
    return None if row is None else (str(row[0]), int(row[1] or 0), int(row[2] or 0))
