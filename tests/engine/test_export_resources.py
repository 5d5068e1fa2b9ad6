"""Exports of recipes that use LoRAs, a VAE file, clip skip, hires fix, img2img and inpainting:
the standalone script finds every file by digest in the folder it is given and re-renders the
record bit for bit in a fresh process that cannot import Seedbank."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from engine.export import export_document, export_script
from engine.pipeline import RenderRequest, configure_determinism, render
from engine.recipe import A1111_WEIGHTING, EmbeddingUse, Hires, LoraUse, Recipe, ResourceUse
from engine.resources import file_sha256
from engine.tiny_resources import build_tiny_embedding, build_tiny_lora, build_tiny_vae
from engine.weights import weights_digest
from tests.engine.support import run_exported_scripts

THREADS = 1
STEPS = 6


@pytest.fixture(scope="module")
def files(sd_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("resources")
    return {
        "lora": build_tiny_lora(sd_model_dir, folder / "style.safetensors", seed=3),
        "vae": build_tiny_vae(sd_model_dir, folder / "decoder.safetensors", seed=4),
        "embedding": build_tiny_embedding(sd_model_dir, folder / "thing.safetensors", seed=5),
    }


@pytest.fixture(scope="module")
def one_thread():
    previous = torch.get_num_threads()
    configure_determinism(THREADS)
    yield
    torch.set_num_threads(previous)


def _source_png(mode: str, colour: Any) -> tuple[bytes, str]:
    """A stored init image or mask, and its digest as Seedbank stores sources."""
    picture = Image.new(mode, (64, 64), colour)
    if mode == "L":
        picture.paste(0, (0, 0, 32, 64))  # keep the left half
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    digest = hashlib.sha256(f"{mode}:64x64:".encode() + picture.tobytes()).hexdigest()
    return buffer.getvalue(), digest


def _record(
    model: Path, files: dict[str, Path], recipe: Recipe, seeds: tuple[int, ...], **inputs: bytes
) -> dict[str, Any]:
    shas = {name: file_sha256(path) for name, path in files.items()}
    request = RenderRequest(
        model_path=str(model),
        recipe=recipe,
        seeds=seeds,
        resource_files={shas[name]: str(path) for name, path in files.items()},
        **inputs,
    )
    image = render(request)[-1]
    portable = {
        "model": "tiny-sd@seed0",
        "model_digest": weights_digest(model),
        **Recipe.portable(recipe),
        "seed": image.seed,
        "batch_size": len(seeds),
        "batch_index": image.batch_index,
    }
    for role, key in (("init_image", "init_image_sha256"), ("mask", "mask_sha256")):
        if role in inputs:
            portable[key] = _source_png("L" if role == "mask" else "RGB", "white")[1]
    resources = [
        {"sha256": shas[name], "kind": name, "name": name, "file_name": path.name}
        for name, path in files.items()
        if shas[name] in recipe.resources()
    ]
    return export_document(
        recipe=portable,
        model_path="",  # as for a model outside a Seedbank checkout: found by digest
        pixel_sha256=image.pixel_sha256,
        environment=image.environment,
        resources=resources,
    )


def test_every_factor_reproduces_from_the_export_alone(
    sd_model_dir: Path, files: dict[str, Path], one_thread: None, tmp_path: Path
) -> None:
    shas = {name: file_sha256(path) for name, path in files.items()}
    init_png, _ = _source_png("RGB", "white")
    mask_png, _ = _source_png("L", "white")
    cases = {
        "all-factors": _record(
            sd_model_dir,
            files,
            Recipe(
                prompt="a (red:1.4) sbk-thing BREAK on a [blue] background",
                embeddings=(EmbeddingUse(token="sbk-thing", resource=shas["embedding"]),),
                negative_prompt="blurry",
                prompt_weighting=A1111_WEIGHTING,
                seed=7,
                steps=STEPS,
                guidance=5.0,
                scheduler="Euler a",
                loras=(LoraUse(resource=shas["lora"], weight=0.8, name="style"),),
                vae=ResourceUse(resource=shas["vae"], name="decoder"),
                clip_skip=2,
                hires=Hires(scale=1.5, upscaler="Latent", steps=3, denoise=0.6),
            ),
            seeds=(7, 8),
        ),
        "inpaint-with-lora": _record(
            sd_model_dir,
            files,
            Recipe(
                prompt="a house",
                seed=11,
                steps=STEPS,
                mode="inpaint",
                strength=0.7,
                init_image_id=1,
                mask_id=2,
                loras=(LoraUse(resource=shas["lora"], weight=0.5),),
            ),
            seeds=(11,),
            init_image=init_png,
            mask=mask_png,
        ),
    }
    # One folder people would be handed: the model under another name, the resources renamed.
    given = tmp_path / "given"
    shutil.copytree(sd_model_dir, given / "some-model")
    for name, path in files.items():
        shutil.copy(path, given / f"renamed-{name}.safetensors")
    run_exported_scripts(
        cases, folder=tmp_path, files=given, inputs={"init_image": init_png, "mask": mask_png}
    )


def test_a_missing_resource_is_a_usage_error(
    sd_model_dir: Path, files: dict[str, Path], one_thread: None, tmp_path: Path
) -> None:
    import runpy

    sha = file_sha256(files["lora"])
    document = _record(
        sd_model_dir,
        files,
        Recipe(prompt="x", seed=1, steps=2, loras=(LoraUse(resource=sha, weight=1.0),)),
        seeds=(1,),
    )
    script = tmp_path / "script.py"
    script.write_text(export_script(document), encoding="utf-8")
    main = runpy.run_path(str(script), run_name="exported")["main"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exited:
        main(["--model", str(sd_model_dir), "--files", str(empty)])
    assert exited.value.code == 2


def test_the_scripts_model_digest_is_seedbanks(sd_model_dir: Path, tmp_path: Path) -> None:
    import runpy

    document = export_document(
        recipe={
            "model": "m",
            "model_digest": "0" * 64,
            **Recipe(prompt="x", seed=1).portable(),
            "batch_size": 1,
            "batch_index": 0,
        },
        model_path="",
        pixel_sha256="0" * 64,
        environment={"scheduler_config": {"_class_name": "PNDMScheduler"}, "torch_threads": 1},
    )
    script = tmp_path / "script.py"
    script.write_text(export_script(document), encoding="utf-8")
    namespace = runpy.run_path(str(script), run_name="exported")
    assert namespace["weights_digest"](str(sd_model_dir)) == weights_digest(sd_model_dir)
