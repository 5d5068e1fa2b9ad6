"""Writes for models and render jobs. Views, tasks and commands call these; they hold the rules."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from generator.models import ModelVersion, RenderJob
from generator.recipes import Recipe, RecipeLimits, recipe_errors

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from gallery.models import Image
    from generator.pipeline import RenderedImage, RenderRequest

logger = logging.getLogger(__name__)


def recipe_limits() -> RecipeLimits:
    return RecipeLimits(
        max_side=settings.SEEDBANK_MAX_SIDE,
        max_steps=settings.SEEDBANK_MAX_STEPS,
        max_batch=settings.SEEDBANK_MAX_BATCH,
    )


def recipe_validate(*, recipe: Recipe) -> ModelVersion:
    """Raise ValidationError (by field) unless the recipe can be rendered; return its model."""
    errors = recipe_errors(recipe, recipe_limits())
    model_version = (
        ModelVersion.objects.filter(pk=recipe.model_version_id, archived_at__isnull=True).first()
        if recipe.model_version_id is not None
        else None
    )
    if model_version is None:
        errors.setdefault("model_version", []).append(
            f"Unknown or archived model version {recipe.model_version_id!r}."
        )
    from gallery.models import SourceImage

    for name, source_id, kind in (
        ("init_image", recipe.init_image_id, SourceImage.Kind.INIT),
        ("mask", recipe.mask_id, SourceImage.Kind.MASK),
    ):
        if (
            source_id is not None
            and not SourceImage.objects.filter(pk=source_id, kind=kind).exists()
        ):
            errors.setdefault(name, []).append(f"Unknown {kind} image {source_id}.")
    if errors:
        raise ValidationError(errors)
    assert model_version is not None
    return model_version


class QuotaExceeded(Exception):
    """A user's daily allowance is spent; the message says which and when it frees up."""


def quota_check(*, user: User | None, renders: int) -> None:
    """Refuse work past the user's rolling 24-hour allowance (staff and system work are exempt)."""
    from gallery.models import Image

    if user is None or user.is_staff:
        return
    since = timezone.now() - timedelta(hours=24)
    done = Image.objects.filter(owner=user, created_at__gte=since).count()
    allowed = settings.SEEDBANK_QUOTA_RENDERS_PER_DAY
    if done + renders > allowed:
        raise QuotaExceeded(
            f"Daily render quota reached: {done} of {allowed} images in the last 24 hours. "
            "It frees up as your earlier renders pass 24 hours."
        )
    seconds = (
        RenderJob.objects.filter(owner=user, created_at__gte=since).aggregate(
            total=Sum("render_seconds")
        )["total"]
        or 0.0
    )
    budget = settings.SEEDBANK_QUOTA_GPU_SECONDS_PER_DAY
    if seconds >= budget:
        raise QuotaExceeded(
            f"Daily GPU-time quota reached: {seconds:.0f} of {budget} GPU-seconds in the last "
            "24 hours."
        )


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
    """Register (or refresh) a local diffusers folder, pinning it by a digest of its files."""
    from generator.tiny_models import weights_digest

    if not (path / "model_index.json").is_file():
        raise ValidationError({"path": f"{path} is not a diffusers folder (no model_index.json)."})
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
                "notes": notes,
                **({"is_default": True} if make_default else {}),
            },
        )
    return model_version


def render_job_create(
    *,
    owner: User | None,
    recipe: Recipe,
    parent: Image | None = None,
) -> RenderJob:
    """Create the job and one pending image per seed, then queue the job once committed."""
    from gallery.models import Image

    model_version = recipe_validate(recipe=recipe)
    recipe = recipe.with_seed()
    assert recipe.seed is not None
    with transaction.atomic():
        if owner is not None:
            # Serialise one user's submissions so two at once cannot both pass the quota.
            get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
        quota_check(user=owner, renders=recipe.batch_size)
        job = RenderJob.objects.create(
            kind=RenderJob.Kind.RENDER, owner=owner, progress_total=recipe.steps
        )
        Image.objects.bulk_create(
            Image(
                owner=owner,
                job=job,
                parent=parent,
                model_version=model_version,
                model_name=str(model_version),
                model_digest=model_version.weights_digest,
                mode=recipe.mode,
                prompt=recipe.prompt,
                negative_prompt=recipe.negative_prompt,
                # seed, seed+1, ... like A1111, so each image of a batch is its own recipe.
                seed=recipe.seed + index,
                scheduler=recipe.scheduler,
                steps=recipe.steps,
                guidance=recipe.guidance,
                width=recipe.width,
                height=recipe.height,
                precision=recipe.precision,
                batch_size=recipe.batch_size,
                batch_index=index,
                init_image_id=recipe.init_image_id,
                mask_id=recipe.mask_id,
                strength=recipe.strength,
            )
            for index in range(recipe.batch_size)
        )
        from search.services import image_keywords_index

        image_keywords_index(image_ids=job.images.values_list("pk", flat=True))
        render_job_enqueue(job=job)
    return job


