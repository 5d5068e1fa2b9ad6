"""Recipes from prompt tables: CSV, JSONL, Lexica's JSON and DiffusionDB's parquet.

Every reader streams (one row in memory at a time, parquet one row group) and yields, per row,
either a SourceRecipe or a Rejected with the row's place and the reason, so one bad row never
stops the rest.

CSV and JSONL columns are found by a mapping from recipe field to a path (`Mapping`): the
defaults know the usual names ("cfg_scale", "sampler_name"…); `--map seed=params.seed` reaches
into a nested object, and in a CSV a cell holding JSON is read as an object.

A row's other columns are refused, by name, unless they are known not to move pixels (an
image's URL, Lexica's gallery link, DiffusionDB's user and NSFW scores…) or the import names
them with `--map ignore=COLUMN[,COLUMN…]`: a column nobody reads could be a clip skip or a
LoRA, and the recipe would be another picture. Only top-level columns are checked (the keys
inside a nested column that a mapping reaches into are not), and empty cells never count.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any

from engine.imports import samplers
from engine.imports.source import (
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

# Recipe field → the column names tried in order when no mapping names one.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "image_name", "key", "uuid"),
    "prompt": ("prompt", "positive_prompt", "text"),
    "negative_prompt": ("negative_prompt", "negative", "negativeprompt", "uc"),
    "seed": ("seed",),
    "steps": ("steps", "step", "num_inference_steps"),
    "guidance": ("guidance", "cfg", "cfg_scale", "guidance_scale", "scale"),
    "width": ("width", "w"),
    "height": ("height", "h"),
    "sampler": ("sampler", "sampler_name", "scheduler"),
    "model": ("model", "model_name", "checkpoint"),
    "model_hash": ("model_hash", "hash", "model_digest"),
    # Seedbank's own forms (Recipe.portable(): recipes.jsonl, its JSON in a CSV cell).
    "loras": ("loras",),
    "embeddings": ("embeddings",),
    "vae": ("vae",),
    "clip_skip": ("clip_skip", "clipskip"),
    "hires": ("hires",),
    "prompt_weighting": ("prompt_weighting",),
    "mode": ("mode",),
}
# `--map ignore=a,b`: columns the importer is told do not change the picture.
IGNORE = "ignore"
FIELDS = (*DEFAULT_COLUMNS, IGNORE)
# Columns known not to move pixels, by tool ("*": every table). Seedbank's exports name the
# picture and an img2img record's inputs (its mode reports those, the inputs are not here).
_NO_PIXEL_COLUMNS: dict[str, frozenset[str]] = {
    "*": frozenset({"file", "filename", "pixel_sha256", "init_image_sha256", "mask_sha256",
                    "strength"}),
    "csv": frozenset({"precision", "batch_size", "batch_index"}),
    "jsonl": frozenset({"precision", "batch_size", "batch_index"}),
    # Lexica's search API: links and flags around the picture.
    "lexica": frozenset({"src", "srcSmall", "gallery", "grid", "nsfw", "promptid"}),
    # DiffusionDB's metadata.parquet (its README); Seedbank's parquet adds sampler_name, which
    # is read instead of the code when given (the same sampler, or code 9 "others").
    "diffusiondb": frozenset({"part_id", "user_name", "timestamp", "image_nsfw",
                              "prompt_nsfw", "sampler", "sampler_name"}),
}  # fmt: skip


@dataclass(frozen=True)
class Rejected:
    location: str
    reason: str


# The most one cell (a CSV field, a top-level JSON value) may hold: Python's csv module refuses
# longer fields by default, and no recipe field needs more (a prompt is at most a few thousand
# characters). A longer cell rejects its row, never the table.
CELL_MAX_CHARS = 131_072
# The most one line is read into memory: the rest of a longer line is skipped unread into
# memory, and the row it belongs to rejected.
LINE_MAX_CHARS = 1_048_576


class _Lines:
    """The lines of a text handle, each at most `limit` characters, counted. A longer line
    comes out empty (a CSV parser then sees no cell of it, quoted or not) and its number is
    kept in `cut`; its text is read past in bounded pieces, never held whole."""

    def __init__(self, handle: IO[str], limit: int) -> None:
        self.handle, self.limit = handle, limit
        self.number = 0
        self.cut: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        while line := self.handle.readline(self.limit + 1):
            self.number += 1
            if len(line) > self.limit and not line.endswith("\n"):
                while (rest := self.handle.readline(self.limit)) and not rest.endswith("\n"):
                    pass
                self.cut.add(self.number)
                line = "\n"
            yield line

    def cut_between(self, first: int, last: int) -> bool:
        return any(first <= number <= last for number in self.cut)

    def too_long(self) -> str:
        return f"a line is longer than {self.limit:,} characters"


Row = SourceRecipe | Rejected


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """ "seed=params.seed" pairs → {field: path}; unknown fields are an error."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, sep, path = pair.partition("=")
        field, path = field.strip(), path.strip()
        if not sep or not path:
            raise ValueError(f"A mapping is FIELD=COLUMN[.KEY…], not {pair!r}.")
        if field not in FIELDS:
            raise ValueError(f"Unknown field {field!r} in {pair!r}; fields: {', '.join(FIELDS)}.")
        if field == IGNORE and IGNORE in mapping:  # may be given more than once
            path = f"{mapping[IGNORE]},{path}"
        mapping[field] = path
    return mapping


