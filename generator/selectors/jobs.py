"""Reads for render jobs: who may see one, and which of a set have finished."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from generator.models import Image, RenderJob


def job_for_viewer(*, job_id: int, viewer: User | AnonymousUser) -> RenderJob | None:
    """A job is visible to its owner and to staff."""
    if not viewer.is_authenticated:
        return None
    jobs = RenderJob.objects.filter(pk=job_id)
    if not getattr(viewer, "is_staff", False):
        jobs = jobs.filter(owner=viewer)
    return jobs.first()


def jobs_finished(*, ids: list[int]) -> QuerySet[RenderJob]:
    return RenderJob.objects.filter(
        pk__in=ids, status__in=[RenderJob.Status.DONE, RenderJob.Status.FAILED]
    )


def jobs_failed_count(*, ids: list[int]) -> int:
    return RenderJob.objects.filter(pk__in=ids, status=RenderJob.Status.FAILED).count()


def job_images(*, job: RenderJob) -> list[Image]:
    return list(job.images.order_by("batch_index"))
