"""The search box's language: words, "quoted phrases", -excluded words and field filters
(`seed:1010`, `steps:>30`, `sampler:DDIM`, `size:512x512`…), parsed once for the search page
and the API alike (Django-free).

A query is split on whitespace, except inside double quotes. A token `name:value` (or with a
fullwidth colon, `name：value`, as Chinese keyboards type it) whose name is ASCII letters is a
filter: an unknown name is an error naming the known ones, never a word silently dropped.
`word:` with nothing after it and an unknown name stays a word (prompts pasted with "style: x"),
and so do URLs (`https://…`). Values may be quoted (`model:"scene sd"`). Numbers take
`:` `:>` `:<` `:>=` `:<=` and ranges `:20..30`; a field given twice narrows (numbers, LoRAs) or
is an error (one seed cannot be two). Bounded: a query of any length or content either parses
or raises `QueryError` with messages for people.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from engine.imports.samplers import scheduler_for
from engine.messages import Message as M
from engine.messages import gettext_noop as _
from engine.recipe import SEED_MAX
from engine.schedulers import SCHEDULER_SPECS

# Longer than the search box allows (500): an API caller's query is refused past this, before
# any work that grows with it.
MAX_QUERY_CHARS = 2000
MAX_FILTERS = 24  # field filters, excluded words and phrases together
STORED_SIDE_MAX = 32767  # generator.models.Image: width and height are smallint columns
STEPS_MAX = 10_000
GUIDANCE_MAX = 1000.0

# Canonical field names, each with one example (the help popover lists them in this order).
FIELDS: dict[str, str] = {
    "model": "model:tiny-sd@seed0",
    "lora": "lora:pixel-art",
    "seed": "seed:1010",
    "steps": "steps:>30",
    "guidance": "guidance:<3",
    "sampler": "sampler:DDIM",
    "size": "size:512x512",
    "user": "user:alice",
    "collection": "collection:favourites",
    "lang": "lang:zh",
    "verified": "verified:yes",
}
ALIASES = {
    "scheduler": "sampler",
    "cfg": "guidance",
    "language": "lang",
    "by": "user",
    "loras": "lora",
}
NUMBER_FIELDS = {"steps", "guidance"}
LANGUAGES = {
    "zh": "zh",
    "cn": "zh",
    "chinese": "zh",
    "中文": "zh",
    "汉语": "zh",
    "en": "en",
    "english": "en",
    "英文": "en",
    "英语": "en",
}
YES = {"yes", "true", "1", "y", "是"}
NO = {"no", "false", "0", "n", "否"}

# Operators as typed → Django-style lookups (what a filter compares with).
OPERATORS = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt", "=": "exact", "": "exact"}
_OPERATOR = re.compile(r"^(>=|<=|>|<|=)?")
_NAME = re.compile(r"[A-Za-z][A-Za-z_]{0,31}")
_INTEGER = re.compile(r"[0-9]{1,20}")  # more digits than any seed: refused before int()
_DECIMAL = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,10})?|\.[0-9]{1,10}")
_SIZE = re.compile(r"([0-9]{1,10})?[x×*]([0-9]{1,10})?", re.IGNORECASE)
# A LoRA named by the start of its file's sha256 (AutoV2 is 10 hex digits), not by its name.
SHA256_PREFIX = re.compile(r"[0-9a-f]{6,64}")
# What makes a prompt Chinese for lang:zh (CJK ideographs, extension A, compatibility ones),
# a character class both Python's re and Postgres's regular expressions read.
CHINESE_CHARACTERS = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
_COLONS = (":", "：")
_QUOTES = '"“”„＂'  # straight, curly and fullwidth double quotes


class QueryError(ValueError):
    """The query cannot be searched as typed; `messages` say why, for people."""

    def __init__(self, messages: list[M]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


Comparison = tuple[str, Any]  # (lookup: exact/gt/gte/lt/lte, value)


@dataclass(frozen=True)
class SearchQuery:
    """What a query asks for. Empty fields ask nothing."""

    words: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()  # words or phrases no matching prompt may contain
    model: str = ""
    loras: tuple[str, ...] = ()  # names or sha256 prefixes, all of them used
    seed: int | None = None
    steps: tuple[Comparison, ...] = ()
    guidance: tuple[Comparison, ...] = ()
    sampler: str = ""  # canonical scheduler name (engine.schedulers)
    width: int | None = None
    height: int | None = None
    user: str = ""
    collection: str = ""
    lang: str = ""  # "zh" (the prompt has Chinese characters) or "en"
    verified: bool | None = None
    given: frozenset[str] = field(default=frozenset())  # the fields the query named

    @property
    def text(self) -> str:
        """What words and meaning are searched for: the free words and the phrases' words."""
        return " ".join((*self.words, *self.phrases))


