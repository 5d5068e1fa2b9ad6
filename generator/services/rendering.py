"""The worker side of render jobs: claim, run the engine pipeline, store pixels and verdicts.

Only the Celery tasks (generator/tasks.py) call into this module; it is what imports torch and
diffusers (through engine.pipeline), so web processes never load them.
"""

from __future__ import annotations

import io
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from PIL import Image as PILImage

from engine import pipeline, verdicts
from engine.pipeline import RenderedImage, RenderRequest
from engine.png_metadata import png_text_for
from generator.models import Image, ImageEnvironment, ModelVersion, RenderJob, Reproduction
from generator.selectors.model_versions import model_version_check, model_version_refiner_check
from generator.selectors.recipes import model_version_default
from generator.selectors.resources import resource_files, resource_names
from generator.services.lease_keeper import LeaseKeeper
from generator.services.records import PIXEL_COLUMNS, image_store_pixels
from generator.services.render_jobs import (
    JobStopped,
    render_job_claim,
    render_job_done,
    render_job_fail,
    render_job_heartbeat,
)
from generator.services.signing import image_signature_refresh
from generator.signals import records_ready

logger = logging.getLogger(__name__)


def render_request_for(
    *, image: Image, model_version: ModelVersion, seeds: Sequence[int], batch_index_offset: int
) -> RenderRequest:
    """The pipeline request for `image`'s recipe with the given seeds (shared by a batch).
    Raises ModelUnavailable when the refiner the recipe names is gone or its files changed."""

    def read(source: Any) -> bytes | None:
        if source is None:
            return None
        with source.file.open("rb") as handle:
            return bytes(handle.read())

    recipe = image.recipe()
    refiner_path = None
    if recipe.refiner:
        # Its files digested like the model's (remembered per file listing): a refiner whose
        # bytes moved would render other pixels under the same recipe.
        refiner_path = model_version_refiner_check(digest=recipe.refiner).path
    return RenderRequest(
        model_path=model_version.path,
        recipe=recipe,
        seeds=tuple(seeds),
        batch_index_offset=batch_index_offset,
        init_image=read(image.init_image),
        mask=read(image.mask),
        # Each file re-hashed if it changed on disk: a LoRA whose bytes moved is refused.
        resource_files=resource_files(recipe=recipe),
        refiner_model_path=refiner_path,
    )


