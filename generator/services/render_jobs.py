"""Render jobs: create them (row first, then queue) and move them through their states."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from engine.recipe import Recipe
from generator.models import Image, RenderJob, Reproduction
from generator.selectors.quotas import quota_hold
from generator.selectors.recipes import recipe_validate
from generator.services.queue import RENDER_TASK, job_send
from generator.services.records import image_keywords_index

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def render_job_create(
    *,
    owner: User | None,
    recipe: Recipe,
    parent: Image | None = None,
) -> RenderJob:
    """Create the job and one pending image per seed, then queue the job once committed."""
    model_version = recipe_validate(recipe=recipe, user=owner)
    recipe = recipe.with_seed()
    assert recipe.seed is not None
    with transaction.atomic():
        quota_hold(user=owner, renders=recipe.batch_size)
        job = RenderJob.objects.create(
            kind=RenderJob.Kind.RENDER, owner=owner, progress_total=recipe.steps
        )
        Image.objects.bulk_create(
            Image(
                # The columns are named like the recipe's fields (engine.recipe); seed, seed+1,
                # ... like A1111, so each image of a batch is its own recipe.
                **{**recipe.as_dict(), "seed": recipe.seed + index},
                owner=owner,
                job=job,
                parent=parent,
                model_name=str(model_version),
                model_digest=model_version.weights_digest,
                batch_index=index,
            )
            for index in range(recipe.batch_size)
        )
        image_keywords_index(image_ids=job.images.values_list("pk", flat=True))
        transaction.on_commit(lambda: job_send(job_id=job.pk, task_name=RENDER_TASK, arg=job.pk))
    return job


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
    with transaction.atomic():
        job.status = RenderJob.Status.FAILED
        job.error = error[:2000]
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        job.images.filter(status=Image.Status.PENDING).update(status=Image.Status.FAILED)
        Reproduction.objects.filter(job=job).update(
            verdict=Reproduction.Verdict.FAILED, finished_at=timezone.now()
        )


def render_job_done(*, job: RenderJob) -> None:
    job.status = RenderJob.Status.DONE
    job.finished_at = timezone.now()
    job.progress_step = job.progress_total
    job.save(update_fields=["status", "finished_at", "progress_step", "render_seconds", "device"])
