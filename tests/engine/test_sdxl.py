"""SDXL-shaped models end to end in the engine: the tiny SDXL renders; each SDXL factor (second
prompts, size and crop conditioning, clip skip, A1111 weighting, LoRA, embedding, hires,
refiner) moves the pixels and reruns bit-identically; defaults are diffusers' own; SD 1.x models
refuse SDXL fields; an SDXL record's export re-renders bit-identically in a fresh process."""

from __future__ import annotations

import io
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from engine import render_steps
from engine.export import export_document
from engine.pipeline import RenderedImage, RenderRequest, configure_determinism, load, render
from engine.png_files import pixel_sha256
from engine.recipe import (
    A1111_WEIGHTING,
    SD,
    SDXL,
    SDXL_REFINER,
    EmbeddingUse,
    Hires,
    LoraUse,
    Recipe,
    RecipeLimits,
    family_errors,
    model_family,
    recipe_errors,
    sdxl_fields_set,
)
from engine.resources import file_sha256
from engine.tiny_sdxl import build_tiny_sdxl, build_tiny_sdxl_embedding, build_tiny_sdxl_lora
from engine.weights import weights_digest
from tests.engine.support import run_exported_scripts

STEPS = 4
THREADS = 1


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sdxl")
    base = build_tiny_sdxl(folder / "tiny-sdxl", seed=0)
    return {
        "base": base,
        "refiner": build_tiny_sdxl(folder / "tiny-sdxl-refiner", seed=0, variant="refiner"),
        "lora": build_tiny_sdxl_lora(base, folder / "files" / "lora.safetensors", seed=1),
        "embedding": build_tiny_sdxl_embedding(base, folder / "files" / "sbk-xl.safetensors"),
    }


@pytest.fixture(scope="module")
def one_thread():
    previous = torch.get_num_threads()
    configure_determinism(THREADS)
    yield
    torch.set_num_threads(previous)


def _request(models: dict[str, Path], recipe: Recipe, seeds: tuple[int, ...] = (3,), **more: Any):
    files = {file_sha256(models[name]): str(models[name]) for name in ("lora", "embedding")}
    return RenderRequest(
        model_path=str(models["base"]),
        recipe=recipe,
        seeds=seeds,
        resource_files=files,
        refiner_model_path=str(models["refiner"]) if recipe.refiner else None,
        **more,
    )


def _render(models: dict[str, Path], recipe: Recipe, **more: Any) -> RenderedImage:
    return render(_request(models, recipe, **more))[-1]


BASE = Recipe(prompt="a red circle", negative_prompt="blurry", seed=3, steps=STEPS)


def test_the_tiny_sdxl_is_sdxl_shaped_and_rebuilds_byte_identically(
    models: dict[str, Path], tmp_path: Path
) -> None:
    again = build_tiny_sdxl(tmp_path / "again", seed=0)
    assert weights_digest(again) == weights_digest(models["base"])
    assert model_family(models["base"]) == SDXL
    assert model_family(models["refiner"]) == SDXL_REFINER
    pipe = load(str(models["base"]))
    assert type(pipe).__name__ == "StableDiffusionXLPipeline"
    unet = pipe.unet.config
    text, text_2 = pipe.text_encoder.config, pipe.text_encoder_2.config
    assert unet.addition_embed_type == "text_time"
    assert unet.cross_attention_dim == text.hidden_size + text_2.hidden_size
    assert (
        unet.projection_class_embeddings_input_dim
        == unet.addition_time_embed_dim * 6 + text_2.projection_dim
    )
    size = sum(path.stat().st_size for path in models["base"].rglob("*") if path.is_file())
    assert size < 30_000_000


