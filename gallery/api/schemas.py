"""Request and response schemas of the JSON API. The render request is built from the recipe
type (engine.recipe): its fields, types, defaults and descriptions are the recipe's own."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.conf import settings
from ninja import Field, Schema
from pydantic import AfterValidator, ConfigDict, create_model

from engine.recipe import (
    HIRES_UPSCALERS,
    SEED_MAX,
    Hires,
    ResourceUse,
    field_type,
    has_default,
    input_fields,
    input_name,
    spec,
)
from gallery.forms.search import STORED_SIDE_MAX
from generator.models.model_versions import SAMPLING_FIELDS


def _storable(text: str) -> str:
    """Text Postgres can store: no NUL characters, no lone UTF-16 surrogates."""
    if "\x00" in text:
        raise ValueError("Text cannot contain NUL characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text must be valid Unicode (no lone surrogates).") from None
    return text


SafeText = Annotated[str, AfterValidator(_storable)]


class StrictSchema(Schema):
    # A boolean is not a number and an object is not a prompt: no lax coercion in the API.
    # Python's JSON reads NaN and Infinity, which no recipe field means (and jsonb refuses).
    model_config = ConfigDict(strict=True, allow_inf_nan=False)


class ClosedSchema(StrictSchema):
    # A recipe field this API does not know is refused by name, never dropped: a LoRA the
    # server ignored would come back as another picture with no word said.
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")


class LoraIn(ClosedSchema):
    resource: SafeText = Field(
        description="the LoRA's name (newest revision), name@revision, sha256, AIR or AutoV2"
    )
    weight: float = Field(1.0, description="its strength, as in A1111's <lora:name:weight>")


class HiresIn(ClosedSchema):
    scale: float = Field(description="final size / first-pass size (above 1, at most 4)")
    upscaler: str = Field("Latent", json_schema_extra={"enum": list(HIRES_UPSCALERS)})
    steps: int = Field(0, description="denoising steps of the second pass (0: as many as steps)")
    denoise: float = Field(0.5, description="denoising strength of the second pass (0..1]")

    def to_recipe(self) -> Hires:
        return Hires(**self.model_dump())


# Recipe fields whose values are not one number or text: how the API spells them.
_STRUCTURED: dict[type, tuple[Any, Any, str]] = {
    tuple: (list[LoraIn], [], "LoRAs in the order they are applied (adapters sum in order)."),
    ResourceUse: (
        SafeText | None,
        None,
        "A VAE by name, sha256, AIR or AutoV2; absent: the model's own.",
    ),
    Hires: (HiresIn | None, None, "A1111's hires fix: a second pass at a larger size."),
}


def _recipe_in() -> type[Schema]:
    fields: dict[str, Any] = {}
    for recipe_field in input_fields():
        about = spec(recipe_field)
        kind, optional = field_type(recipe_field)
        if kind in _STRUCTURED:
            structured, empty, explained = _STRUCTURED[kind]
            fields[input_name(recipe_field)] = (
                structured,
                Field(empty, title=str(about.label), description=explained),
            )
            continue
        annotation: Any = SafeText if kind is str else kind
        choices: list[Any] = [value for value, _ in about.choices]
        if recipe_field.name == "precision":  # what this deployment's workers render
            choices = list(settings.SEEDBANK_PRECISIONS)
        default: Any = recipe_field.default if has_default(recipe_field) else ...
        # Plain str: the engine's texts may be engine.messages.Message (a str subclass), which
        # schema tooling (jsonschema) refuses. The API documents itself in English.
        description = str(about.help)
        if about.local_ref:
            description = f"Id of a stored {about.label.lower()} on this site."
        if recipe_field.name in SAMPLING_FIELDS:
            description = (
                f"{description} Absent: the model's recommended value where it states one "
                f"(its page on this site says it), else {default}."
            ).strip()
        if about.input_name == "model_version":
            optional, default = True, None
            description = "Id of a model version on this site; absent: the site's default model."
        if recipe_field.name == "refiner":
            description = (
                "SDXL only: a second model that finishes the picture (an SDXL refiner or SDXL "
                "model on this site) by name (newest revision), name@revision or weights digest; "
                "stored as its weights digest. Absent or empty: none."
            )
        fields[input_name(recipe_field)] = (
            annotation | None if optional else annotation,
            Field(
                default,
                title=str(about.label),
                description=description or None,
                json_schema_extra={"enum": choices} if choices else None,
            ),
        )
    model: type[Schema] = create_model("RecipeIn", __base__=ClosedSchema, **fields)
    return model


RecipeIn = _recipe_in()


class Errors(Schema):
    errors: dict[str, list[str]] = Field(description="messages by field name")


class Message(Schema):
    error: str


class LexicaImage(Schema):
    id: str
    gallery: str
    src: str
    srcSmall: str
    prompt: str
    width: int
    height: int
    seed: str  # Lexica sends seeds as strings
    grid: bool
    model: str
    guidance: float
    promptid: str
    nsfw: bool


class LexicaResponse(Schema):
    images: list[LexicaImage]


class Scores(Schema):
    rank: float
    cosine: float | None
    keyword: float | None


class ImageResult(Schema):
    kind: Literal["record"] = Field("record", description="a record: a picture with its recipe")
    id: int
    url: str
    src: str
    pixel_sha256: str
    recipe: dict[str, Any] = Field(description="the portable recipe (model by name and digest)")
    scores: Scores
    variants: int = Field(
        1,
        description="records with this recipe but another seed (a batch, a seed sweep), this "
        "one included: they are one result, the best-ranked; the record page lists them",
    )
    nsfw: bool = Field(False, description="flagged NSFW by moderation (blur it, or leave it out)")
    likes: int = Field(0, description="how many signed-in users like the record")


class PromptOnlyResult(Schema):
    """An imported row's prompt with no picture here: never a record, never its original."""

    kind: Literal["prompt_only"] = "prompt_only"
    id: int = Field(description="the imported row (archive source record) id")
    prompt: str
    negative_prompt: str
    tool: str = Field(description="the tool the row was imported from")
    location: str = Field(description='where in the import it was, e.g. "prompts.csv line 12"')
    reason: str = Field(description="why Seedbank could not render it as its source did")
    nsfw: bool
    render_url: str = Field(description="the generate form prefilled with this prompt")
    scores: Scores


