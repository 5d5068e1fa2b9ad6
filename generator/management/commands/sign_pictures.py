"""Sign the stored pictures that carry no valid Content Credentials from this site: records
stored before signing existed, or signed by a credential this site no longer knows. Safe to
run again, and to stop: each picture is signed and committed on its own."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from engine.provenance.signing import SigningFailed
from generator.selectors.signing import images_with_stored_pictures
from generator.services.signing import (
    image_signature_missing,
    image_signature_refresh,
    site_trust_anchors,
)


class Command(BaseCommand):
    help = "Sign every stored picture that has no valid manifest from this site."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all",
            dest="everything",
            action="store_true",
            help="re-sign every stored picture, valid or not (e.g. to move them all to the "
            "current key after `signing_key rotate`)",
        )
        parser.add_argument("--batch-size", type=int, default=200, help="rows read per query")

    def handle(self, *args: object, everything: bool, batch_size: int, **options: Any) -> None:
        try:
            anchors = site_trust_anchors()
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        images = images_with_stored_pictures()
        signed = valid = missing = 0
        failed: list[str] = []
        bar = tqdm(images.iterator(chunk_size=batch_size), total=images.count(), unit="picture")
        for image in bar:
            try:
                if everything or image_signature_missing(image=image, trust_anchors=anchors):
                    image_signature_refresh(image=image)
                    signed += 1
                else:
                    valid += 1
            except FileNotFoundError:
                missing += 1
            except (ValueError, SigningFailed) as error:  # a damaged file: reported, not fatal
                failed.append(f"record {image.pk}: {error}")
        self.stdout.write(
            f"Signed {signed} picture(s); {valid} already carried this site's credentials"
            + (f"; {missing} record(s) name a file that is not there" if missing else "")
            + "."
        )
        for line in failed:
            self.stderr.write(f"Not signed: {line}")
