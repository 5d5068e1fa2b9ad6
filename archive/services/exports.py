"""Exports: records as a zip of PNGs with their recipe chunks plus recipes.jsonl, or as a
DiffusionDB-shaped parquet. Both import back (archive.services.imports) to the same recipes.

A record's picture in the zip carries the "parameters" (A1111) and "seedbank" (exact JSON)
chunks and the site's Content Credentials (a render's stored file goes in byte for byte); an
evicted record goes in without a picture (its recipe regenerates it). Every row of
recipes.jsonl and of the parquet holds the picture's pixel_sha256, which is also the key the
picture itself imports under: importing the whole zip makes one record per picture.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import IO, Any

from PIL import Image as PILImage

from archive.batching import batched
from engine.infotext import SEEDBANK_CHUNK
from engine.png_files import png_bytes
from engine.png_metadata import png_text_for
from engine.provenance import png_chunks
from engine.provenance.signing import Ingredient
from engine.schedulers import DIFFUSIONDB_SAMPLERS
from generator.models import Image
from generator.selectors.resources import resource_names
from generator.services.signing import image_signed_png

RECIPES_FILE = "recipes.jsonl"
_DIFFUSIONDB_CODES = {name: code for code, name in DIFFUSIONDB_SAMPLERS.items()}
_OTHERS = 9


def _export_row(image: Image, portable: dict[str, Any]) -> dict[str, Any]:
    """One record as a recipes.jsonl row: its portable recipe, file and pixel digest."""
    return {
        "id": image.pk,
        "file": _file_name(image) if image.image_file else None,
        "pixel_sha256": image.pixel_sha256,
        **portable,
    }


def _file_name(image: Image) -> str:
    return f"images/{image.pk}.png"


def export_zip(images: Iterable[Image], target: IO[bytes]) -> int:
    """Write the zip to `target` (a file or a response stream); return the records written."""
    count = 0
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        lines = []
        for image in images:
            portable = image.recipe_portable()  # reads the img2img inputs' rows: once
            row = _export_row(image, portable)
            if image.image_file:
                # PNG is compressed already: stored, not deflated again.
                archive.writestr(_file_name(image), _png_with_chunks(image, portable))
            lines.append(json.dumps(row, ensure_ascii=False, sort_keys=True))
            count += 1
        archive.writestr(RECIPES_FILE, "".join(f"{line}\n" for line in lines))
    return count


def _png_with_chunks(image: Image, portable: dict[str, Any]) -> bytes:
    """The stored PNG byte for byte when it holds its recipe chunks, as a render's does: its
    Content Credentials stay valid. An imported picture's file has none; they are written into
    a copy, which the site signs afresh with the stored file as its parent ingredient (the
    stored manifest, and any the import kept, travel inside)."""
    with image.image_file.open("rb") as handle:
        stored = bytes(handle.read())
    if _has_recipe_chunk(stored):
        return stored
    with PILImage.open(io.BytesIO(stored)) as decoded:
        decoded.load()
        names = resource_names(recipe=image.recipe())
        chunks = png_text_for(portable, names)(image.seed, image.batch_index, image.batch_size)
        png = png_bytes(decoded, chunks)
    parent = Ingredient(
        title=PurePosixPath(image.image_file.name or "").name,
        relationship="parentOf",
        data=stored,
        media_type="image/png",
    )
    return image_signed_png(image=image, png=png, pixel_sha256=image.pixel_sha256, parent=parent)


def _has_recipe_chunk(png: bytes) -> bool:
    keyword = SEEDBANK_CHUNK.encode() + b"\0"
    return any(
        kind in (b"tEXt", b"zTXt", b"iTXt") and bytes(chunk[8 : 8 + len(keyword)]) == keyword
        for kind, chunk in png_chunks.chunks(png)
    )


def export_parquet(images: Iterable[Image], target: IO[bytes], *, batch: int = 10_000) -> int:
    """DiffusionDB's metadata.parquet columns (image_name, prompt, seed, step, cfg, sampler
    code, width, height, timestamp), plus the name where DiffusionDB has no code
    (sampler_name), the negative prompt, model, model_hash and pixel_sha256."""
    import pyarrow as pa  # a 40 MB library: loaded by exports only
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("image_name", pa.string()), ("prompt", pa.string()), ("negative_prompt", pa.string()),
        ("seed", pa.uint32()), ("step", pa.uint16()), ("cfg", pa.float32()),
        ("sampler", pa.uint8()), ("sampler_name", pa.string()), ("width", pa.uint16()),
        ("height", pa.uint16()), ("timestamp", pa.timestamp("us", tz="UTC")),
        ("model", pa.string()), ("model_hash", pa.string()), ("pixel_sha256", pa.string()),
    ])  # fmt: skip
    count = 0
    with pq.ParquetWriter(target, schema) as writer:
        for rows in batched(images, batch):
            writer.write_table(pa.Table.from_pylist([_parquet_row(i) for i in rows], schema))
            count += len(rows)
    return count


def _parquet_row(image: Image) -> dict[str, Any]:
    return {
        "image_name": f"{image.pk}.png",
        "prompt": image.prompt,
        "negative_prompt": image.negative_prompt,
        "seed": image.seed,
        "step": image.steps,
        "cfg": image.guidance,
        "sampler": _DIFFUSIONDB_CODES.get(image.scheduler, _OTHERS),
        "sampler_name": image.scheduler,
        "width": image.width,
        "height": image.height,
        "timestamp": image.created_at,
        "model": image.model_name,
        "model_hash": image.model_digest,
        "pixel_sha256": image.pixel_sha256,
    }
