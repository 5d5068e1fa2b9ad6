"""GPU check of Seedbank's render path: real-sized random-weight pipelines, bytes compared.

Run it whenever a CUDA machine is at hand (one command, a few minutes):

    .venv/bin/python bench/gpu.py          # real-sized shapes, 512² and 1024², fp16 and fp32
    .venv/bin/python bench/gpu.py --tiny   # the same on the tiny test models (a CPU smoke run)

For every case it builds (once, from a fixed seed, random weights) a pipeline of the real
architecture, saves it with `save_pretrained` and then:
- renders it through `engine.pipeline.render` — the function the render worker calls, with the
  recorded determinism switches — twice, and compares the pixel sha256 and the PNG bytes;
- renders it with bare diffusers (`from_pretrained` + the pipeline call, the same seeds and CPU
  generators, no Seedbank code) and compares with Seedbank's pixels;
- prints the seconds of each, and Seedbank's per-image time as a ratio to bare diffusers measured
  in the same run (the baseline), since absolute times only compare on the same card.
It ends with the environment Seedbank recorded (device name, CUDA, SDPA kernels), for docs/.
Bare and Seedbank differ by design where the recipe asks for something diffusers' call does not
do (none here: plain prompts, clip skip 1); a difference is a finding, not a failure to hide.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from PIL import Image

from engine import pipeline
from engine.recipe import Recipe
from engine.tiny_models import _clip_tokenizer, build_tiny_sd
from engine.tiny_sdxl import build_tiny_sdxl

PROMPT = "a red circle on a blue background, oil painting"
NEGATIVE = "blurry"
SEEDS = (1234,)


def _sd_vae(**config: Any) -> Any:
    """Stable Diffusion's VAE shape (SD 1.5 and SDXL share it; SDXL changes the scaling)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
        **config,
    )


