"""Tiny, offline, seeded SDXL-shaped models (a base and a refiner) and a LoRA for them.

For tests only: the weights are random (seeded), so the pictures mean nothing; what matters is
that every part has SDXL's shape — two text encoders (a CLIPTextModel and a
CLIPTextModelWithProjection whose pooled output conditions the UNet), a UNet with
`addition_embed_type="text_time"` reading the size and crop micro-conditioning, and a refiner
that conditions on an aesthetic score instead of the target size — and that they load through
the same `from_pretrained` path as real SDXL checkpoints. Rebuilding from the same seed (and
library versions) gives byte-identical files (about 20 MB, most of it CLIP's vocabulary in two
tokenizers and two embedding tables); a 64x64 render takes a fraction of a second on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.tiny_models import (
    CROSS_ATTENTION_OUT_GAIN,
    UNET_CONV_OUT_GAIN,
    VAE_CONV_OUT_GAIN,
    _clip_tokenizer,
    _quiet_saving,
    build_atomically,
)
from engine.torch_compat import ensure_torchvision

ensure_torchvision()

# Concrete module paths rather than `from diffusers import ...`: diffusers' lazy top-level
# module shows type checkers its attribute-less dummy classes.
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL  # noqa: E402
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel  # noqa: E402
from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl import (  # noqa: E402
    StableDiffusionXLPipeline,
)
from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img import (  # noqa: E402
    StableDiffusionXLImg2ImgPipeline,
)
from diffusers.schedulers.scheduling_euler_discrete import EulerDiscreteScheduler  # noqa: E402
from transformers import (  # noqa: E402
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
)

SDXL_VARIANTS = ("base", "refiner")
# SDXL 1.0's scheduler_config.json (stabilityai/stable-diffusion-xl-base-1.0).
SDXL_SCHEDULER: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "interpolation_type": "linear",
    "timestep_spacing": "leading",
    "steps_offset": 1,
    "use_karras_sigmas": False,
    "clip_sample": False,
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
}
SDXL_VAE_SCALING = 0.13025  # SDXL's VAE scaling factor (SD 1.x: 0.18215)
# SDXL's hidden sizes are 768 (CLIP ViT-L) and 1280 (OpenCLIP bigG); these are 16 and 32, so
# the UNet's cross-attention reads 16 + 32 = 48 features per token, as SDXL's reads 2048. Most
# of the files' bytes are the two 49408-token embedding tables (CLIP's real vocabulary, which
# the real tokenizer needs): hence the narrow encoders.
TEXT_HIDDEN = 16
TEXT_2_HIDDEN = 32
TEXT_2_PROJECTION = 16  # bigG's pooled projection (SDXL: 1280)
TEXT_LAYERS = 3  # clip skip needs layers to skip; SDXL already reads the penultimate one
TIME_EMBED = 8  # addition_time_embed_dim (SDXL: 256)
# The base UNet reads 6 micro-conditioning numbers (original h, w, crop top, left, target h, w),
# the refiner 5 (original h, w, crop top, left, aesthetic score), each embedded in TIME_EMBED
# features, plus the pooled text projection.
BASE_TIME_IDS = 6
REFINER_TIME_IDS = 5
# The UNet's added-conditioning projection starts small enough that sizes and crops would move
# the pixels by less than a level; this gain makes each micro-conditioning change visible.
ADD_EMBEDDING_GAIN = 8.0


def build_tiny_sdxl(path: Path, *, seed: int = 0, variant: str = "base") -> Path:
    """Build (once) a tiny SDXL-shaped diffusers folder (base or refiner) at `path`."""
    if variant not in SDXL_VARIANTS:
        raise ValueError(
            f"Unknown tiny SDXL variant {variant!r}; choose one of {', '.join(SDXL_VARIANTS)}."
        )
    return build_atomically(
        Path(path), "model_index.json", lambda tmp: _write_tiny_sdxl(tmp, seed, variant)
    )


def _write_tiny_sdxl(target: Path, seed: int, variant: str) -> None:
    # fork_rng: seeding here must not reset the caller's global random stream.
    with torch.random.fork_rng(devices=[]):
        pipe = _tiny_sdxl_pipeline(seed, variant)
    with _quiet_saving():
        pipe.save_pretrained(target, safe_serialization=True)


def _text_config(hidden: int, projection: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=TEXT_LAYERS,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=projection,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )


def _unet(cross_attention_dim: int, time_ids: int) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=8,  # 64px / VAE factor 8
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,  # as SDXL's transformer blocks
        cross_attention_dim=cross_attention_dim,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED,
        projection_class_embeddings_input_dim=TIME_EMBED * time_ids + TEXT_2_PROJECTION,
    )


def _tiny_sdxl_pipeline(seed: int, variant: str) -> Any:
    # Each component has its own seed offset, so one component's shape leaves the others alone;
    # the refiner shares the base's VAE and second text encoder (offsets 1 and 3), as SDXL's do.
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
        scaling_factor=SDXL_VAE_SCALING,
        force_upcast=True,  # SDXL's VAE config says so: fp16 decodes run in fp32
    )
    torch.manual_seed(seed + 3)
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(TEXT_2_HIDDEN, TEXT_2_PROJECTION))
    refiner = variant == "refiner"
    if refiner:
        torch.manual_seed(seed + 100)
        unet = _unet(TEXT_2_HIDDEN, REFINER_TIME_IDS)
    else:
        torch.manual_seed(seed)
        unet = _unet(TEXT_HIDDEN + TEXT_2_HIDDEN, BASE_TIME_IDS)
        torch.manual_seed(seed + 2)
        text_encoder = CLIPTextModel(_text_config(TEXT_HIDDEN, TEXT_HIDDEN))
    with torch.no_grad():
        vae.decoder.conv_out.weight.mul_(VAE_CONV_OUT_GAIN)
        unet.conv_out.weight.mul_(UNET_CONV_OUT_GAIN)
        add_embedding: Any = unet.add_embedding  # TimestepEmbedding; typed as Module | None
        add_embedding.linear_1.weight.mul_(ADD_EMBEDDING_GAIN)
        for name, module in unet.named_modules():
            if name.endswith("attn2.to_out.0"):  # attn2 is the cross-attention to the prompt
                module.weight.mul_(CROSS_ATTENTION_OUT_GAIN)
    # from_config keeps keys Euler ignores (skip_prk_steps, …) in the saved config, so PNDM
    # built from it later keeps SDXL's settings.
    scheduler = EulerDiscreteScheduler.from_config(SDXL_SCHEDULER)
    if refiner:
        # SDXL's refiner: the second text encoder only, an aesthetic score instead of the
        # target size, and no zeroed negative for an empty negative prompt.
        return StableDiffusionXLImg2ImgPipeline(
            vae=vae,
            text_encoder=None,  # type: ignore[arg-type]
            text_encoder_2=text_encoder_2,
            tokenizer=None,  # type: ignore[arg-type]
            tokenizer_2=_clip_tokenizer(),
            unet=unet,
            scheduler=scheduler,
            requires_aesthetics_score=True,
            force_zeros_for_empty_prompt=False,
            add_watermarker=False,
        )
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=_clip_tokenizer(),
        tokenizer_2=_clip_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )


def build_tiny_sdxl_lora(model_dir: Path, path: Path, *, seed: int = 0, rank: int = 4) -> Path:
    """A UNet LoRA file (diffusers/peft layout) for the tiny SDXL at `model_dir`; random but
    seeded factors (text-encoder LoRA layers cannot load with this stack)."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_pretrained(str(model_dir), subfolder="unet")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights=False,
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
        unet.add_adapter(config, "tiny")
    state = {
        f"unet.{k}": v for k, v in get_peft_model_state_dict(unet, adapter_name="tiny").items()
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sorted(state.items())}, str(path))
    return path


def build_tiny_sdxl_embedding(model_dir: Path, path: Path, *, seed: int = 0) -> Path:
    """A textual-inversion embedding in SDXL's layout (`clip_l` and `clip_g`, one vector
    each), seeded, at the scale of each encoder's own token embeddings."""
    from safetensors.torch import save_file

    generator = torch.Generator("cpu").manual_seed(seed)
    state = {}
    for key, folder, model_class in (
        ("clip_l", "text_encoder", CLIPTextModel),
        ("clip_g", "text_encoder_2", CLIPTextModelWithProjection),
    ):
        encoder: Any = model_class.from_pretrained(str(model_dir), subfolder=folder)
        table = encoder.get_input_embeddings().weight.detach()
        noise = torch.randn((1, table.shape[1]), generator=generator, dtype=table.dtype)
        state[key] = (noise * table.std()).contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path
