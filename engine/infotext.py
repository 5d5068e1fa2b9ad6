"""Recipes as text inside PNGs: A1111's "parameters" infotext and Seedbank's own JSON chunk.

A PNG from Seedbank carries two text chunks:

- "parameters": the recipe in AUTOMATIC1111's infotext format, so A1111, Civitai and every tool
  that reads it ("PNG Info") sees prompt, sampler, seed and size. The format is lossy at the
  edges (see `parse_infotext`), so it is for interchange, not for the archive's own truth;
- "seedbank": the recipe as JSON, exact and versioned, which is what Seedbank reads back.

The infotext rules follow A1111's modules/infotext_utils.py (`parse_generation_parameters`,
`re_param`, `quote`/`unquote`) and modules/processing.py (`create_infotext`); the code is ours.
Django-free: the worker writes these chunks and the web app reads them.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine import schedulers

PARAMETERS_CHUNK = "parameters"
SEEDBANK_CHUNK = "seedbank"
RECIPE_FORMAT = "seedbank-recipe"
RECIPE_VERSION = 1

NEGATIVE_PREFIX = "Negative prompt:"
# A1111's re_param: "Key: value" where the value is a JSON string or runs to the next comma. A
# key is a word character and then at least one more of word, space, "-" or "/".
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_KEY = re.compile(r"\w[\w \-/]+")
# A1111 treats the last line as parameters only when it holds at least this many of them.
_MIN_PARAMS = 3
# ASCII only: Python's int() and float() also accept "١٢", "1_000", " 7 ", "inf" and "nan".
_UINT = re.compile(r"[0-9]+")
_SIZE = re.compile(r"([0-9]+)x([0-9]+)")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# The params an InfotextRecipe field holds; anything else lands in `extra`.
_KNOWN_KEYS = ("Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model")
# create_infotext always writes these five (their values are never None there).
_REQUIRED_KEYS = ("Steps", "Sampler", "CFG scale", "Seed", "Size")
# A1111 1.9+ writes "Sampler: DPM++ 2M, Schedule type: Karras" for what older versions (and
# Seedbank) call "DPM++ 2M Karras".
_SCHEDULE_TYPE = "Schedule type"
# A1111's short model hash is the first 10 hex digits of the weights file's sha256.
SHORT_HASH_LENGTH = 10


class InfotextError(ValueError):
    """Text that is not a recipe this module can read, said in words a user can act on."""


@dataclass(frozen=True)
class InfotextRecipe:
    prompt: str
    negative_prompt: str = ""
    steps: int = 20
    # A canonical name (schedulers.SCHEDULERS); "" only from keep_unknown_sampler parsing.
    scheduler: str = "PNDM"
    guidance: float = 7.5
    seed: int = 0
    width: int = 512
    height: int = 512
    model_name: str = ""
    model_hash: str = ""  # A1111's short hash: first 10 hex chars of the weights digest
    # Other "Key: value" params, kept verbatim on parse and written after the known ones.
    extra: Mapping[str, str] = field(default_factory=dict)


def short_model_hash(sha256_hex: str) -> str:
    """A1111's "Model hash" for a weights file whose sha256 is `sha256_hex`."""
    return sha256_hex[:SHORT_HASH_LENGTH]


# --- writing ------------------------------------------------------------------------------


