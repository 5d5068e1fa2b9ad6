"""Tiny resources for a tiny SD pipeline (tests, benchmarks): a LoRA and a VAE file.

Built offline from a fixed seed like the tiny models themselves (engine.tiny_models), so the
same bytes come out on every machine: the LoRA adapts the UNet's attention (text-encoder LoRA
layers cannot load with this stack: see engine.render_steps), the VAE file is the model's own
VAE with its decoder nudged, so swapping it in changes pixels but keeps the latent space.
"""

from __future__ import annotations

from pathlib import Path

import torch

from engine.torch_compat import ensure_torchvision

ensure_torchvision()

from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import (  # noqa: E402
    StableDiffusionPipeline,
)
from peft import LoraConfig, inject_adapter_in_model  # noqa: E402
from peft.utils import get_peft_model_state_dict  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "v_proj"]


def build_tiny_lora(
    model_dir: Path, path: Path, *, seed: int = 0, rank: int = 4, text_encoder: bool = False
) -> Path:
    """A LoRA file (diffusers/peft layout) for the model at `model_dir`; random but seeded
    factors, large enough that weight 1 visibly moves the pixels. With `text_encoder`, the text
    encoder's attention gets layers too (as most A1111 LoRAs have)."""
    pipe = StableDiffusionPipeline.from_pretrained(str(model_dir), safety_checker=None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = LoraConfig(
            r=rank, lora_alpha=rank, init_lora_weights=False, target_modules=UNET_TARGETS
        )
        pipe.unet.add_adapter(config, "tiny")
        if text_encoder:
            # peft directly: transformers' own add_adapter wants a newer peft than PyPI has.
            text_config = LoraConfig(
                r=rank, lora_alpha=rank, init_lora_weights=False, target_modules=TEXT_TARGETS
            )
            inject_adapter_in_model(text_config, pipe.text_encoder, adapter_name="tiny")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    unet_state = get_peft_model_state_dict(pipe.unet, adapter_name="tiny")
    state = {f"unet.{k}": v for k, v in unet_state.items()}
    if text_encoder:
        encoder_state = get_peft_model_state_dict(pipe.text_encoder, adapter_name="tiny")
        state.update({f"text_encoder.{k}": v for k, v in encoder_state.items()})
    save_file({k: v.contiguous() for k, v in sorted(state.items())}, str(path))
    return path


def kohya_layout(path: Path, target: Path) -> Path:
    """The same LoRA in kohya's layout (A1111, Civitai): lora_unet_… / lora_te_text_model_…
    keys, lora_down / lora_up and an alpha per module."""
    from safetensors.torch import load_file

    kohya = {}
    for key, value in load_file(str(path)).items():
        part, module_and_factor = key.split(".", 1)
        module, factor = module_and_factor.rsplit(".lora_", 1)
        if part == "text_encoder":
            module = "text_model." + module  # kohya names CLIP's modules as transformers 4 did
        stem = ("lora_unet_" if part == "unet" else "lora_te_") + module.replace(".", "_")
        kohya[f"{stem}.lora_{'down' if factor.startswith('A') else 'up'}.weight"] = value
        if factor.startswith("A"):
            kohya[f"{stem}.alpha"] = torch.tensor(float(value.shape[0]))
    save_file({k: v.contiguous() for k, v in sorted(kohya.items())}, str(target))
    return Path(target)


def build_tiny_vae(model_dir: Path, path: Path, *, seed: int = 0, scale: float = 0.05) -> Path:
    """The model's VAE weights with the decoder's weights nudged by seeded noise."""
    pipe = StableDiffusionPipeline.from_pretrained(str(model_dir), safety_checker=None)
    generator = torch.Generator("cpu").manual_seed(seed)
    state = {}
    for name, tensor in sorted(pipe.vae.state_dict().items()):
        if name.startswith("decoder.") and tensor.is_floating_point():
            noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            tensor = tensor + scale * tensor.abs().mean() * noise
        state[name] = tensor.contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


def build_tiny_embedding(model_dir: Path, path: Path, *, seed: int = 0, vectors: int = 1) -> Path:
    """A textual-inversion embedding in A1111's safetensors layout (`emb_params`), seeded, at
    the scale of the model's own token embeddings."""
    pipe = StableDiffusionPipeline.from_pretrained(str(model_dir), safety_checker=None)
    table = pipe.text_encoder.get_input_embeddings().weight.detach()
    generator = torch.Generator("cpu").manual_seed(seed)
    noise = torch.randn((vectors, table.shape[1]), generator=generator, dtype=table.dtype)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"emb_params": (noise * table.std()).contiguous()}, str(path))
    return path
