"""Keyword search: Postgres full-text (English stems, segmented Chinese) ranked with ts_rank,
reading the newest matches the cheap way for how common the words are."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Max, Min, QuerySet
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
# Words too rare for that window but commoner than KEYWORD_ID_RANGE_FILL x cap are read from the
# GIN index ANDed with the newest ids expected to hold that many matches: only those rows'
# pages are read ("长城" in 1.4 % of a million: 2,700 rows instead of 13,800).
KEYWORD_ID_RANGE_FILL = 3.0


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
    - common (the rarest word over KEYWORD_BITMAP_FACTOR x cap matches, enough for the
      window to fill): the newest KEYWORD_WINDOW_FACTOR x cap records, newest first, until
      `cap` match: exact when they do, reading at most that window (a word in 11 % of the
      records stops after 18,000 rows; reading its 110,000 matches took 100 ms);
    - over KEYWORD_ID_RANGE_FILL x cap matches of all the words together: the GIN index's
      matches ANDed with the newest ids expected to hold that many, one bitmap each ("长城"
      in 1.4 %: 39 -> 20 ms);
    - rarer, or when either came up short: every match from the GIN index, then the newest.
    The planner's estimate of the whole query misleads both ways: words that come together
    ("red fox") are commoner than it multiplies out, and left to itself it walks the primary
    key backwards testing each row, 300,000 rows for a word in 2 % of a million (350 ms).
    """
    terms = (query, segment(query))
    cap = settings.SEEDBANK_KEYWORD_RANK_MAX
    matches = _matching(candidates, terms)
    records, bound, together = _word_match_bounds(terms[1].split(), candidates, terms)
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
    # Both estimates must clear it: words that rarely come together ("corgi astronaut
    # ukiyo-e") would leave the range short, and the whole index read after it.
    if together > cap * KEYWORD_ID_RANGE_FILL:
        newest_ids = _newest_ids_from(min(1.0, cap * KEYWORD_ID_RANGE_FILL / together))
        rows = _newest_matches_ranked(terms, matches.filter(pk__gte=newest_ids), cap, limit)
        if rows and rows[0][2] == cap:  # the newest `cap` matches all lie in that range
            return [(pk, rank) for pk, rank, _ in rows]
    return [(pk, rank) for pk, rank, _ in _newest_matches_ranked(terms, matches, cap, limit)]


def _newest_matches_ranked(
    terms: tuple[str, str], matches: QuerySet[Image], cap: int, limit: int
) -> list[tuple[int, float, int]]:
    sql, params = matches.values("pk", "search_vector").query.sql_with_params()
    # OFFSET 0 keeps the subquery whole, so the ORDER BY cannot be pushed into it.
    newest = f"SELECT pk, search_vector FROM ({sql} OFFSET 0) AS matches ORDER BY pk DESC LIMIT %s"
    return _ranked(terms, newest, (*params, cap), limit)


def _newest_ids_from(fraction: float) -> int:
    """The id above which the newest `fraction` of the archive's id range lies (two probes of
    the primary key): matches are spread over the ids about as records are."""
    span = Image.objects.aggregate(low=Min("id"), high=Max("id"))
    low, high = span["low"] or 0, span["high"] or 0
    return high - int(fraction * (high - low))


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


class WordEstimates(NamedTuple):
    """The planner's estimates for a keyword query over the candidates (one EXPLAIN)."""

    records: float  # the candidates
    rarest: float  # the rarest word's matches: an upper bound on the query's
    together: float  # all the words ANDed, as if independent: a lower bound, roughly


def _word_match_bounds(
    words: list[str], candidates: QuerySet[Image], terms: tuple[str, str] | None = None
) -> WordEstimates:
    """The planner's estimate of the candidates, an upper bound on how many of them match
    all the words (the rarest word's own estimate) and, given the query's terms, its estimate
    of the whole query (one EXPLAIN for all of them).

    The words are ANDed, and the planner multiplies their frequencies as if independent: for
    "red fox", which always come together in 11 % of a million prompts, it expected 25,000
    matches, not 110,000. No match can be commoner than its rarest word.
    """
    branches = [candidates.values("pk").query.sql_with_params()]
    for word in words:
        branches.append(_matching(candidates, (word, word)).values("pk").query.sql_with_params())
    if terms is not None:
        branches.append(_matching(candidates, terms).values("pk").query.sql_with_params())
    sql = " UNION ALL ".join(f"({branch})" for branch, _ in branches)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT json) {sql}", [p for _, ps in branches for p in ps])
        (explained,) = cursor.fetchone()
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    # One branch (no words: punctuation only) plans as that branch alone, not an Append.
    branches_planned = plan["Plans"] if plan.get("Node Type") == "Append" else [plan]
    estimates = [float(child["Plan Rows"]) for child in branches_planned]
    per_word = estimates[1 : 1 + len(words)]
    rarest = min(per_word, default=0.0)
    together = estimates[-1] if terms is not None and len(estimates) > 1 else rarest
    return WordEstimates(records=estimates[0], rarest=rarest, together=min(together, rarest))
