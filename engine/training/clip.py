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
from open_clip.loss import ClipLoss  # noqa: E402

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
    seed: int = 0


def build_scenes_clip(path: Path, plan: ClipTraining = ClipTraining()) -> Path:
    """Train (once) and save the scenes CLIP at `path`; return `path`."""
    return build_atomically(Path(path), CLIP_CONFIG_FILE, lambda tmp: _train(tmp, plan))


def _train(target: Path, plan: ClipTraining) -> None:
    register_clip_config(SCENES_CLIP_NAME, SCENES_CLIP_CONFIG)
    tokenizer = open_clip.get_tokenizer(SCENES_CLIP_NAME)
    scenes = [family_scene(index) for index in range(plan.scenes)]
    captions = [c for scene in scenes for language in LANGUAGES for c in scene.captions(language)]
    variants = len(captions) // plan.scenes  # every scene has as many (3 English, 2 Chinese)
    tokens = tokenized(tokenizer, captions).view(plan.scenes, variants, -1)
    drawn = tqdm(
        scenes, desc="drawing scenes", unit="scene", leave=False, disable=len(scenes) < 999
    )
    pixels = torch.from_numpy(np.stack([np.asarray(scene.render()) for scene in drawn]))
    with deterministic(plan.seed):
        model = open_clip.create_model(SCENES_CLIP_NAME, pretrained=None)
        _only_used_tokens(model, tokens)
        mean, std = _normalisation(model)
        loss_fn = ClipLoss()
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
            variant = torch.randint(variants, (len(index),))
            images = pixels[index].permute(0, 3, 1, 2).float().div(255)
            images = (blurred_half(images, plan.blur_sigma) - mean) / std
            image_features, text_features, scale = model(images, tokens[index, variant])
            loss = loss_fn(image_features, text_features, scale)
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


def family_scene(index: int) -> Scene:
    """Training scene `index`: families of len(SHAPES) scenes alike in all but their shape."""
    family, shape = divmod(index, len(SHAPES))
    return replace(scene_at("train", family), shape=list(SHAPES)[shape])


def _batch(scenes: int, size: int) -> torch.Tensor:
    """Half the batch whole families, half scenes at random.

    With random batches, colour, background and place told nearly every pair apart, and the
    CLIP trained so never learnt shapes (zero-shot shape accuracy 0.14, chance 0.125): a family
    in one batch can be told apart by shape alone."""
    kinds = len(SHAPES)
    families = torch.randperm(scenes // kinds)[: size // 2 // kinds]
    whole = (families[:, None] * kinds + torch.arange(kinds)[None, :]).flatten()
    return torch.cat([whole, torch.randint(scenes, (size - len(whole),))])


def _only_used_tokens(model: torch.nn.Module, tokens: torch.Tensor) -> None:
    """Zero every row of the 49,408-token embedding that no caption uses (about 110 are).

    Those rows never get a gradient, so with Adam and no weight decay they stay zero: the
    weights file is 25 MB on disk, but git stores it compressed to a fraction of that."""
    embedding = cast(torch.nn.Embedding, model.token_embedding).weight
    used = torch.zeros(embedding.shape[0], dtype=torch.bool)
    used[tokens.unique()] = True
    with torch.no_grad():
        embedding[~used] = 0.0


def _normalisation(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and std the model's own preprocess normalises with (as engine.embedder does)."""
    config = open_clip.get_model_preprocess_cfg(model)
    mean = torch.tensor(config["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(config["std"]).view(1, 3, 1, 1)
    return mean, std
