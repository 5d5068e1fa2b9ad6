"""A recipe as another tool recorded it, before the archive accepts it."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.recipe import PRECISIONS, SEED_MAX, Recipe

# ASCII digits only: int() also reads "١٢", "1_000" and " 7 " (as engine.infotext does).
_WHOLE = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class RowRejected(ValueError):
    """One image or row that cannot become a recipe; the message says why, in words."""


@dataclass(frozen=True)
class SourceRecipe:
    """What one source (an image file, a table row) says about how its picture was made.

    `source_key` names the source stably (the same file or row gives the same key on every
    import, so a re-import adds nothing); `content_digest` changes when what it says changes.
    Fields a source does not give are None. `sampler` is the tool's own word, `scheduler`
    its catalogue counterpart or None (engine.imports.samplers). `raw` is the metadata
    verbatim, kept with the record.
    """

    tool: str
    source_key: str
    location: str  # for people: "photos/cat.png", "prompts.csv line 12"
    prompt: str
    negative_prompt: str = ""
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    sampler: str = ""
    scheduler: str | None = None
    model_name: str = ""
    model_hash: str = ""
    # Seedbank's own exports say these (a batch position moves pixels); other tools render
    # one image alone at full precision as far as a recipe can tell.
    precision: str = "fp32"
    batch_size: int = 1
    batch_index: int = 0
    raw: dict[str, Any] = field(default_factory=dict)
    image: bytes | None = None  # the picture itself as PNG, when the source has one
    pixel_sha256: str = ""  # engine.png_files.pixel_sha256 of the picture
    warnings: tuple[str, ...] = ()

    @functools.cached_property
    def content_digest(self) -> str:
        return content_digest(self.raw)

    def missing(self) -> list[str]:
        """What Seedbank's recipe needs that this source does not say."""
        absent = [name for name in ("seed", "steps", "guidance", "width", "height")
                  if getattr(self, name) is None]  # fmt: skip
        if self.scheduler is None:
            absent.append(
                f"a catalogue scheduler (the source says {self.sampler!r})"
                if self.sampler
                else "a scheduler"
            )
        return absent

    def recipe(self, model_version_id: int | None) -> Recipe:
        """Seedbank's recipe for a source that misses nothing (`missing()` is empty)."""
        if self.missing():
            raise RowRejected(f"the source does not give {', '.join(self.missing())}")
        assert self.scheduler is not None and self.guidance is not None
        return Recipe(
            model_version_id=model_version_id,
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            seed=self.seed,
            scheduler=self.scheduler,
            steps=self.steps or 0,
            guidance=self.guidance,
            width=self.width or 0,
            height=self.height or 0,
            precision=self.precision,
            batch_size=self.batch_size,
        )


def content_digest(raw: dict[str, Any]) -> str:
    text = json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def whole_number(name: str, value: Any, *, low: int = 0, high: int | None = None) -> int | None:
    """An int from a source's value (int, or ASCII digits), None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RowRejected(f"{name} must be a whole number, not {value!r}.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int):
        raise RowRejected(f"{name} must be a whole number, not {value!r}.")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise RowRejected(f"{name} must be {bounds} (got {value}).")
    return value


def seed_value(value: Any) -> int | None:
    return whole_number("Seed", value, high=SEED_MAX)


def decimal(name: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RowRejected(f"{name} must be a number, not {value!r}.")
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        value = float(value.strip())
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise RowRejected(f"{name} must be a number, not {value!r}.")
    return float(value)


def text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowRejected(f"{name} must be text, not {type(value).__name__}.")
    if "\x00" in value:
        raise RowRejected(f"{name} holds a NUL character.")
    return value


def batch_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """precision, batch_size and batch_index as Seedbank's chunk and exports write them."""
    size = whole_number("Batch size", values.get("batch_size"), low=1) or 1
    index = whole_number("Batch index", values.get("batch_index"), high=size - 1) or 0
    precision = text("Precision", values.get("precision")) or "fp32"
    if precision not in PRECISIONS:
        raise RowRejected(f"Precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    return {"precision": precision, "batch_size": size, "batch_index": index}
