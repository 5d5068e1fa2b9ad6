"""manage.py check_archive: rows without files, files without rows, digests that changed."""

from __future__ import annotations

from collections import Counter

from django.core.management.base import BaseCommand, CommandError, CommandParser

from archive.integrity import archive_check
from archive.management.bars import PhaseBars


class Command(BaseCommand):
    help = (
        "Check that every row's file is on disk, that every media file belongs to a row, and "
        "that pictures, model folders and resource files still give the digests their rows "
        "record. Exits non-zero when anything is wrong."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--quick",
            action="store_true",
            help="only look for files (no pixel decoding, no hashing of weights)",
        )

    def handle(self, *args: object, quick: bool, **options: object) -> None:
        with PhaseBars(unit="item") as bars:
            problems = archive_check(quick=quick, progress=bars)
        for problem in problems:
            self.stdout.write(str(problem))
        if problems:
            kinds = Counter(problem.kind for problem in problems)
            summary = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
            raise CommandError(f"{len(problems)} problem(s): {summary}", returncode=1)
        self.stdout.write("The archive is whole: every row has its file and every digest holds.")
