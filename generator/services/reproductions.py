"""Reproduction checks and restores of evicted records: rows first, then the queue."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from engine.pricing import recipe_megapixel_steps
from generator.models import Image, RenderJob, Reproduction
from generator.selectors.quotas import quota_hold
from generator.selectors.records import image_pending_restore
from generator.services.queue import job_progress_total, job_send, job_time_limit

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def reproduction_create(
    *,
    image: Image,
    requested_by: User | None,
    purpose: str = Reproduction.Purpose.CHECK,
    whole_batch: bool = True,
) -> Reproduction:
    """Queue a re-render of `image` (row first, then the task once committed). It costs the
    requester's quota like a new render: the whole batch, or one image when rendered alone."""
    images = image.batch_size if whole_batch else 1
    cost = recipe_megapixel_steps(replace(image.recipe(), batch_size=images))
    with transaction.atomic():
        quota_hold(user=requested_by, renders=images, cost=cost)
        job = RenderJob.objects.create(
            kind=RenderJob.Kind.REPRODUCE,
            owner=requested_by,
            cost=cost,
            progress_total=job_progress_total(image.recipe()),
            sent_at=timezone.now(),  # published on commit; cleared if the broker refuses it
            time_limit_seconds=job_time_limit(cost=cost),
        )
        reproduction = Reproduction.objects.create(
            image=image,
            job=job,
            requested_by=requested_by,
            purpose=purpose,
            whole_batch=whole_batch,
        )
        transaction.on_commit(lambda: job_send(job=job))
    return reproduction


def image_restore_request(*, image: Image, requested_by: User | None) -> Reproduction | None:
    """Ask the worker to re-render an evicted record; reuse a restore already on its way."""
    if image.evicted_at is None:
        return None
    last = (
        image.reproductions.filter(purpose=Reproduction.Purpose.RESTORE)
        .exclude(verdict=Reproduction.Verdict.PENDING)
        .order_by("-created_at")
        .first()
    )
    if last is not None and last.created_at > image.evicted_at:
        # A restore since the eviction did not prove identical pixels: retrying on every page
        # view would burn GPU time for the same answer. Staff can re-run a check.
        return None
    pending = image_pending_restore(image=image)
    if pending is not None:
        return pending
    return reproduction_create(
        image=image, requested_by=requested_by, purpose=Reproduction.Purpose.RESTORE
    )
