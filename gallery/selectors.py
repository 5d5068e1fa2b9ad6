"""Reads for the gallery: the public grid (keyset pagination), collections, a record's cost."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from gallery.models import Collection, CollectionItem
from generator.models import Image
from generator.selectors.pages import RecordPage, newest_first_page
from generator.selectors.records import images_public, images_visible_to
from generator.selectors.stats import job_cost_usd


def gallery_page(*, cursor: str | None, page_size: int) -> RecordPage:
    """The public gallery, newest first, by keyset (generator.selectors.pages)."""
    images = images_public().listing().select_related("model_version")
    return newest_first_page(images=images, cursor=cursor, page_size=page_size)


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


def image_cost(*, image: Image) -> dict[str, object] | None:
    """This image's share of its job's render time and cost (a batch splits them evenly)."""
    job = image.job
    if job is None or job.render_seconds is None:
        return None
    share = max(1, image.batch_size)
    cost = job_cost_usd(job=job)
    return {
        "seconds": job.render_seconds / share,
        "device": job.device,
        "usd": None if cost is None else cost / share,
    }
