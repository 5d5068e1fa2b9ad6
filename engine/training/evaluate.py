"""How well the scene models follow their text, on held-out scenes (bench/models.py, tests).

CLIP: zero-shot colour and shape accuracy (each class's text embedding the mean over captions
of many scenes with that colour or shape, a prompt ensemble as in the CLIP paper), and
text→image recall@10 (a caption's own picture among the ten nearest of all held-out pictures),
for English and Chinese captions. Generation: pictures rendered from held-out captions, judged
by the trained CLIP's zero-shot classifiers and, for colour, by their pixels alone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from engine import embedder
from engine.scenes import COLOURS, LANGUAGES, SHAPES, Scene, scene_at

ENSEMBLE = 48  # captions per class in a zero-shot classifier


@dataclass(frozen=True)
class ClipQuality:
    colour_accuracy: dict[str, float]  # by caption language
    shape_accuracy: dict[str, float]
    recall_at_10: dict[str, float]
    matching_cosine_p05: float  # 5th percentile of a caption's cosine to its own picture
    other_cosine_p95: float  # 95th percentile of its cosine to other pictures


def clip_quality(clip: Path, scenes: int = 1000) -> ClipQuality:
    held_out = [scene_at("heldout", index) for index in range(scenes)]
    images = embedder.embed_images(str(clip), [scene.render() for scene in held_out])
    colour, shape, recall = {}, {}, {}
    for language in LANGUAGES:
        colour[language] = _zero_shot(clip, images, held_out, "colour", list(COLOURS), language)
        shape[language] = _zero_shot(clip, images, held_out, "shape", list(SHAPES), language)
        texts = embedder.embed_texts(str(clip), [scene.caption(language) for scene in held_out])
        similarity = texts @ images.T
        own = np.diag(similarity)
        rank = (similarity > own[:, None]).sum(axis=1)  # pictures closer than its own
        recall[language] = float((rank < 10).mean())
        if language == "en":
            others = similarity[~np.eye(len(held_out), dtype=bool)]
            matching, other = float(np.percentile(own, 5)), float(np.percentile(others, 95))
    return ClipQuality(colour, shape, recall, matching, other)


def _zero_shot(
    clip: Path,
    images: np.ndarray,
    scenes: Sequence[Scene],
    attribute: str,
    names: list[str],
    language: str,
) -> float:
    rng = random.Random(f"zero-shot {attribute}")  # prompts from neither split's scenes
    prompts = []
    for name in names:
        for _ in range(ENSEMBLE):
            base = scene_at("train", rng.randrange(10**9))
            scene = (
                replace(base, colour=name) if attribute == "colour" else replace(base, shape=name)
            )
            if scene.background == scene.colour:  # never drawn: a thing on its own colour
                scene = replace(scene, background=next(c for c in COLOURS if c != scene.colour))
            prompts.append(scene.caption(language))
    texts = embedder.embed_texts(str(clip), prompts).reshape(len(names), ENSEMBLE, -1).mean(1)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    predicted = (images @ texts.T).argmax(axis=1)
    truth = np.array([names.index(getattr(scene, attribute)) for scene in scenes])
    return float((predicted == truth).mean())


def render_captions(
    pipe: object, prompts: Sequence[str], *, guidance: float, steps: int, batch: int = 32
) -> list[Image.Image]:
    """64×64 pictures of `prompts` from a StableDiffusionPipeline, prompt n seeded with n:
    the renders bench/models.py and the shipped-model test judge."""
    import torch

    pictures: list[Image.Image] = []
    for start in range(0, len(prompts), batch):
        chunk = list(prompts[start : start + batch])
        generators = [torch.Generator().manual_seed(start + n) for n in range(len(chunk))]
        pictures += pipe(chunk, num_inference_steps=steps, guidance_scale=guidance,  # type: ignore[operator]
                         height=64, width=64, generator=generators).images  # fmt: skip
    return pictures


@dataclass(frozen=True)
class GenerationQuality:
    clip_colour: float  # fraction whose colour the CLIP judges as prompted
    clip_shape: float
    pixel_colour: float  # the commonest palette colour after the background's is the prompt's
    pixel_background: float


def generation_quality(
    pictures: Sequence[Image.Image], scenes: Sequence[Scene], clip: Path
) -> GenerationQuality:
    """Judge pictures rendered from `scenes`' captions."""
    images = embedder.embed_images(str(clip), list(pictures))
    colour = _zero_shot(clip, images, scenes, "colour", list(COLOURS), "en")
    shape = _zero_shot(clip, images, scenes, "shape", list(SHAPES), "en")
    pixel = [_pixel_colours(picture) for picture in pictures]
    return GenerationQuality(
        clip_colour=colour,
        clip_shape=shape,
        pixel_colour=float(np.mean([p[1] == s.colour for p, s in zip(pixel, scenes, strict=True)])),
        pixel_background=float(
            np.mean([p[0] == s.background for p, s in zip(pixel, scenes, strict=True)])
        ),
    )


def _pixel_colours(picture: Image.Image) -> tuple[str, str]:
    """(background, thing): the two commonest palette colours, each pixel to its nearest."""
    names = list(COLOURS)
    palette = np.array([COLOURS[name][0] for name in names], dtype=np.float32)
    pixels = np.asarray(picture.convert("RGB"), dtype=np.float32).reshape(-1, 3)
    nearest = ((pixels[:, None, :] - palette[None]) ** 2).sum(-1).argmin(1)
    counts = np.bincount(nearest, minlength=len(names))
    first, second = np.argsort(-counts)[:2]
    return names[first], names[second]


def calibrate(clip: Path, scenes: int = 400) -> dict[str, float]:
    """The cosine bounds the site should use with this CLIP, from held-out scenes.

    relevance_cosine: a search by words hides vector matches below it. Queries are what people
    type, two words ("red circle", "红色圆形"): the bound keeps 90 % of the pictures that have
    both. near_duplicate_cosine: the same scene drawn with other small offsets counts as a
    near-duplicate; the bound keeps 90 % of those pairs, and at least every pair of different
    scenes but one in a hundred stays under it. Rounded to 0.01, so the figure (stored in the
    model's config) is the same on any machine.
    """
    held_out = [scene_at("heldout", index) for index in range(scenes)]
    images = embedder.embed_images(str(clip), [scene.render() for scene in held_out])
    pairs = sorted({(scene.colour, scene.shape) for scene in held_out})
    queries = [f"{colour} {shape}" for colour, shape in pairs]
    queries += [f"{COLOURS[colour][1]}色{SHAPES[shape][1]}" for colour, shape in pairs]
    texts = embedder.embed_texts(str(clip), queries)
    relevant = np.array(
        [[(scene.colour, scene.shape) == pair for scene in held_out] for pair in pairs * 2]
    )
    similarity = texts @ images.T
    relevance = float(np.percentile(similarity[relevant], 10))
    twins = [replace(scene, jitter=scene.jitter + 1) for scene in held_out]
    twin_images = embedder.embed_images(str(clip), [scene.render() for scene in twins])
    same = (images * twin_images).sum(axis=1)
    others = (images @ images.T)[~np.eye(scenes, dtype=bool)]
    duplicate = max(float(np.percentile(same, 10)), float(np.percentile(others, 99)))
    return {
        "relevance_cosine": round(relevance, 2),
        "near_duplicate_cosine": min(0.99, round(duplicate, 2)),
    }