class ImagesResponse(Schema):
    results: list[ImageResult]
    prompt_only: list[PromptOnlyResult] = Field(
        default_factory=list,
        description="imported prompts (no picture here) matching q, on the first page of a "
        "search by words without filters",
    )
    hidden_below_threshold: int
    threshold: float | None = Field(
        None, description="the cosine under which vector matches were hidden (None: no bound)"
    )
    reason: str | None = Field(
        None,
        description='"no_meaning": q meant nothing to the search model (random letters, words it '
        "never saw): no images match by meaning, and results holds keyword matches only; "
        "keyword_matches says how many mode=keyword would find; "
        '"some_words": no record matched q as a whole, results match some of its words, each '
        "on its own (matched_words lists them); None: the search was judged normally",
    )
    keyword_matches: int = Field(0, description='with reason "no_meaning" in mode=vector')
    matched_words: list[str] = Field(
        default_factory=list, description='with reason "some_words": the words that matched'
    )
    unmatched_words: list[str] = Field(
        default_factory=list,
        description='with reason "some_words": the words searched alone that matched nothing',
    )
    next_cursor: str | None


class ImagesQuery(Schema):
    """Ranked search: words (q) or an image id (like), filters, threshold, cursor."""

    q: SafeText = Field(
        "",
        max_length=500,
        description='words, "phrases", -words and filters (seed:1010 steps:>30 sampler:DDIM '
        "size:512x512 model: lora: guidance:<3 user: collection: lang:zh verified:yes); "
        "an unknown filter is a 400",
    )
    mode: str = Field(
        "hybrid", description="ranking", json_schema_extra={"enum": ["hybrid", "vector", "keyword"]}
    )
    like: int | None = Field(None, description="image id for image→image")
    cursor: str | None = Field(None, description="next_cursor of the previous page")
    limit: int = Field(24, ge=1, le=100, description="page size")
    model: str = Field("", description="model version name, e.g. tiny-sd@seed0")
    scheduler: str = Field("", description="canonical scheduler name, e.g. PNDM")
    width: int | None = Field(None, ge=1, le=STORED_SIDE_MAX, description="exact width in pixels")
    height: int | None = Field(None, ge=1, le=STORED_SIDE_MAX, description="exact height in pixels")
    seed: int | None = Field(None, ge=0, le=SEED_MAX, description="exact seed")
    date_from: str = Field("", description="created on or after (YYYY-MM-DD)")
    date_to: str = Field("", description="created on or before (YYYY-MM-DD)")
    collection: str = Field("", description="slug of a public collection")
    nsfw: str = Field(
        "include", json_schema_extra={"enum": ["include", "exclude", "only"]}, description="NSFW"
    )
    min_score: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="hide vector matches below this cosine (words: the model's default; -1: none)",
    )
    sort: str = Field(
        "",
        description="\"likes\": the relevant results (the ranking's first 8 pages of the site's "
        "page size) ordered by likes, most first; empty: by rank",
        json_schema_extra={"enum": ["", "likes"]},
    )


class Progress(Schema):
    step: int
    total: int


class JobImage(Schema):
    id: int
    status: str
    seed: int
    pixel_sha256: str
    url: str
    src: str | None


class QueuePlace(Schema):
    ahead: int = Field(
        description="jobs ahead of this one: those rendering now and the older queued ones"
    )
    running: int = Field(description="of those, jobs rendering now")
    estimate_seconds: float | None = Field(
        description="rough wait until this job starts: what the running jobs have left (their "
        "progress) and recent render times; null for the first in line or without history"
    )


class JobOut(Schema):
    id: int
    kind: str
    status: str = Field(description="queued, running, done, failed or cancelled")
    progress: Progress
    queue: QueuePlace | None = Field(None, description="only while the job is queued")
    error: str
    render_seconds: float | None
    url: str
    images: list[JobImage]
    reproduction: dict[str, Any] | None = Field(None, description="verdict of a rerun")