def render_job_enqueue(*, job: RenderJob) -> None:
    from generator.tasks import run_render_job

    transaction.on_commit(lambda: job_send(job_id=job.pk, task=run_render_job, arg=job.pk))


def job_send(*, job_id: int, task: Any, arg: int) -> None:
    """Store the Celery task id on the row *before* publishing, so the worker never races a
    bookkeeping write, and an operator can always revoke what is queued."""
    task_id = str(uuid.uuid4())
    RenderJob.objects.filter(pk=job_id).update(celery_task_id=task_id)
    task.apply_async(args=[arg], task_id=task_id)


def render_job_claim(*, job_id: int) -> RenderJob | None:
    """Mark a job running, or return None if it is finished (or gone).

    One conditional UPDATE makes the claim atomic. A redelivered job (acks_late after a worker
    crash) is still "running" and is claimed again: it re-renders, which yields the same pixels.
    """
    claimed = RenderJob.objects.filter(
        pk=job_id, status__in=[RenderJob.Status.QUEUED, RenderJob.Status.RUNNING]
    ).update(status=RenderJob.Status.RUNNING, started_at=timezone.now(), progress_step=0)
    return RenderJob.objects.filter(pk=job_id).first() if claimed else None


def render_job_progress(*, job_id: int, step: int, total: int) -> None:
    RenderJob.objects.filter(pk=job_id).update(progress_step=step, progress_total=total)


def render_job_fail(*, job: RenderJob, error: str) -> None:
    from gallery.models import Image, Reproduction

    with transaction.atomic():
        job.status = RenderJob.Status.FAILED
        job.error = error[:2000]
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        job.images.filter(status=Image.Status.PENDING).update(status=Image.Status.FAILED)
        Reproduction.objects.filter(job=job).update(
            verdict=Reproduction.Verdict.FAILED, finished_at=timezone.now()
        )


class ModelUnavailable(Exception):
    """The model a record was made with is gone or changed: re-rendering would be a lie."""


# Digesting a multi-GB checkpoint takes seconds: remember it per file listing (size, mtime).
_files_digest_cache: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}


def model_files_digest(*, path: Path) -> str | None:
    """The digest of a model folder's files as they are now; None when the folder is gone."""
    from generator.tiny_models import weights_digest

    if not (path / "model_index.json").is_file():
        return None
    listing = tuple(
        sorted(
            (str(file.relative_to(path)), file.stat().st_size, file.stat().st_mtime_ns)
            for file in path.rglob("*")
            if file.is_file()
        )
    )
    key = (str(path), listing)
    if key not in _files_digest_cache:
        _files_digest_cache[key] = weights_digest(path)
    return _files_digest_cache[key]


def model_version_check(*, image: Image, verify_files: bool = True) -> ModelVersion:
    """The model to re-render `image` with, or ModelUnavailable saying what is wrong.

    Pages pass verify_files=False (existence only); workers digest the files before every render.
    """
    expected = image.model_digest
    model_version = image.model_version
    if model_version is None:
        raise ModelUnavailable(
            f"The model this record was made with ({image.model_name}, weights digest "
            f"{expected}) has been deleted; it cannot be re-rendered."
        )
    if model_version.weights_digest != expected:
        raise ModelUnavailable(
            f"{model_version} is now registered with weights digest "
            f"{model_version.weights_digest}, but this record was made with {expected}."
        )
    path = Path(model_version.path)
    if not (path / "model_index.json").is_file():
        raise ModelUnavailable(
            f"The files of {model_version} are missing at {path} "
            f"(expected weights digest {expected})."
        )
    if verify_files:
        found = model_files_digest(path=path)
        if found != expected:
            raise ModelUnavailable(
                f"The files of {model_version} at {path} have changed: expected weights digest "
                f"{expected}, found {found}."
            )
    return model_version


