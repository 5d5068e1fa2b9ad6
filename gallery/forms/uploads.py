"""Uploaded images (init images, masks, image→image search) through the engine's validator, and
the stored ones a recipe names by id."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext

from engine.uploads import UploadRejected, open_upload
from generator.i18n import translated
from generator.models import SourceImage
from generator.selectors.recipes import source_image_find, source_usable


def picture_from_upload(
    upload: Any, *, min_side: int | None = None, max_decoded_pixels: int | None = None
) -> Any:
    """A validated PIL image from an uploaded file, or a form error saying what is wrong.
    `min_side` and `max_decoded_pixels`: engine.uploads.open_upload (image search)."""
    try:
        return open_upload(
            upload,
            max_bytes=settings.SEEDBANK_UPLOAD_MAX_BYTES,
            max_pixels=settings.SEEDBANK_UPLOAD_MAX_PIXELS,
            min_side=min_side,
            max_decoded_pixels=max_decoded_pixels,
        )
    except UploadRejected as exc:
        raise forms.ValidationError(translated(exc.args[0])) from exc


Size = tuple[int, int]


def stored_sources_errors(
    *,
    init_image_id: int | None,
    mask_id: int | None,
    viewer: Any,
    init_size: Size | None = None,
    mask_size: Size | None = None,
) -> dict[str, list[str]]:
    """Why the stored init image and mask a recipe names by id cannot be used, by recipe field
    ("init_image", "mask"); empty when they can. `init_size` / `mask_size` are the sizes of an
    input given otherwise (an upload, a painted mask), compared with the stored one.

    An id that is not the viewer's to use reads as unknown, like one that does not exist: which
    ids exist is nobody else's business. A stored input whose file is gone is refused here, not
    by the worker after the job is queued."""
    errors: dict[str, list[str]] = {}
    for name, source_id, kind, unknown, lost in (
        (
            "init_image",
            init_image_id,
            SourceImage.Kind.INIT,
            gettext("Unknown init image %(id)s."),
            gettext("The stored init image %(id)s has lost its file; upload the image again."),
        ),
        (
            "mask",
            mask_id,
            SourceImage.Kind.MASK,
            gettext("Unknown mask image %(id)s."),
            gettext("The stored mask %(id)s has lost its file; paint or upload the mask again."),
        ),
    ):
        if source_id is None:
            continue
        source = source_image_find(source_id=source_id, kind=kind)
        if source is None or not source_usable(source_id=source.pk, kind=kind, user=viewer):
            errors[name] = [unknown % {"id": source_id}]
        elif not source.file.name or not source.file.storage.exists(source.file.name):
            errors[name] = [lost % {"id": source_id}]
        elif name == "init_image":
            init_size = (source.width, source.height)
        else:
            mask_size = (source.width, source.height)
    if init_size and mask_size and init_size != mask_size and not errors:
        # The mask says which pixels of the init image to repaint: of another size, it would
        # be stretched over pixels nobody painted.
        errors["mask"] = [
            gettext(
                "The mask is %(mask)s pixels and the init image %(init)s; a mask must be the "
                "size of its init image."
            )
            % {"mask": "×".join(map(str, mask_size)), "init": "×".join(map(str, init_size))}
        ]
    return errors
