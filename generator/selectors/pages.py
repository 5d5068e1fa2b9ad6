"""Keyset pages of records, newest first: the gallery, a user's renders.

The cursor is the (created_at, id) of the last record shown, so a deep page costs what the
first does and rows arriving meanwhile never repeat or skip a record (an OFFSET would do both).
Records that differ only in the seed are one card, their newest (generator.selectors.variants).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from generator.models import Image
from generator.models.records import ImageQuerySet
from generator.selectors.variants import images_newest_of_each_recipe, variants_count


@dataclass(frozen=True)
class RecordPage:
    images: list[Image]
    next_cursor: str | None


def newest_first_page(*, images: ImageQuerySet, cursor: str | None, page_size: int) -> RecordPage:
    """One page of `images` after `cursor` (an unreadable cursor starts at the newest)."""
    ordered = (
        images_newest_of_each_recipe(images)
        .annotate(variant_members=variants_count(images))
        .order_by("-created_at", "-id")
    )
    position = _decode_cursor(cursor) if cursor else None
    if position is not None:
        created_at, pk = position
        ordered = ordered.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=pk))
    rows: list[Image] = list(ordered[: page_size + 1])
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    for row in rows:
        row.variants = getattr(row, "variant_members", None) or 1
    return RecordPage(images=rows, next_cursor=_encode_cursor(rows[-1]) if has_more else None)


def _encode_cursor(image: Image) -> str:
    return f"{image.created_at.isoformat()}~{image.pk}"


def _decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        stamp, pk = cursor.rsplit("~", 1)
        moment = datetime.fromisoformat(stamp)
        number = int(pk)
    except ValueError:
        return None
    # A naive stamp would compare in the server's zone; one past bigint would fail in SQL.
    if moment.tzinfo is None or not 0 < number < 2**63:
        return None
    return moment, number
