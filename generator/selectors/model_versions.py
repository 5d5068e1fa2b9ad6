"""Reads for model versions: whether a record's model (and refiner) can still re-render it,
finding a model by name or digest, model pages."""

from __future__ import annotations

from pathlib import Path

from django.db import models
from django.utils.translation import gettext

from engine.weights import MODEL_INDEX, files_digest
from generator.models import Image, ModelVersion
from generator.selectors.records import images_public

MODEL_PAGE_IMAGES = 48
_HEX = frozenset("0123456789abcdef")


class ModelUnavailable(Exception):
    """The model a record was made with is gone or changed: re-rendering would be a lie. The
    message is in the active language (the reader's on a page, English in workers)."""


def model_version_check(*, image: Image, verify_files: bool = True) -> ModelVersion:
    """The model to re-render `image` with, or ModelUnavailable saying what is wrong (with the
    model or with the refiner the recipe names).

    Pages pass verify_files=False (existence only); workers digest the files before every render.
    """
    expected = image.model_digest
    model_version = image.model_version
    if model_version is None:
        raise ModelUnavailable(
            gettext(
                "The model this record was made with (%(name)s, weights digest %(digest)s) has "
                "been deleted; it cannot be re-rendered."
            )
            % {"name": image.model_name, "digest": expected}
        )
    if model_version.weights_digest != expected:
        raise ModelUnavailable(
            gettext(
                "%(model)s is now registered with weights digest %(now)s, but this record was "
                "made with %(digest)s."
            )
            % {"model": model_version, "now": model_version.weights_digest, "digest": expected}
        )
    _check_files(model_version, verify_files=verify_files)
    if image.refiner:
        model_version_refiner_check(digest=image.refiner, verify_files=verify_files)
    return model_version


def _check_files(model_version: ModelVersion, *, verify_files: bool) -> None:
    """ModelUnavailable unless the model's folder is there (and, verifying, digests as
    registered)."""
    expected = model_version.weights_digest
    path = Path(model_version.path)
    if not (path / MODEL_INDEX).is_file():
        raise ModelUnavailable(
            gettext(
                "The files of %(model)s are missing at %(path)s (expected weights digest "
                "%(digest)s)."
            )
            % {"model": model_version, "path": path, "digest": expected}
        )
    if verify_files:
        found = files_digest(path)
        if found != expected:
            raise ModelUnavailable(
                gettext(
                    "The files of %(model)s at %(path)s have changed: expected weights digest "
                    "%(digest)s, found %(found)s."
                )
                % {"model": model_version, "path": path, "digest": expected, "found": found}
            )


def model_version_refiner_check(*, digest: str, verify_files: bool = True) -> ModelVersion:
    """The registered model whose files a recipe's `refiner` digest names, checked like a
    record's own model (archived ones too: they still re-render their records), or
    ModelUnavailable saying what is wrong. Where several rows share the digest, the first whose
    files are in place."""
    candidates = list(
        ModelVersion.objects.filter(weights_digest=digest).order_by(
            models.F("archived_at").asc(nulls_first=True), "created_at", "pk"
        )
    )
    if not candidates:
        raise ModelUnavailable(
            gettext(
                "No model with weights digest %(digest)s is registered here: the refiner this "
                "recipe names cannot be used."
            )
            % {"digest": digest}
        )
    problem: ModelUnavailable | None = None
    for candidate in candidates:
        try:
            _check_files(candidate, verify_files=verify_files)
        except ModelUnavailable as exc:
            problem = problem or exc
            continue
        return candidate
    assert problem is not None
    raise problem


def model_version_by_digest(*, digest: str) -> ModelVersion | None:
    """A registered model with these weights (unarchived first), or None."""
    if not digest:
        return None
    return (
        ModelVersion.objects.filter(weights_digest=digest)
        .order_by(models.F("archived_at").asc(nulls_first=True), "created_at", "pk")
        .first()
    )


def model_version_resolve(*, ref: str) -> ModelVersion | None:
    """The unarchived model `ref` names, as the API and forms take a refiner: its weights
    digest, "name@revision", or its name (the newest revision). None when there is none."""
    ref = ref.strip()
    if not ref:
        return None
    usable = ModelVersion.objects.filter(archived_at__isnull=True)
    lowered = ref.lower()
    if len(lowered) == 64 and set(lowered) <= _HEX:
        return usable.filter(weights_digest=lowered).order_by("created_at", "pk").first()
    name, _, revision = ref.partition("@")
    by_name = usable.filter(name=name)
    if revision:
        by_name = by_name.filter(revision=revision)
    return by_name.order_by("-created_at", "-pk").first()


def image_model_problem(*, image: Image) -> str | None:
    """Why `image` cannot be re-rendered with its own model and refiner (cheap checks only), or
    None."""
    try:
        model_version_check(image=image, verify_files=False)
    except ModelUnavailable as exc:
        return str(exc)
    return None


def model_version_find(*, name: str, revision: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(name=name, revision=revision).first()


def model_version_by_id(*, model_id: int) -> ModelVersion | None:
    return ModelVersion.objects.filter(pk=model_id).first()


def model_version_page(*, model_id: int) -> ModelVersion | None:
    """A model for its public page (archived ones too: their records stay readable)."""
    return ModelVersion.objects.select_related("blend_a", "blend_b").filter(pk=model_id).first()


def model_version_images(
    *, model_version: ModelVersion, limit: int = MODEL_PAGE_IMAGES
) -> list[Image]:
    """The model's public images, newest first."""
    return list(
        images_public()
        .listing()
        .filter(model_version=model_version)
        .order_by("-created_at", "-id")[:limit]
    )


def model_versions_named(*, names: tuple[str, ...]) -> list[ModelVersion]:
    """Unarchived models with these names, by name."""
    return list(
        ModelVersion.objects.filter(name__in=names, archived_at__isnull=True).order_by("name")
    )


def model_version_names() -> list[str]:
    """Every registered model as records name it (`name@revision`, Image.model_name)."""
    return [
        f"{name}@{revision}"
        for name, revision in ModelVersion.objects.order_by("name", "revision").values_list(
            "name", "revision"
        )
    ]


def model_version_for_source(*, name: str, model_hash: str) -> ModelVersion | None:
    """The registered model an imported recipe names, or None.

    By hash where the source gives one, never by name then (a same-named file with other
    weights would render other pixels): a full sha256 matches the weights digest or the
    single-file checkpoint's sha256; A1111's 10-digit short hash matches their first ten
    digits (Seedbank writes its weights digest's). Otherwise by name, when exactly one
    unarchived model has it.
    """
    digest = model_hash.strip().lower()
    if digest:
        if len(digest) == 64:
            found = ModelVersion.objects.filter(
                models.Q(weights_digest=digest) | models.Q(source_sha256=digest)
            )
        elif len(digest) == 10 and all(c in "0123456789abcdef" for c in digest):
            found = ModelVersion.objects.filter(
                models.Q(weights_digest__startswith=digest)
                | models.Q(source_sha256__startswith=digest)
            )
        else:
            return None
        matches = list(found[:2])
        return matches[0] if len(matches) == 1 else None
    matches = list(ModelVersion.objects.filter(name=name.strip(), archived_at=None)[:2])
    return matches[0] if len(matches) == 1 and name.strip() else None
