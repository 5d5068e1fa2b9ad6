"""Model versions: the checkpoints that render recipes, pinned by a digest of their files."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from engine import recipe
from engine.schedulers import SCHEDULERS

# The recipe fields a model recommends values for (engine.recipe's names): what the generate
# form offers and what an API request that leaves them out renders with (issue #29: the scene
# model follows its prompts at guidance 2, and SD's usual 7.5 smears it into a dark blob).
SAMPLING_FIELDS = ("scheduler", "steps", "guidance", "width", "height")


def validate_scheduler(value: str) -> None:
    if value and value not in SCHEDULERS:
        raise ValidationError(
            _("Unknown scheduler %(value)s; choose one from the list."), params={"value": value}
        )


def validate_side(value: int) -> None:
    if value % recipe.SIDE_MULTIPLE:
        raise ValidationError(
            _("A side must be a multiple of %(step)s (got %(side)s)."),
            params={"step": recipe.SIDE_MULTIPLE, "side": value},
        )


class ModelVersion(models.Model):
    """A diffusion checkpoint that renders recipes, pinned by a digest of its files."""

    class Variant(models.TextChoices):
        # Trainers keep an exponential moving average (EMA) of the weights beside the raw ones;
        # the two render differently, so which one a model is must be on record.
        EMA = "ema", _("EMA weights")
        NON_EMA = "non-ema", _("non-EMA (raw training) weights")
        FULL = "full", _("full training checkpoint (EMA and non-EMA)")
        UNKNOWN = "", _("not stated")

    class Family(models.TextChoices):
        # What the folder's model_index.json names (engine.recipe.model_family), read once at
        # registration: web processes may not have the files, and the recipe rules need it.
        SD = recipe.SD, _("Stable Diffusion 1.x/2.x")
        SDXL = recipe.SDXL, _("Stable Diffusion XL")
        SDXL_REFINER = recipe.SDXL_REFINER, _("Stable Diffusion XL refiner")

    class SourceKind(models.TextChoices):
        DIFFUSERS_FOLDER = "diffusers-folder", _("diffusers folder")
        SINGLE_FILE = "single-file", _("single-file checkpoint, converted")
        BLEND = "blend", _("weighted blend of two models")

    name = models.CharField(max_length=200)
    revision = models.CharField(max_length=100, default="main")
    path = models.CharField(max_length=1000, help_text="Local diffusers folder")
    weights_digest = models.CharField(max_length=64)
    default_scheduler = models.CharField(max_length=40, default="PNDM")
    native_width = models.PositiveIntegerField(default=512)
    native_height = models.PositiveIntegerField(default=512)
    is_default = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Existing rows are SD 1.x (the shipped scene models and blends of them): hence the default.
    family = models.CharField(
        max_length=20, choices=Family.choices, default=Family.SD, db_default=Family.SD
    )
    variant = models.CharField(max_length=10, choices=Variant.choices, blank=True, default="")
    license = models.CharField(max_length=200, blank=True)
    source_kind = models.CharField(
        max_length=20, choices=SourceKind.choices, default=SourceKind.DIFFUSERS_FOLDER
    )
    # The folder we render from is a conversion; this pins the file it was converted from, so
    # "the same checkpoint" can be checked against the copy someone else downloaded.
    source_sha256 = models.CharField(
        max_length=64, blank=True, help_text="sha256 of the single-file checkpoint converted"
    )
    # A blend is alpha * A + (1 - alpha) * B, tensor by tensor. The definition is kept (not just
    # the files) so the blend can be rebuilt when its files go missing; PROTECT keeps the
    # ingredients from being deleted under it (archive them instead).
    blend_a = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="blends_as_a"
    )
    blend_b = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="blends_as_b"
    )
    blend_alpha = models.FloatField(null=True, blank=True, help_text="weight of A (0..1)")
    # How the model samples best, as its authors (or the demo's measurements) say; blank: the
    # recipe's defaults. A record keeps what it was rendered with: these only seed new recipes.
    recommended_guidance = models.FloatField(
        _("recommended guidance"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(recipe.GUIDANCE_MAX)],
    )
    recommended_steps = models.PositiveSmallIntegerField(
        _("recommended steps"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    recommended_scheduler = models.CharField(
        _("recommended scheduler"),
        max_length=40,
        blank=True,
        default="",
        validators=[validate_scheduler],
    )
    recommended_width = models.PositiveIntegerField(
        _("recommended width"),
        null=True,
        blank=True,
        validators=[MinValueValidator(recipe.SIDE_MIN), validate_side],
    )
    recommended_height = models.PositiveIntegerField(
        _("recommended height"),
        null=True,
        blank=True,
        validators=[MinValueValidator(recipe.SIDE_MIN), validate_side],
    )
    # What the model can draw, and prompts that show it, by language code ("en", "zh"): a small
    # model knows few words, and a prompt outside them is a silent surprise otherwise.
    vocabulary = models.JSONField(
        _("vocabulary"),
        null=True,
        blank=True,
        help_text=_("The words it knows: a text for each language code (en, zh)."),
    )
    example_prompts = models.JSONField(
        _("example prompts"),
        null=True,
        blank=True,
        help_text=_("Prompts it draws well: a list for each language code (en, zh)."),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "revision"], name="model_version_unique"),
            # A blend without its full definition could not be rebuilt; anything else with one
            # would claim an origin it does not have.
            models.CheckConstraint(
                condition=(
                    models.Q(
                        source_kind="blend",
                        blend_a__isnull=False,
                        blend_b__isnull=False,
                        blend_alpha__gte=0.0,
                        blend_alpha__lte=1.0,
                    )
                    | models.Q(
                        ~models.Q(source_kind="blend"),
                        blend_a__isnull=True,
                        blend_b__isnull=True,
                        blend_alpha__isnull=True,
                    )
                ),
                name="model_version_blend_definition",
            ),
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="one_default_model_version",
            ),
            # A size is both sides; one side alone would pair with the recipe's other default.
            models.CheckConstraint(
                condition=models.Q(recommended_width__isnull=True, recommended_height__isnull=True)
                | models.Q(recommended_width__isnull=False, recommended_height__isnull=False),
                name="model_version_recommended_size_whole",
            ),
        ]
        ordering = ["name", "revision"]

    def __str__(self) -> str:
        return f"{self.name}@{self.revision}"

    def clean(self) -> None:
        super().clean()
        if (self.recommended_width is None) != (self.recommended_height is None):
            raise ValidationError(
                _("Give both the recommended width and height, or neither."),
                code="recommended_size_whole",
            )

    def recommended_sampling(self) -> dict[str, Any]:
        """The sampling values this model states, by recipe field name (none: an empty dict)."""
        stated = {
            "scheduler": self.recommended_scheduler or None,
            "steps": self.recommended_steps,
            "guidance": self.recommended_guidance,
            "width": self.recommended_width,
            "height": self.recommended_height,
        }
        return {name: value for name, value in stated.items() if value is not None}

    def sampling(self) -> dict[str, Any]:
        """What a new recipe with this model starts from: its recommended values where it
        states them, else the recipe's defaults."""
        return {**_RECIPE_SAMPLING, **self.recommended_sampling()}

    def vocabulary_in(self, language: str) -> str:
        """What it can draw, in `language` (a Django language code) or the nearest one it has."""
        return str(_in_language(self.vocabulary, language) or "")

    def example_prompts_in(self, language: str) -> list[str]:
        found = _in_language(self.example_prompts, language)
        return [str(prompt) for prompt in found] if isinstance(found, list) else []


_RECIPE_SAMPLING = {
    f.name: f.default for f in dataclasses.fields(recipe.Recipe) if f.name in SAMPLING_FIELDS
}


def _in_language(texts: Any, language: str) -> Any:
    """texts[language], else its main language's ("zh-hans" → "zh"), else English's."""
    if not isinstance(texts, dict):
        return None
    language = language.lower()
    for key in (language, language.split("-")[0], "en"):
        if key in texts:
            return texts[key]
    return None
