"""manage.py verify: re-render imported records and say which Seedbank reproduces exactly."""

from __future__ import annotations

from collections import Counter

from django.core.management.base import BaseCommand, CommandParser

from archive.services.verify import imports_verify
from generator.management.progress import wait_with_progress
from generator.selectors.records import reproductions_finished


class Command(BaseCommand):
    help = (
        "Queue a reproduction check for every imported record whose model is registered and "
        "which has not been checked, wait for the worker, and report the verdicts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=None)
        parser.add_argument("--timeout", type=float, default=3600.0)
        parser.add_argument("--no-wait", action="store_true", help="queue and return")

    def handle(self, *args: object, **options: object) -> None:
        checks = imports_verify(limit=options["limit"])  # type: ignore[arg-type]
        if not checks:
            self.stdout.write("Nothing to verify: every imported record with a model is checked.")
            return
        ids = [check.pk for check in checks]
        if options["no_wait"]:
            self.stdout.write(f"Queued {len(ids)} reproduction checks.")
            return
        wait_with_progress(
            finished=reproductions_finished(ids=ids),
            total=len(ids),
            desc="verifying imports",
            unit="record",
            timeout=float(options["timeout"]),  # type: ignore[arg-type]
        )
        verdicts = Counter(str(v) for v in reproductions_finished(ids=ids).values_list(
            "verdict", flat=True))  # fmt: skip
        self.stdout.write(
            ", ".join(f"{verdict} {count}" for verdict, count in sorted(verdicts.items()))
        )
