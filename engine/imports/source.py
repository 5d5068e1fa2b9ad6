"""A recipe as another tool recorded it, before the archive accepts it."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.recipe import (
    HIRES_UPSCALERS,
    PRECISIONS,
    SEED_MAX,
    WEIGHTINGS,
    EmbeddingUse,
    Hires,
    LoraUse,
    Recipe,
    ResourceUse,
    field_type,
    recipe_fields,
    spec,
)

# ASCII digits only: int() also reads "١٢", "1_000" and " 7 " (as engine.infotext does).
_WHOLE = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class RowRejected(ValueError):
    """One image or row that cannot become a recipe; the message says why, in words."""


@dataclass(frozen=True)
class SourceResource:
    """A resource file (LoRA, VAE, embedding…) as a source names it, in the tool's own words:
    a hash (A1111's 12-hex addnet hash of a LoRA, an AutoV2, a sha256…), an AIR, a Civitai
    model version, a name. The archive finds the registered file, by hash first."""

    kind: str  # "lora", "vae", "embedding", "hypernet", "upscaler", or another tool's word
    name: str = ""
    hash: str = ""
    air: str = ""  # urn:air:{ecosystem}:{type}:{source}:{id}[@{version}]
    civitai_version: str = ""  # Civitai's modelVersionId
    weight: float = 1.0  # LoRAs: the one weight Seedbank applies to UNet and text encoder

    def describe(self) -> str:
        """ "lora add_detail 7c6bad76eb54": what an import report says the row needs."""
        ref = (
            self.hash
            or self.air
            or (f"civitai version {self.civitai_version}" if self.civitai_version else "")
        )
        return " ".join(part for part in (self.kind, self.name, ref) if part)


@dataclass(frozen=True)
class SourceRecipe:
    """What one source (an image file, a table row) says about how its picture was made.

    `source_key` names the source stably (the same file or row gives the same key on every
    import, so a re-import adds nothing); `content_digest` changes when what it says changes.
    Fields a source does not give are None. `sampler` is the tool's own word, `scheduler`
    its catalogue counterpart or None (engine.imports.samplers). `raw` is the metadata
    verbatim, kept with the record.
    """

    tool: str
    source_key: str
    location: str  # for people: "photos/cat.png", "prompts.csv line 12"
    prompt: str
    negative_prompt: str = ""
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    sampler: str = ""
    scheduler: str | None = None
    model_name: str = ""
    model_hash: str = ""
    # Seedbank's own exports say these (a batch position moves pixels); other tools render
    # one image alone at full precision as far as a recipe can tell.
    precision: str = "fp32"
    batch_size: int = 1
    batch_index: int = 0
    # Resources beside the checkpoint, in the order the tool applied them.
    loras: tuple[SourceResource, ...] = ()
    vae: SourceResource | None = None
    # Textual-inversion embeddings the source says it used, each named by the token its prompt
    # uses (A1111: the embedding's name): found by hash like LoRAs, never rendered without.
    embeddings: tuple[SourceResource, ...] = ()
    # Resources Seedbank cannot apply at all (hypernetworks, an extension's extra networks).
    other_resources: tuple[SourceResource, ...] = ()
    clip_skip: int = 1
    hires: Hires | None = None  # its upscaler as the tool named it
    # Seedbank's own sources say how the prompt was read (engine.recipe.WEIGHTINGS); other
    # tools' prompts are kept as written, read as plain text.
    prompt_weighting: str = ""
    # Seedbank's own sources: the recipe's other plain fields (SDXL's second prompts and
    # conditioning sizes…), which mean the same in any archive, passed on as written.
    other_fields: dict[str, Any] = field(default_factory=dict)
    # What moved the source's pixels that a Seedbank recipe cannot hold (an img2img strength,
    # a variation seed, an unknown param…), one reason each: the row is kept as incomplete.
    unsupported: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)
    image: bytes | None = None  # the picture itself as PNG, when the source has one
    # The picture file as it came: the record's own manifest names it as its parent ingredient
    # (Seedbank opened it; another tool made it), its own manifest, if any, inside ours.
    original: bytes | None = None
    original_media_type: str = ""
    pixel_sha256: str = ""  # engine.png_files.pixel_sha256 of the picture
    warnings: tuple[str, ...] = ()

    @functools.cached_property
    def content_digest(self) -> str:
        return content_digest(self.raw)

    def missing(self) -> list[str]:
        """What Seedbank's recipe needs that this source does not say."""
        absent = [name for name in ("seed", "steps", "guidance", "width", "height")
                  if getattr(self, name) is None]  # fmt: skip
        if self.scheduler is None:
            absent.append(
                f"a catalogue scheduler (the source says {self.sampler!r})"
                if self.sampler
                else "a scheduler"
            )
        return absent

    def files(self) -> tuple[SourceResource, ...]:
        """The resources a recipe names by file (LoRAs, embeddings, VAE): each must be found
        registered."""
        return (*self.loras, *self.embeddings, *((self.vae,) if self.vae is not None else ()))

    def unavailable(self) -> tuple[SourceResource, ...]:
        """Resources the source used that no registered file can stand for in a recipe."""
        found = list(self.other_resources)
        if self.hires is not None and self.hires.upscaler not in HIRES_UPSCALERS:
            found.append(SourceResource(kind="upscaler", name=self.hires.upscaler))
        return tuple(found)

    def recipe(
        self, model_version_id: int | None, files: Mapping[SourceResource, str] | None = None
    ) -> Recipe:
        """Seedbank's recipe for a source that misses nothing (`missing()` and `unsupported`
        are empty, nothing is `unavailable()`); `files` gives the sha256 of the registered
        file each of `files()` names."""
        if self.missing():
            raise RowRejected(f"the source does not give {', '.join(self.missing())}")
        if self.unsupported or self.unavailable():
            raise RowRejected("the source used what a Seedbank recipe cannot hold")
        found = files or {}
        absent = [resource.describe() for resource in self.files() if resource not in found]
        if absent:
            raise RowRejected(f"no registered file for {', '.join(absent)}")
        assert self.scheduler is not None and self.guidance is not None
        return Recipe(
            **self.other_fields,
            model_version_id=model_version_id,
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            seed=self.seed,
            scheduler=self.scheduler,
            steps=self.steps or 0,
            guidance=self.guidance,
            width=self.width or 0,
            height=self.height or 0,
            precision=self.precision,
            batch_size=self.batch_size,
            loras=tuple(
                LoraUse(resource=found[lora], weight=lora.weight, name=lora.name)
                for lora in self.loras
            ),
            vae=(
                None
                if self.vae is None
                else ResourceUse(resource=found[self.vae], name=self.vae.name)
            ),
            embeddings=tuple(
                EmbeddingUse(token=use.name, resource=found[use], name=use.name)
                for use in self.embeddings
            ),
            clip_skip=self.clip_skip,
            hires=self.hires,
            prompt_weighting=self.prompt_weighting,
        )


def content_digest(raw: dict[str, Any]) -> str:
    text = json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str)
    # A lone surrogate (JSON's \ud800) is digested too: the archive then rejects the row by
    # name, where a failure here would stop the whole import.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def whole_number(name: str, value: Any, *, low: int = 0, high: int | None = None) -> int | None:
    """An int from a source's value (int, or ASCII digits), None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RowRejected(f"{name} must be a whole number, not {value!r}.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int):
        raise RowRejected(f"{name} must be a whole number, not {value!r}.")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise RowRejected(f"{name} must be {bounds} (got {value}).")
    return value


def seed_value(value: Any) -> int | None:
    return whole_number("Seed", value, high=SEED_MAX)


def decimal(name: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RowRejected(f"{name} must be a number, not {value!r}.")
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        value = float(value.strip())
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise RowRejected(f"{name} must be a number, not {value!r}.")
    return float(value)


def text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowRejected(f"{name} must be text, not {type(value).__name__}.")
    if "\x00" in value:
        raise RowRejected(f"{name} holds a NUL character.")
    return value


def batch_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """precision, batch_size and batch_index as Seedbank's chunk and exports write them."""
    size = whole_number("Batch size", values.get("batch_size"), low=1) or 1
    index = whole_number("Batch index", values.get("batch_index"), high=size - 1) or 0
    precision = text("Precision", values.get("precision")) or "fp32"
    if precision not in PRECISIONS:
        raise RowRejected(f"Precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    return {"precision": precision, "batch_size": size, "batch_index": index}


def json_value(name: str, value: Any) -> Any:
    """A nested value as given, or decoded from the JSON text a CSV cell holds."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            raise RowRejected(f"{name} is not valid JSON.") from None
    return value


def _given(name: str, value: float | None) -> float:
    if value is None:
        raise RowRejected(f"{name} is missing.")
    return value


def _object(name: str, value: Any, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RowRejected(f"{name} must be an object, not {value!r}.")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise RowRejected(f"{name} has unknown key(s) {', '.join(map(repr, unknown))}.")
    return value


def seedbank_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """SourceRecipe's loras, embeddings, vae, clip_skip, hires, prompt_weighting and
    unsupported from a recipe in Seedbank's JSON form (Recipe.portable(): the "seedbank"
    chunk, recipes.jsonl), files by sha256."""
    found: dict[str, Any] = {}
    unsupported: list[str] = []
    loras = json_value("loras", values.get("loras"))
    if loras not in (None, ""):
        if not isinstance(loras, list):
            raise RowRejected(f"loras must be a list, not {loras!r}.")
        found["loras"] = tuple(
            SourceResource(
                kind="lora",
                name=text("LoRA name", use.get("name")),
                hash=text("LoRA resource", use.get("resource")),
                weight=_given("LoRA weight", decimal("LoRA weight", use.get("weight"))),
            )
            for use in (_object("a LoRA", item, ("resource", "weight", "name")) for item in loras)
        )
    embeddings = json_value("embeddings", values.get("embeddings"))
    if embeddings not in (None, ""):
        if not isinstance(embeddings, list):
            raise RowRejected(f"embeddings must be a list, not {embeddings!r}.")
        found["embeddings"] = tuple(
            SourceResource(
                kind="embedding",
                # The token is what the prompt says; the name is only for people.
                name=text("Token", use.get("token")) or text("Embedding name", use.get("name")),
                hash=text("Embedding resource", use.get("resource")),
            )
            for use in (
                _object("an embedding", item, ("token", "resource", "name")) for item in embeddings
            )
        )
    vae = json_value("vae", values.get("vae"))
    if vae not in (None, ""):
        vae = _object("vae", vae, ("resource", "name"))
        found["vae"] = SourceResource(
            kind="vae",
            name=text("VAE name", vae.get("name")),
            hash=text("VAE resource", vae.get("resource")),
        )
    found["clip_skip"] = whole_number("Clip skip", values.get("clip_skip"), low=1) or 1
    hires = json_value("hires", values.get("hires"))
    if hires not in (None, ""):
        hires = _object("hires", hires, ("scale", "upscaler", "steps", "denoise"))
        found["hires"] = Hires(
            scale=_given("Hires scale", decimal("Hires scale", hires.get("scale"))),
            upscaler=text("Hires upscaler", hires.get("upscaler")) or "Latent",
            steps=whole_number("Hires steps", hires.get("steps")) or 0,
            denoise=_given("Hires denoise", decimal("Hires denoise", hires.get("denoise"))),
        )
    weighting = text("Prompt weighting", values.get("prompt_weighting"))
    if weighting in WEIGHTINGS:
        found["prompt_weighting"] = weighting
    else:
        unsupported.append(f"prompt weighting {weighting!r}, which this Seedbank does not know")
    mode = text("Mode", values.get("mode")) or "txt2img"
    if mode != "txt2img":
        # Exports and chunks name the init image and mask by digest only; their pixels are
        # not in the source, and without them the recipe is another picture.
        unsupported.append(f"mode {mode}: its init image is not in the source")
    others = {
        name: _plain(name, values[name])
        for name in sorted(_PASSED_ON)
        if values.get(name) not in (None, "")
    }
    if others:
        found["other_fields"] = others
    unread = sorted(name for name in _NOT_READ if values.get(name) not in (None, "", [], {}))
    if unread:
        # A nested field this reader does not know (a new kind of resource): never dropped.
        unsupported.append(f"recipe fields this importer does not read: {', '.join(unread)}")
    if unsupported:
        found["unsupported"] = tuple(unsupported)
    return found


def _plain(name: str, value: Any) -> Any:
    """A plain recipe value of its field's type (a CSV cell is text whatever it says)."""
    kind = _PASSED_ON[name]
    if kind is int:
        return whole_number(name, value, low=-(2**63))
    if kind is float:
        return decimal(name, value)
    return text(name, value)


