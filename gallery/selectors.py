"""Reads for the gallery: the public grid (keyset pagination) and collections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from gallery.models import Collection, CollectionItem
from generator.models import Image
from generator.selectors.records import images_public, images_visible_to


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
    images = (
        images_public().listing().select_related("model_version").order_by("-created_at", "-id")
    )
    position = _decode_cursor(cursor) if cursor else None
    if position is not None:
        created_at, pk = position
        images = images.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=pk))
    rows = list(images[: page_size + 1])
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    return GalleryPage(images=rows, next_cursor=_encode_cursor(rows[-1]) if has_more else None)


def collections_with_covers(*, viewer: Any, limit: int) -> list[Collection]:
    """Collections for the home page; a cover the viewer may not see (hidden, not ready) is
    dropped rather than shown."""
    collections = list(collections_visible_to(viewer)[:limit])
    visible = set(
        images_visible_to(viewer)
        .filter(pk__in=[c.cover_id for c in collections if c.cover_id])
        .values_list("pk", flat=True)
    )
    for collection in collections:
        if collection.cover_id not in visible:
            collection.cover = None
    return collections


def collections_visible_to(viewer: Any) -> QuerySet[Collection]:
    collections = Collection.objects.select_related("cover")
    if viewer is not None and getattr(viewer, "is_staff", False):
        return collections
    return collections.filter(is_public=True)


def collection_detail(*, slug: str, viewer: Any = None) -> Collection | None:
    return collections_visible_to(viewer).filter(slug=slug).first()


def collection_images(*, collection: Collection, viewer: Any = None) -> list[Image]:
    return list(
        images_visible_to(viewer)
        .listing()
        .filter(collection_items__collection=collection)
        .order_by("collection_items__position", "collection_items__id")
    )


def collection_find(*, collection_id: Any) -> Collection | None:
    return Collection.objects.filter(pk=collection_id).first() if collection_id else None


def collections_all() -> QuerySet[Collection]:
    return Collection.objects.all()


def collection_choices_public() -> list[tuple[str, str]]:
    """(slug, title) of public collections, for the search filter."""
    return list(Collection.objects.filter(is_public=True).values_list("slug", "title"))


def collection_image_ids(*, slug: str) -> QuerySet[CollectionItem, Any]:
    """The ids of a public collection's records, as a subquery for search filters."""
    return CollectionItem.objects.filter(collection__slug=slug, collection__is_public=True).values(
        "image_id"
    )
