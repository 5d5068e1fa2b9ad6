"""A recipe from ComfyUI's API graph (the "prompt" PNG chunk).

The graph maps node ids to {"class_type", "inputs"}; an input that is a link reads
[node id, output index]. A text-to-image run is a KSampler (or KSamplerAdvanced) whose model
comes from a checkpoint loader, positive and negative from CLIPTextEncode nodes and latent from
EmptyLatentImage. A graph with a second sampler pass (hires fix, refiner) gives its first
pass, and says so: the later passes are not a recipe Seedbank can render.

Between the checkpoint and the sampler: LoraLoader nodes (a LoRA on the model and on the text
encoder, `strength_model` and `strength_clip`: Seedbank applies one weight to both, so a row
where they differ is refused) and LoraLoaderModelOnly; on the text encoder's way to the prompt
encoders, CLIPSetLastLayer (stop_at_clip_layer -N is A1111's Clip skip N); the decoder may be
a VAELoader's file. Any other node on those ways changes the model or the encoder in a way a
recipe cannot say: the row is kept as incomplete, naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from engine.imports import samplers
from engine.imports.source import (
    RowRejected,
    SourceRecipe,
    SourceResource,
    decimal,
    seed_value,
    text,
    whole_number,
)

SAMPLER_NODES = ("KSampler", "KSamplerAdvanced")
CHECKPOINT_NODES = ("CheckpointLoaderSimple", "CheckpointLoader", "ImageOnlyCheckpointLoader")
LORA_NODES = ("LoraLoader", "LoraLoaderModelOnly")
_MAX_HOPS = 16  # links followed to find a value: a cycle in a broken graph stops here
# A checkpoint loader's outputs: MODEL, CLIP, VAE (2).
_VAE_OUTPUT = 2


@dataclass
class _Chains:
    """What lies between the checkpoint and the sampler, the prompts and the decoder."""

    checkpoint: dict[str, Any] = field(default_factory=dict)
    model_loras: list[str] = field(default_factory=list)  # node ids, checkpoint first
    clip_loras: list[str] = field(default_factory=list)
    clip_skip: int | None = None
    encoded: bool = False  # a prompt encoder's chain has been walked
    unsupported: list[str] = field(default_factory=list)


def recipe_from_graph(
    graph: dict[str, Any], *, key: str, location: str, raw: dict[str, Any]
) -> SourceRecipe:
    nodes = {str(node_id): node for node_id, node in graph.items() if isinstance(node, dict)}
    passes = [n for n in nodes.values() if n.get("class_type") in SAMPLER_NODES]
    if not passes:
        raise RowRejected(f"{location}: the ComfyUI graph has no KSampler node.")
    first = [n for n in passes if _node(nodes, _inputs(n).get("latent_image"), "EmptyLatentImage")]
    sampler_node = (first or passes)[0]
    inputs = _inputs(sampler_node)
    latent = _inputs(_node(nodes, inputs.get("latent_image"), "EmptyLatentImage"))
    chains = _Chains()
    _model_chain(nodes, inputs.get("model"), chains)
    for name in ("positive", "negative"):
        _clip_chain(nodes, _encoder_clip(nodes, inputs.get(name)), chains, name)
    sampler = text("sampler_name", _value(nodes, inputs.get("sampler_name")) or "")
    schedule = text("scheduler", _value(nodes, inputs.get("scheduler")) or "")
    scheduler = samplers.scheduler_for("comfyui", sampler, schedule)
    warnings: list[str] = []
    if len(passes) > 1:
        warnings.append(f"{len(passes)} sampler passes: the first one is the recipe")
    if scheduler is None:
        warnings.append(samplers.unknown_sampler_warning("ComfyUI", sampler, schedule))
    seed = inputs.get("seed", inputs.get("noise_seed"))
    loras = _loras(nodes, chains, warnings)
    checkpoint = _inputs(chains.checkpoint)
    return SourceRecipe(
        tool="comfyui",
        source_key=key,
        location=location,
        prompt=text("Prompt", _prompt_text(nodes, inputs.get("positive"))),
        negative_prompt=text("Negative prompt", _prompt_text(nodes, inputs.get("negative"))),
        seed=seed_value(_value(nodes, seed)),
        steps=whole_number("Steps", _value(nodes, inputs.get("steps")), low=1),
        guidance=decimal("CFG", _value(nodes, inputs.get("cfg"))),
        width=whole_number("Width", _value(nodes, latent.get("width")), low=1),
        height=whole_number("Height", _value(nodes, latent.get("height")), low=1),
        sampler=sampler,
        scheduler=scheduler,
        model_name=text("Checkpoint", _value(nodes, checkpoint.get("ckpt_name")) or ""),
        loras=loras,
        vae=_vae(nodes, _decoder_vae(nodes, sampler_node), chains),
        clip_skip=chains.clip_skip or 1,
        unsupported=tuple(chains.unsupported),
        raw=raw,
        warnings=tuple(warnings),
    )


def _file_stem(value: Any, what: str) -> str:
    """A file input ("loras/add_detail.safetensors") as A1111 would name it: "add_detail"."""
    name = text(what, value) if value is not None else ""
    return PurePath(name.replace("\\", "/")).stem if name else ""


def _model_chain(nodes: dict[str, Any], link: Any, chains: _Chains) -> None:
    """Walk the sampler's `model` input back to its checkpoint, collecting LoRA loaders."""
    for _ in range(_MAX_HOPS):
        if not _is_link(link):
            return
        node_id = str(link[0])
        node = nodes.get(node_id) or {}
        kind = node.get("class_type")
        if kind in CHECKPOINT_NODES:
            chains.checkpoint = node
            return
        if kind in LORA_NODES:
            chains.model_loras.insert(0, node_id)
        else:
            chains.unsupported.append(_unknown_node(node, "the model"))
        link = _inputs(node).get("model")


