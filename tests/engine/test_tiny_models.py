"""The offline tiny models: reproducible to the byte, atomic to build, shaped like the real ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine import tiny_models
from engine.tiny_models import build_tiny_clip, build_tiny_sd
from engine.weights import weights_digest


def file_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_rebuilding_from_the_same_seed_gives_identical_files(
    sd_model_dir: Path, tmp_path: Path
) -> None:
    again = build_tiny_sd(tmp_path / "again", seed=0)
    assert file_bytes(again) == file_bytes(sd_model_dir)
    assert weights_digest(again) == weights_digest(sd_model_dir)


def test_the_folder_is_a_diffusers_sd_pipeline_with_sd15_scheduler(sd_model_dir: Path) -> None:
    index = json.loads((sd_model_dir / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert index["tokenizer"] == ["transformers", "CLIPTokenizer"]
    scheduler = json.loads((sd_model_dir / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "PNDMScheduler"
    expected = {**tiny_models.SD15_SCHEDULER, "timestep_spacing": "leading"}
    assert {k: scheduler[k] for k in expected} == expected
    unet = json.loads((sd_model_dir / "unet" / "config.json").read_text())
    assert unet["sample_size"] * 8 == 64 and unet["cross_attention_dim"] == 32


def test_building_again_is_a_no_op(sd_model_dir: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in sd_model_dir.rglob("*")}
    assert build_tiny_sd(sd_model_dir) == sd_model_dir
    assert {p: p.stat().st_mtime_ns for p in sd_model_dir.rglob("*")} == before


def test_a_crashed_build_leaves_neither_model_nor_temp_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(target: Path, seed: int, variant: str) -> None:
        (target / "model_index.json").write_text("{}")  # half-written
        raise RuntimeError("disk full")

    monkeypatch.setattr(tiny_models, "_write_tiny_sd", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        build_tiny_sd(tmp_path / "sd")
    assert list(tmp_path.iterdir()) == []


def test_finetune_variant_differs_from_base(sd_model_dir: Path, tmp_path: Path) -> None:
    finetune = build_tiny_sd(tmp_path / "ft", seed=0, variant="finetune")
    base_files, tuned_files = file_bytes(sd_model_dir), file_bytes(finetune)
    changed = {name for name in base_files if base_files[name] != tuned_files[name]}
    assert changed == {"unet/diffusion_pytorch_model.safetensors"}


def test_unknown_variant_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="variant"):
        build_tiny_sd(tmp_path / "x", variant="xl")


@pytest.fixture(scope="module")
def tokenizers(sd_model_dir: Path):
    import open_clip
    from transformers import CLIPTokenizer

    ours = CLIPTokenizer.from_pretrained(sd_model_dir / "tokenizer")
    return ours, open_clip.get_tokenizer("ViT-B-32")


@pytest.mark.parametrize(
    "text",
    [
        "a photo of a cat",
        "An astronaut riding a HORSE, trending on artstation!! 4k, 8K",
        "don't   stop  (masterpiece:1.2) [bad]",
        "一只猫在草地上",
    ],
)
def test_tokenizer_ids_match_open_clip(tokenizers, text: str) -> None:
    ours, open_clip_tokenizer = tokenizers
    assert ours.model_max_length == 77
    ids = ours(text, padding="max_length", max_length=77, truncation=True).input_ids
    theirs = open_clip_tokenizer([text])[0].tolist()
    end = theirs.index(49407) + 1
    # Padding differs by design (SD pads with 49407, open_clip with 0); the text ids must not.
    assert ids[:end] == theirs[:end]


def test_digest_is_independent_of_location_but_not_of_content(
    sd_model_dir: Path, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(sd_model_dir, tmp_path / "elsewhere"))
    assert weights_digest(copy) == weights_digest(sd_model_dir)

    config = copy / "scheduler" / "scheduler_config.json"
    config.write_text(config.read_text().replace('"leading"', '"trailing"'))
    assert weights_digest(copy) != weights_digest(sd_model_dir)


def test_digest_covers_file_names(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.json").write_text("{}")
    first = weights_digest(tmp_path / "a")
    (tmp_path / "a" / "x.json").rename(tmp_path / "a" / "y.json")
    assert weights_digest(tmp_path / "a") != first


def test_tiny_clip_is_reproducible_and_open_clip_shaped(tmp_path: Path) -> None:
    first = build_tiny_clip(tmp_path / "one", seed=0)
    second = build_tiny_clip(tmp_path / "two", seed=0)
    assert file_bytes(first) == file_bytes(second)
    assert sorted(file_bytes(first)) == ["open_clip_config.json", "open_clip_model.safetensors"]
    config = json.loads((first / "open_clip_config.json").read_text())
    assert config["model_name"] == "seedbank-tiny-clip"
    assert config["model_cfg"]["embed_dim"] == 512
    assert config["preprocess_cfg"]["size"] == [64, 64]
    assert weights_digest(build_tiny_clip(tmp_path / "three", seed=1)) != weights_digest(first)
