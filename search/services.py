"""Writes for the vector index: embed a rendered image with the active CLIP model."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from gallery.models import Image
from search.models import ImageEmbedding


def image_embedding_enqueue(*, image_id: int) -> None:
    from search.tasks import embed_image

    transaction.on_commit(lambda: embed_image.delay(image_id))


def image_embedding_upsert(*, image_id: int) -> ImageEmbedding | None:
    """Embed one ready image with the active model. Idempotent: reruns overwrite one row."""
    from PIL import Image as PILImage

    from search import embedder

    image = Image.objects.filter(pk=image_id, status=Image.Status.READY).first()
    if image is None or not image.image_file:
        return None
    with image.image_file.open("rb") as handle, PILImage.open(handle) as decoded:
        vectors = embedder.embed_images(str(settings.SEEDBANK_CLIP_PATH), [decoded.convert("RGB")])
    info = embedder.info(str(settings.SEEDBANK_CLIP_PATH))
    embedding, _ = ImageEmbedding.objects.update_or_create(
        image=image,
        model_name=info.model_name,
        defaults={"dim": info.dim, "embedding": vectors[0].tolist()},
    )
    return embedding
