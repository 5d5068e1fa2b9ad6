"""Keyword ranking at scale: ts_rank over every match against ranking the newest N matches.

    .venv/bin/python bench/keyword.py [--rows 300000] [--cap 2000]

Builds a scratch table shaped like generator_image's searched columns (status, hidden, prompt,
a weighted english + simple tsvector with a GIN index, and a 1.3 KB environment so rows are as
wide as real ones) in the embedded Postgres under var/bench, with synthetic prompts: 12 words of
a 3,000-word vocabulary, 30 % ending in "trending on artstation". Runs the two query shapes
search.selectors.keyword.keyword_ranked has had (all matches ranked; the newest --cap ranked) for a
very common phrase, a rare pair and a mid word; best of 5 each, ratio to the uncapped query.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SEEDBANK_VAR_DIR", str(ROOT / "var" / "bench"))

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

QUERY = "(plainto_tsquery('english', %(q)s) || plainto_tsquery('simple', %(q)s))"
MATCHES = f"FROM bench_keywords WHERE status = 'ready' AND NOT hidden AND search_vector @@ {QUERY}"
SHAPES = {
    "every match ranked": (
        f"SELECT id, ts_rank(search_vector, {QUERY}) AS r {MATCHES} ORDER BY r DESC, id DESC "
        "LIMIT 100"
    ),
    "newest N ranked": (
        f"SELECT id, ts_rank(search_vector, {QUERY}) AS r FROM bench_keywords WHERE id IN "
        f"(SELECT id {MATCHES} ORDER BY id DESC LIMIT %(cap)s) ORDER BY r DESC, id DESC LIMIT 100"
    ),
}


def build(cursor, rows: int) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(0)
    vocabulary = [f"w{i}" for i in range(3000)]
    cursor.execute("DROP TABLE IF EXISTS bench_keywords")
    cursor.execute(
        "CREATE TABLE bench_keywords (id bigserial PRIMARY KEY, status text, hidden bool, "
        "prompt text, search_vector tsvector, environment jsonb)"
    )
    environment = '{"padding": "' + "x" * 1300 + '"}'
    with cursor.cursor.copy(
        "COPY bench_keywords (status, hidden, prompt, environment) FROM STDIN"
    ) as copy:
        for _ in range(rows):
            prompt = " ".join(rng.choices(vocabulary, k=12))
            if rng.random() < 0.3:
                prompt += " trending on artstation"
            copy.write_row(("ready", False, prompt, environment))
    cursor.execute(
        "UPDATE bench_keywords SET search_vector = setweight(to_tsvector('english', prompt), "
        "'A') || setweight(to_tsvector('simple', prompt), 'A')"
    )
    cursor.execute("CREATE INDEX bench_keywords_gin ON bench_keywords USING gin (search_vector)")
    cursor.execute("VACUUM ANALYZE bench_keywords")


def best_ms(cursor, sql: str, params: dict[str, object]) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        cursor.execute(sql, params)
        cursor.fetchall()
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--cap", type=int, default=2_000)  # SEEDBANK_KEYWORD_RANK_MAX
    args = parser.parse_args()
    with connection.cursor() as cursor:
        started = time.perf_counter()
        build(cursor, args.rows)
        print(
            f"{args.rows:,} rows built in {time.perf_counter() - started:.0f} s; cap {args.cap:,}"
        )
        print(f"{'query':26} {'matches':>8} {'all ranked':>11} {'newest N':>9} {'ratio':>6}")
        for phrase in ("trending on artstation", "w5", "w17 w42"):
            params = {"q": phrase, "cap": args.cap}
            cursor.execute(f"SELECT count(*) {MATCHES}", params)
            matches = cursor.fetchone()[0]
            every, newest = (best_ms(cursor, sql, params) for sql in SHAPES.values())
            print(
                f"{phrase:26} {matches:8,} {every:8.1f} ms {newest:6.1f} ms {newest / every:6.2f}"
            )
        cursor.execute("DROP TABLE bench_keywords")


if __name__ == "__main__":
    main()
