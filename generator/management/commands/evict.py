"""Drop the full images of records verified bit-identical; they re-render on demand."""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from generator.selectors.records import images_evictable
from generator.services.records import image_evict


class Command(BaseCommand):
    help = "Evict image bytes (keeping thumbnails) of records whose last check was bit-identical."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--verified-only",
            action="store_true",
            help="required: only records whose latest reproduction is bit-identical",
        )
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: object, verified_only: bool, dry_run: bool, **options: object) -> None:
        if not verified_only:
            raise CommandError(
                "Only verified records can be evicted: pass --verified-only "
                "(run `manage.py reproduce --all` first)."
            )
        candidates = images_evictable()
        saved = 0
        for image in tqdm(candidates, desc="evicting", unit="image"):
            if dry_run:
                saved += image.image_file.size
            else:
                saved += image_evict(image=image)
        verb = "Would evict" if dry_run else "Evicted"
        self.stdout.write(
            f"{verb} {len(candidates)} image(s); bytes saved: {saved} ({saved / 1e6:.2f} MB)"
        )
