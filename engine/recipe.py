"""What a recipe is and which recipes are acceptable: the one place its fields are listed.

Everything that needs the recipe's fields derives them from `Recipe` below instead of listing
them again: the HTML form and the JSON API schema (their types, defaults, labels and help), the
record's columns mapping (`generator.models.Image`), PNG text chunks, exports and infotext (the
portable form, `Recipe.portable()`). The rules (`recipe_errors`) are shared by form, API and
service, so none of them can disagree. Django-free.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import secrets
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# Messages for people: English here, translated by the web layer (engine.messages).
from engine.messages import Message as M
from engine.messages import gettext_noop as _
from engine.pricing import recipe_megapixel_steps
from engine.schedulers import DEFAULT_SCHEDULER, SCHEDULERS

SEED_MAX = 2**32 - 1  # A1111 and diffusers users exchange 32-bit seeds
SIDE_MIN = 64
SIDE_MULTIPLE = 8  # the VAE downsamples by 8; other sizes crash or get cropped silently
PRECISIONS = ("fp32", "fp16")
MODES = ("txt2img", "img2img", "inpaint")
MODE_LABELS = {
    "txt2img": _("text to image"),
    "img2img": _("image to image"),
    "inpaint": _("inpainting"),
}
PROMPT_MAX_CHARS = 2000
GUIDANCE_MAX = 30.0
# A1111's "Clip skip": 1 uses the text encoder's last layer (no skip), n the n-th from the end.
CLIP_SKIP_MAX = 12
LORAS_MAX = 8
LORA_WEIGHT_LIMIT = 4.0  # |weight|: A1111 lets people type anything; past 4 is never useful
HIRES_SCALE_MAX = 4.0
# The hires-fix upscalers that need no model of their own: "Latent" interpolates the latents
# (bilinear, as A1111's "Latent"), "Latent (nearest)" likewise, "Lanczos" resizes the decoded
# picture with PIL. A1111's model upscalers (ESRGAN, …) are not resources Seedbank holds.
HIRES_UPSCALERS = ("Latent", "Latent (nearest)", "Lanczos")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Prompt weighting: "" is diffusers' plain prompt (no syntax, cut at 77 tokens); the other
# value names engine.prompt_weighting's parser and version (A1111's `(word:1.3)`, `[word]`,
# BREAK, prompts past 75 tokens), tests/engine/test_prompt_weighting.py keeps them equal.
A1111_WEIGHTING = "seedbank-a1111-emphasis@1"
WEIGHTINGS = {
    "": _("plain (diffusers)"),
    A1111_WEIGHTING: _("A1111 emphasis: (word:1.3), [word], BREAK"),
}
# Model families, by the pipeline class a diffusers folder names in model_index.json: the
# fields marked with a family are read by that family's models only. SD 1.x and 2.x share
# StableDiffusionPipeline; an SDXL refiner (StableDiffusionXLImg2ImgPipeline: one text encoder,
# an aesthetic score instead of the target size) only continues another model's render.
SD = "sd"
SDXL = "sdxl"
SDXL_REFINER = "sdxl-refiner"
PIPELINE_FAMILIES = {
    "StableDiffusionPipeline": SD,
    "StableDiffusionXLPipeline": SDXL,
    "StableDiffusionXLImg2ImgPipeline": SDXL_REFINER,
}
FAMILY_LABELS = {
    SD: _("Stable Diffusion 1.x/2.x"),
    SDXL: _("Stable Diffusion XL"),
    SDXL_REFINER: _("Stable Diffusion XL refiner"),
}
# SDXL's size and crop conditioning are numbers the model is told about its training picture,
# not the render's size: the SDXL paper conditions on originals up to 4096 pixels and more.
CONDITIONING_SIDE_MAX = 8192
# diffusers' (and A1111's) usual hand-over point, for a form to offer once a refiner is chosen;
# not a field's suggestion, which every form would send with no refiner at all.
REFINER_SWITCH_SUGGESTED = 0.8


@dataclass(frozen=True)
class FieldSpec:
    """How a recipe field is shown, named and compared outside the engine."""

    label: str
    help: str = ""
    # Decides the pixels: remix compares exactly these to tell a rerun from an edit.
    pixels: bool = True
    # The name forms and the JSON API use when it is not the attribute name.
    input_name: str = ""
    # A database id (model version, stored init image or mask): meaningless in another archive,
    # so portable forms (exports, PNG chunks, copied recipes) name the thing by digest instead.
    local_ref: bool = False
    # Set by the interface (use as init image, the mask painter), not typed by people.
    hidden: bool = False
    multiline: bool = False
    # What a form offers before anyone types, when it differs from the default.
    suggested: Any = None
    # Worked out by the archive from other fields (embeddings from the prompt's words): part of
    # the recipe, never an input of forms or the API.
    derived: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    # The model family that reads it (SDXL for prompt_2, size and crop conditioning, refiner);
    # "" for every family. Models of other families refuse a value other than the default
    # (`family_errors`), so a field can never be silently ignored.
    family: str = ""


def _spec(**options: Any) -> dict[str, FieldSpec]:
    return {"spec": FieldSpec(**options)}


# Resources (LoRA, textual-inversion embeddings, VAE files) are named in a recipe by the sha256
# of their file: the same bytes in any archive. The name rides along for people; two uses are
# equal when the file and the numbers are, whatever the name (it does not move pixels).
@dataclass(frozen=True, kw_only=True)
class LoraUse:
    resource: str  # sha256 of the LoRA file
    weight: float
    name: str = field(default="", compare=False)


@dataclass(frozen=True, kw_only=True)
class ResourceUse:
    resource: str  # sha256 of the file
    name: str = field(default="", compare=False)


@dataclass(frozen=True, kw_only=True)
class EmbeddingUse:
    """A textual-inversion embedding a prompt names by its token (A1111: the file's name)."""

    token: str
    resource: str  # sha256 of the embedding file
    name: str = field(default="", compare=False)


@dataclass(frozen=True, kw_only=True)
class Hires:
    """A1111's hires fix: render, upscale by `scale`, then denoise again at the larger size."""

    scale: float
    upscaler: str = "Latent"
    # Denoising steps the second pass runs (A1111's "Hires steps"); 0 = as many as the first.
    steps: int = 0
    denoise: float = 0.5  # A1111's "Denoising strength" of the second pass

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The final size: each side scaled and rounded down to the VAE's 8-pixel cells."""
        return (
            int(width * self.scale) // SIDE_MULTIPLE * SIDE_MULTIPLE,
            int(height * self.scale) // SIDE_MULTIPLE * SIDE_MULTIPLE,
        )


def _from_json(kind: type, value: Any) -> Any:
    """A nested recipe value from its JSON form (a database row, a PNG chunk, an export)."""
    if value is None or isinstance(value, kind):
        return value
    if not isinstance(value, typing.Mapping):
        raise TypeError(f"{kind.__name__} must be an object, got {value!r}")
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise TypeError(f"{kind.__name__} has no field(s) {', '.join(unknown)}")
    return kind(**value)


@dataclass(frozen=True, kw_only=True)
class Recipe:
    model_version_id: int | None = field(
        # None: no registered model (an engine-only render, or a record whose model was deleted).
        default=None,
        metadata=_spec(label=_("Model"), input_name="model_version", local_ref=True),
    )
    prompt: str = field(metadata=_spec(label=_("Prompt"), multiline=True))
    negative_prompt: str = field(
        default="", metadata=_spec(label=_("Negative prompt"), multiline=True)
    )
    seed: int | None = field(
        default=None,  # None: pick one at random, then store it
        metadata=_spec(
            label=_("Seed"),
            help=M(_("0 to %(most)s; blank picks a random seed (then stored)."), most=SEED_MAX),
        ),
    )
    scheduler: str = field(
        default=DEFAULT_SCHEDULER,
        metadata=_spec(label=_("Scheduler"), choices=tuple((name, name) for name in SCHEDULERS)),
    )
    steps: int = field(default=20, metadata=_spec(label=_("Steps")))
    guidance: float = field(default=7.5, metadata=_spec(label=_("Guidance (CFG scale)")))
    width: int = field(default=64, metadata=_spec(label=_("Width")))
    height: int = field(default=64, metadata=_spec(label=_("Height")))
    # Which precisions are offered is per deployment (fp16 needs CUDA workers).
    precision: str = field(
        default="fp32",
        metadata=_spec(label=_("Precision"), choices=tuple((p, p) for p in PRECISIONS)),
    )
    batch_size: int = field(
        default=1,
        # Each image of a batch is its own record (seed, seed+1, …) that records its batch size
        # and position; remix compares one record's recipe, so this is not a pixel field here.
        metadata=_spec(label=_("Batch size"), pixels=False),
    )
    mode: str = field(
        default="txt2img",
        metadata=_spec(label=_("Mode"), choices=tuple(MODE_LABELS.items())),
    )
    strength: float | None = field(
        default=None,
        metadata=_spec(
            label=_("Strength"),
            help=_("img2img/inpainting: 0 keeps the init image, 1 ignores it."),
            suggested=0.75,
        ),
    )
    # img2img / inpaint inputs: ids of stored source images (content-addressed).
    init_image_id: int | None = field(
        default=None, metadata=_spec(label=_("Init image"), local_ref=True, hidden=True)
    )
    mask_id: int | None = field(
        default=None, metadata=_spec(label=_("Mask"), local_ref=True, hidden=True)
    )
    # Resources beside the checkpoint, applied in this order (adapters sum in list order).
    loras: tuple[LoraUse, ...] = field(
        default=(),
        metadata=_spec(
            label=_("LoRAs"),
            help=_("One per line: name (or sha256) and weight, e.g. scenes-outline-lora:0.8."),
        ),
    )
    # Found in the prompts by their tokens when the recipe is submitted, then pinned by digest.
    embeddings: tuple[EmbeddingUse, ...] = field(
        default=(),
        metadata=_spec(
            label=_("Embeddings"),
            help=_("Textual-inversion embeddings the prompts name by their tokens."),
            derived=True,
        ),
    )
    vae: ResourceUse | None = field(
        default=None,  # None: the model's own VAE
        metadata=_spec(label=_("VAE"), help=_("A VAE file to decode with instead of the model's.")),
    )
    prompt_weighting: str = field(
        default="",
        metadata=_spec(
            label=_("Prompt weighting"),
            help=_("How the prompt is read: as plain words, or with A1111's emphasis syntax."),
            choices=tuple(WEIGHTINGS.items()),
        ),
    )
    clip_skip: int = field(
        default=1,
        metadata=_spec(
            label=_("Clip skip"),
            help=_("As in A1111: 1 uses the text encoder's last layer, 2 the one before it."),
        ),
    )
    hires: Hires | None = field(
        default=None,
        metadata=_spec(
            label=_("Hires fix"),
            help=_("A second pass at a larger size (text to image only)."),
        ),
    )
    # --- SDXL only (family=SDXL): the defaults are what diffusers does when they are not said.
    # SDXL reads the prompt with two text encoders (CLIP ViT-L, OpenCLIP bigG); "" gives the
    # second one the same text, as diffusers' `prompt_2=None` does.
    prompt_2: str = field(
        default="",
        metadata=_spec(
            label=_("Prompt for the second text encoder"),
            help=_("SDXL only: what its second text encoder (OpenCLIP bigG) reads; "
                   "blank: the prompt."),
            multiline=True,
            family=SDXL,
        ),
    )  # fmt: skip
    negative_prompt_2: str = field(
        default="",
        metadata=_spec(
            label=_("Negative prompt for the second text encoder"),
            help=_("SDXL only: blank: the negative prompt."),
            multiline=True,
            family=SDXL,
        ),
    )
    # SDXL's micro-conditioning, diffusers' original_size, crops_coords_top_left and
    # target_size (applied to the negative side too, as diffusers does by default). Plain ints,
    # not pairs, so every form, API schema, column and infotext handles them as it handles
    # width and height; 0 for a size means "the size being rendered", diffusers' default
    # (each pass's own size in a hires fix), so a recipe that says nothing stays diffusers'.
    original_width: int = field(
        default=0,
        metadata=_spec(
            label=_("Original width"),
            help=_("SDXL only: the width the model is told its training picture had; "
                   "0: the render width."),
            family=SDXL,
        ),
    )  # fmt: skip
    original_height: int = field(
        default=0,
        metadata=_spec(
            label=_("Original height"),
            help=_("SDXL only: 0: the render height."),
            family=SDXL,
        ),
    )
    crop_top: int = field(
        default=0,
        metadata=_spec(
            label=_("Crop top"),
            help=_("SDXL only: where the model is told its picture was cropped (0: uncropped)."),
            family=SDXL,
        ),
    )
    crop_left: int = field(
        default=0,
        metadata=_spec(label=_("Crop left"), help=_("SDXL only: 0: uncropped."), family=SDXL),
    )
    target_width: int = field(
        default=0,
        metadata=_spec(
            label=_("Target width"),
            help=_("SDXL only: the size the model aims for; 0: the render width."),
            family=SDXL,
        ),
    )
    target_height: int = field(
        default=0,
        metadata=_spec(
            label=_("Target height"),
            help=_("SDXL only: 0: the render height."),
            family=SDXL,
        ),
    )
    # A refiner is a second model (an SDXL refiner, or any SDXL model) that takes over the
    # denoising at `refiner_switch_at` (diffusers' denoising_end / denoising_start). It is named
    # by the weights digest of its folder, like resources by their file's sha256: a database id
    # would mean nothing in another archive, and the digest makes the recipe portable as it is.
    refiner: str = field(
        default="",
        metadata=_spec(
            label=_("Refiner"),
            help=_("SDXL only: a second model that finishes the picture; blank: none."),
            family=SDXL,
        ),
    )
    refiner_switch_at: float | None = field(
        default=None,  # None without a refiner
        metadata=_spec(
            label=_("Refiner switch at"),
            help=_(
                "The share of the denoising the first model does (above 0, below 1; "
                "0.8 is usual); blank without a refiner."
            ),
            family=SDXL,
        ),
    )

    def with_seed(self) -> Recipe:
        return (
            self if self.seed is not None else replace(self, seed=secrets.randbelow(SEED_MAX + 1))
        )

    def pixel_key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in PIXEL_FIELDS)

    def as_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-ready values (nested ones as dicts and lists)."""
        values = dataclasses.asdict(self)
        values["loras"] = list(values["loras"])
        values["embeddings"] = list(values["embeddings"])
        return values

    def portable(self) -> dict[str, Any]:
        """The fields that mean the same in any archive (no database ids), as JSON values."""
        values = self.as_dict()
        return {f.name: values[f.name] for f in recipe_fields() if not spec(f).local_ref}

    def original_size(self) -> tuple[int, int] | None:
        """diffusers' `original_size` (height, width), or None for "the size rendered"."""
        return (self.original_height, self.original_width) if self.original_width else None

    def target_size(self) -> tuple[int, int] | None:
        """diffusers' `target_size` (height, width), or None for "the size rendered"."""
        return (self.target_height, self.target_width) if self.target_width else None

    def crops_coords_top_left(self) -> tuple[int, int]:
        return (self.crop_top, self.crop_left)

    def resources(self) -> tuple[str, ...]:
        """The sha256 of every resource file the recipe uses, in use order, once each."""
        used = [lora.resource for lora in self.loras]
        used += [embedding.resource for embedding in self.embeddings]
        if self.vae is not None:
            used.append(self.vae.resource)
        return tuple(dict.fromkeys(used))

    @classmethod
    def from_values(cls, values: typing.Mapping[str, Any]) -> Recipe:
        """A recipe from any mapping or row holding its fields by attribute name; nested values
        (LoRAs, VAE, hires) may be in their JSON form."""
        found = {f.name: values[f.name] for f in recipe_fields() if f.name in values}
        if "loras" in found:
            found["loras"] = tuple(_from_json(LoraUse, lora) for lora in found["loras"] or ())
        if "embeddings" in found:
            found["embeddings"] = tuple(
                _from_json(EmbeddingUse, use) for use in found["embeddings"] or ()
            )
        if "vae" in found:
            found["vae"] = _from_json(ResourceUse, found["vae"])
        if "hires" in found:
            found["hires"] = _from_json(Hires, found["hires"])
        return cls(**found)


