"""The search form: query, mode, filters, threshold, and image→image by upload or record."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from engine.recipe import SEED_MAX
from engine.schedulers import SCHEDULERS
from engine.search_query import QueryError, SearchQuery, parse_query
from gallery.forms.uploads import picture_from_upload
from gallery.selectors import (
    collection_choices_public,
    collection_image_ids,
)
from generator.i18n import translated
from generator.selectors.model_versions import model_version_names
from search.selectors import SearchFilters

MODES = [
    ("hybrid", _("words + meaning")),
    ("vector", _("meaning (CLIP)")),
    ("keyword", _("exact words")),
]


# The largest width or height a record can hold (generator.models.Image: a smallint column):
# imported records may be larger than SEEDBANK_MAX_SIDE allows renders to be, so the filter is
# bounded by what is stored, and a larger value is refused instead of reaching the database.
STORED_SIDE_MAX = 32767

# The shorter side an image search decodes an upload to, at least: twice CLIP ViT-B/32's input
# (224), so its own resize still averages pixels.
SEARCH_DECODE_SIDE = 448

# Infinite scroll over search results stops here (8 × 24 = 192 records): past that a better
# query serves better than scrolling, and each page re-ranks everything above it.
SEARCH_MAX_PAGES = 8


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=500, label=_("Search"))
    mode = forms.ChoiceField(choices=MODES, required=False, initial="hybrid", label=_("Search by"))
    # A FileField, not ImageField: open_upload gives the clear messages (bombs, limits, types).
    image = forms.FileField(required=False, label=_("…or find images like this one"))
    like = forms.IntegerField(required=False, widget=forms.HiddenInput)
    model = forms.ChoiceField(required=False, label=_("Model"))
    scheduler = forms.ChoiceField(required=False, label=_("Scheduler"))
    width = forms.IntegerField(
        required=False, min_value=1, max_value=STORED_SIDE_MAX, label=_("Width")
    )
    height = forms.IntegerField(
        required=False, min_value=1, max_value=STORED_SIDE_MAX, label=_("Height")
    )
    # Every record's seed is a recipe's (imports refuse others): 0..SEED_MAX.
    seed = forms.IntegerField(required=False, min_value=0, max_value=SEED_MAX, label=_("Seed"))
    date_from = forms.DateField(
        required=False,
        label=_("Made on or after"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        required=False,
        label=_("Made on or before"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    collection = forms.ChoiceField(required=False, label=_("Collection"))
    nsfw = forms.ChoiceField(
        required=False,
        label=_("NSFW"),
        choices=[
            ("include", _("show NSFW")),
            ("exclude", _("hide NSFW")),
            ("only", _("only NSFW")),
        ],
    )
    min_score = forms.FloatField(
        required=False,
        min_value=-1.0,
        max_value=1.0,
        label=_("Relevance threshold (cosine)"),
        help_text=_("Blank: the model's default for searches by words; -1 shows every match."),
    )
    collapse = forms.BooleanField(required=False, label=_("Collapse near-duplicates"))
    # "likes": the relevant results (the ranking's first SEARCH_MAX_PAGES pages, above the
    # threshold) ordered by how many like them (gallery/views/search.py).
    sort = forms.ChoiceField(
        required=False,
        label=_("Order"),
        choices=[("", _("most relevant")), ("likes", _("most liked"))],
    )
    # Ranked results page by rank within a bounded ranking (see gallery/views/search.py).
    page = forms.IntegerField(
        required=False, min_value=1, max_value=SEARCH_MAX_PAGES, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # From the model registry, never a DISTINCT over every record (it grows with them).
        models = [(name, name) for name in model_version_names()]
        self._choices("model", [("", _("any model")), *models])
        self._choices("scheduler", [("", _("any scheduler")), *((s, s) for s in SCHEDULERS)])
        self._choices("collection", [("", _("any collection")), *collection_choices_public()])

    def _choices(self, name: str, choices: list[tuple[str, Any]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def clean_q(self) -> str:
        """The box's text, parsed once (engine.search_query): words for keyword and meaning,
        phrases, -words and field filters; a filter it cannot use is the field's error."""
        text: str = self.cleaned_data.get("q") or ""
        try:
            parsed = parse_query(text)
        except QueryError as error:
            raise forms.ValidationError(
                [translated(message) for message in error.messages], code="query"
            ) from None
        slugs = {slug for slug, _title in self._choices_of("collection") if slug}
        if parsed.collection and parsed.collection not in slugs:
            raise forms.ValidationError(
                _("No public collection is called “%(slug)s”."),
                code="collection",
                params={"slug": parsed.collection},
            )
        self.search_query = parsed
        return text

    def _choices_of(self, name: str) -> list[tuple[Any, Any]]:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        return list(field.choices)  # type: ignore[arg-type]

    def search_text(self) -> str:
        """What words and meaning are searched for: the box less its filters."""
        return self.search_query.text

    def clean_image(self) -> Any:
        upload = self.cleaned_data.get("image")
        if not upload:
            return None
        # CLIP sees 224 pixels a side: a photo is decoded at a fraction of its size, and a PNG
        # (which cannot be) is held to its own limit, checked before it is decoded.
        return picture_from_upload(
            upload,
            min_side=SEARCH_DECODE_SIDE,
            max_decoded_pixels=settings.SEEDBANK_SEARCH_UPLOAD_MAX_PIXELS,
        )

    def filters(self) -> SearchFilters:
        """The form's filter fields, and the box's: where both name one (seed=1 and seed:2),
        the box wins. It is what the person typed last and reads in the page's heading, while
        a form field may be left over from an earlier search (the filters stay in the URL):
        ANDing them would answer "nothing" to a query that reads as reasonable."""
        data = self.cleaned_data
        form = SearchFilters(
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
        models = [name for name, _label in self._choices_of("model") if name]
        return query_filters(getattr(self, "search_query", SearchQuery()), form, models=models)


def query_filters(
    query: SearchQuery, base: SearchFilters | None = None, *, models: list[str] | None = None
) -> SearchFilters:
    """`base` with the box's filters in place of the fields they name. A model is matched
    to a registered one whatever its case (`model:TINY-SD@seed0`); any other name is kept
    as written (imported records name models this site does not have)."""
    base = base or SearchFilters()
    given = query.given
    changes: dict[str, Any] = {
        "steps": query.steps,
        "guidance": query.guidance,
        "user": query.user,
        "loras": query.loras,
        "lang": query.lang,
        "verified": query.verified,
        "phrases": query.phrases,
        "excluded": query.excluded,
    }
    if "model" in given:
        registered = {name.casefold(): name for name in models or model_version_names()}
        changes["model"] = registered.get(query.model.casefold(), query.model)
    if "sampler" in given:
        changes["scheduler"] = query.sampler
    if "size" in given:
        changes["width"], changes["height"] = query.width, query.height
    if "seed" in given:
        changes["seed"] = query.seed
    if "collection" in given:
        changes["within"] = collection_image_ids(slug=query.collection)
    return replace(base, **changes)
