"""Which records' stored pictures the signing backfill (`manage.py sign_pictures`) walks."""

from __future__ import annotations

from django.db.models import QuerySet

from generator.models import Image


def images_with_stored_pictures() -> QuerySet[Image]:
    """Records that have a stored picture (evicted ones have none), oldest first, with what
    their claim reads (model version, img2img inputs) joined."""
    return (
        Image.objects.exclude(image_file="")
        .select_related("model_version", "init_image", "mask")
        .order_by("pk")
    )


__all__ = ["images_with_stored_pictures"]
