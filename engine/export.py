"""Export a record as a JSON recipe and a standalone script that re-renders it bit-for-bit.

"Seed + prompt is a compression code": the export is the decompressor anyone can run. The script
depends on torch + diffusers (+ transformers) alone, never on Seedbank, so a record stays
reproducible after this code base is gone. Given the same machine and library versions, it
prints the record's pixel sha256 and exits 0.

The script deliberately mirrors `engine.pipeline` (determinism switches, one CPU generator
per seed, the whole batch in one call, the pixel hash); tests/engine/test_export.py runs the
exported scripts in fresh processes so the two cannot drift apart silently.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from engine import prompt_weighting, render_steps

EXPORT_FORMAT = "seedbank-export"
# 2: resources (LoRAs, VAE) by digest, clip skip, hires, img2img/inpaint inputs as files.
# 3: SDXL models (second prompts, size and crop conditioning) and a refiner model by digest.
EXPORT_VERSION = 3
INPUTS_FOLDER = "inputs"

_HEX_DIGITS = frozenset("0123456789abcdef")
_PLACEHOLDER = re.compile(r"@@(HEADER|DOCUMENT|RENDER_STEPS|PROMPT_WEIGHTING)@@")


def export_document(
    *,
    recipe: Mapping[str, Any],
    model_path: str,
    pixel_sha256: str,
    environment: Mapping[str, Any],
    resources: Sequence[Mapping[str, Any]] = (),
    refiner_model: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The recipe of one record plus everything its render recorded, as plain JSON values.

    `recipe` is the record's portable recipe (engine.recipe.Recipe.portable() plus model name
    and digest, seed, batch size and position), as `generator.models.Image.recipe_portable()`
    makes it. `resources` describe the files the recipe names by sha256 (sha256, kind, name,
    file_name, and optionally air and path) so the script can find them; `model_path` is where
    the model can be found (a path relative to a Seedbank checkout for the shipped models).
    `refiner_model` names the recipe's refiner (name, digest, path) when it has one.
    """
    recipe = dict(recipe)
    seed, batch_size, batch_index = recipe["seed"], recipe["batch_size"], recipe["batch_index"]
    model_name, model_digest = recipe.pop("model"), recipe.pop("model_digest")
    if batch_size < 1 or not 0 <= batch_index < batch_size:
        raise ValueError(f"batch_index {batch_index} is not inside a batch of {batch_size}")
    first_seed = seed - batch_index
    if first_seed < 0:
        raise ValueError(f"seed {seed} cannot be image {batch_index} of a batch (seeds start at 0)")
    config = environment.get("scheduler_config")
    if not isinstance(config, Mapping) or not config.get("_class_name"):
        # Only the full config rebuilds the scheduler: a class name alone lets from_config
        # fill in defaults (timestep_spacing) that moved pixels.
        raise ValueError("environment has no scheduler_config with a _class_name")
    threads = environment.get("torch_threads")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"environment has no usable torch_threads (got {threads!r})")
    # The environment describes the render that made these pixels; if it names another seed or
    # batch position than the record, the script would re-render something else and "differ".
    for key, value in (("seed", seed), ("batch_index", batch_index), ("batch_size", batch_size)):
        if key in environment and environment[key] != value:
            raise ValueError(f"environment says {key}={environment[key]!r}, the record {value!r}")
    if len(pixel_sha256) != 64 or not set(pixel_sha256) <= _HEX_DIGITS:
        raise ValueError(f"pixel_sha256 is not a lowercase sha256 hex digest: {pixel_sha256!r}")
    described = {str(resource.get("sha256")) for resource in resources}
    needed = [lora["resource"] for lora in recipe.get("loras") or ()]
    needed += [use["resource"] for use in recipe.get("embeddings") or ()]
    if recipe.get("vae"):
        needed.append(recipe["vae"]["resource"])
    if missing := sorted(set(needed) - described):
        raise ValueError(f"resources used but not described: {', '.join(missing)}")
    refiner = _refiner_model(recipe, environment, refiner_model)
    inputs = {
        role: {"sha256": recipe[key], "file": f"{INPUTS_FOLDER}/{role}-{recipe[key]}.png"}
        for role, key in (("init_image", "init_image_sha256"), ("mask", "mask_sha256"))
        if recipe.get(key)
    }

    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        **recipe,
        "guidance": float(recipe["guidance"]),
        # Seedbank seeds a batch seed0, seed0+1, ... and the batch size moves the last bits of
        # every image, so an image of a batch is only reproduced by re-rendering the whole batch.
        "seeds": [first_seed + index for index in range(batch_size)],
        "scheduler_config": config,
        "torch_threads": threads,
        "expected_pixel_sha256": pixel_sha256,
        "model": {"name": model_name, "digest": model_digest, "path": model_path},
        **({"refiner_model": refiner} if refiner else {}),
        "resources": [dict(resource) for resource in resources],
        "inputs": inputs,
        "environment": environment,
    }
    # A JSON round-trip both proves the document serialisable (TypeError here, not in a view)
    # and detaches it from the caller's mutable mappings.
    return json.loads(json.dumps(document))  # type: ignore[no-any-return]


