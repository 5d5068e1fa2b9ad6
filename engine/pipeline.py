"""Django-free text-to-image rendering: load a diffusers folder once, render recipes, record how.

Reproducing an image bit-for-bit needs more than the recipe: the scheduler's full config, the
dtype, device, library versions, thread count and batch position all move pixels. Every
rendered image therefore carries an `environment` dict with all of them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import PIL
import torch
from PIL import Image

from engine import prompt_weighting, render_steps, schedulers
from engine.png_files import PngText, pixel_sha256, png_bytes
from engine.recipe import FAMILY_LABELS, SDXL, Recipe, pipeline_family, sdxl_fields_set
from engine.torch_compat import ensure_torchvision

ensure_torchvision()

import diffusers  # noqa: E402
import transformers  # noqa: E402

# The concrete module, not `from diffusers import ...`: diffusers' lazy top-level module shows
# type checkers an attribute-less dummy class.
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import (  # noqa: E402
    StableDiffusionPipeline,
)
from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl import (  # noqa: E402
    StableDiffusionXLPipeline,
)
from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img import (  # noqa: E402
    StableDiffusionXLImg2ImgPipeline,
)

# cuBLAS reads this when CUDA first starts, so set it before any render can touch the GPU.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16}
# Pipelines are large (an SD-1.5 is ~2-4 GB, an SDXL ~7 GB in fp16); two fit beside each other
# on a 16 GB card (an SDXL base and its refiner on a 24 GB one).
_CACHED_PIPELINES = 2
# What a model folder loads as, by the pipeline class its model_index.json names. A refiner
# folder is never a recipe's model: it loads (as any SDXL folder can) with `load_refiner`.
Pipeline = StableDiffusionPipeline | StableDiffusionXLPipeline
_LOADERS: dict[str, type[Pipeline]] = {
    "StableDiffusionPipeline": StableDiffusionPipeline,
    "StableDiffusionXLPipeline": StableDiffusionXLPipeline,
}


@dataclass(frozen=True)
class RenderRequest:
    """A recipe made concrete for this machine: model files, seeds, and input image bytes."""

    model_path: str
    recipe: Recipe
    seeds: tuple[int, ...]  # one image per seed; one CPU torch.Generator per image
    batch_index_offset: int = 0  # index of seeds[0] within the whole batch (recorded)
    init_image: bytes | None = None  # PNG/JPEG/WebP bytes (img2img, inpaint)
    mask: bytes | None = None  # white = repaint, black = keep (inpaint)
    # The files of the recipe's resources (LoRAs, VAE) by sha256, checked by the caller.
    resource_files: Mapping[str, str] = field(default_factory=dict)
    # The folder of the model the recipe's `refiner` digest names (checked by the caller).
    refiner_model_path: str | None = None


@dataclass(frozen=True)
class RenderedImage:
    png: bytes
    pixel_sha256: str
    seed: int
    batch_index: int
    environment: dict[str, Any]


def configure_determinism(threads: int) -> dict[str, Any]:
    """Turn on every switch that makes a render repeatable; return them as recorded."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    # Reductions split work by thread, so 1 and 2 threads differ in the last bits.
    torch.set_num_threads(threads)
    return determinism_switches()


def determinism_switches() -> dict[str, Any]:
    """The switches as they are now (read back, not as requested)."""
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG", ""),
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "torch_threads": torch.get_num_threads(),
    }


def device_name() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load(model_path: str, precision: str = "fp32", device: str | None = None) -> Pipeline:
    """The pipeline for a local diffusers folder (SD 1.x/2.x or SDXL, as its model_index.json
    says), loaded once per process and precision."""
    device = _checked_device(precision, device)
    return _load(os.path.abspath(model_path), precision, device, refiner=False)


def load_refiner(
    model_path: str, precision: str = "fp32", device: str | None = None
) -> StableDiffusionXLImg2ImgPipeline:
    """An SDXL refiner (or any SDXL folder) as the img2img pipeline that finishes a render."""
    device = _checked_device(precision, device)
    return _load(os.path.abspath(model_path), precision, device, refiner=True)  # type: ignore[return-value]


def _checked_device(precision: str, device: str | None) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    device = device or device_name()
    if precision == "fp16" and not device.startswith("cuda"):
        # Recording fp16 for an fp32 render (or the reverse) would make the archive lie.
        raise ValueError(f"fp16 needs a CUDA device; this worker renders on {device!r}.")
    return device


