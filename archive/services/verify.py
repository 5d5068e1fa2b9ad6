"""Proving imported records: re-render each and compare with the source's own pixels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.selectors import imported_images_to_verify
from generator.models import Reproduction
from generator.services.reproductions import reproduction_create

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def imports_verify(
    *, requested_by: User | None = None, limit: int | None = None
) -> list[Reproduction]:
    """Queue a reproduction check (generator's, the same as any record's) for imported records
    not checked yet; a bit-identical verdict marks the source verified."""
    images = imported_images_to_verify()
    if limit is not None:
        images = images[:limit]
    return [
        reproduction_create(image=image, requested_by=requested_by, whole_batch=False)
        for image in images
    ]
