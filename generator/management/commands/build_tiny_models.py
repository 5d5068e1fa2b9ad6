"""Build the offline tiny models (SD-shaped pipeline + CLIP) and register the default model.

Idempotent: existing folders are kept, so a second run only re-checks the digest.
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from generator.services import model_version_register

TINY_SD_NAME = "tiny-sd"


class Command(BaseCommand):
    help = "Build the tiny offline models under SEEDBANK_MODELS_DIR and register tiny-sd."

    def handle(self, *args: object, **options: object) -> None:
        from generator.tiny_models import build_tiny_clip, build_tiny_sd

        models_dir = settings.SEEDBANK_MODELS_DIR
        sd_path = build_tiny_sd(models_dir / TINY_SD_NAME, seed=0)
        build_tiny_clip(settings.SEEDBANK_CLIP_PATH, seed=0)
        model_version = model_version_register(
            name=TINY_SD_NAME,
            path=sd_path,
            revision="seed0",
            native_width=64,
            native_height=64,
            make_default=True,
            notes="Tiny Stable-Diffusion-shaped pipeline built offline from seed 0 (demo/tests).",
        )
        self.stdout.write(
            f"{model_version} at {sd_path} digest {model_version.weights_digest[:16]}…; "
            f"CLIP at {settings.SEEDBANK_CLIP_PATH}"
        )
