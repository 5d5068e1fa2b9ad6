"""Prompt tables → source recipes (engine.imports.tables), row by row."""

from __future__ import annotations

import csv
import io
import json

import pytest

from engine.imports.source import SourceRecipe
from engine.imports.tables import (
    Rejected,
    csv_rows,
    jsonl_rows,
    lexica_rows,
    parse_mapping,
    text_handle,
)

CSV = (
    "\ufeffid,prompt,negative_prompt,seed,steps,cfg_scale,width,height,sampler_name,model\r\n"
    '7,"a red fox, ""autumn""\nsecond line",blurry,42,20,7.5,512,512,Euler a,sd-1.5\r\n'
    "8,长城上的日出,,43,20,7,512,768,DPM++ 2M Karras,sd-1.5\r\n"
    "9,,,44,20,7,512,512,Euler,sd-1.5\r\n"
    "10,a cat,,-1,20,7,512,512,Euler,sd-1.5\r\n"
    "11,a dog,,45,twenty,7,512,512,Euler,sd-1.5\r\n"
    "12,a bird,,46,20,7,512,512,dpmpp_3m_sde,sd-1.5\r\n"
)


def test_csv_quoting_unicode_bom_and_bad_rows():
    rows = list(csv_rows(text_handle(CSV.encode("utf-8")), "dump/prompts.csv"))
    good = [row for row in rows if isinstance(row, SourceRecipe)]
    bad = [row for row in rows if isinstance(row, Rejected)]
    assert [r.prompt for r in good] == [
        'a red fox, "autumn"\nsecond line',
        "长城上的日出",
        "a bird",
    ]
    fox = good[0]
    assert (fox.seed, fox.steps, fox.guidance, fox.width) == (42, 20, 7.5, 512)
    assert (fox.negative_prompt, fox.scheduler, fox.model_name) == ("blurry", "Euler a", "sd-1.5")
    assert fox.source_key == "csv:prompts.csv:id 7"
    assert good[1].scheduler == "DPM++ 2M Karras"
    assert good[2].scheduler is None and "dpmpp_3m_sde" in good[2].warnings[0]
    reasons = {row.location: row.reason for row in bad}
    assert reasons == {
        # physical lines: the fox's prompt spans two
        "dump/prompts.csv line 5": "no prompt",
        "dump/prompts.csv line 6": "Seed must be between 0 and 4294967295 (got -1).",
        "dump/prompts.csv line 7": "Steps must be a whole number, not 'twenty'.",
    }


def test_mapping_reaches_into_nested_json():
    rows = [
        {"caption": "a boat", "params": {"seed": 3, "sampler": {"name": "ddim"}}},
        {"caption": "a tree", "params": json.dumps({"seed": 4, "sampler": {"name": "plms"}})},
        {"caption": "a car", "params": "{not json"},
    ]
    handle = io.StringIO("\n".join(json.dumps(row) for row in rows) + "\n\n[1]\n{oops\n")
    mapping = parse_mapping(["prompt=caption", "seed=params.seed", "sampler=params.sampler.name"])
    found = list(jsonl_rows(handle, "x.jsonl", mapping))
    assert [(r.prompt, r.seed, r.scheduler) for r in found[:2]] == [
        ("a boat", 3, "DDIM"),
        ("a tree", 4, "PNDM"),
    ]
    assert found[2] == Rejected("x.jsonl line 3", "column 'params' is not valid JSON")
    assert found[3] == Rejected("x.jsonl line 5", "a JSON Lines row must be an object")
    assert found[4].location == "x.jsonl line 6" and "not valid JSON" in found[4].reason
    assert found[0].source_key == "jsonl:x.jsonl:x.jsonl line 1"  # no id: its place


@pytest.mark.parametrize("pair", ["seed", "seed=", "colour=params.c"])
def test_bad_mappings_are_refused(pair):
    with pytest.raises(ValueError):
        parse_mapping([pair])


