"""The demo gallery: scenes the demo models were trained to draw, in English and Chinese.

Each demo prompt is a caption of a scene from engine.scenes (the models never saw these exact
scenes: they are not drawn from the training split). Remixes change one word of a rendered
record's prompt, so the lineage shows a visible change; the fine-tune and the blend render some
of the same recipes, so the model's part in a recipe shows. DEMO_COLLECTIONS gathers some of
them into featured collections, so the home page and the collection pages have something to
show before staff curate their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.scenes import Scene

# (shape, colour, background, size, position, count); the caption language alternates.
_SCENES = [
    ("circle", "red", "blue", "large", "centre", 1),
    ("star", "yellow", "black", "small", "top", 1),
    ("tree", "green", "white", "large", "centre", 2),
    ("cat", "white", "orange", "large", "centre", 1),
    ("house", "blue", "yellow", "large", "left", 1),
    ("triangle", "purple", "green", "small", "centre", 3),
    ("square", "orange", "purple", "large", "right", 1),
    ("cross", "black", "white", "small", "bottom", 1),
    ("star", "red", "white", "large", "centre", 1),
    ("circle", "yellow", "purple", "small", "left", 1),
    ("cat", "black", "yellow", "large", "right", 1),
    ("house", "red", "green", "small", "top", 1),
    ("tree", "purple", "orange", "large", "left", 1),
    ("square", "green", "black", "small", "centre", 2),
    ("triangle", "blue", "white", "large", "bottom", 1),
    ("cross", "orange", "blue", "large", "centre", 1),
    ("circle", "white", "black", "large", "centre", 3),
    ("star", "blue", "orange", "large", "right", 1),
    ("cat", "orange", "blue", "small", "centre", 2),
    ("house", "white", "purple", "large", "centre", 1),
    ("tree", "yellow", "red", "small", "right", 1),
    ("square", "red", "yellow", "large", "top", 1),
    ("triangle", "green", "black", "large", "centre", 1),
    ("cross", "purple", "yellow", "small", "centre", 3),
    ("circle", "green", "red", "large", "bottom", 1),
    ("star", "white", "blue", "small", "centre", 2),
    ("cat", "purple", "white", "large", "left", 1),
    ("house", "orange", "black", "small", "centre", 3),
    ("tree", "blue", "yellow", "large", "centre", 1),
    ("square", "black", "orange", "small", "left", 1),
    ("triangle", "yellow", "blue", "small", "right", 1),
    ("cross", "red", "green", "large", "top", 1),
]
DEMO_PROMPTS = [
    Scene(*scene, jitter=0).caption("en" if index % 2 == 0 else "zh")
    for index, scene in enumerate(_SCENES)
]
# (demo prompt index, word, its replacement): one word changed, rendered as a remix.
DEMO_REMIXES = [
    (0, "red", "blue"),
    (3, "白色", "黑色"),
    (4, "house", "cat"),
    (5, "紫色", "黄色"),
    (6, "square", "triangle"),
    (8, "large", "small"),
    (9, "左边", "右边"),
    (10, "black", "white"),
]
# Rendered again with the outline fine-tune and the 50/50 blend: same prompt, seed, scheduler.
DEMO_MODEL_PROMPT_INDEXES = (0, 3, 4, 8)

# Remix chains that change what a recipe holds besides its words, each step a remix of the one
# before (the first of a demo prompt's render): (demo prompt index, [changes, …]). A change
# names a shipped resource (demo_models) by name; the lineage then shows what each one does:
# the outline LoRA at weight 0 (the parent's very pixels), 0.5 and 1, the sbk-diamond
# embedding (found in the prompt by its word), two VAE files, clip skip, A1111 prompt
# weighting and a hires pass.
DEMO_RECIPE_CHAINS: list[tuple[int, list[dict[str, object]]]] = [
    (0, [{"lora": 0.0}, {"lora": 0.5}, {"lora": 1.0}]),
    (16, [{"words": ("circles", "sbk-diamond")}]),
    (6, [{"vae": "scenes-vae-v1"}]),
    (12, [{"vae": "scenes-vae-ft"}]),
    (14, [{"clip_skip": 2}]),
    (2, [{"emphasis": ("green", "(green:1.6)")}]),
    (4, [{"hires": {"scale": 2.0, "upscaler": "Latent", "steps": 10, "denoise": 0.5}}]),
]


# The prompts of the one-word remixes, in DEMO_REMIXES' order.
DEMO_REMIX_PROMPTS = [
    DEMO_PROMPTS[index].replace(word, replacement) for index, word, replacement in DEMO_REMIXES
]
_CAT = re.compile(r"\bcats?\b|猫")


def _cats(records: Sequence[Any]) -> list[Any]:
    """Every cat: the demo prompts', the other models' and the remixes that made one."""
    return [record for record in records if _CAT.search(record.prompt)]


def _three_models(records: Sequence[Any]) -> list[Any]:
    """Each prompt the three models rendered, base model first (it was queued first)."""
    prompts = [DEMO_PROMPTS[index] for index in DEMO_MODEL_PROMPT_INDEXES]
    roots = [r for r in records if r.parent_id is None and r.prompt in prompts]
    return sorted(roots, key=lambda record: (prompts.index(record.prompt), record.pk))


def _one_word(records: Sequence[Any]) -> list[Any]:
    """Each one-word remix after its parent."""
    by_pk = {record.pk: record for record in records}
    picked = []
    for prompt in DEMO_REMIX_PROMPTS:
        child = next((r for r in records if r.prompt == prompt and r.parent_id in by_pk), None)
        if child is not None:
            picked += [by_pk[child.parent_id], child]
    return picked


@dataclass(frozen=True)
class DemoCollection:
    slug: str
    # One title and description in both languages: a collection's words are not translated.
    title: str
    description: str
    pick: Callable[[Sequence[Any]], list[Any]]  # the demo records → this one's, in order


# Featured on the home page, in this order. seed_demo makes each once (by slug), from the demo
# user's records with DEMO_PROMPTS or DEMO_REMIX_PROMPTS.
DEMO_COLLECTIONS = [
    DemoCollection(
        slug="demo-cats",
        title="Cats · 猫",
        description=(
            "Every cat in the demo gallery, from English and Chinese prompts.\n"
            "演示图库里所有的猫，来自英文和中文提示词。"
        ),
        pick=_cats,
    ),
    DemoCollection(
        slug="demo-one-recipe-three-models",
        title="One recipe, three models · 同一配方，三个模型",
        description=(
            "The same prompt, seed and scheduler rendered by the base model, its outline "
            "fine-tune and their 50/50 blend: the model is part of the recipe.\n"
            "同样的提示词、种子和调度器，分别由基础模型、轮廓微调模型和两者各半的混合模型渲染："
            "模型也是配方的一部分。"
        ),
        pick=_three_models,
    ),
    DemoCollection(
        slug="demo-one-word-changed",
        title="One word changed · 只改一个词",
        description=(
            "Each picture next to its remix, which changed one word of the prompt and kept the "
            "seed.\n每张图片旁边是它的重混：只改了提示词里的一个词，种子不变。"
        ),
        pick=_one_word,
    ),
]
