"""Model versions: the checkpoints that render recipes, pinned by a digest of their files."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from engine import recipe


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
        ]
        ordering = ["name", "revision"]

    def __str__(self) -> str:
        return f"{self.name}@{self.revision}"