def to_infotext(recipe: InfotextRecipe) -> str:
    """The recipe as A1111 writes it under an image: prompt, negative prompt, one params line."""
    # Refused here rather than written as text that parse_infotext would then refuse.
    for name in ("steps", "seed", "width", "height"):
        value = getattr(recipe, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InfotextError(f"{name} must be a whole number of at least 0, got {value!r}.")
    if not math.isfinite(recipe.guidance):
        raise InfotextError(f"CFG scale must be a finite number, got {recipe.guidance!r}.")
    sampler = schedulers.CANONICAL_TO_A1111[_canonical(recipe.scheduler)]
    params: dict[str, str] = {
        "Steps": str(recipe.steps),
        "Sampler": sampler,
        # create_infotext writes the float itself, so 7.0 reads "7.0" and 7.5 "7.5"; repr is
        # the shortest text that reads back as the same float, so guidance round-trips exactly.
        "CFG scale": repr(float(recipe.guidance)),
        "Seed": str(recipe.seed),
        "Size": f"{recipe.width}x{recipe.height}",
    }
    if recipe.model_hash:
        params["Model hash"] = recipe.model_hash
    if recipe.model_name:
        params["Model"] = recipe.model_name
    for key, value in recipe.extra.items():
        _check_extra(key, value, sampler)
        params[key] = value
    line = ", ".join(f"{key}: {quote(value)}" for key, value in params.items())
    negative = f"\n{NEGATIVE_PREFIX} {recipe.negative_prompt}" if recipe.negative_prompt else ""
    # create_infotext strips the whole text too: an empty prompt leaves no blank first line.
    return f"{recipe.prompt}{negative}\n{line}".strip()


def quote(value: str) -> str:
    """A params value as it goes on the line: JSON-quoted when it could not be read back bare.

    A1111's quote() quotes values holding ",", ":" or a newline. Two more cases are quoted
    here because A1111's reader would change them if left bare: a leading '"' (unquote() would
    take it for a quoted value) and whitespace at either end (the reader drops it). A1111
    reads all of these back through its unquote(), so the text stays A1111-compatible.
    """
    needs_quotes = (
        "," in value
        or ":" in value
        or "\n" in value
        or value.startswith('"')
        or value != value.strip()
    )
    return json.dumps(value, ensure_ascii=False) if needs_quotes else value


def _check_extra(key: str, value: object, sampler: str) -> None:
    if not isinstance(value, str):
        raise InfotextError(f"Extra param {key!r} must be text, got {value!r}.")
    if key in _KNOWN_KEYS:
        raise InfotextError(f"Extra param {key!r} is a recipe field; set it on the recipe.")
    if _KEY.fullmatch(key) is None:
        raise InfotextError(
            f"Extra param name {key!r} cannot be written: A1111 reads a name as a letter or "
            "digit followed by letters, digits, spaces, '-' or '/'."
        )
    if key == _SCHEDULE_TYPE and _karras_variant(sampler, value) is not None:
        # parse_infotext folds this pair into the scheduler; writing it would not read back.
        raise InfotextError(
            f"'{key}: {value}' with sampler {sampler!r} is the scheduler "
            f"{_karras_variant(sampler, value)!r}; set that as the recipe's scheduler."
        )


def _canonical(name: str) -> str:
    try:
        return schedulers.canonical_scheduler(name)
    except ValueError as error:
        raise InfotextError(str(error)) from None


# --- reading ------------------------------------------------------------------------------


def parse_infotext(text: str, *, keep_unknown_sampler: bool = False) -> InfotextRecipe:
    """Read A1111 infotext the way A1111's parse_generation_parameters does.

    A sampler the catalogue does not know is an error, unless `keep_unknown_sampler` (imports
    keep and report it): then `scheduler` is "" and the tool's words stay in `extra`.

    The last line holds the params if A1111's param pattern finds at least three "Key: value"
    pairs in it; the lines before it are the prompt, until a line starting "Negative prompt:",
    which starts the negative prompt (it may span lines). As in A1111, every prompt line is
    stripped of surrounding whitespace, empty lines before the prompt's first text are dropped,
    and any later line starting "Negative prompt:" loses that prefix: prompts relying on those
    details do not survive a trip through infotext (the "seedbank" JSON chunk keeps them).
    """
    if not isinstance(text, str):
        raise InfotextError(f"Infotext must be text, got {type(text).__name__}.")
    *lines, last_line = text.strip().split("\n")
    found = _PARAM.findall(last_line)
    if len(found) < _MIN_PARAMS:
        raise InfotextError(
            "No parameters line: A1111 infotext ends with a line like "
            "'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512'."
        )
    prompt, negative_prompt = _split_prompts(lines)
    params: dict[str, str] = {}
    for key, raw in found:
        params[key] = unquote(raw)  # a repeated key keeps its last value, as in A1111

    missing = [key for key in _REQUIRED_KEYS if key not in params]
    if missing:
        raise InfotextError(f"The parameters line has no {', '.join(missing)}.")
    try:
        scheduler, params = _scheduler_from(params)
    except InfotextError:
        if not keep_unknown_sampler:
            raise
        scheduler = ""
    width, height = _size(params["Size"])
    return InfotextRecipe(
        prompt=prompt,
        negative_prompt=negative_prompt,
        steps=_whole_number("Steps", params["Steps"]),
        scheduler=scheduler,
        guidance=_cfg_scale(params["CFG scale"]),
        seed=_whole_number("Seed", params["Seed"]),
        width=width,
        height=height,
        model_name=params.get("Model", ""),
        model_hash=params.get("Model hash", ""),
        extra={
            key: value
            for key, value in params.items()
            if key not in _KNOWN_KEYS or (key == "Sampler" and not scheduler)
        },
    )


def unquote(raw: str) -> str:
    """A value as read from the params line: JSON strings decoded, anything else verbatim."""
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        try:
            decoded = json.loads(raw)
        except ValueError:
            return raw  # A1111 keeps a value that only looks quoted as it is
        if isinstance(decoded, str):
            return decoded
    return raw


def _split_prompts(lines: list[str]) -> tuple[str, str]:
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for raw_line in lines:
        line = raw_line.strip()
        # Checked on every line, as A1111 does, not only on the first switch.
        if line.startswith(NEGATIVE_PREFIX):
            in_negative = True
            line = line[len(NEGATIVE_PREFIX) :].strip()
        target = negative if in_negative else prompt
        # A1111 joins with "\n" only once the text is non-empty, so leading blank lines vanish.
        if target or line:
            target.append(line)
    return "\n".join(prompt), "\n".join(negative)


def _scheduler_from(params: dict[str, str]) -> tuple[str, dict[str, str]]:
    sampler = params["Sampler"]
    schedule_type = params.get(_SCHEDULE_TYPE)
    if schedule_type is not None:
        variant = _karras_variant(sampler, schedule_type)
        if variant is not None:
            rest = {key: value for key, value in params.items() if key != _SCHEDULE_TYPE}
            return variant, rest
    try:
        return schedulers.canonical_scheduler(sampler), params
    except ValueError as error:
        raise InfotextError(f"Sampler: {error}") from None


def _karras_variant(sampler: str, schedule_type: str) -> str | None:
    """The canonical "<sampler> Karras" that A1111 1.9+ splits into sampler + schedule type."""
    if schedule_type.strip().casefold() != "karras":
        return None
    try:
        return schedulers.canonical_scheduler(f"{sampler} Karras")
    except ValueError:
        return None


def _whole_number(key: str, value: str) -> int:
    if _UINT.fullmatch(value) is None:
        raise InfotextError(f"{key} must be a whole number like 20, got {value!r}.")
    return int(value)


def _cfg_scale(value: str) -> float:
    number = float(value) if _DECIMAL.fullmatch(value) else math.nan
    if not math.isfinite(number):
        raise InfotextError(f"CFG scale must be a number like 7 or 7.5, got {value!r}.")
    return number


def _size(value: str) -> tuple[int, int]:
    match = _SIZE.fullmatch(value)
    if match is None:
        raise InfotextError(f"Size must be WIDTHxHEIGHT like 512x768, got {value!r}.")
    return int(match.group(1)), int(match.group(2))


# --- the "seedbank" chunk -----------------------------------------------------------------


def recipe_to_json(recipe: Mapping[str, Any]) -> str:
    """The "seedbank" chunk: the recipe as compact, key-sorted JSON with its format and version.

    Sorted keys and fixed separators make equal recipes give equal bytes, so two PNGs of one
    recipe differ only where their pixels do.
    """
    clash = sorted({"format", "version"} & set(recipe))
    if clash:
        raise InfotextError(f"A recipe cannot have the keys {clash}: the chunk header uses them.")
    document = {"format": RECIPE_FORMAT, "version": RECIPE_VERSION, **recipe}
    try:
        return json.dumps(
            document, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, ValueError) as error:
        raise InfotextError(f"The recipe cannot be written as JSON: {error}") from None


def recipe_from_json(text: str) -> dict[str, Any]:
    """The recipe dict from a "seedbank" chunk, without the format and version keys."""
    try:
        document = json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants
        )
    except InfotextError:
        raise
    except (TypeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise InfotextError(f"The seedbank chunk is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise InfotextError("The seedbank chunk must be a JSON object.")
    found_format = document.pop("format", None)
    if found_format != RECIPE_FORMAT:
        raise InfotextError(
            f"The seedbank chunk's format is {found_format!r}, not {RECIPE_FORMAT!r}."
        )
    version = document.pop("version", None)
    # bool is an int in Python: true must not pass for version 1.
    if type(version) is not int or version != RECIPE_VERSION:
        raise InfotextError(
            f"The seedbank chunk is version {version!r}; this Seedbank reads {RECIPE_VERSION}."
        )
    return document


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys silently; a recipe with two seeds is broken.
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise InfotextError(f"The seedbank chunk repeats the key {key!r}.")
        document[key] = value
    return document


def _no_constants(name: str) -> Any:
    raise InfotextError(f"The seedbank chunk holds {name}, which JSON does not allow.")


# --- PNG ----------------------------------------------------------------------------------


def read_png_chunks(png: bytes) -> dict[str, str]:
    """The text chunks (tEXt, zTXt, iTXt) of a PNG, by keyword."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
            # .text reads chunks after the image data too, which means decoding it.
            text = dict(getattr(image, "text", {}))
    except (
        UnidentifiedImageError,  # not a PNG at all
        Image.DecompressionBombError,
        OSError,  # truncated data
        SyntaxError,  # Pillow's PNG reader raises it for malformed chunks
        ValueError,  # e.g. a zTXt chunk that inflates past Pillow's limit
        EOFError,
        TypeError,  # not bytes
    ) as error:
        raise InfotextError(f"Not a readable PNG: {error}") from None
    return {str(key): str(value) for key, value in text.items()}


__all__ = [
    "NEGATIVE_PREFIX",
    "PARAMETERS_CHUNK",
    "RECIPE_FORMAT",
    "RECIPE_VERSION",
    "SEEDBANK_CHUNK",
    "InfotextError",
    "InfotextRecipe",
    "parse_infotext",
    "quote",
    "read_png_chunks",
    "recipe_from_json",
    "recipe_to_json",
    "short_model_hash",
    "to_infotext",
    "unquote",
]
