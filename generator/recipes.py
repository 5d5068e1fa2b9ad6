"""What a recipe is and which recipes are acceptable (Django-free, shared by forms, API, services).

One place holds the rules so the HTML form, the JSON API and the service can never disagree.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any

from generator.schedulers import SCHEDULERS

SEED_MAX = 2**32 - 1  # A1111 and diffusers users exchange 32-bit seeds
SIDE_MIN = 64
SIDE_MULTIPLE = 8  # the VAE downsamples by 8; other sizes crash or get cropped silently
PRECISIONS = ("fp32", "fp16")
MODES = ("txt2img", "img2img", "inpaint")
PROMPT_MAX_CHARS = 2000

# Fields that decide the pixels. Remix compares exactly these to tell a rerun from an edit.
PIXEL_FIELDS = (
    "model_version_id",
    "mode",
    "prompt",
    "negative_prompt",
    "seed",
    "scheduler",
    "steps",
    "guidance",
    "width",
    "height",
    "precision",
    "init_image_id",
    "mask_id",
    "strength",
)


@dataclass(frozen=True)
class RecipeLimits:
    max_side: int = 1024
    max_steps: int = 150
    max_batch: int = 8


@dataclass(frozen=True)
class Recipe:
    model_version_id: int | None  # None: the record's model version was deleted
    prompt: str
    negative_prompt: str = ""
    seed: int | None = None  # None: pick one at random, then store it
    scheduler: str = "PNDM"
    steps: int = 20
    guidance: float = 7.5
    width: int = 64
    height: int = 64
    precision: str = "fp32"
    mode: str = "txt2img"
    batch_size: int = 1
    # img2img / inpaint: ids of stored source images (content-addressed) and the strength.
    init_image_id: int | None = None
    mask_id: int | None = None
    strength: float | None = None

    def with_seed(self) -> Recipe:
        return (
            self if self.seed is not None else replace(self, seed=secrets.randbelow(SEED_MAX + 1))
        )

    def pixel_key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in PIXEL_FIELDS)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def recipe_errors(recipe: Recipe, limits: RecipeLimits) -> dict[str, list[str]]:
    """Every problem with a recipe, by field name. Empty means acceptable."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if not recipe.prompt.strip():
        add("prompt", "Write a prompt: it is what the image is made from.")
    if len(recipe.prompt) > PROMPT_MAX_CHARS:
        add("prompt", f"Keep the prompt under {PROMPT_MAX_CHARS} characters.")
    if len(recipe.negative_prompt) > PROMPT_MAX_CHARS:
        add("negative_prompt", f"Keep the negative prompt under {PROMPT_MAX_CHARS} characters.")
    if recipe.seed is not None and not 0 <= recipe.seed <= SEED_MAX:
        add("seed", f"Seed must be between 0 and {SEED_MAX} (or blank for a random one).")
    if recipe.scheduler not in SCHEDULERS:
        add(
            "scheduler",
            f"Unknown scheduler {recipe.scheduler!r}; choose one of {', '.join(SCHEDULERS)}.",
        )
    if not 1 <= recipe.steps <= limits.max_steps:
        add("steps", f"Steps must be between 1 and {limits.max_steps}.")
    if not 0.0 <= recipe.guidance <= 30.0:
        add("guidance", "Guidance (CFG scale) must be between 0 and 30.")
    for name in ("width", "height"):
        side = getattr(recipe, name)
        if side % SIDE_MULTIPLE:
            add(name, f"{name.capitalize()} must be a multiple of {SIDE_MULTIPLE} (got {side}).")
        if not SIDE_MIN <= side <= limits.max_side:
            add(
                name,
                f"{name.capitalize()} must be between {SIDE_MIN} and {limits.max_side} pixels.",
            )
    if recipe.precision not in PRECISIONS:
        add("precision", f"Precision must be one of {', '.join(PRECISIONS)}.")
    if recipe.mode not in MODES:
        add("mode", f"Mode must be one of {', '.join(MODES)}.")
    if recipe.mode in ("img2img", "inpaint"):
        if recipe.init_image_id is None:
            add("init_image", f"{recipe.mode} needs an init image.")
        if recipe.strength is None or not 0.0 < recipe.strength <= 1.0:
            add("strength", "Strength must be above 0 and at most 1 (1 ignores the init image).")
    if recipe.mode == "inpaint" and recipe.mask_id is None:
        add("mask", "Inpainting needs a mask (white = repaint, black = keep).")
    if recipe.mode == "txt2img" and (recipe.init_image_id or recipe.mask_id):
        add("mode", "Choose img2img or inpaint to use an init image or mask.")
    if not 1 <= recipe.batch_size <= limits.max_batch:
        add("batch_size", f"Batch size must be between 1 and {limits.max_batch}.")
    if recipe.seed is not None and recipe.seed + recipe.batch_size - 1 > SEED_MAX:
        add("seed", "Seed + batch size runs past the largest seed; pick a smaller seed.")
    return errors
