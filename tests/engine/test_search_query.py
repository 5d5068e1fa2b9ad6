"""The search box's language (engine.search_query): words, phrases, -words and field filters,
and hostile input that must end in QueryError or a parse, never another exception."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.recipe import SEED_MAX
from engine.search_query import (
    CHINESE_CHARACTERS,
    FIELDS,
    MAX_QUERY_CHARS,
    QueryError,
    SearchQuery,
    parse_query,
)


def errors(query: str) -> str:
    with pytest.raises(QueryError) as raised:
        parse_query(query)
    return " ".join(raised.value.messages)


def test_words_and_filters_combine() -> None:
    parsed = parse_query("steps:>30 sampler:DDIM red")
    assert parsed.words == ("red",)
    assert parsed.steps == (("gt", 30),)
    assert parsed.sampler == "DDIM"
    assert parsed.text == "red"


def test_every_field_reads_its_value() -> None:
    parsed = parse_query(
        "model:tiny-sd@seed0 lora:pixel-art lora:ABCDEF0123 seed:1010 steps:20..30 "
        "guidance:<=7.5 sampler:k_euler_ancestral size:512x768 user:alice "
        "collection:favourites lang:zh verified:no"
    )
    assert parsed == SearchQuery(
        model="tiny-sd@seed0",
        loras=("pixel-art", "abcdef0123"),  # a sha256 prefix, lowercased
        seed=1010,
        steps=(("gte", 20), ("lte", 30)),
        guidance=(("lte", 7.5),),
        sampler="Euler a",
        width=512,
        height=768,
        user="alice",
        collection="favourites",
        lang="zh",
        verified=False,
        given=frozenset(FIELDS),
    )


@pytest.mark.parametrize(
    ("typed", "scheduler"),
    [("DDIM", "DDIM"), ("ddim", "DDIM"), ("PLMS", "PNDM"), ("LMS", "K-LMS"), ("euler a", None)],
)
def test_sampler_takes_catalogue_and_a1111_names(typed: str, scheduler: str | None) -> None:
    if scheduler is None:  # a space splits the token: quoted, it is one name
        assert parse_query(f'sampler:"{typed}"').sampler == "Euler a"
    else:
        assert parse_query(f"sampler:{typed}").sampler == scheduler


def test_quotes_make_phrases_and_quoted_values() -> None:
    parsed = parse_query('model:"scene sd" "red  cat" -blue -"green dog" "single"')
    assert parsed.model == "scene sd"
    assert parsed.phrases == ("red cat",)
    assert parsed.excluded == ("blue", "green dog")
    assert parsed.words == ("single",)
    assert parsed.text == "single red cat"


def test_a_quoted_phrase_with_a_colon_is_text_not_a_filter() -> None:
    assert parse_query('"style: anime" cat').phrases == ("style: anime",)


def test_field_names_ignore_case_and_chinese_around_them_works() -> None:
    parsed = parse_query("猫 SEED:5 红色的 Steps：>=30")  # a fullwidth colon too
    assert parsed.words == ("猫", "红色的") and parsed.seed == 5
    assert parsed.steps == (("gte", 30),)


def test_unknown_fields_are_errors_naming_the_known_ones() -> None:
    message = errors("red colour:blue")
    assert "colour:" in message and "seed:" in message and "verified:" in message


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("steps:>thirty", "steps must be a whole number"),
        ("steps:2.5", "steps must be a whole number"),
        ("guidance:<three", "guidance must be a number"),
        ("guidance:1e309", "guidance must be a number"),
        ("guidance:nan", "guidance must be a number"),
        (f"seed:{SEED_MAX + 1}", "seed must be a whole number from 0"),
        (f"seed:{2**63}", "seed must be a whole number from 0"),
        ("seed:" + "9" * 1000, "seed must be a whole number from 0"),
        ("seed:" + "9" * 5000, "at most 2000 characters"),
        ("seed:-1", "seed must be a whole number from 0"),
        ("seed:1 seed:2", "given twice"),
        ("size:0x512", "sides are from 1"),
        ("size:big", "width x height"),
        ("sampler:warp-drive", "Unknown sampler"),
        ("lang:fr", "zh (Chinese) or en"),
        ("verified:maybe", "yes or no"),
        ("seed: cat", "needs a value"),
        ("-seed:5", "cannot be excluded"),
    ],
)
def test_bad_values_say_what_is_wanted(query: str, expected: str) -> None:
    assert expected in errors(query)


def test_prompt_words_with_colons_stay_words() -> None:
    parsed = parse_query("style: anime 16:9 https://example.com/a 猫:3")
    assert parsed.words == ("style:", "anime", "16:9", "https://example.com/a", "猫:3")


def test_unbalanced_quotes_nul_bytes_and_control_characters() -> None:
    assert parse_query('"red cat').phrases == ("red cat",)
    assert parse_query('cat"').words == ("cat",)
    assert parse_query('""').words == ()
    assert parse_query("red\x00cat\x1b").words == ("red", "cat")
    assert "needs a value" in errors("seed:\x005")
    assert parse_query("\u200bseed:5").seed == 5  # a zero-width space reads as a space


def test_long_queries_and_many_filters_are_refused_quickly() -> None:
    assert "at most" in errors("x" * (MAX_QUERY_CHARS + 1))
    assert "at most" in errors(" ".join(f"-w{n}" for n in range(100)))
    words = " ".join(["cat"] * (MAX_QUERY_CHARS // 4))
    started = time.perf_counter()
    assert len(parse_query(words).words) == MAX_QUERY_CHARS // 4
    with pytest.raises(QueryError):
        parse_query("seed:1 " * 10_000)  # 70 KB
    assert time.perf_counter() - started < 0.5


def test_chinese_characters_class_is_what_lang_uses() -> None:
    import re

    assert re.search(CHINESE_CHARACTERS, "a 猫 on a mat")
    assert not re.search(CHINESE_CHARACTERS, "a cat on a mat, café")


# Field-like text, quotes, dashes, digits, colons, CJK and control characters, in any order.
_PIECES = st.sampled_from(
    [*(f"{name}:" for name in FIELDS), "foo:", "：", ":", '"', "“", "-", "--", "..", ">", "<=",
     "x", "×", "1", "9" * 30, "0.5", " ", "\x00", "\t", "猫", "红色", "cat", "DDIM", "512x512",
     "yes", "zh", "\u200b", "\ud7ff", "e309"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES | st.text(max_size=8), max_size=40).map("".join))
def test_any_text_parses_or_raises_query_error(query: str) -> None:
    try:
        parsed = parse_query(query)
    except QueryError as error:
        assert error.messages and all(isinstance(m, str) and m for m in error.messages)
        return
    assert "\x00" not in parsed.text
    assert all(word.strip() for word in (*parsed.words, *parsed.phrases, *parsed.excluded))
    if parsed.seed is not None:
        assert 0 <= parsed.seed <= SEED_MAX
