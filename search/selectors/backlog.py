"""What the embedding services read: records ready for a vector, records without one."""

from __future__ import annotations

from generator.models import Image
from generator.selectors.records import images_public


def images_for_embedding(*, image_ids: list[int]) -> list[Image]:
    """Those of `image_ids` that are ready with their pixels stored (not evicted, not failed)."""
    return list(
        Image.objects.listing()
        .filter(pk__in=image_ids, status=Image.Status.READY)
        .exclude(image_file="")
        .order_by("pk")
    )


def images_without_embedding(*, model_name: str) -> list[tuple[int, str]]:
    """(id, stored file) of public records with no vector from `model_name`, oldest first."""
    return list(
        images_public()
        .exclude(clip_embeddings__model_name=model_name)
        .exclude(image_file="")
        .order_by("pk")
        .values_list("pk", "image_file")
    )
