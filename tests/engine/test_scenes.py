"""The synthetic captioned scenes the demo models learn from."""

from __future__ import annotations

import hashlib

import numpy as np

from engine.scenes import COLOURS, SHAPES, Scene, scene_at


def digest(scene: Scene, **options: bool) -> str:
    return hashlib.sha256(scene.render(**options).tobytes()).hexdigest()


def test_a_scene_is_a_pure_function_of_split_and_index() -> None:
    assert scene_at("train", 7) == scene_at("train", 7)
    assert digest(scene_at("train", 7)) == digest(scene_at("train", 7))
    train = {scene_at("train", index) for index in range(200)}
    held_out = {scene_at("heldout", index) for index in range(200)}
    assert not train & held_out  # the jitter seeds alone tell them apart
    attributes = {(s.shape, s.colour, s.background, s.size) for s in train}
    assert len(attributes) > 150  # varied, not a few repeated scenes


def test_captions_name_what_is_drawn_in_both_languages() -> None:
    scene = Scene("star", "red", "blue", "small", "left", 1, jitter=3)
    assert scene.caption("en") == "a small red star on the left of a blue background"
    assert scene.caption("zh") == "蓝色背景左边有一颗小的红色星星"
    several = Scene("cat", "white", "orange", "large", "left", 3, jitter=3)
    assert several.caption("en") == "three large white cats on an orange background"
    assert several.caption("zh") == "橙色背景上有三只大的白色猫"
    for variant in several.captions("en") + several.captions("zh"):
        assert ("white" in variant or "白" in variant) and ("cat" in variant or "猫" in variant)


def test_the_picture_has_the_captions_colours_where_it_says() -> None:
    scene = Scene("square", "red", "blue", "large", "left", 1, jitter=1)
    pixels = np.asarray(scene.render())
    assert pixels.shape == (64, 64, 3)
    assert tuple(pixels[32, 17]) == COLOURS["red"][0]  # the left third: the square
    assert tuple(pixels[32, 58]) == COLOURS["blue"][0]  # the right edge: background
    outline = np.asarray(scene.render(outline=True))
    assert tuple(outline[32, 17]) == COLOURS["blue"][0]  # hollow: background inside

    def reddish(picture: np.ndarray) -> int:  # nearer red than blue (edges are blended)
        red, blue = (np.abs(picture.astype(int) - COLOURS[c][0]).sum(-1) for c in ("red", "blue"))
        return int((red < blue).sum())

    assert 0 < reddish(outline) < reddish(pixels) / 2


def test_every_shape_draws_something_different() -> None:
    pictures = {
        digest(Scene(shape, "black", "white", "large", "centre", 1, jitter=0)) for shape in SHAPES
    }
    assert len(pictures) == len(SHAPES)
