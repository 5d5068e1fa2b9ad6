"""Re-render records through the worker and report how many reproduce bit for bit."""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.timezone import make_aware

from generator.management.progress import wait_with_progress
from generator.models import Image, Reproduction
from generator.selectors.records import (
    images_public,
    reproduction_summary,
    reproductions_finished,
    reproductions_not_identical,
)
from generator.services.reproductions import reproduction_create


def _since(value: str) -> datetime:
    parsed = parse_datetime(value) or parse_datetime(f"{value}T00:00:00")
    if parsed is None:
        raise CommandError(f"--since takes a date or datetime (YYYY-MM-DD[THH:MM]), not {value!r}")
    return parsed if parsed.tzinfo else make_aware(parsed)


class Command(BaseCommand):
    help = "Reproduction sweep: re-render records on the worker and classify each result."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--all", action="store_true", help="every public record")
        which.add_argument("--since", type=_since, help="records created since this date")
        which.add_argument("--ids", type=int, nargs="+", help="these record ids")
        parser.add_argument(
            "--alone", action="store_true", help="render each seed alone, not its whole batch"
        )
        parser.add_argument("--timeout", type=float, default=3600.0)

    def handle(self, *args: object, **options: object) -> None:
        images = images_public()
        if options["since"]:
            images = images.filter(created_at__gte=options["since"])
        elif options["ids"]:
            images = images.filter(pk__in=options["ids"])
        targets = list(images.order_by("pk"))
        if not targets:
            raise CommandError("No records match.")
        checks = [
            reproduction_create(image=image, requested_by=None, whole_batch=not options["alone"])
            for image in targets
        ]
        self._wait([check.pk for check in checks], float(options["timeout"]))  # type: ignore[arg-type]
        self._report(images.filter(pk__in=[image.pk for image in targets]))

    def _wait(self, ids: list[int], timeout: float) -> None:
        wait_with_progress(
            finished=reproductions_finished(ids=ids),
            total=len(ids),
            desc="reproducing",
            unit="record",
            timeout=timeout,
        )

    def _report(self, images: QuerySet[Image]) -> None:
        summary = reproduction_summary(images=images)
        self.stdout.write(f"\n{'verdict':22} {'records':>8} {'share':>7}")
        for verdict in Reproduction.Verdict.values:
            count = summary.by_verdict.get(verdict, 0)
            if verdict == Reproduction.Verdict.PENDING:
                continue
            share = count / summary.checked if summary.checked else 0.0
            self.stdout.write(f"{verdict:22} {count:8d} {share:7.1%}")
        self.stdout.write(f"{'total checked':22} {summary.checked:8d}")
        for check in reproductions_not_identical(images=images):
            causes = ", ".join(check.environment_diff) or "no recorded difference"
            self.stdout.write(f"  #{check.image_id}: {check.verdict} (changed: {causes})")