def recipe_fields() -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(Recipe)


def input_fields() -> tuple[dataclasses.Field[Any], ...]:
    """The fields people give (forms, the API): all but the derived ones."""
    return tuple(f for f in recipe_fields() if not spec(f).derived)


def spec(recipe_field: dataclasses.Field[Any]) -> FieldSpec:
    return typing.cast(FieldSpec, recipe_field.metadata["spec"])


def input_name(recipe_field: dataclasses.Field[Any]) -> str:
    return spec(recipe_field).input_name or recipe_field.name


def field_type(recipe_field: dataclasses.Field[Any]) -> tuple[type, bool]:
    """(int | float | str | tuple | a nested dataclass, whether None is allowed) of a field,
    from its annotation. `tuple` stands for an ordered list of LoraUse."""
    hint = typing.get_type_hints(Recipe)[recipe_field.name]
    if typing.get_origin(hint) is tuple:
        return tuple, False
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return (args[0] if args else hint), bool(args)


def has_default(recipe_field: dataclasses.Field[Any]) -> bool:
    return recipe_field.default is not dataclasses.MISSING


def family_fields(family: str) -> tuple[str, ...]:
    """The names of the fields only models of `family` read."""
    return tuple(f.name for f in recipe_fields() if spec(f).family == family)


def sdxl_fields_set(recipe: Recipe) -> list[str]:
    """The SDXL-only fields this recipe sets to something other than their default."""
    defaults = {f.name: f.default for f in recipe_fields() if spec(f).family == SDXL}
    return [name for name, default in defaults.items() if getattr(recipe, name) != default]


