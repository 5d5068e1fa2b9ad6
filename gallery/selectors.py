"""Reads for the gallery: the public grid (keyset pagination), a record, its lineage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from gallery.models import Image, Reproduction


def images_public() -> QuerySet[Image]:
    return Image.objects.filter(status=Image.Status.READY, hidden=False)


@dataclass(frozen=True)
class GalleryPage:
    images: list[Image]
    next_cursor: str | None


def _encode_cursor(image: Image) -> str:
    return f"{image.created_at.isoformat()}~{image.pk}"


def _decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        stamp, pk = cursor.rsplit("~", 1)
        return datetime.fromisoformat(stamp), int(pk)
    except ValueError:
        return None


def gallery_page(*, cursor: str | None, page_size: int) -> GalleryPage:
    """Newest first. The cursor is the (created_at, id) of the last image shown: keyset
    pagination stays fast on deep pages and never repeats or skips rows as new ones arrive."""
    images = images_public().select_related("model_version").order_by("-created_at", "-id")
    position = _decode_cursor(cursor) if cursor else None
    if position is not None:
        created_at, pk = position
        images = images.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=pk))
    rows = list(images[: page_size + 1])
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    return GalleryPage(images=rows, next_cursor=_encode_cursor(rows[-1]) if has_more else None)


def image_detail(*, image_id: int) -> Image | None:
    return (
        images_public()
        .select_related("model_version", "parent", "owner")
        .filter(pk=image_id)
        .first()
    )


def image_children(*, image: Image) -> list[Image]:
    return list(images_public().filter(parent=image).order_by("created_at"))


def image_last_reproduction(*, image: Image) -> Reproduction | None:
    return image.reproductions.exclude(verdict=Reproduction.Verdict.PENDING).first()