def _refiner_model(
    recipe: Mapping[str, Any],
    environment: Mapping[str, Any],
    refiner_model: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """The refiner as the script finds it: by the digest the recipe names, with the scheduler
    config its render recorded."""
    digest = recipe.get("refiner") or ""
    if not digest:
        return None
    if refiner_model is None or refiner_model.get("digest") != digest:
        raise ValueError(f"the recipe's refiner {digest} is not described (name, digest, path)")
    recorded = environment.get("refiner")
    if not isinstance(recorded, Mapping) or not isinstance(
        recorded.get("scheduler_config"), Mapping
    ):
        raise ValueError("environment has no refiner scheduler_config for the recipe's refiner")
    return {
        "name": str(refiner_model.get("name", "")),
        "digest": digest,
        "path": str(refiner_model.get("path", "")),
        "scheduler_config": dict(recorded["scheduler_config"]),
    }


def export_script(document: Mapping[str, Any]) -> str:
    """Source of a standalone Python script that re-renders the document's image."""
    if document.get("format") != EXPORT_FORMAT or document.get("version") != EXPORT_VERSION:
        raise ValueError(f"not a {EXPORT_FORMAT} v{EXPORT_VERSION} document")
    # A raw triple-quoted string holds JSON safely: JSON escapes every quote inside its strings
    # (`\"` does not end a raw literal) and never puts three unescaped quotes in a row.
    parts = {
        "HEADER": _header(document),
        "DOCUMENT": _json_text(document, indent=2),
        "RENDER_STEPS": inspect.getsource(render_steps),
        "PROMPT_WEIGHTING": inspect.getsource(prompt_weighting),
    }
    # One pass over the template: a prompt that itself says "@@DOCUMENT@@" stays a prompt.
    return _PLACEHOLDER.sub(lambda match: parts[match.group(1)], _SCRIPT_TEMPLATE)


def _json_text(value: Any, **options: Any) -> str:
    """JSON keeping non-ASCII readable (Chinese prompts), unless it cannot be written as UTF-8."""
    text = json.dumps(value, ensure_ascii=False, **options)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only its \\u escape survives a UTF-8 file
        text = json.dumps(value, ensure_ascii=True, **options)
    return text


def _header(document: Mapping[str, Any]) -> str:
    """The recipe in plain words, for the script's docstring.

    Every value from the document is shown as JSON (strings quoted, numbers as they are): that
    keeps newlines, quotes and backslashes in prompts from breaking the raw docstring.
    """
    q = _json_text
    seeds = list(document["seeds"])
    index = int(document["batch_index"])
    environment: Mapping[str, Any] = document.get("environment") or {}
    config: Mapping[str, Any] = document["scheduler_config"]
    model: Mapping[str, Any] = document["model"]
    seed_line = q(document["seed"])
    if len(seeds) > 1:
        seed_line += (
            f", image {index + 1} of a batch of {len(seeds)} rendered together "
            f"(seeds {', '.join(q(seed) for seed in seeds)})"
        )
    lines = [
        f"Model       {q(model['name'])}, recorded at {q(model['path'])}",
        f"            weights digest {q(model['digest'])}",
        f"Prompt      {q(document['prompt'])}",
        f"Negative    {q(document['negative_prompt'])}",
        f"Seed        {seed_line}",
        f"Scheduler   {q(document['scheduler'])} "
        f"(diffusers {q(config['_class_name'])}, full recorded config below)",
        f"Steps       {q(document['steps'])}, guidance {q(document['guidance'])}, "
        f"{q(document['width'])}x{q(document['height'])} pixels, {q(document['precision'])}",
        f"Recorded on {q(environment.get('device', '?'))} "
        f"({q(environment.get('device_name', '?'))}), "
        f"{q(document['torch_threads'])} torch thread(s)",
        f"            torch {q(environment.get('torch', '?'))}, "
        f"diffusers {q(environment.get('diffusers', '?'))}, "
        f"transformers {q(environment.get('transformers', '?'))}",
        f"Expected    pixel sha256 {q(document['expected_pixel_sha256'])}",
    ]
    for lora in document.get("loras") or ():
        lines.append(f"LoRA        {q(lora.get('name', ''))} at {q(lora['weight'])}, "
                     f"sha256 {q(lora['resource'])}")  # fmt: skip
    for use in document.get("embeddings") or ():
        lines.append(f"Embedding   {q(use['token'])}, sha256 {q(use['resource'])}")
    if document.get("vae"):
        vae = document["vae"]
        lines.append(f"VAE         {q(vae.get('name', ''))}, sha256 {q(vae['resource'])}")
    if document.get("prompt_weighting"):
        lines.append(f"Weighting   {q(document['prompt_weighting'])} (the parser is below)")
    if document.get("clip_skip", 1) != 1:
        lines.append(f"Clip skip   {q(document['clip_skip'])} (A1111's count)")
    if document.get("prompt_2") or document.get("negative_prompt_2"):
        first, negative = q(document.get("prompt_2", "")), q(document.get("negative_prompt_2", ""))
        lines.append(f"Prompt 2    {first}, negative {negative} (blank: the first prompts)")
    sizes = [document.get(key, 0) for key in _CONDITIONING_KEYS]
    if any(sizes):
        lines.append(
            "SDXL sizes  original {}x{}, crop top {} left {}, target {}x{} (0: the render size)"
            .format(*(q(size) for size in sizes))
        )  # fmt: skip
    if document.get("refiner_model"):
        refiner = document["refiner_model"]
        lines.append(f"Refiner     {q(refiner['name'])} from {q(document['refiner_switch_at'])}, "
                     f"weights digest {q(refiner['digest'])}")  # fmt: skip
    if document.get("hires"):
        hires = document["hires"]
        lines.append(
            f"Hires fix   x{q(hires['scale'])} by {q(hires['upscaler'])}, "
            f"{q(hires['steps'])} steps (0: as many), denoise {q(hires['denoise'])}"
        )
    for role, found in (document.get("inputs") or {}).items():
        lines.append(f"Input       {role}: {q(found['file'])} next to this script")
    return "\n".join(lines)


_CONDITIONING_KEYS = (
    "original_width",
    "original_height",
    "crop_top",
    "crop_left",
    "target_width",
    "target_height",
)


# The exported script. Placeholders are replaced with str.replace, not str.format, so the
# script's own braces need no escaping. It must stay standalone: stdlib, numpy, PIL, torch,
# diffusers (transformers and torchvision come in through diffusers).
_SCRIPT_TEMPLATE = r'''#!/usr/bin/env python3
r"""Seedbank export: re-render one archived image with torch + diffusers alone.

This script was exported from a Seedbank record. It needs no Seedbank code: it loads the model
from a local diffusers folder, rebuilds the scheduler from its full recorded config, renders
the recipe below with every determinism switch the original render used, saves a PNG, and
prints the sha256 of the decoded RGB pixels next to the record's.

@@HEADER@@

Bit-identical pixels need the same device, library versions and thread count as the original
render; elsewhere expect small differences ("visually identical" at best), which the script
reports as a mismatch, with notes on what differs from the recorded environment.

How to run:
    python this_script.py [--files DIR] [--model PATH] [--refiner PATH] [--out image.png]
                          [--device cpu|cuda]

    --files   a folder holding the model folder and the resource files (LoRA, VAE) and the
              inputs/ of an img2img or inpainting record; each is found by its digest, under
              any name (default: this script's folder, the current folder and ./models, which
              is where a Seedbank checkout keeps its shipped models)
    --model   the diffusers model folder, if it is not found by digest
    --refiner the refiner's diffusers folder (SDXL records with a refiner), likewise
    --out     where to write the PNG (default: seedbank-<seed>.png)
    --device  where to render (default: the recorded device)

Exit status: 0 when the printed sha256 equals the record's, 1 when it differs, 2 on usage
errors (bad arguments, a model, resource or input not found, a device this machine lacks).
"""

import argparse
import hashlib
import importlib.util
import json
import os
import sys

# cuBLAS reads this when CUDA first starts; set it before torch can touch the GPU.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np  # noqa: E402
import PIL  # noqa: E402
import torch  # noqa: E402

DOCUMENT = json.loads(
    r"""
@@DOCUMENT@@
"""
)

_TORCHVISION_SCHEMAS = None  # kept referenced: dropping the Library deregisters its schemas


def ensure_torchvision():
    """Make torchvision importable where its C ops fail to load against the installed torch.

    This only does something on machines where a CUDA-built torchvision sits beside a CPU-only
    torch: `import torchvision` then dies with "operator torchvision::nms does not exist", and
    diffusers (through transformers' image processors) cannot import. There the two missing op
    schemas are declared (torchvision.ops stay unusable; rendering needs none) and the import
    is retried. Where `import torchvision` works, or torchvision is absent, it does nothing.
    """
    global _TORCHVISION_SCHEMAS
    if "torchvision" in sys.modules:  # a failed import removes it: present means imported
        return
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return  # not installed: transformers and diffusers manage without it
    except RuntimeError as exc:
        if "operator torchvision::nms does not exist" not in str(exc):
            raise
        library = torch.library.Library("torchvision", "DEF")
        for name in ("nms", "qnms"):
            library.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_SCHEMAS = library
        # The failed import left half-initialised submodules; the retry must start clean.
        for name in [n for n in sys.modules if n.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        import torchvision  # noqa: F401


ensure_torchvision()

import diffusers  # noqa: E402
import transformers  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}

# --- Seedbank's engine/prompt_weighting.py, verbatim (A1111's emphasis syntax) -------------
@@PROMPT_WEIGHTING@@
# --- end of engine/prompt_weighting.py -----------------------------------------------------

# --- Seedbank's engine/render_steps.py, verbatim (LoRA, VAE, clip skip, hires fix, SDXL) ---
@@RENDER_STEPS@@
# --- end of engine/render_steps.py ---------------------------------------------------------


def configure_determinism(threads):
    """The switches Seedbank's renderer turns on; each can move the last bits of the pixels."""
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    # Reductions split work by thread, so 1 and 2 threads differ in the last bits.
    torch.set_num_threads(threads)


NON_FINITE = {"Infinity": float("inf"), "-Infinity": float("-inf"), "NaN": float("nan")}


def build_scheduler(config):
    """The scheduler exactly as recorded: the full config, not just the class name. JSON has no
    infinities, so they were recorded as strings (DPM++ 2M's lambda_min_clipped is -inf)."""
    cls = getattr(diffusers, config["_class_name"])
    restored = {k: NON_FINITE.get(v, v) if isinstance(v, str) else v for k, v in config.items()}
    return cls.from_config(restored)


def load_pipeline(model_path, precision, device, scheduler_config, class_name=None):
    """The model folder as the pipeline class its model_index.json names (SD or SDXL), or as
    `class_name` (a refiner loads as SDXL's img2img pipeline)."""
    class_name = class_name or model_class_name(model_path)
    pipe = diffusers_class(class_name).from_pretrained(
        model_path,
        dtype=DTYPES[precision],
        scheduler=build_scheduler(scheduler_config),
        local_files_only=True,  # never reach for a model hub
        low_cpu_mem_usage=importlib.util.find_spec("accelerate") is not None,
        **load_options(class_name),
    )
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def source_picture(path, size, mode):
    """An init image or mask at the recipe's size (Lanczos when sizes differ, as recorded)."""
    with PIL.Image.open(path) as opened:
        picture = opened.convert(mode)
    return picture if picture.size == size else picture.resize(size, PIL.Image.Resampling.LANCZOS)


def mode_arguments(document, inputs):
    size = (document["width"], document["height"])
    if document["mode"] == "txt2img":
        return {"width": document["width"], "height": document["height"]}
    arguments = {
        "image": source_picture(inputs["init_image"], size, "RGB"),
        "strength": document["strength"],
    }
    if document["mode"] == "inpaint":
        arguments.update(
            mask_image=source_picture(inputs["mask"], size, "L"),
            width=document["width"],
            height=document["height"],
        )
    return arguments


def conditioning_size(document, width_key, height_key):
    """An SDXL size as diffusers takes it, (height, width); None (0): the size rendered."""
    width, height = document.get(width_key, 0), document.get(height_key, 0)
    return (height, width) if width else None


def render(document, model_path, device, resources=None, inputs=None, refiner_path=None):
    """Render the whole recorded batch in one call and return the record's image.

    `resources` maps each resource's sha256 to its file; `inputs` the roles init_image and
    mask to their files (img2img and inpainting); `refiner_path` the refiner's folder."""
    resources = resources or {}
    configure_determinism(document["torch_threads"])
    base = load_pipeline(model_path, document["precision"], device, document["scheduler_config"])
    apply_loras(
        base,
        [(lora["resource"], resources[lora["resource"]], lora["weight"])
         for lora in document.get("loras") or ()],
    )  # fmt: skip
    vae = None
    if document.get("vae"):
        vae = vae_from_file(base.vae, resources[document["vae"]["resource"]])
    pipe = mode_pipeline(base, document["mode"], vae=vae)
    refiner = None
    if document.get("refiner_model"):
        recorded = document["refiner_model"]
        refiner_base = load_pipeline(
            refiner_path, document["precision"], device, recorded["scheduler_config"],
            class_name=REFINER_PIPELINE,
        )  # fmt: skip
        refiner = {
            "pipe": mode_pipeline(refiner_base, "img2img", vae=vae),
            "switch_at": document["refiner_switch_at"],
        }
    # One CPU generator per image: a seed then means the same starting noise on every device.
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in document["seeds"]]
    images = generate(
        pipe,
        prompt=document["prompt"],
        negative_prompt=document["negative_prompt"],
        steps=document["steps"],
        guidance=document["guidance"],
        generators=generators,
        mode_arguments=mode_arguments(document, inputs or {}),
        clip_skip=document.get("clip_skip", 1),
        hires=document.get("hires"),
        encode_pair=encode_pair if document.get("prompt_weighting") else None,
        embeddings=[
            (use["token"], resources[use["resource"]]) for use in document.get("embeddings") or ()
        ],
        prompt_2=document.get("prompt_2", ""),
        negative_prompt_2=document.get("negative_prompt_2", ""),
        original_size=conditioning_size(document, "original_width", "original_height"),
        crops_coords_top_left=(document.get("crop_top", 0), document.get("crop_left", 0)),
        target_size=conditioning_size(document, "target_width", "target_height"),
        refiner=refiner,
    )
    return images[document["batch_index"]]


# --- finding the files by digest ------------------------------------------------------------
_CHUNK = 1 << 20
_FILE_SUFFIXES = (".safetensors", ".pt", ".bin", ".ckpt", ".png")


def weights_digest(root):
    """Seedbank's digest of a model folder: sha256 over every file's relative path, size and
    bytes, in path order (engine/weights.py)."""
    digest = hashlib.sha256()
    files = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            files.append((os.path.relpath(path, root).replace(os.sep, "/"), path))
    for relative, path in sorted(files):
        encoded = relative.encode()
        digest.update(b"%d:%s%d:" % (len(encoded), encoded, os.path.getsize(path)))
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(roots, depth=3):
    """Folders under the roots, a few levels deep, each once."""
    seen = set()
    for root in roots:
        root = os.path.abspath(root)
        for folder, subfolders, _ in os.walk(root):
            if folder.count(os.sep) - root.count(os.sep) >= depth:
                subfolders[:] = []
            real = os.path.realpath(folder)
            if real not in seen:
                seen.add(real)
                yield folder


def find_model(model, roots):
    """The model folder whose digest is the recorded one (its recorded path first)."""
    candidates = []
    if model.get("path"):
        candidates += [model["path"]] + [os.path.join(root, model["path"]) for root in roots]
    candidates += [f for f in _walk(roots) if os.path.isfile(os.path.join(f, "model_index.json"))]
    checked = set()
    for folder in candidates:
        folder = os.path.realpath(folder)
        if folder in checked or not os.path.isfile(os.path.join(folder, "model_index.json")):
            continue
        checked.add(folder)
        if weights_digest(folder) == model["digest"]:
            return folder
    return None


def find_file(sha256, roots, preferred_names=()):
    """A file whose sha256 is `sha256` (files with a preferred name are hashed first)."""
    files = [
        os.path.join(folder, name)
        for folder in _walk(roots)
        for name in sorted(os.listdir(folder))
        if name.endswith(_FILE_SUFFIXES) and os.path.isfile(os.path.join(folder, name))
    ]
    files.sort(key=lambda path: os.path.basename(path) not in preferred_names)
    for path in files:
        if file_sha256(path) == sha256:
            return path
    return None


def input_digest(path, mode):
    """Seedbank's digest of a stored init image (RGB) or mask (L): mode, size and pixels."""
    with PIL.Image.open(path) as opened:
        picture = opened.convert(mode)
    header = f"{mode}:{picture.width}x{picture.height}:".encode()
    return hashlib.sha256(header + picture.tobytes()).hexdigest()


def find_inputs(document, roots):
    """{role: file} for the record's init image and mask, each checked by its pixel digest."""
    found = {}
    for role, wanted in (document.get("inputs") or {}).items():
        mode = "L" if role == "mask" else "RGB"
        for root in roots:
            path = os.path.join(root, wanted["file"])
            if os.path.isfile(path) and input_digest(path, mode) == wanted["sha256"]:
                found[role] = path
                break
    return found


def pixel_sha256(image):
    """sha256 of the decoded RGB pixels: PNG bytes vary with encoder settings, pixels do not."""
    return hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest()


def environment_notes(document, device):
    """What differs from the recorded environment: the usual reasons for a mismatch."""
    recorded = document.get("environment", {})
    current = {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "device": device,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    return [
        f"{key}: recorded {recorded[key]!r}, here {value!r}"
        for key, value in current.items()
        if key in recorded and recorded[key] != value
    ]


def main(argv=None):
    model = DOCUMENT["model"]
    recorded_device = DOCUMENT.get("environment", {}).get("device", "cpu")
    parser = argparse.ArgumentParser(description="Re-render an exported Seedbank record.")
    parser.add_argument("--files", action="append", default=[], help="folder to search")
    parser.add_argument("--model", default=None, help="diffusers model folder")
    parser.add_argument("--refiner", default=None, help="the refiner's diffusers folder")
    parser.add_argument("--out", default=f"seedbank-{DOCUMENT['seed']}.png", help="PNG to write")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=recorded_device)
    args = parser.parse_args(argv)

    here = os.path.dirname(os.path.abspath(__file__))
    roots = [*args.files, here, os.getcwd(), os.path.join(os.getcwd(), "models")]
    model_path = args.model or find_model(model, roots)
    if not model_path or not os.path.isfile(os.path.join(model_path, "model_index.json")):
        parser.error(
            f"no diffusers model folder with digest {model['digest']} (model {model['name']!r}) "
            "found; pass --files DIR or --model PATH"
        )
    refiner_path = None
    if DOCUMENT.get("refiner_model"):
        refiner = DOCUMENT["refiner_model"]
        refiner_path = args.refiner or find_model(refiner, roots)
        if not refiner_path or not os.path.isfile(os.path.join(refiner_path, "model_index.json")):
            parser.error(
                f"no refiner folder with digest {refiner['digest']} ({refiner['name']!r}) found; "
                "pass --files DIR or --refiner PATH"
            )
    resources = {}
    for resource in DOCUMENT.get("resources") or ():
        preferred = {resource.get("file_name", "")}
        path = find_file(resource["sha256"], roots, preferred)
        if path is None:
            parser.error(
                f"no {resource.get('kind', 'resource')} file with sha256 {resource['sha256']} "
                f"({resource.get('name', '')!r}) found; put it in a folder given with --files"
            )
        resources[resource["sha256"]] = path
    inputs = find_inputs(DOCUMENT, roots)
    for role, wanted in (DOCUMENT.get("inputs") or {}).items():
        if role not in inputs:
            parser.error(f"the {role} {wanted['file']} (pixel digest {wanted['sha256']}) was not "
                         "found next to this script or in a folder given with --files")  # fmt: skip
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device here")
    if DOCUMENT["precision"] not in DTYPES:
        parser.error(f"unknown precision {DOCUMENT['precision']!r}")
    if DOCUMENT["precision"] == "fp16" and args.device != "cuda":
        parser.error("this record is fp16, which renders on CUDA only")

    image = render(DOCUMENT, model_path, args.device, resources, inputs, refiner_path)
    image.save(args.out, format="PNG")
    actual = pixel_sha256(image)
    expected = DOCUMENT["expected_pixel_sha256"]
    print(f"wrote {args.out}")
    print(f"sha256 {actual}")
    print(f"expected {expected}")
    if actual == expected:
        print("match: bit-identical to the record")
        return 0
    print("match: NO, the pixels differ from the record")
    for note in environment_notes(DOCUMENT, args.device):
        print(f"  differs from the recording: {note}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
'''


__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "export_document", "export_script"]
