"""Publishing render work to the broker, by task name (the tasks module imports the services,
not the other way round).

A publish that fails (the broker is down) never fails the request: the job stays queued with no
`sent_at`, and the sweeper sends it once the broker is back (generator/services/sweeper.py).
"""

from __future__ import annotations

import logging
import math
import uuid

from celery import current_app
from django.conf import settings
from django.utils import timezone
from kombu.exceptions import KombuError

from engine.recipe import Recipe
from generator.models import RenderJob, Reproduction

logger = logging.getLogger(__name__)

RENDER_TASK = "generator.tasks.run_render_job"
REPRODUCE_TASK = "generator.tasks.run_reproduction"
# Seconds between a soft time limit (the task fails the job with its reason) and the hard one
# (the worker process is killed and replaced).
HARD_LIMIT_GRACE_SECONDS = 30
# What a publish raises when the broker is unreachable (kombu wraps the transport's errors in
# OperationalError, a KombuError; a refused socket can surface as an OSError).
BROKER_ERRORS = (KombuError, OSError)


def job_time_limit(*, cost: float) -> int:
    """Soft time limit for a job of `cost` megapixel-steps (engine.pricing: the unit quotas
    count in too)."""
    per_unit = settings.SEEDBANK_JOB_SECONDS_PER_MEGAPIXEL_STEP
    return settings.SEEDBANK_JOB_TIME_LIMIT_BASE + math.ceil(cost * per_unit)


def job_progress_total(recipe: Recipe) -> int:
    """The denoising steps a render of `recipe` reports: a hires pass is a second render."""
    hires_steps = (recipe.hires.steps or recipe.steps) if recipe.hires is not None else 0
    return recipe.steps + hires_steps


def _task_for(job: RenderJob) -> tuple[str, int]:
    if job.kind == RenderJob.Kind.REPRODUCE:
        reproduction = Reproduction.objects.filter(job=job).values_list("pk", flat=True).first()
        if reproduction is None:
            raise LookupError(f"reproduce job {job.pk} has no reproduction")
        return REPRODUCE_TASK, reproduction
    return RENDER_TASK, job.pk


def job_send(*, job: RenderJob) -> bool:
    """Publish the job's task; True when the broker took it.

    The task id and `sent_at` are stored *before* publishing, so the worker never races a
    bookkeeping write and a cancel can always revoke what is queued; a failed publish clears
    `sent_at` again so the sweeper knows to send it."""
    task_name, arg = _task_for(job)
    task_id = str(uuid.uuid4())
    RenderJob.objects.filter(pk=job.pk).update(celery_task_id=task_id, sent_at=timezone.now())
    limit = job.time_limit_seconds
    try:
        current_app.send_task(
            task_name,
            args=[arg],
            task_id=task_id,
            soft_time_limit=limit,
            time_limit=limit + HARD_LIMIT_GRACE_SECONDS if limit else None,
        )
    except BROKER_ERRORS as exc:
        logger.warning("could not queue job %s (%s); the sweeper will send it", job.pk, exc)
        RenderJob.objects.filter(pk=job.pk, celery_task_id=task_id).update(sent_at=None)
        return False
    return True


def job_revoke(*, job: RenderJob) -> None:
    """Ask workers to drop the queued task (best effort: the claim refuses it anyway)."""
    if not job.celery_task_id:
        return
    try:
        current_app.control.revoke(job.celery_task_id)
    except BROKER_ERRORS as exc:
        logger.warning("could not revoke job %s's task (%s)", job.pk, exc)