def model_family(model_path: str | os.PathLike[str]) -> str:
    """The family of a diffusers folder, from the pipeline class its model_index.json names.

    Read where the folder is (a worker, model registration): web processes may not have the
    files, so the archive keeps the answer with the model. Raises ValueError for a folder
    whose pipeline Seedbank does not render.
    """
    index = Path(model_path) / "model_index.json"
    try:
        class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
    except (OSError, ValueError, AttributeError) as error:
        raise ValueError(f"{index} cannot be read as a diffusers model index: {error}") from None
    return pipeline_family(str(class_name))


def pipeline_family(class_name: str) -> str:
    try:
        return PIPELINE_FAMILIES[class_name]
    except KeyError:
        raise ValueError(
            f"{class_name} models are not rendered here; Seedbank renders "
            f"{', '.join(PIPELINE_FAMILIES)}."
        ) from None


def family_errors(
    recipe: Recipe, family: str, refiner_family: str | None = None
) -> dict[str, list[str]]:
    """What a recipe asks of its model that a model of `family` cannot do, by field name.

    The recipe type alone does not know its model's family; the archive does (it reads it with
    `model_family` where the files are) and adds these to `recipe_errors`. `refiner_family` is
    the family of the model the recipe's `refiner` digest names, when it names one.
    """
    errors: dict[str, list[str]] = {}
    if family == SDXL_REFINER:
        errors["model_version"] = [
            M(_("An SDXL refiner only finishes another model's picture: choose an SDXL model "
                "and this one as its refiner."))
        ]  # fmt: skip
    elif family != SDXL:
        label = FAMILY_LABELS.get(family, family)
        for name in sdxl_fields_set(recipe):
            field_label = spec(next(f for f in recipe_fields() if f.name == name)).label
            errors.setdefault(name, []).append(
                M(_("%(field)s is for SDXL models; this model is %(family)s."),
                  field=field_label, family=label)
            )  # fmt: skip
    if recipe.refiner and refiner_family is not None and refiner_family not in (SDXL, SDXL_REFINER):
        errors.setdefault("refiner", []).append(
            M(_("A refiner must be an SDXL model or an SDXL refiner; this one is %(family)s."),
              family=FAMILY_LABELS.get(refiner_family, refiner_family))
        )  # fmt: skip
    return errors


