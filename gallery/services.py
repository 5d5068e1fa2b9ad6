"""Writes for gallery records: remix (rerun or edit) and reproduction checks."""

from __future__ import annotations

import hashlib
import io
import logging
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone
from PIL import Image as PILImage

from gallery import verdicts
from gallery.models import Collection, CollectionItem, Image, Reproduction, SourceImage
from gallery.selectors import image_last_reproduction
from generator.models import RenderJob
from generator.recipes import Recipe
from generator.services import (
    ModelUnavailable,
    image_store_pixels,
    job_done,
    job_send,
    model_version_check,
    pipeline_run,
    recipe_validate,
    render_job_claim,
    render_job_create,
    render_job_fail,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


def remix_submit(*, owner: User, parent: Image, recipe: Recipe) -> RenderJob:
    """Rerun the parent when nothing that affects pixels changed; else render an edited child."""
    if recipe.model_version_id == parent.model_version_id:
        try:
            model_version_check(image=parent, verify_files=False)
        except ModelUnavailable as exc:
            raise ValidationError(str(exc)) from exc
    if recipe.batch_size == 1 and recipe.seed is not None:
        recipe_validate(recipe=recipe)
        if recipe.pixel_key() == parent.recipe().pixel_key():
            return reproduction_create(image=parent, requested_by=owner).job
    return render_job_create(owner=owner, recipe=recipe, parent=parent)


def reproduction_create(
    *,
    image: Image,
    requested_by: User | None,
    purpose: str = Reproduction.Purpose.CHECK,
    whole_batch: bool = True,
) -> Reproduction:
    """Queue a re-render of `image` (row first, then the task once committed)."""
    from generator.tasks import run_reproduction

    with transaction.atomic():
        job = RenderJob.objects.create(
            kind=RenderJob.Kind.REPRODUCE, owner=requested_by, progress_total=image.steps
        )
        reproduction = Reproduction.objects.create(
            image=image,
            job=job,
            requested_by=requested_by,
            purpose=purpose,
            whole_batch=whole_batch,
        )
        transaction.on_commit(
            lambda: job_send(job_id=job.pk, task=run_reproduction, arg=reproduction.pk)
        )
    return reproduction


def image_restore_request(*, image: Image, requested_by: User | None) -> Reproduction | None:
    """Ask the worker to re-render an evicted record; reuse a restore already on its way."""
    if image.evicted_at is None:
        return None
    last = (
        image.reproductions.filter(purpose=Reproduction.Purpose.RESTORE)
        .exclude(verdict=Reproduction.Verdict.PENDING)
        .order_by("-created_at")
        .first()
    )
    if last is not None and last.created_at > image.evicted_at:
        # A restore since the eviction did not prove identical pixels: retrying on every page
        # view would burn GPU time for the same answer. Staff can re-run a check.
        return None
    pending = image.reproductions.filter(
        purpose=Reproduction.Purpose.RESTORE, verdict=Reproduction.Verdict.PENDING
    ).first()
    if pending is not None:
        return pending
    return reproduction_create(
        image=image, requested_by=requested_by, purpose=Reproduction.Purpose.RESTORE
    )


def _pixels(data: bytes) -> np.ndarray:
    with PILImage.open(io.BytesIO(data)) as decoded:
        return np.asarray(decoded.convert("RGB"))


def _original_pixels(image: Image) -> np.ndarray | None:
    if not image.image_file:  # evicted: only its sha256 is left to compare with
        return None
    with image.image_file.open("rb") as handle:
        return _pixels(handle.read())


def reproduction_run(*, reproduction_id: int) -> None:
    """Worker side: re-render the original's recipe and classify the result."""
    reproduction = (
        Reproduction.objects.select_related("image__model_version", "job")
        .filter(pk=reproduction_id)
        .first()
    )
    if reproduction is None:
        return
    job = render_job_claim(job_id=reproduction.job_id)
    if job is None:
        return
    original = reproduction.image
    try:
        rendered = pipeline_run(job=job, image=original, whole_batch=reproduction.whole_batch)
        # Rendered with its batch: pick its own position. Alone: the one image there is.
        (result,) = (
            [r for r in rendered if r.batch_index == original.batch_index]
            if reproduction.whole_batch
            else rendered
        )
        original_pixels = _original_pixels(original)
    except Exception as exc:
        logger.exception("reproduction %s failed", reproduction_id)
        render_job_fail(job=job, error=f"{type(exc).__name__}: {exc}")
        return

    if original_pixels is None:
        max_abs: int | None = 0 if result.pixel_sha256 == original.pixel_sha256 else None
        psnr = float("inf") if max_abs == 0 else None
    else:
        max_abs, psnr = verdicts.pixel_difference(original_pixels, _pixels(result.png))
    reproduction.verdict = verdicts.verdict(
        original_sha256=original.pixel_sha256,
        candidate_sha256=result.pixel_sha256,
        max_abs_diff=255 if max_abs is None else max_abs,
    )
    with transaction.atomic():
        restoring = (
            reproduction.purpose == Reproduction.Purpose.RESTORE
            and reproduction.verdict == Reproduction.Verdict.BIT_IDENTICAL
        )
        if restoring:
            # Only pixels proven identical go back: the record then serves the same bytes.
            image_store_pixels(image=original, png=result.png, pixel_sha256=result.pixel_sha256)
            original.evicted_at = None
            original.save(update_fields=["evicted_at"])
        else:
            if reproduction.image_file:
                reproduction.image_file.delete(save=False)
            reproduction.image_file.save(
                f"{original.pk}-{reproduction.pk}-{result.pixel_sha256[:12]}.png",
                ContentFile(result.png),
                save=False,
            )
        reproduction.pixel_sha256 = result.pixel_sha256
        reproduction.max_abs_diff = max_abs
        reproduction.psnr = None if psnr is None or math.isinf(psnr) else psnr
        reproduction.environment = result.environment
        reproduction.environment_diff = verdicts.environment_diff(
            original.environment, result.environment
        )
        reproduction.finished_at = timezone.now()
        reproduction.save()
        job_done(job=job)


def image_evict(*, image: Image) -> int:
    """Drop a verified record's full image, keeping a thumbnail. Returns the bytes saved.

    Only records whose latest finished reproduction is bit-identical qualify: their pixels can
    be re-rendered exactly on demand (image_restore_request).
    """
    latest = image_last_reproduction(image=image)
    if latest is None or latest.verdict != Reproduction.Verdict.BIT_IDENTICAL:
        raise ValueError(f"Image {image.pk} has no bit-identical reproduction; keep its bytes.")
    if image.evicted_at is not None or not image.image_file:
        return 0
    with image.image_file.open("rb") as handle:
        data = handle.read()
    thumbnail = thumbnail_bytes(data)
    with transaction.atomic():
        if not image.thumbnail:
            image.thumbnail.save(f"{image.pk}.webp", ContentFile(thumbnail), save=False)
        image.image_file.delete(save=False)
        image.evicted_at = timezone.now()
        image.save(update_fields=["thumbnail", "image_file", "evicted_at"])
    return len(data) - len(thumbnail)


THUMBNAIL_MAX_SIDE = 256


def thumbnail_bytes(png: bytes) -> bytes:
    with PILImage.open(io.BytesIO(png)) as decoded:
        small = decoded.convert("RGB")
        small.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE))
        buffer = io.BytesIO()
        small.save(buffer, format="WEBP", quality=80)
        return buffer.getvalue()