def csv_rows(
    handle: IO[str],
    name: str,
    mapping: Mapping[str, str] = {},
    *,
    max_cell: int = CELL_MAX_CHARS,
    max_line: int = LINE_MAX_CHARS,
) -> Iterator[Row]:
    """One row per record of the table (csv.DictReader's reading); a row the parser cannot
    read, or with a cell or line past the limits, is rejected alone."""
    lines = _Lines(handle, max_line)
    reader = csv.reader(lines)
    header: list[str] | None = None
    while True:
        first = lines.number + 1
        try:
            cells = _next_record(reader, max_line)
        except csv.Error as error:  # the parser starts again at the next line
            yield Rejected(f"{name} line {lines.number}", f"not readable as CSV ({error})")
            continue
        if cells is None:
            return
        location = f"{name} line {lines.number}"
        if lines.cut_between(first, lines.number):
            yield Rejected(location, lines.too_long())
            continue
        if header is None:
            header = cells
            continue
        if not cells:  # a blank line (DictReader skips them too)
            continue
        values: dict[str, Any] = dict(zip(header, cells, strict=False))
        if len(cells) > len(header):  # as DictReader: the extra cells under no name
            values[None] = cells[len(header) :]  # type: ignore[index]
        elif len(cells) < len(header):
            values.update(dict.fromkeys(header[len(cells) :]))
        yield _row("csv", name, location, values, mapping, max_cell=max_cell)


def _next_record(reader: Iterator[list[str]], max_field: int) -> list[str] | None:
    """The next record, its fields read up to `max_field` characters: a cell past the limit
    is then refused by name (`_row`), where csv's own limit (131,072, one setting for the whole
    process) would stop the parser part-way through a quoted cell, and the lines after it
    would be read out of step. Set for this call only."""
    before = csv.field_size_limit(max(max_field, csv.field_size_limit()))
    try:
        return next(reader, None)
    finally:
        csv.field_size_limit(before)


def jsonl_rows(
    handle: IO[str],
    name: str,
    mapping: Mapping[str, str] = {},
    *,
    max_cell: int = CELL_MAX_CHARS,
    max_line: int = LINE_MAX_CHARS,
) -> Iterator[Row]:
    lines = _Lines(handle, max_line)
    for line in lines:
        location = f"{name} line {lines.number}"
        if lines.number in lines.cut:
            yield Rejected(location, lines.too_long())
            continue
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except json.JSONDecodeError as error:
            yield Rejected(location, f"not valid JSON ({error.msg})")
            continue
        if not isinstance(values, dict):
            yield Rejected(location, "a JSON Lines row must be an object")
            continue
        yield _row("jsonl", name, location, values, mapping, max_cell=max_cell)


