"""Synthetic captioned scenes: the pictures Seedbank's own small models learn from.

No model hub or dataset is reachable here, so the demo's text-to-image model and its CLIP are
trained on scenes drawn in code: one to three things (a shape or a simple object) of one colour
and size, at a place, on a plain background, each with an English and a Chinese caption
("a small red circle on the left of a blue background" / "蓝色背景左边有一个小的红色圆形").

Scene `index` of a split is a pure function of (split, index): Python's `random.Random` with an
integer seed (its stream is stable across Python versions), Pillow drawing at 4× and one
LANCZOS downscale. The held-out split shares no seed with the training split.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageChops, ImageDraw

SIZE = 64  # pixels: the tiny models' native size
_SCALE = 4  # drawn at 4× and downscaled: smooth edges without anti-aliasing primitives

# name: (RGB, Chinese)
COLOURS: dict[str, tuple[tuple[int, int, int], str]] = {
    "red": ((215, 40, 40), "红"),
    "orange": ((245, 140, 30), "橙"),
    "yellow": ((245, 215, 40), "黄"),
    "green": ((40, 160, 60), "绿"),
    "blue": ((40, 80, 215), "蓝"),
    "purple": ((135, 55, 185), "紫"),
    "white": ((245, 245, 245), "白"),
    "black": ((25, 25, 25), "黑"),
}
# name: (plural, Chinese, Chinese measure word)
SHAPES: dict[str, tuple[str, str, str]] = {
    "circle": ("circles", "圆形", "个"),
    "square": ("squares", "正方形", "个"),
    "triangle": ("triangles", "三角形", "个"),
    "star": ("stars", "星星", "颗"),
    "cross": ("crosses", "十字", "个"),
    "house": ("houses", "房子", "座"),
    "tree": ("trees", "树", "棵"),
    "cat": ("cats", "猫", "只"),
}
SIZES: dict[str, str] = {"small": "小", "large": "大"}
# name: (English phrase, Chinese, centre as a fraction of the canvas)
POSITIONS: dict[str, tuple[str, str, tuple[float, float]]] = {
    "left": ("on the left of", "左边", (0.27, 0.5)),
    "right": ("on the right of", "右边", (0.73, 0.5)),
    "top": ("at the top of", "上方", (0.5, 0.27)),
    "bottom": ("at the bottom of", "下方", (0.5, 0.73)),
    "centre": ("in the middle of", "中间", (0.5, 0.5)),
}
COUNTS: dict[int, tuple[str, str]] = {1: ("a", "一"), 2: ("two", "两"), 3: ("three", "三")}
SPLIT_SEEDS = {"train": 1, "heldout": 2}
LANGUAGES = ("en", "zh")


@dataclass(frozen=True)
class Scene:
    shape: str
    colour: str
    background: str
    size: str
    position: str  # where a single thing stands; several stand in a row across the middle
    count: int
    jitter: int  # seeds the small random offsets and size changes of the drawing

    def caption(self, language: str = "en") -> str:
        """The canonical caption; `captions` gives the variants training sees."""
        return self.captions(language)[0]

    def captions(self, language: str = "en") -> list[str]:
        if language == "zh":
            return self._chinese()
        if language != "en":
            raise ValueError(f"Unknown caption language {language!r}")
        return self._english()

    def search_captions(self) -> list[str]:
        """What people type for this scene: one word, a short phrase, mixed languages.

        The CLIP trains on these beside the full captions (engine.training.clip): trained on
        full sentences alone, "cat" found only English captions' pictures and "猫" only
        Chinese ones, and "红色" pulled red 1.35× as often as "蓝色" (issue #27). Always the
        same count, in the same order: thing, colour, phrase, counted phrase, mixed — each in
        English then Chinese."""
        number, zh_number = COUNTS[self.count]
        noun = self.shape if self.count == 1 else SHAPES[self.shape][0]
        _, zh_noun, measure = SHAPES[self.shape]
        zh_colour = f"{COLOURS[self.colour][1]}色"
        return [
            self.shape,
            zh_noun,
            self.colour,
            zh_colour,
            f"{self.colour} {self.shape}",
            f"{zh_colour}{zh_noun}",
            f"{number} {self.colour} {noun}",
            f"{zh_number}{measure}{zh_colour}的{zh_noun}",
            f"{self.colour} {zh_noun}",
            f"{zh_colour} {self.shape}",
        ]

    def _english(self) -> list[str]:
        number, _ = COUNTS[self.count]
        noun = self.shape if self.count == 1 else SHAPES[self.shape][0]
        thing = f"{number} {self.size} {self.colour} {noun}"
        background = f"{_article(self.background)} {self.background} background"
        if self.count == 1:
            place, _, _ = POSITIONS[self.position]
            return [
                f"{thing} {place} {background}",
                f"{thing} on {background}, {self.position}",
                f"{self.size} {self.colour} {noun}, {self.background} background",
            ]
        return [
            f"{thing} on {background}",
            f"{number} {self.colour} {noun}, {self.size}, on {self.background}",
            f"{self.size} {self.colour} {noun} on {background}",
        ]

    def _chinese(self) -> list[str]:
        _, number = COUNTS[self.count]
        _, noun, measure = SHAPES[self.shape]
        colour, background, size = (
            COLOURS[self.colour][1],
            COLOURS[self.background][1],
            SIZES[self.size],
        )
        thing = f"{number}{measure}{size}的{colour}色{noun}"
        where = POSITIONS[self.position][1] if self.count == 1 else "上"
        return [
            f"{background}色背景{where}有{thing}",
            f"{background}色背景{where}的{number}{measure}{size}{colour}色{noun}",
        ]

    def render(self, *, outline: bool = False) -> Image.Image:
        """The scene as a 64×64 RGB picture; `outline` draws the things as outlines (the
        fine-tune's style)."""
        canvas = SIZE * _SCALE
        mask = Image.new("L", (canvas, canvas), 0)  # where the things are
        draw = ImageDraw.Draw(mask)
        rng = random.Random(self.jitter)
        for cx, cy, radius in self._placements(rng):
            _DRAW[self.shape](draw, cx * canvas, cy * canvas, radius * canvas, 255, 0)
        if outline:  # the mask less its erosion: a band 2.5 pixels wide at 64×64
            mask = ImageChops.subtract(mask, _eroded(mask, 5 * _SCALE // 2))
        picture = Image.composite(
            Image.new("RGB", mask.size, COLOURS[self.colour][0]),
            Image.new("RGB", mask.size, COLOURS[self.background][0]),
            mask,
        )
        return picture.resize((SIZE, SIZE), Image.Resampling.LANCZOS)

    def _placements(self, rng: random.Random) -> list[tuple[float, float, float]]:
        """(centre x, centre y, radius) of each thing, as fractions of the canvas."""
        if self.count == 1:
            radius = (0.12 if self.size == "small" else 0.24) * rng.uniform(0.9, 1.1)
            x, y = POSITIONS[self.position][2]
            return [(x + rng.uniform(-0.04, 0.04), y + rng.uniform(-0.04, 0.04), radius)]
        step = 1.0 / (self.count + 1)
        radius = step * (0.3 if self.size == "small" else 0.46) * rng.uniform(0.9, 1.1)
        y = 0.5 + rng.uniform(-0.12, 0.12)
        return [
            (step * (n + 1) + rng.uniform(-0.03, 0.03), y + rng.uniform(-0.03, 0.03), radius)
            for n in range(self.count)
        ]


def _eroded(mask: Image.Image, radius: int) -> Image.Image:
    """The mask's minimum over a square of 2 × radius + 1 pixels, done as two 1-D passes
    (Pillow's MinFilter of that size took 40 ms a scene, too slow for 20,000)."""
    pixels = np.pad(np.asarray(mask), radius)  # zeros: beyond the canvas is background
    width = 2 * radius + 1
    rows = sliding_window_view(pixels, width, axis=1).min(axis=-1)
    return Image.fromarray(
        np.ascontiguousarray(sliding_window_view(rows, width, axis=0).min(axis=-1))
    )


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def scene_at(split: str, index: int) -> Scene:
    """Scene `index` of a split ("train" or "heldout")."""
    rng = random.Random(SPLIT_SEEDS[split] * 1_000_000_007 + index)
    colour = rng.choice(list(COLOURS))
    return Scene(
        shape=rng.choice(list(SHAPES)),
        colour=colour,
        background=rng.choice([name for name in COLOURS if name != colour]),
        size=rng.choice(list(SIZES)),
        position=rng.choice(list(POSITIONS)),
        count=rng.choice([1, 1, 1, 2, 3]),  # mostly one: places and sizes are clearest then
        jitter=rng.getrandbits(32),
    )


# --- drawing: each thing centred at (x, y), fitting a circle of `r`, in canvas pixels -----------

Colour = int  # drawn into a mask: 255 where a thing is, 0 for its holes


def _circle(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, c: Colour, _: Colour) -> None:
    draw.ellipse((x - r, y - r, x + r, y + r), fill=c)


def _square(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, c: Colour, _: Colour) -> None:
    half = r * 0.8
    draw.rectangle((x - half, y - half, x + half, y + half), fill=c)


def _triangle(
    draw: ImageDraw.ImageDraw, x: float, y: float, r: float, c: Colour, _: Colour
) -> None:
    draw.polygon(_regular(x, y + r * 0.15, r * 1.05, 3), fill=c)


def _star(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, c: Colour, _: Colour) -> None:
    outer, inner = _regular(x, y, r, 5), _regular(x, y, r * 0.42, 5, turn=math.pi / 5)
    draw.polygon([p for pair in zip(outer, inner, strict=True) for p in pair], fill=c)


def _cross(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, c: Colour, _: Colour) -> None:
    arm = r * 0.3
    draw.rectangle((x - r, y - arm, x + r, y + arm), fill=c)
    draw.rectangle((x - arm, y - r, x + arm, y + r), fill=c)


def _house(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, c: Colour, h: Colour) -> None:
    draw.rectangle((x - r * 0.7, y - r * 0.1, x + r * 0.7, y + r * 0.9), fill=c)
    draw.polygon([(x - r * 0.95, y - r * 0.1), (x + r * 0.95, y - r * 0.1), (x, y - r)], fill=c)
    draw.rectangle((x - r * 0.18, y + r * 0.35, x + r * 0.18, y + r * 0.9), fill=h)  # the door


def _tree(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, c: Colour, _: Colour) -> None:
    draw.rectangle((x - r * 0.15, y + r * 0.2, x + r * 0.15, y + r), fill=c)  # the trunk
    draw.ellipse((x - r * 0.7, y - r, x + r * 0.7, y + r * 0.4), fill=c)


def _cat(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, c: Colour, h: Colour) -> None:
    face = r * 0.75
    top = y - face * 0.6
    draw.polygon([(x - face, top), (x - face * 0.25, top), (x - face * 0.8, y - r)], fill=c)
    draw.polygon([(x + face, top), (x + face * 0.25, top), (x + face * 0.8, y - r)], fill=c)
    draw.ellipse((x - face, y - face * 0.8, x + face, y + face), fill=c)
    eye = face * 0.16
    for side in (-1, 1):
        ex, ey = x + side * face * 0.4, y - face * 0.05
        draw.ellipse((ex - eye, ey - eye, ex + eye, ey + eye), fill=h)


def _regular(
    x: float, y: float, r: float, corners: int, turn: float = 0.0
) -> list[tuple[float, float]]:
    """Corners of a regular polygon pointing up."""
    return [
        (
            x + r * math.sin(turn + 2 * math.pi * k / corners),
            y - r * math.cos(turn + 2 * math.pi * k / corners),
        )
        for k in range(corners)
    ]


_DRAW = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "star": _star,
    "cross": _cross,
    "house": _house,
    "tree": _tree,
    "cat": _cat,
}
