"""A recipe from A1111 infotext, and from what Forge, SD.Next and Civitai add to it.

engine.infotext reads the text the way A1111 means it; this decides what a Seedbank recipe can
hold of it. Each param is one of:

- held: Steps, Sampler (+ Schedule type), CFG scale, Seed, Size, Model, Model hash; the
  prompt's `<lora:name:w>` / `<lyco:…>` tags with "Lora hashes"; "VAE" / "VAE hash"; "Clip
  skip"; "Hires upscale" or "Hires resize", "Hires steps", "Hires upscaler" and "Denoising
  strength" (the second pass's); Civitai's "Hashes" and "Civitai resources" (which files);
- needed but not held (the row needs the resource, never rendered without it): "TI hashes"
  (textual-inversion embeddings are not recipe fields yet), `<hypernet:…>` tags and the old
  "Hypernet" param, other extensions' tags, a hires upscaler that is a model (ESRGAN…);
- not moving pixels: Version, User, Template / Negative Template / Wildcard prompt (Dynamic
  Prompts: the prompt written is the result), Civitai metadata, Created Date, Batch size and
  Batch pos (each image of an A1111 batch has its own seed), RNG (where the tool drew its
  noise: a difference between tools, like the GPU, which verification measures), ENSD with a
  sampler that adds no noise or 0 (older A1111 wrote it always), Emphasis: Original and
  Schedule type: Automatic / Uniform (the defaults), and the hires-pass params that repeat
  the first pass ("Use same sampler", a Hires CFG Scale equal to CFG scale…);
- anything else moves pixels, or may (an extension's param cannot be told apart): Variation
  seed, Face restoration, ENSD with an ancestral sampler, Denoising strength without a hires
  fix (img2img), Hires prompt, ControlNet, ADetailer… The row is kept as incomplete, each
  one named, never imported as if it were not there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engine import schedulers
from engine.imports import samplers
from engine.imports.source import (
    RowRejected,
    SourceRecipe,
    SourceResource,
    decimal,
    seed_value,
    whole_number,
)
from engine.infotext import InfotextError, InfotextRecipe, NetworkTag, number_text, parse_infotext
from engine.prompt_weighting import uses_emphasis
from engine.recipe import A1111_WEIGHTING, Hires

LORA_KINDS = ("lora", "lyco")  # A1111 ≥ 1.5 reads <lyco:…> as the same network
# The params that this reader holds elsewhere (Civitai's), or that do not move pixels.
_HELD = frozenset({"Hashes", "Civitai resources"})
_NO_PIXELS = frozenset({
    "Version", "User", "Template", "Negative Template", "Wildcard prompt", "Civitai metadata",
    "Created Date", "Batch size", "Batch pos", "RNG",
})  # fmt: skip
# Params whose default (or "as the first pass") value moves nothing: key -> such values.
_DEFAULTS = {
    "Emphasis": {"Original"},
    "Schedule type": {"Automatic", "Uniform"},
    "Hires sampler": {"Use same sampler"},
    "Hires schedule type": {"Use same scheduler"},
    "Hires checkpoint": {"Use same checkpoint"},
    "Hires Module 1": {"Use same choices"},
}
# Civitai's resource types (its "Civitai resources" and AIR types) -> Seedbank's kinds.
_CIVITAI_KINDS = {
    "lora": "lora", "locon": "lora", "lycoris": "lora", "dora": "lora", "lyco": "lora",
    "embed": "embedding", "embedding": "embedding", "textualinversion": "embedding",
    "vae": "vae", "checkpoint": "checkpoint", "model": "checkpoint",
}  # fmt: skip
_SHOWN_VALUE = 80  # characters of a param's value quoted in a report


def recipe_from_infotext(
    text: str, *, key: str, location: str, raw: dict[str, Any], tool: str = "a1111"
) -> SourceRecipe:
    try:
        parsed = parse_infotext(text, keep_unknown_sampler=True)
    except InfotextError as error:
        raise RowRejected(f"{location}: A1111 parameters: {error}") from None
    try:
        return _source(parsed, tool=tool, key=key, location=location, raw=raw)
    except RowRejected as error:
        raise RowRejected(f"{location}: {error}") from None


def _source(
    parsed: InfotextRecipe, *, tool: str, key: str, location: str, raw: dict[str, Any]
) -> SourceRecipe:
    sampler = parsed.extra.get("Sampler", "") if not parsed.scheduler else parsed.scheduler
    warnings: list[str] = []
    if not parsed.scheduler:
        warnings.append(samplers.unknown_sampler_warning("A1111", sampler))
    unsupported: list[str] = []
    civitai_hashes = _civitai_hashes(parsed.extra, warnings)
    loras, others = _networks(parsed, civitai_hashes, unsupported)
    civitai = _civitai_resources(parsed.extra.get("Civitai resources"))
    loras = _with_civitai_loras(loras, civitai.get("lora", []), unsupported)
    vae = _vae(parsed, civitai_hashes, civitai.get("vae", []))
    embeddings = [
        SourceResource(kind="embedding", name=name, hash=short)
        for name, short in parsed.ti_hashes.items()
    ]
    named = {embedding.name for embedding in embeddings}
    embeddings += [
        SourceResource(kind="embedding", name=name, hash=short)
        for (kind, name), short in civitai_hashes.items()
        if kind == "embed" and name not in named
    ]
    embeddings += civitai.get("embedding", [])
    # A checkpoint entry is the model, found like any A1111 text's (Model hash, Model).
    others += [
        resource
        for kind, found in civitai.items()
        if kind not in ("lora", "vae", "embedding", "checkpoint")
        for resource in found
    ]
    if "Hypernet" in parsed.extra:  # the hypernetwork setting of A1111 before extra networks
        hypernet = parsed.extra["Hypernet"]
        others.append(
            SourceResource(
                kind="hypernet", name=hypernet, hash=parsed.extra.get("Hypernet hash", "")
            )
        )
    hires = _hires(parsed)
    if hires is None and parsed.denoising_strength is not None:
        unsupported.append(
            f"Denoising strength {number_text(parsed.denoising_strength)} without a hires "
            "fix: an img2img or inpainting render, whose init image is not in the file"
        )
    unsupported += _params_not_held(parsed)
    return SourceRecipe(
        tool=tool,
        source_key=key,
        location=location,
        prompt=parsed.prompt,
        negative_prompt=parsed.negative_prompt,
        seed=seed_value(parsed.seed),
        steps=whole_number("Steps", parsed.steps, low=1),
        guidance=parsed.guidance,
        width=parsed.width,
        height=parsed.height,
        sampler=sampler,
        scheduler=parsed.scheduler or None,
        model_name=parsed.model_name,
        model_hash=parsed.model_hash or civitai_hashes.get(("model", ""), ""),
        loras=tuple(loras),
        vae=vae,
        embeddings=tuple(embeddings),
        other_resources=tuple(others),
        clip_skip=parsed.clip_skip,
        hires=hires,
        # A1111 reads every prompt with its emphasis syntax. Where the text uses none, the
        # plain reading gives the same embeddings (bit for bit), so the recipe stays plain.
        prompt_weighting=(
            A1111_WEIGHTING
            if uses_emphasis(parsed.prompt) or uses_emphasis(parsed.negative_prompt)
            else ""
        ),
        unsupported=tuple(unsupported),
        raw=raw,
        warnings=tuple(warnings),
    )


# --- extra networks -------------------------------------------------------------------------


def _networks(
    parsed: InfotextRecipe, civitai_hashes: Mapping[tuple[str, str], str], unsupported: list[str]
) -> tuple[list[SourceResource], list[SourceResource]]:
    """The prompt's LoRAs (with their hashes) and its other extra networks."""
    loras: list[SourceResource] = []
    others: list[SourceResource] = []
    for tag in parsed.networks:
        # A1111 writes an alias into "Lora hashes" without ":" and ",".
        alias = tag.name.replace(":", "").replace(",", "")
        hashed = parsed.lora_hashes.get(alias) or civitai_hashes.get((tag.kind, tag.name), "")
        if tag.kind not in LORA_KINDS:
            others.append(SourceResource(kind=tag.kind, name=tag.name, hash=hashed))
            continue
        weight = _lora_weight(tag, unsupported)
        if any(lora.name == tag.name for lora in loras):
            unsupported.append(f"LoRA {tag.name} is used twice")
        loras.append(SourceResource(kind="lora", name=tag.name, hash=hashed, weight=weight))
    tagged = {tag.name.replace(":", "").replace(",", "") for tag in parsed.networks}
    civitai_loras = {name for kind, name in civitai_hashes if kind in LORA_KINDS}
    untagged = sorted((set(parsed.lora_hashes) | civitai_loras) - tagged)
    if untagged:
        # A LoRA of the hires prompt only, or text edited by hand: which ran is unclear.
        unsupported.append(f"hashes name LoRA(s) {', '.join(untagged)} that no <lora> tag uses")
    return loras, others