PIXEL_FIELDS = tuple(f.name for f in recipe_fields() if spec(f).pixels)
LOCAL_REF_FIELDS = tuple(f.name for f in recipe_fields() if spec(f).local_ref)


@dataclass(frozen=True)
class RecipeLimits:
    max_side: int = 1024
    max_steps: int = 150
    max_batch: int = 8
    # Sides, steps and batch each within their limits still multiply: 1024², 150 steps, a
    # batch of 8 holds one GPU for hours. The product is capped too (engine.pricing).
    max_job_megapixel_steps: float = math.inf


# What the job as a whole breaks (its cost), not one field: Django's NON_FIELD_ERRORS.
WHOLE_RECIPE = "__all__"
_COST_FIELDS = frozenset({"width", "height", "steps", "batch_size", "hires"})


def recipe_errors(recipe: Recipe, limits: RecipeLimits) -> dict[str, list[str]]:
    """Every problem with a recipe, by field name (each a Message: English, translatable by
    the web layer). Empty means acceptable."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if not recipe.prompt.strip():
        add("prompt", M(_("Write a prompt: it is what the image is made from.")))
    if len(recipe.prompt) > PROMPT_MAX_CHARS:
        add("prompt", M(_("Keep the prompt under %(most)s characters."), most=PROMPT_MAX_CHARS))
    if len(recipe.negative_prompt) > PROMPT_MAX_CHARS:
        add(
            "negative_prompt",
            M(_("Keep the negative prompt under %(most)s characters."), most=PROMPT_MAX_CHARS),
        )
    if recipe.seed is not None and not 0 <= recipe.seed <= SEED_MAX:
        add(
            "seed",
            M(_("Seed must be between 0 and %(most)s (or blank for a random one)."), most=SEED_MAX),
        )
    if recipe.scheduler not in SCHEDULERS:
        add(
            "scheduler",
            M(
                _("Unknown scheduler %(name)r; choose one of %(known)s."),
                name=recipe.scheduler,
                known=", ".join(SCHEDULERS),
            ),
        )
    if not 1 <= recipe.steps <= limits.max_steps:
        add("steps", M(_("Steps must be between 1 and %(most)s."), most=limits.max_steps))
    if not 0.0 <= recipe.guidance <= GUIDANCE_MAX:
        add(
            "guidance",
            M(_("Guidance (CFG scale) must be between 0 and %(most)g."), most=GUIDANCE_MAX),
        )
    for name in ("width", "height"):
        side = getattr(recipe, name)
        if side % SIDE_MULTIPLE:
            template = (
                _("Width must be a multiple of %(step)s (got %(side)s).")
                if name == "width"
                else _("Height must be a multiple of %(step)s (got %(side)s).")
            )
            add(name, M(template, step=SIDE_MULTIPLE, side=side))
        if not SIDE_MIN <= side <= limits.max_side:
            add(
                name,
                M(
                    _("Width must be between %(least)s and %(most)s pixels.")
                    if name == "width"
                    else _("Height must be between %(least)s and %(most)s pixels."),
                    least=SIDE_MIN,
                    most=limits.max_side,
                ),
            )
    if recipe.precision not in PRECISIONS:
        add("precision", M(_("Precision must be one of %(known)s."), known=", ".join(PRECISIONS)))
    if recipe.mode not in MODES:
        add(
            "mode",
            M(_("Unknown mode %(name)r; choose one of %(known)s."), name=recipe.mode,
              known=", ".join(MODES)),
        )  # fmt: skip
    if recipe.mode in ("img2img", "inpaint"):
        if recipe.init_image_id is None:
            add("init_image", M(_("%(mode)s needs an init image."), mode=recipe.mode))
        if recipe.strength is None or not 0.0 < recipe.strength <= 1.0:
            add(
                "strength",
                M(_("Strength must be above 0 and at most 1 (1 ignores the init image).")),
            )
    if recipe.mode == "inpaint" and recipe.mask_id is None:
        add("mask", M(_("Inpainting needs a mask (white = repaint, black = keep).")))
    if recipe.mode == "txt2img" and (recipe.init_image_id or recipe.mask_id):
        add("mode", M(_("Choose img2img or inpaint to use an init image or mask.")))
    if not 1 <= recipe.batch_size <= limits.max_batch:
        add("batch_size", M(_("Batch size must be between 1 and %(most)s."), most=limits.max_batch))
    if recipe.seed is not None and recipe.seed + recipe.batch_size - 1 > SEED_MAX:
        add("seed", M(_("Seed + batch size runs past the largest seed; pick a smaller seed.")))
    _resource_errors(recipe, limits, add)
    if not errors.keys() & _COST_FIELDS:  # a field out of range says so itself
        cost = recipe_megapixel_steps(recipe)
        if cost > limits.max_job_megapixel_steps:
            add(
                WHOLE_RECIPE,
                M(
                    _("This job is too big: %(cost)s megapixel-steps (width × height in "
                      "megapixels × steps × images, hires pass included), and one job may take "
                      "at most %(most)s. Lower the size, the steps or the batch size."),
                    cost=f"{cost:.1f}",
                    most=f"{limits.max_job_megapixel_steps:g}",
                ),
            )  # fmt: skip
    return errors


def _resource_errors(recipe: Recipe, limits: RecipeLimits, add: Any) -> None:
    """LoRAs, VAE, clip skip and hires fix: the numbers here; whether each file is registered
    (and unchanged) is the archive's check."""
    if len(recipe.loras) > LORAS_MAX:
        add("loras", M(_("Use at most %(most)s LoRAs."), most=LORAS_MAX))
    seen: set[str] = set()
    for lora in recipe.loras:
        if not _SHA256.fullmatch(lora.resource):
            add("loras", M(_("LoRA %(name)r is not a sha256 digest."), name=lora.resource))
        if not (math.isfinite(lora.weight) and abs(lora.weight) <= LORA_WEIGHT_LIMIT):
            add(
                "loras",
                M(_("LoRA weights must be from -%(most)g to %(most)g."), most=LORA_WEIGHT_LIMIT),
            )
        if lora.resource in seen:
            add("loras", M(_("LoRA %(name)s is listed twice."), name=lora.name or lora.resource))
        seen.add(lora.resource)
    for embedding in recipe.embeddings:
        if not _SHA256.fullmatch(embedding.resource) or not embedding.token.strip():
            add("embeddings", M(_("Embedding %(name)r is not pinned by a sha256 digest."),
                                name=embedding.token))  # fmt: skip
    if recipe.vae is not None and not _SHA256.fullmatch(recipe.vae.resource):
        add("vae", M(_("VAE %(name)r is not a sha256 digest."), name=recipe.vae.resource))
    if recipe.prompt_weighting not in WEIGHTINGS:
        add(
            "prompt_weighting",
            M(
                _("Unknown prompt weighting %(name)r; choose one of %(known)s."),
                name=recipe.prompt_weighting,
                known=", ".join(repr(name) for name in WEIGHTINGS),
            ),
        )
    if not 1 <= recipe.clip_skip <= CLIP_SKIP_MAX:
        add("clip_skip", M(_("Clip skip must be between 1 and %(most)s."), most=CLIP_SKIP_MAX))
    _sdxl_errors(recipe, add)
    hires = recipe.hires
    if hires is None:
        return
    if recipe.mode != "txt2img":
        add("hires", M(_("Hires fix is for text to image only.")))
    if not (math.isfinite(hires.scale) and 1.0 < hires.scale <= HIRES_SCALE_MAX):
        add(
            "hires", M(_("Hires scale must be above 1 and at most %(most)g."), most=HIRES_SCALE_MAX)
        )
    elif max(hires.size(recipe.width, recipe.height)) > limits.max_side:
        add(
            "hires",
            M(_("The hires size must stay within %(most)s pixels a side."), most=limits.max_side),
        )
    if hires.upscaler not in HIRES_UPSCALERS:
        add(
            "hires",
            M(
                _("Unknown hires upscaler %(name)r; choose one of %(known)s."),
                name=hires.upscaler,
                known=", ".join(HIRES_UPSCALERS),
            ),
        )
    if not 0 <= hires.steps <= limits.max_steps:
        add("hires", M(_("Hires steps must be between 0 and %(most)s."), most=limits.max_steps))
    if not (math.isfinite(hires.denoise) and 0.0 < hires.denoise <= 1.0):
        add("hires", M(_("Hires denoising strength must be above 0 and at most 1.")))


