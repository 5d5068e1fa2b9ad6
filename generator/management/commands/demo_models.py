"""Register the demo's models: the scene models trained by `make models` and kept in models/.

scenes-sd (the default), its outline fine-tune scenes-sd-outline, and a 50/50 blend of the two,
so the demo gallery can show that the model is part of the recipe. Registered in place and
pinned by digest; the shipped digests (models/DIGESTS) are checked first, so a model folder
that changed since it was trained is refused rather than silently rendering other pixels.
Idempotent. Retrained models get a new REVISION: the older revisions are archived (their
records stay; their folders hold the new bytes, so they render nothing new).
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from engine.resources import file_sha256
from engine.scenes import COLOURS, COUNTS, POSITIONS, SHAPES, SIZE, SIZES, Scene
from engine.training.shipped import (
    EMBEDDING_FOLDER,
    GUIDANCE,
    OUTLINE_FOLDER,
    OUTLINE_LORA_FOLDER,
    SD_FOLDER,
    VAE_FT_FOLDER,
    VAE_V1_FOLDER,
    read_digests,
    read_resource_digests,
)
from engine.weights import weights_digest
from generator.services.model_versions import (
    RegistryError,
    blend_create,
    model_add,
    model_version_recommend,
    model_version_register,
    model_versions_archive_superseded,
)
from generator.services.resources import ResourceRefused, resource_add

SCENES_SD_NAME = "scenes-sd"
SCENES_OUTLINE_NAME = "scenes-sd-outline"
SCENES_BLEND_NAME = "scenes-sd-blend-0.5"
# v2: 2026-12-06, a VAE trained to keep shapes (engine.training.diffusion), UNet retrained on it.
REVISION = "v2"
BLEND_ALPHA = 0.5
# The shipped resources for scenes-sd v2: (folder, kind, name, notes).
SCENES_LORA_NAME = "scenes-outline-lora"
SCENES_VAE_V1_NAME = "scenes-vae-v1"
SCENES_VAE_FT_NAME = "scenes-vae-ft"
# Its token is the file's name, as in A1111: a prompt says "sbk-diamond".
SCENES_EMBEDDING_NAME = "sbk-diamond"
DEMO_RESOURCES = (
    (
        OUTLINE_LORA_FOLDER,
        "lora",
        SCENES_LORA_NAME,
        "The outline fine-tune as a rank-16 LoRA of scenes-sd's UNet (a truncated SVD of the "
        "fine-tune's weight changes): at weight 1 it draws outlines like scenes-sd-outline.",
    ),
    (
        VAE_V1_FOLDER,
        "vae",
        SCENES_VAE_V1_NAME,
        "scenes-sd's first VAE (revision v1), trained apart from v2's UNet: its latent space "
        "differs, so it decodes today's latents with the wrong colours.",
    ),
    (
        VAE_FT_FOLDER,
        "vae",
        SCENES_VAE_FT_NAME,
        "scenes-sd's VAE with its decoder fine-tuned 400 more steps (as SD's vae-ft-mse): the "
        "same latent space, slightly other pixels.",
    ),
    (
        EMBEDDING_FOLDER,
        "embedding",
        SCENES_EMBEDDING_NAME,
        "A textual-inversion embedding of a diamond, a shape scenes-sd never saw: one token "
        "vector trained on drawn diamonds with the model frozen. It pulls renders towards "
        "diamonds (23 % of renders, against 2 % for the same word without it), not always "
        "cleanly: the frozen model draws even its own shapes loosely.",
    ),
)

# How the scene models sample best (docs/demo-models.md: guidance 2, PNDM, 20 steps, measured
# at their 64×64); the generate form and the API start new recipes from it.
SCENES_SAMPLING = {
    "guidance": GUIDANCE,
    "steps": 20,
    "scheduler": "PNDM",
    "width": SIZE,
    "height": SIZE,
}
# Example prompts in each caption language: scenes as the models' training captions say them.
_EXAMPLE_SCENES = (
    ("circle", "red", "blue", "large", "centre", 1),
    ("cat", "white", "orange", "large", "centre", 1),
    ("star", "yellow", "black", "small", "top", 1),
    ("tree", "green", "white", "large", "centre", 2),
    ("house", "blue", "yellow", "large", "left", 1),
)


def scenes_example_prompts() -> dict[str, list[str]]:
    scenes = [Scene(*scene, jitter=0) for scene in _EXAMPLE_SCENES]
    return {language: [s.caption(language) for s in scenes] for language in ("en", "zh")}


def scenes_vocabulary() -> dict[str, str]:
    """The words the scene models were trained on (engine.scenes), in each caption language."""
    fewest, most = min(COUNTS), max(COUNTS)
    places = ["middle" if name == "centre" else name for name in POSITIONS]  # as captions say
    english = (
        f"{fewest} to {most} things, {' or '.join(SIZES)}: {', '.join(SHAPES)}; "
        f"colours: {', '.join(COLOURS)}; places: {', '.join(places)}; "
        "on a plain background of another colour. It draws nothing else."
    )
    chinese = (
        f"{COUNTS[fewest][1]}到{COUNTS[most][1]}个东西，"
        f"{'或'.join(SIZES.values())}：{'、'.join(zh for _, zh, _ in SHAPES.values())}；"
        f"颜色：{'、'.join(f'{zh}色' for _, zh in COLOURS.values())}；"
        f"位置：{'、'.join(zh for _, zh, _ in POSITIONS.values())}；"
        "背景是另一种颜色的纯色。别的东西它画不出来。"
    )
    return {"en": english, "zh": chinese}


class Command(BaseCommand):
    help = (
        "Register the shipped scene models: scenes-sd (default), scenes-sd-outline and "
        "scenes-sd-blend-0.5 (0.5 × outline + 0.5 × scenes-sd), and their resources: "
        "scenes-outline-lora, scenes-vae-v1, scenes-vae-ft and the sbk-diamond embedding."
    )

    def handle(self, *args: object, **options: object) -> None:
        shipped = Path(settings.SEEDBANK_SHIPPED_MODELS_DIR)
        _check_digests(shipped)
        try:
            base = model_version_register(
                name=SCENES_SD_NAME,
                path=shipped / SD_FOLDER,
                revision=REVISION,
                native_width=64,
                native_height=64,
                make_default=True,
                notes=(
                    "Trained on synthetic captioned scenes (engine.scenes) by `make models`. "
                    f"Follows its prompts best at guidance {GUIDANCE:g} (bench/models.py); "
                    "Stable Diffusion's usual 7.5 over-saturates it."
                ),
            )
            outline = model_add(
                path=shipped / OUTLINE_FOLDER,
                name=SCENES_OUTLINE_NAME,
                revision=REVISION,
                native_size=64,
                notes="scenes-sd fine-tuned on the same scenes drawn as outlines.",
            )
            blend = blend_create(
                a=outline, b=base, alpha=BLEND_ALPHA, name=SCENES_BLEND_NAME, revision=REVISION
            )
        except RegistryError as error:
            raise CommandError(str(error)) from None
        for registered in (base, outline, blend):
            model_version_recommend(
                model_version=registered,
                sampling=SCENES_SAMPLING,
                vocabulary=scenes_vocabulary(),
                example_prompts=scenes_example_prompts(),
            )
        for folder, kind, name, notes in DEMO_RESOURCES:
            (path,) = sorted((shipped / folder).glob("*.safetensors"))
            try:
                resource = resource_add(
                    path=path, kind=kind, name=name, revision=REVISION, notes=notes
                )
            except ResourceRefused as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"{kind} {resource} sha256 {resource.sha256[:16]}…")
        names = (SCENES_SD_NAME, SCENES_OUTLINE_NAME, SCENES_BLEND_NAME)
        archived = model_versions_archive_superseded(names=names, current_revision=REVISION)
        if archived:
            self.stdout.write(f"Archived {archived} older revisions of the scene models.")
        for registered in (base, outline, blend):
            self.stdout.write(
                f"{registered} at {registered.path} digest {registered.weights_digest[:16]}…"
            )
        self.stdout.write(f"CLIP at {settings.SEEDBANK_CLIP_PATH}")


def _check_digests(shipped: Path) -> None:
    try:
        expected = read_digests(shipped)
    except FileNotFoundError:
        raise CommandError(f"No trained models in {shipped}: run `make models`.") from None
    for folder, digest in expected.items():
        if not (shipped / folder).is_dir() or weights_digest(shipped / folder) != digest:
            raise CommandError(
                f"{shipped / folder} is missing or differs from the digest it was trained to "
                f"({digest[:16]}…): restore it from git, or retrain with `make models`."
            )
    for folder, digest in read_resource_digests(shipped).items():
        files = sorted((shipped / folder).glob("*.safetensors"))
        if len(files) != 1 or file_sha256(files[0]) != digest:
            raise CommandError(
                f"{shipped / folder} should hold one .safetensors file with sha256 "
                f"{digest[:16]}…: restore it from git, or rebuild with `make models`."
            )
