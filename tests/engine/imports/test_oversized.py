"""Oversized input in imports (#26): a cell, a line or a zip member past its limit rejects its
own row or member, reported with its place and why; every other row is read, and a zip member
is streamed, never held whole."""

from __future__ import annotations

import json
import tracemalloc
import zipfile

from engine.imports.discover import Limits, rows
from engine.imports.source import SourceRecipe
from engine.imports.tables import Rejected

HUGE = "x" * 200_000  # past csv's own field limit (131,072) and the import's cell limit


def kinds(found) -> list[str]:
    return [type(row).__name__ for row in found]


def test_a_csv_cell_past_the_limit_rejects_its_row_only(tmp_path):
    (tmp_path / "t.csv").write_text(f"prompt,seed\nan owl,1\n{HUGE},2\na fox,3\n")
    found = list(rows([tmp_path / "t.csv"]))
    assert kinds(found) == ["SourceRecipe", "Rejected", "SourceRecipe"]
    assert found[1] == Rejected(
        "t.csv line 3", "column 'prompt' holds 200,000 characters; a cell may hold at most 131,072"
    )
    assert [found[0].prompt, found[2].prompt] == ["an owl", "a fox"]


def test_a_quoted_multiline_cell_past_the_limit_keeps_the_rows_after_it_in_step(tmp_path):
    table = f'prompt,seed\nan owl,1\n"{HUGE}\nmore of it\nand more",2\na fox,3\n'
    (tmp_path / "t.csv").write_text(table)
    found = list(rows([tmp_path / "t.csv"]))
    assert kinds(found) == ["SourceRecipe", "Rejected", "SourceRecipe"]
    assert found[1].location == "t.csv line 5" and "at most 131,072" in found[1].reason
    assert (found[2].prompt, found[2].seed, found[2].location) == ("a fox", 3, "t.csv line 6")


def test_a_line_past_the_line_limit_is_skipped_unread_and_rejected(tmp_path):
    (tmp_path / "t.csv").write_text(f"prompt,seed\nan owl,1\n{'y,' * 3000}\na fox,3\n")
    (tmp_path / "t.jsonl").write_text(
        json.dumps({"prompt": "an owl", "seed": 1}) + "\n"
        + json.dumps({"prompt": "z" * 5000, "seed": 2}) + "\n"
        + json.dumps({"prompt": "a fox", "seed": 3}) + "\n"
    )  # fmt: skip
    limits = Limits(max_line_chars=4000)
    found = list(rows([tmp_path / "t.csv", tmp_path / "t.jsonl"], limits=limits))
    assert kinds(found) == ["SourceRecipe", "Rejected", "SourceRecipe"] * 2
    assert found[1] == Rejected("t.csv line 3", "a line is longer than 4,000 characters")
    assert found[4] == Rejected("t.jsonl line 2", "a line is longer than 4,000 characters")
    assert [row.prompt for row in found if isinstance(row, SourceRecipe)] == [
        "an owl", "a fox", "an owl", "a fox"
    ]  # fmt: skip


def test_json_values_past_the_cell_limit_reject_their_row(tmp_path):
    lines = [{"prompt": "an owl", "seed": 1}, {"prompt": HUGE, "seed": 2}, {"prompt": "a fox"}]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    lexica = {"images": [{"prompt": "a kite", "seed": 4}, {"prompt": "a cat", "src": HUGE}]}
    (tmp_path / "lexica.json").write_text(json.dumps(lexica))
    found = list(rows([tmp_path / "t.jsonl", tmp_path / "lexica.json"]))
    assert kinds(found) == ["SourceRecipe", "Rejected", "SourceRecipe", "SourceRecipe", "Rejected"]
    assert found[1].location == "t.jsonl line 2" and "'prompt' holds 200,000" in found[1].reason
    assert found[4].location == "lexica.json image 1" and "'src' holds 200,000" in found[4].reason


def test_a_csv_the_parser_cannot_read_in_one_row_rejects_that_row(tmp_path):
    (tmp_path / "t.csv").write_text('prompt,seed\nan owl,1\n"a "quoted" mess,2\na fox,3\n')
    found = list(rows([tmp_path / "t.csv"]))
    # csv reads a stray quote as text (strict=False): the row is whatever it says, the rest read.
    assert kinds(found)[-1] == "SourceRecipe" and found[-1].prompt == "a fox"


def test_a_zip_member_past_the_member_limit_is_reported_and_the_rest_go_in(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.csv", "prompt,seed\n" + "a lamp,5\n" * 2_000)  # 18 kB
        archive.writestr("small.csv", "prompt,seed\nan owl,1\n")
    found = list(rows([tmp_path / "a.zip"], limits=Limits(max_member_bytes=10_000)))
    assert found[0] == Rejected(
        "a.zip/big.csv", "inflates to more than 10,000 bytes (the limit for one zip member)"
    )
    assert isinstance(found[1], SourceRecipe) and found[1].prompt == "an owl"


def test_a_zip_table_member_is_streamed_not_held_whole(tmp_path):
    """30 MB of CSV in a zip: the rows are read with a few hundred kB held at a time (it was the
    whole member, and its decoded text beside it: +2-3x its size)."""
    line = "p" * 150_000 + ",1\n"  # each row past the cell limit: rejected, cheaply
    with zipfile.ZipFile(tmp_path / "a.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("big.csv", "w") as member:
            member.write(b"prompt,seed\n")
            for _ in range(200):
                member.write(line.encode())
    tracemalloc.start()
    try:
        found = list(rows([tmp_path / "a.zip"]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(found) == 200 and all(isinstance(row, Rejected) for row in found)
    assert peak < 5_000_000, f"peak {peak / 1e6:.1f} MB for a 30 MB member"
