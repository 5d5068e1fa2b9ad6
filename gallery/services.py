"""Writes for gallery records: remix (rerun or edit) and reproduction checks."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from PIL import Image as PILImage

from gallery import verdicts
from gallery.models import Image, Reproduction
from generator.models import RenderJob
from generator.recipes import Recipe
from generator.services import (
    job_done,
    job_send,
    pipeline_run,
    recipe_validate,
    render_job_claim,
    render_job_create,
    render_job_fail,
    render_request_for,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


def remix_submit(*, owner: User, parent: Image, recipe: Recipe) -> RenderJob:
    """Rerun the parent when nothing that affects pixels changed; else render an edited child."""
    if recipe.batch_size == 1 and recipe.seed is not None:
        recipe_validate(recipe=recipe)
        if recipe.pixel_key() == parent.recipe().pixel_key():
            return reproduction_create(image=parent, requested_by=owner).job
    return render_job_create(owner=owner, recipe=recipe, parent=parent)


def reproduction_create(*, image: Image, requested_by: User | None) -> Reproduction:
    from generator.tasks import run_reproduction

    with transaction.atomic():
        job = RenderJob.objects.create(
            kind=RenderJob.Kind.REPRODUCE, owner=requested_by, progress_total=image.steps
        )
        reproduction = Reproduction.objects.create(image=image, job=job, requested_by=requested_by)
        transaction.on_commit(
            lambda: job_send(job_id=job.pk, task=run_reproduction, arg=reproduction.pk)
        )
    return reproduction


def _pixels(data: bytes) -> np.ndarray:
    with PILImage.open(io.BytesIO(data)) as decoded:
        return np.asarray(decoded.convert("RGB"))


def reproduction_run(*, reproduction_id: int) -> None:
    """Worker side: re-render the original's recipe alone and classify the result."""
    reproduction = (
        Reproduction.objects.select_related("image__model_version", "job")
        .filter(pk=reproduction_id)
        .first()
    )
    if reproduction is None:
        return
    job = render_job_claim(job_id=reproduction.job_id)
    if job is None:
        return
    original = reproduction.image
    if original.model_version is None:
        render_job_fail(job=job, error="The model version of this record no longer exists.")
        return
    try:
        request = render_request_for(images=[original], model_version=original.model_version)
        (result,) = pipeline_run(job=job, request=request)
        with original.image_file.open("rb") as handle:
            original_pixels = _pixels(handle.read())
    except Exception as exc:
        logger.exception("reproduction %s failed", reproduction_id)
        render_job_fail(job=job, error=f"{type(exc).__name__}: {exc}")
        return

    max_abs, psnr = verdicts.pixel_difference(original_pixels, _pixels(result.png))
    with transaction.atomic():
        if reproduction.image_file:
            reproduction.image_file.delete(save=False)
        reproduction.image_file.save(
            f"{original.pk}-{reproduction.pk}-{result.pixel_sha256[:12]}.png",
            ContentFile(result.png),
            save=False,
        )
        reproduction.pixel_sha256 = result.pixel_sha256
        reproduction.max_abs_diff = max_abs
        reproduction.psnr = None if psnr == float("inf") else psnr
        reproduction.verdict = verdicts.verdict(
            original_sha256=original.pixel_sha256,
            candidate_sha256=result.pixel_sha256,
            max_abs_diff=max_abs,
        )
        reproduction.environment = result.environment
        reproduction.environment_diff = verdicts.environment_diff(
            original.environment, result.environment
        )
        reproduction.finished_at = timezone.now()
        reproduction.save()
        job_done(job=job)
