"""What a remix changed: the lineage edge labels and the diff page's rows (engine.recipe_diff)."""

from __future__ import annotations

from engine.recipe_diff import Hunk, Segment, recipe_changes, recipe_rows, text_diff, tokens

BASE = {
    "model": "tiny-sd",
    "model_digest": "ab" * 32,
    "prompt": "a red fox in the snow",
    "negative_prompt": "",
    "seed": 42,
    "scheduler": "Euler",
    "steps": 20,
    "guidance": 7.5,
    "width": 64,
    "height": 64,
}


def changed(**edits: object) -> dict[str, object]:
    return {**BASE, **edits}


def test_a_bit_identical_rerun_changes_nothing() -> None:
    assert recipe_changes(BASE, dict(BASE)) == []


def test_scalar_fields_show_both_values() -> None:
    changes = recipe_changes(BASE, changed(seed=43, scheduler="DPM++ 2M"))
    assert [(c.field, c.label, c.before, c.after) for c in changes] == [
        ("seed", "Seed", 42, 43),
        ("scheduler", "Scheduler", "Euler", "DPM++ 2M"),
    ]
    assert not any(c.is_text or c.hunks for c in changes)


def test_a_replaced_word_is_one_hunk() -> None:
    (change,) = recipe_changes(BASE, changed(prompt="a blue fox in the snow"))
    assert change.field == "prompt" and change.is_text
    assert change.hunks == (Hunk(removed="red", added="blue"),)


def test_added_and_removed_words_are_separate_hunks() -> None:
    segments, hunks = text_diff("a red fox in the snow", "a fox in the deep snow at night")
    assert hunks == (
        Hunk(removed="red", added=""),
        Hunk(removed="", added="deep"),
        Hunk(removed="", added="at night"),
    )
    assert "".join(s.text for s in segments if s.kind != "removed") == (
        "a fox in the deep snow at night"
    )
    assert "".join(s.text for s in segments if s.kind != "added") == "a red fox in the snow"
    assert [(s.space, s.words) for s in segments if s.kind == "removed"] == [(" ", "red")]


def test_chinese_prompts_diff_per_character() -> None:
    assert [word for _, word in tokens("一只红色的狐狸, fox")] == [
        "一", "只", "红", "色", "的", "狐", "狸", ",", "fox",
    ]  # fmt: skip
    segments, hunks = text_diff("一只红色的狐狸", "一只蓝色的狐狸")
    assert hunks == (Hunk(removed="红", added="蓝"),)
    assert segments == (
        Segment("equal", "一只"),
        Segment("removed", "红"),
        Segment("added", "蓝"),
        Segment("equal", "色的狐狸"),
    )


def test_spacing_only_is_still_a_change_without_hunks() -> None:
    (change,) = recipe_changes(BASE, changed(prompt="a red  fox in the snow"))
    assert change.field == "prompt" and change.hunks == ()


def test_a_long_prompt_diffs_to_the_one_word_that_changed() -> None:
    before = " ".join(f"w{i} and a" for i in range(150))
    _, hunks = text_diff(before, before.replace("w75 and", "w75 or"))
    assert hunks == (Hunk(removed="and", added="or"),)


def test_fields_only_one_side_has_are_changes_and_rows() -> None:
    img2img = changed(mode="img2img", strength=0.6, init_image_sha256="cd" * 32)
    changes = {c.field: c for c in recipe_changes(BASE, img2img)}
    assert set(changes) == {"mode", "strength", "init_image_sha256"}
    assert changes["strength"].before is None and changes["strength"].after == 0.6
    rows = recipe_rows(BASE, img2img)
    assert [r.field for r in rows][: len(BASE)] == list(BASE)
    assert {r.field for r in rows if r.changed} == set(changes)
    assert next(r for r in rows if r.field == "init_image_sha256").label == "Init image"
