"""Render jobs: create them (row first, then queue) and move them through their states."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from engine.recipe import Recipe
from generator.models import Image, RenderJob, Reproduction
from generator.selectors.quotas import quota_hold
from generator.selectors.recipes import recipe_validate
from generator.selectors.resources import recipe_embeddings_pin
from generator.services.queue import job_revoke, job_send, job_time_limit
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
    recipe = recipe_embeddings_pin(recipe=recipe)
    model_version = recipe_validate(recipe=recipe, user=owner)
    recipe = recipe.with_seed()
    assert recipe.seed is not None
    # A hires pass is a second render at the larger size: it counts in progress and time.
    hires_steps, hires_limit = 0, 0
    if recipe.hires is not None:
        hires_steps = recipe.hires.steps or recipe.steps
        width, height = recipe.hires.size(recipe.width, recipe.height)
        hires_limit = job_time_limit(
            width=width, height=height, images=recipe.batch_size, steps=hires_steps
        )
    with transaction.atomic():
        quota_hold(user=owner, renders=recipe.batch_size)
        job = RenderJob.objects.create(
            kind=RenderJob.Kind.RENDER,
            owner=owner,
            progress_total=recipe.steps + hires_steps,
            sent_at=timezone.now(),  # published on commit; cleared if the broker refuses it
            time_limit_seconds=job_time_limit(
                width=recipe.width,
                height=recipe.height,
                images=recipe.batch_size,
                steps=recipe.steps,
            )
            + hires_limit,
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
        transaction.on_commit(lambda: job_send(job=job))
    return job


class JobStopped(Exception):
    """This attempt no longer holds its job: it was cancelled, or its lease ran out and the
    sweeper queued it again. The attempt stops and stores nothing."""


def render_job_claim(*, job_id: int, worker: str = "") -> RenderJob | None:
    """Take a job for this attempt, or None when it cannot be taken.

    One conditional UPDATE makes the claim atomic: a queued job, or a running one whose lease
    ran out (its worker died before the sweeper noticed), within the attempt limit. A second
    delivery of a job that is running under a live lease is refused, so no job renders twice
    at once. The returned row carries this attempt's claim token.
    """
    now = timezone.now()
    token = uuid.uuid4().hex
    claimable = Q(status=RenderJob.Status.QUEUED) | Q(
        status=RenderJob.Status.RUNNING, lease_expires_at__lt=now
    )
    claimed = (
        RenderJob.objects.filter(claimable, pk=job_id)
        .filter(attempts__lt=settings.SEEDBANK_JOB_MAX_ATTEMPTS)
        .update(
            status=RenderJob.Status.RUNNING,
            attempts=F("attempts") + 1,
            claim_token=token,
            lease_expires_at=now + _lease(),
            worker=worker[:200],
            started_at=now,
            progress_step=0,
        )
    )
    return RenderJob.objects.filter(pk=job_id, claim_token=token).first() if claimed else None


def _lease() -> timedelta:
    return timedelta(seconds=settings.SEEDBANK_JOB_LEASE_SECONDS)


def _held(job: RenderJob) -> QuerySet[RenderJob]:
    """The job's row, only while this attempt still holds it."""
    return RenderJob.objects.filter(
        pk=job.pk, status=RenderJob.Status.RUNNING, claim_token=job.claim_token
    )


def render_job_heartbeat(*, job: RenderJob, step: int, total: int) -> None:
    """Write progress and renew the lease in one UPDATE; raises JobStopped when the attempt
    lost its job (cancelled, or re-queued after its lease ran out)."""
    renewed = _held(job).update(
        progress_step=step, progress_total=total, lease_expires_at=timezone.now() + _lease()
    )
    if not renewed:
        raise JobStopped(f"job {job.pk} was cancelled or taken over")


def render_job_fail(*, job: RenderJob, error: str) -> None:
    """Fail the job with its reason, if this attempt still holds it."""
    with transaction.atomic():
        if not _held(job).update(
            status=RenderJob.Status.FAILED, error=error[:2000], finished_at=timezone.now()
        ):
            return
        fail_outputs(job)


def fail_outputs(job: RenderJob) -> None:
    job.images.filter(status=Image.Status.PENDING).update(status=Image.Status.FAILED)
    Reproduction.objects.filter(job=job, verdict=Reproduction.Verdict.PENDING).update(
        verdict=Reproduction.Verdict.FAILED, finished_at=timezone.now()
    )


def render_job_done(*, job: RenderJob) -> None:
    """Inside the caller's storing transaction: finish the job, or raise JobStopped (which
    rolls the stored outputs back) when this attempt no longer holds it."""
    job.status = RenderJob.Status.DONE
    job.finished_at = timezone.now()
    job.progress_step = job.progress_total
    finished = _held(job).update(
        status=job.status,
        finished_at=job.finished_at,
        progress_step=job.progress_step,
        render_seconds=job.render_seconds,
        device=job.device,
        lease_expires_at=None,
    )
    if not finished:
        raise JobStopped(f"job {job.pk} was cancelled or taken over before it was stored")


def render_job_cancel(*, job: RenderJob, by: User) -> bool:
    """Cancel a queued or running job (owner or staff; the caller checks who). A queued job's
    task is revoked; a running one stops at its next progress write and stores nothing.
    False when the job had already finished."""
    with transaction.atomic():
        cancelled = RenderJob.objects.filter(
            pk=job.pk, status__in=[RenderJob.Status.QUEUED, RenderJob.Status.RUNNING]
        ).update(
            status=RenderJob.Status.CANCELLED,
            error=f"Cancelled by {by.get_username()}."[:2000],
            finished_at=timezone.now(),
            claim_token="",
            lease_expires_at=None,
        )
        if cancelled:
            fail_outputs(job)
    if cancelled:
        transaction.on_commit(lambda: job_revoke(job=job))
    job.refresh_from_db()
    return bool(cancelled)
