"""Reads for search: text -> image and image -> image over pgvector (cosine)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db.models import QuerySet
from pgvector.django import CosineDistance

from gallery.models import Image
from gallery.selectors import images_public
from search.models import ImageEmbedding


@dataclass(frozen=True)
class SearchHit:
    image: Image
    score: float  # cosine similarity, 1 = same direction


@lru_cache(maxsize=4)
def _model_name_from_config(clip_path: str) -> str:
    # Read the name without importing torch: pages that only need the name stay fast.
    config = json.loads((Path(clip_path) / "open_clip_config.json").read_text())
    return str(config["model_name"])


def active_model_name() -> str:
    return _model_name_from_config(str(settings.SEEDBANK_CLIP_PATH))


def _nearest(vector: list[float], *, limit: int, exclude_id: int | None = None) -> list[SearchHit]:
    embeddings: QuerySet[ImageEmbedding] = ImageEmbedding.objects.filter(
        model_name=active_model_name(), image__in=images_public()
    )
    if exclude_id is not None:
        embeddings = embeddings.exclude(image_id=exclude_id)
    rows = (
        embeddings.annotate(distance=CosineDistance("embedding", vector))
        .select_related("image")
        .order_by("distance")[:limit]
    )
    return [SearchHit(image=row.image, score=1.0 - float(row.distance)) for row in rows]


def images_by_text(*, query: str, limit: int = 24) -> list[SearchHit]:
    from search import embedder

    (vector,) = embedder.embed_texts(str(settings.SEEDBANK_CLIP_PATH), [query])
    return _nearest(vector.tolist(), limit=limit)


def images_similar_to(*, image: Image, limit: int = 8) -> list[SearchHit]:
    own = ImageEmbedding.objects.filter(image=image, model_name=active_model_name()).first()
    if own is None:
        return []
    return _nearest(list(own.embedding), limit=limit, exclude_id=image.pk)