def test_lexica_search_answer():
    answer = {"images": [
        {"id": "0482ee68-0368-4eca-8846-5930db866b33", "prompt": "cyberpunk city",
         "seed": 1234, "guidance": 7, "width": 512, "height": 768, "model": "stable-diffusion",
         "src": "https://lexica-serve-encoded-images.sharif.workers.dev/md/0482ee68"},
        {"id": "x", "prompt": "a", "seed": 1.5},
        "not an object",
    ]}  # fmt: skip
    rows = list(lexica_rows(io.StringIO(json.dumps(answer)), "lexica.json"))
    first = rows[0]
    assert isinstance(first, SourceRecipe)
    assert (first.seed, first.height, first.model_name) == (1234, 768, "stable-diffusion")
    assert first.source_key == "lexica:lexica.json:id 0482ee68-0368-4eca-8846-5930db866b33"
    assert first.raw["src"].startswith("https://")
    assert rows[1] == Rejected("lexica.json image 1", "Seed must be a whole number, not 1.5.")
    assert rows[2] == Rejected("lexica.json image 2", "an image must be an object")


def diffusiondb_parquet(path, rows_per_group: int = 2) -> None:
    """A metadata.parquet in DiffusionDB's published schema (poloclub/diffusiondb README)."""
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("image_name", pa.string()), ("prompt", pa.string()), ("part_id", pa.uint16()),
        ("seed", pa.uint32()), ("step", pa.uint16()), ("cfg", pa.float32()),
        ("sampler", pa.uint8()), ("width", pa.uint16()), ("height", pa.uint16()),
        ("user_name", pa.string()), ("timestamp", pa.timestamp("us", tz="UTC")),
        ("image_nsfw", pa.float32()), ("prompt_nsfw", pa.float32()),
    ])  # fmt: skip
    when = datetime.datetime(2022, 8, 20, 5, 3, tzinfo=datetime.UTC)
    rows = [
        ("f3501e05-aef7-4225-a9e9-f516527408ac.png", "a castle in the clouds, 4k", 1, 2413394410,
         50, 7.0, 8, 512, 512, "0a1b", when, 0.02, 0.01),
        ("b2c2a6ce-0d5c-4f24-9a53-a0c3e7aa9db6.png", "水墨山水", 1, 7, 50, 7.5, 4, 512, 768,
         "0a1c", when, 0.1, 0.2),
        ("c0ffee00-0000-0000-0000-000000000000.png", "a knight", 2, 8, 50, 7.0, 9, 512, 512,
         "0a1d", when, 0.0, 0.0),
    ]  # fmt: skip
    table = pa.Table.from_pylist([dict(zip(schema.names, row, strict=True)) for row in rows],
                                 schema=schema)  # fmt: skip
    pq.write_table(table, path, row_group_size=rows_per_group)


def test_diffusiondb_parquet_row_groups_codes_and_others(tmp_path):
    from engine.imports.tables import DIFFUSIONDB_MODEL, diffusiondb_rows

    diffusiondb_parquet(tmp_path / "metadata.parquet")
    castle, shanshui, knight = diffusiondb_rows(str(tmp_path / "metadata.parquet"), "metadata")
    assert (castle.seed, castle.steps, castle.guidance, castle.scheduler) == (
        2413394410, 50, 7.0, "K-LMS")  # fmt: skip
    assert castle.source_key == "diffusiondb:metadata:id f3501e05-aef7-4225-a9e9-f516527408ac.png"
    assert castle.model_name == DIFFUSIONDB_MODEL
    assert castle.raw["timestamp"].startswith("2022-08-20")
    assert (shanshui.prompt, shanshui.scheduler, shanshui.height) == ("水墨山水", "Euler a", 768)
    # code 9 is "others": kept, no scheduler guessed
    assert knight.scheduler is None and knight.location == "metadata row 3"
    assert knight.missing() == ["a catalogue scheduler (the source says '9')"]


