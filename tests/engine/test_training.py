"""Training the scene models: seeded and deterministic, saved where the site loads them from.

Tiny plans (a few steps over a few scenes) check the mechanics; tests/engine/test_shipped_models
checks what the real training produced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine import embedder
from engine.tiny_models import CLIP_WEIGHTS_FILE, StableDiffusionPipeline
from engine.training.clip import ClipTraining, build_scenes_clip
from engine.training.common import THREADS, deterministic, warmup_cosine
from engine.training.diffusion import DiffusionTraining, build_scenes_sd
from engine.weights import weights_digest

CLIP_PLAN = ClipTraining(steps=3, batch_size=32, scenes=64, warmup=1)
SD_PLAN = DiffusionTraining(
    scenes=32, vae_steps=2, vae_batch_size=4, unet_steps=2, unet_batch_size=4, warmup=1,
    finetune_steps=1,
)  # fmt: skip


def test_two_clip_trainings_give_the_same_bytes_and_a_loadable_model(tmp_path: Path) -> None:
    first = build_scenes_clip(tmp_path / "one", CLIP_PLAN)
    second = build_scenes_clip(tmp_path / "two", CLIP_PLAN)
    assert weights_digest(first) == weights_digest(second)
    other = build_scenes_clip(tmp_path / "three", ClipTraining(**{**vars(CLIP_PLAN), "seed": 1}))
    assert weights_digest(other) != weights_digest(first)
    texts = embedder.embed_texts(str(first), ["a red circle", "蓝色背景上的猫"])
    assert texts.shape == (2, 512)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_only_tokens_the_captions_use_have_embeddings(tmp_path: Path) -> None:
    """The rest stay zero through training (no gradient, no weight decay): the file compresses."""
    folder = build_scenes_clip(tmp_path / "clip", CLIP_PLAN)
    rows = load_file(folder / CLIP_WEIGHTS_FILE)["token_embedding.weight"]
    used = int((rows.abs().sum(dim=1) > 0).sum())
    assert 50 < used < 200  # colour, shape, place words and Chinese bytes; of 49,408


def test_two_sd_trainings_give_the_same_bytes_and_diffusers_loads_them(tmp_path: Path) -> None:
    base, outline = build_scenes_sd(tmp_path / "base", tmp_path / "outline", SD_PLAN)
    again, _ = build_scenes_sd(tmp_path / "base2", tmp_path / "outline2", SD_PLAN)
    assert weights_digest(base) == weights_digest(again)
    assert weights_digest(base) != weights_digest(outline)
    pipe = StableDiffusionPipeline.from_pretrained(outline)
    assert pipe.vae.config.scaling_factor > 0  # measured on the scenes, not SD's 0.18215
    assert pipe.unet.config.sample_size == 16  # the VAE's factor 4 at 64 pixels
    picture = pipe("a red circle", num_inference_steps=2, height=64, width=64).images[0]
    assert picture.size == (64, 64)
    # The fine-tune changed only the UNet.
    assert (outline / "vae").exists()
    for part in ("vae", "text_encoder"):
        assert weights_digest(base / part) == weights_digest(outline / part)


def test_deterministic_restores_the_callers_settings() -> None:
    threads, was = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)  # other tests' render settings may have set it
    try:
        with deterministic(0):
            assert torch.get_num_threads() == THREADS
            assert torch.are_deterministic_algorithms_enabled()
        assert torch.get_num_threads() == threads
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(was)


@pytest.mark.parametrize(("step", "factor"), [(0, 0.1), (9, 1.0), (10, 1.0), (55, 0.5), (100, 0.0)])
def test_warmup_then_cosine(step: int, factor: float) -> None:
    assert warmup_cosine(step, steps=100, warmup=10) == pytest.approx(factor, abs=1e-9)


def test_blur_augmentation_blurs_only_the_second_half_and_is_off_by_default() -> None:
    import torch

    from engine.training.clip import ClipTraining, blurred_half

    assert ClipTraining().blur_sigma == 0.0  # the shipped CLIP was trained without it
    images = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(blurred_half(images, 0.0), images)
    out = blurred_half(images, 1.5)
    assert out.shape == images.shape and torch.equal(out[:4], images[:4])
    # A blur keeps the mean and lowers the pixel-to-pixel variation of noise.
    assert torch.allclose(out[4:].mean(), images[4:].mean(), atol=0.01)
    assert out[4:].diff(dim=-1).abs().mean() < images[4:].diff(dim=-1).abs().mean()


def test_the_vae_loss_weighs_a_things_pixels_above_the_background() -> None:
    """The same error costs more on a drawn thing than on the plain background around it."""
    from engine.training.diffusion import _reconstruction_loss

    scene = torch.full((1, 3, 8, 8), -1.0)  # a black background …
    scene[..., 2:4, 2:4] = 1.0  # … under a white thing of 4 pixels
    on_thing, on_background = scene.clone(), scene.clone()
    on_thing[..., 2, 2] -= 0.5
    on_background[..., 6, 6] += 0.5
    plan = DiffusionTraining()
    assert _reconstruction_loss(scene, scene, plan) == 0.0
    thing_loss = _reconstruction_loss(on_thing, scene, plan)
    background_loss = _reconstruction_loss(on_background, scene, plan)
    assert thing_loss == pytest.approx(background_loss * (1 + plan.vae_foreground_weight))
    plain = DiffusionTraining(vae_foreground_weight=0.0, vae_l1_weight=0.0)
    assert _reconstruction_loss(on_thing, scene, plain) == pytest.approx(0.75 / 192)
