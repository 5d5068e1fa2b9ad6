"""Importing prompt tables: rows per second and memory, against parsing alone.

    .venv/bin/python bench/imports.py [--rows 100000]

Writes a CSV and a JSON Lines file of `--rows` rows each (realistic prompts in English and
Chinese, 1 in 50 rows broken: no prompt, a seed out of range, bad JSON), then for each:
parses it alone (engine.imports.discover.rows: the baseline, measured in the same run) and
imports it into a fresh database (archive.services.imports: batches of 500, provenance rows,
the report). Their models are not registered here, so every good row is kept as "needs
model": the path a public prompt dump takes. Memory: the process's resident size after the
first tenth of the rows and at the end (flat memory: they stay close).
Runs in its own embedded Postgres under var/bench/imports.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "a lighthouse", "a red fox", "trending on artstation", "长城", "水墨山水", "cyberpunk city",
    "portrait of an old sailor", "volumetric light", "octane render", "4k", "一只猫",
)  # fmt: skip
SAMPLERS = ("Euler a", "DPM++ 2M Karras", "k_lms", "DDIM", "dpmpp_3m_sde")


def _rows(count: int) -> list[dict]:
    rng = random.Random(5)
    rows = []
    for index in range(count):
        row = {
            "id": index,
            "prompt": ", ".join(rng.sample(WORDS, 4)),
            "negative_prompt": "blurry" if index % 3 else "",
            "seed": rng.randrange(2**32),
            "steps": rng.choice((20, 30, 50)),
            "cfg_scale": rng.choice((7, 7.5, 9)),
            "width": 512,
            "height": rng.choice((512, 768)),
            "sampler": rng.choice(SAMPLERS),
            "model": "sd-1.5-pruned",
        }
        if index % 50 == 7:
            row["prompt"] = ""
        elif index % 50 == 23:
            row["seed"] = -5
        rows.append(row)
    return rows


def write_tables(directory: Path, count: int) -> tuple[Path, Path]:
    rows = _rows(count)
    csv_path, jsonl_path = directory / "prompts.csv", directory / "prompts.jsonl"
    import csv

    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with jsonl_path.open("w", encoding="utf-8") as handle:
        for index, row in enumerate(rows):
            line = json.dumps(row, ensure_ascii=False)
            handle.write(("{broken" if index % 50 == 41 else line) + "\n")
    return csv_path, jsonl_path


def _resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    os.environ["SEEDBANK_VAR_DIR"] = str(ROOT / "var" / "bench" / "imports")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    with tempfile.TemporaryDirectory() as scratch:
        tables = write_tables(Path(scratch), args.rows)
        print(f"{args.rows:,} rows per table; import vs parsing alone (baseline), same run")
        print(f"{'table':8}{'parse rows/s':>14}{'import rows/s':>15}{'ratio':>8}"
              f"{'RSS at 10% MB':>15}{'RSS at end MB':>15}  result")  # fmt: skip
        for table in tables:
            _measure(table, args.rows)


def _measure(table: Path, count: int) -> None:
    from archive.models import ImportProblem, ImportRun, SourceRecord
    from archive.services.imports import import_rows, import_run_start
    from engine.imports.discover import rows

    SourceRecord.objects.all().delete()
    ImportProblem.objects.all().delete()
    ImportRun.objects.all().delete()
    started = time.perf_counter()
    parsed = sum(1 for _ in rows([table]))
    parse_rate = parsed / (time.perf_counter() - started)
    memory: list[float] = []
    seen = 0

    def progress(batch: int) -> None:
        nonlocal seen
        seen += batch
        if not memory and seen >= count // 10:
            memory.append(_resident_mb())

    run = import_run_start(sources=[str(table)], mapping={})
    started = time.perf_counter()
    run = import_rows(run=run, rows=rows([table]), progress=progress)
    import_rate = run.read / (time.perf_counter() - started)
    memory.append(_resident_mb())
    result = (f"needs model {run.needs_model:,}, incomplete {run.incomplete:,}, "
              f"rejected {run.rejected:,}")  # fmt: skip
    print(
        f"{table.suffix[1:]:8}{parse_rate:14,.0f}{import_rate:15,.0f}"
        f"{import_rate / parse_rate:7.2f}×{memory[0]:15.0f}{memory[-1]:15.0f}  {result}"
    )
    started = time.perf_counter()
    again = import_rows(run=import_run_start(sources=[str(table)], mapping={}),
                        rows=rows([table]))  # fmt: skip
    print(
        f"{'':8}again: {again.read / (time.perf_counter() - started):,.0f} rows/s, "
        f"duplicates {again.duplicates:,}, new {again.needs_model + again.incomplete:,}"
    )


if __name__ == "__main__":
    main()
