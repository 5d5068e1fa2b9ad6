"""Grid previews: WebP at the grid widths, never enlarged, proportions kept."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from engine.thumbnails import GRID_WIDTHS, grid_previews


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").resize((width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((64, 64), [(64, 64)]),  # the demo's size: one preview, as large as the picture
        ((256, 256), [(256, 256)]),
        ((300, 200), [(256, 171), (300, 200)]),
        ((768, 512), [(256, 171), (512, 341)]),
        ((512, 768), [(256, 384), (512, 768)]),
        ((1024, 1024), [(256, 256), (512, 512)]),
    ],
)
def test_previews_at_grid_widths_never_enlarged(size, expected) -> None:
    previews = grid_previews(_png(*size))
    assert [(p.width, p.height) for p in previews] == expected
    for preview in previews:
        with Image.open(io.BytesIO(preview.webp)) as decoded:
            assert decoded.format == "WEBP"
            assert decoded.size == (preview.width, preview.height)


def test_large_preview_is_a_fraction_of_the_png() -> None:
    png = _png(512, 512)
    small, large = grid_previews(png)
    assert large.width == GRID_WIDTHS[1]
    assert len(small.webp) < len(large.webp) < len(png) / 4
