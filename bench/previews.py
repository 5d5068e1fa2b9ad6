"""Grid previews: bytes a grid page of 24 sends, and what writing previews adds to a render.

    .venv/bin/python bench/previews.py [--size 512] [--pictures 24]

Pictures: held-out demo scenes drawn at the render size with film grain (a generated picture is
never flat colour; flat colour would flatter both formats). Baseline, same run: the PNG encode
every render already does (engine.png_files.png_bytes), against which the preview encode
(engine.thumbnails.grid_previews) is a ratio; bytes: the 256- and 512-wide previews against
the full PNGs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.png_files import png_bytes
from engine.scenes import scene_at
from engine.thumbnails import grid_previews


def picture(index: int, size: int) -> Image.Image:
    scene = scene_at("heldout", index).render().resize((size, size), Image.Resampling.BICUBIC)
    grain = np.random.default_rng(index).normal(0, 6, (size, size, 3))
    pixels = np.clip(np.asarray(scene, dtype=np.float64) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def timed(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pictures", type=int, default=24)
    args = parser.parse_args()
    png_seconds, preview_seconds, png_sizes, small, large = [], [], [], [], []
    for index in range(args.pictures):
        seconds, png = timed(png_bytes, picture(index, args.size))
        png_seconds.append(seconds)
        png_sizes.append(len(png))
        seconds, previews = timed(grid_previews, png)
        preview_seconds.append(seconds)
        small.append(len(previews[0].webp))
        large.append(len(previews[-1].webp))
    png_ms, preview_ms = (1000 * statistics.median(s) for s in (png_seconds, preview_seconds))
    print(f"{args.pictures} pictures of {args.size}×{args.size}")
    print(f"{'per grid page':28}{'bytes':>12}{'vs PNG':>10}")
    for name, sizes in (("full PNGs", png_sizes), ("WebP 512 wide (2× screens)", large),
                        ("WebP 256 wide", small)):  # fmt: skip
        print(f"{name:28}{sum(sizes):12,}{sum(sizes) / sum(png_sizes):10.3f}")
    print(
        f"\nencode per picture (median): PNG {png_ms:.1f} ms (baseline), previews "
        f"{preview_ms:.1f} ms = {preview_ms / png_ms:.2f}× the PNG encode"
    )


if __name__ == "__main__":
    main()
