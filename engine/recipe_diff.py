"""What changed between two recipes: the label on a lineage edge and the rows of a diff page.

Recipes are compared in their portable form (a record's `recipe_portable()`: model by name and
digest, inputs by pixel digest), so two archives agree on what a remix changed. Prompts are
compared word by word; Chinese (and Japanese) prompts have no spaces, so each CJK character is
a word of its own: "一只红色的狐狸" → "一只蓝色的狐狸" reads 红 → 蓝. A dictionary segmenter (jieba,
engine.keywords) would give whole words, but its search mode lower-cases, drops punctuation and
overlaps tokens, none of which a diff that must rebuild the text can have. Django-free.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.messages import gettext_noop as _
from engine.recipe import recipe_fields, spec

# Fields compared as text, word by word (SDXL's second prompts too).
TEXT_FIELDS = frozenset({"prompt", "negative_prompt", "prompt_2", "negative_prompt_2"})
# Portable keys that are not recipe fields (engine.recipe spells out only the fields).
_EXTRA_LABELS = {
    "model": _("Model"),
    "model_digest": _("Model digest"),
    "batch_index": _("Batch index"),
    "init_image_sha256": _("Init image"),
    "mask_sha256": _("Mask"),
}
_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
# A token: its leading whitespace, then one CJK character or a run of anything else but spaces.
_TOKEN = re.compile(rf"(\s*)([{_CJK}]|[^\s{_CJK}]+)")

SegmentKind = Literal["equal", "removed", "added"]


@dataclass(frozen=True)
class Segment:
    """A run of a text diff; the runs rebuild both texts (removed ones only the old)."""

    kind: SegmentKind
    text: str

    @property
    def space(self) -> str:
        """The leading whitespace (shown outside a <del>/<ins> mark)."""
        return self.text[: len(self.text) - len(self.text.lstrip())]

    @property
    def words(self) -> str:
        return self.text.lstrip()


@dataclass(frozen=True)
class Hunk:
    """One place where the words differ: `removed` became `added` (either may be empty)."""

    removed: str
    added: str


@dataclass(frozen=True)
class Change:
    field: str
    label: str
    before: Any
    after: Any
    hunks: tuple[Hunk, ...] = ()  # text fields only
    segments: tuple[Segment, ...] = ()  # text fields only

    @property
    def is_text(self) -> bool:
        return self.field in TEXT_FIELDS


def field_label(key: str) -> str:
    """The English label of a portable recipe key (translated, if at all, where it is shown)."""
    for recipe_field in recipe_fields():
        if recipe_field.name == key:
            return spec(recipe_field).label
    return _EXTRA_LABELS.get(key, key.replace("_", " ").capitalize())


def tokens(text: str) -> list[tuple[str, str]]:
    """(leading whitespace, word) pairs; joined back they give `text` less trailing spaces."""
    return [(match.group(1), match.group(2)) for match in _TOKEN.finditer(text)]


def text_diff(before: str, after: str) -> tuple[tuple[Segment, ...], tuple[Hunk, ...]]:
    """Word-level diff of two texts: the segments to show both, and the hunks that differ."""
    old, new = tokens(before), tokens(after)
    # autojunk off: in a long prompt, a common word ("a", ",") must not be treated as noise.
    matcher = difflib.SequenceMatcher(
        a=[word for _, word in old], b=[word for _, word in new], autojunk=False
    )
    segments: list[Segment] = []
    hunks: list[Hunk] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            segments.append(Segment("equal", _join(new[j1:j2])))
            continue
        removed, added = _join(old[i1:i2]), _join(new[j1:j2])
        if removed:
            segments.append(Segment("removed", removed))
        if added:
            segments.append(Segment("added", added))
        hunks.append(Hunk(removed=removed.strip(), added=added.strip()))
    return tuple(segments), tuple(hunks)


def _join(words: list[tuple[str, str]]) -> str:
    return "".join(space + word for space, word in words)


def recipe_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """Every field that differs, in the recipes' own key order; [] for the same recipe."""
    keys = list(dict.fromkeys([*before, *after]))
    changes = []
    for key in keys:
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key in TEXT_FIELDS and isinstance(old or "", str) and isinstance(new or "", str):
            # Hunkless when only the spacing moved: still a different recipe, so still listed.
            segments, hunks = text_diff(old or "", new or "")
            changes.append(Change(key, field_label(key), old, new, hunks, segments))
        else:
            changes.append(Change(key, field_label(key), shown(key, old), shown(key, new)))
    return changes


@dataclass(frozen=True)
class Row:
    """One field of a side-by-side comparison."""

    field: str
    label: str
    before: Any
    after: Any
    change: Change | None

    @property
    def changed(self) -> bool:
        return self.change is not None


def recipe_rows(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Row]:
    """Every field of either recipe with both values, the changed ones carrying their change.
    A model family's own fields (SDXL's) are left out where both recipes leave them at their
    defaults: an SD 1.x comparison has nothing to say about them."""
    changes = {change.field: change for change in recipe_changes(before, after)}
    return [
        Row(
            key,
            field_label(key),
            shown(key, before.get(key)),
            shown(key, after.get(key)),
            changes.get(key),
        )
        for key in dict.fromkeys([*before, *after])
        if key in changes
        or key not in _FAMILY_DEFAULTS
        or before.get(key, _FAMILY_DEFAULTS[key]) != _FAMILY_DEFAULTS[key]
    ]


# Fields only one model family reads, with their defaults.
_FAMILY_DEFAULTS = {f.name: f.default for f in recipe_fields() if spec(f).family}


def shown(key: str, value: Any) -> Any:
    """A recipe value as people read it: resources by name and weight, hires in words; other
    values as they are. Names may be missing from imported recipes: the digest stands in."""
    if key == "loras" and isinstance(value, list):
        # As people write them (A1111's <lora:name:weight>), short enough for a lineage edge.
        return ", ".join(f"{_named(use)}:{use.get('weight', 1):g}" for use in value) or None
    if key == "embeddings" and isinstance(value, list):
        return ", ".join(str(use.get("token", "")) for use in value) or None
    if key == "vae" and isinstance(value, dict):
        return _named(value)
    if key == "hires" and isinstance(value, dict):
        return (
            f"×{value.get('scale', 0):g} {value.get('upscaler', '')}, {value.get('steps', 0)} "
            f"steps, denoise {value.get('denoise', 0):g}"
        )
    return value


def _named(use: Mapping[str, Any]) -> str:
    """A resource's name without its revision (the digest stands behind it), or its AutoV2."""
    name = str(use.get("name") or "").split("@")[0]
    return name or str(use.get("resource", ""))[:10]
