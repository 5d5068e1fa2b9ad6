"""The recipe inside one image file, whichever tool wrote it.

Where each tool puts it (the published formats, as the tools write them):

- Seedbank: a "seedbank" PNG chunk, the exact JSON recipe (engine.infotext.recipe_to_json);
- AUTOMATIC1111 (and Forge, SD.Next, Civitai): "parameters" infotext in a PNG text chunk, or in
  the EXIF UserComment of a JPEG or WebP;
- ComfyUI: "prompt", the API graph of the nodes that ran (KSampler → CLIPTextEncode,
  CheckpointLoaderSimple, EmptyLatentImage), beside "workflow", the editor's graph;
- InvokeAI 3+: "invokeai_metadata", a flat JSON object;
- NovelAI: "Software" = "NovelAI", "Description" the prompt, "Comment" JSON with the rest;
- Fooocus: "parameters" JSON with "fooocus_scheme";
- SwarmUI: "parameters" JSON with "sui_image_params".

A file's `source_key` is the sha256 of its decoded pixels: the same picture imported from
another folder, or with its metadata rewritten, is the same source.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from PIL import Image

from engine.imports import samplers
from engine.imports.a1111 import recipe_from_infotext
from engine.imports.comfyui import recipe_from_graph
from engine.imports.source import (
    DOCUMENT_KEYS,
    RECIPE_KEYS,
    RowRejected,
    SourceRecipe,
    batch_fields,
    decimal,
    seed_value,
    seedbank_fields,
    text,
    whole_number,
)
from engine.infotext import PARAMETERS_CHUNK, SEEDBANK_CHUNK, InfotextError, recipe_from_json
from engine.png_files import pixel_sha256
from engine.provenance.presence import readable_or_no_credentials
from engine.uploads import UploadRejected, open_upload

_EXIF_IFD = 0x8769
_MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_USER_COMMENT = 0x9286


def recipe_from_image(data: bytes, location: str, *, max_pixels: int) -> SourceRecipe:
    """Read the recipe in an image file's metadata; RowRejected says why there is none."""
    picture, chunks = _open(data, location, max_pixels)
    digest = pixel_sha256(picture)
    png = _as_png(picture)
    for reader in _READERS:
        found = reader(chunks, f"image:{digest}", location)
        if found is not None:
            found = _with_image(found, png, digest, picture.size)
            # Another tool made this picture: the record's manifest says Seedbank opened it,
            # with the file as its parent (and the file's own manifest, if any, inside ours).
            # A manifest C2PA cannot read cannot ride along: the parent is then its pixels.
            media_type = _MEDIA_TYPES.get(str(picture.format), "")
            if media_type and readable_or_no_credentials(data, media_type):
                found = replace(found, original=data, original_media_type=media_type)
            else:
                found = replace(found, original=png, original_media_type="image/png")
            return found
    raise RowRejected(
        f"{location}: no recipe found (no A1111, ComfyUI, InvokeAI, NovelAI, Fooocus, "
        "SwarmUI or Seedbank metadata)."
    )


def embedded_recipe(picture: Image.Image, location: str) -> SourceRecipe | None:
    """What an opened picture's metadata says about how it was made (any tool's), or None;
    RowRejected when a tool's metadata is there but unreadable. Its pixels are not read."""
    chunks = _metadata_chunks(picture)
    for reader in _READERS:
        found = reader(chunks, "picture", location)
        if found is not None:
            return found
    return None


def _open(data: bytes, location: str, max_pixels: int) -> tuple[Image.Image, dict[str, str]]:
    try:
        # The upload rules: formats, and the size read from the header before decoding.
        picture = open_upload(io.BytesIO(data), max_bytes=len(data), max_pixels=max_pixels)
    except UploadRejected as error:
        raise RowRejected(f"{location}: {error}") from None
    return picture, _metadata_chunks(picture)


def _metadata_chunks(picture: Image.Image) -> dict[str, str]:
    chunks = {str(k): str(v) for k, v in getattr(picture, "text", {}).items()}
    comment = _user_comment(picture)
    if comment and PARAMETERS_CHUNK not in chunks:
        chunks[PARAMETERS_CHUNK] = comment
    return chunks


def _user_comment(picture: Image.Image) -> str:
    """EXIF UserComment, where A1111 writes infotext in JPEG and WebP files: an 8-byte
    character-code header ("UNICODE\\0" for UTF-16) and the text."""
    raw = picture.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if not isinstance(raw, bytes) or len(raw) < 8:
        return raw if isinstance(raw, str) else ""
    header, body = raw[:8], raw[8:]
    if not header.startswith(b"UNICODE"):
        return body.decode("utf-8", errors="replace").rstrip("\x00")
    # piexif writes UTF-16 in the file's byte order, other tools little-endian; the text says
    # which: infotext's parameters line in ASCII has a zero byte before each character in
    # big-endian, after it in little-endian.
    zeros_first = body[0::2].count(0) >= body[1::2].count(0)
    encoding = "utf-16-be" if zeros_first else "utf-16-le"
    return body.decode(encoding, errors="replace").rstrip("\x00")


