"""Offline conversion of a single-file Stable Diffusion checkpoint into a diffusers folder.

Django-free. Community checkpoints (A1111, Civitai) are one `.safetensors` file in the original
CompVis/LDM key layout (`model.diffusion_model.*`, `first_stage_model.*`,
`cond_stage_model.*`). The render pipeline loads diffusers folders only, so such a file is
converted once, with diffusers' own `StableDiffusionPipeline.from_single_file`, and the folder is
what gets registered and digested.

`from_single_file` works offline only when given `config=<a local diffusers folder of the same
architecture>` and `local_files_only=True`: it then takes every component's config, the
tokenizer and the scheduler from that folder, and only the weights from the file. Two of its
behaviours would silently produce a model that is not the file, so they are checked here:

- a text encoder it does not recognise in the file is loaded from the config folder's weights
  instead (no error): the file must contain all three of UNet, VAE and text encoder;
- without `accelerate` it loads state dicts with `strict=False`, so a tensor the file lacks keeps
  its random initialisation: every parameter of the loaded components must have come from the
  file (checked with diffusers' own key mapping, on shapes only).

Pickled `.ckpt` files are refused: loading one runs arbitrary code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from engine.pipeline import quiet_loading  # also applies the torchvision guard first
from engine.weights import open_permissions

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIXES = ("first_stage_model.", "vae.")
TEXT_ENCODER_PREFIX = "cond_stage_model."
EMA_PREFIX = "model_ema."
# diffusers' own test for "this file also holds EMA weights" (convert_ldm_unet_checkpoint).
_EMA_KEY_THRESHOLD = 100
_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
}


@dataclass(frozen=True)
class CheckpointInfo:
    """What the header of a single-file checkpoint says (no tensor is read)."""

    keys: dict[str, list[int]]  # key -> shape
    has_ema: bool  # holds EMA weights beside the raw (non-EMA) ones
    unet_dtype: torch.dtype | None  # the UNet's stored dtype, when it has one dtype


def inspect_checkpoint(path: Path) -> CheckpointInfo:
    """Read the file's header; ValueError unless it looks like an SD checkpoint we can convert."""
    path = Path(path)
    if path.suffix.lower() in {".ckpt", ".pt", ".pth", ".bin"}:
        raise ValueError(
            f"{path.name} is a pickled checkpoint; loading one can run arbitrary code. "
            "Convert it to .safetensors first."
        )
    if path.suffix.lower() != ".safetensors":
        raise ValueError(f"{path.name} is not a .safetensors checkpoint.")
    keys: dict[str, list[int]] = {}
    unet_dtypes: set[str] = set()
    try:
        with safe_open(str(path), "pt") as handle:
            for key in handle.keys():
                tensor_slice = handle.get_slice(key)
                keys[key] = list(tensor_slice.get_shape())
                if key.startswith(UNET_PREFIX):
                    unet_dtypes.add(tensor_slice.get_dtype())
    except Exception as error:  # noqa: BLE001 - safetensors raises its own untyped errors
        raise ValueError(f"{path.name} is not a readable safetensors file: {error}") from None
    missing = [
        part
        for part, present in (
            (f"UNet ({UNET_PREFIX}*)", any(k.startswith(UNET_PREFIX) for k in keys)),
            (f"VAE ({VAE_PREFIXES[0]}*)", any(k.startswith(VAE_PREFIXES) for k in keys)),
            (
                f"text encoder ({TEXT_ENCODER_PREFIX}*)",
                any(k.startswith(TEXT_ENCODER_PREFIX) for k in keys),
            ),
        )
        if not present
    ]
    if missing:
        raise ValueError(
            f"{path.name} is not a complete Stable Diffusion checkpoint in the original layout: "
            f"no {', no '.join(missing)} weights. (SDXL and diffusers-layout files are not "
            "single-file SD 1.x/2.x checkpoints.)"
        )
    has_ema = sum(k.startswith(EMA_PREFIX) for k in keys) > _EMA_KEY_THRESHOLD
    unet_dtype = _SAFETENSORS_DTYPES.get(unet_dtypes.pop()) if len(unet_dtypes) == 1 else None
    return CheckpointInfo(keys=keys, has_ema=has_ema, unet_dtype=unet_dtype)