@functools.lru_cache(maxsize=_CACHED_PIPELINES)
def _load(model_path: str, precision: str, device: str, refiner: bool) -> Any:
    class_name = render_steps.model_class_name(model_path)
    family = pipeline_family(class_name)  # ValueError for a pipeline not rendered here
    if refiner:
        if not family.startswith(SDXL):
            raise ValueError(f"{model_path} is a {FAMILY_LABELS[family]} model, not an SDXL "
                             "refiner or SDXL model")  # fmt: skip
        loader: type[Any] = StableDiffusionXLImg2ImgPipeline
    elif class_name in _LOADERS:
        loader = _LOADERS[class_name]
    else:
        raise ValueError(f"{model_path} is an SDXL refiner: it finishes another model's "
                         "render (a recipe's refiner), it cannot render on its own")  # fmt: skip
    with quiet_loading():
        pipe = loader.from_pretrained(
            model_path,
            dtype=PRECISIONS[precision],  # diffusers 0.42 deprecates torch_dtype
            local_files_only=True,  # a model path is a folder; never reach for a hub
            # Said outright: left unset, diffusers warns on every load when accelerate is absent.
            low_cpu_mem_usage=importlib.util.find_spec("accelerate") is not None,
            **render_steps.load_options(loader.__name__),
        )
    # Older diffusers ignore an unknown dtype argument and load fp32: refuse rather than record
    # a precision that did not happen.
    if pipe.unet.dtype != PRECISIONS[precision]:
        raise RuntimeError(f"{model_path} loaded as {pipe.unet.dtype}, not {precision}")
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@contextmanager
def quiet_loading() -> Iterator[None]:
    # Loading and saving draw tqdm bars on stderr, one per component: noise in logs and output.
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    bars = [diffusers_logging, transformers_logging]
    enabled = [bar.is_progress_bar_enabled() for bar in bars]
    for bar in bars:
        bar.disable_progress_bar()
    try:
        yield
    finally:
        for bar, was_enabled in zip(bars, enabled, strict=True):
            if was_enabled:
                bar.enable_progress_bar()


def render(
    request: RenderRequest,
    on_step: Callable[[int, int], None] | None = None,
    png_text: PngText | None = None,
) -> list[RenderedImage]:
    """Render one image per seed in a single batch; each image records its full environment.

    `png_text(seed, batch_index, batch_size)` gives the text chunks (recipe metadata) written
    into each PNG; they never touch the pixels or their sha256.
    """
    if not request.seeds:
        raise ValueError("A render needs at least one seed.")
    recipe = request.recipe
    cached = load(request.model_path, recipe.precision)
    sdxl = render_steps.is_sdxl(cached)
    if not sdxl and (asked := sdxl_fields_set(recipe)):
        # The archive refuses these before queueing (engine.recipe.family_errors); a render
        # that got here anyway must not drop them silently.
        raise ValueError(f"{', '.join(asked)}: SDXL-only, and {request.model_path} is not SDXL")
    vae = _vae(request, cached)
    pipe = _with_scheduler(cached, recipe.scheduler, recipe.mode, vae=vae)
    render_steps.apply_loras(cached, _lora_files(request))
    refiner = _refiner(request, vae if recipe.vae is not None else None)
    # CPU generators make a seed mean the same starting noise on every GPU model.
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in request.seeds]
    hires = dataclasses.asdict(recipe.hires) if recipe.hires else None
    first_steps, second_steps = recipe.steps, 0
    if recipe.hires:
        second_steps = recipe.hires.steps or recipe.steps
    elif refiner is not None and recipe.refiner_switch_at is not None:
        # Progress only: the refiner runs the steps after the switch point.
        first_steps = max(1, round(recipe.steps * recipe.refiner_switch_at))
        second_steps = recipe.steps - first_steps
    total = first_steps + second_steps
    images = render_steps.generate(
        pipe,
        prompt=recipe.prompt,
        negative_prompt=recipe.negative_prompt,
        steps=recipe.steps,
        guidance=recipe.guidance,
        generators=generators,
        mode_arguments=_mode_arguments(request),
        clip_skip=recipe.clip_skip,
        hires=hires,
        encode_pair=prompt_weighting.encode_pair if recipe.prompt_weighting else None,
        embeddings=[
            (use.token, _resource_file(request, use.resource)) for use in recipe.embeddings
        ],
        callback=_step_reporter(on_step, first_steps, 0, total),
        second_callback=_step_reporter(on_step, second_steps, first_steps, total),
        prompt_2=recipe.prompt_2,
        negative_prompt_2=recipe.negative_prompt_2,
        original_size=recipe.original_size(),
        crops_coords_top_left=recipe.crops_coords_top_left(),
        target_size=recipe.target_size(),
        refiner=refiner,
    )
    base = environment_base(pipe, request)
    base.update(_mode_environment(request))
    base.update(_resource_environment(request, pipe))
    if sdxl:
        base.update(_sdxl_environment(request, pipe, refiner))
    rendered = []
    for index, (seed, image) in enumerate(zip(request.seeds, images, strict=True)):
        batch_index = request.batch_index_offset + index
        environment = {
            **base,
            "seed": seed,
            "batch_index": batch_index,
            "batch_size": len(request.seeds),
        }
        rendered.append(
            RenderedImage(
                png=png_bytes(
                    image, png_text(seed, batch_index, len(request.seeds)) if png_text else None
                ),
                pixel_sha256=pixel_sha256(image),
                seed=seed,
                batch_index=batch_index,
                environment=environment,
            )
        )
    return rendered


