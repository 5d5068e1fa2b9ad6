"""Small WebP previews of rendered PNGs (Django-free)."""

from __future__ import annotations

import io

from PIL import Image

THUMBNAIL_MAX_SIDE = 256


def thumbnail_webp(png: bytes, *, max_side: int = THUMBNAIL_MAX_SIDE) -> bytes:
    with Image.open(io.BytesIO(png)) as decoded:
        small = decoded.convert("RGB")
        small.thumbnail((max_side, max_side))
        buffer = io.BytesIO()
        small.save(buffer, format="WEBP", quality=80)
        return buffer.getvalue()