def convert_single_file(
    checkpoint: Path, config_dir: Path, out_dir: Path, *, extract_ema: bool = False
) -> Path:
    """Convert `checkpoint` into a diffusers folder at `out_dir` (which must not exist).

    `config_dir` is a local diffusers folder of the same architecture (an SD 1.5 folder for an
    SD 1.5 fine-tune): its configs, tokenizer and scheduler are used, never its weights.
    `extract_ema` picks the EMA weights of a file that holds both. Atomic: the folder appears
    complete or not at all.
    """
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import (
        StableDiffusionPipeline,
    )

    checkpoint, config_dir, out_dir = Path(checkpoint), Path(config_dir), Path(out_dir)
    info = inspect_checkpoint(checkpoint)
    if not (config_dir / "model_index.json").is_file():
        raise ValueError(f"--config {config_dir} is not a diffusers folder (no model_index.json).")
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists.")
    options: dict[str, Any] = {}
    if info.unet_dtype not in (None, torch.float32):
        # Keep the precision the file was published in: an fp16 file stays fp16 on disk.
        options["dtype"] = info.unet_dtype
    # Random initialisation (overwritten by the file's weights) must not move the caller's
    # global random stream.
    with torch.random.fork_rng(devices=[]), quiet_loading():
        try:
            pipe = StableDiffusionPipeline.from_single_file(
                str(checkpoint),
                config=str(config_dir),
                local_files_only=True,  # never reach for a hub: configs come from config_dir
                safety_checker=None,
                requires_safety_checker=False,
                extract_ema=extract_ema,
                **options,
            )
        except (ValueError, KeyError, RuntimeError, OSError) as error:
            # Shape mismatches (a config folder of another architecture) land here, as one
            # line per tensor: the first two say enough.
            lines = str(error).strip().splitlines()
            more = f" (and {len(lines) - 2} more lines)" if len(lines) > 2 else ""
            raise ValueError(
                f"diffusers could not convert {checkpoint.name} with the configs of "
                f"{config_dir} - is it a folder of the same architecture? "
                + " ".join(line.strip() for line in lines[:2])
                + more
            ) from None
    _check_everything_loaded(pipe, info, extract_ema)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.converting-", dir=out_dir.parent))
    try:
        with quiet_loading():
            pipe.save_pretrained(tmp, safe_serialization=True)
        open_permissions(tmp)
        os.rename(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _check_everything_loaded(pipe: Any, info: CheckpointInfo, extract_ema: bool) -> None:
    """Refuse a conversion in which any parameter did not come from the file."""
    from diffusers.loaders import single_file_utils as sfu

    # Meta tensors: diffusers' mapping functions rename and slice them without any data.
    shaped = {key: torch.empty(shape, device="meta") for key, shape in info.keys.items()}
    unet_keys = sfu.convert_ldm_unet_checkpoint(
        shaped, dict(pipe.unet.config), extract_ema=extract_ema
    )
    vae_keys = sfu.convert_ldm_vae_checkpoint(shaped, dict(pipe.vae.config))
    text_encoder = pipe.text_encoder
    if sfu.is_open_clip_model(shaped):  # SD 2.x: an open_clip text tower
        text_keys = sfu.convert_open_clip_checkpoint(text_encoder, shaped)
    else:
        text_keys = sfu.convert_ldm_clip_checkpoint(shaped)
    if not hasattr(text_encoder, "text_model"):  # transformers >= 5.6 flattened CLIPTextModel
        text_keys = {key.removeprefix("text_model."): value for key, value in text_keys.items()}
    for name, module, converted in (
        ("unet", pipe.unet, unet_keys),
        ("vae", pipe.vae, vae_keys),
        ("text_encoder", text_encoder, text_keys),
    ):
        expected = module.state_dict()
        missing = sorted(key for key in expected if key not in converted)
        wrong = sorted(
            key
            for key in expected
            if key in converted and list(converted[key].shape) != list(expected[key].shape)
        )
        if missing or wrong:
            first = missing[0] if missing else wrong[0]
            raise ValueError(
                f"The checkpoint does not fill the {name} of this architecture: "
                f"{len(missing)} tensors missing, {len(wrong)} of another shape (first: {first!r})."
                " Is --config a folder of the same architecture?"
            )