# The portable recipe fields SourceRecipe holds by their own names (or, for mode and strength,
# reports: img2img inputs are not in a source).
_HELD = frozenset({
    "prompt", "negative_prompt", "seed", "scheduler", "steps", "guidance", "width", "height",
    "precision", "batch_size", "mode", "strength", "loras", "embeddings", "vae", "clip_skip",
    "hires", "prompt_weighting",
})  # fmt: skip
_PORTABLE = [f for f in recipe_fields() if not spec(f).local_ref and f.name not in _HELD]
# Plain values (text, numbers) mean the same in any archive; anything nested may name a file.
_PASSED_ON = {f.name: field_type(f)[0] for f in _PORTABLE if field_type(f)[0] in (str, int, float)}
_NOT_READ = frozenset(f.name for f in _PORTABLE) - set(_PASSED_ON)
# Keys of a Seedbank recipe document (the "seedbank" chunk, recipes.jsonl) besides the recipe's
# own fields: the model and batch position (engine.png_metadata), img2img inputs by digest.
DOCUMENT_KEYS = frozenset({"model", "model_digest", "batch_index", "init_image_sha256",
                           "mask_sha256"})  # fmt: skip
RECIPE_KEYS = frozenset(f.name for f in recipe_fields() if not spec(f).local_ref)
