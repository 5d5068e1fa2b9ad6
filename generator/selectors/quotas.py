"""Per-user allowances: images, GPU work (megapixel-steps) and GPU seconds per rolling 24 hours,
and the GPU work one user may have queued or rendering at once."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Case, F, Q, Sum, Value, When
from django.utils import timezone
from django.utils.translation import gettext

from generator.models import Image, RenderJob, Reproduction

if TYPE_CHECKING:
    from django.contrib.auth.models import User

IN_FLIGHT = (RenderJob.Status.QUEUED, RenderJob.Status.RUNNING)


class QuotaExceeded(Exception):
    """A user's daily allowance is spent; the message says which and when it frees up (in the
    active language: the reader's on a page, English in workers and the JSON API)."""


def quota_hold(*, user: User | None, renders: int, cost: float = 0.0) -> None:
    """quota_check inside the caller's transaction, with the user's row locked until it ends,
    so two submissions at once cannot both pass the check before either is written."""
    if user is not None:
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    quota_check(user=user, renders=renders, cost=cost)


def _never_ran(job: str) -> Q:
    """Jobs that cost nothing: never started, and either never reached the broker (it was down
    at submit; the sweeper sends them later) or cancelled/failed before a worker took them."""
    return Q(**{f"{job}attempts": 0}) & (
        Q(**{f"{job}sent_at__isnull": True})
        | Q(**{f"{job}status__in": [RenderJob.Status.FAILED, RenderJob.Status.CANCELLED]})
    )


def quota_check(
    *, user: User | None, renders: int, cost: float = 0.0, queued_job: RenderJob | None = None
) -> None:
    """Refuse work past the user's rolling 24-hour allowance, or past what one user may have
    waiting for the GPU at once (staff and system work are exempt). `renders` images costing
    `cost` megapixel-steps (engine.pricing) are about to be queued; or `queued_job`, stored
    while the broker was down, is about to be sent at last (it already counts as waiting)."""
    if user is None or user.is_staff:
        return
    since = timezone.now() - timedelta(hours=24)
    # A rerun (remix unchanged, restore) renders the whole batch unless asked for one seed.
    reruns = (
        Reproduction.objects.filter(requested_by=user, created_at__gte=since)
        .exclude(_never_ran("job__"))
        .aggregate(
            images=Sum(Case(When(whole_batch=True, then=F("image__batch_size")), default=Value(1)))
        )["images"]
    )
    done = Image.objects.filter(owner=user, created_at__gte=since).exclude(
        _never_ran("job__")
    ).count() + (reruns or 0)
    allowed = settings.SEEDBANK_QUOTA_RENDERS_PER_DAY
    if done + renders > allowed:
        raise QuotaExceeded(
            gettext(
                "Daily render quota reached: %(done)s of %(allowed)s images in the last 24 "
                "hours. It frees up as your earlier renders pass 24 hours."
            )
            % {"done": done, "allowed": allowed}
        )
    # Every job the user asked for, renders and reruns alike (a rerun's job is the requester's).
    today = Q(created_at__gte=since)
    jobs = (
        RenderJob.objects.filter(owner=user)
        .filter(today | Q(status__in=IN_FLIGHT))
        .aggregate(
            seconds=Sum("render_seconds", filter=today),
            spent=Sum("cost", filter=today & ~_never_ran("")),
            waiting=Sum("cost", filter=Q(status__in=IN_FLIGHT)),
        )
    )
    spent, budget = jobs["spent"] or 0.0, settings.SEEDBANK_QUOTA_MEGAPIXEL_STEPS_PER_DAY
    if spent + cost > budget:
        raise QuotaExceeded(
            gettext(
                "Daily GPU budget reached: %(spent)s of %(budget)s megapixel-steps used in the "
                "last 24 hours, and this job needs %(cost)s. It frees up as your earlier renders "
                "pass 24 hours; smaller, fewer or shorter images cost less."
            )
            % {"spent": f"{spent:.0f}", "budget": budget, "cost": f"{cost:.1f}"}
        )
    seconds, gpu_budget = jobs["seconds"] or 0.0, settings.SEEDBANK_QUOTA_GPU_SECONDS_PER_DAY
    if seconds >= gpu_budget:
        raise QuotaExceeded(
            gettext(
                "Daily GPU-time quota reached: %(used)s of %(budget)s GPU-seconds in the last "
                "24 hours."
            )
            % {"used": f"{seconds:.0f}", "budget": gpu_budget}
        )
    waiting, most = jobs["waiting"] or 0.0, settings.SEEDBANK_QUOTA_INFLIGHT_MEGAPIXEL_STEPS
    if queued_job is not None:
        waiting -= queued_job.cost
    if cost and waiting + cost > most:
        raise QuotaExceeded(
            gettext(
                "Too much work waiting: your queued and rendering jobs come to %(waiting)s "
                "megapixel-steps and this one needs %(cost)s, but at most %(most)s may wait for "
                "the GPU at once. Submit it when an earlier job finishes."
            )
            % {"waiting": f"{waiting:.1f}", "cost": f"{cost:.1f}", "most": most}
        )
