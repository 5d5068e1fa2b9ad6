"""The staff import upload: files (images, zips, tables), a column mapping, render or not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from engine.imports.discover import IMAGE_SUFFIXES, TABLE_SUFFIXES
from engine.imports.tables import FIELDS, parse_mapping

ACCEPTED = sorted(IMAGE_SUFFIXES | TABLE_SUFFIXES | {".zip"})
# A label's suffix. Django's own zh-Hans catalogue keeps the ASCII colon ("文件:"); the project's
# catalogue, which Django reads first, says "：", for every form's label_tag. Marked here, where
# a form uses it, so that makemessages keeps the entry.
LABEL_SUFFIX = _(":")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (Django's documented recipe)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ",".join(ACCEPTED)}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        single = super().clean
        return (
            [single(item, initial) for item in data]
            if isinstance(data, list | tuple)
            else [single(data, initial)]
        )


class ImportUploadForm(forms.Form):
    uploads = MultipleFileField(
        label=_("Files"),
        help_text=_(
            "Images from A1111, ComfyUI, InvokeAI, NovelAI, Fooocus, SwarmUI or Seedbank; zips "
            "of them; CSV, JSON Lines, Lexica JSON or DiffusionDB parquet tables."
        ),
    )
    mapping = forms.CharField(
        label=_("Column mapping (CSV / JSON Lines)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "seed=params.seed"}),
        help_text=format_lazy(
            _("One FIELD=COLUMN[.KEY…] per line; fields: {fields}."), fields=", ".join(FIELDS)
        ),
    )
    render_missing = forms.BooleanField(
        label=_("Render recipes that come without a picture (when their model is registered)"),
        required=False,
        initial=True,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", LABEL_SUFFIX)
        super().__init__(*args, **kwargs)

    def clean_uploads(self) -> list[Any]:
        files: list[Any] = self.cleaned_data["uploads"]
        unknown = [f.name for f in files if Path(f.name).suffix.lower() not in ACCEPTED]
        if unknown:
            raise forms.ValidationError(
                gettext("Not a file Seedbank imports: %(names)s (accepted: %(accepted)s).")
                % {"names": ", ".join(unknown), "accepted": ", ".join(ACCEPTED)}
            )
        total = sum(f.size for f in files)
        if total > settings.SEEDBANK_IMPORT_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                gettext(
                    "The files come to %(total)s MB; the limit is %(limit)s MB. Larger archives: "
                    "manage.py import on the server."
                )
                % {
                    "total": f"{total / 1e6:.0f}",
                    "limit": f"{settings.SEEDBANK_IMPORT_MAX_UPLOAD_BYTES / 1e6:.0f}",
                }
            )
        return files

    def clean_mapping(self) -> dict[str, str]:
        lines = [line.strip() for line in self.cleaned_data["mapping"].splitlines()]
        try:
            return parse_mapping([line for line in lines if line])
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
