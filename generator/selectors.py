"""Reads for render jobs: who may see one, its progress as JSON, and GPU time and cost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from generator.models import DevicePrice, RenderJob
from generator.pricing import cost_usd, price_per_hour


def job_for_viewer(*, job_id: int, viewer: User | AnonymousUser) -> RenderJob | None:
    """A job is visible to its owner and to staff."""
    if not viewer.is_authenticated:
        return None
    jobs = RenderJob.objects.filter(pk=job_id)
    if not getattr(viewer, "is_staff", False):
        jobs = jobs.filter(owner=viewer)
    return jobs.first()


def job_payload(*, job: RenderJob) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "progress": {"step": job.progress_step, "total": job.progress_total},
        "error": job.error,
        "render_seconds": job.render_seconds,
        "url": reverse("job_detail", args=[job.pk]),
        "images": [
            {
                "id": image.pk,
                "status": image.status,
                "seed": image.seed,
                "pixel_sha256": image.pixel_sha256,
                "url": reverse("image_detail", args=[image.pk]),
                "src": image.image_file.url if image.image_file else None,
            }
            for image in job.images.order_by("batch_index")
        ],
    }
    reproduction = getattr(job, "reproduction", None) if job.kind == job.Kind.REPRODUCE else None
    if reproduction is not None:
        payload["reproduction"] = {
            "id": reproduction.pk,
            "image_id": reproduction.image_id,
            "verdict": reproduction.verdict,
            "pixel_sha256": reproduction.pixel_sha256,
            "original_sha256": reproduction.image.pixel_sha256,
            "max_abs_diff": reproduction.max_abs_diff,
            "psnr": reproduction.psnr,
            "environment_diff": reproduction.environment_diff,
            "src": reproduction.image_file.url if reproduction.image_file else None,
        }
    return payload


@dataclass(frozen=True)
class DayStats:
    day: date
    images: int
    jobs: int
    failed: int
    render_seconds: float
    cost_usd: Decimal
    unpriced_seconds: float  # render time on devices without a price row


@dataclass(frozen=True)
class RenderStats:
    days: list[DayStats]
    queued: int
    running: int
    finished: int
    failed: int
    render_seconds: float
    cost_usd: Decimal

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.finished if self.finished else None

    @property
    def images(self) -> int:
        return sum(day.images for day in self.days)


def device_prices() -> list[tuple[str, Decimal]]:
    return list(DevicePrice.objects.values_list("name_contains", "usd_per_hour"))


def job_cost_usd(
    *, job: RenderJob, prices: list[tuple[str, Decimal]] | None = None
) -> Decimal | None:
    """What a job's render time cost on its device, or None when the device has no price."""
    if job.render_seconds is None:
        return None
    price = price_per_hour(job.device, prices if prices is not None else device_prices())
    return None if price is None else cost_usd(job.render_seconds, price)


@dataclass
class _DayTotals:
    images: int = 0
    jobs: int = 0
    failed: int = 0
    render_seconds: float = 0.0
    cost_usd: Decimal = Decimal(0)
    unpriced_seconds: float = 0.0


def render_stats(*, days: int = 14, today: date | None = None) -> RenderStats:
    """Renders, GPU time, cost and failures per day (by job finish time, UTC) plus the queue."""
    from gallery.models import Image

    today = today or timezone.now().date()
    first = today - timedelta(days=days - 1)
    prices = device_prices()
    per_day = {first + timedelta(days=n): _DayTotals() for n in range(days)}
    finished_jobs = RenderJob.objects.filter(
        finished_at__date__gte=first, finished_at__date__lte=today
    ).annotate(day=TruncDate("finished_at"))
    for job in finished_jobs:
        totals = per_day[job.day]  # type: ignore[attr-defined]
        totals.jobs += 1
        totals.failed += job.status == RenderJob.Status.FAILED
        seconds = job.render_seconds or 0.0
        totals.render_seconds += seconds
        cost = job_cost_usd(job=job, prices=prices)
        if cost is None:
            totals.unpriced_seconds += seconds
        else:
            totals.cost_usd += cost
    ready = (
        Image.objects.filter(
            status=Image.Status.READY, finished_at__date__gte=first, finished_at__date__lte=today
        )
        .annotate(day=TruncDate("finished_at"))
        .values("day")
        .annotate(count=Count("id"))
    )
    for row in ready:
        per_day[row["day"]].images = row["count"]
    day_rows = [DayStats(day=day, **vars(totals)) for day, totals in sorted(per_day.items())]
    counts = {
        row["status"]: row["count"]
        for row in RenderJob.objects.values("status").annotate(count=Count("id"))
    }
    return RenderStats(
        days=day_rows,
        queued=counts.get(RenderJob.Status.QUEUED, 0),
        running=counts.get(RenderJob.Status.RUNNING, 0),
        finished=sum(day.jobs for day in day_rows),
        failed=sum(day.failed for day in day_rows),
        render_seconds=sum(day.render_seconds for day in day_rows),
        cost_usd=sum((day.cost_usd for day in day_rows), Decimal(0)),
    )
