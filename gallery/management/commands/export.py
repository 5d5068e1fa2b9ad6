"""manage.py export OUT: records as a zip (PNGs + recipes.jsonl) or a DiffusionDB parquet."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from archive.services.exports import export_parquet, export_zip
from gallery.selectors import collection_detail, collection_images
from generator.models import Image
from generator.selectors.records import images_public


class Command(BaseCommand):
    help = (
        "Export records: OUT ending .zip gives PNGs with their recipe chunks plus "
        "recipes.jsonl, .parquet a DiffusionDB-style table. Both import back (manage.py import)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", type=Path)
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--collection", help="a collection's slug")
        which.add_argument("--ids", type=int, nargs="+", help="these public record ids")
        which.add_argument("--all", action="store_true", help="every public record")

    def handle(self, *args: object, **options: object) -> None:
        out: Path = options["out"]  # type: ignore[assignment]
        if out.suffix not in {".zip", ".parquet"}:
            raise CommandError("OUT must end in .zip or .parquet.")
        if options["collection"]:
            found = collection_detail(slug=str(options["collection"]), viewer=None)
            if found is None:
                raise CommandError(f"No public collection {options['collection']!r}.")
            images: Iterable[Image] = collection_images(collection=found)
            empty = not images
        else:
            public = images_public().order_by("pk")
            chosen = public.filter(pk__in=options["ids"]) if options["ids"] else public
            empty = not chosen.exists()
            # Streamed: --all over a large archive never holds every record in memory.
            images = chosen.iterator(chunk_size=2000)
        if empty:
            raise CommandError("No records to export.")
        writer = export_zip if out.suffix == ".zip" else export_parquet
        with out.open("wb") as handle:
            count = writer(images, handle)
        self.stdout.write(f"Exported {count} records to {out}.")
