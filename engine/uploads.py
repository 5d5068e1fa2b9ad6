"""Validating images that visitors upload for image→image search (Django-free).

Refuses, with a message a person can act on: files over the byte limit, anything Pillow does not
decode as PNG/JPEG/WebP, and images whose declared size exceeds the pixel limit — checked from
the header before decoding, so a decompression bomb never expands in memory. A caller that needs
only a small picture (image search) has a JPEG decoded at a reduced scale, and may set a lower
limit on the pixels decoded.
"""

from __future__ import annotations

import io
import warnings
from typing import IO

from PIL import Image

from engine.messages import Message as M
from engine.messages import gettext_noop as _

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP"}
_NOT_REDUCIBLE = {"1", "P", "I;16", "I;16B", "I;16L", "I;16N"}


class UploadRejected(ValueError):
    """Why an upload was refused: args[0] is an engine.messages.Message (English, translatable)."""


def open_upload(
    handle: IO[bytes],
    *,
    max_bytes: int,
    max_pixels: int,
    min_side: int | None = None,
    max_decoded_pixels: int | None = None,
) -> Image.Image:
    """The decoded image, or UploadRejected saying why not.

    `min_side`: the caller needs no more than this many pixels on the shorter side (image
    search: CLIP sees 224). A JPEG is then decoded at a reduced scale (1/2, 1/4 or 1/8, its DCT
    scaling: the full-size pixels are never in memory), and any image is reduced by a whole
    factor once decoded. `max_decoded_pixels`: the most pixels the caller lets it decode, checked
    from the header (after a JPEG's reduction) before anything is decoded."""
    data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UploadRejected(
            M(_("The file is larger than %(megabytes)s MB."), megabytes=max_bytes // 1_000_000)
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture: Image.Image = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
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
            if min_side is not None and picture.format == "JPEG":
                picture.draft("RGB", (min_side, min_side))
            decoded = picture.width * picture.height
            if max_decoded_pixels is not None and decoded > max_decoded_pixels:
                raise UploadRejected(
                    M(
                        _(
                            "The image is %(width)s×%(height)s pixels; searching by image "
                            "reads at most %(mp)s megapixels of PNG or WebP (JPEG photos may be "
                            "larger). Send a smaller copy or a JPEG."
                        ),
                        width=width,
                        height=height,
                        mp=f"{max_decoded_pixels / 1_000_000:g}",
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
    if min_side is not None and (factor := min(picture.size) // min_side) >= 2:
        # Box averaging by a whole factor: cheap, and the shorter side stays >= min_side.
        # (Palette, 1-bit and 16-bit images cannot be averaged as they are: left whole.)
        if picture.mode not in _NOT_REDUCIBLE:
            picture = picture.reduce(factor)
    return picture