def _lora_weight(tag: NetworkTag, unsupported: list[str]) -> float:
    """The one weight of a LoRA tag, read as A1111's extra_networks_lora does: `te[:unet[:dyn]]`
    positionally or by name; a different UNet weight is refused (Seedbank has one weight)."""
    positional = [arg for arg in tag.args if "=" not in arg]
    named = dict(arg.split("=", 1) for arg in tag.args if "=" in arg)
    te_text = named.pop("te", positional[0] if positional else "1")
    unet_text = named.pop("unet", positional[1] if len(positional) > 1 else te_text)
    dyn = named.pop("dyn", positional[2] if len(positional) > 2 else None)
    te, unet = (_tag_number(tag, value) for value in (te_text, unet_text))
    if te != unet:
        raise RowRejected(
            f"{tag.text()} gives the text encoder {number_text(te)} and the UNet "
            f"{number_text(unet)}; Seedbank applies one LoRA weight to both."
        )
    if dyn is not None:
        unsupported.append(f"{tag.text()}: dyn={dyn} (a LoRA cut to a lower rank)")
    if named or len(positional) > 3:
        unsupported.append(f"{tag.text()}: options Seedbank cannot apply")
    return te


def _tag_number(tag: NetworkTag, value: str) -> float:
    number = decimal(f"The weight in {tag.text()}", value.strip())
    if number is None:
        raise RowRejected(f"The weight in {tag.text()} is empty.")
    return number


