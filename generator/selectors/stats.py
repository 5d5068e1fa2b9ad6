"""GPU time, cost and failures per day, for the staff dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from engine.pricing import cost_usd, price_per_hour
from generator.models import DevicePrice, Image, RenderJob


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
