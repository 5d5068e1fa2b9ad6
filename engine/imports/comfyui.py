"""A recipe from ComfyUI's API graph (the "prompt" PNG chunk).

The graph maps node ids to {"class_type", "inputs"}; an input that is a link reads
[node id, output index]. A text-to-image run is a KSampler (or KSamplerAdvanced) whose model
comes from a checkpoint loader, positive and negative from CLIPTextEncode nodes and latent from
EmptyLatentImage. A graph with a second sampler pass (hires fix, refiner) gives its first
pass, and says so: the later passes are not a recipe Seedbank can render.
"""

from __future__ import annotations

from typing import Any

from engine.imports import samplers
from engine.imports.source import RowRejected, SourceRecipe, decimal, seed_value, text, whole_number

SAMPLER_NODES = ("KSampler", "KSamplerAdvanced")
CHECKPOINT_NODES = ("CheckpointLoaderSimple", "CheckpointLoader", "ImageOnlyCheckpointLoader")
_MAX_HOPS = 16  # links followed to find a value: a cycle in a broken graph stops here


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
    checkpoint = _follow_to(nodes, inputs.get("model"), CHECKPOINT_NODES)
    sampler = text("sampler_name", _value(nodes, inputs.get("sampler_name")) or "")
    schedule = text("scheduler", _value(nodes, inputs.get("scheduler")) or "")
    scheduler = samplers.scheduler_for("comfyui", sampler, schedule)
    warnings: list[str] = []
    if len(passes) > 1:
        warnings.append(f"{len(passes)} sampler passes: the first one is the recipe")
    if scheduler is None:
        warnings.append(samplers.unknown_sampler_warning("ComfyUI", sampler, schedule))
    seed = inputs.get("seed", inputs.get("noise_seed"))
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
        model_name=text("Checkpoint", _value(nodes, _inputs(checkpoint).get("ckpt_name")) or ""),
        raw=raw,
        warnings=tuple(warnings),
    )


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


def _follow_to(nodes: dict[str, Any], link: Any, class_types: tuple[str, ...]) -> dict[str, Any]:
    """The first node of one of `class_types` up the chain of `model` links (LoRA loaders and
    other patches sit between a checkpoint and its sampler)."""
    for _ in range(_MAX_HOPS):
        if not _is_link(link):
            return {}
        node = nodes.get(str(link[0])) or {}
        if node.get("class_type") in class_types:
            return node
        link = _inputs(node).get("model")
    return {}


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
