"""Writes for search: CLIP embeddings of records, and the embedding model registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from celery import current_app
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image as PILImage

from search.models import EMBEDDING_DIM, EmbeddingModel, ImageEmbedding
from search.selectors import (
    active_embedding_model,
    embedding_model_name,
    image_for_embedding,
    images_without_embedding,
)

EMBED_TASK = "search.tasks.embed_image"


def image_embedding_enqueue(*, image_id: int) -> None:
    """Queue an embedding once the current transaction commits (by task name: see tasks.py)."""
    transaction.on_commit(lambda: current_app.send_task(EMBED_TASK, args=[image_id]))


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
        },
    )
    with transaction.atomic():
        if not EmbeddingModel.objects.filter(is_active=True).exists():
            EmbeddingModel.objects.filter(pk=saved.pk).update(is_active=True)
    return EmbeddingModel.objects.get(is_active=True)


def image_embedding_upsert(
    *, image_id: int, model: EmbeddingModel | None = None
) -> ImageEmbedding | None:
    """Embed one ready image (active model by default). Idempotent: reruns overwrite one row."""
    # Imported here: torch and open_clip cost seconds; only workers and searches need them.
    from engine import embedder

    model = embedding_model_ensure_registered(model=model or active_embedding_model())
    image = image_for_embedding(image_id=image_id)
    if image is None:
        return None
    with image.image_file.open("rb") as handle, PILImage.open(handle) as decoded:
        vectors = embedder.embed_images(model.path, [decoded.convert("RGB")])
    embedding, _ = ImageEmbedding.objects.update_or_create(
        image=image,
        model_name=model.name,
        defaults={"dim": vectors.shape[1], "embedding": vectors[0].tolist()},
    )
    return embedding


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
        name=embedding_model_name(path), defaults={"path": str(path), "dim": info.dim}
    )
    return model


def embeddings_build(
    *, model: EmbeddingModel, batch_size: int = 32, progress: Callable[[int], None] | None = None
) -> int:
    """Embed every public record that has no vector from `model` yet. Resumable: a rerun
    continues where an interrupted one stopped. Returns how many were embedded."""
    # Imported here: torch and open_clip cost seconds; only the reembed command needs them.
    from engine import embedder

    todo = images_without_embedding(model_name=model.name)
    done = 0
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        pictures = []
        for _, name in batch:
            with default_storage.open(name, "rb") as handle, PILImage.open(handle) as decoded:
                pictures.append(decoded.convert("RGB"))
        vectors = embedder.embed_images(model.path, pictures)
        ImageEmbedding.objects.bulk_create(
            [
                ImageEmbedding(image_id=pk, model_name=model.name, dim=model.dim, embedding=vector)
                for (pk, _), vector in zip(batch, vectors, strict=True)
            ],
            ignore_conflicts=True,  # a concurrent embed task may have written one already
        )
        done += len(batch)
        if progress is not None:
            progress(len(batch))
    return done


def embedding_model_activate(*, model: EmbeddingModel) -> None:
    """Switch every query to `model` at once (one transaction; never two active models)."""
    with transaction.atomic():
        EmbeddingModel.objects.filter(is_active=True).exclude(pk=model.pk).update(is_active=False)
        EmbeddingModel.objects.filter(pk=model.pk).update(is_active=True)
