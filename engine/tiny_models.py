"""Tiny, offline, seeded stand-ins for Stable Diffusion and CLIP.

No model hub is reachable here, yet tests, CI and `make run` must go through the same
`from_pretrained` / open_clip loading paths that real checkpoints take. So we build SD- and
CLIP-shaped models with random weights from a fixed seed and save them the way real ones are
saved. Rebuilding from the same seed (and library versions) gives byte-identical files.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from engine.torch_compat import ensure_torchvision

ensure_torchvision()

import open_clip  # noqa: E402

# Concrete module paths rather than `from diffusers import ...`: diffusers' lazy top-level
# module shows type checkers its attribute-less dummy classes.
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL  # noqa: E402
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel  # noqa: E402
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import (  # noqa: E402
    StableDiffusionPipeline,
)
from diffusers.schedulers.scheduling_pndm import PNDMScheduler  # noqa: E402
from open_clip.tokenizer import bytes_to_unicode, default_bpe  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

from engine.weights import open_permissions  # noqa: E402

TINY_CLIP_NAME = "seedbank-tiny-clip"
TINY_CLIP_CONFIG: dict[str, Any] = {
    # 512 like ViT-B-32, so the pgvector column keeps its size when a real CLIP replaces this one.
    "embed_dim": 512,
    # open_clip's vision tower takes head_width, not heads: 64 / 32 gives 2 heads.
    "vision_cfg": {"image_size": 64, "patch_size": 16, "width": 64, "layers": 2, "head_width": 32},
    "text_cfg": {
        "context_length": 77,
        "vocab_size": 49408,
        "width": 64,
        "heads": 2,
        "layers": 2,
    },
}
CLIP_CONFIG_FILE = "open_clip_config.json"
CLIP_WEIGHTS_FILE = "open_clip_model.safetensors"

VARIANTS = ("base", "finetune")
# SD-1.5's scheduler_config.json: the classic PNDM default that most archived prompts used.
SD15_SCHEDULER: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "set_alpha_to_one": False,
    "clip_sample": False,
}
# At default init the UNet's noise prediction is small (std ~0.3) and barely hears the prompt
# (two prompts differ by ~0.02), so renders change with the seed but not with the prompt. These
# gains, found by looking at renders, make the prediction unit-sized and the cross-attention
# loud enough that a new prompt visibly changes the picture; the VAE gain adds contrast.
UNET_CONV_OUT_GAIN = 3.0
CROSS_ATTENTION_OUT_GAIN = 20.0
VAE_CONV_OUT_GAIN = 1.5
# How far the "finetune" UNet drifts from the base: enough to see, related enough to compare.
FINETUNE_NOISE = 0.5


def build_tiny_sd(path: Path, *, seed: int = 0, variant: str = "base") -> Path:
    """Build (once) a tiny SD-1.x-shaped diffusers folder at `path`; return `path`."""
    if variant not in VARIANTS:
        raise ValueError(
            f"Unknown tiny SD variant {variant!r}; choose one of {', '.join(VARIANTS)}."
        )
    return build_atomically(
        Path(path), "model_index.json", lambda tmp: _write_tiny_sd(tmp, seed, variant)
    )


def build_tiny_clip(path: Path, *, seed: int = 0) -> Path:
    """Build (once) a tiny open_clip folder (config json + safetensors) at `path`; return it."""
    return build_atomically(Path(path), CLIP_CONFIG_FILE, lambda tmp: _write_tiny_clip(tmp, seed))


def build_atomically(path: Path, marker: str, write: Callable[[Path], None]) -> Path:
    """Write into a temp sibling, then rename: readers never see a half-written model."""
    if (path / marker).is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.building-", dir=path.parent))
    try:
        write(tmp)
        open_permissions(tmp)
        try:
            # rename replaces only an absent or empty target: a finished model is never clobbered.
            os.rename(tmp, path)
        except OSError:
            if not (path / marker).is_file():  # not a racing builder that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _write_tiny_sd(target: Path, seed: int, variant: str) -> None:
    # fork_rng: seeding here must not reset the caller's global random stream.
    with torch.random.fork_rng(devices=[]):
        pipe = _tiny_sd_pipeline(seed, variant)
    with _quiet_saving():
        pipe.save_pretrained(target, safe_serialization=True)


def _tiny_sd_pipeline(seed: int, variant: str) -> StableDiffusionPipeline:
    # Each component gets its own seed offset so one component's shape change leaves others alone.
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,  # 64px / VAE factor 8: the pipeline's default size becomes 64x64
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 32, 32, 32),
        norm_num_groups=16,  # the default 32 does not divide 16 channels
        latent_channels=4,
        sample_size=64,
    )
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=32,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        )
    )
    with torch.no_grad():
        vae.decoder.conv_out.weight.mul_(VAE_CONV_OUT_GAIN)
        unet.conv_out.weight.mul_(UNET_CONV_OUT_GAIN)
        for name, module in unet.named_modules():
            if name.endswith("attn2.to_out.0"):  # attn2 is the cross-attention to the prompt
                module.weight.mul_(CROSS_ATTENTION_OUT_GAIN)
        if variant == "finetune":
            _perturb(unet, seed=seed + 1000, scale=FINETUNE_NOISE)
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=_clip_tokenizer(),
        unet=unet,
        # from_config, not the constructor: it keeps keys PNDM ignores (clip_sample) in the saved
        # config, and DDIM built from that config then keeps SD's clip_sample=False.
        scheduler=PNDMScheduler.from_config(SD15_SCHEDULER),
        # None is the documented way to leave these out; diffusers' annotations omit it.
        safety_checker=None,  # type: ignore[arg-type]
        feature_extractor=None,  # type: ignore[arg-type]
        requires_safety_checker=False,
    )


@contextmanager
def _quiet_saving() -> Iterator[None]:
    # transformers draws a "Writing model shards" bar on stderr: noise in test and worker logs.
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _perturb(module: torch.nn.Module, *, seed: int, scale: float) -> None:
    """Add seeded noise proportional to each tensor's spread, like a (very crude) fine-tune."""
    generator = torch.Generator("cpu").manual_seed(seed)
    for param in module.parameters():
        spread = param.std() if param.numel() > 1 else param.abs()
        noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
        param.add_(noise * spread * scale)


