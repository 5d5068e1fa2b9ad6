"""The scene models in models/ (trained by `make models`): intact, and they follow their text.

Thresholds are the issue's, measured on held-out scenes the models never saw; bench/models.py
reports the full figures against random weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.scenes import COLOURS, SHAPES, scene_at
from engine.tiny_models import StableDiffusionPipeline
from engine.training.evaluate import clip_quality, generation_quality, render_captions
from engine.training.shipped import CLIP_FOLDER, FOLDERS, GUIDANCE, SD_FOLDER, read_digests
from engine.weights import weights_digest

MODELS = Path(__file__).resolve().parents[2] / "models"
CHANCE = 1 / len(COLOURS)
assert len(SHAPES) == len(COLOURS)  # one chance figure serves both


def test_the_shipped_folders_are_the_bytes_training_produced() -> None:
    digests = read_digests(MODELS)
    assert set(digests) == set(FOLDERS)
    for folder, digest in digests.items():
        assert weights_digest(MODELS / folder) == digest, folder


@pytest.fixture(scope="module")
def quality():
    return clip_quality(MODELS / CLIP_FOLDER, scenes=300)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_clip_finds_each_captions_picture_among_held_out_ones(quality, language: str) -> None:
    assert quality.recall_at_10[language] >= 0.8
    assert quality.colour_accuracy[language] >= 3 * CHANCE
    assert quality.shape_accuracy[language] >= 2 * CHANCE


def test_generated_pictures_have_the_prompted_colours_and_shapes() -> None:
    """As the issue asks: colour ≥ 3× chance (by pixels), shape ≥ 2× chance (by the CLIP), at
    the models' own guidance; the held-out captions and seeds of bench/models.py."""
    scenes = [scene_at("heldout", index) for index in range(128)]
    prompts = [scene.caption("en" if n % 2 == 0 else "zh") for n, scene in enumerate(scenes)]
    pipe = StableDiffusionPipeline.from_pretrained(MODELS / SD_FOLDER)
    pipe.set_progress_bar_config(disable=True)
    pictures = render_captions(pipe, prompts, guidance=GUIDANCE, steps=20)
    judged = generation_quality(pictures, scenes, MODELS / CLIP_FOLDER)
    assert judged.pixel_colour >= 3 * CHANCE
    assert judged.clip_shape >= 2 * CHANCE
    assert judged.pixel_background >= 5 * CHANCE  # the background: most of the picture
