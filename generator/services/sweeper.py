"""The sweeper (a periodic task, generator.tasks.sweep_jobs under Celery beat): every accepted
job finishes exactly once, whatever happens to workers and the broker.

- A running job whose lease ran out lost its worker (killed, out of memory, machine gone): it is
  queued and sent again, or failed with the reason once it has used its attempts.
- A queued job that was never sent (the broker was down at submit) is sent, if its owner still
  has the quota for it (it cost none while unsent).
- A queued job sent long ago and never claimed is sent again (a broker that lost its data);
  a duplicate delivery is harmless, because only one delivery can claim a job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from generator.models import RenderJob
from generator.selectors.quotas import QuotaExceeded, quota_check
from generator.services.queue import job_send
from generator.services.render_jobs import fail_outputs

logger = logging.getLogger(__name__)

# Jobs younger than this were just committed and their own on_commit publish is under way.
JUST_SUBMITTED = timedelta(seconds=5)


@dataclass(frozen=True)
class Sweep:
    requeued: int = 0
    failed: int = 0
    sent: int = 0


def jobs_sweep() -> Sweep:
    now = timezone.now()
    requeued, failed = _expired_leases(now)
    sent = 0
    stale = now - timedelta(seconds=settings.SEEDBANK_JOB_RESEND_SECONDS)
    unsent = RenderJob.objects.filter(status=RenderJob.Status.QUEUED).filter(
        Q(sent_at__isnull=True, created_at__lt=now - JUST_SUBMITTED) | Q(sent_at__lt=stale)
    )
    for job in unsent.select_related("owner").order_by("pk")[:500]:
        if job.sent_at is None and not _still_within_quota(job):
            continue
        sent += job_send(job=job)
    sweep = Sweep(requeued=len(requeued), failed=failed, sent=sent)
    if sweep != Sweep():
        logger.info("sweep: %s", sweep)
    return sweep


def _still_within_quota(job: RenderJob) -> bool:
    """A job the broker never took cost no quota (generator.selectors.quotas); before it is
    sent at last, its owner must still have room for it, as at submit."""
    renders = job.images.count() if job.kind == RenderJob.Kind.RENDER else 1
    try:
        quota_check(user=job.owner, renders=renders)
    except QuotaExceeded as exc:
        with transaction.atomic():
            if RenderJob.objects.filter(pk=job.pk, status=RenderJob.Status.QUEUED).update(
                status=RenderJob.Status.FAILED,
                error=f"Not rendered: the queue was unreachable when it was submitted, and "
                f"since then the quota ran out. {exc}"[:2000],
                finished_at=timezone.now(),
            ):
                fail_outputs(job)
        return False
    return True


def _expired_leases(now: datetime) -> tuple[list[RenderJob], int]:
    requeued: list[RenderJob] = []
    failed = 0
    with transaction.atomic():
        # SKIP LOCKED: two sweepers (two beat processes by mistake) never handle a job twice.
        expired = (
            RenderJob.objects.select_for_update(skip_locked=True)
            .filter(status=RenderJob.Status.RUNNING, lease_expires_at__lt=now)
            .order_by("pk")[:500]
        )
        for job in expired:
            job.claim_token = ""
            job.lease_expires_at = None
            if job.attempts >= settings.SEEDBANK_JOB_MAX_ATTEMPTS:
                job.status = RenderJob.Status.FAILED
                job.error = (
                    f"The worker rendering this job stopped answering {job.attempts} times "
                    f"(last: {job.worker or 'unknown'}); giving up."
                )
                job.finished_at = timezone.now()
                job.save(
                    update_fields=[
                        "status",
                        "error",
                        "finished_at",
                        "claim_token",
                        "lease_expires_at",
                    ]
                )
                fail_outputs(job)
                failed += 1
            else:
                logger.warning(
                    "job %s lost its worker %s (attempt %s); queueing it again",
                    job.pk,
                    job.worker,
                    job.attempts,
                )
                job.status = RenderJob.Status.QUEUED
                job.save(update_fields=["status", "claim_token", "lease_expires_at"])
                requeued.append(job)
        for job in requeued:
            transaction.on_commit(lambda job=job: job_send(job=job))  # type: ignore[misc]
    return requeued, failed
