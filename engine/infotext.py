"""Recipes as text inside PNGs: A1111's "parameters" infotext and Seedbank's own JSON chunk.

A PNG from Seedbank carries two text chunks:

- "parameters": the recipe in AUTOMATIC1111's infotext format, so A1111, Civitai and every tool
  that reads it ("PNG Info") sees prompt, sampler, seed and size. The format is lossy at the
  edges (see `parse_infotext`), so it is for interchange, not for the archive's own truth;
- "seedbank": the recipe as JSON, exact and versioned, which is what Seedbank reads back.

The infotext rules follow A1111's modules/infotext_utils.py (`parse_generation_parameters`,
`re_param`, `quote`/`unquote`), modules/processing.py (`create_infotext`) and
modules/extra_networks.py (`parse_prompt`: the `<lora:name:weight>` tags); the code is ours.
This module reads and writes the format as A1111 means it; what Seedbank makes of it (which
LoRA file a short hash names, what cannot be held) is engine.imports' business.
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
_KNOWN_KEYS = (
    "Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model", "VAE hash", "VAE",
    "Denoising strength", "Clip skip", "Hires upscale", "Hires resize", "Hires steps",
    "Hires upscaler", "Lora hashes", "TI hashes",
)  # fmt: skip
# A1111's re_extra_net: an extra-network tag, <kind:name[:arg…]>. A1111 cuts every one out of
# the prompt before encoding it (whatever the kind) and hands its args to that kind's network.
_NETWORK_TAG = re.compile(r"<(\w+):([^>]+)>")
# What a tag's name or arg cannot hold and still read back as the same tag.
_TAG_BREAKERS = frozenset(":<>\n")
# Civitai appends JSON unquoted ('Hashes: {"vae": "…", "model": "…"}', "Civitai resources:
# [{…}]"), which A1111's param pattern would cut at its first comma: their JSON is read whole.
_JSON_KEYS = ("Hashes", "Civitai resources", "Civitai metadata")
_JSON_PARAM = re.compile(rf"(^|,\s*)({'|'.join(_JSON_KEYS)}):\s*(?=[\[{{])")
# A "Lora hashes" / "TI hashes" name: A1111 removes ":" and "," from names before writing.
_HASH_NAME_BREAKERS = frozenset(":,\n")
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
class NetworkTag:
    """One extra-network tag of a prompt, `<kind:name[:arg…]>`, as A1111 splits it.

    For "lora" (and its old alias "lyco") A1111 reads the args as `te[:unet[:dyn]]` numbers
    or `te=`, `unet=`, `dyn=` (modules' extra_networks_lora.py); other kinds ("hypernet", and
    whatever an extension registers) read them their own way. Kept verbatim here.
    """

    kind: str
    name: str
    args: tuple[str, ...] = ()

    def text(self) -> str:
        return "<" + ":".join((self.kind, self.name, *self.args)) + ">"


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
    # The prompt's extra-network tags in order. `prompt` holds none: A1111 keeps them in the
    # prompt text, and to_infotext puts them back at its end.
    networks: tuple[NetworkTag, ...] = ()
    # "Lora hashes" / "TI hashes": name as written in the tag (or the embedding's name) →
    # A1111's short hash (12 hex: kohya's addnet hash for a LoRA, the file sha256 for an
    # embedding; other tools write other lengths).
    lora_hashes: Mapping[str, str] = field(default_factory=dict)
    ti_hashes: Mapping[str, str] = field(default_factory=dict)
    vae_name: str = ""  # "VAE": A1111 writes it only when a VAE file replaces the model's own
    vae_hash: str = ""  # "VAE hash": AutoV2 of the VAE file
    clip_skip: int = 1  # "Clip skip", written only above 1
    # Hires fix: "Hires upscale" (a scale) or "Hires resize" (WIDTHxHEIGHT, 0 = follow the
    # other side), "Hires steps" (0 = as many as the first pass), "Hires upscaler".
    hires_scale: float | None = None
    hires_resize: tuple[int, int] | None = None
    hires_steps: int = 0
    hires_upscaler: str = ""
    # The second pass's with hires fix; img2img's (the init image's share) without it.
    denoising_strength: float | None = None
    # Other "Key: value" params, kept verbatim on parse and written after the known ones.
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def hires(self) -> bool:
        """Whether the text asks for a hires-fix pass (any of its params)."""
        return (
            self.hires_scale is not None
            or self.hires_resize is not None
            or bool(self.hires_steps)
            or bool(self.hires_upscaler)
        )


def short_model_hash(sha256_hex: str) -> str:
    """A1111's "Model hash" for a weights file whose sha256 is `sha256_hex`."""
    return sha256_hex[:SHORT_HASH_LENGTH]


# --- writing ------------------------------------------------------------------------------