def _clip_tokenizer() -> CLIPTokenizer:
    """CLIP's real BPE tokenizer, from the vocabulary open_clip ships (no hub download)."""
    vocab, merges = clip_vocab()
    # SD pads and truncates prompts to model_max_length; without it transformers uses 1e30.
    # transformers annotates merges as list[str], but its tokenizers backend wants pairs.
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)  # type: ignore[arg-type]


def clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """vocab.json and merges.txt contents, built as open_clip.SimpleTokenizer builds them.

    Built the same way, token ids match open_clip's for normal text.
    """
    lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")
    merges = [(a, b) for a, b in (line.split() for line in lines[1 : 49152 - 256 - 2 + 1])]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols]
    tokens += [a + b for a, b in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}, merges


def _write_tiny_clip(target: Path, seed: int) -> None:
    register_clip_config(TINY_CLIP_NAME, TINY_CLIP_CONFIG)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.create_model(TINY_CLIP_NAME, pretrained=None)
    write_clip_folder(model, TINY_CLIP_NAME, TINY_CLIP_CONFIG, target)


def write_clip_folder(
    model: torch.nn.Module, name: str, model_cfg: dict[str, Any], target: Path
) -> None:
    """Save an open_clip model as its hub exports are laid out (config json + safetensors),
    with the name its config is registered under."""
    from safetensors.torch import save_file

    state = {key: tensor.contiguous() for key, tensor in model.state_dict().items()}
    save_file(state, str(target / CLIP_WEIGHTS_FILE))
    config = {
        "model_name": name,
        "model_cfg": model_cfg,
        "preprocess_cfg": dict(open_clip.get_model_preprocess_cfg(model)),
    }
    (target / CLIP_CONFIG_FILE).write_text(
        json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def register_clip_config(name: str, model_cfg: dict[str, Any]) -> None:
    """Make `name` known to open_clip.create_model / get_tokenizer without a config file."""
    from open_clip import factory

    factory._MODEL_CONFIGS[name] = json.loads(json.dumps(model_cfg))  # a private copy
