"""Writes for model versions: register a folder, add local models, blend, rebuild.

`model_version_register` pins a folder by the digest of its files. The rest decides what may be
registered (a Stable Diffusion folder, a converted single file, a blend), refuses what would
make the archive lie (a name+revision re-pointed at other files, a blend of inputs whose files
changed), and records where a model came from. Commands call it; the ML work is in the
Django-free `engine.blends` and `engine.single_file`.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from engine.recipe import SD, SDXL, SDXL_REFINER, model_family
from engine.resources import file_sha256
from engine.schedulers import canonical_scheduler
from engine.weights import MODEL_INDEX, files_digest, weights_digest
from generator.models import ModelVersion
from generator.models.model_versions import SAMPLING_FIELDS
from generator.selectors.model_versions import model_version_find

# What each family's pipeline needs from a folder's model_index.json: SDXL reads a second text
# encoder; its refiner reads only that one (its first text encoder and tokenizer are null).
_SD_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
PIPELINE_COMPONENTS = {
    SD: _SD_COMPONENTS,
    SDXL: (*_SD_COMPONENTS, "text_encoder_2", "tokenizer_2"),
    SDXL_REFINER: ("unet", "vae", "text_encoder_2", "tokenizer_2", "scheduler"),
}
_UNSAFE_FOLDER_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class RegistryError(Exception):
    """A model cannot be added, blended or rebuilt; the message says why and what to do."""


@dataclass(frozen=True)
class _Facts:
    """What the caller says about a model (the files say the rest)."""

    name: str
    revision: str
    default_scheduler: str
    native_width: int
    native_height: int
    variant: str
    license: str
    notes: str
    make_default: bool


def model_folder(*, name: str, revision: str) -> Path:
    """Where a converted or blended model lives: SEEDBANK_MODELS_DIR/<name>-<revision>/."""
    # Names like "runwayml/stable-diffusion-v1-5" must not become nested or escaping paths.
    slug = _UNSAFE_FOLDER_CHARS.sub("-", f"{name}-{revision}").strip("-.")
    if not slug:
        raise RegistryError(f"Cannot make a folder name from {name!r} and {revision!r}.")
    return Path(settings.SEEDBANK_MODELS_DIR) / slug


def model_add(
    *,
    path: Path,
    name: str,
    revision: str = "main",
    default_scheduler: str = "PNDM",
    native_size: int = 512,
    variant: str = "",
    license: str = "",
    notes: str = "",
    make_default: bool = False,
    config: Path | None = None,
) -> ModelVersion:
    """Register a local diffusers folder in place, or convert a single-file checkpoint and
    register the converted folder. Adding the same files again refreshes the record; the same
    name+revision with other files is refused (records already made with it would change)."""
    name, revision = name.strip(), revision.strip()
    if not name or not revision:
        raise RegistryError("A model needs a non-empty --name and --revision.")
    scheduler = _scheduler(default_scheduler)
    _check_variant(variant)
    _check_native_size(native_size)
    path = Path(path).expanduser()
    if not path.exists():
        raise RegistryError(f"No such file or folder: {path}")
    facts = _Facts(
        name=name,
        revision=revision,
        default_scheduler=scheduler,
        native_width=native_size,
        native_height=native_size,
        variant=variant,
        license=license.strip(),
        notes=notes.strip(),
        make_default=make_default,
    )
    if path.is_dir():
        if config is not None:
            raise RegistryError("--config is only for single-file checkpoints; this is a folder.")
        _check_pipeline_folder(path, what="PATH")
        kind = ModelVersion.SourceKind.DIFFUSERS_FOLDER
        return _register(folder=path.resolve(), facts=facts, source_kind=kind)
    return _add_single_file(path.resolve(), config=config, facts=facts)


def _add_single_file(checkpoint: Path, *, config: Path | None, facts: _Facts) -> ModelVersion:
    # Imported here: torch and diffusers cost seconds, and only model commands need them.
    from engine.single_file import convert_single_file, inspect_checkpoint

    try:
        info = inspect_checkpoint(checkpoint)
    except ValueError as error:
        raise RegistryError(str(error)) from None
    if config is None:
        raise RegistryError(
            "A single-file checkpoint needs --config FOLDER: a local diffusers folder of the same "
            "architecture (for an SD 1.5 fine-tune, an SD 1.5 folder). Its configs, tokenizer "
            "and scheduler are used, never its weights; nothing is downloaded."
        )
    config = Path(config).expanduser().resolve()
    _check_pipeline_folder(config, what="--config")
    if info.has_ema and facts.variant not in {"ema", "non-ema"}:
        raise RegistryError(
            f"{checkpoint.name} holds both EMA and non-EMA UNet weights; say which to convert "
            "with --variant ema (usual for rendering) or --variant non-ema."
        )
    sha256 = file_sha256(checkpoint)
    provenance = (
        f"Converted offline from {checkpoint.name} (sha256 {sha256}) with the configs, tokenizer "
        f"and scheduler of {config}."
    )
    facts = replace(facts, notes=f"{facts.notes}\n\n{provenance}".strip())
    kind = ModelVersion.SourceKind.SINGLE_FILE
    existing = model_version_find(name=facts.name, revision=facts.revision)
    if existing is not None:
        if existing.source_kind != kind or existing.source_sha256 != sha256:
            raise RegistryError(
                f"{existing} is already registered from other files (weights digest "
                f"{existing.weights_digest}); choose another --revision."
            )
        # The same file again: keep the converted folder (its digest pins the records made
        # with it) and refresh the descriptive fields.
        folder = Path(existing.path)
        return _register(folder=folder, facts=facts, source_kind=kind, source_sha256=sha256)
    target = model_folder(name=facts.name, revision=facts.revision)
    _refuse_unregistered_folder(target)
    try:
        convert_single_file(
            checkpoint, config, target, extract_ema=info.has_ema and facts.variant == "ema"
        )
    except (ValueError, FileExistsError) as error:
        raise RegistryError(str(error)) from None
    try:
        return _register(folder=target, facts=facts, source_kind=kind, source_sha256=sha256)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # no orphan folder to block a retry
        raise


def blend_create(
    *,
    a: ModelVersion,
    b: ModelVersion,
    alpha: float,
    name: str,
    revision: str = "main",
    license: str = "",
    notes: str = "",
    make_default: bool = False,
) -> ModelVersion:
    """Materialise alpha * A + (1 - alpha) * B under SEEDBANK_MODELS_DIR and register it.

    Idempotent for the same definition (rebuilding missing files); refuses a name+revision
    already used for anything else. Size and default scheduler are B's, as are its configs.
    """
    # Imported here: torch costs seconds, and only model commands need it.
    from engine.blends import materialise_blend

    name, revision = name.strip(), revision.strip()
    if not name or not revision:
        raise RegistryError("A blend needs a non-empty --name and --revision.")
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise RegistryError(f"--alpha must be from 0 to 1 (the weight of A), got {alpha}.")
    if a.pk == b.pk:
        raise RegistryError(f"A and B are both {a}; a blend needs two models.")
    for label, ingredient in (("A", a), ("B", b)):
        if ingredient.archived_at is not None:
            raise RegistryError(f"{label} ({ingredient}) is archived; it takes no new work.")
    if a.family != b.family:
        raise RegistryError(
            f"A ({a}) is a {a.get_family_display()} model and B ({b}) a "
            f"{b.get_family_display()} model; a blend needs two models of one family."
        )
    existing = model_version_find(name=name, revision=revision)
    if existing is not None:
        same_definition = (
            existing.source_kind == ModelVersion.SourceKind.BLEND
            and existing.blend_a_id == a.pk
            and existing.blend_b_id == b.pk
            and existing.blend_alpha == alpha
        )
        if not same_definition:
            raise RegistryError(
                f"{existing} is already registered as something else; choose another --revision."
            )
        blend_rematerialise(existing)  # a no-op when its files are in place
        return existing
    a_path, b_path = _files_in_place(a), _files_in_place(b)
    target = model_folder(name=name, revision=revision)
    _refuse_unregistered_folder(target)
    try:
        materialise_blend(a_path, b_path, alpha, target)
    except (ValueError, FileExistsError) as error:
        raise RegistryError(f"Cannot blend {a} with {b}: {error}") from None
    definition = f"Blend: {alpha:g} × {a} + {1 - alpha:g} × {b}."
    facts = _Facts(
        name=name,
        revision=revision,
        default_scheduler=b.default_scheduler,
        native_width=b.native_width,
        native_height=b.native_height,
        variant="",
        license=license.strip(),
        notes=f"{notes.strip()}\n\n{definition}".strip(),
        make_default=make_default,
    )
    try:
        kind = ModelVersion.SourceKind.BLEND
        return _register(folder=target, facts=facts, source_kind=kind, blend=(a, b, alpha))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def blend_rematerialise(model_version: ModelVersion, *, force: bool = False) -> Path:
    """Rebuild a blend's files from its definition; they must reproduce the recorded digest.

    Does nothing when the files are in place and match (unless `force`). Missing ingredients
    that are blends themselves are rebuilt first. A rebuild that digests differently (other
    inputs, other library versions) is discarded and reported, never put in place.
    """
    # Imported here: torch costs seconds, and only model commands need it.
    from engine.blends import materialise_blend

    a, b, alpha = model_version.blend_a, model_version.blend_b, model_version.blend_alpha
    if model_version.source_kind != ModelVersion.SourceKind.BLEND or None in (a, b, alpha):
        raise RegistryError(f"{model_version} is not a blend; there is nothing to rebuild from.")
    assert a is not None and b is not None and alpha is not None
    path = Path(model_version.path)
    if not force and files_digest(path) == model_version.weights_digest:
        return path
    a_path, b_path = _files_in_place(a), _files_in_place(b)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.rebuild-{uuid.uuid4().hex[:12]}"
    try:
        materialise_blend(a_path, b_path, alpha, staging)
    except ValueError as error:
        raise RegistryError(f"Cannot rebuild {model_version}: {error}") from None
    try:
        found = weights_digest(staging)
        if found != model_version.weights_digest:
            raise RegistryError(
                f"Rebuilding {model_version} gave weights digest {found}, but it is registered "
                f"with {model_version.weights_digest}: its inputs or the libraries differ from "
                "when it was made. The rebuild was discarded."
            )
        _swap_into_place(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def model_version_register(
    *,
    name: str,
    path: Path,
    revision: str = "main",
    native_width: int = 512,
    native_height: int = 512,
    default_scheduler: str = "PNDM",
    make_default: bool = False,
    notes: str = "",
) -> ModelVersion:
    """Register (or refresh) a local diffusers folder, pinning it by a digest of its files and
    recording its family (SD 1.x/2.x, SDXL, SDXL refiner) from its model_index.json."""
    if not (path / MODEL_INDEX).is_file():
        raise ValidationError({"path": f"{path} is not a diffusers folder (no model_index.json)."})
    try:
        family = model_family(path)
    except ValueError as error:
        raise ValidationError({"path": str(error)}) from None
    digest = weights_digest(path)
    with transaction.atomic():
        if make_default:
            ModelVersion.objects.filter(is_default=True).exclude(
                name=name, revision=revision
            ).update(is_default=False)
        model_version, _ = ModelVersion.objects.update_or_create(
            name=name,
            revision=revision,
            defaults={
                "path": str(path),
                "weights_digest": digest,
                "native_width": native_width,
                "native_height": native_height,
                "default_scheduler": default_scheduler,
                "family": family,
                "notes": notes,
                **({"is_default": True} if make_default else {}),
            },
        )
    return model_version


def model_version_recommend(
    *,
    model_version: ModelVersion,
    sampling: dict[str, Any],
    vocabulary: dict[str, str] | None = None,
    example_prompts: dict[str, list[str]] | None = None,
) -> ModelVersion:
    """State how a model samples best (recipe field name → value: scheduler, steps, guidance,
    width, height) and, optionally, what it can draw and prompts that show it.

    Only what the model does not state yet is filled in: a registration that runs at every
    start (demo_models) gives existing installs the values, and never undoes an edit made in
    the admin since."""
    unknown = set(sampling) - set(SAMPLING_FIELDS)
    if unknown:
        raise ValueError(f"Not sampling fields: {', '.join(sorted(unknown))}")
    changed = []
    for name, value in sampling.items():
        column = f"recommended_{name}"
        if getattr(model_version, column) in (None, ""):
            setattr(model_version, column, value)
            changed.append(column)
    for column, value in (("vocabulary", vocabulary), ("example_prompts", example_prompts)):
        if value is not None and not getattr(model_version, column):
            setattr(model_version, column, value)
            changed.append(column)
    if changed:
        model_version.full_clean(validate_unique=False, validate_constraints=False)
        model_version.save(update_fields=changed)
    return model_version


def model_versions_archive_superseded(*, names: tuple[str, ...], current_revision: str) -> int:
    """Archive the other revisions of `names`: their records stay, they render nothing new.

    For models retrained in place (the shipped scene models): an older revision's folder now
    holds the new revision's bytes, so rendering it would store pictures under a digest they
    were not made with. Returns how many were archived.
    """
    return (
        ModelVersion.objects.filter(name__in=names, archived_at__isnull=True)
        .exclude(revision=current_revision)
        .update(archived_at=timezone.now(), is_default=False)
    )


def _register(
    *,
    folder: Path,
    facts: _Facts,
    source_kind: str,
    source_sha256: str = "",
    blend: tuple[ModelVersion, ModelVersion, float] | None = None,
) -> ModelVersion:
    with transaction.atomic():
        # Locked so two adds of one name+revision cannot both pass the check below.
        existing = (
            ModelVersion.objects.select_for_update()
            .filter(name=facts.name, revision=facts.revision)
            .first()
        )
        if existing is not None and existing.source_kind != source_kind:
            raise RegistryError(
                f"{existing} is already registered as a {existing.get_source_kind_display()}; "
                "choose another --revision."
            )
        try:
            model_version = model_version_register(
                name=facts.name,
                path=folder,
                revision=facts.revision,
                native_width=facts.native_width,
                native_height=facts.native_height,
                default_scheduler=facts.default_scheduler,
                make_default=facts.make_default,
                notes=facts.notes,
            )
        except ValidationError as error:
            raise RegistryError(" ".join(error.messages)) from None
        # Checked after digesting (once) and rolled back with the transaction: re-pointing a
        # name+revision at other files would silently change what its records were made with.
        if existing is not None and existing.weights_digest != model_version.weights_digest:
            raise RegistryError(
                f"{existing} is already registered with other files (weights digest "
                f"{existing.weights_digest} at {existing.path}; {folder} digests to "
                f"{model_version.weights_digest}). Choose another --revision."
            )
        model_version.variant = facts.variant
        model_version.license = facts.license
        model_version.source_kind = source_kind
        model_version.source_sha256 = source_sha256
        if blend is not None:
            model_version.blend_a, model_version.blend_b, model_version.blend_alpha = blend
        model_version.save(
            update_fields=[
                "variant",
                "license",
                "source_kind",
                "source_sha256",
                "blend_a",
                "blend_b",
                "blend_alpha",
            ]
        )
    return model_version


def _files_in_place(model_version: ModelVersion) -> Path:
    """The model's folder, with files matching its recorded digest (rebuilt if it is a blend)."""
    path = Path(model_version.path)
    found = files_digest(path)
    if found is None and model_version.source_kind == ModelVersion.SourceKind.BLEND:
        return blend_rematerialise(model_version)
    if found is None:
        raise RegistryError(f"The files of {model_version} are missing at {path}.")
    if found != model_version.weights_digest:
        raise RegistryError(
            f"The files of {model_version} at {path} have changed (weights digest {found}, "
            f"registered {model_version.weights_digest}); a blend of them would not be what "
            "its definition says."
        )
    return path


