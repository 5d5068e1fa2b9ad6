"""Reads for render jobs: who may see one, and which of a set have finished."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Q, QuerySet

from generator.models import Image, RenderJob
from generator.models.jobs import FINISHED


def job_for_viewer(*, job_id: int, viewer: User | AnonymousUser) -> RenderJob | None:
    """A job is visible to its owner and to staff."""
    if not viewer.is_authenticated:
        return None
    jobs = RenderJob.objects.filter(pk=job_id)
    if not getattr(viewer, "is_staff", False):
        jobs = jobs.filter(owner=viewer)
    return jobs.first()


def jobs_finished(*, ids: list[int]) -> QuerySet[RenderJob]:
    return RenderJob.objects.filter(pk__in=ids, status__in=FINISHED)


@dataclass(frozen=True)
class QueuePlace:
    ahead: int  # queued jobs that will start before this one
    running: int  # jobs rendering now (one per busy render worker)
    estimate_seconds: float | None  # until this job starts; None without recent history


RECENT_JOBS = 50  # how many finished jobs the estimate learns from


def job_queue_place(*, job: RenderJob) -> QueuePlace | None:
    """Where a queued job stands: jobs ahead of it (oldest first, like the broker's FIFO
    queue), and a rough wait from the median duration of recent jobs, spread over the workers
    busy now. None once the job has left the queue."""
    if job.status != RenderJob.Status.QUEUED:
        return None
    unfinished = RenderJob.objects.filter(
        status__in=[RenderJob.Status.QUEUED, RenderJob.Status.RUNNING]
    ).aggregate(
        ahead=Count("pk", filter=Q(status=RenderJob.Status.QUEUED, pk__lt=job.pk)),
        running=Count("pk", filter=Q(status=RenderJob.Status.RUNNING)),
    )
    durations = [
        (finished - started).total_seconds()
        for started, finished in RenderJob.objects.filter(
            status=RenderJob.Status.DONE, started_at__isnull=False, finished_at__isnull=False
        )
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:RECENT_JOBS]
        if started is not None and finished is not None  # for the type checker: filtered above
    ]
    ahead, running = unfinished["ahead"], unfinished["running"]
    estimate = None
    if durations:
        # The running jobs are half done on average; the queue drains over the busy workers.
        typical = statistics.median(durations)
        estimate = (ahead + running / 2) * typical / max(running, 1)
    return QueuePlace(ahead=ahead, running=running, estimate_seconds=estimate)


def job_cancellable_by(*, job: RenderJob, user: User | AnonymousUser) -> bool:
    return (
        not job.is_finished and user.is_authenticated and (user.is_staff or job.owner_id == user.pk)
    )


def jobs_failed_count(*, ids: list[int]) -> int:
    return RenderJob.objects.filter(
        pk__in=ids, status__in=[RenderJob.Status.FAILED, RenderJob.Status.CANCELLED]
    ).count()


def job_images(*, job: RenderJob) -> list[Image]:
    return list(job.images.order_by("batch_index"))
