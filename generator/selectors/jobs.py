"""Reads for render jobs: who may see one, and which of a set have finished."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.utils import timezone

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
    ahead: int  # jobs that finish or start before this one: the running ones, the older queued
    running: int  # of those, jobs rendering now (one per busy render worker)
    estimate_seconds: float | None  # until this job starts; None without anything to go by


RECENT_JOBS = 50  # how many finished jobs the estimate learns from


def job_queue_place(*, job: RenderJob, now: datetime | None = None) -> QueuePlace | None:
    """Where a queued job stands: the jobs rendering now and the queued jobs older than it
    (the broker's queue is FIFO) are all ahead of it. The wait: what the running jobs have
    left (from their own progress when they report it, else the typical duration less their
    time so far) plus a typical duration per queued job ahead, shared among the busy workers.
    The typical duration is the median of recent finished jobs (else the running jobs' own
    pace). No estimate for the first in line (it starts when a worker takes it), nor without
    anything to go by. None once the job has left the queue."""
    if job.status != RenderJob.Status.QUEUED:
        return None
    now = now or timezone.now()
    running = list(
        RenderJob.objects.filter(status=RenderJob.Status.RUNNING).values_list(
            "started_at", "progress_step", "progress_total"
        )
    )
    queued_ahead = RenderJob.objects.filter(status=RenderJob.Status.QUEUED, pk__lt=job.pk).count()
    durations = [
        (finished - started).total_seconds()
        for started, finished in RenderJob.objects.filter(
            status=RenderJob.Status.DONE, started_at__isnull=False, finished_at__isnull=False
        )
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:RECENT_JOBS]
        if started is not None and finished is not None  # for the type checker: filtered above
    ]
    if not running and not queued_ahead:  # first in line: it waits only for a worker
        return QueuePlace(ahead=0, running=0, estimate_seconds=None)
    return QueuePlace(
        ahead=queued_ahead + len(running),
        running=len(running),
        estimate_seconds=queue_wait_estimate(
            running=[
                RunningJob(
                    elapsed=max(0.0, (now - started).total_seconds()) if started else 0.0,
                    step=step,
                    total=total,
                )
                for started, step, total in running
            ],
            queued_ahead=queued_ahead,
            typical=statistics.median(durations) if durations else None,
        ),
    )


@dataclass(frozen=True)
class RunningJob:
    elapsed: float  # seconds since it started
    step: int  # denoising steps done, of total (0 of 0 before its first report)
    total: int

    @property
    def paced_duration(self) -> float | None:
        """Its whole duration at the pace it has kept so far (None before any step)."""
        if not self.total or not self.step or not self.elapsed:
            return None
        return self.elapsed * self.total / self.step


def queue_wait_estimate(
    *, running: list[RunningJob], queued_ahead: int, typical: float | None
) -> float | None:
    """Seconds until a job behind `running` and `queued_ahead` others starts, with one render
    worker per running job (at least one: a queued job waits for a worker either way)."""
    if typical is None:
        paces = [pace for job in running if (pace := job.paced_duration) is not None]
        typical = statistics.median(paces) if paces else None
    left = 0.0
    for job in running:
        pace = job.paced_duration
        if pace is not None:
            left += max(0.0, pace - job.elapsed)
        elif typical is not None:
            left += max(0.0, typical - job.elapsed)
        else:
            return None
    if queued_ahead and typical is None:
        return None
    work = left + queued_ahead * (typical or 0.0)
    return work / max(len(running), 1)


@dataclass(frozen=True)
class JobsProgress:
    """How far a set of jobs has come (what a command waiting on them shows)."""

    finished: int
    running: int
    step: int  # the furthest running job's denoising step, of total (0 of 0: none reported)
    total: int


def jobs_progress(*, ids: list[int]) -> JobsProgress:
    rows = list(
        RenderJob.objects.filter(pk__in=ids).values_list(
            "status", "progress_step", "progress_total"
        )
    )
    running = [(step, total) for status, step, total in rows if status == RenderJob.Status.RUNNING]
    step, total = max(running, key=lambda pair: pair[0] / (pair[1] or 1), default=(0, 0))
    return JobsProgress(
        finished=sum(status in FINISHED for status, _step, _total in rows),
        running=len(running),
        step=step,
        total=total,
    )


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