def _refuse_unregistered_folder(target: Path) -> None:
    if target.exists():
        raise RegistryError(
            f"{target} already exists but no model is registered there; remove it or choose "
            "another --revision."
        )


def _swap_into_place(staging: Path, path: Path) -> None:
    old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:12]}"
    if path.exists():
        os.rename(path, old)
    try:
        os.rename(staging, path)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _check_pipeline_folder(path: Path, *, what: str) -> None:
    index = path / MODEL_INDEX
    if not index.is_file():
        raise RegistryError(f"{what} {path} is not a diffusers folder (no model_index.json).")
    try:
        components = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RegistryError(f"{what} {index} is unreadable: {error}") from None
    try:
        family = model_family(path)
    except ValueError as error:
        raise RegistryError(f"{what} {path}: {error}") from None
    missing = [
        name
        for name in PIPELINE_COMPONENTS[family]
        if not (
            isinstance(components, dict)
            and isinstance(components.get(name), list)
            and components[name][0] is not None
            and (path / name).is_dir()
        )
    ]
    if missing:
        raise RegistryError(
            f"{what} {path} is not a Stable Diffusion pipeline folder: no {', '.join(missing)}."
        )


def _scheduler(value: str) -> str:
    try:
        return canonical_scheduler(value)
    except ValueError as error:
        raise RegistryError(str(error)) from None


def _check_variant(variant: str) -> None:
    if variant not in ModelVersion.Variant.values:
        choices = ", ".join(repr(v) for v in ModelVersion.Variant.values)
        raise RegistryError(f"Unknown variant {variant!r}; choose one of {choices}.")


def _check_native_size(size: int) -> None:
    # The VAE works in 8-pixel cells; the recipe limits bound everything else.
    if not (8 <= size <= settings.SEEDBANK_MAX_SIDE and size % 8 == 0):
        raise RegistryError(
            f"--native-size must be a multiple of 8 from 8 to {settings.SEEDBANK_MAX_SIDE}, "
            f"got {size}."
        )
