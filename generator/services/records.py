"""Writes for records: their pixels, their full-text vector, source images, eviction."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.contrib.postgres.search import SearchVector
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Value
from django.db.models.expressions import CombinedExpression
from django.utils import timezone
from PIL import Image as PILImage

from engine.keywords import segment
from engine.provenance.signing import Ingredient
from engine.thumbnails import grid_previews
from generator.models import Image, Reproduction, SourceImage
from generator.selectors.records import image_last_reproduction
from generator.services.signing import image_signed_png

if TYPE_CHECKING:
    from django.contrib.auth.models import User


PIXEL_COLUMNS = ["image_file", "pixel_sha256", "thumbnail", "thumbnail_large"]


def image_store_pixels(
    *,
    image: Image,
    png: bytes,
    pixel_sha256: str,
    save: bool = True,
    parent: Ingredient | None = None,
) -> None:
    """Write the PNG for a record (replacing earlier files of its own), signed with the site's
    Content Credentials (generator.services.signing), its grid previews and its digest; with
    save=False the caller saves PIXEL_COLUMNS together with its own columns (one UPDATE per
    record). `parent`: the file an imported picture came from."""
    signed = image_signed_png(image=image, png=png, pixel_sha256=pixel_sha256, parent=parent)
    if image.image_file:  # a redelivered job replaces its own earlier file
        image.image_file.delete(save=False)
    image.image_file.save(f"{image.pk}-{pixel_sha256[:12]}.png", ContentFile(signed), save=False)
    image.pixel_sha256 = pixel_sha256
    image_store_previews(image=image, png=png)
    if save:
        image.save(update_fields=PIXEL_COLUMNS)


def image_store_previews(*, image: Image, png: bytes) -> None:
    """Write a record's grid previews (engine.thumbnails) from its PNG; the caller saves
    `thumbnail` and `thumbnail_large`."""
    previews = grid_previews(png)
    for field in (image.thumbnail, image.thumbnail_large):
        if field:
            field.delete(save=False)
    for field, preview in zip((image.thumbnail, image.thumbnail_large), previews, strict=False):
        field.save(f"{image.pk}-w{preview.width}.webp", ContentFile(preview.webp), save=False)


def image_previews_backfill(*, image: Image) -> None:
    """Write the grid previews of a record stored before they were written with its pixels."""
    with image.image_file.open("rb") as handle:
        image_store_previews(image=image, png=handle.read())
    image.save(update_fields=["thumbnail", "thumbnail_large"])


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


def source_image_store(*, picture: PILImage.Image, kind: str, owner: User | None) -> SourceImage:
    """Store an init image or mask once per owner, by the sha256 of its decoded pixels."""
    mode = "L" if kind == SourceImage.Kind.MASK else "RGB"
    normalised = picture.convert(mode)
    digest = hashlib.sha256(
        f"{mode}:{normalised.width}x{normalised.height}:".encode() + normalised.tobytes()
    ).hexdigest()
    existing = SourceImage.objects.filter(pixel_sha256=digest, kind=kind, owner=owner).first()
    if existing is not None:
        return existing
    buffer = io.BytesIO()
    normalised.save(buffer, format="PNG")
    source = SourceImage(
        pixel_sha256=digest,
        kind=kind,
        owner=owner,
        width=normalised.width,
        height=normalised.height,
    )
    source.file.save(f"{kind}-{digest[:16]}.png", ContentFile(buffer.getvalue()), save=False)
    source.save()
    return source


def source_from_record(*, image: Image, owner: User | None) -> SourceImage:
    """'Use as init image': a record's own pixels become an init image of `owner`'s."""
    if not image.image_file:
        raise ValueError("This record's image is evicted; open it first to re-render it.")
    with image.image_file.open("rb") as handle, PILImage.open(handle) as decoded:
        return source_image_store(picture=decoded, kind=SourceImage.Kind.INIT, owner=owner)


def image_evict(*, image: Image) -> int:
    """Drop a verified record's full image, keeping a thumbnail. Returns the bytes saved.

    Only records whose latest finished reproduction is bit-identical qualify: their pixels can
    be re-rendered exactly on demand (generator.services.reproductions.image_restore_request).
    """
    latest = image_last_reproduction(image=image)
    if latest is None or latest.verdict != Reproduction.Verdict.BIT_IDENTICAL:
        raise ValueError(f"Image {image.pk} has no bit-identical reproduction; keep its bytes.")
    if image.evicted_at is not None or not image.image_file:
        return 0
    with image.image_file.open("rb") as handle:
        data = handle.read()
    written = 0
    with transaction.atomic():
        if not image.thumbnail:  # a record stored before previews were written with pixels
            image_store_previews(image=image, png=data)
            written = sum(field.size for field in (image.thumbnail, image.thumbnail_large) if field)
        image.image_file.delete(save=False)
        image.evicted_at = timezone.now()
        image.save(update_fields=["thumbnail", "thumbnail_large", "image_file", "evicted_at"])
    return len(data) - written
