"""PNG bytes and pixel digests, without torch: the web and importers use them too."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Mapping

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

# zlib level is pinned so the same pixels always give the same PNG bytes from this code.
PNG_COMPRESS_LEVEL = 6

# (seed, batch_index, batch_size) → the text chunks of that image's PNG.
PngText = Callable[[int, int, int], Mapping[str, str]]


def pixel_sha256(image: Image.Image) -> str:
    """sha256 of the decoded RGB pixels: PNG bytes vary with encoder settings, pixels do not."""
    return hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest()


def png_bytes(image: Image.Image, text_chunks: Mapping[str, str] | None = None) -> bytes:
    """Encode as PNG with optional text chunks; no timestamps, so equal inputs give equal bytes."""
    info = PngInfo()
    for key, value in (text_chunks or {}).items():
        info.add_text(key, value)  # PIL switches to iTXt itself for non-Latin-1 text
    buffer = io.BytesIO()
    image.save(
        buffer, format="PNG", pnginfo=info, optimize=False, compress_level=PNG_COMPRESS_LEVEL
    )
    return buffer.getvalue()
