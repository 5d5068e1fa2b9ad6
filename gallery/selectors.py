"""Reads for the gallery: the public grid (keyset pagination), a record, its lineage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from gallery.models import Collection, Image, Reproduction


def images_public() -> QuerySet[Image]:
    """What the gallery, search and the API list: finished, not hidden by moderation."""
    return Image.objects.filter(status=Image.Status.READY, hidden=False)


def images_visible_to(viewer: Any) -> QuerySet[Image]:
    """Records a viewer may open: staff also reach hidden ones (moderation, lineage)."""
    if viewer is not None and getattr(viewer, "is_staff", False):
        return Image.objects.filter(status=Image.Status.READY)
    return images_public()


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


def image_detail(*, image_id: int, viewer: Any = None) -> Image | None:
    return (
        images_visible_to(viewer)
        .select_related("model_version", "parent", "owner")
        .filter(pk=image_id)
        .first()
    )


def image_children(*, image: Image, viewer: Any = None) -> list[Image]:
    return list(images_visible_to(viewer).filter(parent=image).order_by("created_at"))


def image_parent(*, image: Image, viewer: Any = None) -> Image | None:
    """The remix parent, if this viewer may see it (a hidden parent shows to staff only)."""
    if image.parent_id is None:
        return None
    return images_visible_to(viewer).filter(pk=image.parent_id).first()


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
        .filter(collection_items__collection=collection)
        .order_by("collection_items__position", "collection_items__id")
    )


def user_renders(*, username: str, viewer: Any = None, limit: int = 96) -> list[Image] | None:
    """A user's finished renders, newest first; None when there is no such user."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        return None
    visible = images_visible_to(viewer)
    if viewer is not None and viewer.pk == user.pk:  # your own hidden records stay yours
        visible = Image.objects.filter(status=Image.Status.READY)
    return list(visible.filter(owner=user).order_by("-created_at", "-id")[:limit])


def image_last_reproduction(*, image: Image) -> Reproduction | None:
    return (
        image.reproductions.exclude(verdict=Reproduction.Verdict.PENDING)
        .order_by("-finished_at")
        .first()
    )


def image_model_problem(*, image: Image) -> str | None:
    """Why `image` cannot be re-rendered with its own model (cheap checks only), or None."""
    from generator.services import ModelUnavailable, model_version_check

    try:
        model_version_check(image=image, verify_files=False)
    except ModelUnavailable as exc:
        return str(exc)
    return None


def image_pending_restore(*, image: Image) -> Reproduction | None:
    return (
        image.reproductions.select_related("job")
        .filter(purpose=Reproduction.Purpose.RESTORE, verdict=Reproduction.Verdict.PENDING)
        .first()
    )


@dataclass(frozen=True)
class ReproductionSummary:
    records: int
    checked: int
    by_verdict: dict[str, int]  # the latest finished check of each record

    @property
    def bit_identical_rate(self) -> float | None:
        if not self.checked:
            return None
        return self.by_verdict.get(Reproduction.Verdict.BIT_IDENTICAL, 0) / self.checked


def reproduction_summary(*, images: QuerySet[Image] | None = None) -> ReproductionSummary:
    """How many records reproduce, judged by each record's latest finished reproduction."""
    latest = (
        Reproduction.objects.filter(image=OuterRef("pk"))
        .exclude(verdict=Reproduction.Verdict.PENDING)
        .order_by("-finished_at")
        .values("verdict")[:1]
    )
    rows = (
        (images if images is not None else images_public())
        .annotate(last_verdict=Subquery(latest))
        .values("last_verdict")
        .annotate(count=Count("id"))
    )
    counts = {row["last_verdict"]: row["count"] for row in rows}
    unchecked = counts.pop(None, 0)
    checked = sum(counts.values())
    return ReproductionSummary(records=checked + unchecked, checked=checked, by_verdict=counts)


def image_export_document(*, image: Image) -> dict[str, Any]:
    """The record as a portable export (generator.export): recipe, batch seeds, environment."""
    from generator.export import export_document

    return export_document(
        prompt=image.prompt,
        negative_prompt=image.negative_prompt,
        seed=image.seed,
        steps=image.steps,
        guidance=image.guidance,
        width=image.width,
        height=image.height,
        precision=image.precision,
        scheduler=image.scheduler,
        batch_size=image.batch_size,
        batch_index=image.batch_index,
        model_name=image.model_name,
        model_digest=image.model_digest,
        model_path=image.model_version.path if image.model_version else "",
        pixel_sha256=image.pixel_sha256,
        environment=image.environment,
    )


def image_recipe(*, image: Image) -> dict[str, Any]:
    """The record's recipe as people copy it: model by name and digest, not by database id."""
    recipe: dict[str, Any] = {"model": image.model_name, "model_digest": image.model_digest}
    # Database ids mean nothing elsewhere: sources go by the sha256 of their pixels instead.
    local_ids = {"model_version_id", "init_image_id", "mask_id", "strength"}
    recipe.update((k, v) for k, v in image.recipe().as_dict().items() if k not in local_ids)
    recipe.update(batch_size=image.batch_size, batch_index=image.batch_index)
    if image.mode != Image.Mode.TXT2IMG:
        recipe["strength"] = image.strength
        recipe["init_image_sha256"] = image.init_image.pixel_sha256 if image.init_image else None
        recipe["mask_sha256"] = image.mask.pixel_sha256 if image.mask else None
    return recipe