def _clip_text(hidden: int, *, layers: int, heads: int, **config: Any) -> Any:
    """A CLIP text encoder's config: ViT-L's (768) or OpenCLIP bigG's (1280) shape."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        projection_dim=hidden,
        **config,
    )


def _sd15(folder: Path, seed: int) -> Path:
    """An SD-1.5-shaped pipeline (UNet 860M, CLIP ViT-L text encoder, SD VAE), random weights."""
    from diffusers import (
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel

    from engine.tiny_models import SD15_SCHEDULER

    if (folder / "model_index.json").is_file():
        return folder
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)
        vae = _sd_vae(sample_size=512)
        text_encoder = CLIPTextModel(_clip_text(768, layers=12, heads=12))
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=_clip_tokenizer(),
        unet=unet,
        scheduler=PNDMScheduler.from_config(SD15_SCHEDULER),
        safety_checker=None,  # type: ignore[arg-type]
        feature_extractor=None,  # type: ignore[arg-type]
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def _sdxl(folder: Path, seed: int) -> Path:
    """An SDXL-base-shaped pipeline (UNet 2.6B with text_time conditioning, CLIP ViT-L and
    OpenCLIP bigG text encoders, SDXL VAE config), random weights."""
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from engine.tiny_sdxl import SDXL_SCHEDULER

    if (folder / "model_index.json").is_file():
        return folder
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=128,
            block_out_channels=(320, 640, 1280),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20),
            use_linear_projection=True,
            cross_attention_dim=2048,
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
        )
        vae = _sd_vae(sample_size=1024, scaling_factor=0.13025, force_upcast=True)
        text_encoder = CLIPTextModel(_clip_text(768, layers=12, heads=12))
        text_encoder_2 = CLIPTextModelWithProjection(
            _clip_text(1280, layers=32, heads=20, hidden_act="gelu")
        )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=_clip_tokenizer(),
        tokenizer_2=_clip_tokenizer(),
        unet=unet,
        scheduler=EulerDiscreteScheduler.from_config(SDXL_SCHEDULER),
        add_watermarker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def _bare(model: Path, precision: str, size: int, steps: int) -> tuple[np.ndarray, float]:
    """Plain diffusers: what anyone would write, with the same CPU generators and switches."""
    from diffusers import DiffusionPipeline

    sdxl = "XL" in json.loads((model / "model_index.json").read_text())["_class_name"]
    # Seedbank switches SDXL's invisible watermark off (an optional package would move pixels).
    options = {"add_watermarker": False} if sdxl else {"safety_checker": None}
    pipe = DiffusionPipeline.from_pretrained(
        str(model), dtype=pipeline.PRECISIONS[precision], **options
    ).to(pipeline.device_name())
    pipe.set_progress_bar_config(disable=True)
    started = time.perf_counter()
    images = pipe(
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        num_inference_steps=steps,
        guidance_scale=7.5,
        width=size,
        height=size,
        num_images_per_prompt=len(SEEDS),
        generator=[torch.Generator("cpu").manual_seed(seed) for seed in SEEDS],
    ).images
    seconds = time.perf_counter() - started
    del pipe
    return np.asarray(images[0].convert("RGB")), seconds


# The scheduler the folder ships with, by its catalogue name: bare diffusers uses that one.
_SCHEDULERS = {"PNDMScheduler": "PNDM", "EulerDiscreteScheduler": "Euler"}


def _seedbank(model: Path, precision: str, size: int, steps: int) -> tuple[Any, float]:
    config = json.loads((model / "scheduler" / "scheduler_config.json").read_text())
    recipe = Recipe(
        scheduler=_SCHEDULERS[config["_class_name"]],
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        seed=SEEDS[0],
        steps=steps,
        width=size,
        height=size,
        precision=precision,
    )
    request = pipeline.RenderRequest(model_path=str(model), recipe=recipe, seeds=SEEDS)
    started = time.perf_counter()
    rendered = pipeline.render(request)[0]
    return rendered, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="tiny test models (a CPU smoke run)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--precisions", nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sb-gpu")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    sizes = args.sizes or ([64] if args.tiny else [512, 1024])
    precisions = args.precisions or (["fp32", "fp16"] if cuda else ["fp32"])
    switches = pipeline.configure_determinism(1)
    builders = {"SD1.5-shaped": _sd15, "SDXL-shaped": _sdxl}
    if args.tiny:
        builders = {
            "tiny SD": lambda folder, seed: build_tiny_sd(folder, seed=seed),
            "tiny SDXL": lambda folder, seed: build_tiny_sdxl(folder, seed=seed),
        }
    print(f"device {pipeline.device_name()} "
          f"{torch.cuda.get_device_name() if cuda else ''}; switches {switches}")  # fmt: skip
    rows = []
    for label, build in builders.items():
        started = time.perf_counter()
        model = build(args.cache / label.replace(" ", "-").replace(".", ""), 0)
        print(f"{label}: built/loaded in {time.perf_counter() - started:.1f} s at {model}")
        for precision in precisions:
            for size in sizes:
                pipeline._load.cache_clear()  # one model in memory at a time
                if cuda:
                    torch.cuda.empty_cache()
                first, seconds = _seedbank(model, precision, size, args.steps)  # includes load
                again, warm_seconds = _seedbank(model, precision, size, args.steps)
                bare, bare_seconds = _bare(model, precision, size, args.steps)
                bare_sha = pipeline.pixel_sha256(Image.fromarray(bare))
                rows.append(
                    {
                        "model": label,
                        "precision": precision,
                        "size": size,
                        "rerun_bit_identical": first.pixel_sha256 == again.pixel_sha256,
                        "png_bytes_identical": first.png == again.png,
                        "bare_diffusers_identical": bare_sha == first.pixel_sha256,
                        "seedbank_s": round(warm_seconds, 3),
                        "bare_s": round(bare_seconds, 3),
                        "ratio_to_bare": round(warm_seconds / bare_seconds, 3),
                        "first_call_s": round(seconds, 3),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    environment = first.environment
    print("environment", json.dumps({k: environment.get(k) for k in
                                     ("device_name", "torch", "diffusers", "cuda", "dtype",
                                      "attention_processors")}))  # fmt: skip
    if not all(row["rerun_bit_identical"] for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