def _with_civitai_loras(
    loras: list[SourceResource], civitai: list[SourceResource], unsupported: list[str]
) -> list[SourceResource]:
    """The prompt's LoRAs with what Civitai resources says of them, or Civitai's list alone
    (its own generator writes no tags). Lists that disagree are reported, not merged."""
    if not civitai:
        return loras
    if not loras:
        return civitai
    if [lora.weight for lora in loras] != [entry.weight for entry in civitai]:
        unsupported.append(
            f"Civitai resources lists {len(civitai)} LoRA(s) that do not match the prompt's "
            f"{len(loras)} <lora> tag(s)"
        )
        return loras
    return [
        SourceResource(kind="lora", name=lora.name, hash=lora.hash, air=entry.air,
                       civitai_version=entry.civitai_version, weight=lora.weight)
        for lora, entry in zip(loras, civitai, strict=True)
    ]  # fmt: skip


def _vae(
    parsed: InfotextRecipe,
    civitai_hashes: Mapping[tuple[str, str], str],
    civitai: list[SourceResource],
) -> SourceResource | None:
    short = parsed.vae_hash or civitai_hashes.get(("vae", ""), "")
    if not (parsed.vae_name or short or civitai):
        return None
    entry = civitai[0] if civitai else SourceResource(kind="vae")
    return SourceResource(kind="vae", name=parsed.vae_name or entry.name, hash=short,
                          air=entry.air, civitai_version=entry.civitai_version)  # fmt: skip


# --- Civitai --------------------------------------------------------------------------------


def _civitai_hashes(extra: Mapping[str, str], warnings: list[str]) -> dict[tuple[str, str], str]:
    """Civitai's "Hashes: {"model": h, "vae": h, "lora:name": h, "embed:name": h}" as
    {(kind, name): hash}; "model" and "vae" have the name ""."""
    if "Hashes" not in extra:
        return {}
    try:
        document = json.loads(extra["Hashes"])
    except ValueError:
        document = None
    if not isinstance(document, dict):
        warnings.append("Hashes is not a JSON object: not read")
        return {}
    found = {}
    for entry, value in document.items():
        kind, _, name = str(entry).partition(":")
        if isinstance(value, str) and value:
            found[(kind, name)] = value
    return found


def _civitai_resources(value: str | None) -> dict[str, list[SourceResource]]:
    """Civitai's `[{"type": "lora", "weight": 0.8, "modelVersionId": 123, "air": …}]` by
    Seedbank kind, in order."""
    if value is None:
        return {}
    try:
        entries = json.loads(value)
    except ValueError:
        raise RowRejected("Civitai resources is not valid JSON.") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise RowRejected("Civitai resources must be a list of objects.")
    found: dict[str, list[SourceResource]] = {}
    for entry in entries:
        kind = str(entry.get("type", "")).lower()
        kind = _CIVITAI_KINDS.get(kind, kind or "resource")
        weight = decimal("A Civitai resource's weight", entry.get("weight"))
        version = entry.get("modelVersionId")
        found.setdefault(kind, []).append(
            SourceResource(
                kind=kind,
                name=str(entry.get("modelName") or ""),
                air=str(entry.get("air") or ""),
                civitai_version="" if version in (None, "") else str(version),
                weight=1.0 if weight is None else weight,
            )
        )
    return found