def _sdxl_errors(recipe: Recipe, add: Any) -> None:
    """The SDXL fields' own rules; whether the model reads them at all is `family_errors`."""
    for name in ("prompt_2", "negative_prompt_2"):
        if len(getattr(recipe, name)) > PROMPT_MAX_CHARS:
            add(name, M(_("Keep each prompt under %(most)s characters."), most=PROMPT_MAX_CHARS))
    if recipe.prompt_weighting and (recipe.prompt_2 or recipe.negative_prompt_2):
        # A1111 has one prompt for both encoders; two texts could also split into different
        # numbers of 75-token chunks, which SDXL cannot put side by side.
        add(
            "prompt_2",
            M(_("A1111 emphasis reads one prompt for both text encoders: leave the second "
                "prompts blank or choose plain weighting.")),
        )  # fmt: skip
    for width_name, height_name in (
        ("original_width", "original_height"),
        ("target_width", "target_height"),
    ):
        width, height = getattr(recipe, width_name), getattr(recipe, height_name)
        if not (0 <= width <= CONDITIONING_SIDE_MAX and 0 <= height <= CONDITIONING_SIDE_MAX):
            add(width_name, M(_("Conditioning sizes must be between 1 and %(most)s pixels "
                                "(0: the render size)."), most=CONDITIONING_SIDE_MAX))  # fmt: skip
        elif (width == 0) != (height == 0):
            add(width_name, M(_("Give both the width and the height, or neither (0).")))
    for name in ("crop_top", "crop_left"):
        if not 0 <= getattr(recipe, name) <= CONDITIONING_SIDE_MAX:
            add(name, M(_("Crop coordinates must be between 0 and %(most)s."),
                        most=CONDITIONING_SIDE_MAX))  # fmt: skip
    switch_at = recipe.refiner_switch_at
    if not recipe.refiner:
        if switch_at is not None:
            add("refiner_switch_at", M(_("Choose a refiner, or leave the switch point blank.")))
        return
    if not _SHA256.fullmatch(recipe.refiner):
        add("refiner", M(_("Refiner %(name)r is not a model's weights digest."),
                         name=recipe.refiner))  # fmt: skip
    if switch_at is None or not (math.isfinite(switch_at) and 0.0 < switch_at < 1.0):
        add("refiner_switch_at", M(_("The refiner's switch point must be above 0 and below 1.")))
    if recipe.mode != "txt2img":
        add("refiner", M(_("A refiner is for text to image only.")))
    if recipe.hires is not None:
        add("refiner", M(_("Choose a refiner or a hires fix, not both.")))
