"""The text chunks every stored PNG carries (Django-free).

`parameters` is A1111's infotext, so the PNG drops into A1111, InvokeAI, civitai and friends;
`seedbank` is the exact JSON recipe, which loses nothing (model digest, precision, batch,
every resource by the sha256 of its file).

A1111 names resources by an alias and a short hash, not by the file's sha256: each LoRA is a
`<lora:alias:weight>` tag in the prompt plus "Lora hashes: alias: <12 hex of kohya's addnet
hash>", a VAE is "VAE: alias, VAE hash: <AutoV2>". The worker knows those names for the files
it loaded (`ResourceNames`); without them the recipe's own names and AutoV2 of the sha256
stand in, which Seedbank's importer reads back the same (a 10-hex hash is an AutoV2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.infotext import (
    InfotextRecipe,
    NetworkTag,
    number_text,
    recipe_to_json,
    short_model_hash,
    to_infotext,
)
from engine.png_files import PngText
from engine.recipe import Recipe, recipe_fields
from engine.resources import addnet_short, autov2

# The fields A1111's text names like the recipe does (prompt, steps, size, clip skip…).
_INFOTEXT_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(InfotextRecipe)
    if f.name in {field.name for field in recipe_fields()}
)
# What an A1111 alias cannot hold: the tag and "Lora hashes" syntax (A1111 removes ":" and ","
# from aliases before writing the hashes).
_ALIAS_BREAKERS = str.maketrans("", "", ":,<>\n\r")


@dataclass(frozen=True)
class ResourceNames:
    """How A1111 names one resource file in infotext.

    `name` is the alias A1111 would use (the file's name without extension, e.g.
    "scenes-outline-lora"); `short_hash` the hash it writes beside it: for a LoRA the first 12
    hex of kohya's addnet hash, for a VAE or an embedding AutoV2 (the first 10 hex of the
    file's sha256). `of()` computes it from the registered digests.
    """

    name: str
    kind: str  # "lora", "vae", "embedding"
    short_hash: str

    @classmethod
    def of(cls, *, kind: str, name: str, sha256: str, addnet_sha256: str = "") -> ResourceNames:
        """The names of a registered file; a LoRA without an addnet hash (a file that is not
        safetensors) falls back to AutoV2, which readers tell apart by its length."""
        if kind == "lora" and addnet_sha256:
            return cls(name=name, kind=kind, short_hash=addnet_short(addnet_sha256))
        return cls(name=name, kind=kind, short_hash=autov2(sha256))


def png_text_for(
    recipe: Mapping[str, Any], resources: Mapping[str, ResourceNames] | None = None
) -> PngText:
    """Chunks for each image of a batch; `recipe` is a record's portable recipe
    (`Recipe.portable()` plus `model` and `model_digest`), whose seed and batch position are
    replaced by each image's own. `resources` names each resource file the recipe uses, by its
    sha256, the way A1111 would."""
    infotext_resources = _resource_params(Recipe.from_values(recipe), resources or {})

    def chunks(seed: int, batch_index: int, batch_size: int) -> dict[str, str]:
        # The batch actually rendered: after an out-of-memory split it is smaller than asked.
        full = {**recipe, "seed": seed, "batch_index": batch_index, "batch_size": batch_size}
        # The A1111 record shares the recipe's names for what it can carry; the rest of the
        # recipe (precision, mode, batch) lives in the exact "seedbank" chunk.
        shared = {name: full[name] for name in _INFOTEXT_FIELDS if name in full}
        if not full.get("prompt_weighting"):
            for name in ("prompt", "negative_prompt"):
                if name in shared:
                    shared[name] = plain_for_a1111(shared[name])
        infotext = to_infotext(
            InfotextRecipe(
                **shared,
                **infotext_resources,
                model_name=full["model"],
                model_hash=short_model_hash(full["model_digest"]),
            )
        )
        return {"parameters": infotext, "seedbank": recipe_to_json(full)}

    return chunks


_EMPHASIS_CHARACTERS = str.maketrans({c: "\\" + c for c in "\\()[]"})


def plain_for_a1111(text: str) -> str:
    """A prompt read as plain words, written so A1111 reads the same words: it reads every
    prompt with its emphasis syntax, where `(`, `)`, `[`, `]` and `\\` escaped are literal."""
    return text.translate(_EMPHASIS_CHARACTERS)


def _resource_params(recipe: Recipe, names: Mapping[str, ResourceNames]) -> dict[str, Any]:
    """InfotextRecipe's LoRA, embedding, VAE and hires-fix fields for a recipe."""
    tags: list[NetworkTag] = []
    hashes: dict[str, str] = {}
    for lora in recipe.loras:
        alias, short = _a1111_names(lora.resource, lora.name, names)
        if alias in hashes:  # two files under one alias: the hash keeps them apart
            alias = f"{alias}-{short}"
        tags.append(NetworkTag(kind="lora", name=alias, args=(number_text(lora.weight),)))
        hashes[alias] = short
    # A1111 names an embedding in "TI hashes" by the word the prompt uses for it.
    embeddings = {}
    for embedding in recipe.embeddings:
        token, short = _a1111_names(embedding.resource, embedding.token, names)
        embeddings[token] = short
    params: dict[str, Any] = {
        "networks": tuple(tags),
        "lora_hashes": hashes,
        "ti_hashes": embeddings,
    }
    if recipe.vae is not None:
        params["vae_name"], params["vae_hash"] = _a1111_names(
            recipe.vae.resource, recipe.vae.name, names
        )
    if recipe.hires is not None:
        # A1111 writes the first pass's size as "Size" and the scale beside it.
        params.update(
            hires_scale=recipe.hires.scale,
            hires_steps=recipe.hires.steps,
            hires_upscaler=recipe.hires.upscaler,
            denoising_strength=recipe.hires.denoise,
        )
    return params


def _a1111_names(sha256: str, own_name: str, names: Mapping[str, ResourceNames]) -> tuple[str, str]:
    """(alias, short hash) for one file: the worker's names, else the recipe's own name and
    AutoV2 of the sha256. An embedding keeps its token: the prompt says that word."""
    found = names.get(sha256)
    if found and found.kind != "embedding":
        name, short = found.name, found.short_hash
    else:
        name, short = own_name, found.short_hash if found else autov2(sha256)
    alias = name.translate(_ALIAS_BREAKERS).strip()
    return alias or autov2(sha256), short


__all__ = ["ResourceNames", "png_text_for"]
