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

from engine.messages import Message as M
from engine.messages import gettext_noop as _

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP"}


class UploadRejected(ValueError):
    """Why an upload was refused: args[0] is an engine.messages.Message (English, translatable)."""


def open_upload(handle: IO[bytes], *, max_bytes: int, max_pixels: int) -> Image.Image:
    data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UploadRejected(
            M(_("The file is larger than %(megabytes)s MB."), megabytes=max_bytes // 1_000_000)
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
            width, height = picture.size
            if width * height > max_pixels:
                raise UploadRejected(
                    M(
                        _(
                            "The image is %(width)s×%(height)s pixels; "
                            "the limit is %(mp)s megapixels."
                        ),
                        width=width,
                        height=height,
                        mp=max_pixels // 1_000_000,
                    )
                )
            picture.load()
    except UploadRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadRejected(
            M(
                _(
                    "The image declares too many pixels to decode safely "
                    "(the limit is %(mp)s megapixels)."
                ),
                mp=max_pixels // 1_000_000,
            )
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadRejected(
            M(_("That is not a PNG, JPEG or WebP image Seedbank can read."))
        ) from exc
    return picture
