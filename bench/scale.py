"""Pages and APIs at archive scale: N synthetic records in the real tables, timed in-process.

    .venv/bin/python bench/scale.py [--rows 300000] [--requests 50]

Uses the embedded Postgres under var/bench (never `make run`'s data). Fills it once with N
records cloned in SQL from one real record (prompts from a 3,000-word vocabulary, 30 % ending in
"trending on artstation", 1 % "a lighthouse"), their keyword vectors, and clustered 512-d vectors
COPYed in binary with the HNSW index rebuilt; a second run reuses them. Then times each endpoint
through Django's test client (the whole request, no network; the anonymous page cache off) and
prints p50/p95.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SEEDBANK_VAR_DIR", str(ROOT / "var" / "bench"))
os.environ["SEEDBANK_PAGE_CACHE_SECONDS"] = "0"  # measure the work, not the cache
os.environ.setdefault("SEEDBANK_RATE_SEARCH_PER_MINUTE", "1000000")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402
from pgvector.psycopg.vector import register_vector_info  # noqa: E402
from psycopg.types import TypeInfo  # noqa: E402

from generator.models import Image  # noqa: E402
from generator.selectors.recipes import model_version_default  # noqa: E402
from search.models import EMBEDDING_DIM  # noqa: E402
from search.selectors import active_embedding_model  # noqa: E402
from search.services import embedding_model_ensure_registered  # noqa: E402

MARK = "scale-bench"


def populate(rows: int) -> None:
    model_version = model_version_default()
    assert model_version is not None
    model = embedding_model_ensure_registered(model=active_embedding_model())
    template = Image.objects.create(
        model_version=model_version, model_name=str(model_version),
        model_digest=model_version.weights_digest, prompt=MARK, seed=0, scheduler="PNDM",
        steps=20, guidance=7.5, width=64, height=64, status=Image.Status.READY,
        image_file="images/scale-bench.png",
    )  # fmt: skip
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            """
            INSERT INTO generator_image (
                model_name, model_digest, mode, prompt, negative_prompt, seed, scheduler, steps,
                guidance, width, height, precision, batch_size, batch_index, status, image_file,
                thumbnail, pixel_sha256, hidden, nsfw, featured, created_at,
                model_version_id, owner_id)
            SELECT model_name, model_digest, mode,
                (SELECT string_agg('w' || ((g::bigint * 7919 + k * 104729) %% 3000), ' ')
                   FROM generate_series(1, 12) AS k)
                || CASE WHEN g %% 10 < 3 THEN ' trending on artstation' ELSE '' END
                || CASE WHEN g %% 100 = 7 THEN ' a lighthouse' ELSE '' END,
                negative_prompt, g, CASE WHEN g %% 10 = 1 THEN 'DDIM' ELSE scheduler END, steps,
                guidance, width, height, precision, batch_size, batch_index, status, image_file,
                thumbnail, pixel_sha256, hidden, g %% 50 = 0, featured,
                created_at - make_interval(secs => g), model_version_id, owner_id
            FROM generator_image, generate_series(1, %s) AS g WHERE id = %s
            RETURNING id
            """,
            [rows, template.pk],
        )
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute("DELETE FROM generator_image WHERE prompt = %s", [MARK])
        cursor.execute(
            "UPDATE generator_image SET search_vector = "
            "setweight(to_tsvector('english', prompt), 'A') || "
            "setweight(to_tsvector('simple', prompt), 'A') WHERE id = ANY(%s)",
            [ids],
        )
        cursor.execute("DROP INDEX IF EXISTS embedding_hnsw_cosine")
    print(f"records and keywords: {time.perf_counter() - started:.0f} s")

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((200, EMBEDDING_DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    scale = np.arange(1, EMBEDDING_DIM + 1, dtype=np.float64) ** -0.5
    scale /= np.linalg.norm(scale)
    raw, now = connection.connection, timezone.now()
    started = time.perf_counter()
    with raw.cursor() as cursor:
        register_vector_info(cursor, TypeInfo.fetch(raw, "vector"))
        with cursor.copy(
            "COPY search_imageembedding (image_id, model_name, dim, embedding, created_at) "
            "FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "varchar", "int2", "vector", "timestamptz"])
            for start in range(0, len(ids), 10_000):
                chunk = ids[start : start + 10_000]
                vectors = centres[rng.integers(0, len(centres), len(chunk))]
                vectors = vectors + rng.standard_normal((len(chunk), EMBEDDING_DIM)) * scale
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                for pk, vector in zip(chunk, vectors.astype(np.float32), strict=True):
                    copy.write_row((pk, model.name, EMBEDDING_DIM, vector, now))
    print(f"vectors: {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE INDEX embedding_hnsw_cosine ON search_imageembedding USING hnsw "
            "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        cursor.execute("VACUUM ANALYZE generator_image")
        cursor.execute("VACUUM ANALYZE search_imageembedding")
    print(f"HNSW build: {time.perf_counter() - started:.0f} s")


def timed(client: Client, path: str, requests: int) -> tuple[float, float]:
    response = client.get(path)  # warm (query vector cache, templates)
    assert response.status_code == 200, (path, response.status_code)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(path)
        times.append(time.perf_counter() - started)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return statistics.median(times) * 1e3, p95 * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("build_tiny_models", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # pages link hashed names
    existing = Image.objects.filter(prompt__startswith="w", scheduler__in=["PNDM", "DDIM"]).count()
    if existing < args.rows:
        populate(args.rows - existing)
    total = Image.objects.count()
    record = Image.objects.filter(prompt__contains="lighthouse").order_by("-id").first()
    assert record is not None
    client = Client(HTTP_HOST="127.0.0.1")
    paths = {
        "home": "/",
        "record page": f"/images/{record.pk}/",
        "search page (hybrid)": "/search/?q=a+lighthouse",
        "search, common phrase": "/search/?q=trending+on+artstation&mode=keyword",
        "search, 10 % filter": "/search/?q=a+lighthouse&mode=vector&scheduler=DDIM",
        "search, 2 % filter (nsfw)": "/search/?q=a+lighthouse&mode=vector&nsfw=only",
        "api search (Lexica)": "/api/v1/search?q=a+lighthouse",
        "api images": "/api/v1/images?q=lighthouse&limit=12",
    }
    print(f"\n{total:,} records; {args.requests} requests each, in-process, page cache off")
    print(f"{'endpoint':28} {'p50 ms':>7} {'p95 ms':>7}")
    for name, path in paths.items():
        p50, p95 = timed(client, path, args.requests)
        print(f"{name:28} {p50:7.1f} {p95:7.1f}")


if __name__ == "__main__":
    main()