def test_an_sdxl_render_records_what_sdxl_adds(models: dict[str, Path], one_thread) -> None:
    image = _render(models, BASE)
    with Image.open(io.BytesIO(image.png)) as picture:
        assert picture.size == (64, 64)
    environment = image.environment
    assert environment["pipeline_class"] == "StableDiffusionXLPipeline"
    assert environment["model_family"] == SDXL
    assert environment["force_zeros_for_empty_prompt"] is True
    assert environment["vae_force_upcast"] is True
    assert environment["watermark"] is False
    assert environment["conditioning"]["crops_coords_top_left"] == [0, 0]


def _changes(models: dict[str, Path]) -> dict[str, dict[str, Any]]:
    lora = file_sha256(models["lora"])
    embedding = file_sha256(models["embedding"])
    return {
        "prompt_2": {"prompt_2": "a green square"},
        "negative_prompt_2": {"negative_prompt_2": "sharp"},
        "original size": {"original_width": 256, "original_height": 256},
        "crop": {"crop_top": 16, "crop_left": 8},
        "target size": {"target_width": 32, "target_height": 48},
        "clip skip": {"clip_skip": 2},
        "weighting": {"prompt": "a (red:1.5) circle", "prompt_weighting": A1111_WEIGHTING},
        "lora": {"loras": (LoraUse(resource=lora, weight=0.8),)},
        "embedding": {
            "prompt": "a red sbk-xl",
            "embeddings": (EmbeddingUse(token="sbk-xl", resource=embedding),),
        },
        "hires": {"hires": Hires(scale=1.5, steps=2, denoise=0.5)},
        "refiner": {"refiner": weights_digest(models["refiner"]), "refiner_switch_at": 0.5},
    }


FACTORS = [
    "prompt_2",
    "negative_prompt_2",
    "original size",
    "crop",
    "target size",
    "clip skip",
    "weighting",
    "lora",
    "embedding",
    "hires",
    "refiner",
]


@pytest.mark.parametrize("factor", FACTORS)
def test_each_sdxl_factor_moves_the_pixels_and_reruns_bit_identically(
    models: dict[str, Path], one_thread, factor: str
) -> None:
    base = _render(models, BASE)
    changed = replace(BASE, **_changes(models)[factor])
    first, again = _render(models, changed), _render(models, changed)
    assert first.pixel_sha256 == again.pixel_sha256 and first.png == again.png
    assert first.pixel_sha256 != base.pixel_sha256
    if factor == "embedding":  # the same words without the embedding: plain text
        words = _render(models, replace(changed, embeddings=()))
        assert words.pixel_sha256 != first.pixel_sha256
    if factor == "refiner":
        refiner = first.environment["refiner"]
        assert refiner["switch_at"] == 0.5 and refiner["requires_aesthetics_score"] is True
        later = _render(models, replace(changed, refiner_switch_at=0.75))
        assert later.pixel_sha256 != first.pixel_sha256
    # A recipe without the factor renders as before (adapters off, embeddings unloaded).
    assert _render(models, BASE).pixel_sha256 == base.pixel_sha256


def test_the_defaults_are_diffusers_own(models: dict[str, Path], one_thread) -> None:
    """0 sizes mean the render size, an empty second prompt the first prompt, an empty
    negative diffusers' zeros; the embeddings Seedbank computes (clip skip, weighting) equal
    diffusers' own at clip skip 1."""
    plain = replace(BASE, negative_prompt="", scheduler="Euler")  # the model's own scheduler
    cached = load(str(models["base"]))
    scheduler = type(cached.scheduler).from_config(cached.scheduler.config)
    pipe = render_steps.mode_pipeline(cached, "txt2img", scheduler=scheduler)
    generator = torch.Generator("cpu").manual_seed(3)
    diffusers_own = pipe(
        "a red circle",
        width=64,
        height=64,
        num_inference_steps=STEPS,
        guidance_scale=plain.guidance,
        generator=[generator],
    ).images[0]

    rendered = _render(models, plain).pixel_sha256
    assert rendered == pixel_sha256(diffusers_own)
    said = replace(
        plain,
        prompt_2="a red circle",
        original_width=64,
        original_height=64,
        target_width=64,
        target_height=64,
    )
    assert _render(models, said).pixel_sha256 == rendered
    # A1111 weighting of a prompt without emphasis: Seedbank's own encoding, same pixels.
    weighted = replace(plain, prompt_weighting=A1111_WEIGHTING)
    assert _render(models, weighted).pixel_sha256 == rendered
    assert _render(models, replace(BASE, prompt_weighting=A1111_WEIGHTING)).pixel_sha256 == (
        _render(models, BASE).pixel_sha256
    )
    # The empty negative is zeros here (force_zeros_for_empty_prompt): a second negative prompt
    # alone makes both negatives encoded text, the first the encoded "".
    assert _render(models, replace(plain, negative_prompt_2="x")).pixel_sha256 != rendered


