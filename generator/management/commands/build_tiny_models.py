"""Build the offline tiny models (SD-shaped pipeline + CLIP) and register the demo models.

Besides the default `tiny-sd`, a fine-tune of it and a 50/50 blend of the two are registered, so
the demo gallery can show that the model is part of the recipe. Idempotent: existing folders are
kept, so a second run only re-checks digests.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from generator.services.model_versions import (
    RegistryError,
    blend_create,
    model_add,
    model_version_register,
)

TINY_SD_NAME = "tiny-sd"
TINY_SD_FINETUNE_NAME = "tiny-sd-finetune"
TINY_SD_BLEND_NAME = "tiny-sd-blend-0.5"
TINY_REVISION = "seed0"
TINY_BLEND_ALPHA = 0.5


class Command(BaseCommand):
    help = (
        "Build the tiny offline models under SEEDBANK_MODELS_DIR; register tiny-sd (default), "
        "tiny-sd-finetune and tiny-sd-blend-0.5 (0.5 × finetune + 0.5 × tiny-sd)."
    )

    def handle(self, *args: object, **options: object) -> None:
        # Imported here: torch, diffusers and open_clip cost seconds to import.
        from engine.tiny_models import build_tiny_clip, build_tiny_sd

        models_dir = settings.SEEDBANK_MODELS_DIR
        sd_path = build_tiny_sd(models_dir / TINY_SD_NAME, seed=0)
        build_tiny_clip(settings.SEEDBANK_CLIP_PATH, seed=0)
        model_version = model_version_register(
            name=TINY_SD_NAME,
            path=sd_path,
            revision=TINY_REVISION,
            native_width=64,
            native_height=64,
            make_default=True,
            notes="Tiny Stable-Diffusion-shaped pipeline built offline from seed 0 (demo/tests).",
        )
        finetune_path = build_tiny_sd(
            models_dir / TINY_SD_FINETUNE_NAME, seed=0, variant="finetune"
        )
        try:
            finetune = model_add(
                path=finetune_path,
                name=TINY_SD_FINETUNE_NAME,
                revision=TINY_REVISION,
                native_size=64,
                notes="tiny-sd with a seeded perturbation of its UNet: a stand-in fine-tune.",
            )
            blend = blend_create(
                a=finetune,
                b=model_version,
                alpha=TINY_BLEND_ALPHA,
                name=TINY_SD_BLEND_NAME,
                revision=TINY_REVISION,
            )
        except RegistryError as error:
            raise CommandError(str(error)) from None
        for registered in (model_version, finetune, blend):
            self.stdout.write(
                f"{registered} at {registered.path} digest {registered.weights_digest[:16]}…"
            )
        self.stdout.write(f"CLIP at {settings.SEEDBANK_CLIP_PATH}")
