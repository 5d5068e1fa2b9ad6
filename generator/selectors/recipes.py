"""Which recipes this deployment accepts: the engine's rules with this deployment's limits."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext

from engine.recipe import (
    PRECISIONS,
    SDXL,
    SDXL_REFINER,
    Recipe,
    RecipeLimits,
    family_errors,
    recipe_errors,
)
from generator.i18n import translated
from generator.models import ModelVersion, SourceImage
from generator.selectors.records import images_visible_to, source_reachable
from generator.selectors.resources import recipe_resources_problems


def recipe_limits() -> RecipeLimits:
    return RecipeLimits(
        max_side=settings.SEEDBANK_MAX_SIDE,
        max_steps=settings.SEEDBANK_MAX_STEPS,
        max_batch=settings.SEEDBANK_MAX_BATCH,
        max_job_megapixel_steps=settings.SEEDBANK_MAX_JOB_MEGAPIXEL_STEPS,
    )


def model_versions_renderable() -> QuerySet[ModelVersion]:
    """Models that take new work as a recipe's model (archived ones keep their records but
    render nothing new; an SDXL refiner only finishes another model's render)."""
    return _model_versions_unarchived().exclude(family=ModelVersion.Family.SDXL_REFINER)


def model_versions_refiners() -> QuerySet[ModelVersion]:
    """Models that can take over an SDXL render as its refiner: SDXL refiners, and SDXL models
    (any SDXL folder loads as the refiner's img2img pipeline)."""
    return _model_versions_unarchived().filter(family__in=(SDXL_REFINER, SDXL))


def _model_versions_unarchived() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(archived_at__isnull=True)


def model_version_default() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_default=True).first()


def recipe_validate(*, recipe: Recipe, user: Any = None) -> ModelVersion:
    """Raise ValidationError (by field) unless `user` may render the recipe; return its model.

    `user` None is the system (demo seeding, commands), which may use any stored source."""
    errors = {
        name: [translated(message) for message in messages]
        for name, messages in recipe_errors(recipe, recipe_limits()).items()
    }
    # Refiners too: choosing one as the model is refused by family_errors, saying why.
    model_version = (
        _model_versions_unarchived().filter(pk=recipe.model_version_id).first()
        if recipe.model_version_id is not None
        else None
    )
    if model_version is None:
        errors.setdefault("model_version", []).append(
            gettext("Unknown model version %(id)s; choose a registered one that is not archived.")
            % {"id": repr(recipe.model_version_id)}
        )
    refiner_family = None
    if recipe.refiner and not errors.get("refiner"):  # a malformed digest is already said
        refiner = _model_versions_unarchived().filter(weights_digest=recipe.refiner).first()
        if refiner is None:
            errors.setdefault("refiner", []).append(
                gettext(
                    "No registered model that is not archived has the weights digest "
                    "%(digest)s; choose a registered SDXL refiner or SDXL model."
                )
                % {"digest": recipe.refiner}
            )
        else:
            refiner_family = refiner.family
    if model_version is not None:
        for name, messages in family_errors(recipe, model_version.family, refiner_family).items():
            errors.setdefault(name, []).extend(translated(message) for message in messages)
    if recipe.precision in PRECISIONS and recipe.precision not in settings.SEEDBANK_PRECISIONS:
        errors.setdefault("precision", []).append(
            gettext(
                "Precision %(value)s is not available on this deployment's workers "
                "(fp16 needs CUDA GPUs); use fp32."
            )
            % {"value": recipe.precision}
        )
    for name, source_id, kind, unknown in (
        (
            "init_image",
            recipe.init_image_id,
            SourceImage.Kind.INIT,
            gettext("Unknown init image %(id)s."),
        ),
        ("mask", recipe.mask_id, SourceImage.Kind.MASK, gettext("Unknown mask image %(id)s.")),
    ):
        if source_id is not None and not source_usable(source_id=source_id, kind=kind, user=user):
            errors.setdefault(name, []).append(unknown % {"id": source_id})
    if not errors.get("loras") and not errors.get("vae"):
        for name, messages in recipe_resources_problems(recipe=recipe).items():
            errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    assert model_version is not None
    return model_version


def source_usable(*, source_id: int, kind: str, user: Any) -> bool:
    """A source is usable by the system (user None) and as source_reachable says."""
    sources = SourceImage.objects.filter(pk=source_id, kind=kind)
    if user is None:
        return sources.exists()
    return source_reachable(sources=sources, viewer=user, records=images_visible_to(user))


def source_image_find(*, source_id: object, kind: str) -> SourceImage | None:
    """A stored init image or mask by id (any value a form may hold), or None."""
    if not str(source_id or "").isdigit():
        return None
    return SourceImage.objects.filter(pk=int(str(source_id)), kind=kind).first()