def test_own_encoding_at_clip_skip_1_equals_diffusers_encode_prompt(models: dict[str, Path]):
    pipe = load(str(models["base"]))
    encoders = render_steps._sdxl_encoders(pipe)
    with torch.no_grad():
        mine, pooled = render_steps._sdxl_encode(pipe, encoders, ["a cat", "a dog"], 1)
        theirs, _, their_pooled, _ = pipe.encode_prompt(
            "a cat", prompt_2="a dog", device=torch.device("cpu"), negative_prompt="x"
        )
    assert torch.equal(mine, theirs) and torch.equal(pooled, their_pooled)


def test_sdxl_img2img_and_inpainting_render_over_the_same_modules(
    models: dict[str, Path], one_thread
) -> None:
    picture = Image.new("RGB", (64, 64), "white")
    mask = Image.new("L", (64, 64), 255)
    mask.paste(0, (0, 0, 32, 64))
    pngs = []
    for source in (picture, mask):
        buffer = io.BytesIO()
        source.save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    recipe = replace(BASE, mode="img2img", strength=0.6, init_image_id=1, crop_top=8)
    image = _render(models, recipe, init_image=pngs[0])
    assert image.environment["pipeline_class"] == "StableDiffusionXLImg2ImgPipeline"
    assert _render(models, recipe, init_image=pngs[0]).pixel_sha256 == image.pixel_sha256
    inpaint = replace(recipe, mode="inpaint", mask_id=2)
    image = _render(models, inpaint, init_image=pngs[0], mask=pngs[1])
    assert image.environment["pipeline_class"] == "StableDiffusionXLInpaintPipeline"


def test_sd1_models_refuse_sdxl_fields(sd_model_dir: Path, one_thread) -> None:
    recipe = replace(BASE, prompt_2="x", crop_top=8)
    assert sdxl_fields_set(BASE) == []
    assert sdxl_fields_set(recipe) == ["prompt_2", "crop_top"]
    errors = family_errors(recipe, SD)
    assert set(errors) == {"prompt_2", "crop_top"}
    assert "is for SDXL models" in errors["prompt_2"][0]
    assert family_errors(recipe, SDXL) == {}
    assert "model_version" in family_errors(BASE, SDXL_REFINER)
    assert "refiner" in family_errors(
        replace(BASE, refiner="a" * 64, refiner_switch_at=0.8), SDXL, refiner_family=SD
    )
    request = RenderRequest(model_path=str(sd_model_dir), recipe=recipe, seeds=(1,))
    with pytest.raises(ValueError, match="SDXL"):
        render(request)


