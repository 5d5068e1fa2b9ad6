"""Vector search: the records nearest a query vector among a filter's candidates, through the
HNSW graph, an exact sort, a scan of 1-bit sketches re-ranked by cosine, or pgvector's iterative
scan, whichever the filter's size calls for."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet, Value
from django.db.models.functions import Cast
from pgvector.django import BitField, CosineDistance, HammingDistance

from generator.models import Image
from search.models import EMBEDDING_DIM, ImageEmbedding

# The sketch scan keeps the nearest max(limit x FACTOR, MIN, SHARE of the filter's records) by
# Hamming distance for the cosine re-rank: at 1M records, 10,000 in the filter, the true top
# 10 were always among the nearest 100-400 sketches (recall@10 1.000); 200 of 50,000 (lang:zh,
# 5 %) gave 0.930, so the shortlist grows with the filter (bench/search.py measures both).
SKETCH_SHORTLIST_FACTOR = 8
SKETCH_SHORTLIST_MIN = 200
SKETCH_SHORTLIST_SHARE = 0.01


def vector_ranked(
    vector: list[float],
    candidates: QuerySet[Image],
    *,
    limit: int,
    filtered: bool,
    model_name: str,
    chinese_prompts: bool = False,
) -> tuple[list[tuple[int, float]], str]:
    """[(image id, cosine)] best first, and the strategy used.

    Unfiltered: HNSW at the connection's ef_search. Filtered, a plain HNSW scan would apply the
    WHERE clause after the graph walk and could return fewer than `limit` rows, so:
    - when the filter leaves at most SEEDBANK_EXACT_SEARCH_MAX_ROWS rows (counted through
      the filter's indexes when the planner expects it near or under that), an exact sort of
      just those rows' vectors;
    - up to SEEDBANK_SKETCH_SEARCH_MAX_ROWS, an exact Hamming sort of those records' sketches
      (Image.sketch: the signs of the vector, read with the ids from the filter's own partial
      index), the nearest few re-ranked by cosine: a rare filter is where the graph walk is
      slowest (it visits ~100 tuples per row it keeps at 1 %: p95 81 ms at 1M records);
    - otherwise HNSW with pgvector 0.8's iterative scan, which keeps walking the graph until
      `limit` rows pass the filter (up to SEEDBANK_HNSW_MAX_SCAN_TUPLES visited);
    - chinese_prompts (lang:zh) walks the Chinese prompts' own graph (a partial HNSW index)
      unless the rest of the filter leaves under CHINESE_GRAPH_WALK_SHARE of its records: the
      whole graph visited ~20 tuples per Chinese record kept, and the sketch scan read all
      ~50,000 of their sketches (p95 51-62 ms at 1M records);
    - and the exact answer if even that came up short, so k rows come back whenever k exist.
    tests/search/test_filtered_recall.py checks each path against brute force at 50k rows.
    """
    embeddings = ImageEmbedding.objects.filter(model_name=model_name)
    if chinese_prompts:  # the condition of the Chinese graph's index: the planner may walk it
        embeddings = embeddings.filter(chinese_prompt=True)

    def ranked(within: QuerySet[Any], *, exact: bool) -> QuerySet[Any]:
        distance: Any = CosineDistance("embedding", vector)
        if exact:
            # "+ 0" is not the expression the HNSW index orders by, so the planner takes the
            # filter's rows first (their index) and sorts just their vectors.
            distance = distance + Value(0.0)
        return (
            embeddings.filter(image__in=within)
            .annotate(distance=distance)
            .order_by("distance")
            .values_list("image_id", "distance")[:limit]
        )

    def rows(query: QuerySet[Any]) -> list[tuple[int, float]]:
        # Iterative scans in relaxed order may hand back near-ties out of order: ranked here.
        found = [(image_id, 1.0 - float(distance)) for image_id, distance in query]
        return sorted(found, key=lambda row: -row[1])

    if not filtered:
        # The connection's own ef_search and iterative scan (config.settings sets them for
        # every connection).
        return rows(ranked(candidates, exact=False)), (
            f"hnsw ef_search={settings.SEEDBANK_HNSW_EF_SEARCH}"
        )
    exact_most = settings.SEEDBANK_EXACT_SEARCH_MAX_ROWS
    most = max(settings.SEEDBANK_SKETCH_SEARCH_MAX_ROWS, exact_most)
    # The planner's estimate costs no scan; counting a filter costs one (through its index,
    # stopping at most + 1: 5 ms for lang:zh's ~50,000 records at 1M). The exact path reads at
    # most exact_most + 1 rows, so it needs the true size: a filter expected near or under its
    # bound is counted. Above that the estimate chooses between the sketch scan and the graph
    # walk, each right at any size and about as fast as the other near the sketch bound.
    size = _estimated_rows(candidates)
    if size <= exact_most * ESTIMATE_SLACK:
        size = candidates.values("pk")[: most + 1].count()
    if size <= exact_most:
        # The LIMIT tells the planner how few rows there are (its estimate may be off).
        return rows(ranked(candidates.values("pk")[: exact_most + 1], exact=True)), "exact"
    walks_chinese_graph = chinese_prompts and (
        size > most or size >= CHINESE_GRAPH_WALK_SHARE * _estimated_rows(embeddings)
    )
    if size <= most and not walks_chinese_graph:
        shortlist = _sketch_shortlist(vector, candidates, limit=limit, size=size)
        with transaction.atomic(), connection.cursor() as cursor:
            # One process: launching parallel workers for a scan of at most `most` sketches
            # costs more than it saves (lang:zh at 1M, ~50,000 sketches: p50 / p95 32.6 / 60
            # ms with two workers, 23.5 / 44 without; a 2 % filter the same either way).
            cursor.execute("SELECT set_config('max_parallel_workers_per_gather', '0', true)")
            return rows(ranked(shortlist, exact=True)), "sketch"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.ef_search', %s, true), "
            "set_config('hnsw.max_scan_tuples', %s, true), "
            # The graph walk drives: each record it reaches is checked through the primary key.
            # Without this, at tens of thousands of rows, the planner may hash the whole
            # filtered set first (a scan of the image table, growing with the archive).
            "set_config('enable_seqscan', 'off', true)",
            [
                str(settings.SEEDBANK_HNSW_EF_SEARCH_FILTERED),
                str(settings.SEEDBANK_HNSW_MAX_SCAN_TUPLES),
            ],
        )
        found = rows(ranked(candidates, exact=False))
    if len(found) < limit:  # rarer than max_scan_tuples allows for: pay for the exact answer
        return rows(ranked(candidates, exact=True)), "exact (iterative hnsw came up short)"
    graph = " (chinese graph)" if walks_chinese_graph else ""
    return found, f"hnsw iterative{graph} ef_search={settings.SEEDBANK_HNSW_EF_SEARCH_FILTERED}"


def _sketch_shortlist(
    vector: list[float], candidates: QuerySet[Image], *, limit: int, size: float
) -> QuerySet[Any]:
    """The ids of the candidates whose sketches are nearest the vector's by Hamming distance,
    max(limit x FACTOR, MIN, SHARE x size) of them, for the caller's exact cosine sort. Records
    without a sketch yet sort last."""
    signs = "".join("1" if x > 0 else "0" for x in vector)  # as binary_quantize: bit = x > 0
    return (
        candidates.annotate(
            hamming=HammingDistance("sketch", Cast(Value(signs), BitField(length=EMBEDDING_DIM)))
        )
        .order_by("hamming")
        .values("pk")[
            : max(
                limit * SKETCH_SHORTLIST_FACTOR,
                SKETCH_SHORTLIST_MIN,
                int(size * SKETCH_SHORTLIST_SHARE),
            )
        ]
    )


# Planner estimates of one equality filter are close (per-column statistics); several filters
# together may be off by a few times, since Postgres assumes them independent. Under this many
# times the exact bound a filter is counted; an estimate off beyond it only costs time, never
# results: too high, a small filter is scanned by sketch (its shortlist then holds all of it);
# too low, a large one is scanned by sketch, or walks the graph when it is rarer than expected
# (then the exact answer). Counting costs time too (a 10 % filter counted to the bound: 6-8 ms
# of every such search at 1M records; a 2 % one 3 ms; lang:zh 5), so only small filters are.
ESTIMATE_SLACK = 1.5


# Under this share of the Chinese graph's records, a lang:zh search with more filters scans
# their sketches instead of walking that graph: at 1M records the whole graph's walk and the
# sketch scan cost about the same at 5 % of it (SEEDBANK_SKETCH_SEARCH_MAX_ROWS, 50,000).
CHINESE_GRAPH_WALK_SHARE = 0.05


def _estimated_rows(candidates: QuerySet[Any]) -> float:
    plan = json.loads(candidates.values("pk").explain(format="json"))
    return float(plan[0]["Plan"]["Plan Rows"])
