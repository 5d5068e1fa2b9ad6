"""Per-user allowances: images and GPU seconds per rolling 24 hours."""

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


class QuotaExceeded(Exception):
    """A user's daily allowance is spent; the message says which and when it frees up (in the
    active language: the reader's on a page, English in workers and the JSON API)."""


def quota_hold(*, user: User | None, renders: int) -> None:
    """quota_check inside the caller's transaction, with the user's row locked until it ends,
    so two submissions at once cannot both pass the check before either is written."""
    if user is not None:
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    quota_check(user=user, renders=renders)


def _never_ran(job: str) -> Q:
    """Jobs that cost nothing: never started, and either never reached the broker (it was down
    at submit; the sweeper sends them later) or cancelled/failed before a worker took them."""
    return Q(**{f"{job}attempts": 0}) & (
        Q(**{f"{job}sent_at__isnull": True})
        | Q(**{f"{job}status__in": [RenderJob.Status.FAILED, RenderJob.Status.CANCELLED]})
    )


def quota_check(*, user: User | None, renders: int) -> None:
    """Refuse work past the user's rolling 24-hour allowance (staff and system work are exempt)."""
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
    seconds = (
        RenderJob.objects.filter(owner=user, created_at__gte=since).aggregate(
            total=Sum("render_seconds")
        )["total"]
        or 0.0
    )
    budget = settings.SEEDBANK_QUOTA_GPU_SECONDS_PER_DAY
    if seconds >= budget:
        raise QuotaExceeded(
            gettext(
                "Daily GPU-time quota reached: %(used)s of %(budget)s GPU-seconds in the last "
                "24 hours."
            )
            % {"used": f"{seconds:.0f}", "budget": budget}
        )