def test_columns_nobody_reads_are_refused_by_name_unless_ignored():
    table = (
        "prompt,seed,steps,cfg_scale,width,height,sampler,restore_faces,notes,src\n"
        "a fox,1,20,7,512,512,Euler,true,,https://x\n"  # notes empty: nothing said
        "a fox,2,20,7,512,512,Euler,,from a book,\n"
    )
    fox, book = csv_rows(text_handle(table.encode()), "t.csv")
    assert fox == Rejected(
        "t.csv line 2",
        "column(s) 'restore_faces', 'src' not read: whether they change the picture is "
        "unknown (--map ignore=restore_faces,src if they do not)",
    )
    assert isinstance(book, Rejected) and "'notes'" in book.reason
    mapping = parse_mapping(["ignore=notes,src", "ignore=restore_faces"])
    assert all(isinstance(row, SourceRecipe)
               for row in csv_rows(text_handle(table.encode()), "t.csv", mapping))  # fmt: skip
    # Lexica's own columns are known; a new one is not.
    lexica = {"images": [{"id": "a", "prompt": "p", "src": "s", "grid": True, "upscale": 2}]}
    (row,) = lexica_rows(io.StringIO(json.dumps(lexica)), "l.json")
    assert isinstance(row, Rejected) and row.reason.startswith("column(s) 'upscale' not read")


def test_seedbank_resource_columns_as_recipes_jsonl_and_csv_write_them():
    sha = "ab" * 32
    row = {"prompt": "a boat", "seed": 3, "steps": 4, "guidance": 7.5, "width": 64,
           "height": 64, "scheduler": "DDIM", "model": "tiny", "model_digest": "cd" * 32,
           "loras": [{"resource": sha, "weight": 0.5, "name": "outline@main"}], "vae": None,
           "clip_skip": 2, "hires": {"scale": 1.5, "upscaler": "Latent", "steps": 0,
                                     "denoise": 0.6}, "mode": "txt2img", "pixel_sha256": None,
           "batch_size": 1, "batch_index": 0, "precision": "fp32", "id": 9}  # fmt: skip
    (found,) = jsonl_rows(io.StringIO(json.dumps(row) + "\n"), "recipes.jsonl")
    assert isinstance(found, SourceRecipe) and found.model_hash == "cd" * 32
    assert [(lora.hash, lora.weight) for lora in found.loras] == [(sha, 0.5)]
    assert (found.clip_skip, found.hires.scale, found.unsupported) == (2, 1.5, ())
    # In a CSV, nested values are JSON text in their cells.
    cells = {**row, "loras": json.dumps(row["loras"]), "hires": json.dumps(row["hires"]),
             "vae": "", "pixel_sha256": ""}  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(cells))
    writer.writeheader()
    writer.writerow(cells)
    (from_csv,) = csv_rows(text_handle(buffer.getvalue().encode()), "r.csv")
    assert isinstance(from_csv, SourceRecipe)
    assert (from_csv.loras, from_csv.hires) == (found.loras, found.hires)
    img2img = {**row, "mode": "img2img", "strength": 0.5, "init_image_sha256": "00" * 32}
    (kept,) = jsonl_rows(io.StringIO(json.dumps(img2img) + "\n"), "recipes.jsonl")
    assert kept.unsupported == ("mode img2img: its init image is not in the source",)
    bad = {**row, "loras": [{"resource": sha, "weight": 1, "scale": 2}]}
    (refused,) = jsonl_rows(io.StringIO(json.dumps(bad) + "\n"), "recipes.jsonl")
    assert refused == Rejected("recipes.jsonl line 1", "a LoRA has unknown key(s) 'scale'.")


def test_every_other_plain_recipe_field_passes_through_with_its_type():
    from engine.imports.source import _PASSED_ON

    examples = {int: ("1024", 1024), float: ("0.8", 0.8), str: ("a second prompt", None)}
    row = {"prompt": "a boat", "seed": 3, "steps": 4, "guidance": 7, "width": 64, "height": 64,
           "scheduler": "DDIM"}  # fmt: skip
    cells = {name: examples[kind][0] for name, kind in _PASSED_ON.items()}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*row, *cells])
    writer.writeheader()
    writer.writerow({**row, **cells})
    (found,) = csv_rows(text_handle(buffer.getvalue().encode()), "sdxl.csv")
    assert isinstance(found, SourceRecipe)
    recipe = found.recipe(None)
    for name, kind in _PASSED_ON.items():
        text, typed = examples[kind]
        assert getattr(recipe, name) == (text if typed is None else typed)
