"""CLIP embeddings for search, with the tiny CLIP loaded the way a real checkpoint is."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import embedder


def picture(seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(80, 96, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_info_names_the_model_and_its_dimension(clip_model_dir: Path) -> None:
    assert embedder.info(str(clip_model_dir)) == embedder.EmbedderInfo(
        model_name="seedbank-tiny-clip", dim=512
    )


def test_load_is_cached_per_folder(clip_model_dir: Path) -> None:
    assert embedder.load(str(clip_model_dir))[0] is embedder.load(str(clip_model_dir))[0]


def test_image_and_text_vectors_are_unit_rows_of_one_dimension(clip_model_dir: Path) -> None:
    images = embedder.embed_images(str(clip_model_dir), [picture(1), picture(2).convert("L")])
    texts = embedder.embed_texts(str(clip_model_dir), ["a red fox", "a lighthouse", ""])
    assert images.shape == (2, 512) and texts.shape == (3, 512)
    assert images.dtype == texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_same_input_gives_identical_vectors(clip_model_dir: Path) -> None:
    folder = str(clip_model_dir)
    assert np.array_equal(
        embedder.embed_texts(folder, ["a koi pond"]), embedder.embed_texts(folder, ["a koi pond"])
    )
    assert np.array_equal(
        embedder.embed_images(folder, [picture(3)]), embedder.embed_images(folder, [picture(3)])
    )


def test_different_inputs_give_different_vectors(clip_model_dir: Path) -> None:
    texts = embedder.embed_texts(str(clip_model_dir), ["a koi pond", "a steam locomotive"])
    assert not np.allclose(texts[0], texts[1])
    images = embedder.embed_images(str(clip_model_dir), [picture(4), picture(5)])
    assert not np.allclose(images[0], images[1])


def test_chinese_text_embeds(clip_model_dir: Path) -> None:
    vectors = embedder.embed_texts(str(clip_model_dir), ["一只猫在草地上", "a cat on the grass"])
    assert vectors.shape == (2, 512) and np.isfinite(vectors).all()
    assert not np.allclose(vectors[0], vectors[1])


def test_empty_inputs_give_empty_matrices(clip_model_dir: Path) -> None:
    assert embedder.embed_texts(str(clip_model_dir), []).shape == (0, 512)
    assert embedder.embed_images(str(clip_model_dir), []).shape == (0, 512)


def test_a_hub_style_folder_with_bin_weights_and_no_model_name_loads(
    clip_model_dir: Path, tmp_path: Path
) -> None:
    # Real open_clip exports: open_clip_config.json without our model_name, .bin weights.
    from safetensors.torch import load_file

    folder = tmp_path / "exported-clip"
    folder.mkdir()
    config = json.loads((clip_model_dir / "open_clip_config.json").read_text())
    del config["model_name"]
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    state = load_file(clip_model_dir / "open_clip_model.safetensors")
    torch.save(state, folder / "open_clip_pytorch_model.bin")

    assert embedder.info(str(folder)) == embedder.EmbedderInfo("exported-clip", 512)
    np.testing.assert_array_equal(
        embedder.embed_texts(str(folder), ["a koi pond"]),
        embedder.embed_texts(str(clip_model_dir), ["a koi pond"]),
    )


def test_a_folder_without_weights_is_refused(clip_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "no-weights"
    folder.mkdir()
    shutil.copy(clip_model_dir / "open_clip_config.json", folder)
    with pytest.raises(FileNotFoundError, match="weights"):
        embedder.load(str(folder))
