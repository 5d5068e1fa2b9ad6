"""A tiny CLIP trained contrastively on captioned scenes, in English and Chinese.

open_clip's own model and loss (ClipLoss), a custom config registered like any open_clip
architecture, saved in open_clip's hub layout: engine.embedder loads it as it loads a real one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from tqdm import tqdm

from engine.torch_compat import ensure_torchvision

ensure_torchvision()

import open_clip  # noqa: E402

from engine.scenes import LANGUAGES, SHAPES, Scene, scene_at  # noqa: E402
from engine.tiny_models import (  # noqa: E402
    CLIP_CONFIG_FILE,
    build_atomically,
    register_clip_config,
    write_clip_folder,
)
from engine.training.common import (  # noqa: E402
    deterministic,
    step,
    tokenized,
    warmup_cosine,
)
from engine.training.evaluate import calibrate  # noqa: E402

SCENES_CLIP_NAME = "seedbank-scenes-clip"
SCENES_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 512,  # the pgvector column's size, as a real ViT-B/32 has
    # A small ResNet (open_clip's ModifiedResNet, attention-pooled): a ViT of the same cost
    # (8-pixel patches, width 64) learnt colours and places but not shapes (zero-shot 0.14).
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "head_width": 32},
    # 48 tokens: the longest Chinese caption is 42 of CLIP's byte-level BPE tokens.
    "text_cfg": {"context_length": 48, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@dataclass(frozen=True)
class ClipTraining:
    steps: int = 1500
    batch_size: int = 128
    learning_rate: float = 1e-3
    warmup: int = 150
    scenes: int = 20_000  # drawn once; each step pairs them with a random caption variant
    # Half of each batch blurred (Gaussian, sigma uniform up to this); 0 = off, as the shipped
    # CLIP was trained. Measured (issue #14): trained sharp, the CLIP tells shapes at 0.67 on
    # held-out scenes but 0.41 under a blur of sigma 1, and generated pictures are soft; at 1.5
    # it tells 0.62 sharp, 0.58 blurred, and judges the shipped VAE's reconstructions at 0.32
    # for shape (0.19 sharp-trained) — but the shipped model's generations still at 0.14.
    blur_sigma: float = 0.0
    # The share of pairs whose caption is what people type (Scene.search_captions: "cat",
    # "猫", "红色", "a red cat", "red 猫"); the rest are full captions, two in seven mixed.
    # 0 = full captions only, as the CLIP before issue #27 was trained.
    search_captions: float = 0.5
    # Captions of words the CLIP never learnt (random unused token ids: zero embedding rows,
    # as an unknown word has at search time), added to each batch with no picture: every
    # picture must score them lower than its own caption, so a nonsense query is near nothing
    # (issue #27: "qwxzv florbin gnark" scored 0.54 where "red circle" scored 0.63).
    unknown_captions: int = 16
    seed: int = 0


def build_scenes_clip(path: Path, plan: ClipTraining = ClipTraining()) -> Path:
    """Train (once) and save the scenes CLIP at `path`; return `path`."""
    return build_atomically(Path(path), CLIP_CONFIG_FILE, lambda tmp: _train(tmp, plan))


def _train(target: Path, plan: ClipTraining) -> None:
    register_clip_config(SCENES_CLIP_NAME, SCENES_CLIP_CONFIG)
    tokenizer = open_clip.get_tokenizer(SCENES_CLIP_NAME)
    scenes = [family_scene(index) for index in range(plan.scenes)]
    full = [training_captions(scene) for scene in scenes]
    searched = [scene.search_captions() for scene in scenes]
    # Every scene has as many of each (3 English, 2 Chinese, 2 mixed; 10 typed).
    full_count, search_count = len(full[0]), len(searched[0])
    captions = [c for whole, typed in zip(full, searched, strict=True) for c in whole + typed]
    tokens = tokenized(tokenizer, captions).view(plan.scenes, full_count + search_count, -1)
    drawn = tqdm(
        scenes, desc="drawing scenes", unit="scene", leave=False, disable=len(scenes) < 999
    )
    pixels = torch.from_numpy(np.stack([np.asarray(scene.render()) for scene in drawn]))
    with deterministic(plan.seed):
        model = open_clip.create_model(SCENES_CLIP_NAME, pretrained=None)
        used = _only_used_tokens(model, tokens)
        unknown = torch.nonzero(~used).flatten()
        mean, std = _normalisation(model)
        optimiser = torch.optim.AdamW(
            model.parameters(), lr=plan.learning_rate, betas=(0.9, 0.98), eps=1e-6,
            weight_decay=0.0,  # unused token rows stay exactly zero (see _only_used_tokens)
        )  # fmt: skip
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: warmup_cosine(step, steps=plan.steps, warmup=plan.warmup)
        )
        model.train()
        bar = tqdm(range(plan.steps), desc="training CLIP", unit="step")
        for _ in bar:
            index = _batch(plan.scenes, plan.batch_size)
            variant = _variants(plan, full_count, search_count)
            images = pixels[index].permute(0, 3, 1, 2).float().div(255)
            images = (blurred_half(images, plan.blur_sigma) - mean) / std
            texts = torch.cat([tokens[index, variant], _unknown(tokenizer, unknown, plan)])
            image_features, text_features, scale = model(images, texts)
            loss = _loss(image_features, text_features, scale)
            step(loss, optimiser, schedule)
            with torch.no_grad():  # CLIP's clamp: the temperature may not pass 100
                model.logit_scale.clamp_(0, np.log(100))
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        model.eval()
    write_clip_folder(model, SCENES_CLIP_NAME, SCENES_CLIP_CONFIG, target)
    _declare_bounds(target)


def _declare_bounds(target: Path) -> None:
    """Store the cosine bounds measured on held-out scenes in the model's own config (under
    "seedbank"), where the site reads them (search.selectors.embedding_model_bounds)."""
    config_file = target / CLIP_CONFIG_FILE
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["seedbank"] = calibrate(target)
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def blurred_half(images: torch.Tensor, max_sigma: float) -> torch.Tensor:
    """The second half of `images` blurred, each by its own Gaussian sigma in [0, max_sigma]."""
    if max_sigma <= 0:
        return images
    half = len(images) // 2
    sigmas = torch.rand(len(images) - half) * max_sigma
    radius = int(np.ceil(3 * max_sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernels = torch.exp(-(offsets[None, :] ** 2) / (2 * sigmas[:, None].clamp(min=1e-3) ** 2))
    kernels = kernels / kernels.sum(dim=1, keepdim=True)
    blurred = images[half:]
    batch, channels, height, width = blurred.shape
    # Separable: one depthwise pass along rows, one along columns, a kernel per picture.
    flat = blurred.reshape(1, batch * channels, height, width)
    weights = kernels.repeat_interleave(channels, dim=0)[:, None, :]
    padding = (radius, radius, radius, radius)
    flat = torch.nn.functional.pad(flat, padding, mode="replicate")
    flat = torch.nn.functional.conv2d(flat, weights[:, :, None, :], groups=batch * channels)
    flat = torch.nn.functional.conv2d(flat, weights[:, :, :, None], groups=batch * channels)
    return torch.cat([images[:half], flat.reshape(batch, channels, height, width)])


def training_captions(scene: Scene) -> list[str]:
    """The full captions of a scene in both languages, and two that mix them (a record's
    prompt may): an English caption with the Chinese phrase, a Chinese one with the English.
    A Chinese caption is up to 42 tokens, so two whole captions would not fit in 48."""
    english, chinese = (scene.captions(language) for language in LANGUAGES)
    typed = scene.search_captions()
    return english + chinese + [f"{english[-1]}, {typed[5]}", f"{chinese[0]}, {typed[4]}"]


def family_scene(index: int) -> Scene:
    """Training scene `index`: families of len(SHAPES) scenes alike in all but their shape."""
    family, shape = divmod(index, len(SHAPES))
    return replace(scene_at("train", family), shape=list(SHAPES)[shape])


# Scene.search_captions' order: thing, thing, colour, colour, then phrases that name both.
_COLOUR_ONLY = (2, 3)


def _variants(plan: ClipTraining, full_count: int, search_count: int) -> torch.Tensor:
    """Each pair's caption: a full one, or (a `search_captions` share) one people type. The
    first half of a batch is families (_batch), eight scenes alike but for the thing: a
    colour word cannot tell them apart, so they get the typed captions that name the thing."""
    size = plan.batch_size
    typed = torch.rand(size) < plan.search_captions
    naming = torch.tensor([n for n in range(search_count) if n not in _COLOUR_ONLY])
    any_typed = torch.randint(search_count, (size,))
    thing_typed = naming[torch.randint(len(naming), (size,))]
    family = torch.arange(size) < _family_rows(size)
    chosen = torch.where(family, thing_typed, any_typed)
    return torch.where(typed, full_count + chosen, torch.randint(full_count, (size,)))


def _unknown(tokenize: Any, unknown: torch.Tensor, plan: ClipTraining) -> torch.Tensor:
    """`unknown_captions` captions of one to eight unknown tokens, as the tokenizer frames them."""
    rows = torch.zeros(plan.unknown_captions, SCENES_CLIP_CONFIG["text_cfg"]["context_length"],
                       dtype=torch.long)  # fmt: skip
    lengths = torch.randint(1, 9, (plan.unknown_captions,))
    picks = unknown[torch.randint(len(unknown), (plan.unknown_captions, 8))]
    for row, length in enumerate(lengths.tolist()):
        rows[row, 0] = tokenize.sot_token_id
        rows[row, 1 : length + 1] = picks[row, :length]
        rows[row, length + 1] = tokenize.eot_token_id
    return rows


def _loss(image_features: torch.Tensor, text_features: torch.Tensor, scale: torch.Tensor):
    """open_clip's ClipLoss (symmetric cross-entropy over the batch), where the texts past the
    pictures (unknown words) are extra wrong answers for every picture."""
    pairs = len(image_features)
    logits = scale * image_features @ text_features.T
    labels = torch.arange(pairs)
    to_text = torch.nn.functional.cross_entropy(logits, labels)
    to_image = torch.nn.functional.cross_entropy(logits[:, :pairs].T, labels)
    return (to_text + to_image) / 2


def _family_rows(size: int) -> int:
    kinds = len(SHAPES)
    return size // 2 // kinds * kinds


def _batch(scenes: int, size: int) -> torch.Tensor:
    """Half the batch whole families, half scenes at random.

    With random batches, colour, background and place told nearly every pair apart, and the
    CLIP trained so never learnt shapes (zero-shot shape accuracy 0.14, chance 0.125): a family
    in one batch can be told apart by shape alone."""
    kinds = len(SHAPES)
    families = torch.randperm(scenes // kinds)[: size // 2 // kinds]
    whole = (families[:, None] * kinds + torch.arange(kinds)[None, :]).flatten()
    return torch.cat([whole, torch.randint(scenes, (size - len(whole),))])


def _only_used_tokens(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Zero every row of the 49,408-token embedding that no caption uses (about 130 are), and
    keep them zero; return which rows are used.

    Their gradient is masked (the unknown-word captions pass through them), so with Adam and no
    weight decay they stay zero: the weights file is 25 MB on disk, but git stores it
    compressed to a fraction of that, and a word no caption has is a zero row at search time
    as in training."""
    embedding = cast(torch.nn.Embedding, model.token_embedding).weight
    used = torch.zeros(embedding.shape[0], dtype=torch.bool)
    used[tokens.unique()] = True
    with torch.no_grad():
        embedding[~used] = 0.0
    keep = used[:, None].to(embedding.dtype)
    embedding.register_hook(lambda grad: grad * keep)
    return used


def _normalisation(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and std the model's own preprocess normalises with (as engine.embedder does)."""
    config = open_clip.get_model_preprocess_cfg(model)
    mean = torch.tensor(config["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(config["std"]).view(1, 3, 1, 1)
    return mean, std
