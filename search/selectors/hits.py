"""What a search returns: ranked hits with their scores, and how they were found."""

from __future__ import annotations

from dataclasses import dataclass, field

from generator.models import Image


@dataclass(frozen=True)
class SearchHit:
    image: Image
    score: float  # what the list is ordered by: cosine, keyword rank, or RRF
    vector_score: float | None = None  # cosine similarity to the query, 1 = same direction
    keyword_score: float | None = None  # Postgres ts_rank
    duplicates: list[Image] = field(default_factory=list)  # collapsed near-duplicates


@dataclass(frozen=True)
class SearchResults:
    hits: list[SearchHit]
    hidden_below_threshold: int = 0
    threshold: float | None = None  # the cosine bound applied to vector matches, if any
    strategy: str = ""  # how the vector list was found (hnsw / exact), for the curious
    # The words meant nothing to the model (best cosine under its nonsense bound): no vector
    # matches; in vector mode, keyword_matches counts what a keyword search finds instead.
    no_meaning: bool = False
    keyword_matches: int = 0
    # No record matched the words as a whole: these are the words that found the hits, each
    # on its own (search.selectors.some_words); empty for a normal search.
    some_words: list[str] = field(default_factory=list)
    missing_words: list[str] = field(default_factory=list)  # and those that found nothing
