"""Validating images that visitors upload for image→image search (Django-free).

Refuses, with a message a person can act on: files over the byte limit, anything Pillow does not
decode as PNG/JPEG/WebP, and images whose declared size exceeds the pixel limit — checked from
the header before decoding, so a decompression bomb never expands in memory.
"""

from __future__ import annotations

import io
import warnings
from typing import IO

from PIL import Image

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP"}


class UploadRejected(ValueError):
    pass


def open_upload(handle: IO[bytes], *, max_bytes: int, max_pixels: int) -> Image.Image:
    data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UploadRejected(f"The file is larger than {max_bytes // 1_000_000} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
            width, height = picture.size
            if width * height > max_pixels:
                raise UploadRejected(
                    f"The image is {width}×{height} pixels; the limit is "
                    f"{max_pixels // 1_000_000} megapixels."
                )
            picture.load()
    except UploadRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadRejected(
            f"The image declares too many pixels to decode safely (the limit is "
            f"{max_pixels // 1_000_000} megapixels)."
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadRejected("That is not a PNG, JPEG or WebP image Seedbank can read.") from exc
    return picture
