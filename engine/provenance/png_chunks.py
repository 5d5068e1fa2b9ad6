"""PNG chunks as bytes: add XMP and drop a C2PA manifest without decoding the pixels.

The manifest (`caBX`) is the only part of a signed PNG that varies between two signings of the
same picture (a fresh manifest id and ECDSA nonce each time, the signing time); everything
else — pixels, text chunks, XMP — is the same bytes for the same recipe. `unsigned()` gives
those bytes back, so two renders can be compared byte for byte as well as by pixels.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MANIFEST_CHUNK = b"caBX"  # C2PA's PNG chunk
XMP_KEYWORD = b"XML:com.adobe.xmp"  # the XMP spec's iTXt keyword for PNG


class NotAPng(ValueError):
    """The bytes are not a well-formed PNG."""


def chunks(png: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """(type, whole chunk: length, type, data and CRC) for each chunk, in order; the chunks are
    views into `png`, not copies (a 1024² picture is ~1.5 MB)."""
    if not png.startswith(PNG_SIGNATURE):
        raise NotAPng("not a PNG (its signature is missing)")
    view = memoryview(png)
    position = len(PNG_SIGNATURE)
    while position < len(png):
        if position + 12 > len(png):
            raise NotAPng("the PNG ends inside a chunk header")
        (length,) = struct.unpack(">I", png[position : position + 4])
        end = position + 12 + length
        if end > len(png):
            raise NotAPng("the PNG ends inside a chunk")
        kind = bytes(view[position + 4 : position + 8])
        yield kind, view[position:end]
        position = end
        if kind == b"IEND":
            return
    raise NotAPng("the PNG has no IEND chunk")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _is_xmp(kind: bytes, chunk: memoryview) -> bool:
    keyword = XMP_KEYWORD + b"\x00"
    return kind == b"iTXt" and chunk[8 : 8 + len(keyword)] == keyword


def unsigned(png: bytes) -> bytes:
    """The PNG without its C2PA manifest: the bytes a given recipe always encodes to."""
    return PNG_SIGNATURE + b"".join(c for kind, c in chunks(png) if kind != MANIFEST_CHUNK)


def with_xmp(png: bytes, xmp: str) -> bytes:
    """The PNG with `xmp` as its only XMP packet (uncompressed iTXt, as the XMP spec asks), placed
    before the image data so readers that stop at IDAT still find it, and without a manifest
    (one signed over the old bytes would no longer hold): what signing starts from."""
    # iTXt: keyword, NUL, compression flag 0, method 0, empty language tag and translated
    # keyword (each NUL-terminated), then the UTF-8 text.
    packet = _chunk(b"iTXt", XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + xmp.encode("utf-8"))
    parts: list[bytes | memoryview] = [PNG_SIGNATURE]
    placed = False
    for kind, chunk in chunks(png):
        if _is_xmp(kind, chunk) or kind == MANIFEST_CHUNK:
            continue
        if kind == b"IDAT" and not placed:
            parts.append(packet)
            placed = True
        parts.append(chunk)
    if not placed:
        raise NotAPng("the PNG has no image data")
    return b"".join(parts)


def xmp_text(png: bytes) -> str | None:
    """The XMP packet of a PNG, if it has one."""
    for kind, chunk in chunks(png):
        if _is_xmp(kind, chunk):
            data = bytes(chunk[8:-4])
            # keyword\0, compression flag, method, language\0, translated keyword\0, text
            rest = data[len(XMP_KEYWORD) + 1 :]
            compressed, rest = rest[0], rest[2:]
            _language, _, rest = rest.partition(b"\x00")
            _translated, _, text = rest.partition(b"\x00")
            if compressed:
                # Bounded: an XMP packet is a few KB; a zip bomb in one is refused.
                inflater = zlib.decompressobj()
                text = inflater.decompress(text, 1 << 20)
                if inflater.unconsumed_tail:
                    raise NotAPng("the PNG's XMP packet is larger than 1 MiB")
            return text.decode("utf-8", errors="replace")
    return None


__all__ = ["MANIFEST_CHUNK", "NotAPng", "chunks", "unsigned", "with_xmp", "xmp_text"]
