"""Each factor a recipe holds beyond the checkpoint and the numbers — a LoRA and its weight, a
VAE file, clip skip, prompt weighting, hires fix — changes the pixels, is recorded in the
environment, and renders bit-identically when rendered again."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine import prompt_weighting
from engine.pipeline import RenderRequest, render
from engine.recipe import A1111_WEIGHTING, EmbeddingUse, Hires, LoraUse, Recipe, ResourceUse
from engine.render_steps import ResourceRefused
from engine.resources import file_sha256
from engine.tiny_resources import build_tiny_embedding, build_tiny_lora, build_tiny_vae

STEPS = 6


@pytest.fixture(scope="module")
def files(sd_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("factors")
    built = {
        "lora": build_tiny_lora(sd_model_dir, folder / "lora.safetensors", seed=1),
        "vae": build_tiny_vae(sd_model_dir, folder / "vae.safetensors", seed=2),
        "embedding": build_tiny_embedding(sd_model_dir, folder / "sbk-thing.safetensors", seed=3),
    }
    return {name: str(path) for name, path in built.items()}


@pytest.fixture(scope="module")
def shas(files: dict[str, str]) -> dict[str, str]:
    return {name: file_sha256(Path(path)) for name, path in files.items()}


def _render(model: Path, files: dict[str, str], recipe: Recipe):
    request = RenderRequest(
        model_path=str(model),
        recipe=recipe,
        seeds=(5,),
        resource_files={file_sha256(Path(path)): path for path in files.values()},
    )
    return render(request)[0]


BASE = Recipe(prompt="a (red) circle on a blue background", seed=5, steps=STEPS)


def _changes(shas: dict[str, str]) -> dict[str, dict[str, object]]:
    lora = LoraUse(resource=shas["lora"], weight=0.8)
    return {
        "lora": {"loras": (lora,)},
        "lora weight": {"loras": (replace(lora, weight=0.5),)},
        "vae": {"vae": ResourceUse(resource=shas["vae"])},
        "embedding": {
            "prompt": "a (red) sbk-thing on a blue background",
            "embeddings": (EmbeddingUse(token="sbk-thing", resource=shas["embedding"]),),
        },
        "clip skip": {"clip_skip": 2},
        "prompt weighting": {"prompt_weighting": A1111_WEIGHTING},
        "hires": {"hires": Hires(scale=1.5, steps=3, denoise=0.5)},
        "hires upscaler": {"hires": Hires(scale=1.5, upscaler="Lanczos", steps=3, denoise=0.5)},
    }


@pytest.mark.parametrize(
    "factor",
    [
        "lora",
        "lora weight",
        "vae",
        "embedding",
        "clip skip",
        "prompt weighting",
        "hires",
        "hires upscaler",
    ],
)
def test_each_factor_moves_the_pixels_and_reruns_bit_identically(
    sd_model_dir: Path, files, shas, deterministic, factor: str
) -> None:
    base = _render(sd_model_dir, files, BASE)
    changes = _changes(shas)
    changed = replace(BASE, **changes[factor])
    first, again = _render(sd_model_dir, files, changed), _render(sd_model_dir, files, changed)
    assert first.pixel_sha256 == again.pixel_sha256 and first.png == again.png
    assert first.pixel_sha256 != base.pixel_sha256
    if factor == "embedding":  # the same words without the embedding loaded: plain BPE text
        words = replace(changed, embeddings=())
        assert _render(sd_model_dir, files, words).pixel_sha256 != first.pixel_sha256
    if factor == "lora weight":  # another weight of the same LoRA is another picture too
        other = _render(sd_model_dir, files, replace(BASE, **changes["lora"]))
        assert first.pixel_sha256 != other.pixel_sha256
    environment = first.environment
    expected_key = {
        "lora": "loras",
        "lora weight": "loras",
        "vae": "vae",
        "embedding": "embeddings",
        "clip skip": "clip_skip",
        "prompt weighting": "prompt_weighting",
        "hires": "hires",
        "hires upscaler": "hires",
    }[factor]
    assert environment[expected_key], environment


def test_lora_at_weight_zero_and_after_lora_renders_are_the_plain_render(
    sd_model_dir: Path, files, shas, deterministic
) -> None:
    plain = _render(sd_model_dir, files, BASE).pixel_sha256
    zero = replace(BASE, loras=(LoraUse(resource=shas["lora"], weight=0.0),))
    assert _render(sd_model_dir, files, zero).pixel_sha256 == plain
    _render(sd_model_dir, files, replace(BASE, loras=(LoraUse(resource=shas["lora"], weight=1),)))
    # The adapter stays loaded in the cached pipeline, switched off for recipes without it.
    assert _render(sd_model_dir, files, BASE).pixel_sha256 == plain


def test_hires_renders_at_the_scaled_size(sd_model_dir: Path, files, deterministic) -> None:
    import io

    from PIL import Image

    hires = replace(BASE, hires=Hires(scale=2, steps=2, denoise=0.4))
    with Image.open(io.BytesIO(_render(sd_model_dir, files, hires).png)) as picture:
        assert picture.size == (128, 128)


def test_a_lora_whose_keys_do_not_all_load_is_refused(
    sd_model_dir: Path, files, tmp_path: Path, deterministic
) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(files["lora"])
    first = sorted(key for key in state if key.endswith("lora_A.weight"))[0]
    # A layer the model does not have: diffusers would drop it with a warning at most.
    state[first.replace("attn1", "attn9")] = state[first].clone()
    state[first.replace("attn1", "attn9").replace("lora_A", "lora_B")] = state[
        first.replace("lora_A", "lora_B")
    ].clone()
    broken = tmp_path / "broken.safetensors"
    save_file(state, str(broken))
    recipe = replace(BASE, loras=(LoraUse(resource=file_sha256(broken), weight=1.0),))
    with pytest.raises((ResourceRefused, ValueError)):
        _render(sd_model_dir, {**files, "broken": str(broken)}, recipe)


def test_the_recipe_names_the_parser_it_renders_with() -> None:
    assert A1111_WEIGHTING == f"{prompt_weighting.PARSER}@{prompt_weighting.PARSER_VERSION}"


def test_embeddings_are_loaded_for_their_render_only(
    sd_model_dir: Path, files, shas, deterministic
) -> None:
    words = replace(BASE, prompt="a sbk-thing")
    plain = _render(sd_model_dir, files, words).pixel_sha256
    use = EmbeddingUse(token="sbk-thing", resource=shas["embedding"])
    with_embedding = replace(words, embeddings=(use,))
    both = {
        _render(sd_model_dir, files, with_embedding).pixel_sha256,
        _render(sd_model_dir, files, replace(with_embedding, clip_skip=2)).pixel_sha256,
    }
    assert plain not in both and len(both) == 2
    assert _render(sd_model_dir, files, words).pixel_sha256 == plain


@pytest.mark.parametrize("layout", ["peft", "kohya"])
def test_a_lora_with_text_encoder_layers_loads_whole_in_either_layout(
    sd_model_dir: Path, files, tmp_path: Path, deterministic, layout: str
) -> None:
    """Most A1111 LoRAs adapt the text encoder too; kohya names its modules text_model.…"""
    from engine.tiny_resources import kohya_layout

    peft_file = build_tiny_lora(
        sd_model_dir, tmp_path / "te.safetensors", seed=7, text_encoder=True
    )
    path = (
        peft_file if layout == "peft" else kohya_layout(peft_file, tmp_path / "kohya.safetensors")
    )
    unet_only = build_tiny_lora(sd_model_dir, tmp_path / "unet.safetensors", seed=7)
    everything = {**files, "te": str(path), "unet": str(unet_only)}
    with_encoder = replace(BASE, loras=(LoraUse(resource=file_sha256(path), weight=0.9),))
    first = _render(sd_model_dir, everything, with_encoder)
    assert _render(sd_model_dir, everything, with_encoder).pixel_sha256 == first.pixel_sha256
    # Same UNet layers without the text encoder's: the text encoder's layers moved the pixels.
    unet_alone = replace(BASE, loras=(LoraUse(resource=file_sha256(unet_only), weight=0.9),))
    assert _render(sd_model_dir, everything, unet_alone).pixel_sha256 != first.pixel_sha256
    assert (
        _render(sd_model_dir, everything, BASE).pixel_sha256
        == _render(sd_model_dir, files, BASE).pixel_sha256
    )
