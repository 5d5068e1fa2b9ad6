"""The search form: query, mode, filters, threshold, and image→image by upload or record."""

from __future__ import annotations

from typing import Any

from django import forms

from engine.schedulers import SCHEDULERS
from gallery.forms.uploads import picture_from_upload
from gallery.selectors import (
    collection_choices_public,
    collection_image_ids,
)
from generator.selectors.model_versions import model_version_names
from search.selectors import SearchFilters

MODES = [("hybrid", "words + meaning"), ("vector", "meaning (CLIP)"), ("keyword", "exact words")]


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=500, label="Search")
    mode = forms.ChoiceField(choices=MODES, required=False, initial="hybrid")
    # A FileField, not ImageField: open_upload gives the clear messages (bombs, limits, types).
    image = forms.FileField(required=False, label="…or find images like this one")
    like = forms.IntegerField(required=False, widget=forms.HiddenInput)
    model = forms.ChoiceField(required=False)
    scheduler = forms.ChoiceField(required=False)
    width = forms.IntegerField(required=False, min_value=1)
    height = forms.IntegerField(required=False, min_value=1)
    seed = forms.IntegerField(required=False, min_value=0)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    collection = forms.ChoiceField(required=False)
    nsfw = forms.ChoiceField(
        required=False,
        choices=[("include", "show NSFW"), ("exclude", "hide NSFW"), ("only", "only NSFW")],
    )
    min_score = forms.FloatField(
        required=False,
        min_value=-1.0,
        max_value=1.0,
        label="Relevance threshold (cosine)",
        help_text="Blank: the model's default for searches by words; -1 shows every match.",
    )
    collapse = forms.BooleanField(required=False, label="Collapse near-duplicates")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # From the model registry, never a DISTINCT over every record (it grows with them).
        models = [(name, name) for name in model_version_names()]
        self._choices("model", [("", "any model"), *models])
        self._choices("scheduler", [("", "any scheduler"), *((s, s) for s in SCHEDULERS)])
        self._choices("collection", [("", "any collection"), *collection_choices_public()])

    def _choices(self, name: str, choices: list[tuple[str, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def clean_image(self) -> Any:
        upload = self.cleaned_data.get("image")
        return picture_from_upload(upload) if upload else None

    def filters(self) -> SearchFilters:
        data = self.cleaned_data
        return SearchFilters(
            model=data.get("model") or "",
            scheduler=data.get("scheduler") or "",
            width=data.get("width"),
            height=data.get("height"),
            seed=data.get("seed"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            within=collection_image_ids(slug=slug) if (slug := data.get("collection")) else None,
            nsfw=data.get("nsfw") or "include",
        )
