"""manage.py backup OUT: the database, media and in-house model files in one verified tar."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from archive.management.bars import PhaseBars
from archive.postgres import PostgresToolError
from archive.services.backup import backup_create
from engine.bundle import BundleError


class Command(BaseCommand):
    help = (
        "Write one backup file (.tar, or .tar.gz): a pg_dump of the database taken from one "
        "snapshot, then every media file its rows name, the model folders and resource files "
        "that are not shipped in the repository, and a manifest of every file's size and "
        "sha256. Safe while the site serves."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", type=Path, help="e.g. var/backups/seedbank-2026-12-07.tar")
        parser.add_argument(
            "--pg-bin", type=Path, default=None, help="folder of pg_dump (default: see docs)"
        )

    def handle(self, *args: object, out: Path, pg_bin: Path | None, **options: object) -> None:
        try:
            with PhaseBars(unit="B", scale=True) as bars:
                result = backup_create(out=out, pg_bin=pg_bin, progress=bars)
        except (BundleError, PostgresToolError) as error:
            raise CommandError(str(error)) from None
        tables = result.tables
        self.stdout.write(
            f"Wrote {result.path}: {result.files} files, {result.bytes / 1e6:.1f} MB in "
            f"{result.seconds:.1f} s; {tables.get('generator_image', 0)} records, "
            f"{tables.get('generator_modelversion', 0)} model versions, "
            f"{tables.get('generator_resource', 0)} resources, "
            f"{tables.get('search_imageembedding', 0)} embeddings."
        )
        for name in result.missing:
            self.stderr.write(f"not in the backup (gone from disk): {name}")
