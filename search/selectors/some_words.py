"""Some of the words: when no record matches a query of several words as a whole ("red cat" in
an archive with red things and cats but no red cat), the records matching each word on its
own, fused, as a search engine falls back from all of the words to some of them.

Each word is searched as a query of its own (its keyword matches, its CLIP vector under the
same bounds as any query by words), and the lists are fused by reciprocal rank: a record that
matches two of three words comes before one that matches one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection
from django.db.models import QuerySet

from engine.keywords import segment
from generator.models import Image
from search.models import EmbeddingModel
from search.selectors import query_vectors
from search.selectors.embedding_models import nonsense_bound
from search.selectors.fusion import reciprocal_rank_fusion
from search.selectors.keyword import keyword_ranked
from search.selectors.vector import vector_ranked

# Words searched one by one at most: each costs a keyword and/or a vector search.
MOST_WORDS = 4
# Chinese words that carry no subject on their own (jieba keeps them as words): searched alone
# they would match most Chinese prompts. English stop words are Postgres's own (below).
CHINESE_FUNCTION_WORDS = frozenset("的 了 和 与 在 是 有 一 一只 一个 一张 一幅 只 个 张".split())


@dataclass
class SomeWords:
    """The fused list, and what each record scored for the words it matched."""

    ranked: list[tuple[int, float]] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # the words that found something
    missing: list[str] = field(default_factory=list)  # the words searched that found nothing
    cosine: dict[int, float] = field(default_factory=dict)  # best cosine over the words
    keyword: dict[int, float] = field(default_factory=dict)  # best ts_rank over the words


def content_words(query: str) -> list[str]:
    """The query's words that mean something on their own, in order, at most MOST_WORDS: not
    English stop words (Postgres's english dictionary drops them), not Chinese function words."""
    words = list(dict.fromkeys(segment(query).split()))
    words = [word for word in words if word not in CHINESE_FUNCTION_WORDS]
    if not words:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT word FROM unnest(%s::text[]) WITH ORDINALITY AS t(word, position) "
            "WHERE numnode(plainto_tsquery('english'::regconfig, word)) > 0 ORDER BY position",
            [words],
        )
        return [word for (word,) in cursor.fetchall()][:MOST_WORDS]


def some_words_ranked(
    query: str,
    candidates: QuerySet[Image],
    *,
    mode: str,
    model: EmbeddingModel,
    limit: int,
    filtered: bool,
    min_score: float | None,
    chinese_prompts: bool = False,
) -> SomeWords:
    """Records matching some of the query's words, best first (empty for a single word)."""
    words = content_words(query)
    found = SomeWords()
    if len(words) < 2:
        return found
    lists: list[list[tuple[int, float]]] = []
    floor = max(nonsense_bound(model) or -1.0, min_score if min_score is not None else -1.0)
    for word in words:
        matched = False
        if mode in {"vector", "hybrid"}:
            vector = query_vectors.query_text_vector(word, model)
            ranked, _ = vector_ranked(
                vector,
                candidates,
                limit=limit,
                filtered=filtered,
                chinese_prompts=chinese_prompts,
                model_name=model.name,
            )
            near = [(pk, score) for pk, score in ranked if score >= floor]
            for pk, score in near:
                found.cosine[pk] = max(score, found.cosine.get(pk, -1.0))
            matched = matched or bool(near)
            lists.append(near)
        if mode in {"keyword", "hybrid"}:
            ranked = keyword_ranked(word, candidates, limit=limit)
            for pk, rank in ranked:
                found.keyword[pk] = max(rank, found.keyword.get(pk, 0.0))
            matched = matched or bool(ranked)
            lists.append(ranked)
        (found.words if matched else found.missing).append(word)
    if not found.words:
        return SomeWords()
    fused = reciprocal_rank_fusion(*lists)
    found.ranked = sorted(fused.items(), key=lambda item: -item[1])
    return found
