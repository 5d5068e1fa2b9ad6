"""Whether a picture file carries Content Credentials (a C2PA manifest store), without
validating them: what an import asks before keeping the original file as the parent
ingredient of the record's own manifest (one whose manifest cannot be read is replaced by its
pixels, or C2PA refuses to sign).

Every carrier holds the manifest store as JUMBF boxes ("jumb", labelled "c2pa"): a PNG's caBX
chunk, a JPEG's APP11 segments, a WebP's C2PA chunk. Files without both markers are answered
from a byte search; the rest are opened with C2PA's reader, so a stray "c2pa" in pixel data or
a manifest the reader cannot parse counts as none (it could not be carried as an ingredient).
"""

from __future__ import annotations

import io

import c2pa


def carries_content_credentials(data: bytes, media_type: str) -> bool:
    if b"jumb" not in data or b"c2pa" not in data:
        return False
    try:
        reader = c2pa.Reader(media_type, io.BytesIO(data))
    except c2pa.C2paError:
        return False
    try:
        return bool(reader.json())
    except c2pa.C2paError:
        return False
    finally:
        reader.close()


def readable_or_no_credentials(data: bytes, media_type: str) -> bool:
    """False for a file whose manifest store C2PA cannot read (it could not be an ingredient)."""
    if b"jumb" not in data or b"c2pa" not in data:
        return True
    return carries_content_credentials(data, media_type)


__all__ = ["carries_content_credentials", "readable_or_no_credentials"]