def lexica_rows(handle: IO[str], name: str, *, max_cell: int = CELL_MAX_CHARS) -> Iterator[Row]:
    """Lexica's search API answer, {"images": [{"id", "prompt", "seed", "guidance",
    "width", "height", "model", "src"…}]}, or a list of such image objects."""
    try:
        document = json.load(handle)
    except ValueError as error:
        yield Rejected(name, f"not valid JSON ({error})")
        return
    images = document.get("images") if isinstance(document, dict) else document
    if not isinstance(images, list):
        yield Rejected(name, 'Lexica JSON holds an "images" list')
        return
    for index, values in enumerate(images):
        location = f"{name} image {index}"
        if not isinstance(values, dict):
            yield Rejected(location, "an image must be an object")
            continue
        yield _row("lexica", name, location, values, {}, max_cell=max_cell)


# DiffusionDB (poloclub/diffusiondb) metadata.parquet: one row per image, Stable Diffusion
# 1.x as run by its Discord bot; the sampler is an int code (engine.schedulers).
DIFFUSIONDB_MODEL = "Stable Diffusion v1 (DiffusionDB)"
_DIFFUSIONDB_MAPPING = {"id": "image_name", "steps": "step", "guidance": "cfg"}
# Seedbank's parquet exports add the name where DiffusionDB has no code (sampler 9).


def diffusiondb_rows(path: str, name: str) -> Iterator[Row]:
    import pyarrow.parquet as pq  # only here: the rest of the importer runs without it

    parquet = pq.ParquetFile(path)
    number = 0
    for group in range(parquet.num_row_groups):
        for values in parquet.read_row_group(group).to_pylist():
            number += 1
            values.setdefault("model", DIFFUSIONDB_MODEL)
            mapping = _DIFFUSIONDB_MAPPING
            if values.get("sampler_name"):
                mapping = {**mapping, "sampler": "sampler_name"}
            yield _row("diffusiondb", name, f"{name} row {number}", values, mapping)


def _row(tool: str, name: str, location: str, values: Mapping[str, Any],
         mapping: Mapping[str, str], *, max_cell: int = CELL_MAX_CHARS) -> Row:  # fmt: skip
    long = [(str(column), len(value)) for column, value in values.items()
            if isinstance(value, str) and len(value) > max_cell]  # fmt: skip
    if long:
        column, size = long[0]
        return Rejected(
            location,
            f"column {column!r} holds {size:,} characters; a cell may hold at most {max_cell:,}",
        )
    try:
        return _recipe(tool, name, location, values, mapping)
    except RowRejected as error:
        return Rejected(location, str(error))


