"""What a Seedbank recipe holds of A1111 infotext (engine.imports.a1111): resources by hash,
the hires fix, and every param that moves pixels either held or reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.imports.a1111 import recipe_from_infotext
from engine.imports.source import RowRejected, SourceResource
from engine.recipe import Hires

FIXTURES = Path(__file__).parent.parent / "fixtures" / "a1111_infotext"
BASE = "a cat{tags}\nSteps: 20, Sampler: {sampler}, CFG scale: 7, Seed: 1, Size: 512x768"


def read(params: str = "", tags: str = "", sampler: str = "Euler"):
    text = BASE.format(tags=tags, sampler=sampler) + (f", {params}" if params else "")
    return recipe_from_infotext(text, key="k", location="a.png", raw={"parameters": text})


def test_loras_embedding_vae_clip_skip_and_hires_field_by_field():
    text = (FIXTURES / "loras_embedding_vae_hires.txt").read_text(encoding="utf-8")
    found = recipe_from_infotext(text, key="k", location="x.png", raw={})
    assert found.prompt == "masterpiece, a lighthouse on a cliff at dusk, , oil painting"
    assert found.negative_prompt == "easynegative, lowres, blurry"
    assert (found.scheduler, found.steps, found.seed) == ("DPM++ 2M Karras", 24, 2766441390)
    assert found.loras == (
        SourceResource(kind="lora", name="scenes-outline-lora", hash="0d3a1f2b9c4e", weight=0.8),
        # <lyco:…> is the same network to A1111 ≥ 1.5
        SourceResource(kind="lora", name="paper_texture_v2", hash="7c6bad76eb54", weight=0.45),
    )
    assert found.vae == SourceResource(
        kind="vae", name="vae-ft-mse-840000-ema-pruned", hash="735e4c3a44"
    )
    assert found.embeddings == (
        SourceResource(kind="embedding", name="easynegative", hash="c74b4e810b03"),
    )
    assert found.clip_skip == 2
    assert found.hires == Hires(scale=1.5, upscaler="Latent (nearest)", steps=12, denoise=0.42)
    assert (found.unsupported, found.missing(), found.warnings) == ((), [], ())
    assert found.files() == (*found.loras, *found.embeddings, found.vae)
    assert found.unavailable() == ()
    # Without the registered files the row needs them and is never rendered.
    with pytest.raises(RowRejected, match="no registered file"):
        found.recipe(None, {})


def test_a_model_upscaler_is_a_resource_seedbank_does_not_have():
    text = (FIXTURES / "quoted_values.txt").read_text(encoding="utf-8")
    found = recipe_from_infotext(text, key="k", location="x.png", raw={})
    assert found.hires == Hires(scale=2.0, upscaler="R-ESRGAN 4x+ Anime6B", steps=15,
                                denoise=0.45)  # fmt: skip
    assert SourceResource(kind="upscaler", name="R-ESRGAN 4x+ Anime6B") in found.unavailable()


@pytest.mark.parametrize(
    ("tags", "weight"),
    [
        (" <lora:x>", 1.0),
        (" <lora:x:0.7>", 0.7),
        (" <lora:x:0.7:0.7>", 0.7),
        (" <lora:x:te=0.5:unet=0.5>", 0.5),
        (" <lora:x:te=0.3>", 0.3),  # the UNet takes the text encoder's when not given
    ],
)
def test_lora_tag_weights_are_read_as_a1111_reads_them(tags, weight):
    (lora,) = read(tags=tags).loras
    assert (lora.name, lora.weight) == ("x", weight)


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (" <lora:x:1:0.5>", "text encoder 1 and the UNet 0.5"),
        (" <lora:x:te=0.2:unet=1>", "text encoder 0.2 and the UNet 1"),
        (" <lora:x:heavy>", "weight in <lora:x:heavy>"),
    ],
)
def test_lora_tags_seedbank_cannot_hold_are_refused_with_the_reason(tags, message):
    with pytest.raises(RowRejected, match=message):
        read(tags=tags)


def test_lora_options_and_other_networks_are_reported():
    found = read(tags=" <lora:x:1:1:8> <lora:y:1:lbw=MIDD> <hypernet:anime:0.5> <foo:bar>")
    assert "dyn=8" in found.unsupported[0] and "lbw=MIDD" in found.unsupported[1]
    assert [(r.kind, r.name) for r in found.unavailable()] == [("hypernet", "anime"),
                                                                ("foo", "bar")]  # fmt: skip
    assert found.prompt == "a cat"


def test_hashes_of_loras_the_prompt_does_not_use_are_reported():
    found = read('Lora hashes: "x: 0123456789ab, ghost: 0123456789ab"', tags=" <lora:x:1>")
    assert found.loras[0].hash == "0123456789ab"
    assert found.unsupported == ("hashes name LoRA(s) ghost that no <lora> tag uses",)


@pytest.mark.parametrize(
    ("params", "scale"),
    [
        ("Hires resize: 1024x1536", 2.0),
        ("Hires resize: 768x0", 1.5),  # 0: follows the other side, as in A1111
        ("Hires resize: 0x1152", 1.5),
        ("Hires upscale: 2, Hires resize: 1024x1536", 2.0),
    ],
)
def test_hires_resize_becomes_a_scale_when_it_is_one(params, scale):
    found = read(f"{params}, Hires upscaler: Latent, Denoising strength: 0.5")
    assert found.hires == Hires(scale=scale, upscaler="Latent", steps=0, denoise=0.5)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("Hires resize: 1024x1024", "not one scale of 512x768"),
        ("Hires resize: 0x0", "not one scale"),
        ("Hires upscale: 1.5, Hires resize: 1024x1536", "disagree"),
        ("Hires steps: 10", "without Hires upscale"),
    ],
)
def test_hires_fields_seedbank_cannot_hold_reject_the_row(params, message):
    with pytest.raises(RowRejected, match=message):
        read(f"{params}, Denoising strength: 0.5")
    with pytest.raises(RowRejected, match="without Denoising strength"):
        read("Hires upscale: 2")


def test_denoising_strength_without_hires_is_an_img2img_render():
    found = read("Denoising strength: 0.75, Mask blur: 4")
    assert found.hires is None
    assert "Denoising strength 0.75 without a hires fix" in found.unsupported[0]
    assert found.unsupported[1] == "A1111 params 'Mask blur: 4'"


def test_params_that_move_pixels_are_reported_and_the_others_pass():
    harmless = (
        "Version: v1.10.1, RNG: CPU, Emphasis: Original, Schedule type: Automatic, "
        "Hires upscale: 2, Denoising strength: 0.5, Hires upscaler: Latent, "
        "Hires sampler: Use same sampler, Hires CFG Scale: 7, ENSD: 31337, "
        'Template: "a {cat|dog}", Batch size: 4, Batch pos: 1'
    )
    assert read(harmless).unsupported == ()  # ENSD adds nothing to Euler's pixels
    moving = "Variation seed: 5, Variation seed strength: 0.3, ENSD: 31337, Face restoration: X"
    found = read(moving, sampler="Euler a")  # an ancestral sampler: ENSD counts
    assert found.unsupported == (
        "A1111 params 'Variation seed: 5', 'Variation seed strength: 0.3', 'ENSD: 31337', "
        "'Face restoration: X'",
    )
    assert read("Hires CFG Scale: 5, Hires upscale: 2, Denoising strength: 0.5").unsupported


def test_civitai_hashes_and_resources_name_the_files():
    hashes = json.dumps({"model": "6ce0161689", "vae": "735e4c3a44", "lora:x": "a1b2c3d4e5",
                         "embed:bad_hands": "c74b4e810b"})  # fmt: skip
    found = read(f"Hashes: {json.dumps(hashes)}", tags=" <lora:x:0.5>")
    assert found.model_hash == "6ce0161689"
    assert found.loras == (SourceResource(kind="lora", name="x", hash="a1b2c3d4e5", weight=0.5),)
    assert found.vae == SourceResource(kind="vae", hash="735e4c3a44")
    assert found.embeddings == (SourceResource(kind="embedding", name="bad_hands",
                                               hash="c74b4e810b"),)  # fmt: skip

    resources = json.dumps([
        {"type": "checkpoint", "modelVersionId": 1},
        {"type": "lora", "weight": 0.8, "modelVersionId": 123, "modelName": "Outline"},
        {"type": "lora", "air": "urn:air:sd1:lora:civitai:5@6"},
    ])  # fmt: skip
    found = read(f"Civitai resources: {json.dumps(resources)}")  # Civitai's generator: no tags
    assert found.loras == (
        SourceResource(kind="lora", name="Outline", civitai_version="123", weight=0.8),
        SourceResource(kind="lora", air="urn:air:sd1:lora:civitai:5@6", weight=1.0),
    )
    mismatch = read(f"Civitai resources: {json.dumps(resources)}", tags=" <lora:x:0.3>")
    assert "do not match the prompt's 1 <lora> tag" in mismatch.unsupported[0]
