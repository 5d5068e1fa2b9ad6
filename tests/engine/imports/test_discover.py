"""Walking folders and zips for sources (engine.imports.discover)."""

from __future__ import annotations

import json
import zipfile

from engine.imports.discover import Limits, rows
from engine.imports.source import SourceRecipe
from engine.imports.tables import Rejected
from tests.engine.imports.test_image_files import A1111_TEXT, png


def test_folder_zip_and_tables_in_a_stable_order(tmp_path):
    folder = tmp_path / "export"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.png").write_bytes(png({"parameters": A1111_TEXT}))
    (folder / "sub" / "a.png").write_bytes(png({}))  # no metadata: rejected, reported
    (folder / "notes.txt").write_text("not a source")
    (folder / "prompts.jsonl").write_text(json.dumps({"prompt": "a kite", "seed": 1}) + "\n")
    with zipfile.ZipFile(tmp_path / "more.zip", "w") as archive:
        archive.writestr("x/c.png", png({"parameters": A1111_TEXT}, colour="green"))
        archive.writestr("rows.csv", "prompt,seed\na lamp,5\n")
    found = list(rows([folder, tmp_path / "more.zip", tmp_path / "missing"]))
    names = [row.location for row in found]
    assert names == [
        "export/b.png",
        "export/prompts.jsonl line 1",
        "export/sub/a.png",
        "more.zip/rows.csv line 2",
        "more.zip/x/c.png",
        str(tmp_path / "missing"),
    ]
    assert [type(row) for row in found] == [SourceRecipe, SourceRecipe, Rejected,
                                            SourceRecipe, SourceRecipe, Rejected]  # fmt: skip
    assert found[2].reason.startswith("no recipe found")


def test_zip_bomb_member_is_refused_unread(tmp_path):
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.csv", "prompt\n" + "a" * 3_000_000)  # deflates to a few kB
        zf.writestr("ok.csv", "prompt\nfine\n")
    found = list(rows([tmp_path / "bomb.zip"], limits=Limits(max_member_bytes=1_000_000)))
    assert found[0] == Rejected(
        "bomb.zip/big.csv", "inflates to more than 1 MB (the limit for one zip member)"
    )
    assert isinstance(found[1], SourceRecipe) and found[1].prompt == "fine"


def test_broken_table_keeps_the_rows_before_it(tmp_path):
    good = b"".join(b"row %d,1\n" % n for n in range(5000))  # decoded 8 kB at a time
    (tmp_path / "t.csv").write_bytes(b"prompt,seed\n" + good + b"\xff\xfe broken\n")
    found = list(rows([tmp_path / "t.csv"]))
    assert len(found) > 4000
    assert all(isinstance(row, SourceRecipe) for row in found[:-1])
    assert found[0].prompt == "row 0"
    assert isinstance(found[-1], Rejected) and "UnicodeDecodeError" in found[-1].reason


def test_not_a_zip(tmp_path):
    (tmp_path / "fake.zip").write_bytes(b"nope")
    (found,) = rows([tmp_path / "fake.zip"])
    assert isinstance(found, Rejected) and "not a readable zip" in found.reason
