"""A record as a standalone export: the document engine.export turns into a script, and the
files that travel with it (init image and mask, content-addressed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings

from engine.export import export_document, export_script
from generator.models import Image, Resource
from generator.selectors.model_versions import model_version_by_digest
from generator.selectors.records import environment_public


def _public_path(path: str) -> str:
    """Where a file can be found outside this server: for the shipped models and resources,
    their path inside a Seedbank checkout; anything else is this server's business."""
    shipped = Path(settings.SEEDBANK_SHIPPED_MODELS_DIR).resolve()
    try:
        return (Path("models") / Path(path).resolve().relative_to(shipped)).as_posix()
    except ValueError:
        return ""


def image_export_document(*, image: Image) -> dict[str, Any]:
    """The record as a portable export (engine.export): recipe, batch seeds, environment, the
    model, its refiner and every resource by digest (and by path for the shipped ones)."""
    recipe = image.recipe()
    rows = {row.sha256: row for row in Resource.objects.filter(sha256__in=recipe.resources())}
    resources = []
    for sha256 in recipe.resources():
        row = rows.get(sha256)
        described: dict[str, Any] = {"sha256": sha256}
        if row is not None:
            described.update(
                kind=row.kind,
                name=str(row),
                file_name=Path(row.path).name,
                air=row.air,
                path=_public_path(row.path),
            )
        resources.append(described)
    model = image.model_version
    refiner_model = None
    if recipe.refiner:
        # The script finds the refiner by its digest; name and path only help people.
        refiner = model_version_by_digest(digest=recipe.refiner)
        refiner_model = {
            "name": str(refiner) if refiner is not None else "",
            "digest": recipe.refiner,
            "path": _public_path(refiner.path) if refiner is not None else "",
        }
    return export_document(
        recipe=image.recipe_portable(),
        model_path=_public_path(model.path) if model is not None else "",
        pixel_sha256=image.pixel_sha256,
        environment=_without_refiner_path(environment_public(image.environment)),
        resources=resources,
        refiner_model=refiner_model,
    )


def _without_refiner_path(environment: dict[str, Any]) -> dict[str, Any]:
    # The refiner's folder on this server is as private as the model's (environment_public
    # drops top-level keys only); the script finds the refiner by digest.
    refiner = environment.get("refiner")
    if isinstance(refiner, dict) and "model_path" in refiner:
        refiner = {k: v for k, v in refiner.items() if k != "model_path"}
        environment = {**environment, "refiner": refiner}
    return environment


def image_export_files(*, image: Image) -> dict[str, bytes]:
    """{name in the zip: bytes}: the script, its document as JSON, the stored picture byte for
    byte (its Content Credentials intact; not named like the script's output, which is
    seedbank-<seed>.png) and the img2img/inpaint inputs under the names the script looks for,
    as stored."""
    document = image_export_document(image=image)
    files = {
        f"seedbank-{image.pk}.py": export_script(document).encode(),
        f"seedbank-{image.pk}.json": json.dumps(document, ensure_ascii=False, indent=2).encode(),
    }
    if image.image_file:
        with image.image_file.open("rb") as handle:
            files[signed_picture_name(image)] = bytes(handle.read())
    for role, source in (("init_image", image.init_image), ("mask", image.mask)):
        wanted = document["inputs"].get(role)
        if wanted is not None and source is not None:
            with source.file.open("rb") as handle:
                files[wanted["file"]] = bytes(handle.read())
    return files


def signed_picture_name(image: Image) -> str:
    return f"seedbank-{image.pk}-signed.png"
