"""Keyword search: Postgres full-text (English stems, segmented Chinese) ranked with ts_rank,
reading the newest matches the cheap way for how common the words are."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from engine.keywords import segment
from generator.models import Image

# Keyword matches the planner expects up to this many times SEEDBANK_KEYWORD_RANK_MAX are read
# from the GIN index whole; commoner words are looked for among the newest
# KEYWORD_WINDOW_FACTOR x cap records first (keyword_ranked), when the planner expects that
# window to hold at least KEYWORD_WINDOW_FILL x cap matches.
KEYWORD_BITMAP_FACTOR = 5
KEYWORD_WINDOW_FACTOR = 25
KEYWORD_WINDOW_FILL = 1.0


# The keyword query: English stems or segmented words (Chinese), as records are indexed
# (generator.services.records.keyword_vector); every keyword statement here and the
# prompt-only search (archive.selectors) use this text.
KEYWORD_TSQUERY = (
    "(plainto_tsquery('english'::regconfig, %s) || plainto_tsquery('simple'::regconfig, %s))"
)


def _matching(candidates: QuerySet[Image], terms: tuple[str, str]) -> QuerySet[Image]:
    """The candidates whose keyword vector matches the terms (English, segmented)."""
    return candidates.filter(
        RawSQL(f"search_vector @@ {KEYWORD_TSQUERY}", terms, output_field=BooleanField())
    )


def keyword_ranked(
    query: str, candidates: QuerySet[Image], *, limit: int
) -> list[tuple[int, float]]:
    """[(image id, ts_rank)] best first, among the newest SEEDBANK_KEYWORD_RANK_MAX matches.

    ts_rank reads every match's tsvector (261 ms for a phrase in 90k of 300k records), so a
    phrase that common ranks its recent records, rarer words all of theirs. The newest matches
    are read the cheap way for how common the words are (bench/search.py, 1M records):
    - rare (at most KEYWORD_BITMAP_FACTOR x cap matches, or too few for the window below to
      fill, by the rarest word's estimate): every match from the GIN index, then the newest
      ("长城" in 1.4 % of a million: 23 ms; trying the window first cost 16 ms more);
    - else the newest KEYWORD_WINDOW_FACTOR x cap records, newest first, until `cap` match:
      exact when they do, reading at most that window (a word in 11 % of the records stops
      after 18,000 rows; reading its 110,000 matches took 100 ms);
    - words rarer than that among recent records: every match from the GIN index after all.
    The planner's estimate of the whole query misleads both ways: words that come together
    ("red fox") are commoner than it multiplies out, and left to itself it walks the primary
    key backwards testing each row, 300,000 rows for a word in 2 % of a million (350 ms).
    """
    terms = (query, segment(query))
    cap = settings.SEEDBANK_KEYWORD_RANK_MAX
    matches = _matching(candidates, terms)
    records, bound = _word_match_bounds(terms[1].split(), candidates)
    window_size = cap * KEYWORD_WINDOW_FACTOR
    expected_in_window = bound * min(1.0, window_size / max(records, 1.0))
    if bound > cap * KEYWORD_BITMAP_FACTOR and expected_in_window >= cap * KEYWORD_WINDOW_FILL:
        window, params = (
            candidates.order_by("-id").values("pk", "search_vector").query.sql_with_params()
        )
        newest = (
            f"SELECT pk, search_vector FROM ({window} LIMIT %s) AS recent "
            f"WHERE search_vector @@ {KEYWORD_TSQUERY} ORDER BY pk DESC LIMIT %s"
        )
        rows = _ranked(terms, newest, (*params, window_size, *terms, cap), limit)
        if rows and rows[0][2] == cap:
            return [(pk, rank) for pk, rank, _ in rows]
    sql, params = matches.values("pk", "search_vector").query.sql_with_params()
    # OFFSET 0 keeps the subquery whole, so the ORDER BY cannot be pushed into it.
    newest = f"SELECT pk, search_vector FROM ({sql} OFFSET 0) AS matches ORDER BY pk DESC LIMIT %s"
    return [(pk, rank) for pk, rank, _ in _ranked(terms, newest, (*params, cap), limit)]


def keyword_matches_counted(query: str, candidates: QuerySet[Image], *, limit: int) -> int:
    """How many candidates the keyword search would find, counting to `limit` at most: what a
    page offers when words meant nothing to the model, without ranking the matches (ranking
    them read up to SEEDBANK_KEYWORD_RANK_MAX tsvectors: ~45 ms per page at 1M records)."""
    return _matching(candidates, (query, segment(query))).values("pk")[:limit].count()


def _ranked(
    terms: tuple[str, str], newest: str, params: tuple[Any, ...], limit: int
) -> list[tuple[int, float, int]]:
    """(id, ts_rank, how many were ranked) of the best `limit` rows of the `newest` query."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pk, ts_rank(search_vector, {KEYWORD_TSQUERY}) AS rank, count(*) OVER () "
            f"FROM ({newest}) AS newest ORDER BY rank DESC, pk DESC LIMIT %s",
            (*terms, *params, limit),
        )
        return [(int(pk), float(rank), int(ranked)) for pk, rank, ranked in cursor.fetchall()]


def _word_match_bounds(words: list[str], candidates: QuerySet[Image]) -> tuple[float, float]:
    """The planner's estimate of the candidates, and an upper bound on how many of them match
    all the words: the rarest word's own estimate (one EXPLAIN for all of them).

    The words are ANDed, and the planner multiplies their frequencies as if independent: for
    "red fox", which always come together in 11 % of a million prompts, it expected 25,000
    matches, not 110,000. No match can be commoner than its rarest word.
    """
    branches = [candidates.values("pk").query.sql_with_params()]
    for word in words:
        branches.append(_matching(candidates, (word, word)).values("pk").query.sql_with_params())
    sql = " UNION ALL ".join(f"({branch})" for branch, _ in branches)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT json) {sql}", [p for _, ps in branches for p in ps])
        (explained,) = cursor.fetchone()
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    # One branch (no words: punctuation only) plans as that branch alone, not an Append.
    branches_planned = plan["Plans"] if plan.get("Node Type") == "Append" else [plan]
    estimates = [float(child["Plan Rows"]) for child in branches_planned]
    return estimates[0], min(estimates[1:], default=0.0)