def _require_staff(actor: User | None) -> None:
    # Enforced here, not only by the admin: every caller of curation goes through these checks.
    if actor is None or not actor.is_staff:
        raise PermissionDenied("Only staff can curate the gallery.")


def collection_add_images(*, actor: User, collection: Collection, images: Iterable[Image]) -> int:
    """Append records to a collection (after its current last position); returns how many."""
    _require_staff(actor)
    with transaction.atomic():
        last = collection.items.aggregate(last=Max("position"))["last"]
        position = -1 if last is None else last
        existing = set(collection.items.values_list("image_id", flat=True))
        added = 0
        for image in images:
            if image.pk in existing:
                continue
            position += 1
            CollectionItem.objects.create(collection=collection, image=image, position=position)
            existing.add(image.pk)
            added += 1
        if collection.cover_id is None and existing:
            collection.cover_id = collection.items.first().image_id  # type: ignore[union-attr]
            collection.save(update_fields=["cover"])
    return added


def images_moderate(
    *,
    actor: User,
    images: QuerySet[Image],
    hidden: bool | None = None,
    nsfw: bool | None = None,
    featured: bool | None = None,
) -> int:
    """Set moderation flags on records; returns how many rows changed."""
    _require_staff(actor)
    changes = {
        name: value
        for name, value in (("hidden", hidden), ("nsfw", nsfw), ("featured", featured))
        if value is not None
    }
    return images.update(**changes) if changes else 0


def source_image_store(*, picture: PILImage.Image, kind: str) -> SourceImage:
    """Store an init image or mask once, by the sha256 of its decoded pixels."""
    mode = "L" if kind == SourceImage.Kind.MASK else "RGB"
    normalised = picture.convert(mode)
    digest = hashlib.sha256(
        f"{mode}:{normalised.width}x{normalised.height}:".encode() + normalised.tobytes()
    ).hexdigest()
    existing = SourceImage.objects.filter(pixel_sha256=digest, kind=kind).first()
    if existing is not None:
        return existing
    buffer = io.BytesIO()
    normalised.save(buffer, format="PNG")
    source = SourceImage(
        pixel_sha256=digest, kind=kind, width=normalised.width, height=normalised.height
    )
    source.file.save(f"{kind}-{digest[:16]}.png", ContentFile(buffer.getvalue()), save=False)
    source.save()
    return source


def source_from_record(*, image: Image) -> SourceImage:
    """'Use as init image': a record's own pixels become an init image."""
    if not image.image_file:
        raise ValueError("This record's image is evicted; open it first to re-render it.")
    with image.image_file.open("rb") as handle, PILImage.open(handle) as decoded:
        return source_image_store(picture=decoded, kind=SourceImage.Kind.INIT)
