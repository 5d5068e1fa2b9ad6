"""manage.py restore IN: a backup into an empty database and empty media / models folders."""

from __future__ import annotations

from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from archive.management.bars import PhaseBars
from archive.postgres import PostgresToolError
from archive.services.restore import RestoreRefused, backup_restore
from engine.bundle import BundleError


class Command(BaseCommand):
    help = (
        "Restore a `manage.py backup` file into the database DATABASE_URL names (or the "
        "embedded one under SEEDBANK_VAR_DIR), which must be empty, and into MEDIA_ROOT and "
        "SEEDBANK_MODELS_DIR. Every file is checked against the manifest's sha256 before "
        "anything is written; then migrate brings an older dump up to this code."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", type=Path, metavar="IN")
        parser.add_argument(
            "--pg-bin", type=Path, default=None, help="folder of pg_restore (default: see docs)"
        )

    def handle(self, *args: object, source: Path, pg_bin: Path | None, **options: object) -> None:
        try:
            with PhaseBars(unit="B", scale=True) as bars:
                result = backup_restore(source=source, pg_bin=pg_bin, progress=bars)
        except (RestoreRefused, BundleError, PostgresToolError) as error:
            raise CommandError(str(error)) from None
        call_command("migrate", interactive=False, verbosity=0)
        manifest, tables = result.manifest, result.tables
        made = manifest["seedbank"]
        self.stdout.write(
            f"Restored {source} (made {manifest['created_at']} by Seedbank "
            f"{made.get('version') or '?'} {made.get('git_revision', '')[:12]}, "
            f"{manifest['database']['pg_dump']}) in {result.seconds:.1f} s:\n"
            f"  records {tables.get('generator_image', 0)}, model versions "
            f"{tables.get('generator_modelversion', 0)}, resources "
            f"{tables.get('generator_resource', 0)}, embeddings "
            f"{tables.get('search_imageembedding', 0)}, users {tables.get('auth_user', 0)}\n"
            f"  files {result.files} ({result.bytes / 1e6:.1f} MB) into the media and models "
            "folders, each matching its sha256"
        )
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
