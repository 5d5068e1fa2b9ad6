"""The "Check a picture" form: one file, read whole by gallery.provenance.picture_check."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from engine.uploads import UploadRejected
from gallery.provenance import PictureCheck, picture_check, picture_check_limits
from generator.i18n import translated


class PictureCheckForm(forms.Form):
    # A FileField, not ImageField: engine.provenance gives the clear messages (bombs, limits).
    picture = forms.FileField(
        label=_("Picture"),
        help_text=_("PNG, JPEG or WebP. Nothing is stored: the file is read and forgotten."),
    )

    def __init__(self, *args: Any, viewer: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.viewer = viewer
        self.check: PictureCheck | None = None

    def clean_picture(self) -> Any:
        upload = self.cleaned_data["picture"]
        limit = picture_check_limits()["max_bytes"]
        # One byte more than the limit is enough to refuse a larger file: never read it whole.
        data = upload.read(limit + 1)
        try:
            self.check = picture_check(data=data, viewer=self.viewer)
        except UploadRejected as exc:
            raise forms.ValidationError(translated(exc.args[0])) from exc
        return upload
