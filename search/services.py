"""Writes for search: CLIP embeddings of rendered images, and full-text vectors of recipes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from django.contrib.postgres.search import SearchVector
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Value
from django.db.models.expressions import CombinedExpression

from gallery.models import Image
from search.keywords import segment
from search.models import EMBEDDING_DIM, EmbeddingModel, ImageEmbedding


def image_embedding_enqueue(*, image_id: int) -> None:
    from search.tasks import embed_image

    transaction.on_commit(lambda: embed_image.delay(image_id))


def image_embedding_upsert(
    *, image_id: int, model: EmbeddingModel | None = None
) -> ImageEmbedding | None:
    """Embed one ready image (active model by default). Idempotent: reruns overwrite one row."""
    from PIL import Image as PILImage

    from search import embedder
    from search.selectors import active_embedding_model

    model = model or active_embedding_model()
    image = Image.objects.filter(pk=image_id, status=Image.Status.READY).first()
    if image is None or not image.image_file:
        return None
    with image.image_file.open("rb") as handle, PILImage.open(handle) as decoded:
        vectors = embedder.embed_images(model.path, [decoded.convert("RGB")])
    embedding, _ = ImageEmbedding.objects.update_or_create(
        image=image,
        model_name=model.name,
        defaults={"dim": vectors.shape[1], "embedding": vectors[0].tolist()},
    )
    return embedding


def keyword_vector(prompt: str, negative_prompt: str) -> CombinedExpression:
    """The tsvector of a recipe: English stems plus segmented words (Chinese), prompt weighted
    A and negative prompt D, so a match in the prompt ranks above one in the negative prompt."""
    parts = [
        SearchVector(Value(prompt), config="english", weight="A"),
        SearchVector(Value(segment(prompt)), config="simple", weight="A"),
        SearchVector(Value(negative_prompt), config="english", weight="D"),
        SearchVector(Value(segment(negative_prompt)), config="simple", weight="D"),
    ]
    vector: CombinedExpression = parts[0] + parts[1]
    for part in parts[2:]:
        vector = vector + part
    return vector


def image_keywords_index(*, image_ids: Iterable[int]) -> None:
    """(Re)build the full-text vector of records; one UPDATE per distinct recipe text."""
    by_text: dict[tuple[str, str], list[int]] = {}
    for pk, prompt, negative in Image.objects.filter(pk__in=list(image_ids)).values_list(
        "pk", "prompt", "negative_prompt"
    ):
        by_text.setdefault((prompt, negative), []).append(pk)
    for (prompt, negative), pks in by_text.items():
        Image.objects.filter(pk__in=pks).update(search_vector=keyword_vector(prompt, negative))


def embedding_model_register(*, path: Path) -> EmbeddingModel:
    """Register a CLIP folder (inactive) so vectors can be built for it beside the active ones."""
    from search import embedder
    from search.selectors import embedding_model_name

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
    from PIL import Image as PILImage

    from gallery.selectors import images_public
    from search import embedder

    todo = list(
        images_public()
        .exclude(embeddings__model_name=model.name)
        .exclude(image_file="")
        .order_by("pk")
        .values_list("pk", "image_file")
    )
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