def _recipe(tool: str, name: str, location: str, values: Mapping[str, Any],
            mapping: Mapping[str, str]) -> SourceRecipe:  # fmt: skip
    def get(field: str) -> Any:
        if field in mapping:
            return _lookup(values, mapping[field])
        return next((values[c] for c in DEFAULT_COLUMNS[field] if c in values), None)

    unread = _unread_columns(tool, values, mapping)
    if unread:
        raise RowRejected(
            f"column(s) {', '.join(map(repr, unread))} not read: whether they change the "
            f"picture is unknown (--map ignore={','.join(unread)} if they do not)"
        )
    prompt = text("Prompt", get("prompt"))
    if not prompt.strip():
        raise RowRejected("no prompt")
    sampler = get("sampler")
    sampler_text = "" if sampler is None else str(sampler)
    # Every tool's words, ints (DiffusionDB's codes) as digits, go through one mapping.
    scheduler = samplers.scheduler_for(tool, sampler_text) if sampler_text else None
    row_id = get("id")
    # Stable across imports of the same file: the row's own id, else its place in the file.
    # A row that names its picture's pixel digest (Seedbank's exports) shares that picture's
    # key, so a zip's picture and its recipes.jsonl row make one record.
    key_part = f"id {row_id}" if row_id not in (None, "") else location
    pixels = values.get("pixel_sha256")
    warnings: tuple[str, ...] = ()
    if sampler_text and scheduler is None:
        warnings = (samplers.unknown_sampler_warning(tool, sampler_text),)
    return SourceRecipe(
        tool=tool,
        source_key=(
            f"image:{pixels}"
            if isinstance(pixels, str) and len(pixels) == 64
            else f"{tool}:{PurePath(name).name}:{key_part}"
        ),
        location=location,
        prompt=prompt,
        negative_prompt=text("Negative prompt", get("negative_prompt")),
        seed=seed_value(get("seed")),
        steps=whole_number("Steps", get("steps"), low=1),
        guidance=decimal("Guidance", get("guidance")),
        width=whole_number("Width", get("width"), low=1),
        height=whole_number("Height", get("height"), low=1),
        sampler=sampler_text,
        scheduler=scheduler,
        model_name=text("Model", _text_or_none(get("model"))),
        model_hash=text("Model hash", _text_or_none(get("model_hash"))),
        **(batch_fields(values) if tool in ("csv", "jsonl") else {}),
        **seedbank_fields({**_recipe_columns(values), **{f: get(f) for f in _SEEDBANK_FIELDS}}),
        raw=_jsonable(values) if tool == "diffusiondb" else dict(values),
        warnings=warnings,
    )


_SEEDBANK_FIELDS = (
    "loras", "embeddings", "vae", "clip_skip", "hires", "prompt_weighting", "mode",
)  # fmt: skip


def _recipe_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """Columns named like a recipe field (Seedbank's recipes.jsonl writes them all)."""
    return {name: values[name] for name in RECIPE_KEYS if name in values}


def _unread_columns(tool: str, values: Mapping[str, Any], mapping: Mapping[str, str]) -> list[str]:
    """The row's non-empty columns that no field reads and none is known to leave alone."""
    known = _NO_PIXEL_COLUMNS["*"] | _NO_PIXEL_COLUMNS.get(tool, frozenset()) | RECIPE_KEYS
    known |= {name.strip() for name in mapping.get(IGNORE, "").split(",")}
    for field, names in DEFAULT_COLUMNS.items():
        if field in mapping:
            path = mapping[field]
            known |= {path, path.partition(".")[0]}  # a dotted key, or its top-level column
        else:
            known |= set(names)
    return [
        str(column)
        for column, value in values.items()
        if column not in known and value not in (None, "", [], {})
    ]


def _text_or_none(value: Any) -> Any:
    return None if value is None else str(value) if isinstance(value, int | float) else value


def _lookup(values: Mapping[str, Any], path: str) -> Any:
    """values["params"]["seed"] for "params.seed"; a string on the way that holds a JSON
    object (a CSV cell) is read as one. A key with a dot in it is found whole first."""
    if path in values:
        return values[path]
    head, _, rest = path.partition(".")
    if not rest or head not in values:
        return None
    inner = values[head]
    if isinstance(inner, str) and inner.lstrip().startswith("{"):
        try:
            inner = json.loads(inner)
        except ValueError:
            raise RowRejected(f"column {head!r} is not valid JSON") from None
    if not isinstance(inner, Mapping):
        return None
    return _lookup(inner, rest)


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    """A parquet row verbatim, as JSON can hold it (timestamps become ISO text); CSV and
    JSON Lines rows are JSON already."""
    return json.loads(json.dumps(dict(values), ensure_ascii=False, default=str))


def text_handle(data: bytes) -> IO[str]:
    """UTF-8 text (a BOM, as Excel writes, is skipped) with universal newlines, for csv."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
