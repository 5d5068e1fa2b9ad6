"""Render jobs: create them (row first, then queue) and move them through their states."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

import psutil
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from engine.pricing import recipe_megapixel_steps
from engine.recipe import Recipe
from generator.models import Image, RenderJob, Reproduction
from generator.selectors.quotas import quota_hold
from generator.selectors.recipes import recipe_validate
from generator.selectors.resources import recipe_embeddings_pin
from generator.services.queue import job_progress_total, job_revoke, job_send, job_time_limit
from generator.services.records import image_keywords_index

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


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
    cost = recipe_megapixel_steps(recipe)
    with transaction.atomic():
        quota_hold(user=owner, renders=recipe.batch_size, cost=cost)
        job = RenderJob.objects.create(
            kind=RenderJob.Kind.RENDER,
            owner=owner,
            cost=cost,
            # A hires pass is a second render at the larger size: it counts in progress and time.
            progress_total=job_progress_total(recipe),
            sent_at=timezone.now(),  # published on commit; cleared if the broker refuses it
            time_limit_seconds=job_time_limit(cost=cost),
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


def render_job_claim(*, job_id: int, worker: str = "", pid: int | None = None) -> RenderJob | None:
    """Take a job for this attempt, or None when it cannot be taken.

    One conditional UPDATE makes the claim atomic: a queued job; a running one whose lease ran
    out (its worker died before the sweeper noticed); or a running one whose pool process on
    this very worker is gone (Celery re-delivers a killed process's task to its successor at
    once: waiting out the lease would leave the job idle). All within the attempt limit. A
    second delivery of a job that is running under a live lease in a live process is refused,
    so no job renders twice at once. The returned row carries this attempt's claim token.
    """
    now = timezone.now()
    token = uuid.uuid4().hex
    claimable = Q(status=RenderJob.Status.QUEUED) | Q(
        status=RenderJob.Status.RUNNING, lease_expires_at__lt=now
    )
    orphan = _orphaned_on(worker, job_id=job_id)
    if orphan is not None:
        # Fenced by the dead attempt's token: if anything moved meanwhile, no claim.
        claimable |= Q(status=RenderJob.Status.RUNNING, claim_token=orphan)
    claimed = (
        RenderJob.objects.filter(claimable, pk=job_id)
        .filter(attempts__lt=settings.SEEDBANK_JOB_MAX_ATTEMPTS)
        .update(
            status=RenderJob.Status.RUNNING,
            attempts=F("attempts") + 1,
            claim_token=token,
            lease_expires_at=now + _lease(),
            worker=worker[:200],
            worker_pid=pid,
            started_at=now,
            progress_step=0,
        )
    )
    return RenderJob.objects.filter(pk=job_id, claim_token=token).first() if claimed else None


def _orphaned_on(worker: str, *, job_id: int) -> str | None:
    """The claim token of the job's running attempt when that attempt belongs to this worker
    (same Celery node name, so the same host) and its process no longer exists."""
    if not worker:
        return None
    running = (
        RenderJob.objects.filter(pk=job_id, status=RenderJob.Status.RUNNING, worker=worker[:200])
        .values_list("worker_pid", "claim_token")
        .first()
    )
    if running is None or running[0] is None or psutil.pid_exists(running[0]):
        return None
    return running[1]


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


def render_job_lease_renew(*, job: RenderJob) -> bool:
    """Push the lease forward without touching progress (the worker's lease keeper, between
    steps however long they are); False when this attempt no longer holds the job."""
    return bool(_held(job).update(lease_expires_at=timezone.now() + _lease()))


def jobs_release(jobs: QuerySet[RenderJob], *, why: str) -> tuple[list[RenderJob], int]:
    """Queue the given running jobs again (their worker is gone), or fail those that used all
    their attempts; returns (re-queued jobs, failed count). Re-queued jobs are sent once the
    transaction commits. Rows another sweeper holds are skipped."""
    requeued: list[RenderJob] = []
    failed = 0
    with transaction.atomic():
        # SKIP LOCKED: two sweepers (two beat processes by mistake) never handle a job twice.
        held = jobs.select_for_update(skip_locked=True).filter(status=RenderJob.Status.RUNNING)
        for job in held.order_by("pk")[:500]:
            job.claim_token, job.lease_expires_at, job.worker_pid = "", None, None
            fields = ["status", "claim_token", "lease_expires_at", "worker_pid"]
            if job.attempts >= settings.SEEDBANK_JOB_MAX_ATTEMPTS:
                job.status = RenderJob.Status.FAILED
                job.error = (
                    f"The worker rendering this job stopped answering {job.attempts} times "
                    f"(last: {job.worker or 'unknown'}); giving up."
                )
                job.finished_at = timezone.now()
                job.save(update_fields=[*fields, "error", "finished_at"])
                fail_outputs(job)
                failed += 1
                continue
            logger.warning(
                "job %s lost its worker %s (%s, attempt %s); queueing it again",
                *(job.pk, job.worker, why, job.attempts),
            )
            job.status = RenderJob.Status.QUEUED
            job.save(update_fields=fields)
            requeued.append(job)
        for job in requeued:
            transaction.on_commit(lambda job=job: job_send(job=job))  # type: ignore[misc]
    return requeued, failed


def jobs_release_worker(*, worker: str) -> int:
    """Queue again at once the jobs held by `worker` (a Celery node name), which has just died
    or just started afresh: it holds nothing any more. Called by the supervisor when the
    process exits and by the worker itself when it starts (generator/worker_start.py)."""
    requeued, failed = jobs_release(
        RenderJob.objects.filter(worker=worker[:200]), why=f"{worker} exited"
    )
    return len(requeued) + failed


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