def _as_png(picture: Image.Image) -> bytes:
    """The pixels as a PNG without metadata: what the archive stores as the source image."""
    buffer = io.BytesIO()
    picture.convert("RGBA" if "A" in picture.getbands() else "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _with_image(
    found: SourceRecipe, png: bytes, digest: str, size: tuple[int, int]
) -> SourceRecipe:
    width = found.width if found.width is not None else size[0]
    height = found.height if found.height is not None else size[1]
    return replace(found, image=png, pixel_sha256=digest, width=width, height=height)


def _json_object(value: str, what: str, location: str) -> dict[str, Any]:
    try:
        document = json.loads(value)
    except ValueError:
        raise RowRejected(f"{location}: {what} is not valid JSON.") from None
    if not isinstance(document, dict):
        raise RowRejected(f"{location}: {what} is not a JSON object.")
    return document


# --- one reader per tool: None when the file is not that tool's --------------------------


def _seedbank(chunks: dict[str, str], key: str, location: str) -> SourceRecipe | None:
    if SEEDBANK_CHUNK not in chunks:
        return None
    try:
        recipe = recipe_from_json(chunks[SEEDBANK_CHUNK])
    except InfotextError as error:
        raise RowRejected(f"{location}: {error}") from None
    scheduler = str(recipe.get("scheduler", ""))
    try:
        fields = seedbank_fields(recipe)
    except RowRejected as error:
        raise RowRejected(f"{location}: {error}") from None
    unknown = sorted(set(recipe) - RECIPE_KEYS - DOCUMENT_KEYS)
    if unknown:
        # A newer Seedbank's field, which this archive's recipe lacks: it moves pixels until
        # this reader knows otherwise.
        fields["unsupported"] = (
            *fields.get("unsupported", ()),
            f"recipe fields this Seedbank does not know: {', '.join(unknown)}",
        )
    return SourceRecipe(
        tool="seedbank",
        source_key=key,
        location=location,
        prompt=text("Prompt", recipe.get("prompt")),
        negative_prompt=text("Negative prompt", recipe.get("negative_prompt")),
        seed=seed_value(recipe.get("seed")),
        steps=whole_number("Steps", recipe.get("steps"), low=1),
        guidance=decimal("Guidance", recipe.get("guidance")),
        width=whole_number("Width", recipe.get("width"), low=1),
        height=whole_number("Height", recipe.get("height"), low=1),
        sampler=scheduler,
        scheduler=samplers.scheduler_for("seedbank", scheduler),
        model_name=text("Model", recipe.get("model")),
        model_hash=text("Model digest", recipe.get("model_digest")),
        **batch_fields(recipe),
        **fields,
        raw={SEEDBANK_CHUNK: chunks[SEEDBANK_CHUNK]},
    )


def _parameters_json(chunks: dict[str, str], marker: str) -> dict[str, Any] | None:
    value = chunks.get(PARAMETERS_CHUNK, "")
    if not value.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(value)
    except ValueError:
        return None
    return document if isinstance(document, dict) and marker in document else None


def _swarmui(chunks: dict[str, str], key: str, location: str) -> SourceRecipe | None:
    document = _parameters_json(chunks, "sui_image_params")
    if document is None:
        return None
    params = document["sui_image_params"]
    if not isinstance(params, dict):
        raise RowRejected(f"{location}: sui_image_params is not a JSON object.")
    sampler = text("Sampler", params.get("sampler", ""))
    schedule = text("Scheduler", params.get("scheduler", ""))
    scheduler = samplers.scheduler_for("swarmui", sampler, schedule)
    return SourceRecipe(
        tool="swarmui",
        source_key=key,
        location=location,
        prompt=text("Prompt", params.get("prompt")),
        negative_prompt=text("Negative prompt", params.get("negativeprompt")),
        seed=seed_value(params.get("seed")),
        steps=whole_number("Steps", params.get("steps"), low=1),
        guidance=decimal("CFG scale", params.get("cfgscale")),
        width=whole_number("Width", params.get("width"), low=1),
        height=whole_number("Height", params.get("height"), low=1),
        sampler=sampler,
        scheduler=scheduler,
        model_name=text("Model", params.get("model")),
        raw={PARAMETERS_CHUNK: chunks[PARAMETERS_CHUNK]},
        warnings=()
        if scheduler or not sampler
        else (samplers.unknown_sampler_warning("SwarmUI", sampler, schedule),),
    )


def _fooocus(chunks: dict[str, str], key: str, location: str) -> SourceRecipe | None:
    document = _parameters_json(chunks, "fooocus_scheme") or (
        _parameters_json(chunks, "base_model") if "fooocus_scheme" in chunks else None
    )
    if document is None:
        return None
    sampler = text("Sampler", document.get("sampler", ""))
    schedule = text("Scheduler", document.get("scheduler", ""))
    scheduler = samplers.scheduler_for("fooocus", sampler, schedule)
    width, height = _resolution(document.get("resolution"), location)
    return SourceRecipe(
        tool="fooocus",
        source_key=key,
        location=location,
        prompt=text("Prompt", document.get("prompt")),
        negative_prompt=text("Negative prompt", document.get("negative_prompt")),
        seed=seed_value(document.get("seed")),
        steps=whole_number("Steps", document.get("steps"), low=1),
        guidance=decimal("Guidance scale", document.get("guidance_scale")),
        width=width,
        height=height,
        sampler=sampler,
        scheduler=scheduler,
        model_name=text("Base model", document.get("base_model")),
        model_hash=text("Base model hash", document.get("base_model_hash")),
        raw={PARAMETERS_CHUNK: chunks[PARAMETERS_CHUNK]},
        warnings=()
        if scheduler
        else (samplers.unknown_sampler_warning("Fooocus", sampler, schedule),),
    )