def _tokens(query: str) -> list[tuple[str, bool]]:
    """(token, literal) pairs: whitespace splits except inside double quotes; an opening quote
    without its closing one runs to the end (as if closed there). A token that starts with a
    quote is literal text ("style: anime" is a phrase, not a filter); `model:"scene sd"` and
    `-"red cat"` quote just their values."""
    tokens: list[tuple[str, bool]] = []
    current: list[str] = []
    literal = False
    in_quote = False
    for char in query:
        if char in _QUOTES:
            if not in_quote and not current:
                literal = True
            in_quote = not in_quote
            continue
        if not in_quote and char.isspace():
            if current:
                tokens.append(("".join(current), literal))
            current, literal = [], False
            continue
        current.append(char)
    if current:
        tokens.append(("".join(current), literal))
    return tokens


def _clean(query: str) -> str:
    """Control characters (NUL included: Postgres text cannot hold it) read as spaces."""
    return "".join(" " if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} else c for c in query)


def parse_query(query: str) -> SearchQuery:
    """The query's words, phrases, exclusions and filters; QueryError lists every problem."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(
            [M(_("A search can be at most %(most)d characters long."), most=MAX_QUERY_CHARS)]
        )
    errors: list[M] = []
    words: list[str] = []
    phrases: list[str] = []
    excluded: list[str] = []
    values: dict[str, Any] = {}
    given: set[str] = set()
    filters = 0
    for token, literal in _tokens(_clean(query)):
        text = token.strip()
        if not text:
            continue
        if literal:
            if " " in text:
                phrases.append(" ".join(text.split()))
                filters += 1
            else:
                words.append(text)
            continue
        if text.startswith("-") and len(text) > 1 and text[1] != "-":
            filters += 1
            if _split_field(text[1:])[0] in {*FIELDS, *ALIASES}:
                errors.append(M(_("A filter cannot be excluded: %(token)s."), token=text[:40]))
            else:
                excluded.append(" ".join(text[1:].split()))
            continue
        name, value = _split_field(text)
        if name is None:
            words.append(text)
            continue
        filters += 1
        canonical = ALIASES.get(name, name)
        if canonical not in FIELDS:
            errors.append(
                M(
                    _("Unknown filter “%(name)s:”. Filters: %(known)s."),
                    name=name,
                    known=", ".join(f"{known}:" for known in FIELDS),
                )
            )
            continue
        error = _apply(canonical, value.strip(), values)
        if error is not None:
            errors.append(error)
        given.add(canonical)
    if filters > MAX_FILTERS:
        errors.insert(
            0,
            M(
                _("Use at most %(most)d filters, phrases and -words in one search."),
                most=MAX_FILTERS,
            ),
        )
    if errors:
        raise QueryError(errors[:5])  # a page of errors helps nobody: the first few
    return SearchQuery(
        words=tuple(words),
        phrases=tuple(phrases),
        excluded=tuple(excluded),
        given=frozenset(given),
        **values,
    )


def _split_field(token: str) -> tuple[str | None, str]:
    """("seed", "1010") for "seed:1010"; (None, token) when the token is not a filter."""
    for index, char in enumerate(token[:34]):
        if char in _COLONS:
            name, value = token[:index], token[index + 1 :]
            if not _NAME.fullmatch(name) or value.startswith("//"):
                return None, token
            lowered = name.lower()
            if not value and ALIASES.get(lowered, lowered) not in FIELDS:
                return None, token  # "style:" followed by a space: a word of a pasted prompt
            return lowered, value
    return None, token


def _apply(name: str, value: str, values: dict[str, Any]) -> M | None:
    """Reads one filter into `values`; the message when its value cannot be used."""
    if not value:
        return M(_("%(name)s: needs a value, e.g. %(example)s."), name=name, example=FIELDS[name])
    if name in NUMBER_FIELDS:
        found = _comparisons(name, value)
        if isinstance(found, M):
            return found
        values[name] = (*values.get(name, ()), *found)
        return None
    if name == "lora":
        values["loras"] = (
            *values.get("loras", ()),
            value.lower() if SHA256_PREFIX.fullmatch(value.lower()) else value,
        )
        return None
    if name in values or (name == "size" and ("width" in values or "height" in values)):
        return M(_("%(name)s: is given twice; give it once."), name=name)
    if name == "seed":
        if not _INTEGER.fullmatch(value) or int(value) > SEED_MAX:
            return M(_("seed must be a whole number from 0 to %(most)d."), most=SEED_MAX)
        values["seed"] = int(value)
    elif name == "sampler":
        canonical = scheduler_for("csv", value)
        if canonical is None:
            return M(
                _("Unknown sampler “%(value)s”. Samplers: %(known)s."),
                value=value[:40],
                known=", ".join(SCHEDULER_SPECS),
            )
        values["sampler"] = canonical
    elif name == "size":
        return _size(value, values)
    elif name == "lang":
        if value.lower() not in LANGUAGES:
            return M(_("lang: is zh (Chinese) or en (English)."))
        values["lang"] = LANGUAGES[value.lower()]
    elif name == "verified":
        if value.lower() not in YES | NO:
            return M(_("verified: is yes or no."))
        values["verified"] = value.lower() in YES
    else:  # model, user, collection: names, compared as written
        values[name] = value[:300]
    return None


def _size(value: str, values: dict[str, Any]) -> M | None:
    """512x768, 512x (width only), x768 (height only), or 512 (square)."""
    match = _SIZE.fullmatch(value)
    if match:
        sides = [None if side is None else int(side) for side in match.groups()]
    elif _INTEGER.fullmatch(value):
        sides = [int(value), int(value)]
    else:
        sides = [None, None]
    if sides == [None, None]:
        return M(_("size: is width x height in pixels, e.g. size:512x512 or size:512x."))
    if any(side is not None and not 1 <= side <= STORED_SIDE_MAX for side in sides):
        return M(_("size: sides are from 1 to %(most)d pixels."), most=STORED_SIDE_MAX)
    if sides[0] is not None:
        values["width"] = sides[0]
    if sides[1] is not None:
        values["height"] = sides[1]
    return None


def _comparisons(name: str, value: str) -> tuple[Comparison, ...] | M:
    """steps:30, steps:>30, steps:<=50, steps:20..30 → lookups and numbers."""
    whole = name == "steps"
    most = STEPS_MAX if whole else GUIDANCE_MAX
    pattern = _INTEGER if whole else _DECIMAL
    if whole:
        wrong = M(_("steps must be a whole number, e.g. steps:>30 or steps:20..40."))
    else:
        wrong = M(_("guidance must be a number, e.g. guidance:<3 or guidance:5..8."))
    if ".." in value:
        low, _dots, high = value.partition("..")
        pairs = [("gte", low), ("lte", high)]
        if not low and not high:
            return wrong
        pairs = [(lookup, number) for lookup, number in pairs if number]
    else:
        operator = _OPERATOR.match(value)
        typed = operator.group(1) or "" if operator else ""
        pairs = [(OPERATORS[typed], value[len(typed) :])]
    found: list[Comparison] = []
    for lookup, number in pairs:
        if not pattern.fullmatch(number):
            return wrong
        parsed: float = int(number) if whole else float(number)
        if parsed > most:
            return M(_("%(name)s: is at most %(most)s."), name=name, most=f"{most:g}")
        found.append((lookup, parsed))
    return tuple(found)


def describe_fields() -> list[tuple[str, str]]:
    """(field, example) for the help popover, in FIELDS' order."""
    return list(FIELDS.items())