def test_a_refiner_folder_is_not_a_model(models: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="refiner"):
        load(str(models["refiner"]))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"original_width": 512}, "original_width"),
        ({"target_width": 9000, "target_height": 9000}, "target_width"),
        ({"crop_top": -1}, "crop_top"),
        ({"prompt_2": "x" * 2001}, "prompt_2"),
        ({"prompt_2": "x", "prompt_weighting": A1111_WEIGHTING}, "prompt_2"),
        ({"refiner_switch_at": 0.8}, "refiner_switch_at"),
        ({"refiner": "b" * 64}, "refiner_switch_at"),
        ({"refiner": "b" * 64, "refiner_switch_at": 1.0}, "refiner_switch_at"),
        ({"refiner": "nope", "refiner_switch_at": 0.8}, "refiner"),
        (
            {"refiner": "b" * 64, "refiner_switch_at": 0.8, "hires": Hires(scale=2)},
            "refiner",
        ),
    ],
)
def test_sdxl_field_rules(changes: dict[str, Any], field: str) -> None:
    assert field in recipe_errors(replace(BASE, **changes), RecipeLimits())


def test_sdxl_fields_at_their_defaults_are_valid() -> None:
    ok = replace(
        BASE,
        original_width=1024,
        original_height=1024,
        refiner="b" * 64,
        refiner_switch_at=0.8,
    )
    assert recipe_errors(ok, RecipeLimits()) == {}


def _document(models: dict[str, Path], recipe: Recipe, seeds: tuple[int, ...]) -> dict[str, Any]:
    image = render(_request(models, recipe, seeds))[-1]
    portable = {
        "model": "tiny-sdxl@seed0",
        "model_digest": weights_digest(models["base"]),
        **recipe.portable(),
        "seed": image.seed,
        "batch_size": len(seeds),
        "batch_index": image.batch_index,
    }
    resources = [
        {"sha256": file_sha256(models[name]), "kind": name, "name": name, "file_name": name}
        for name in ("lora", "embedding")
        if file_sha256(models[name]) in recipe.resources()
    ]
    refiner = None
    if recipe.refiner:
        refiner = {"name": "tiny-sdxl-refiner", "digest": recipe.refiner, "path": ""}
    return export_document(
        recipe=portable,
        model_path="",
        pixel_sha256=image.pixel_sha256,
        environment=image.environment,
        resources=resources,
        refiner_model=refiner,
    )


def test_sdxl_records_reproduce_from_the_export_alone(
    models: dict[str, Path], one_thread, tmp_path: Path
) -> None:
    changes = _changes(models)
    everything = {
        **changes["original size"],
        **changes["crop"],
        **changes["target size"],
        **changes["lora"],
        **changes["embedding"],
        "prompt": "a (red:1.4) sbk-xl BREAK on [blue]",
        "prompt_weighting": A1111_WEIGHTING,
        "clip_skip": 2,
        "scheduler": "Euler a",
        "hires": Hires(scale=1.5, steps=2, denoise=0.5),
    }
    refined = {
        **changes["refiner"],
        **changes["prompt_2"],
        **changes["negative_prompt_2"],
        "crop_top": 8,
    }
    cases = {
        "everything": _document(models, replace(BASE, **everything), seeds=(3, 4)),
        "refiner": _document(models, replace(BASE, **refined), seeds=(5,)),
    }
    assert cases["refiner"]["refiner_model"]["scheduler_config"]
    # The folder people are handed: every file under another name.
    given = tmp_path / "given"
    shutil.copytree(models["base"], given / "some-model")
    shutil.copytree(models["refiner"], given / "another-model")
    for name in ("lora", "embedding"):
        shutil.copy(models[name], given / f"renamed-{name}.safetensors")
    run_exported_scripts(cases, folder=tmp_path, files=given)


def test_an_export_of_a_refiner_record_needs_the_refiner_described(
    models: dict[str, Path], one_thread
) -> None:
    recipe = replace(BASE, **_changes(models)["refiner"])
    image = render(_request(models, recipe))[0]
    portable = {
        "model": "m",
        "model_digest": weights_digest(models["base"]),
        **recipe.portable(),
        "batch_size": 1,
        "batch_index": 0,
    }
    with pytest.raises(ValueError, match="refiner"):
        export_document(
            recipe=portable,
            model_path="",
            pixel_sha256=image.pixel_sha256,
            environment=image.environment,
        )