# --- hires fix and the params not held ------------------------------------------------------


def _hires(parsed: InfotextRecipe) -> Hires | None:
    if not parsed.hires:
        return None
    scale = parsed.hires_scale
    if parsed.hires_resize is not None:
        resized = _uniform_scale(parsed.hires_resize, parsed.width, parsed.height)
        if scale is not None and scale != resized:
            raise RowRejected(
                f"Hires upscale {number_text(scale)} and Hires resize "
                f"{parsed.hires_resize[0]}x{parsed.hires_resize[1]} disagree."
            )
        scale = resized
    if scale is None:
        raise RowRejected("a hires fix without Hires upscale or Hires resize.")
    if parsed.denoising_strength is None:
        raise RowRejected("a hires fix without Denoising strength.")
    return Hires(
        scale=scale,
        # What A1111 takes when the text names none (its default setting).
        upscaler=parsed.hires_upscaler or "Latent",
        steps=parsed.hires_steps,
        denoise=parsed.denoising_strength,
    )


def _uniform_scale(resize: tuple[int, int], width: int, height: int) -> float:
    """The scale of "Hires resize: WxH" (a 0 side follows the other, as in A1111) when both
    sides grow by that one scale, as A1111 computes scaled sides (int(side × scale))."""
    to_width, to_height = resize
    if to_height == 0 and to_width:
        to_height = to_width * height // width
    elif to_width == 0 and to_height:
        to_width = to_height * width // height
    scale = to_width / width if width else 0.0
    if (
        not to_width
        or to_width * height != to_height * width
        or int(width * scale) != to_width
        or int(height * scale) != to_height
    ):
        raise RowRejected(
            f"Hires resize {resize[0]}x{resize[1]} is not one scale of {width}x{height} "
            "(A1111 crops to fit); Seedbank's hires fix only scales."
        )
    return scale


def _params_not_held(parsed: InfotextRecipe) -> list[str]:
    """Each param this reader neither holds nor knows to leave the pixels alone."""
    found = []
    for key, value in parsed.extra.items():
        if key == "Sampler":
            continue  # an unknown sampler is reported as the recipe's missing scheduler
        if key in _HELD or key in _NO_PIXELS or key in ("Hypernet", "Hypernet hash"):
            continue
        if value.strip() in _DEFAULTS.get(key, ()) or _repeats_first_pass(key, value, parsed):
            continue
        if key == "ENSD" and (value.strip() == "0" or not _adds_noise(parsed.scheduler)):
            continue
        shown = value if len(value) <= _SHOWN_VALUE else value[: _SHOWN_VALUE - 1] + "…"
        found.append(f"'{key}: {shown}'")
    return [f"A1111 params {', '.join(found)}"] if found else []


def _repeats_first_pass(key: str, value: str, parsed: InfotextRecipe) -> bool:
    """Whether a hires-pass param says what the first pass used (Forge writes them always)."""
    value = value.strip()
    if key == "Hires CFG Scale":
        return decimal_or_none(value) == parsed.guidance
    if key == "Hires sampler" and parsed.scheduler:
        # A1111 1.9+ names "DPM++ 2M" apart from its "Karras" schedule type.
        names = {value, f"{value} Karras"}
        return parsed.scheduler in {samplers.scheduler_for("a1111", name) for name in names}
    if key == "Hires schedule type":
        first = parsed.extra.get("Schedule type", "Automatic")
        karras = parsed.scheduler.endswith(" Karras") and "Schedule type" not in parsed.extra
        return value == first or (karras and value == "Karras")
    return False


def decimal_or_none(value: str) -> float | None:
    try:
        return decimal("value", value)
    except RowRejected:
        return None


def _adds_noise(scheduler: str) -> bool:
    """Whether ENSD (the offset A1111 adds to the seed of a sampler's per-step noise) can
    change this sampler's pixels: ancestral ones, or one not in the catalogue."""
    return not scheduler or schedulers.SCHEDULER_SPECS[scheduler].ancestral
