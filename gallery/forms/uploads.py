"""Uploaded images (init images, masks, image→image search) through the engine's validator."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from engine.uploads import UploadRejected, open_upload
from generator.i18n import translated


def picture_from_upload(upload: Any) -> Any:
    """A validated PIL image from an uploaded file, or a form error saying what is wrong."""
    try:
        return open_upload(
            upload,
            max_bytes=settings.SEEDBANK_UPLOAD_MAX_BYTES,
            max_pixels=settings.SEEDBANK_UPLOAD_MAX_PIXELS,
        )
    except UploadRejected as exc:
        raise forms.ValidationError(translated(exc.args[0])) from exc