def _step_reporter(
    on_step: Callable[[int, int], None] | None, steps: int, offset: int, total: int
) -> Callable[..., dict[str, Any]]:
    """A diffusers step callback reporting progress in recipe steps (a hires pass continues
    the count after the first pass's)."""
    reported = 0

    def step_end(running: Any, index: int, _t: Any, _kw: dict[str, Any]) -> dict[str, Any]:
        # PNDM calls back steps + 1 times and second-order samplers about twice per step; each
        # distinct step is reported once (a database write each).
        nonlocal reported
        step = max(1, (index + 1) * steps // running.num_timesteps)
        if on_step is not None and step != reported:
            reported = step
            on_step(offset + step, total)
        return {}

    return step_end


def _resource_file(request: RenderRequest, sha256: str) -> str:
    try:
        return request.resource_files[sha256]
    except KeyError:
        raise ValueError(f"no file given for resource {sha256}") from None


def _lora_files(request: RenderRequest) -> list[tuple[str, str, float]]:
    return [
        (lora.resource, _resource_file(request, lora.resource), lora.weight)
        for lora in request.recipe.loras
    ]


def _refiner(request: RenderRequest, vae: Any) -> dict[str, Any] | None:
    """The refiner's pipeline (a fresh scheduler of the recipe's kind over its own config; the
    recipe's VAE file, if any, decodes) and switch point, or None without a refiner."""
    recipe = request.recipe
    if not recipe.refiner:
        return None
    if request.refiner_model_path is None:
        raise ValueError(f"no model folder given for refiner {recipe.refiner}")
    cached = load_refiner(request.refiner_model_path, recipe.precision)
    scheduler = schedulers.build_scheduler(recipe.scheduler, cached.scheduler.config)
    return {
        "pipe": render_steps.mode_pipeline(cached, "img2img", scheduler=scheduler, vae=vae),
        "switch_at": recipe.refiner_switch_at,
    }


def _sdxl_environment(
    request: RenderRequest, pipe: Any, refiner: dict[str, Any] | None
) -> dict[str, Any]:
    """What SDXL adds that moves pixels: how the prompts were read, the conditioning as
    diffusers got it, the VAE's upcasting, and the refiner."""
    recipe = request.recipe
    environment: dict[str, Any] = {
        "model_family": SDXL,
        "force_zeros_for_empty_prompt": pipe.config.get("force_zeros_for_empty_prompt", True),
        "vae_force_upcast": pipe.vae.config.get("force_upcast", False),
        "watermark": False,
        "text_encoding": render_steps.SDXL_TEXT_ENCODING,
        "empty_negative_prompt": render_steps.SDXL_EMPTY_NEGATIVE,
        "conditioning": {
            "original_size": recipe.original_size() or "render size (diffusers' default)",
            "crops_coords_top_left": list(recipe.crops_coords_top_left()),
            "target_size": recipe.target_size() or "render size (diffusers' default)",
            "negative": "the same as the positive side (diffusers' default)",
        },
    }
    if refiner is not None:
        refined = refiner["pipe"]
        environment["refiner"] = {
            "digest": recipe.refiner,
            "model_path": request.refiner_model_path,
            "switch_at": refiner["switch_at"],
            "application": render_steps.REFINER_APPLICATION,
            "pipeline_class": type(refined).__name__,
            "scheduler_config": schedulers.scheduler_config(refined.scheduler),
            "requires_aesthetics_score": refined.config.get("requires_aesthetics_score", False),
            "aesthetic_score": 6.0,  # diffusers' defaults, never changed here
            "negative_aesthetic_score": 2.5,
            "force_zeros_for_empty_prompt": refined.config.get(
                "force_zeros_for_empty_prompt", True
            ),
            "dtype": str(refined.unet.dtype).removeprefix("torch."),
            "attention_processors": {"unet": _processor_names(refined.unet)},
        }
    return json.loads(json.dumps(environment))  # type: ignore[no-any-return]


def _vae(request: RenderRequest, pipe: Pipeline) -> Any:
    if request.recipe.vae is None:
        return pipe.vae
    sha256 = request.recipe.vae.resource
    return _cached_vae(pipe.vae, sha256, _resource_file(request, sha256))


@functools.lru_cache(maxsize=2)
def _cached_vae(base_vae: Any, sha256: str, path: str) -> Any:
    # Keyed by the base VAE too: the file's weights go into that model's VAE config.
    return render_steps.vae_from_file(base_vae, path)


def _resource_environment(request: RenderRequest, pipe: Pipeline) -> dict[str, Any]:
    recipe = request.recipe
    environment: dict[str, Any] = {"clip_skip": recipe.clip_skip}
    if recipe.prompt_weighting:
        environment["prompt_weighting"] = {
            "parser": prompt_weighting.PARSER,
            "version": prompt_weighting.PARSER_VERSION,
            "pad_conds": "shorter side padded with empty-prompt chunks",
        }
    if recipe.loras:
        environment["loras"] = [
            {
                "sha256": lora.resource,
                "adapter": render_steps.adapter_name(lora.resource),
                "weight": lora.weight,
            }
            for lora in recipe.loras
        ]
        environment["lora_application"] = render_steps.LORA_APPLICATION
        environment["peft"] = _package_version("peft")
    if recipe.embeddings:
        environment["embeddings"] = [
            {"token": use.token, "sha256": use.resource} for use in recipe.embeddings
        ]
        environment["embedding_application"] = render_steps.EMBEDDING_APPLICATION
    if recipe.vae is not None:
        environment["vae"] = {
            "sha256": recipe.vae.resource,
            "application": render_steps.VAE_APPLICATION,
        }
    if recipe.hires is not None:
        width, height = recipe.hires.size(recipe.width, recipe.height)
        steps = recipe.hires.steps or recipe.steps
        environment["hires"] = {
            "first_pass_size": [recipe.width, recipe.height],
            "final_size": [width, height],
            "upscaler": recipe.hires.upscaler,
            "denoising_steps": steps,
            "img2img_num_inference_steps": render_steps.hires_inference_steps(
                steps, recipe.hires.denoise
            ),
            "second_pass_pipeline": render_steps.MODE_PIPELINES[
                "StableDiffusionXLPipeline"
                if render_steps.is_sdxl(pipe)
                else "StableDiffusionPipeline"
            ]["img2img"],
        }
    return environment


@functools.cache
def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _source(data: bytes, size: tuple[int, int], mode: str) -> Image.Image:
    """An init image or mask at the recipe's size. Resampling is part of the recipe's pixels,
    so it is fixed (Lanczos) and recorded."""
    with Image.open(io.BytesIO(data)) as opened:
        picture = opened.convert(mode)
    return picture if picture.size == size else picture.resize(size, Image.Resampling.LANCZOS)


def _mode_arguments(request: RenderRequest) -> dict[str, Any]:
    size = (request.recipe.width, request.recipe.height)
    if request.recipe.mode == "txt2img":
        return {"width": request.recipe.width, "height": request.recipe.height}
    if request.init_image is None or request.recipe.strength is None:
        raise ValueError(f"{request.recipe.mode} needs an init image and a strength")
    arguments: dict[str, Any] = {
        "image": _source(request.init_image, size, "RGB"),
        "strength": request.recipe.strength,
    }
    if request.recipe.mode == "inpaint":
        if request.mask is None:
            raise ValueError("inpaint needs a mask")
        arguments.update(
            mask_image=_source(request.mask, size, "L"),
            width=request.recipe.width,
            height=request.recipe.height,
        )
    return arguments


def _mode_environment(request: RenderRequest) -> dict[str, Any]:
    if request.recipe.mode == "txt2img":
        return {"mode": "txt2img"}
    return {
        "mode": request.recipe.mode,
        "strength": request.recipe.strength,
        "init_image_sha256": hashlib.sha256(request.init_image or b"").hexdigest(),
        "mask_sha256": hashlib.sha256(request.mask).hexdigest() if request.mask else None,
        "source_resize": "PIL LANCZOS to the recipe size when sizes differ",
    }


def _with_scheduler(pipe: Pipeline, name: str, mode: str = "txt2img", vae: Any = None) -> Any:
    """A pipeline sharing `pipe`'s modules (no weight copies) but with a fresh scheduler.

    Schedulers keep per-run state (PNDM's history of noise predictions, step counters), so each
    render gets its own, and the cached pipeline's scheduler stays the model's pristine one.
    img2img and inpainting reuse the loaded modules: one copy of the weights for all modes. A
    VAE file (a recipe's override) replaces the model's VAE in this pipeline only.
    """
    scheduler = schedulers.build_scheduler(name, pipe.scheduler.config)
    return render_steps.mode_pipeline(pipe, mode, scheduler=scheduler, vae=vae)


def environment_base(pipe: Pipeline, request: RenderRequest) -> dict[str, Any]:
    """Everything besides the recipe that moves pixels, as JSON-ready values."""
    device = pipe.device
    environment: dict[str, Any] = {
        "model_path": request.model_path,
        "pipeline_class": type(pipe).__name__,
        **_process_environment(str(device)),
        "precision": request.recipe.precision,
        "dtype": str(pipe.unet.dtype).removeprefix("torch."),
        "torch_threads": torch.get_num_threads(),
        "determinism": determinism_switches(),
        "scheduler": request.recipe.scheduler,
        "scheduler_config": schedulers.scheduler_config(pipe.scheduler),
        "attention_processors": {
            "unet": _processor_names(pipe.unet),
            "vae": _processor_names(pipe.vae),
        },
    }
    if device.type == "cuda":
        environment["cuda"] = {
            "version": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            # Which SDPA kernels may run: each sums in its own order.
            "sdpa_flash": torch.backends.cuda.flash_sdp_enabled(),
            "sdpa_mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
            "sdpa_math": torch.backends.cuda.math_sdp_enabled(),
            "sdpa_cudnn": torch.backends.cuda.cudnn_sdp_enabled(),
        }
    # Fail here, at render time, rather than when the worker saves the row.
    return json.loads(json.dumps(environment))  # type: ignore[no-any-return]


def _processor_names(model: torch.nn.Module) -> list[str]:
    processors = getattr(model, "attn_processors", {})
    return sorted({type(processor).__name__ for processor in processors.values()})


@functools.cache
def _process_environment(device_text: str) -> dict[str, Any]:
    """The parts that cannot change while this process lives (platform.platform() alone reads
    the interpreter binary to find the libc version: milliseconds on every render)."""
    device = torch.device(device_text)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "device": device.type,
        "device_name": _device_description(device),
        # Which SIMD kernels torch picked on this CPU (AVX2 vs AVX512 sum in different orders).
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def _device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    # CPU kernels differ by instruction set, so the CPU model is part of the environment.
    return _cpu_model() or platform.processor() or device.type


@functools.cache
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


__all__ = [
    "Pipeline",
    "RenderRequest",
    "RenderedImage",
    "configure_determinism",
    "determinism_switches",
    "device_name",
    "environment_base",
    "load",
    "load_refiner",
    "pixel_sha256",
    "png_bytes",
    "render",
]


def render_splitting_on_oom(
    request: RenderRequest,
    on_step: Callable[[int, int], None] | None = None,
    png_text: PngText | None = None,
) -> list[RenderedImage]:
    """Render all seeds, halving the batch and retrying the rest when the GPU runs out of memory.

    Batch size moves pixels, so each image records the sub-batch it was actually rendered in
    (batch_size, batch_index, batch_seeds) plus what was asked for and every split, so that a
    reproduction re-renders exactly that sub-batch.
    """
    seeds = list(request.seeds)
    chunk = len(seeds)
    splits: list[dict[str, Any]] = []
    rendered: list[RenderedImage] = []
    done = 0
    while done < len(seeds):
        part = tuple(seeds[done : done + chunk])
        try:
            images = render(
                replace(request, seeds=part, batch_index_offset=0),
                on_step=on_step,
                png_text=png_text,
            )
        except torch.cuda.OutOfMemoryError:
            if chunk == 1:
                raise
            splits.append({"failed_batch_size": len(part), "at_image": done})
            chunk = max(1, chunk // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        for image in images:
            image.environment.update(
                batch_seeds=list(part),
                requested_batch_size=len(seeds),
                oom_splits=splits.copy(),
            )
        rendered.extend(images)
        done += len(part)
    return rendered