def _unknown_node(node: dict[str, Any], what: str) -> str:
    kind = node.get("class_type", "?")
    verb = "changes" if _inputs(node) and any(map(_is_link, _inputs(node).values())) else "gives"
    return f"ComfyUI node {kind} {verb} {what}"


def _encoder_clip(nodes: dict[str, Any], link: Any) -> Any:
    """The `clip` input of the text encoder a conditioning input comes from."""
    for _ in range(_MAX_HOPS):
        if not _is_link(link):
            return None
        inputs = _inputs(nodes.get(str(link[0])))
        if "clip" in inputs:
            return inputs["clip"]
        link = inputs.get("conditioning", inputs.get("conditioning_1"))
    return None


def _clip_chain(nodes: dict[str, Any], link: Any, chains: _Chains, prompt: str) -> None:
    """Walk a prompt encoder's `clip` input back to the checkpoint: LoRA loaders and clip
    skip on the way. Both prompts must go through the same encoder (a recipe has one)."""
    if not _is_link(link):
        return  # no text encoder (a zeroed or missing negative): nothing to compare
    loras: list[str] = []
    skip: int | None = None
    for _ in range(_MAX_HOPS):
        if not _is_link(link):
            break
        node_id = str(link[0])
        node = nodes.get(node_id) or {}
        kind = node.get("class_type")
        if kind in CHECKPOINT_NODES:
            break
        if kind == "LoraLoader":
            loras.insert(0, node_id)
        elif kind == "CLIPSetLastLayer":
            layer = whole_number(
                "stop_at_clip_layer",
                _value(nodes, _inputs(node).get("stop_at_clip_layer")),
                low=-24,
                high=-1,
            )
            if skip is None and layer is not None:
                skip = -layer  # the one nearest the encoder is what it uses
        else:
            chains.unsupported.append(_unknown_node(node, f"the {prompt} prompt's text encoder"))
        link = _inputs(node).get("clip")
    if prompt == "positive" or not chains.encoded:
        chains.clip_loras, chains.clip_skip, chains.encoded = loras, skip, True
    elif (loras, skip) != (chains.clip_loras, chains.clip_skip):
        chains.unsupported.append(
            "the negative prompt goes through another text encoder (LoRAs or clip skip) "
            "than the positive one"
        )