def to_infotext(recipe: InfotextRecipe) -> str:
    """The recipe as A1111 writes it under an image: prompt (its extra-network tags at the
    end), negative prompt, one params line."""
    # Refused here rather than written as text that parse_infotext would then refuse.
    for name in ("steps", "seed", "width", "height", "hires_steps"):
        value = getattr(recipe, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InfotextError(f"{name} must be a whole number of at least 0, got {value!r}.")
    clip_skip = recipe.clip_skip
    if isinstance(clip_skip, bool) or not isinstance(clip_skip, int) or clip_skip < 1:
        raise InfotextError(f"Clip skip must be a whole number from 1 up, got {clip_skip!r}.")
    if not math.isfinite(recipe.guidance):
        raise InfotextError(f"CFG scale must be a finite number, got {recipe.guidance!r}.")
    for name in ("hires_scale", "denoising_strength"):
        value = getattr(recipe, name)
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
            raise InfotextError(f"{name} must be a finite number, got {value!r}.")
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
    # create_infotext's order from here: VAE, denoising, clip skip, then the hires fix's and
    # the extra networks' own params.
    if recipe.vae_hash:
        params["VAE hash"] = recipe.vae_hash
    if recipe.vae_name:
        params["VAE"] = recipe.vae_name
    if recipe.denoising_strength is not None:
        params["Denoising strength"] = number_text(recipe.denoising_strength)
    if recipe.clip_skip > 1:
        params["Clip skip"] = str(recipe.clip_skip)
    if recipe.hires_scale is not None:
        params["Hires upscale"] = number_text(recipe.hires_scale)
    if recipe.hires_resize is not None:
        params["Hires resize"] = _resize_text(recipe.hires_resize)
    if recipe.hires_steps:
        params["Hires steps"] = str(recipe.hires_steps)
    if recipe.hires_upscaler:
        params["Hires upscaler"] = recipe.hires_upscaler
    if recipe.lora_hashes:
        params["Lora hashes"] = _hashes_text("Lora hashes", recipe.lora_hashes)
    if recipe.ti_hashes:
        params["TI hashes"] = _hashes_text("TI hashes", recipe.ti_hashes)
    for key, value in recipe.extra.items():
        _check_extra(key, value, sampler)
        params[key] = value
    line = ", ".join(f"{key}: {_quote_param(key, value)}" for key, value in params.items())
    prompt = _with_tags(recipe.prompt, recipe.networks)
    negative = f"\n{NEGATIVE_PREFIX} {recipe.negative_prompt}" if recipe.negative_prompt else ""
    # create_infotext strips the whole text too: an empty prompt leaves no blank first line.
    return f"{prompt}{negative}\n{line}".strip()


def _quote_param(key: str, value: str) -> str:
    # A bare "{" or "[" after one of Civitai's keys would be read as its unquoted JSON.
    if key in _JSON_KEYS and value[:1] in ("{", "["):
        return json.dumps(value, ensure_ascii=False)
    return quote(value)


def number_text(value: float) -> str:
    """A number as people type it into A1111 ("2", "0.5"), reading back as the same float."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _resize_text(size: tuple[int, int]) -> str:
    width, height = size
    for side in size:
        if isinstance(side, bool) or not isinstance(side, int) or side < 0:
            raise InfotextError(f"Hires resize sides must be whole numbers, got {size!r}.")
    return f"{width}x{height}"


def _hashes_text(key: str, hashes: Mapping[str, str]) -> str:
    """ "name: hash, name: hash", as A1111's Lora and TI hashes are written."""
    for name, short in hashes.items():
        for part in (name, short):
            if not isinstance(part, str) or not part.strip() or part != part.strip():
                raise InfotextError(f"{key}: {part!r} cannot be written (empty or padded).")
            if _HASH_NAME_BREAKERS & set(part):
                raise InfotextError(f"{key}: {part!r} holds ':', ',' or a newline.")
    return ", ".join(f"{name}: {short}" for name, short in hashes.items())


def _with_tags(prompt: str, networks: tuple[NetworkTag, ...]) -> str:
    """The prompt with its extra-network tags after the last line's text, a space apart, as
    people write them: read back, the tags are cut out and that line stripped, which gives
    the prompt again."""
    for tag in networks:
        if not isinstance(tag.kind, str) or not re.fullmatch(r"\w+", tag.kind):
            raise InfotextError(f"{tag.kind!r} cannot be an extra-network kind (a word).")
        for part in (tag.name, *tag.args):
            if not part or _TAG_BREAKERS & set(part):
                raise InfotextError(
                    f"{tag.text()!r}: an extra network's name and args must be non-empty and "
                    "hold no ':', '<', '>' or newline."
                )
    if not networks:
        return prompt
    tags = " ".join(tag.text() for tag in networks)
    last_line = prompt.rpartition("\n")[2]
    appended = f"{prompt} {tags}" if last_line else f"{prompt}{tags}"
    if _cut_tags(appended)[1] == networks:
        return appended
    # The prompt ends inside something tag-like ("<b:c" with no ">"), which would swallow the
    # first tag; put first, each tag closes before the prompt starts.
    return f"{tags} {prompt}" if prompt.partition("\n")[0] else f"{tags}{prompt}"


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
    Extra-network tags (`<lora:name:0.8>`) are cut out of the prompt into `networks`, as
    A1111 does before encoding it, so a prompt meant to say such a tag literally cannot
    either. The negative prompt keeps its tags: A1111 encodes them there as words.
    """
    if not isinstance(text, str):
        raise InfotextError(f"Infotext must be text, got {type(text).__name__}.")
    *lines, last_line = text.strip().split("\n")
    last_line, json_params = _json_params(last_line)
    found = [*_PARAM.findall(last_line), *json_params.items()]
    if len(found) < _MIN_PARAMS:
        raise InfotextError(
            "No parameters line: A1111 infotext ends with a line like "
            "'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512'."
        )
    prompt, negative_prompt = _split_prompts(lines)
    prompt, networks = _cut_tags(prompt)
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
    hires_scale = params.get("Hires upscale")
    hires_resize = params.get("Hires resize")
    denoising = params.get("Denoising strength")
    return InfotextRecipe(
        prompt=prompt,
        negative_prompt=negative_prompt,
        steps=_whole_number("Steps", params["Steps"]),
        scheduler=scheduler,
        guidance=_decimal("CFG scale", params["CFG scale"]),
        seed=_whole_number("Seed", params["Seed"]),
        width=width,
        height=height,
        model_name=params.get("Model", ""),
        model_hash=params.get("Model hash", ""),
        networks=networks,
        lora_hashes=_hashes("Lora hashes", params.get("Lora hashes", "")),
        ti_hashes=_hashes("TI hashes", params.get("TI hashes", "")),
        vae_name=params.get("VAE", ""),
        vae_hash=params.get("VAE hash", ""),
        clip_skip=_clip_skip(params.get("Clip skip", "1")),
        hires_scale=None if hires_scale is None else _decimal("Hires upscale", hires_scale),
        hires_resize=None if hires_resize is None else _hires_resize(hires_resize),
        hires_steps=_whole_number("Hires steps", params.get("Hires steps", "0")),
        hires_upscaler=params.get("Hires upscaler", ""),
        denoising_strength=None if denoising is None else _decimal("Denoising strength", denoising),
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


def _json_params(line: str) -> tuple[str, dict[str, str]]:
    """The params line without Civitai's unquoted JSON params, and those params (their JSON
    text as written)."""
    decoder = json.JSONDecoder()
    found: dict[str, str] = {}
    kept: list[str] = []
    position = 0
    while match := _JSON_PARAM.search(line, position):
        try:
            _, end = decoder.raw_decode(line, match.end())
        except ValueError:
            kept.append(line[position : match.end()])
            position = match.end()
            continue
        found[match.group(2)] = line[match.end() : end]
        kept.append(line[position : match.start()])
        position = end
    kept.append(line[position:])
    return "".join(kept), found


def _cut_tags(prompt: str) -> tuple[str, tuple[NetworkTag, ...]]:
    """The prompt without its extra-network tags, and the tags.

    A1111 replaces each tag with nothing (extra_networks.parse_prompt), so "a cat, <lora:x:1>"
    encodes "a cat, ". A line that held a tag is also stripped at its ends: text encoders
    drop that whitespace, and A1111's reader strips every prompt line anyway.
    """
    networks: list[NetworkTag] = []

    def cut(match: re.Match[str]) -> str:
        name, *args = match.group(2).split(":")
        networks.append(NetworkTag(kind=match.group(1), name=name, args=tuple(args)))
        return marker

    # A character the prompt does not hold marks where tags were (private use area).
    marker = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in prompt)
    marked = _NETWORK_TAG.sub(cut, prompt)
    if not networks:
        return prompt, ()
    lines = [
        line.replace(marker, "").strip() if marker in line else line for line in marked.split("\n")
    ]
    return "\n".join(lines), tuple(networks)


def _hashes(key: str, value: str) -> dict[str, str]:
    """ "name: hash, name: hash" (A1111's Lora and TI hashes) as a dict."""
    found: dict[str, str] = {}
    for entry in value.split(","):
        if not entry.strip():
            continue
        name, sep, short = entry.partition(":")
        if not sep or not name.strip() or not short.strip():
            raise InfotextError(f"{key} must read 'name: hash, name: hash', got {value!r}.")
        found[name.strip()] = short.strip()
    return found


def _clip_skip(value: str) -> int:
    number = _whole_number("Clip skip", value)
    if number < 1:
        raise InfotextError(f"Clip skip must be at least 1 (1 skips nothing), got {value!r}.")
    return number


def _hires_resize(value: str) -> tuple[int, int]:
    match = _SIZE.fullmatch(value)
    if match is None:
        raise InfotextError(f"Hires resize must be WIDTHxHEIGHT like 1024x1536, got {value!r}.")
    return int(match.group(1)), int(match.group(2))


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


def _decimal(key: str, value: str) -> float:
    number = float(value) if _DECIMAL.fullmatch(value) else math.nan
    if not math.isfinite(number):
        raise InfotextError(f"{key} must be a number like 7 or 0.5, got {value!r}.")
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
    "NetworkTag",
    "number_text",
    "parse_infotext",
    "quote",
    "read_png_chunks",
    "recipe_from_json",
    "recipe_to_json",
    "short_model_hash",
    "to_infotext",
    "unquote",
]