def render_request_for(
    *, image: Image, model_version: ModelVersion, seeds: Sequence[int], batch_index_offset: int
) -> RenderRequest:
    """The pipeline request for `image`'s recipe with the given seeds (shared by a batch)."""
    from generator.pipeline import RenderRequest

    def read(source: Any) -> bytes | None:
        if source is None:
            return None
        with source.file.open("rb") as handle:
            return bytes(handle.read())

    return RenderRequest(
        model_path=model_version.path,
        prompt=image.prompt,
        negative_prompt=image.negative_prompt,
        seeds=tuple(seeds),
        scheduler=image.scheduler,
        steps=image.steps,
        guidance=image.guidance,
        width=image.width,
        height=image.height,
        precision=image.precision,
        batch_index_offset=batch_index_offset,
        mode=image.mode,
        init_image=read(image.init_image),
        mask=read(image.mask),
        strength=image.strength,
    )


def png_text_recipe(*, image: Image) -> dict[str, Any]:
    """The batch-wide recipe fields written into every PNG's text chunks."""
    return {
        "prompt": image.prompt,
        "negative_prompt": image.negative_prompt,
        "steps": image.steps,
        "scheduler": image.scheduler,
        "guidance": image.guidance,
        "width": image.width,
        "height": image.height,
        "precision": image.precision,
        "mode": image.mode,
        "batch_size": image.batch_size,
        "model_name": image.model_name,
        "model_digest": image.model_digest,
    }


def pipeline_run(*, job: RenderJob, image: Image, whole_batch: bool = True) -> list[RenderedImage]:
    """Render `image`'s recipe on this worker (its whole batch, or its seed alone), reporting
    progress on the job row and timing the work. Raises ModelUnavailable before rendering."""
    from generator import pipeline
    from generator.png_metadata import png_text_for

    model_version = model_version_check(image=image)
    if whole_batch:
        seeds, offset = image.batch_seeds, 0
    else:
        seeds, offset = [image.seed], image.batch_index
    request = render_request_for(
        image=image, model_version=model_version, seeds=seeds, batch_index_offset=offset
    )
    switches = pipeline.configure_determinism(settings.SEEDBANK_TORCH_THREADS)
    started = time.perf_counter()
    rendered = pipeline.render_splitting_on_oom(
        request,
        on_step=lambda step, total: render_job_progress(job_id=job.pk, step=step, total=total),
        png_text=png_text_for(png_text_recipe(image=image)),
    )
    job.render_seconds = time.perf_counter() - started
    environment = rendered[0].environment
    # "cuda: NVIDIA A100-SXM4-40GB" / "cpu: AMD EPYC": the kind first, so prices can match it.
    job.device = f"{environment.get('device', '?')}: {environment.get('device_name', '?')}"
    logger.info(
        "job %s rendered %d image(s) in %.2fs %s",
        job.pk,
        len(rendered),
        job.render_seconds,
        switches,
    )
    return rendered


def render_job_run(*, job_id: int) -> None:
    """Worker side of a render job. Idempotent: a finished job is left alone."""
    from gallery.models import Image

    job = render_job_claim(job_id=job_id)
    if job is None:
        return
    images = list(job.images.select_related("model_version").order_by("batch_index"))
    if not images:
        render_job_fail(job=job, error="This job has no images to render.")
        return
    try:
        rendered = pipeline_run(job=job, image=images[0])
    except Exception as exc:
        logger.exception("render job %s failed", job_id)
        render_job_fail(job=job, error=f"{type(exc).__name__}: {exc}")
        return

    from search.services import image_embedding_enqueue

    with transaction.atomic():
        for image, result in zip(images, rendered, strict=True):
            image_store_pixels(image=image, png=result.png, pixel_sha256=result.pixel_sha256)
            image.environment = result.environment
            # After an out-of-memory split the image came from a smaller batch: the record says
            # which, so a rerun renders that same sub-batch (batch size moves pixels).
            image.batch_size = result.environment["batch_size"]
            image.batch_index = result.environment["batch_index"]
            image.status = Image.Status.READY
            image.finished_at = timezone.now()
            image.save(
                update_fields=["environment", "batch_size", "batch_index", "status", "finished_at"]
            )
            image_embedding_enqueue(image_id=image.pk)
        job_done(job=job)


def image_store_pixels(*, image: Image, png: bytes, pixel_sha256: str) -> None:
    """Write the PNG for a record (replacing an earlier file of its own) and its digest."""
    if image.image_file:  # a redelivered job replaces its own earlier file
        image.image_file.delete(save=False)
    image.image_file.save(f"{image.pk}-{pixel_sha256[:12]}.png", ContentFile(png), save=False)
    image.pixel_sha256 = pixel_sha256
    image.save(update_fields=["image_file", "pixel_sha256"])


def job_done(*, job: RenderJob) -> None:
    job.status = RenderJob.Status.DONE
    job.finished_at = timezone.now()
    job.progress_step = job.progress_total
    job.save(update_fields=["status", "finished_at", "progress_step", "render_seconds", "device"])
