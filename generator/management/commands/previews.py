"""Write grid previews for records stored before renders wrote them (safe to run again)."""

from django.core.management.base import BaseCommand
from tqdm import tqdm

from generator.selectors.records import images_without_previews
from generator.services.records import image_previews_backfill


class Command(BaseCommand):
    help = "Write the WebP grid previews of stored records that have none yet."

    def handle(self, *args: object, **options: object) -> None:
        missing = images_without_previews()
        written = 0
        for image in tqdm(missing.iterator(chunk_size=200), total=missing.count(), unit="image"):
            image_previews_backfill(image=image)
            written += 1
        self.stdout.write(f"Wrote previews for {written} record(s).")
