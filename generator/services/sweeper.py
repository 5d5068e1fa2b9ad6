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
from generator.services.render_jobs import fail_outputs, jobs_release

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


def jobs_resend_queued(*, waiting_messages: int | None = None) -> int:
    """Send every queued job again now, when the broker may have lost their messages (a worker
    just started, or reconnected to a broker that restarted). `waiting_messages` is how many
    the broker still holds for the queue, when known: if that covers the queued jobs, nothing
    was lost and nothing is sent. (A worker holds no delivery beyond the one it runs: acks
    late, prefetch 1.) Otherwise every queued job is sent again, since which messages are
    missing cannot be told; duplicates are harmless (only one delivery claims a job).
    """
    settled = timezone.now() - JUST_SUBMITTED
    queued = RenderJob.objects.filter(status=RenderJob.Status.QUEUED, created_at__lt=settled)
    if waiting_messages is not None and waiting_messages >= queued.count():
        return 0
    sent = 0
    for job in queued.select_related("owner").order_by("pk")[:500]:
        if job.sent_at is None and not _still_within_quota(job):
            continue
        sent += job_send(job=job)
    if sent:
        logger.warning("re-sent %s queued job(s) the broker may have lost", sent)
    return sent


def _still_within_quota(job: RenderJob) -> bool:
    """A job the broker never took cost no quota (generator.selectors.quotas); before it is
    sent at last, its owner must still have room for it, as at submit."""
    renders = job.images.count() if job.kind == RenderJob.Kind.RENDER else 1
    try:
        quota_check(user=job.owner, renders=renders, cost=job.cost, queued_job=job)
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
    return jobs_release(RenderJob.objects.filter(lease_expires_at__lt=now), why="its lease ran out")