def _resolution(value: Any, location: str) -> tuple[int | None, int | None]:
    """Fooocus writes "(1152, 896)": width, height."""
    if value is None:
        return None, None
    parts = str(value).strip("()[] ").split(",")
    if len(parts) != 2:
        raise RowRejected(f"{location}: resolution {value!r} is not '(width, height)'.")
    return (
        whole_number("Width", parts[0].strip(), low=1),
        whole_number("Height", parts[1].strip(), low=1),
    )


def _invokeai(chunks: dict[str, str], key: str, location: str) -> SourceRecipe | None:
    if "invokeai_metadata" not in chunks:
        return None
    document = _json_object(chunks["invokeai_metadata"], "invokeai_metadata", location)
    model = document.get("model")
    model = model if isinstance(model, dict) else {}
    sampler = text("Scheduler", document.get("scheduler", ""))
    scheduler = samplers.scheduler_for("invokeai", sampler)
    return SourceRecipe(
        tool="invokeai",
        source_key=key,
        location=location,
        prompt=text("Prompt", document.get("positive_prompt")),
        negative_prompt=text("Negative prompt", document.get("negative_prompt")),
        seed=seed_value(document.get("seed")),
        steps=whole_number("Steps", document.get("steps"), low=1),
        guidance=decimal("CFG scale", document.get("cfg_scale")),
        width=whole_number("Width", document.get("width"), low=1),
        height=whole_number("Height", document.get("height"), low=1),
        sampler=sampler,
        scheduler=scheduler,
        model_name=text("Model", model.get("name") or model.get("model_name")),
        model_hash=text("Model hash", model.get("hash", "")),
        raw={"invokeai_metadata": chunks["invokeai_metadata"]},
        warnings=() if scheduler else (samplers.unknown_sampler_warning("InvokeAI", sampler),),
    )


def _novelai(chunks: dict[str, str], key: str, location: str) -> SourceRecipe | None:
    if chunks.get("Software") != "NovelAI" or "Comment" not in chunks:
        return None
    document = _json_object(chunks["Comment"], "NovelAI's Comment", location)
    sampler = text("Sampler", document.get("sampler", ""))
    schedule = text("Noise schedule", document.get("noise_schedule", ""))
    scheduler = samplers.scheduler_for("novelai", sampler, schedule)
    model = text("Source", chunks.get("Source", ""))
    name, _, hash_ = model.rpartition(" ")
    return SourceRecipe(
        tool="novelai",
        source_key=key,
        location=location,
        prompt=text("Prompt", document.get("prompt", chunks.get("Description"))),
        negative_prompt=text("Negative prompt", document.get("uc")),
        seed=seed_value(document.get("seed")),
        steps=whole_number("Steps", document.get("steps"), low=1),
        guidance=decimal("Scale", document.get("scale")),
        width=whole_number("Width", document.get("width"), low=1),
        height=whole_number("Height", document.get("height"), low=1),
        sampler=sampler,
        scheduler=scheduler,
        model_name=name if hash_ else model,
        model_hash=hash_ if name else "",
        raw={k: chunks[k] for k in ("Software", "Source", "Description", "Comment") if k in chunks},
        warnings=()
        if scheduler
        else (samplers.unknown_sampler_warning("NovelAI", sampler, schedule),),
    )


def _a1111(chunks: dict[str, str], key: str, location: str) -> SourceRecipe | None:
    if PARAMETERS_CHUNK not in chunks:
        return None
    raw = {PARAMETERS_CHUNK: chunks[PARAMETERS_CHUNK]}
    return recipe_from_infotext(chunks[PARAMETERS_CHUNK], key=key, location=location, raw=raw)


def _comfyui(chunks: dict[str, str], key: str, location: str) -> SourceRecipe | None:
    if "prompt" not in chunks:
        return None
    graph = _json_object(chunks["prompt"], "ComfyUI's prompt graph", location)
    raw: dict[str, Any] = {n: chunks[n] for n in ("prompt", "workflow") if n in chunks}
    return recipe_from_graph(graph, key=key, location=location, raw=raw)


# The most exact first: a Seedbank PNG also carries A1111 text; JSON "parameters" formats
# before A1111's infotext, which would reject them.
_READERS: tuple[Callable[[dict[str, str], str, str], SourceRecipe | None], ...] = (
    _seedbank,
    _invokeai,
    _comfyui,
    _novelai,
    _swarmui,
    _fooocus,
    _a1111,
)