def _loras(
    nodes: dict[str, Any], chains: _Chains, warnings: list[str]
) -> tuple[SourceResource, ...]:
    found = []
    for node_id in dict.fromkeys([*chains.model_loras, *chains.clip_loras]):
        inputs = _inputs(nodes[node_id])
        name = _file_stem(_value(nodes, inputs.get("lora_name")), "lora_name")
        on_model, on_clip = node_id in chains.model_loras, node_id in chains.clip_loras
        model_strength = decimal("strength_model", _value(nodes, inputs.get("strength_model")))
        clip_strength = decimal("strength_clip", _value(nodes, inputs.get("strength_clip")))
        if not on_model:
            raise RowRejected(
                f"LoRA {name} is applied to the text encoder only; Seedbank applies a LoRA to "
                "both the UNet and the text encoder."
            )
        weight = 1.0 if model_strength is None else model_strength
        if on_clip and (1.0 if clip_strength is None else clip_strength) != weight:
            raise RowRejected(
                f"LoRA {name} has strength_model {model_strength} and strength_clip "
                f"{clip_strength}; Seedbank applies one LoRA weight to both."
            )
        if not on_clip:
            warnings.append(
                f"LoRA {name} patches the model only in ComfyUI; Seedbank also applies the "
                "file's text-encoder layers, if it has any"
            )
        found.append(SourceResource(kind="lora", name=name, weight=weight))
    return tuple(found)


def _decoder_vae(nodes: dict[str, Any], sampler_node: dict[str, Any]) -> Any:
    """The `vae` input of the VAEDecode that decodes this sampler's latents, or of the only
    VAEDecode (a graph whose later passes decode in its place)."""
    sampler_ids = {node_id for node_id, node in nodes.items() if node is sampler_node}
    decoders = [_inputs(n) for n in nodes.values() if n.get("class_type") == "VAEDecode"]
    for inputs in decoders:
        samples: Any = inputs.get("samples")
        if _is_link(samples) and str(samples[0]) in sampler_ids:
            return inputs.get("vae")
    return decoders[0].get("vae") if len(decoders) == 1 else None


def _vae(nodes: dict[str, Any], link: Any, chains: _Chains) -> SourceResource | None:
    if not _is_link(link):
        return None
    node = nodes.get(str(link[0])) or {}
    if node.get("class_type") == "VAELoader":
        name = _file_stem(_value(nodes, _inputs(node).get("vae_name")), "vae_name")
        return SourceResource(kind="vae", name=name)
    if node.get("class_type") not in CHECKPOINT_NODES or link[1] != _VAE_OUTPUT:
        chains.unsupported.append(_unknown_node(node, "the decoder"))
    return None


def _inputs(node: dict[str, Any] | None) -> dict[str, Any]:
    inputs = (node or {}).get("inputs")
    return inputs if isinstance(inputs, dict) else {}


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def _node(nodes: dict[str, Any], link: Any, class_type: str) -> dict[str, Any] | None:
    if not _is_link(link):
        return None
    node = nodes.get(str(link[0]))
    return node if node and node.get("class_type") == class_type else None


def _value(nodes: dict[str, Any], value: Any) -> Any:
    """A literal input, or the literal a primitive node linked to it holds."""
    for _ in range(_MAX_HOPS):
        if not _is_link(value):
            return value
        node_inputs = _inputs(nodes.get(str(value[0])))
        value = next(
            (node_inputs[name] for name in ("value", "text", "string", "seed", "int", "float")
             if name in node_inputs),
            None,
        )  # fmt: skip
    return None


def _prompt_text(nodes: dict[str, Any], link: Any) -> str:
    """The text of the CLIPTextEncode (or SDXL's, which has text_g) a conditioning input comes
    from, through conditioning nodes that pass one input on."""
    for _ in range(_MAX_HOPS):
        if not _is_link(link):
            return ""
        node = nodes.get(str(link[0])) or {}
        inputs = _inputs(node)
        for name in ("text", "text_g"):
            if name in inputs:
                found = _value(nodes, inputs[name])
                return found if isinstance(found, str) else ""
        link = inputs.get("conditioning", inputs.get("conditioning_1"))
    return ""
