"""WebP previews of rendered PNGs for grids (Django-free).

Two widths: GRID_WIDTHS[0] fills a grid cell (about 180-250 CSS pixels) on an ordinary screen,
GRID_WIDTHS[1] the same cell at twice the density; the browser picks one from `srcset`. A
picture is never enlarged, so one no wider than the small width has a single preview.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

GRID_WIDTHS = (256, 512)
# Lossy at 80: a 512×512 render drops from ~400 kB of PNG to ~20 kB; grids show it small.
WEBP_QUALITY = 80


@dataclass(frozen=True)
class Preview:
    width: int
    height: int
    webp: bytes


def grid_previews(png: bytes) -> list[Preview]:
    """The picture at each grid width it reaches (one or two previews, smallest first)."""
    previews: list[Preview] = []
    with Image.open(io.BytesIO(png)) as decoded:
        picture = decoded.convert("RGB")
    for width in GRID_WIDTHS:
        if previews and picture.width <= previews[-1].width:
            break  # already as wide as the picture: a larger preview would be the same one
        previews.append(_preview(picture, width))
    return previews


def _preview(picture: Image.Image, width: int) -> Preview:
    # Bounded by width only (grids are columns); a tall picture keeps its proportions.
    width = min(width, picture.width)
    height = max(1, round(picture.height * width / picture.width))
    small = (
        picture
        if width == picture.width
        else picture.resize((width, height), Image.Resampling.LANCZOS)
    )
    return Preview(small.width, small.height, _webp(small))


def _webp(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="WEBP", quality=WEBP_QUALITY)
    return buffer.getvalue()