def pipeline_run(*, job: RenderJob, image: Image, whole_batch: bool = True) -> list[RenderedImage]:
    """Render `image`'s recipe on this worker (its whole batch, or its seed alone), reporting
    progress on the job row and timing the work. Raises ModelUnavailable before rendering."""
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
    with LeaseKeeper(job) as lease:
        rendered = pipeline.render_splitting_on_oom(
            request,
            on_step=_progress_reporter(job=job, lease=lease),
            png_text=png_text_for(image.recipe_portable(), resource_names(recipe=request.recipe)),
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


# One progress UPDATE per step cost as much as a tiny render itself; people watching a bar need
# two updates a second at most. The last step is always written. Each write also renews the
# job's lease and is where a cancelled (or taken-over) attempt learns to stop.
PROGRESS_INTERVAL_SECONDS = 0.5


def _progress_reporter(*, job: RenderJob, lease: LeaseKeeper) -> Callable[[int, int], None]:
    last = -PROGRESS_INTERVAL_SECONDS

    def report(step: int, total: int) -> None:
        nonlocal last
        lease.raise_if_lost()
        now = time.monotonic()
        if step >= total or now - last >= PROGRESS_INTERVAL_SECONDS:
            last = now
            render_job_heartbeat(job=job, step=step, total=total)

    return report


def _failure_reason(exc: BaseException, job: RenderJob) -> str:
    if isinstance(exc, SoftTimeLimitExceeded):
        return (
            f"The render took longer than its time limit ({job.time_limit_seconds} s for this "
            "recipe's size) and was stopped."
        )
    return f"{type(exc).__name__}: {exc}"


def warm_default_model() -> None:
    """Load the default model into this worker before the first job waits for it."""
    model_version = model_version_default()
    if model_version is None:
        return
    try:
        pipeline.load(model_version.path, "fp32")
    except Exception:  # a broken default model must not stop the worker; its jobs will say
        logger.exception("could not load %s ahead of the first job", model_version)
    else:
        logger.info("loaded %s ahead of the first job", model_version)


def render_job_run(*, job_id: int, worker: str = "") -> None:
    """Worker side of a render job. Idempotent: a finished job, or one another attempt holds,
    is left alone."""
    job = render_job_claim(job_id=job_id, worker=worker, pid=os.getpid())
    if job is None:
        logger.info("render job %s: nothing to do (finished, cancelled or held)", job_id)
        return
    images = list(job.images.select_related("model_version").order_by("batch_index"))
    if not images:
        render_job_fail(job=job, error="This job has no images to render.")
        return
    try:
        rendered = pipeline_run(job=job, image=images[0])
    except JobStopped as exc:
        logger.info("render job %s stopped: %s", job_id, exc)
        return
    except Exception as exc:
        logger.exception("render job %s failed", job_id)
        render_job_fail(job=job, error=_failure_reason(exc, job))
        return

    try:
        _store_rendered(job=job, images=images, rendered=rendered)
    except JobStopped as exc:
        # Cancelled or taken over while storing: the transaction rolled back; drop the files.
        logger.info("render job %s stopped before storing: %s", job_id, exc)
        _discard_files(images)
        return
    except Exception as exc:
        # Whatever fails after the render (saving files, a value the database refuses) fails
        # the job with its reason; the transaction rolled back, so its files go too.
        logger.exception("storing render job %s failed", job_id)
        _discard_files(images)
        render_job_fail(job=job, error=f"Storing the result failed: {type(exc).__name__}: {exc}")
        return
    ready = [image.pk for image in images]
    transaction.on_commit(lambda: records_ready.send(sender=Image, image_ids=ready))


def _store_rendered(*, job: RenderJob, images: list[Image], rendered: list[RenderedImage]) -> None:
    with transaction.atomic():
        for image, result in zip(images, rendered, strict=True):
            image_store_pixels(
                image=image, png=result.png, pixel_sha256=result.pixel_sha256, save=False
            )
            # After an out-of-memory split the image came from a smaller batch: the record says
            # which, so a rerun renders that same sub-batch (batch size moves pixels).
            image.batch_size = result.environment["batch_size"]
            image.batch_index = result.environment["batch_index"]
            image.status = Image.Status.READY
            image.finished_at = timezone.now()
            image.save(
                update_fields=[
                    *PIXEL_COLUMNS,
                    *("batch_size", "batch_index", "status", "finished_at"),
                ]
            )
        # One statement for the batch (a rerun of the same record replaces its environment).
        ImageEnvironment.objects.bulk_create(
            [
                ImageEnvironment(image=image, data=result.environment)
                for image, result in zip(images, rendered, strict=True)
            ],
            update_conflicts=True,
            unique_fields=["image"],
            update_fields=["data"],
        )
        render_job_done(job=job)


def _discard_files(rows: list[Any]) -> None:
    """Delete files written for rows whose transaction rolled back (their names are on the
    instances, not in the database any more)."""
    for row in rows:
        for name in ("image_file", "thumbnail", "thumbnail_large"):  # a reproduction has one
            stored = getattr(row, name, None)
            if stored:
                stored.storage.delete(stored.name)


def _pixels(data: bytes) -> np.ndarray:
    with PILImage.open(io.BytesIO(data)) as decoded:
        return np.asarray(decoded.convert("RGB"))


def _original_pixels(image: Image) -> np.ndarray | None:
    if not image.image_file:  # evicted: only its sha256 is left to compare with
        return None
    with image.image_file.open("rb") as handle:
        return _pixels(handle.read())


def reproduction_run(*, reproduction_id: int, worker: str = "") -> None:
    """Worker side: re-render the original's recipe and classify the result."""
    reproduction = (
        Reproduction.objects.select_related("image__model_version", "job")
        .filter(pk=reproduction_id)
        .first()
    )
    if reproduction is None:
        return
    job = render_job_claim(job_id=reproduction.job_id, worker=worker, pid=os.getpid())
    if job is None:
        logger.info("reproduction %s: nothing to do (finished, cancelled or held)", reproduction_id)
        return
    original = reproduction.image
    try:
        rendered = pipeline_run(job=job, image=original, whole_batch=reproduction.whole_batch)
        # Rendered with its batch: pick its own position. Alone: the one image there is.
        (result,) = (
            [r for r in rendered if r.batch_index == original.batch_index]
            if reproduction.whole_batch
            else rendered
        )
        original_pixels = _original_pixels(original)
    except JobStopped as exc:
        logger.info("reproduction %s stopped: %s", reproduction_id, exc)
        return
    except Exception as exc:
        logger.exception("reproduction %s failed", reproduction_id)
        render_job_fail(job=job, error=_failure_reason(exc, job))
        return

    if original_pixels is None:
        max_abs: int | None = 0 if result.pixel_sha256 == original.pixel_sha256 else None
        psnr = float("inf") if max_abs == 0 else None
    else:
        max_abs, psnr = verdicts.pixel_difference(original_pixels, _pixels(result.png))
    reproduction.verdict = verdicts.verdict(
        original_sha256=original.pixel_sha256,
        candidate_sha256=result.pixel_sha256,
        max_abs_diff=255 if max_abs is None else max_abs,
    )
    restoring = (
        reproduction.purpose == Reproduction.Purpose.RESTORE
        and reproduction.verdict == Reproduction.Verdict.BIT_IDENTICAL
    )
    try:
        with transaction.atomic():
            if restoring:
                # Only pixels proven identical go back: the record then serves the same bytes.
                image_store_pixels(image=original, png=result.png, pixel_sha256=result.pixel_sha256)
                original.evicted_at = None
                original.save(update_fields=["evicted_at"])
            else:
                if reproduction.image_file:
                    reproduction.image_file.delete(save=False)
                reproduction.image_file.save(
                    f"{original.pk}-{reproduction.pk}-{result.pixel_sha256[:12]}.png",
                    ContentFile(result.png),
                    save=False,
                )
            reproduction.pixel_sha256 = result.pixel_sha256
            reproduction.max_abs_diff = max_abs
            reproduction.psnr = None if psnr is None or math.isinf(psnr) else psnr
            reproduction.environment = result.environment
            reproduction.environment_diff = verdicts.environment_diff(
                original.environment, result.environment
            )
            reproduction.finished_at = timezone.now()
            reproduction.save()
            if not restoring:
                # The stored picture's manifest states the latest verdict (restoring signed it).
                image_signature_refresh(image=original)
            render_job_done(job=job)
    except JobStopped as exc:
        logger.info("reproduction %s stopped before storing: %s", reproduction_id, exc)
        _discard_files([original] if restoring else [reproduction])
    except Exception as exc:
        logger.exception("storing reproduction %s failed", reproduction_id)
        # Only what this attempt wrote: a check never touches the original's own file.
        _discard_files([original] if restoring else [reproduction])
        render_job_fail(job=job, error=f"Storing the result failed: {type(exc).__name__}: {exc}")
